//! The tools service: what each tenant may call — the operator's adapters, the
//! tenant's own sources (adapters with its credentials, external MCP servers) and the
//! operator's configured MCP servers — named without collisions, run under rate
//! limits, with idempotent results cached.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mesh_store::{DynRepository, Query};
use serde_json::Value;

use super::config::ToolsConfig;
use super::limits::Counters;
use super::sources::{Catalog, Entry, Live, Offer, SourceError, SourceInput, SourceView, Target};
use super::{ToolError, ToolInfo, ToolRegistry};
use crate::domain::{Prefix, TenantId, ToolSource};
use crate::engine::Engine;

/// Names Mesh's own MCP server gives its tools: a federated tool never takes one.
pub const RESERVED: &[&str] = &[
    "list_agents",
    "submit_task",
    "get_task",
    "cancel_task",
    "run_collab",
    "get_collab_job",
    "cancel_collab_job",
    "index_document",
    "search",
    "execute_tool",
    "register_workflow",
    "start_workflow",
    "get_workflow",
    "list_workflows",
    "cancel_workflow",
    "signal_workflow",
    "resume_workflow",
    "retry_workflow",
    "workflow_history",
    "fork_workflow",
    "register_mcp_server",
];

/// Who a call is charged to.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The tenant.
    pub tenant: TenantId,
    /// The API key or JWT subject, when a caller has one (workflows do not).
    pub key: Option<&'a str>,
}

/// A tenant's sources as last read from the stores.
struct Loaded {
    at: Instant,
    sources: BTreeMap<String, Arc<Live>>,
}

struct Inner {
    registry: Arc<ToolRegistry>,
    store: Option<Arc<dyn DynRepository<ToolSource>>>,
    counters: Counters,
    config: ToolsConfig,
    operator: Vec<(Option<TenantId>, Arc<Live>)>,
    tenants: Mutex<HashMap<TenantId, Loaded>>,
}

/// The tools service. Cheap to clone.
#[derive(Clone)]
pub struct Tools {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tools")
            .field("registry", &self.inner.registry)
            .field("shared_limits", &self.inner.counters.shared())
            .finish_non_exhaustive()
    }
}

impl Default for Tools {
    fn default() -> Self {
        Self::new(ToolRegistry::new())
    }
}

impl From<ToolRegistry> for Tools {
    fn from(registry: ToolRegistry) -> Self {
        Self::new(registry)
    }
}

impl From<Arc<ToolRegistry>> for Tools {
    fn from(registry: Arc<ToolRegistry>) -> Self {
        Self::new(Arc::unwrap_or_clone(registry))
    }
}

impl Tools {
    /// How long a tenant's sources are trusted without reading them again (a source
    /// registered on another instance is seen here within this).
    pub const RELOAD: Duration = Duration::from_secs(30);
    /// The most sources one tenant registers.
    pub const MAX_SOURCES: usize = 50;

    /// The operator's adapters for every tenant; no stored sources, default limits.
    pub fn new(registry: ToolRegistry) -> Self {
        Self::build(registry, None, Counters::local(), ToolsConfig::default())
    }

    /// The operator's adapters, tenants' sources kept in `engine`'s stores, limits
    /// counted in this process. Starts the operator's MCP servers (on the current
    /// Tokio runtime).
    pub fn start(engine: &Engine, registry: ToolRegistry, config: ToolsConfig) -> Self {
        let store = engine.journal().tool_sources.clone();
        Self::build(registry, Some(store), Counters::local(), config)
    }

    /// As [`start`](Self::start), with limits and cached results shared through the
    /// Redis at `redis_url` by every instance configured with it.
    #[cfg(feature = "redis")]
    pub async fn start_shared(
        engine: &Engine,
        registry: ToolRegistry,
        config: ToolsConfig,
        redis_url: &str,
    ) -> Result<Self, redis::RedisError> {
        let counters = Counters::redis(redis_url).await?;
        let store = engine.journal().tool_sources.clone();
        Ok(Self::build(registry, Some(store), counters, config))
    }

