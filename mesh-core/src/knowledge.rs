//! Knowledge: documents chunked, embedded and indexed into per-model vector
//! collections by the worker, and semantic search over them.
//!
//! Long on purpose: nearly half of it is the tests, which use the private chunking and
//! collection-naming helpers.

use std::collections::HashMap;

use mesh_embed::Role;
use mesh_store::{Metric, StoreError, VectorItem};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::domain::{IndexedDocument, TenantId};
use crate::services::{ServiceError, Services};

/// Work for the worker, as it travels through the queue (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Job {
    /// Chunk a document, embed the chunks and put them in the vector index.
    IndexDocument {
        /// Whose document it is.
        tenant: TenantId,
        /// The document.
        #[serde(flatten)]
        request: IndexRequest,
        /// The W3C trace context it was queued in: the worker's span joins that trace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
    },
}

/// A document to index into a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct IndexRequest {
    /// The collection (1 to 64 characters of `[A-Za-z0-9_-]`).
    pub collection: String,
    /// The document's id in the collection; indexing it again replaces its chunks.
    pub document_id: String,
    /// The text.
    pub text: String,
    /// A JSON object stored once with the document (at most 4096 bytes of JSON);
    /// searches can filter on its keys.
    #[serde(default)]
    pub metadata: Value,
}

/// A semantic search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct SearchRequest {
    /// The collection.
    pub collection: String,
    /// What to look for.
    pub query: String,
    /// How many results (1 to 100; default 10).
    #[serde(default)]
    pub k: Option<usize>,
    /// Metadata every result must contain (`{"key": value, …}`).
    #[serde(default)]
    pub filter: Option<serde_json::Map<String, Value>>,
}

/// One search result: a chunk of an indexed document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The document the chunk is from.
    pub document_id: String,
    /// The chunk's position in the document.
    pub chunk: u64,
    /// The chunk's text.
    pub text: String,
    /// Cosine similarity to the query (1 is identical).
    pub score: f32,
    /// The document's metadata.
    pub metadata: Value,
}

