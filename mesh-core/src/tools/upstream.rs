//! One external MCP server as a tool source: a supervised rmcp client connection over
//! stdio (a command Mesh starts, restarted with backoff when it dies) or Streamable
//! HTTP (with headers). Its `tools/list` is cached for a TTL and dropped the moment
//! the server says `notifications/tools/list_changed`; while it is down its tools are
//! unavailable and nothing else is affected.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    Implementation, Tool,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::ToolError;

/// How Mesh reaches an MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A command Mesh starts and talks to over its stdin and stdout: the program, its
    /// arguments, and environment variables to set.
    Stdio {
        /// Program and arguments.
        command: Vec<String>,
        /// Extra environment variables (secrets among them are never shown).
        env: BTreeMap<String, String>,
    },
    /// Streamable HTTP at `url`, every request carrying `headers`.
    Http {
        /// The MCP endpoint.
        url: String,
        /// Headers sent with every request (credentials among them are never shown).
        headers: BTreeMap<String, String>,
    },
}

/// How long things may take, and how long a list is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamTimings {
    /// Longest a `tools/call` may take before it is cancelled upstream.
    pub call_timeout: Duration,
    /// How long an upstream `tools/list` answer is reused.
    pub list_ttl: Duration,
    /// Longest wait for a connection (or a `tools/list`).
    pub connect_timeout: Duration,
    /// Longest wait between reconnection attempts (backoff doubles from 100 ms).
    pub max_backoff: Duration,
}

impl Default for UpstreamTimings {
    /// Calls 30 s, lists trusted 60 s, connections 10 s, backoff up to 30 s.
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            list_ttl: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Where a connection stands, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// Connecting (the first time or again).
    Connecting,
    /// Connected: its tools are available.
    Up,
    /// Down: its tools are unavailable until it comes back.
    Down,
}

/// A connection's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
pub struct UpstreamStatus {
    /// Where it stands.
    pub state: UpstreamState,
    /// Why it last went down or failed to connect.
    pub last_error: Option<String>,
    /// How many times it was (re)connected after the first.
    pub restarts: u32,
    /// How many times Mesh asked it for `tools/list`.
    pub list_calls: u64,
}

/// What the supervisor and the callers share.
struct Shared {
    status: Mutex<UpstreamStatus>,
    peer: Mutex<Option<rmcp::Peer<RoleClient>>>,
    /// The cached list and when it was fetched; `None` after `list_changed`.
    tools: Mutex<Option<(Arc<Vec<Tool>>, Instant)>>,
    /// The last list the server gave, kept while it is down: its names still count
    /// when others' tools are named, so they do not move when it restarts.
    last_listed: Mutex<Option<Arc<Vec<Tool>>>>,
    /// One refresh at a time: concurrent callers wait for it and share its answer.
    refreshing: tokio::sync::Mutex<()>,
    /// When a list last failed: for a while callers do not wait on the server again.
    failed: Mutex<Option<Instant>>,
    /// Bumped on every `list_changed` (so a refresh under way is not trusted).
    generation: std::sync::atomic::AtomicU64,
    changed: tokio::sync::watch::Sender<u64>,
}

/// One external MCP server, connected and supervised. Dropping it stops the
/// connection (and the command, for stdio).
pub struct Upstream {
    name: String,
    timings: UpstreamTimings,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("status", &self.status())
            .finish()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Hears the server's notifications.
#[derive(Clone)]
struct Listener {
    shared: Arc<Shared>,
}

impl ClientHandler for Listener {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.shared.invalidate();
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mesh", env!("CARGO_PKG_VERSION")),
        )
    }
}

impl Shared {
    fn invalidate(&self) {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        *lock(&self.tools) = None;
        *lock(&self.failed) = None;
        self.changed.send_replace(generation);
    }

    fn set(&self, state: UpstreamState, error: Option<String>) {
        {
            let mut status = lock(&self.status);
            status.state = state;
            if error.is_some() {
                status.last_error = error;
            }
        }
        self.changed.send_modify(|seen| *seen += 1);
    }
}