    fn build(
        registry: ToolRegistry,
        store: Option<Arc<dyn DynRepository<ToolSource>>>,
        counters: Counters,
        config: ToolsConfig,
    ) -> Self {
        let operator = config
            .operator_sources
            .iter()
            .filter_map(|source| match Live::operator(source, &config) {
                Ok(live) => Some((source.tenant, Arc::new(live))),
                Err(e) => {
                    tracing::error!(source = %source.name, error = %e, "tool source not started");
                    None
                }
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                registry: Arc::new(registry),
                store,
                counters,
                config,
                operator,
                tenants: Mutex::default(),
            }),
        }
    }

    /// The operator's adapters.
    pub fn registry(&self) -> &ToolRegistry {
        &self.inner.registry
    }

    /// Whether limits and cached results are shared through Redis.
    pub fn shared(&self) -> bool {
        self.inner.counters.shared()
    }

    /// Every tool `tenant` can call now, as clients see it (a source that is down
    /// shows none of its tools).
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<ToolInfo>, ToolError> {
        let catalog = self.catalog(tenant).await?;
        Ok(catalog
            .entries
            .iter()
            .map(|(name, entry)| entry.target.info(name, entry.source.clone()))
            .collect())
    }

    /// Runs `action` of the tool `name` for `caller`: the tool's answer, within the
    /// limits, from the cache for an idempotent tool's repeated call.
    pub async fn execute(
        &self,
        caller: Caller<'_>,
        name: &str,
        action: &str,
        input: Value,
    ) -> Result<Value, ToolError> {
        let entry = self.find(caller.tenant, name).await?;
        let idempotent = entry.target.idempotent(action)?;
        self.charge(caller, name).await?;
        let key = idempotent.then(|| cache_key(caller.tenant, name, action, &input));
        if let Some(key) = &key
            && let Some(hit) = self.inner.counters.cached(key).await
        {
            metrics::counter!("mesh_tool_cache_hits_total", "tool" => name.to_owned()).increment(1);
            return Ok(hit);
        }
        let output = super::instrumented(name, action, entry.target.run(action, input)).await?;
        if let Some(key) = &key {
            let ttl = self.inner.config.limits.cache_ttl;
            self.inner.counters.keep(key, &output, ttl).await;
        }
        Ok(output)
    }

    /// The tool `name` of `tenant`.
    pub(super) async fn find(&self, tenant: TenantId, name: &str) -> Result<Entry, ToolError> {
        let mut catalog = self.catalog(tenant).await?;
        catalog
            .entries
            .remove(name)
            .ok_or_else(|| ToolError::UnknownTool(name.to_owned()))
    }

    /// Charges a call of `tool` to `caller`'s buckets.
    pub(super) async fn charge(&self, caller: Caller<'_>, tool: &str) -> Result<(), ToolError> {
        let limits = &self.inner.config.limits;
        let tenant = caller.tenant;
        let buckets: Vec<_> = [
            limits.per_tenant.map(|r| (format!("tenant:{tenant}"), r)),
            limits
                .per_key
                .zip(caller.key)
                .map(|(r, key)| (format!("key:{tenant}:{key}"), r)),
            limits
                .per_tool
                .map(|r| (format!("tool:{tenant}:{tool}"), r)),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.inner.counters.take(&buckets).await.map_err(|wait| {
            metrics::counter!("mesh_tool_calls_limited_total").increment(1);
            ToolError::RateLimited { retry_after: wait }
        })
    }

    /// `tenant`'s sources (the operator's for it first), with their health and the
    /// names their tools go by.
    pub async fn sources(&self, tenant: TenantId) -> Result<Vec<SourceView>, ToolError> {
        let sources = self.live_sources(tenant).await?;
        let catalog = self.name(&sources).await;
        let mut views: Vec<SourceView> = sources
            .into_iter()
            .map(|(operator, live)| live.view(operator, &catalog))
            .collect();
        views.sort_by_key(|v| (!v.operator, v.name.clone()));
        Ok(views)
    }

    /// Registers (or replaces) `tenant`'s source `name`: its credentials sealed, an MCP
    /// server reached and its tools named before anything is stored. Whether it is new.
    pub async fn register(
        &self,
        tenant: TenantId,
        name: &str,
        input: SourceInput,
    ) -> Result<(SourceView, bool), SourceError> {
        let store = self.inner.store.as_ref().ok_or(SourceError::NoStore)?;
        if self
            .inner
            .operator
            .iter()
            .any(|(_, live)| live.name() == name)
        {
            return Err(SourceError::Taken(name.to_owned()));
        }
        let record = input.into_record(tenant, name, self.inner.config.secret_key.as_ref())?;
        let live = Arc::new(Live::of(&record, &self.inner.config)?);
        live.ready(self.connect_timeout()).await?;
        // Named beside what the tenant has now, without the source it replaces.
        let mut sources = self.live_sources(tenant).await?;
        sources.retain(|(operator, l)| *operator || l.name() != name);
        sources.push((false, live.clone()));
        let catalog = self.name(&sources).await;
        if let Some(conflicts) = catalog.conflicts.get(name)
            && !conflicts.is_empty()
        {
            return Err(SourceError::Conflict(conflicts.clone()));
        }
        let key = tenant.to_string();
        let created = match store.get(&key, record.id).await? {
            Some(stored) => {
                store.update(&key, &record, stored.version).await?;
                false
            }
            None => {
                let count = self.stored(tenant).await?.len();
                if count >= Self::MAX_SOURCES {
                    return Err(SourceError::Invalid(format!(
                        "a tenant registers at most {} tool sources",
                        Self::MAX_SOURCES
                    )));
                }
                store.create(&key, &record).await?;
                true
            }
        };
        let view = live.view(false, &catalog);
        let mut tenants = self.lock();
        if let Some(loaded) = tenants.get_mut(&tenant) {
            loaded.sources.insert(name.to_owned(), live);
        }
        Ok((view, created))
    }

    /// Removes `tenant`'s source `name` (its connection closes); whether it existed.
    pub async fn remove(&self, tenant: TenantId, name: &str) -> Result<bool, SourceError> {
        let store = self.inner.store.as_ref().ok_or(SourceError::NoStore)?;
        let existed = store
            .delete(&tenant.to_string(), ToolSource::id_of(tenant, name))
            .await?;
        if let Some(loaded) = self.lock().get_mut(&tenant) {
            loaded.sources.remove(name);
        }
        Ok(existed)
    }

    fn connect_timeout(&self) -> Duration {
        #[cfg(feature = "federation")]
        return self.inner.config.timings.connect_timeout;
        #[cfg(not(feature = "federation"))]
        Duration::from_secs(10)
    }

    /// Every tool `tenant` can call, by name.
    pub(super) async fn catalog(&self, tenant: TenantId) -> Result<Catalog, ToolError> {
        let sources = self.live_sources(tenant).await?;
        Ok(self.name(&sources).await)
    }

    /// Names every tool: the operator's adapters and `tenant`'s adapter sources by
    /// their own names (a tenant's source shadows the operator's adapter of that
    /// name), then MCP tools by their sources' prefix rules. A server that is down
    /// lists none, yet the names it last listed still count as contested.
    async fn name(&self, sources: &[(bool, Arc<Live>)]) -> Catalog {
        let mut catalog = Catalog::default();
        for adapter in self.inner.registry.adapters() {
            let entry = Entry {
                source: None,
                target: Target::Adapter(adapter.clone()),
            };
            catalog.entries.insert(adapter.name().to_owned(), entry);
        }
        let mut offered = Vec::new();
        for (_, live) in sources {
            match live.offer().await {
                Some(Offer::Adapter(target)) => {
                    let entry = Entry {
                        source: Some(live.name().to_owned()),
                        target,
                    };
                    catalog.entries.insert(live.name().to_owned(), entry);
                }
                Some(Offer::Tools { tools, up }) => offered.push((live, tools, up)),
                None => {}
            }
        }
        let mut plain_count: HashMap<String, usize> = HashMap::new();
        for (_, tools, _) in &offered {
            for (tool, _) in tools {
                *plain_count.entry(tool.clone()).or_default() += 1;
            }
        }
        let taken = |name: &str, catalog: &Catalog| {
            RESERVED.contains(&name) || catalog.entries.contains_key(name)
        };
        for (live, tools, up) in offered {
            if !up {
                continue;
            }
            let mut conflicts = Vec::new();
            for (tool, target) in tools {
                let prefixed = format!("{}{}{tool}", live.name(), ToolSource::SEPARATOR);
                let clash = plain_count.get(&tool).copied().unwrap_or(0) > 1
                    || RESERVED.contains(&tool.as_str())
                    || catalog.entries.contains_key(&tool);
                let name = match (live.prefix(), clash) {
                    (Prefix::Always, _) | (Prefix::OnCollision, true) => prefixed,
                    (Prefix::OnCollision | Prefix::Never, false) => tool.clone(),
                    (Prefix::Never, true) => {
                        conflicts.push(tool);
                        continue;
                    }
                };
                if taken(&name, &catalog) {
                    conflicts.push(tool);
                    continue;
                }
                let entry = Entry {
                    source: Some(live.name().to_owned()),
                    target,
                };
                catalog.entries.insert(name, entry);
            }
            catalog.conflicts.insert(live.name().to_owned(), conflicts);
        }
        catalog
    }

    /// The operator's sources for `tenant` (flagged `true`) and its own, loaded from
    /// the stores when not read within [`RELOAD`](Self::RELOAD).
    async fn live_sources(&self, tenant: TenantId) -> Result<Vec<(bool, Arc<Live>)>, ToolError> {
        let mut all: Vec<(bool, Arc<Live>)> = self
            .inner
            .operator
            .iter()
            .filter(|(only, _)| only.is_none_or(|t| t == tenant))
            .map(|(_, live)| (true, live.clone()))
            .collect();
        if self.inner.store.is_none() {
            return Ok(all);
        }
        let fresh = self
            .lock()
            .get(&tenant)
            .filter(|loaded| loaded.at.elapsed() < Self::RELOAD)
            .map(|loaded| loaded.sources.values().cloned().collect::<Vec<_>>());
        let own = match fresh {
            Some(own) => own,
            None => self.reload(tenant).await?,
        };
        all.extend(own.into_iter().map(|live| (false, live)));
        Ok(all)
    }

    /// Reads `tenant`'s sources, keeping the connections of those unchanged.
    async fn reload(&self, tenant: TenantId) -> Result<Vec<Arc<Live>>, ToolError> {
        let records = self.stored(tenant).await?;
        let mut tenants = self.lock();
        let old = tenants
            .remove(&tenant)
            .map(|l| l.sources)
            .unwrap_or_default();
        let mut sources = BTreeMap::new();
        for record in records {
            let live = match old.get(&record.name) {
                Some(live) if live.record() == Some(&record) => live.clone(),
                _ => match Live::of(&record, &self.inner.config) {
                    Ok(live) => Arc::new(live),
                    Err(e) => {
                        tracing::warn!(%tenant, source = %record.name, error = %e, "tool source not started");
                        continue;
                    }
                },
            };
            sources.insert(record.name.clone(), live);
        }
        if tenants.len() >= 10_000 {
            tenants.clear();
        }
        let list = sources.values().cloned().collect();
        tenants.insert(
            tenant,
            Loaded {
                at: Instant::now(),
                sources,
            },
        );
        Ok(list)
    }

    async fn stored(&self, tenant: TenantId) -> Result<Vec<ToolSource>, ToolError> {
        let Some(store) = &self.inner.store else {
            return Ok(Vec::new());
        };
        let key = tenant.to_string();
        let mut records = Vec::new();
        let mut query = Query::new().limit(Query::MAX_LIMIT);
        loop {
            let page = store
                .list(&key, &query)
                .await
                .map_err(|e| ToolError::Unavailable(format!("tool sources: {e}")))?;
            records.extend(page.items.into_iter().map(|v| v.record));
            match page.next {
                Some(next) => query = query.after(next),
                None => break,
            }
        }
        Ok(records)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Loaded>> {
        self.inner.tenants.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a call's result is cached: the tenant, tool, action and input's digest.
fn cache_key(tenant: TenantId, tool: &str, action: &str, input: &Value) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(input.to_string().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{tenant}:{tool}:{action}:{hex}")
}

#[cfg(feature = "federation")]
impl Tools {
    /// The MCP servers' tools `tenant` can call, as MCP lists them: under the names
    /// Mesh gives them.
    pub async fn federated(&self, tenant: TenantId) -> Result<Vec<rmcp::model::Tool>, ToolError> {
        let catalog = self.catalog(tenant).await?;
        Ok(catalog
            .entries
            .into_iter()
            .filter_map(|(name, entry)| match entry.target {
                Target::Mcp { tool, .. } => {
                    let mut tool = (*tool).clone();
                    tool.name = name.into();
                    Some(tool)
                }
                Target::Adapter(_) => None,
            })
            .collect())
    }

    /// Calls the MCP server's tool Mesh names `name` for `caller`, within the
    /// limits: the server's result as it gave it (from the cache for an idempotent
    /// tool's repeated call).
    pub async fn call_federated(
        &self,
        caller: Caller<'_>,
        name: &str,
        arguments: Value,
    ) -> Result<rmcp::model::CallToolResult, ToolError> {
        let Target::Mcp { upstream, tool } = self.find(caller.tenant, name).await?.target else {
            return Err(ToolError::UnknownTool(name.to_owned()));
        };
        self.charge(caller, name).await?;
        let idempotent = super::sources::mcp_idempotent(&tool);
        let key = idempotent.then(|| cache_key(caller.tenant, name, "mcp", &arguments));
        if let Some(key) = &key
            && let Some(hit) = self.inner.counters.cached(key).await
            && let Ok(result) = serde_json::from_value(hit)
        {
            metrics::counter!("mesh_tool_cache_hits_total", "tool" => name.to_owned()).increment(1);
            return Ok(result);
        }
        let call = async {
            let result = upstream.call(&tool.name, arguments).await?;
            serde_json::to_value(&result).map_err(|e| ToolError::Failed(e.to_string()))
        };
        let value = super::instrumented(name, super::CALL, call).await?;
        if let Some(key) = &key {
            let ttl = self.inner.config.limits.cache_ttl;
            self.inner.counters.keep(key, &value, ttl).await;
        }
        serde_json::from_value(value).map_err(|e| ToolError::Failed(e.to_string()))
    }
}
