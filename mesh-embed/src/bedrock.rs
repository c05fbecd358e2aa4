//! Amazon Bedrock embedding models (feature `bedrock`).

use std::sync::{Arc, Mutex};

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::Blob;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{BoxFuture, EmbedError, Embedder, Embeddings, ModelInfo, Role};

/// The Bedrock embedding models this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BedrockModel {
    /// `amazon.titan-embed-text-v1`: 1,536 dimensions, one text per request.
    TitanV1,
    /// `amazon.titan-embed-text-v2:0`: 256, 512 or 1,024 dimensions, optionally
    /// normalized, one text per request.
    TitanV2 {
        /// 256, 512 or 1024.
        dimensions: u32,
        /// Whether Bedrock scales vectors to unit length.
        normalize: bool,
    },
    /// `cohere.embed-english-v3`: 1,024 dimensions, up to 96 texts per request.
    CohereEnglishV3,
    /// `cohere.embed-multilingual-v3`: 1,024 dimensions, up to 96 texts per request.
    CohereMultilingualV3,
}

impl BedrockModel {
    /// The Bedrock model id.
    pub fn id(self) -> &'static str {
        match self {
            Self::TitanV1 => "amazon.titan-embed-text-v1",
            Self::TitanV2 { .. } => "amazon.titan-embed-text-v2:0",
            Self::CohereEnglishV3 => "cohere.embed-english-v3",
            Self::CohereMultilingualV3 => "cohere.embed-multilingual-v3",
        }
    }

    /// Identity, limits and list price (us-east-1, on demand).
    pub fn info(self) -> ModelInfo {
        let (dimensions, max_input_tokens, max_batch, price) = match self {
            Self::TitanV1 => (1536, 8192, 1, 0.10),
            Self::TitanV2 { dimensions, .. } => (dimensions as usize, 8192, 1, 0.02),
            Self::CohereEnglishV3 | Self::CohereMultilingualV3 => (1024, 512, 96, 0.10),
        };
        // Titan v2's vectors differ per dimension count: each is its own model.
        let id = match self {
            Self::TitanV2 { dimensions, .. } => format!("{}#{dimensions}", self.id()),
            _ => self.id().to_owned(),
        };
        ModelInfo {
            id,
            dimensions,
            max_input_tokens,
            max_batch,
            price_per_million_tokens: price,
        }
    }

    fn is_cohere(self) -> bool {
        matches!(self, Self::CohereEnglishV3 | Self::CohereMultilingualV3)
    }
}

/// An [`Embedder`] on Bedrock's `InvokeModel`, with the request and response bodies AWS
/// documents for each model. Region, credentials and endpoint come from the client's
/// configuration (`BedrockEmbedder::from_env` uses the usual AWS sources, so
/// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` points it at a local endpoint).
#[derive(Debug, Clone)]
pub struct BedrockEmbedder {
    client: Client,
    model: BedrockModel,
    info: ModelInfo,
}

#[derive(Deserialize)]
struct TitanResponse {
    embedding: Vec<f32>,
    #[serde(rename = "inputTextTokenCount", default)]
    input_text_token_count: u64,
}

#[derive(Deserialize)]
struct CohereResponse {
    embeddings: Vec<Vec<f32>>,
}

/// Reads the token count Bedrock reports in a response header (Cohere's body has none).
#[derive(Debug, Default, Clone)]
struct TokenHeader(Arc<Mutex<Option<u64>>>);

impl Intercept for TokenHeader {
    fn name(&self) -> &'static str {
        "mesh-embed-token-header"
    }

    fn read_before_deserialization(
        &self,
        context: &aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let count = context
            .response()
            .headers()
            .get("x-amzn-bedrock-input-token-count")
            .and_then(|v| v.parse().ok());
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = count;
        Ok(())
    }
}

impl BedrockEmbedder {
    /// An embedder for `model` through `client`.
    pub fn new(client: Client, model: BedrockModel) -> Self {
        Self {
            client,
            info: model.info(),
            model,
        }
    }