impl Upstream {
    /// Connects to the server named `name` over `transport` (in the background: the
    /// first connection and every reconnection), on the current Tokio runtime.
    pub fn start(name: impl Into<String>, transport: Transport, timings: UpstreamTimings) -> Self {
        let shared = Arc::new(Shared {
            status: Mutex::new(UpstreamStatus {
                state: UpstreamState::Connecting,
                last_error: None,
                restarts: 0,
                list_calls: 0,
            }),
            peer: Mutex::new(None),
            tools: Mutex::new(None),
            last_listed: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            failed: Mutex::new(None),
            generation: Default::default(),
            changed: tokio::sync::watch::channel(0).0,
        });
        let stop = CancellationToken::new();
        let name = name.into();
        tokio::spawn(supervise(
            name.clone(),
            transport,
            timings,
            shared.clone(),
            stop.clone(),
        ));
        Self {
            name,
            timings,
            shared,
            stop,
        }
    }

    /// The server's name (its source's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its health now.
    pub fn status(&self) -> UpstreamStatus {
        lock(&self.shared.status).clone()
    }

    /// A receiver that sees a new value whenever the server's tools change (a
    /// `list_changed` notification or a reconnection).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Waits until the server is connected, at most `within` and no longer than its
    /// first failed attempt; whether it is.
    pub async fn ready(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut changes = self.changes();
        loop {
            if lock(&self.shared.peer).is_some() {
                return true;
            }
            if self.status().state == UpstreamState::Down {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, changes.changed()).await.is_err() {
                return lock(&self.shared.peer).is_some();
            }
        }
    }

    /// How long a failed list is remembered: a server that hangs delays one caller
    /// per this long, not every caller.
    pub const RETRY_LIST_AFTER: Duration = Duration::from_secs(5);

    /// Its tools: the cached list while fresh, else asked for (once, however many
    /// callers ask together). Unavailable while it is down, and for
    /// [`RETRY_LIST_AFTER`](Self::RETRY_LIST_AFTER) after a list failed.
    pub async fn tools(&self) -> Result<Arc<Vec<Tool>>, ToolError> {
        if let Some(tools) = self.fresh() {
            return Ok(tools);
        }
        let _one = self.shared.refreshing.lock().await;
        if let Some(tools) = self.fresh() {
            return Ok(tools);
        }
        if lock(&self.shared.failed).is_some_and(|at| at.elapsed() < Self::RETRY_LIST_AFTER) {
            return Err(self.unavailable("its last tools/list failed; trying again shortly"));
        }
        let listed = self.list().await;
        *lock(&self.shared.failed) = listed.is_err().then(Instant::now);
        listed
    }

    /// The last list the server gave (however old), if it ever gave one.
    pub fn last_listed(&self) -> Option<Arc<Vec<Tool>>> {
        lock(&self.shared.last_listed).clone()
    }

    async fn list(&self) -> Result<Arc<Vec<Tool>>, ToolError> {
        let peer = self.peer()?;
        let generation = self
            .shared
            .generation
            .load(std::sync::atomic::Ordering::SeqCst);
        lock(&self.shared.status).list_calls += 1;
        let listed = tokio::time::timeout(self.timings.connect_timeout, peer.list_all_tools())
            .await
            .map_err(|_| self.unavailable("tools/list timed out"))?
            .map_err(|e| self.unavailable(&e.to_string()))?;
        let tools = Arc::new(listed);
        // A list_changed that arrived meanwhile makes this answer stale already.
        if self
            .shared
            .generation
            .load(std::sync::atomic::Ordering::SeqCst)
            == generation
        {
            *lock(&self.shared.tools) = Some((tools.clone(), Instant::now()));
        }
        *lock(&self.shared.last_listed) = Some(tools.clone());
        Ok(tools)
    }

