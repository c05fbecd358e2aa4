//! The operator's agents file (`--agents-config`, TOML): which built-in LLM agents run,
//! on which model, with what they need — and starting the ones whose model
//! credentials are there:
//!
//! ```toml
//! [[agents]]
//! profile = "code_analyzer"          # or database_analyzer, knowledge_builder,
//! root = "/srv/checkout"             #    documentation_generator
//! model = { provider = "bedrock", id = "anthropic.claude-3-5-sonnet-20241022-v2:0", input_price = 3.0, output_price = 15.0 }
//! limits = { max_turns = 12, max_dollars = 0.50 }
//!
//! [[agents]]
//! profile = "database_analyzer"
//! database_url = "postgres://reader@db/app"
//! model = { provider = "openai", base_url = "http://127.0.0.1:8080/v1", id = "qwen2.5-7b-instruct", api_key_env = "LOCAL_LLM_KEY" }
//! ```
//!
//! Every key but `model` and `tenant` (default: the operator's) is an
//! [`AgentConfig`]'s: `name`, `prompt`, `capabilities`, `tools` (the tenant's tools it
//! may use besides its own), `limits`, `concurrency`, `root`, `output`, `database_url`,
//! `collection`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mesh_core::agents::{AgentConfig, AgentUsage, LlmAgent};
use mesh_core::embed::{BedrockChat, ChatModel, ChatModelInfo, OpenAiChat};
use mesh_core::services::Services;
use mesh_core::{LocalAgent, TenantId};
use serde::Deserialize;

type Error = Box<dyn std::error::Error>;

/// How long the AWS credentials chain may take to answer.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// The agents flag.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct AgentFlags {
    /// The agents file (TOML): built-in LLM agents to run, each on its model.
    #[arg(long, env = "MESH_AGENTS_CONFIG")]
    pub agents_config: Option<PathBuf>,
}

/// The model an agent thinks with.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
enum ModelConfig {
    /// AWS Bedrock's Converse API (credentials and region from the usual AWS sources).
    Bedrock {
        id: String,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        input_price: f64,
        #[serde(default)]
        output_price: f64,
    },
    /// An OpenAI-compatible chat endpoint.
    Openai {
        id: String,
        base_url: String,
        /// The environment variable holding its API key (none: no key is sent).
        #[serde(default)]
        api_key_env: Option<String>,
        #[serde(default)]
        input_price: f64,
        #[serde(default)]
        output_price: f64,
    },
}

impl ModelConfig {
    /// The model client, or why it cannot be made (credentials missing).
    async fn client(&self) -> Result<Arc<dyn ChatModel>, String> {
        match self {
            Self::Bedrock {
                id,
                region,
                input_price,
                output_price,
            } => {
                use aws_sdk_bedrockruntime::config::ProvideCredentials;
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(region) = region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                let config = loader.load().await;
                if config.region().is_none() {
                    return Err("no AWS region (set AWS_REGION or the model's `region`)".into());
                }
                let provider = config
                    .credentials_provider()
                    .ok_or("no AWS credentials provider")?;
                match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials())
                    .await
                {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(format!("no AWS credentials ({e})")),
                    Err(_) => {
                        return Err("no AWS credentials (the provider chain timed out)".into());
                    }
                }
                let info = ChatModelInfo::new(id, *input_price, *output_price);
                let client = aws_sdk_bedrockruntime::Client::new(&config);
                Ok(Arc::new(BedrockChat::new(client, info)))
            }
            Self::Openai {
                id,
                base_url,
                api_key_env,
                input_price,
                output_price,
            } => {
                let key = match api_key_env {
                    Some(var) => Some(
                        std::env::var(var)
                            .map_err(|_| format!("{var} is not set (its API key)"))?,
                    ),
                    None => None,
                };
                let info = ChatModelInfo::new(id, *input_price, *output_price);
                Ok(Arc::new(OpenAiChat::new(base_url, key, info)))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Bedrock { id, .. } => format!("bedrock {id}"),
            Self::Openai { id, base_url, .. } => format!("{id} at {base_url}"),
        }
    }
}

/// One agent of the file, read.
struct Entry {
    config: AgentConfig,
    model: ModelConfig,
    tenant: Option<TenantId>,
}

/// What became of one configured agent.
#[derive(Debug)]
pub struct Outcome {
    /// Its name.
    pub name: String,
    /// Started (what it runs on), or why not.
    pub result: Result<String, String>,
}

/// The agents that were started: they run while this is kept.
#[derive(Debug, Default)]
pub struct Started {
    /// What became of each configured agent, in the file's order.
    pub outcomes: Vec<Outcome>,
    /// The running agents.
    pub agents: Vec<LocalAgent>,
}