    /// An embedder for `model` with the usual AWS configuration.
    pub async fn from_env(model: BedrockModel) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Self::new(Client::new(&config), model)
    }

    async fn invoke(&self, body: Value) -> Result<(Vec<u8>, Option<u64>), EmbedError> {
        let tokens = TokenHeader::default();
        let out = self
            .client
            .invoke_model()
            .model_id(self.model.id())
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(serde_json::to_vec(&body).unwrap_or_default()))
            .customize()
            .interceptor(tokens.clone())
            .send()
            .await
            .map_err(|e| sdk_error(&self.info.id, e))?;
        let count = *tokens
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok((out.body().as_ref().to_vec(), count))
    }

    async fn titan(&self, text: &str) -> Result<(Vec<f32>, u64), EmbedError> {
        let body = match self.model {
            BedrockModel::TitanV2 {
                dimensions,
                normalize,
            } => {
                json!({"inputText": text, "dimensions": dimensions, "normalize": normalize})
            }
            _ => json!({"inputText": text}),
        };
        let (bytes, _) = self.invoke(body).await?;
        let response: TitanResponse = serde_json::from_slice(&bytes)
            .map_err(|_| EmbedError::malformed(&self.info.id, "no embedding"))?;
        if response.embedding.len() != self.info.dimensions {
            return Err(EmbedError::malformed(&self.info.id, "wrong dimensions"));
        }
        Ok((response.embedding, response.input_text_token_count))
    }

    async fn cohere(&self, texts: &[String], role: Role) -> Result<Embeddings, EmbedError> {
        let input_type = match role {
            Role::Query => "search_query",
            _ => "search_document",
        };
        let (bytes, tokens) = self
            .invoke(json!({"texts": texts, "input_type": input_type, "truncate": "END"}))
            .await?;
        let response: CohereResponse = serde_json::from_slice(&bytes)
            .map_err(|_| EmbedError::malformed(&self.info.id, "no embeddings"))?;
        if response.embeddings.len() != texts.len()
            || response
                .embeddings
                .iter()
                .any(|v| v.len() != self.info.dimensions)
        {
            return Err(EmbedError::malformed(
                &self.info.id,
                "wrong number or size of embeddings",
            ));
        }
        // Without the header, estimate: about four characters a token.
        let tokens =
            tokens.unwrap_or_else(|| texts.iter().map(|t| t.len().div_ceil(4) as u64).sum());
        Ok(Embeddings::new(
            self.info.id.clone(),
            response.embeddings,
            tokens,
        ))
    }
}

impl Embedder for BedrockEmbedder {
    fn model(&self) -> &ModelInfo {
        &self.info
    }

    /// Cohere takes the batch in one request (at most 96 texts). Titan takes one text per
    /// request, so a batch becomes concurrent requests.
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        Box::pin(async move {
            if self.model.is_cohere() {
                if texts.len() > self.info.max_batch {
                    return Err(EmbedError::BatchTooLarge {
                        count: texts.len(),
                        max: self.info.max_batch,
                    });
                }
                return self.cohere(texts, role).await;
            }
            let results = futures_util::future::join_all(texts.iter().map(|t| self.titan(t))).await;
            let mut vectors = Vec::with_capacity(texts.len());
            let mut tokens = 0;
            for r in results {
                let (v, t) = r?;
                vectors.push(v);
                tokens += t;
            }
            Ok(Embeddings::new(self.info.id.clone(), vectors, tokens))
        })
    }
}

/// A Bedrock error of any operation (or event stream), typed by its error code:
/// throttling and quota → [`EmbedError::Throttled`], validation →
/// [`EmbedError::Invalid`], model timeouts → [`EmbedError::Timeout`], the rest
/// [`EmbedError::Provider`], retryable when the service is unavailable or failing.
pub(crate) fn sdk_error<E, R>(provider: &str, e: SdkError<E, R>) -> EmbedError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    let provider = provider.to_owned();
    match e {
        SdkError::ServiceError(service) => {
            let err = service.into_err();
            let message = err
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| err.to_string());
            match err.code().unwrap_or_default() {
                "ThrottlingException" | "ServiceQuotaExceededException" => EmbedError::Throttled {
                    provider,
                    retry_after: None,
                },
                "ValidationException" => EmbedError::Invalid { provider, message },
                "ModelTimeoutException" => EmbedError::Timeout { provider },
                code => EmbedError::Provider {
                    provider,
                    retryable: matches!(
                        code,
                        "ServiceUnavailableException"
                            | "InternalServerException"
                            | "ModelNotReadyException"
                            | "ModelStreamErrorException"
                    ),
                    message,
                },
            }
        }
        SdkError::TimeoutError(_) => EmbedError::Timeout { provider },
        other => EmbedError::Provider {
            provider,
            message: other.to_string(),
            retryable: true,
        },
    }
}
