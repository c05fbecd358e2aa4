//! Tool sources, running: a registered or configured source with its credentials
//! opened — an adapter, or a supervised MCP server connection — and how a source
//! is asked for, shown and refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
#[cfg(feature = "federation")]
use serde_json::json;

#[cfg(feature = "federation")]
use super::config::{CALL, call_action};
use super::config::{OperatorSource, ToolsConfig};
use super::secrets::{SecretError, SecretKey};
use super::{ToolAdapter, ToolError, ToolInfo};
use crate::domain::{Prefix, SourceKind, TenantId, ToolSource};

/// What a client registers (`PUT /api/v1/tool-sources/{name}`). Credentials go in
/// `headers` (an MCP server) or `token` (GitHub); they are sealed before they are
/// stored and never shown again.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// `mcp` (an MCP server over Streamable HTTP) or `github`.
    pub kind: SourceKind,
    /// The MCP endpoint, or GitHub's API base URL (`https://api.github.com` if absent).
    #[serde(default)]
    pub url: Option<String>,
    /// Headers sent to the MCP server (credentials among them).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The GitHub token.
    #[serde(default)]
    pub token: Option<String>,
    /// How the MCP server's tools are named (`on_collision` if absent).
    #[serde(default)]
    pub prefix: Prefix,
    /// Longest a call may take, in milliseconds (30,000 if absent; at most 300,000).
    #[serde(default)]
    pub call_timeout_ms: Option<u64>,
}

impl std::fmt::Debug for SourceInput {
    /// Never shows a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceInput")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A source as the API shows it: never its credentials, only their names.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub struct SourceView {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: SourceKind,
    /// Where it is (for a command, the program).
    pub url: String,
    /// How its tools are named.
    pub prefix: Prefix,
    /// Names of the credentials it holds.
    pub secret_names: Vec<String>,
    /// Whether the operator configured it (tenants cannot change it).
    pub operator: bool,
    /// An MCP server's connection.
    #[cfg(feature = "federation")]
    pub status: Option<super::UpstreamStatus>,
    /// The names its tools go by now.
    pub tools: Vec<String>,
    /// Its tools left out because their names were taken (prefix `never`).
    pub conflicts: Vec<String>,
}

/// Why a source cannot be registered as asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A request outside the rules.
    #[error("{0}")]
    Invalid(String),
    /// Credentials given, but no key to seal them with.
    #[error(
        "this service has no secret key configured (MESH_SECRET_KEY), so it stores no credentials"
    )]
    NoSecretKey,
    /// No stores to keep sources in.
    #[error("this service keeps no tool sources")]
    NoStore,
    /// The operator's source of that name.
    #[error("{0} is the operator's tool source")]
    Taken(String),
    /// Tools whose names are taken, from a source whose prefix is `never`.
    #[error("tool names already taken (choose prefix `always` or `on_collision`): {}", .0.join(", "))]
    Conflict(Vec<String>),
    /// The MCP server did not answer.
    #[error("the MCP server did not answer: {0}")]
    Unreachable(String),
    /// Sealed credentials that do not open.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The stores failed.
    #[error("storage: {0}")]
    Store(#[from] mesh_store::StoreError),
    /// Listing the tenant's tools failed.
    #[error(transparent)]
    Tool(#[from] ToolError),
}

impl SourceError {
    /// A stable code: `invalid_request`, `conflict`, `upstream_failed`, `unavailable`
    /// or `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) | Self::NoSecretKey | Self::NoStore => "invalid_request",
            Self::Taken(_) | Self::Conflict(_) => "conflict",
            Self::Unreachable(_) => "upstream_failed",
            Self::Tool(e) => e.code(),
            Self::Store(e) if e.is_retryable() => "unavailable",
            Self::Secret(_) | Self::Store(_) => "internal",
        }
    }
}

impl SourceInput {
    /// The longest call timeout a source may ask for.
    pub const MAX_CALL_TIMEOUT_MS: u64 = 300_000;

