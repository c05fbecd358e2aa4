//! The four agents of the Bedrock Agent System as built-in profiles — code analyzer,
//! database analyzer, knowledge builder, documentation generator — each a prompt,
//! capabilities and its own tools, configured by the operator (model, directories,
//! database, limits).

use std::path::PathBuf;
use std::sync::Arc;

use mesh_embed::ChatModel;
use serde::{Deserialize, Serialize};

use super::{AgentLimits, AgentSpec, AgentUsage, KnowledgeAdapter, LlmAgent};
use crate::domain::TenantId;
use crate::services::Services;
use crate::tools::FilesAdapter;

/// A built-in agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Profile {
    /// Reads the code under a directory (tool `code`, read-only) and reports on it.
    CodeAnalyzer,
    /// Reads a PostgreSQL schema (tool `schema`, read-only catalog queries) and
    /// reports on it.
    DatabaseAnalyzer,
    /// Reads documents (tool `source`, read-only, if a directory is given) and indexes
    /// them with their entities into the knowledge store (tool `knowledge`).
    KnowledgeBuilder,
    /// Reads code (tool `source`, read-only) and writes Markdown documentation (tool
    /// `docs`, under its output directory).
    DocumentationGenerator,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 4] = [
        Self::CodeAnalyzer,
        Self::DatabaseAnalyzer,
        Self::KnowledgeBuilder,
        Self::DocumentationGenerator,
    ];

    /// Its default agent name.
    pub fn name(self) -> &'static str {
        match self {
            Self::CodeAnalyzer => "code-analyzer",
            Self::DatabaseAnalyzer => "database-analyzer",
            Self::KnowledgeBuilder => "knowledge-builder",
            Self::DocumentationGenerator => "documentation-generator",
        }
    }

    /// The task kind it accepts by default.
    pub fn capability(self) -> &'static str {
        match self {
            Self::CodeAnalyzer => "code-analysis",
            Self::DatabaseAnalyzer => "database-analysis",
            Self::KnowledgeBuilder => "knowledge-building",
            Self::DocumentationGenerator => "documentation",
        }
    }

    /// Its default system prompt.
    pub fn prompt(self) -> &'static str {
        match self {
            Self::CodeAnalyzer => {
                "You are a code analyzer. Use the code tools to list directories and read files; \
                 read what you need, not everything. Answer the request with what the code does, \
                 how it is structured, risky or wrong patterns, and concrete suggestions, citing \
                 file paths. Do not guess at files you did not read."
            }
            Self::DatabaseAnalyzer => {
                "You are a database analyzer. Use the schema tools to list the tables and describe \
                 the ones that matter. Answer the request with the data model, the relations \
                 (keys, foreign keys), missing indexes or constraints, and concrete suggestions, \
                 naming tables and columns."
            }
            Self::KnowledgeBuilder => {
                "You are a knowledge builder. Read the documents you are given (or list and read \
                 them with the source tools), and index each one with knowledge_index: a stable \
                 document_id, its title, its text, and the named entities it mentions (people, \
                 systems, services, technologies). Answer with the documents indexed and their \
                 entities."
            }
            Self::DocumentationGenerator => {
                "You are a documentation generator. Read the code with the source tools, then \
                 write clear Markdown documentation with docs_write (one file per topic: what it \
                 is, how to use it, how it works). Answer with the files you wrote."
            }
        }
    }
}

