//! The `knowledge` tool of one tenant: index what an agent read into Mesh's knowledge
//! store — with the entities it found as the document's metadata — and search it.

use mesh_embed::BoxFuture;
use serde_json::{Value, json};

use crate::domain::TenantId;
use crate::knowledge::{IndexRequest, SearchRequest};
use crate::services::Services;
use crate::tools::{ToolAction, ToolAdapter, ToolError};

/// A tenant's knowledge collection as a tool: `index` (now, not through the worker's
/// queue, so a search right after finds it) and `search`.
#[derive(Debug, Clone)]
pub struct KnowledgeAdapter {
    services: Services,
    tenant: TenantId,
    collection: String,
}

impl KnowledgeAdapter {
    /// The tool over `tenant`'s `collection`.
    pub fn new(services: Services, tenant: TenantId, collection: impl Into<String>) -> Self {
        Self {
            services,
            tenant,
            collection: collection.into(),
        }
    }

    async fn run(&self, action: &str, input: Value) -> Result<Value, ToolError> {
        let text = |key: &str| {
            input[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ToolError::InvalidInput(format!("`{key}` is required")))
        };
        let failed = |e: crate::services::ServiceError| ToolError::InvalidInput(e.to_string());
        match action {
            "index" => {
                let entities: Vec<String> = input["entities"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect();
                let request = IndexRequest {
                    collection: self.collection.clone(),
                    document_id: text("document_id")?,
                    text: text("text")?,
                    metadata: json!({"entities": entities, "title": input["title"]}),
                };
                let chunks = self
                    .services
                    .index_now(self.tenant, &request)
                    .await
                    .map_err(failed)?;
                Ok(
                    json!({"document_id": request.document_id, "chunks": chunks, "entities": entities}),
                )
            }
            "search" => {
                let request = SearchRequest {
                    collection: self.collection.clone(),
                    query: text("query")?,
                    k: input["k"].as_u64().map(|k| k as usize),
                    filter: None,
                };
                let hits = self
                    .services
                    .search(self.tenant, &request)
                    .await
                    .map_err(failed)?;
                Ok(json!({"hits": hits}))
            }
            other => Err(ToolError::UnknownAction(other.to_owned())),
        }
    }
}

impl ToolAdapter for KnowledgeAdapter {
    fn name(&self) -> &str {
        "knowledge"
    }

    fn description(&self) -> &str {
        "The knowledge store: index a document with the entities it names, search it"
    }

    fn capabilities(&self) -> Vec<String> {
        vec!["knowledge".into()]
    }

    fn actions(&self) -> Vec<ToolAction> {
        vec![
            ToolAction::new(
                "index",
                "Indexes a document (replacing one of the same id), with the named entities (people, systems, services, technologies) it mentions",
                json!({"type": "object", "properties": {
                    "document_id": {"type": "string"},
                    "title": {"type": "string"},
                    "text": {"type": "string"},
                    "entities": {"type": "array", "items": {"type": "string"}}
                }, "required": ["document_id", "text", "entities"]}),
            ),
            ToolAction::new(
                "search",
                "The indexed passages nearest to a query",
                json!({"type": "object", "properties": {"query": {"type": "string"}, "k": {"type": "integer", "minimum": 1, "maximum": 100}}, "required": ["query"]}),
            ),
        ]
    }

    fn execute<'a>(
        &'a self,
        action: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(self.run(action, input))
    }
}