    /// The record to store: checked, its credentials sealed under `key`.
    pub(super) fn into_record(
        self,
        tenant: TenantId,
        name: &str,
        key: Option<&SecretKey>,
    ) -> Result<ToolSource, SourceError> {
        if !ToolSource::valid_name(name) {
            return Err(SourceError::Invalid(format!(
                "a tool source's name is 1 to {} of a-z, 0-9, _ and - (without \"__\"): {name:?}",
                ToolSource::MAX_NAME_LEN
            )));
        }
        let timeout = self.call_timeout_ms.unwrap_or(30_000);
        if !(1..=Self::MAX_CALL_TIMEOUT_MS).contains(&timeout) {
            return Err(SourceError::Invalid(format!(
                "call_timeout_ms is 1 to {}",
                Self::MAX_CALL_TIMEOUT_MS
            )));
        }
        let (url, secrets) = match self.kind {
            SourceKind::Mcp => {
                if self.token.is_some() {
                    return Err(SourceError::Invalid(
                        "an MCP server takes headers, not a token".into(),
                    ));
                }
                let url = self
                    .url
                    .ok_or_else(|| SourceError::Invalid("an MCP server needs its url".into()))?;
                (url, self.headers)
            }
            SourceKind::Github => {
                if !self.headers.is_empty() {
                    return Err(SourceError::Invalid(
                        "GitHub takes a token, not headers".into(),
                    ));
                }
                let url = self.url.unwrap_or_else(|| "https://api.github.com".into());
                (
                    url,
                    self.token
                        .map(|t| ("token".to_owned(), t))
                        .into_iter()
                        .collect(),
                )
            }
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2_048 {
            return Err(SourceError::Invalid(format!(
                "url must be http(s), at most 2048 bytes: {url:?}"
            )));
        }
        let id = ToolSource::id_of(tenant, name);
        let sealed = if secrets.is_empty() {
            None
        } else {
            let key = key.ok_or(SourceError::NoSecretKey)?;
            let plain = serde_json::to_vec(&secrets).unwrap_or_default();
            Some(key.seal(&plain, id.as_bytes()))
        };
        Ok(ToolSource {
            id,
            tenant_id: tenant,
            name: name.to_owned(),
            kind: self.kind,
            url,
            prefix: self.prefix,
            call_timeout_ms: timeout,
            secret_names: secrets.keys().cloned().collect(),
            sealed,
            updated_at: chrono::Utc::now(),
        })
    }
}

/// One tool a tenant can call, under the name it is called by.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) source: Option<String>,
    pub(super) target: Target,
}

/// What a tenant sees: tools by name, and the tools each source could not name.
#[derive(Default)]
pub(super) struct Catalog {
    pub(super) entries: BTreeMap<String, Entry>,
    pub(super) conflicts: HashMap<String, Vec<String>>,
}

/// What a running source offers now.
#[cfg_attr(not(feature = "federation"), allow(dead_code))]
pub(super) enum Offer {
    /// One adapter, under the source's name.
    Adapter(Target),
    /// An MCP server's tools, by their own names. While it is `up` they are listed;
    /// while it is down they are not, but their names still count as taken, so other
    /// sources' `on_collision` names do not move with its restarts.
    Tools {
        tools: Vec<(String, Target)>,
        up: bool,
    },
}

/// What a tool name runs.
#[derive(Clone)]
pub(super) enum Target {
    /// An adapter's actions.
    Adapter(Arc<dyn ToolAdapter>),
    /// An MCP server's tool.
    #[cfg(feature = "federation")]
    Mcp {
        /// The server.
        upstream: Arc<super::Upstream>,
        /// The tool, as the server lists it.
        tool: Arc<rmcp::model::Tool>,
    },
}

impl Target {
    /// As clients see it, under `name`.
    pub(super) fn info(&self, name: &str, source: Option<String>) -> ToolInfo {
        match self {
            Self::Adapter(adapter) => super::info(adapter.as_ref(), name, source),
            #[cfg(feature = "federation")]
            Self::Mcp { tool, .. } => ToolInfo {
                name: name.to_owned(),
                description: tool.description.as_deref().unwrap_or_default().to_owned(),
                capabilities: Vec::new(),
                actions: vec![call_action(
                    tool.description.as_deref().unwrap_or_default(),
                    Value::Object((*tool.input_schema).clone()),
                    mcp_idempotent(tool),
                )],
                source,
            },
        }
    }

