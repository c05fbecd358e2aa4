//! LLM agents: a chat model ([`mesh_embed::ChatModel`]: Bedrock Converse, or any
//! OpenAI-compatible endpoint), a system prompt, tools and limits become an agent of
//! the engine ([`LlmAgent::start`]) that runs each task as a model ↔ tool loop through
//! Mesh's tools service, reports each turn and tool call as progress, stops at its
//! limits or when cancelled, and records tokens and dollars per task, agent and tenant
//! ([`AgentUsage`]). The four agents of the Bedrock Agent System are built-in
//! [`Profile`]s, configured by an [`AgentConfig`].

mod knowledge_tool;
mod profiles;
mod runtime;
mod spec;
mod toolbox;
mod usage;

pub use knowledge_tool::KnowledgeAdapter;
pub use profiles::{AgentConfig, Profile, ProfileError};
pub use runtime::{AgentError, Answer, LlmAgent, Reporter};
pub use spec::{AgentLimits, AgentSpec};
pub use usage::{AgentUsage, ModelTotals, UsageTotals};