/// One configured agent (an entry of the operator's agents file). Its `Debug` never
/// shows the database URL (it may hold a password).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentConfig {
    /// Which built-in agent.
    pub profile: Profile,
    /// Its name (default: the profile's, e.g. `code-analyzer`).
    #[serde(default)]
    pub name: Option<String>,
    /// Its system prompt (default: the profile's).
    #[serde(default)]
    pub prompt: Option<String>,
    /// The task kinds it accepts (default: the profile's, e.g. `code-analysis`).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Tools of the tenant's catalog it may use besides its own, by name.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Its limits per task.
    #[serde(default)]
    pub limits: AgentLimits,
    /// Tasks it runs at once (default 4).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// The directory it reads: code (code analyzer, documentation generator) or
    /// documents (knowledge builder, optional).
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Where the documentation generator writes.
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// The database the database analyzer reads (a `postgres://` URL).
    #[serde(default)]
    pub database_url: Option<String>,
    /// The knowledge builder's collection (default `knowledge`).
    #[serde(default)]
    pub collection: Option<String>,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("profile", &self.profile)
            .field("name", &self.name())
            .field("capabilities", &self.capabilities)
            .field("tools", &self.tools)
            .field("limits", &self.limits)
            .field("root", &self.root)
            .field("output", &self.output)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("collection", &self.collection)
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    /// A `profile` agent with its defaults (and nothing it needs: see
    /// [`build`](Self::build)).
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            name: None,
            prompt: None,
            capabilities: Vec::new(),
            tools: Vec::new(),
            limits: AgentLimits::default(),
            concurrency: None,
            root: None,
            output: None,
            database_url: None,
            collection: None,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.profile.name())
    }

    /// The agent, thinking with `model`, for `tenant` of `services`; an error names
    /// the setting it lacks.
    pub fn build(
        &self,
        model: Arc<dyn ChatModel>,
        services: &Services,
        tenant: TenantId,
    ) -> Result<LlmAgent, ProfileError> {
        let agent = LlmAgent::new(
            self.spec(),
            model,
            services.tools.clone(),
            services.agents.clone(),
        );
        self.equip(agent, Some((services, tenant)))
    }

    /// The agent for a process of its own, connected over the protocol: its profile's
    /// tools only. The knowledge builder (which writes into Mesh's knowledge store) and
    /// an agent given `tools` of a tenant's catalog need Mesh's process: refused.
    pub fn build_standalone(
        &self,
        model: Arc<dyn ChatModel>,
        usage: AgentUsage,
    ) -> Result<LlmAgent, ProfileError> {
        if !self.tools.is_empty() {
            return Err(ProfileError::Invalid(format!(
                "agent {}: `tools` of a tenant's catalog need Mesh's process (mesh up --agents-config)",
                self.name()
            )));
        }
        self.equip(LlmAgent::standalone(self.spec(), model, usage), None)
    }

    fn spec(&self) -> AgentSpec {
        let profile = self.profile;
        let mut spec = AgentSpec::new(
            self.name(),
            self.prompt.as_deref().unwrap_or(profile.prompt()),
            if self.capabilities.is_empty() {
                vec![profile.capability().to_owned()]
            } else {
                self.capabilities.clone()
            },
        );
        spec.tools = self.tools.clone();
        spec.limits = self.limits;
        spec.concurrency = self.concurrency.unwrap_or(AgentSpec::DEFAULT_CONCURRENCY);
        spec
    }

    /// Gives `agent` its profile's own tools (`mesh`: the services and tenant of an
    /// agent inside Mesh's process).
    fn equip(
        &self,
        agent: LlmAgent,
        mesh: Option<(&Services, TenantId)>,
    ) -> Result<LlmAgent, ProfileError> {
        let needs = |setting: &'static str| ProfileError::Missing {
            agent: self.name().to_owned(),
            setting,
        };
        Ok(match self.profile {
            Profile::CodeAnalyzer => {
                let root = self.root.clone().ok_or_else(|| needs("root"))?;
                agent.with_tool(FilesAdapter::read_only("code", root))
            }
            Profile::DatabaseAnalyzer => {
                let url = self
                    .database_url
                    .as_deref()
                    .ok_or_else(|| needs("database_url"))?;
                #[cfg(feature = "postgres")]
                {
                    let schema = crate::tools::SchemaAdapter::connect_lazy("schema", url)
                        .map_err(|e| ProfileError::Invalid(e.to_string()))?;
                    agent.with_tool(schema)
                }
                #[cfg(not(feature = "postgres"))]
                {
                    let _ = url;
                    return Err(ProfileError::Invalid(
                        "the database analyzer needs a build with feature `postgres`".into(),
                    ));
                }
            }
            Profile::KnowledgeBuilder => {
                let (services, tenant) = mesh.ok_or_else(|| {
                    ProfileError::Invalid(format!(
                        "agent {}: the knowledge builder indexes into Mesh's knowledge store and runs in Mesh's process (mesh up --agents-config)",
                        self.name()
                    ))
                })?;
                let collection = self.collection.as_deref().unwrap_or("knowledge");
                let knowledge = KnowledgeAdapter::new(services.clone(), tenant, collection);
                let agent = agent.with_tool(knowledge);
                match &self.root {
                    Some(root) => agent.with_tool(FilesAdapter::read_only("source", root)),
                    None => agent,
                }
            }
            Profile::DocumentationGenerator => {
                let root = self.root.clone().ok_or_else(|| needs("root"))?;
                let output = self.output.clone().ok_or_else(|| needs("output"))?;
                agent
                    .with_tool(FilesAdapter::read_only("source", root))
                    .with_tool(FilesAdapter::new(output).named("docs"))
            }
        })
    }
}

/// Why a configured agent cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A setting the profile needs is absent.
    #[error("agent {agent} needs `{setting}`")]
    Missing {
        /// The agent.
        agent: String,
        /// The setting.
        setting: &'static str,
    },
    /// A setting is wrong.
    #[error("{0}")]
    Invalid(String),
}
