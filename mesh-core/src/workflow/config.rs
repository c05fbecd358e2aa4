//! [`WorkflowConfig`]: the runtime's instance name, lease and polling.

use std::time::Duration;

/// How the workflow runtime behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkflowConfig {
    /// This instance's name in run leases. Instances sharing a database need distinct
    /// names; an instance restarted under its old name takes its runs back at once
    /// (others wait for the lease to run out). Default: a fresh UUID.
    pub instance: String,
    /// How long a run's lease lasts; renewed every third of it. Default 30 s.
    pub lease: Duration,
    /// How often to look for runs whose lease ran out. Default 5 s.
    pub adopt_every: Duration,
    /// How often a waiting run looks for messages sent through another instance.
    /// Default 1 s.
    pub poll_every: Duration,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        Self {
            instance: uuid::Uuid::new_v4().to_string(),
            lease: Duration::from_secs(30),
            adopt_every: Duration::from_secs(5),
            poll_every: Duration::from_secs(1),
        }
    }
}

impl WorkflowConfig {
    /// Sets [`instance`](Self::instance).
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = name.into();
        self
    }

    /// Sets [`lease`](Self::lease) (at least 300 ms).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(300));
        self
    }

    /// Sets [`adopt_every`](Self::adopt_every).
    pub fn adopt_every(mut self, every: Duration) -> Self {
        self.adopt_every = every.max(Duration::from_millis(50));
        self
    }

    /// Sets [`poll_every`](Self::poll_every).
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every.max(Duration::from_millis(10));
        self
    }
}
