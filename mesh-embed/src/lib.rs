//! # mesh-embed
//!
//! Text embeddings for [Mesh](https://github.com/mesh-agents/mesh): one [`Embedder`]
//! trait, an offline default that needs no network or model, AWS Bedrock clients
//! (feature `bedrock`), and composable wrappers that make providers affordable:
//!
//! - [`HashEmbedder`]: hashed words, word pairs and character n-grams, sublinear
//!   weights, L2-normalized — deterministic, fast, offline.
//! - [`Batcher`]: coalesces concurrent single requests into model-sized batches.
//! - [`Cached`]: a bounded content-hash (SHA-256) cache.
//! - [`Retry`]: exponential backoff with jitter on throttling and transient failures.
//! - [`Failover`]: moves to the next provider when one throttles or fails, with a
//!   circuit breaker per provider.
//! - [`CostMeter`]: tokens and dollars per tenant and model from a price table.
//!
//! Chat models for LLM agents sit beside them: the [`ChatModel`] trait (messages,
//! tool definitions, `toolUse` / `toolResult` blocks, stop reasons, token usage and
//! prices), on Bedrock's Converse and ConverseStream ([`BedrockChat`], feature
//! `bedrock`) or any OpenAI-compatible chat endpoint ([`OpenAiChat`], feature `openai`,
//! for local models).
//!
//! Vectors of different models are never mixed or padded: every result names its
//! model ([`Embeddings::model`]), and each model gets its own vector collection.
//!
//! | feature | adds |
//! |---|---|
//! | `bedrock` | `BedrockEmbedder`: Titan Text Embeddings v1 and v2, Cohere Embed English and Multilingual v3; `BedrockChat`: Converse and ConverseStream |
//! | `openai` | `OpenAiChat`: OpenAI-compatible chat completions, streamed (reqwest) |
//!
//! ## Quick start
//!
//! ```
//! use mesh_embed::{Cached, Embedder, HashEmbedder, Role};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let embedder = Cached::new(HashEmbedder::new(256), 10_000);
//! let texts = vec!["agents route tasks".to_string(), "bake bread".to_string()];
//! let out = embedder.embed(&texts, Role::Document).await?;
//! assert_eq!((out.vectors.len(), out.vectors[0].len()), (2, 256));
//! # Ok::<(), mesh_embed::EmbedError>(()) }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod batcher;
#[cfg(feature = "bedrock")]
mod bedrock;
#[cfg(feature = "bedrock")]
mod bedrock_chat;
mod cache;
mod chat;
mod cost;
mod embedder;
mod error;
mod failover;
mod hashing;
#[cfg(feature = "openai")]
mod openai;
mod retry;

pub use batcher::Batcher;
#[cfg(feature = "bedrock")]
pub use bedrock::{BedrockEmbedder, BedrockModel};
#[cfg(feature = "bedrock")]
pub use bedrock_chat::BedrockChat;
pub use cache::Cached;
pub use chat::{
    ChatMessage, ChatModel, ChatModelInfo, ChatRequest, ChatResponse, ChatRole, ContentBlock,
    StopReason, TextSink, TokenUsage, ToolSpec,
};
pub use cost::{CostMeter, Metered, Usage};
pub use embedder::{BoxFuture, Embedder, Embeddings, ModelInfo, Role};
pub use error::EmbedError;
pub use failover::Failover;
pub use hashing::HashEmbedder;
#[cfg(feature = "openai")]
pub use openai::OpenAiChat;
pub use retry::Retry;