    /// Whether `action` is idempotent (its result may be cached), if it exists.
    pub(super) fn idempotent(&self, action: &str) -> Result<bool, ToolError> {
        match self {
            Self::Adapter(adapter) => adapter
                .actions()
                .into_iter()
                .find(|a| a.name == action)
                .map(|a| a.idempotent)
                .ok_or_else(|| ToolError::UnknownAction(action.to_owned())),
            #[cfg(feature = "federation")]
            Self::Mcp { tool, .. } if action == CALL => Ok(mcp_idempotent(tool)),
            #[cfg(feature = "federation")]
            Self::Mcp { .. } => Err(ToolError::UnknownAction(action.to_owned())),
        }
    }

    /// Runs `action`: an adapter's answer; an MCP tool's structured content (or its
    /// content blocks), or its error.
    pub(super) async fn run(&self, action: &str, input: Value) -> Result<Value, ToolError> {
        match self {
            Self::Adapter(adapter) => adapter.execute(action, input).await,
            #[cfg(feature = "federation")]
            Self::Mcp { upstream, tool } => {
                let result = upstream.call(&tool.name, input).await?;
                if result.is_error == Some(true) {
                    let text = serde_json::to_string(&result.content).unwrap_or_default();
                    return Err(ToolError::Failed(text));
                }
                Ok(result
                    .structured_content
                    .unwrap_or_else(|| json!({ "content": result.content })))
            }
        }
    }
}

/// Whether the server says calling `tool` twice with the same input does no more.
#[cfg(feature = "federation")]
pub(super) fn mcp_idempotent(tool: &rmcp::model::Tool) -> bool {
    tool.annotations
        .as_ref()
        .and_then(|a| a.idempotent_hint)
        .unwrap_or(false)
}

enum Body {
    // Built only for the GitHub adapter (feature `github`).
    #[cfg_attr(not(feature = "github"), allow(dead_code))]
    Adapter(Arc<dyn ToolAdapter>),
    #[cfg(feature = "federation")]
    Mcp(Arc<super::Upstream>),
}

/// A source with its credentials opened: an adapter, or a connection.
pub(super) struct Live {
    name: String,
    record: Option<ToolSource>,
    kind: SourceKind,
    url: String,
    prefix: Prefix,
    secret_names: Vec<String>,
    body: Body,
}