/// The largest document one index request takes (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// The largest metadata one document carries (bytes of JSON). It is stored once per
/// document, on the document's record (not with each chunk).
pub const MAX_METADATA_BYTES: usize = 4096;
/// The most texts one embed request takes.
pub const MAX_EMBED_TEXTS: usize = 256;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Services {
    /// The vector collection for a user collection: one per embedding model, so
    /// vectors of different models never mix. Named by a hash of both, so every name
    /// the API accepts (mixed case, `-`, 64 characters) fits the stores' rule for
    /// names (`[a-z_][a-z0-9_]`, at most 40).
    fn collection(&self, name: &str) -> Result<String, ServiceError> {
        if !valid_name(name) {
            return Err(ServiceError::InvalidCollection);
        }
        let model = &self.embedder.model().id;
        let hash = crate::domain::hash_key(&format!("{name}\0{model}"));
        Ok(format!("kb_{}", &hash[..32]))
    }

    /// Embeds texts (for documents, or for queries when `query` is set).
    pub async fn embed(&self, texts: &[String], role: Role) -> Result<Vec<Vec<f32>>, ServiceError> {
        if texts.is_empty() || texts.len() > MAX_EMBED_TEXTS {
            return Err(ServiceError::InvalidTextCount {
                max: MAX_EMBED_TEXTS,
            });
        }
        let model = &self.embedder.model().id;
        let span = tracing::info_span!(
            "embeddings",
            otel.name = format!("embeddings {model}"),
            otel.kind = "client",
            gen_ai.operation.name = "embeddings",
            gen_ai.request.model = %model,
            gen_ai.usage.input_tokens = tracing::field::Empty,
        );
        async {
            let mut vectors = Vec::with_capacity(texts.len());
            let mut tokens = 0;
            for batch in texts.chunks(self.embedder.model().max_batch.max(1)) {
                let embedded = self.embedder.embed(batch, role).await?;
                tokens += embedded.tokens;
                vectors.extend(embedded.vectors);
            }
            tracing::Span::current().record("gen_ai.usage.input_tokens", tokens);
            Ok(vectors)
        }
        .instrument(span)
        .await
    }

    /// Validates a document and queues it for the worker; returns the job's id.
    pub async fn index_document(
        &self,
        tenant: TenantId,
        request: IndexRequest,
    ) -> Result<String, ServiceError> {
        self.collection(&request.collection)?;
        if request.document_id.is_empty() || request.document_id.len() > 256 {
            return Err(ServiceError::InvalidDocumentId);
        }
        if request.text.trim().is_empty() || request.text.len() > MAX_DOCUMENT_BYTES {
            return Err(ServiceError::InvalidText {
                max: MAX_DOCUMENT_BYTES,
            });
        }
        if !(request.metadata.is_null() || request.metadata.is_object()) {
            return Err(ServiceError::InvalidMetadata);
        }
        if request.metadata.to_string().len() > MAX_METADATA_BYTES {
            return Err(ServiceError::MetadataTooLarge {
                max: MAX_METADATA_BYTES,
            });
        }
        // A JSON value always serialises.
        let job = Job::IndexDocument {
            tenant,
            request,
            traceparent: crate::trace::current(),
        };
        let body = serde_json::to_string(&job).unwrap_or_default();
        Ok(self.jobs.send(body, std::time::Duration::ZERO).await?)
    }

    /// Chunks, embeds and indexes a document now (what the worker does with a job).
    /// Chunk ids derive from the document id, so doing it twice changes nothing.
    pub async fn index_now(
        &self,
        tenant: TenantId,
        request: &IndexRequest,
    ) -> Result<usize, ServiceError> {
        let collection = self.collection(&request.collection)?;
        let chunks = chunk_text(&request.text, CHUNK_CHARS, CHUNK_OVERLAP);
        let vectors = self.embed(&chunks, Role::Document).await?;
        self.vectors
            .create_collection(
                &collection,
                self.embedder.model().dimensions,
                Metric::Cosine,
            )
            .await?;
        // The metadata is kept once, on the document's record; the chunks name it.
        self.put_document(tenant, &collection, request, chunks.len())
            .await?;
        let items: Vec<VectorItem> = chunks
            .into_iter()
            .zip(vectors)
            .enumerate()
            .map(|(n, (text, vector))| {
                let metadata = serde_json::json!({
                    "document_id": request.document_id,
                    "chunk": n,
                    "text": text,
                });
                VectorItem::new(format!("{}#{n}", request.document_id), vector, metadata)
            })
            .collect();
        let tenant = tenant.to_string();
        for batch in items.chunks(256) {
            self.vectors.upsert(&tenant, &collection, batch).await?;
        }
        // A document indexed before with more chunks: its chunks past the new last one
        // (ids run 0, 1, … without gaps) go, window by window, until one finds none.
        let mut from = items.len();
        loop {
            let window: Vec<String> = (from..from + TAIL_WINDOW)
                .map(|n| format!("{}#{n}", request.document_id))
                .collect();
            if self.vectors.delete(&tenant, &collection, &window).await? == 0 {
                break;
            }
            from += TAIL_WINDOW;
        }
        Ok(items.len())
    }

    /// The chunks nearest to the query.
    pub async fn search(
        &self,
        tenant: TenantId,
        request: &SearchRequest,
    ) -> Result<Vec<SearchHit>, ServiceError> {
        let collection = self.collection(&request.collection)?;
        let k = request.k.unwrap_or(10);
        if !(1..=100).contains(&k) {
            return Err(ServiceError::InvalidK);
        }
        if request.query.trim().is_empty() {
            return Err(ServiceError::EmptyQuery);
        }
        let query = self
            .embed(std::slice::from_ref(&request.query), Role::Query)
            .await?;
        // A chunk's own fields (`document_id`, `chunk`, `text`) are filtered in the
        // index; the rest is on the documents' metadata, which the chunks do not
        // carry: nearest chunks are fetched, then kept if their document fits, fetching
        // more (four times as many each round) until k fit or the collection is
        // exhausted.
        let (in_index, filter): (Pairs, Pairs) = request
            .filter
            .clone()
            .unwrap_or_default()
            .into_iter()
            .partition(|(key, _)| CHUNK_FIELDS.contains(&key.as_str()));
        let mut fetch = if filter.is_empty() {
            k
        } else {
            (k * 4).max(40)
        };
        let mut documents = HashMap::new();
        loop {
            let hits = match self
                .vectors
                .search(
                    &tenant.to_string(),
                    &collection,
                    &query[0],
                    fetch,
                    &in_index,
                )
                .await
            {
                Ok(hits) => hits,
                // Nothing was ever indexed into it: no results, not an error.
                Err(StoreError::UnknownCollection(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            let exhausted = hits.len() < fetch || fetch >= MAX_SEARCH_FETCH;
            let mut found = Vec::with_capacity(k);
            for hit in hits {
                let hit = self.hit(tenant, &collection, hit, &mut documents).await?;
                if filter
                    .iter()
                    .all(|(key, v)| hit.metadata.get(key) == Some(v))
                {
                    found.push(hit);
                    if found.len() == k {
                        break;
                    }
                }
            }
            if found.len() == k || exhausted {
                return Ok(found);
            }
            fetch = (fetch * 4).min(MAX_SEARCH_FETCH);
        }
    }

    /// A search hit with its document's metadata (read once per search and document).
    async fn hit(
        &self,
        tenant: TenantId,
        collection: &str,
        hit: mesh_store::Hit,
        documents: &mut HashMap<String, Value>,
    ) -> Result<SearchHit, ServiceError> {
        let mut chunk_fields = hit.metadata;
        let mut field = |key: &str| chunk_fields.as_object_mut().and_then(|o| o.remove(key));
        let document_id = field("document_id")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let chunk = field("chunk").and_then(|v| v.as_u64()).unwrap_or_default();
        let text = field("text")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let metadata = match documents.get(&document_id) {
            Some(metadata) => metadata.clone(),
            None => {
                let id = IndexedDocument::id_of(collection, &document_id);
                let stored = self
                    .engine
                    .journal()
                    .documents
                    .get(&tenant.to_string(), id)
                    .await?;
                // Chunks indexed before documents had records carry the metadata
                // themselves: what is left of theirs once the chunk's fields are out.
                let metadata = stored.map_or(chunk_fields, |d| d.record.metadata);
                documents.insert(document_id.clone(), metadata.clone());
                metadata
            }
        };
        Ok(SearchHit {
            document_id,
            chunk,
            text,
            score: 1.0 - hit.distance,
            metadata,
        })
    }

    /// Writes the document's record (its metadata and chunk count), replacing the one
    /// of an earlier indexing.
    async fn put_document(
        &self,
        tenant: TenantId,
        collection: &str,
        request: &IndexRequest,
        chunks: usize,
    ) -> Result<(), ServiceError> {
        let documents = &self.engine.journal().documents;
        let key = tenant.to_string();
        let record = IndexedDocument {
            id: IndexedDocument::id_of(collection, &request.document_id),
            collection: collection.to_owned(),
            document_id: request.document_id.clone(),
            metadata: request.metadata.clone(),
            chunks: chunks as u64,
        };
        // Two workers indexing one document at once: the last write stands.
        for _ in 0..8 {
            let result = match documents.get(&key, record.id).await? {
                Some(stored) => documents.update(&key, &record, stored.version).await,
                None => documents.create(&key, &record).await,
            };
            match result {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Backend {
            backend: "documents",
            retryable: true,
            source: "the document's record kept changing under this write".into(),
        }
        .into())
    }
}

/// A filter's `(key, value)` pairs.
type Pairs = Vec<(String, Value)>;

/// The fields every chunk carries in the vector index (a document's metadata keys of
/// these names are shadowed).
const CHUNK_FIELDS: [&str; 3] = ["document_id", "chunk", "text"];

/// The most chunks one search reads to find `k` whose documents fit its filter: it
/// bounds the search's time (each new document among them is one read of its record),
/// at the price of fewer than `k` results when very few documents of a large
/// collection fit. (pgvector's index returns at most its `ef_search` anyway.)
pub const MAX_SEARCH_FETCH: usize = 2_000;

/// Chunk ids deleted per call when a shorter version of a document replaces a longer.
const TAIL_WINDOW: usize = 64;

/// Characters per chunk.
const CHUNK_CHARS: usize = 1000;
/// Characters shared by neighbouring chunks, so a sentence cut at a boundary is whole
/// in one of them.
const CHUNK_OVERLAP: usize = 100;

/// Splits text into chunks of at most `size` characters that overlap by about
/// `overlap`, cutting at whitespace where there is some.
pub fn chunk_text(text: &str, size: usize, overlap: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = size.max(1);
    let overlap = overlap.min(size / 2);
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + size).min(chars.len());
        if end < chars.len()
            && let Some(cut) = chars[start + size / 2..end]
                .iter()
                .rposition(|c| c.is_whitespace())
        {
            end = start + size / 2 + cut + 1;
        }
        let chunk: String = chars[start..end].iter().collect();
        if !chunk.trim().is_empty() {
            chunks.push(chunk.trim().to_owned());
        }
        if end == chars.len() {
            break;
        }
        start = end.saturating_sub(overlap).max(start + 1);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    #[test]
    fn chunks_cover_the_text_and_respect_the_size() {
        let text = "word ".repeat(1000);
        let chunks = chunk_text(&text, 100, 20);
        assert!(chunks.iter().all(|c| c.chars().count() <= 100));
        assert!(chunks.len() >= 50);
        assert_eq!(chunk_text("short text", 100, 20), vec!["short text"]);
        assert!(chunk_text("   ", 100, 20).is_empty());
        // No whitespace at all: hard cuts, still bounded.
        let long = "x".repeat(250);
        let chunks = chunk_text(&long, 100, 10);
        assert!(chunks.iter().all(|c| c.len() <= 100));
        assert!(chunks.concat().len() >= 250);
    }

    /// Hardening issue, item 2: `"Docs"`, names with `-` and 64-character names were
    /// accepted, then failed in the worker until dead-lettered.
    #[tokio::test]
    async fn hardening_2_every_collection_name_the_api_accepts_is_indexed() {
        let services = Services::in_memory(Engine::in_memory().await);
        let tenant = TenantId::new();
        let long = "L".repeat(64);
        for name in [
            "Docs",
            "team-notes",
            "x",
            long.as_str(),
            "UPPER_and-lower_09",
        ] {
            let request = IndexRequest {
                collection: name.into(),
                document_id: "d".into(),
                text: format!("the collection {name} holds mesh documents"),
                metadata: serde_json::Value::Null,
            };
            services
                .index_document(tenant, request.clone())
                .await
                .unwrap();
            assert_eq!(
                services.index_now(tenant, &request).await.unwrap(),
                1,
                "{name}"
            );
            let search = SearchRequest {
                collection: name.into(),
                query: "mesh documents".into(),
                k: Some(1),
                filter: None,
            };
            let hits = services.search(tenant, &search).await.unwrap();
            assert_eq!(hits.len(), 1, "{name}");
        }
        // Names differing only in case stay apart.
        let search = SearchRequest {
            collection: "docs".into(),
            query: "mesh documents".into(),
            k: Some(1),
            filter: None,
        };
        assert!(services.search(tenant, &search).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_indexed_document_is_found_by_its_words() {
        let services = Services::in_memory(Engine::in_memory().await);
        let tenant = TenantId::new();
        let mut request = IndexRequest {
            collection: "docs".into(),
            document_id: "rust".into(),
            text: "Rust is a systems programming language focused on safety.".into(),
            metadata: serde_json::json!({"lang": "en"}),
        };
        assert_eq!(services.index_now(tenant, &request).await.unwrap(), 1);
        request.document_id = "cake".into();
        request.text = "Bake the cake at 180 degrees for forty minutes.".into();
        services.index_now(tenant, &request).await.unwrap();
        let search = SearchRequest {
            collection: "docs".into(),
            query: "systems programming language".into(),
            k: Some(2),
            filter: None,
        };
        let hits = services.search(tenant, &search).await.unwrap();
        assert_eq!(hits[0].document_id, "rust");
        assert_eq!(hits[0].metadata, serde_json::json!({"lang": "en"}));
        // Another tenant sees nothing.
        assert!(
            services
                .search(TenantId::new(), &search)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Hardening issue, item 4: metadata was unbounded, and copied into every chunk.
    #[tokio::test]
    async fn hardening_4_metadata_is_capped() {
        let services = Services::in_memory(Engine::in_memory().await);
        let request = IndexRequest {
            collection: "docs".into(),
            document_id: "d".into(),
            text: "some text".into(),
            metadata: serde_json::json!({"blob": "x".repeat(MAX_METADATA_BYTES)}),
        };
        assert!(matches!(
            services.index_document(TenantId::new(), request).await,
            Err(ServiceError::MetadataTooLarge { .. })
        ));
    }

    /// Hardening issue, item 4: a document's metadata was copied into every chunk (a
    /// 1 MiB document with 4 KiB of metadata stored it about 2,600 times).
    #[tokio::test]
    async fn hardening_4_metadata_is_stored_once_per_document() {
        let services = Services::in_memory(Engine::in_memory().await);
        let tenant = TenantId::new();
        let text: String = (0..300)
            .map(|i| format!("note {i} on tides and harbours. "))
            .collect();
        let mut request = IndexRequest {
            collection: "docs".into(),
            document_id: "tides".into(),
            text,
            metadata: serde_json::json!({"owner": "ana", "blob": "m".repeat(3000)}),
        };
        let chunks = services.index_now(tenant, &request).await.unwrap();
        assert!(chunks > 5, "{chunks} chunks");
        // The chunks carry their own fields only.
        let collection = services.collection("docs").unwrap();
        let probe = services
            .embed(&["tides and harbours".into()], Role::Query)
            .await
            .unwrap();
        let raw = services
            .vectors
            .search(&tenant.to_string(), &collection, &probe[0], 100, &[])
            .await
            .unwrap();
        assert_eq!(raw.len(), chunks);
        for hit in &raw {
            let keys: Vec<&String> = hit.metadata.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 3, "{keys:?}");
            assert!(hit.metadata.to_string().len() < 1500);
        }
        // The document's record has it, once; every hit shows it.
        let id = IndexedDocument::id_of(&collection, "tides");
        let stored = services
            .engine
            .journal()
            .documents
            .get(&tenant.to_string(), id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.record.metadata, request.metadata);
        assert_eq!(stored.record.chunks, chunks as u64);
        let search = SearchRequest {
            collection: "docs".into(),
            query: "tides and harbours".into(),
            k: Some(5),
            filter: None,
        };
        let hits = services.search(tenant, &search).await.unwrap();
        assert_eq!(hits.len(), 5);
        assert!(hits.iter().all(|h| h.metadata["owner"] == "ana"));
        // Indexing it again with new metadata changes what every chunk shows.
        request.metadata = serde_json::json!({"owner": "bo"});
        services.index_now(tenant, &request).await.unwrap();
        let hits = services.search(tenant, &search).await.unwrap();
        assert!(
            hits.iter()
                .all(|h| h.metadata == serde_json::json!({"owner": "bo"}))
        );
    }

    /// Filters match the documents' metadata, also when the documents that fit are far
    /// from the query (more chunks are fetched until k fit).
    #[tokio::test]
    async fn filters_find_documents_far_from_the_query() {
        let services = Services::in_memory(Engine::in_memory().await);
        let tenant = TenantId::new();
        for i in 0..80 {
            let (text, lang) = if i % 20 == 0 {
                (format!("recette {i}: une tarte aux pommes"), "fr")
            } else {
                (format!("engine {i} routes tasks to agents"), "en")
            };
            let request = IndexRequest {
                collection: "mixed".into(),
                document_id: format!("d{i}"),
                text,
                metadata: serde_json::json!({"lang": lang, "n": i}),
            };
            services.index_now(tenant, &request).await.unwrap();
        }
        let filter = |lang: &str| {
            Some(serde_json::Map::from_iter([(
                "lang".to_owned(),
                serde_json::json!(lang),
            )]))
        };
        let search = SearchRequest {
            collection: "mixed".into(),
            query: "engine routes tasks to agents".into(),
            k: Some(10),
            filter: filter("fr"),
        };
        let hits = services.search(tenant, &search).await.unwrap();
        let mut found: Vec<&str> = hits.iter().map(|h| h.document_id.as_str()).collect();
        found.sort_unstable();
        assert_eq!(found, ["d0", "d20", "d40", "d60"]);
        assert!(hits.iter().all(|h| h.metadata["lang"] == "fr"));
        // A chunk's own fields filter too, with the metadata's.
        let by_document = SearchRequest {
            filter: Some(serde_json::Map::from_iter([
                ("document_id".to_owned(), serde_json::json!("d20")),
                ("lang".to_owned(), serde_json::json!("fr")),
            ])),
            ..search.clone()
        };
        let hits = services.search(tenant, &by_document).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].document_id.as_str(), hits[0].chunk), ("d20", 0));
        // Nearest first, k at most.
        let search = SearchRequest {
            filter: filter("en"),
            k: Some(3),
            ..search
        };
        let hits = services.search(tenant, &search).await.unwrap();
        assert_eq!(hits.len(), 3);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(hits.iter().all(|h| h.metadata["lang"] == "en"));
    }

    /// Hardening issue, item 4: indexing a document again with fewer chunks left the
    /// old version's tail chunks searchable.
    #[tokio::test]
    async fn hardening_4_a_shorter_version_removes_the_old_tail() {
        let services = Services::in_memory(Engine::in_memory().await);
        let tenant = TenantId::new();
        let index = |text: String| IndexRequest {
            collection: "docs".into(),
            document_id: "d".into(),
            text,
            metadata: serde_json::Value::Null,
        };
        let long: String = (0..1500)
            .map(|i| format!("paragraph {i} about lighthouses and their keepers. "))
            .collect();
        let before = services.index_now(tenant, &index(long)).await.unwrap();
        assert!(
            before > TAIL_WINDOW,
            "{before} chunks: the tail spans windows"
        );
        let after = services
            .index_now(tenant, &index("a short note about lighthouses".into()))
            .await
            .unwrap();
        assert_eq!(after, 1);
        let search = SearchRequest {
            collection: "docs".into(),
            query: "paragraph about lighthouses and their keepers".into(),
            k: Some(100),
            filter: None,
        };
        let hits = services.search(tenant, &search).await.unwrap();
        assert_eq!(hits.len(), 1, "only the new version's one chunk");
        assert_eq!(hits[0].chunk, 0);
    }
}