impl AgentFlags {
    /// Reads the file and starts its agents on `services` (for `tenant` unless an
    /// entry names its own). A file that does not parse is an error; an agent that
    /// cannot start (credentials, settings) is an outcome saying why.
    pub async fn start(&self, services: &Services, tenant: TenantId) -> Result<Started, Error> {
        let Some(path) = &self.agents_config else {
            return Ok(Started::default());
        };
        let entries = read(path)?;
        let mut started = Started::default();
        for entry in entries {
            let name = entry.config.name().to_owned();
            let result = async {
                let model = entry.model.client().await?;
                let tenant = entry.tenant.unwrap_or(tenant);
                let agent = entry
                    .config
                    .build(model, services, tenant)
                    .map_err(|e| e.to_string())?;
                let running = agent
                    .start(&services.engine, tenant)
                    .await
                    .map_err(|e| e.to_string())?;
                started.agents.push(running);
                Ok(format!(
                    "{} on {}",
                    agent.spec().capabilities.join(", "),
                    entry.model.describe()
                ))
            }
            .await;
            started.outcomes.push(Outcome { name, result });
        }
        Ok(started)
    }
}

/// The entry of the file at `path` named `name` (or its only one), built to run in a
/// process of its own (`llm-agent`); with what it runs on.
pub async fn standalone(path: &Path, name: Option<&str>) -> Result<(LlmAgent, String), Error> {
    let mut entries = read(path)?;
    let names = || entries_names(&entries);
    let at = match name {
        Some(name) => entries
            .iter()
            .position(|e| e.config.name() == name)
            .ok_or_else(|| {
                format!(
                    "no agent named {name} in {} (it has: {})",
                    path.display(),
                    names()
                )
            })?,
        None if entries.len() == 1 => 0,
        None => {
            return Err(format!(
                "{} has {} agents ({}): choose one with --name",
                path.display(),
                entries.len(),
                names()
            )
            .into());
        }
    };
    let entry = entries.swap_remove(at);
    let model = entry.model.client().await?;
    let agent = entry
        .config
        .build_standalone(model, AgentUsage::default())?;
    Ok((agent, entry.model.describe()))
}

fn entries_names(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| e.config.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read(path: &Path) -> Result<Vec<Entry>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the agents file {}: {e}", path.display()))?;
    Ok(parse(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// The file's entries: each `[[agents]]` table's `model` and `tenant`, the rest an
/// [`AgentConfig`].
fn parse(text: &str) -> Result<Vec<Entry>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        agents: Vec<toml::Table>,
    }
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    file.agents
        .into_iter()
        .enumerate()
        .map(|(n, mut table)| {
            let at = |e: String| format!("agents[{n}]: {e}");
            let model = table
                .remove("model")
                .ok_or_else(|| at("`model` is required".into()))?;
            let model: ModelConfig = model
                .try_into()
                .map_err(|e: toml::de::Error| at(e.to_string()))?;
            let tenant = match table.remove("tenant") {
                Some(t) => Some(
                    t.as_str()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| at("`tenant` is a tenant id".into()))?,
                ),
                None => None,
            };
            let config: AgentConfig = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| at(e.to_string()))?;
            Ok(Entry {
                config,
                model,
                tenant,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_parses_and_mistakes_are_named() {
        let entries = parse(
            r#"
            [[agents]]
            profile = "code_analyzer"
            root = "/srv/checkout"
            model = { provider = "bedrock", id = "anthropic.claude-3-5-sonnet-20241022-v2:0", input_price = 3.0, output_price = 15.0 }
            limits = { max_turns = 12, max_dollars = 0.50 }

            [[agents]]
            profile = "database_analyzer"
            name = "db"
            database_url = "postgres://reader@db/app"
            model = { provider = "openai", base_url = "http://127.0.0.1:8080/v1", id = "qwen", api_key_env = "LOCAL_LLM_KEY" }
            "#,
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].config.limits.max_turns, 12);
        assert_eq!(entries[1].config.name(), "db");
        assert!(matches!(entries[1].model, ModelConfig::Openai { .. }));
        for (bad, says) in [
            (
                "[[agents]]\nprofile = \"code_analyzer\"",
                "`model` is required",
            ),
            (
                "[[agents]]\nprofile = \"poet\"\nmodel = { provider = \"openai\", base_url = \"x\", id = \"y\" }",
                "unknown variant `poet`",
            ),
            (
                "[[agents]]\nprofile = \"code_analyzer\"\nrot = \"/x\"\nmodel = { provider = \"openai\", base_url = \"x\", id = \"y\" }",
                "unknown field `rot`",
            ),
            (
                "[[agents]]\nprofile = \"code_analyzer\"\nmodel = { provider = \"gpt\", id = \"y\" }",
                "unknown variant `gpt`",
            ),
        ] {
            let error = parse(bad).err().unwrap();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