impl Live {
    /// A tenant's stored source, started.
    #[cfg_attr(
        not(any(feature = "github", feature = "federation")),
        allow(unreachable_code, unused_variables)
    )]
    pub(super) fn of(record: &ToolSource, config: &ToolsConfig) -> Result<Self, SourceError> {
        let secrets: BTreeMap<String, String> = match (&record.sealed, &config.secret_key) {
            (None, _) => BTreeMap::new(),
            (Some(_), None) => return Err(SourceError::NoSecretKey),
            (Some(sealed), Some(key)) => {
                let plain = key.open(sealed, record.id.as_bytes())?;
                serde_json::from_slice(&plain).map_err(|_| SecretError::Unopenable)?
            }
        };
        let body = match record.kind {
            #[cfg(feature = "github")]
            SourceKind::Github => Body::Adapter(Arc::new(
                super::GitHubAdapter::new(record.url.clone(), secrets.get("token").cloned())
                    .named(record.name.clone()),
            )),
            #[cfg(feature = "federation")]
            SourceKind::Mcp => {
                let mut timings = config.timings;
                timings.call_timeout = Duration::from_millis(record.call_timeout_ms);
                let transport = super::Transport::Http {
                    url: record.url.clone(),
                    headers: secrets,
                };
                Body::Mcp(Arc::new(super::Upstream::start(
                    &record.name,
                    transport,
                    timings,
                )))
            }
            #[allow(unreachable_patterns)]
            kind => {
                let _ = secrets;
                return Err(SourceError::Invalid(format!(
                    "this build of Mesh has no {kind:?} tool sources"
                )));
            }
        };
        Ok(Self {
            name: record.name.clone(),
            record: Some(record.clone()),
            kind: record.kind,
            url: record.url.clone(),
            prefix: record.prefix,
            secret_names: record.secret_names.clone(),
            body,
        })
    }

    /// An operator's configured source, started.
    pub(super) fn operator(
        source: &OperatorSource,
        config: &ToolsConfig,
    ) -> Result<Self, SourceError> {
        if !ToolSource::valid_name(&source.name) {
            return Err(SourceError::Invalid(format!(
                "a bad tool source name: {:?}",
                source.name
            )));
        }
        #[cfg(feature = "federation")]
        {
            let (transport, url, secret_names) = match (&source.url, source.command.is_empty()) {
                (Some(url), true) => (
                    super::Transport::Http {
                        url: url.clone(),
                        headers: source.headers.clone(),
                    },
                    url.clone(),
                    source.headers.keys().cloned().collect(),
                ),
                (None, false) => (
                    super::Transport::Stdio {
                        command: source.command.clone(),
                        env: source.env.clone(),
                    },
                    format!("stdio:{}", source.command[0]),
                    source.env.keys().cloned().collect(),
                ),
                _ => {
                    return Err(SourceError::Invalid(format!(
                        "tool source {} needs exactly one of command and url",
                        source.name
                    )));
                }
            };
            let upstream = super::Upstream::start(&source.name, transport, config.timings);
            Ok(Self {
                name: source.name.clone(),
                record: None,
                kind: SourceKind::Mcp,
                url,
                prefix: source.prefix,
                secret_names,
                body: Body::Mcp(Arc::new(upstream)),
            })
        }
        #[cfg(not(feature = "federation"))]
        {
            let _ = config;
            Err(SourceError::Invalid(
                "this build of Mesh has no MCP tool sources (feature `federation`)".into(),
            ))
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn record(&self) -> Option<&ToolSource> {
        self.record.as_ref()
    }

    pub(super) fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// Waits for an MCP server to answer (at most `within`).
    #[cfg_attr(not(feature = "federation"), allow(unused_variables))]
    pub(super) async fn ready(&self, within: Duration) -> Result<(), SourceError> {
        match &self.body {
            Body::Adapter(_) => Ok(()),
            #[cfg(feature = "federation")]
            Body::Mcp(upstream) => {
                if !upstream.ready(within).await {
                    let why = upstream
                        .status()
                        .last_error
                        .unwrap_or_else(|| "no answer".into());
                    return Err(SourceError::Unreachable(why));
                }
                upstream
                    .tools()
                    .await
                    .map(|_| ())
                    .map_err(|e| SourceError::Unreachable(e.to_string()))
            }
        }
    }

    /// What it offers now; for an MCP server that is down, the tools it last listed
    /// (marked down), or `None` if it never listed any.
    pub(super) async fn offer(&self) -> Option<Offer> {
        match &self.body {
            Body::Adapter(adapter) => Some(Offer::Adapter(Target::Adapter(adapter.clone()))),
            #[cfg(feature = "federation")]
            Body::Mcp(upstream) => {
                let (tools, up) = match upstream.tools().await {
                    Ok(tools) => (tools, true),
                    Err(_) => (upstream.last_listed()?, false),
                };
                let tools = tools
                    .iter()
                    .map(|tool| {
                        let target = Target::Mcp {
                            upstream: upstream.clone(),
                            tool: Arc::new(tool.clone()),
                        };
                        (tool.name.to_string(), target)
                    })
                    .collect();
                Some(Offer::Tools { tools, up })
            }
        }
    }

    /// As the API shows it, its tools named as in `catalog`.
    pub(super) fn view(&self, operator: bool, catalog: &Catalog) -> SourceView {
        let tools = catalog
            .entries
            .iter()
            .filter(|(_, e)| e.source.as_deref() == Some(&self.name))
            .map(|(name, _)| name.clone())
            .collect();
        SourceView {
            name: self.name.clone(),
            kind: self.kind,
            url: self.url.clone(),
            prefix: self.prefix,
            secret_names: self.secret_names.clone(),
            operator,
            #[cfg(feature = "federation")]
            status: match &self.body {
                Body::Mcp(upstream) => Some(upstream.status()),
                Body::Adapter(_) => None,
            },
            tools,
            conflicts: catalog
                .conflicts
                .get(&self.name)
                .cloned()
                .unwrap_or_default(),
        }
    }
}