    /// Calls its tool `tool` with `arguments`; cancelled upstream (the request's
    /// `notifications/cancelled`) when the timeout passes or the caller gives up.
    pub async fn call(&self, tool: &str, arguments: Value) -> Result<CallToolResult, ToolError> {
        let peer = self.peer()?;
        let arguments = match arguments {
            Value::Object(map) => map,
            Value::Null => Default::default(),
            other => {
                return Err(ToolError::InvalidInput(format!(
                    "a tool's arguments are a JSON object, not {other}"
                )));
            }
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let answer = tokio::time::timeout(self.timings.call_timeout, peer.call_tool_once(params))
            .await
            .map_err(|_| ToolError::TimedOut(self.timings.call_timeout))?
            .map_err(|e| self.unavailable(&e.to_string()))?;
        match answer {
            CallToolResponse::Complete(result) => Ok(result),
            _ => Err(ToolError::Unavailable(format!(
                "{} answered with a result Mesh does not relay (input required or a task)",
                self.name
            ))),
        }
    }

    fn fresh(&self) -> Option<Arc<Vec<Tool>>> {
        match &*lock(&self.shared.tools) {
            Some((tools, at)) if at.elapsed() < self.timings.list_ttl => Some(tools.clone()),
            _ => None,
        }
    }

    fn peer(&self) -> Result<rmcp::Peer<RoleClient>, ToolError> {
        lock(&self.shared.peer).clone().ok_or_else(|| {
            let status = self.status();
            let why = status.last_error.unwrap_or_else(|| "connecting".into());
            ToolError::Unavailable(format!("MCP server {} is down: {why}", self.name))
        })
    }

    fn unavailable(&self, why: &str) -> ToolError {
        ToolError::Unavailable(format!("MCP server {}: {why}", self.name))
    }
}

/// Connects, waits for the connection to end, and connects again with backoff, until
/// stopped.
async fn supervise(
    name: String,
    transport: Transport,
    timings: UpstreamTimings,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0u32;
    while !stop.is_cancelled() {
        if attempts > 0 {
            lock(&shared.status).restarts += 1;
        }
        attempts += 1;
        shared.set(UpstreamState::Connecting, None);
        let connected = tokio::select! {
            _ = stop.cancelled() => break,
            connected = tokio::time::timeout(timings.connect_timeout, connect(&transport, &shared)) => connected,
        };
        match connected {
            Ok(Ok(running)) => {
                backoff = Duration::from_millis(100);
                *lock(&shared.peer) = Some(running.peer().clone());
                shared.set(UpstreamState::Up, None);
                shared.invalidate();
                tracing::info!(server = %name, "MCP server connected");
                let token = running.cancellation_token();
                let ended = tokio::select! {
                    _ = stop.cancelled() => { token.cancel(); break }
                    ended = running.waiting() => ended,
                };
                *lock(&shared.peer) = None;
                let why = format!("connection ended: {ended:?}");
                tracing::warn!(server = %name, %why, "MCP server went away");
                shared.set(UpstreamState::Down, Some(why));
                shared.invalidate();
            }
            Ok(Err(e)) => shared.set(UpstreamState::Down, Some(e)),
            Err(_) => shared.set(UpstreamState::Down, Some("connecting timed out".into())),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(timings.max_backoff);
    }
    *lock(&shared.peer) = None;
}

async fn connect(
    transport: &Transport,
    shared: &Arc<Shared>,
) -> Result<RunningService<RoleClient, Listener>, String> {
    let listener = Listener {
        shared: shared.clone(),
    };
    match transport {
        Transport::Stdio { command, env } => {
            let (program, args) = command
                .split_first()
                .ok_or_else(|| "an empty command".to_owned())?;
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args).envs(env).kill_on_drop(true);
            let (child, _) = rmcp::transport::TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {program}: {e}"))?;
            listener.serve(child).await.map_err(|e| e.to_string())
        }
        Transport::Http { url, headers } => {
            use rmcp::transport::StreamableHttpClientTransport;
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            let mut custom = std::collections::HashMap::new();
            for (name, value) in headers {
                let name = reqwest::header::HeaderName::try_from(name.as_str())
                    .map_err(|_| format!("a header name that is not valid: {name:?}"))?;
                let value = reqwest::header::HeaderValue::try_from(value.as_str())
                    .map_err(|_| format!("header {name}'s value is not valid"))?;
                custom.insert(name, value);
            }
            let config =
                StreamableHttpClientTransportConfig::with_uri(url.clone()).custom_headers(custom);
            let transport = StreamableHttpClientTransport::from_config(config);
            listener.serve(transport).await.map_err(|e| e.to_string())
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
