//! [`EngineConfig`]: timings, limits and the custom routers an embedder registers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mesh_router::Router;

/// The most engine tasks an engine splits its tenants over ([`EngineConfig::shards`]).
pub const MAX_SHARDS: usize = 64;

/// The most batches of task writes an engine task has in flight at once
/// ([`EngineConfig::writes_in_flight`]).
pub const MAX_WRITES_IN_FLIGHT: usize = 16;

/// Makes a fresh instance of a custom router (one per engine).
pub type RouterFactory = Arc<dyn Fn() -> Box<dyn Router> + Send + Sync>;

/// Reads this machine's wall clock (injectable, so tests can skew it).
pub type WallClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Engine settings.
#[derive(Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// How often agents are asked to heartbeat. Default 10 s.
    pub heartbeat_interval: Duration,
    /// Heartbeats an agent may miss before it counts as gone. Default 3.
    pub missed_heartbeats: u32,
    /// How long one attempt of a task may take unless the task says. Default 60 s.
    pub task_timeout: Duration,
    /// Delay before retrying a failed or timed-out task; doubles per attempt. Default 100 ms.
    pub retry_backoff: Duration,
    /// Largest retry delay. Default 10 s.
    pub max_backoff: Duration,
    /// Attempts a task gets unless it says. Default 3.
    pub max_attempts: u32,
    /// How often deadlines and heartbeats are checked. Default 50 ms.
    pub tick: Duration,
    /// Capacity of the command channel (back-pressure on submitters). Default 65,536.
    pub queue: usize,
    /// Whether other engines share the stores (several service instances on one
    /// PostgreSQL). A clustered engine does not take back in-flight tasks when it starts
    /// (their owners still hold them; `Engine::sweep` recovers those of dead
    /// instances) and claims tasks with optimistic concurrency. Default false.
    pub clustered: bool,
    /// How long a task may wait for an agent before it fails as unroutable
    /// (`pending → failed`); `None` waits for ever. Default 1 hour.
    pub pending_timeout: Option<Duration>,
    /// How long an agent that rejected a task is passed over for it (then it may get
    /// it again: a sole agent that was busy once is not shut out). Default 10 s.
    pub exclusion_ttl: Duration,
    /// How long an agent may stay offline before it is forgotten (its record deleted;
    /// resuming it later registers a new agent). `None` keeps agents for ever.
    /// Default 24 hours.
    pub offline_agent_ttl: Option<Duration>,
    /// Engine tasks that share the work, each owning a slice of the tenants (their
    /// agents and tasks): one tenant is served by one task, so a single tenant is
    /// bound by one core, and many tenants spread over `shards` cores. Routing never
    /// crosses tenants, so nothing is lost by the split. At most 64. Default 1.
    pub shards: usize,
    /// Batches of task writes an engine task has on their way to the stores at once
    /// (group commit, pipelined): a task's writes stay in order — a batch leaves out
    /// the tasks an earlier one still writes — while unrelated tasks' batches overlap
    /// their round trips and commits. On PostgreSQL 2 to 4 gave 1.2× the tasks/s at
    /// 512 tasks in flight (the same at 64); on SQLite keep 1 (one writer: overlapping
    /// batches only wait for each other's flush). 1 to [`MAX_WRITES_IN_FLIGHT`]. Default 1.
    pub writes_in_flight: usize,
    /// Custom routers by name; a task selects one with `TaskSpec::router`.
    pub routers: BTreeMap<String, RouterFactory>,
    /// This machine's wall clock. Liveness shared between instances (an agent's
    /// `last_seen_at`) uses the stores' clock instead when they have one
    /// (PostgreSQL's), so instances with skewed clocks agree. Default `Utc::now`.
    pub wall_clock: WallClock,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("missed_heartbeats", &self.missed_heartbeats)
            .field("task_timeout", &self.task_timeout)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("max_attempts", &self.max_attempts)
            .field("tick", &self.tick)
            .field("queue", &self.queue)
            .field("clustered", &self.clustered)
            .field("offline_agent_ttl", &self.offline_agent_ttl)
            .field("pending_timeout", &self.pending_timeout)
            .field("exclusion_ttl", &self.exclusion_ttl)
            .field("shards", &self.shards)
            .field("writes_in_flight", &self.writes_in_flight)
            .field("routers", &self.routers.keys().collect::<Vec<_>>())
            .field("wall_clock", &(self.wall_clock)())
            .finish()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            missed_heartbeats: 3,
            task_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_attempts: 3,
            tick: Duration::from_millis(50),
            queue: 65_536,
            clustered: false,
            pending_timeout: Some(Duration::from_secs(3600)),
            exclusion_ttl: Duration::from_secs(10),
            offline_agent_ttl: Some(Duration::from_secs(86_400)),
            shards: 1,
            writes_in_flight: 1,
            routers: BTreeMap::new(),
            wall_clock: Arc::new(Utc::now),
        }
    }
}

impl EngineConfig {
    /// Sets the heartbeat interval and how many may be missed.
    pub fn heartbeat(mut self, interval: Duration, missed: u32) -> Self {
        self.heartbeat_interval = interval;
        self.missed_heartbeats = missed.max(1);
        self
    }

    /// Sets the default per-attempt timeout.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = timeout;
        self
    }

    /// Sets the retry backoff (initial and largest).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the default number of attempts.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets how often deadlines are checked.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Marks the engine as one of several sharing the stores (see [`Self::clustered`]).
    pub fn clustered(mut self, clustered: bool) -> Self {
        self.clustered = clustered;
        self
    }

    /// Sets how long a task may wait for an agent (`None`: for ever).
    pub fn pending_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pending_timeout = timeout;
        self
    }

    /// Sets the wall clock (tests skew it to stand for another machine).
    pub fn wall_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.wall_clock = Arc::new(clock);
        self
    }

    /// Sets how long a rejection passes an agent over for that task.
    pub fn exclusion_ttl(mut self, ttl: Duration) -> Self {
        self.exclusion_ttl = ttl;
        self
    }

    /// Sets how many engine tasks share the tenants (1 to [`MAX_SHARDS`]; see
    /// [`Self::shards`]).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards.clamp(1, MAX_SHARDS);
        self
    }

    /// Sets how many batches of task writes an engine task has in flight at once (1 to
    /// [`MAX_WRITES_IN_FLIGHT`]; see [`Self::writes_in_flight`]).
    pub fn writes_in_flight(mut self, batches: usize) -> Self {
        self.writes_in_flight = batches.clamp(1, MAX_WRITES_IN_FLIGHT);
        self
    }

    /// Registers a custom router under `name`: tasks submitted with
    /// `TaskSpec::router(name)` are routed by it. `make` is called once per engine
    /// task; the router keeps its state across tasks. Agents' `hello` labels reach it as
    /// [`CandidateView::label`](mesh_router::CandidateView::label).
    pub fn router<R, F>(mut self, name: impl Into<String>, make: F) -> Self
    where
        R: Router + 'static,
        F: Fn() -> R + Send + Sync + 'static,
    {
        let factory: RouterFactory = Arc::new(move || Box::new(make()) as Box<dyn Router>);
        self.routers.insert(name.into(), factory);
        self
    }
}
