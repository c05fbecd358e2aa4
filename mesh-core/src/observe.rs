//! What the engine does, as metrics: a task that follows the engine's events and
//! records them through the `metrics` facade (exported at `/metrics` with feature
//! `metrics`, or to whatever recorder an embedder installs). Following events keeps
//! the engine's own loop free of bookkeeping. Names follow Prometheus conventions: one
//! `mesh_` prefix, base units, `_total` counters; labels are kinds, statuses, routes
//! and tool names — never ids.

use std::collections::HashMap;
use std::time::Instant;

use metrics::{Counter, Histogram, counter, gauge, histogram};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::domain::{TaskId, TaskStatus};
use crate::engine::{Engine, Event, WorkflowUpdate};

/// Distinct task kinds given a label of their own; later ones count as `other` (kinds
/// are chosen by callers, and every label value is a series kept forever).
const KINDS: usize = 200;

/// Tasks remembered between their submission and end (for their kind and latency);
/// past it the oldest half is forgotten (their ends count without a latency).
const TRACKED: usize = 100_000;

/// Every metric this module and the HTTP layer record, with its help text.
pub const METRICS: &[(&str, &str)] = &[
    ("mesh_tasks_submitted_total", "Tasks submitted, by kind."),
    (
        "mesh_tasks_assigned_total",
        "Task attempts handed to an agent, by kind.",
    ),
    (
        "mesh_tasks_finished_total",
        "Tasks ended, by kind and status (completed, failed, cancelled, timed_out).",
    ),
    (
        "mesh_task_schedule_to_start_seconds",
        "From submission to an agent taking the task (each attempt), by kind.",
    ),
    (
        "mesh_task_start_to_close_seconds",
        "From an agent taking the task to its end, by kind and status.",
    ),
    (
        "mesh_agents_connected",
        "Agents connected to this instance.",
    ),
    (
        "mesh_agent_connections_total",
        "Agent sessions opened on this instance.",
    ),
    (
        "mesh_workflow_runs_finished_total",
        "Workflow runs ended here, by status (succeeded, failed, cancelled).",
    ),
    (
        "mesh_workflow_steps_total",
        "Workflow steps ended here, by outcome (completed, failed).",
    ),
    (
        "mesh_workflow_step_duration_seconds",
        "From a workflow step starting to its end, by outcome.",
    ),
    (
        "mesh_workflow_interrupts_total",
        "Workflow steps that began waiting for a person.",
    ),
    (
        "mesh_events_missed_total",
        "Engine events the metrics fell too far behind to see.",
    ),
    (
        "mesh_http_requests_total",
        "HTTP requests answered, by method, route and status.",
    ),
    (
        "mesh_http_request_duration_seconds",
        "Time to answer an HTTP request (to its headers), by method and route.",
    ),
    (
        "mesh_tool_calls_total",
        "Tool calls, by tool, action and outcome (ok, error).",
    ),
    (
        "mesh_tool_call_duration_seconds",
        "Time a tool call took, by tool and action.",
    ),
    (
        "mesh_jobs_total",
        "Worker jobs settled, by outcome (done; retried: failed, back to the queue — the queue dead-letters it past its receives).",
    ),
    (
        "mesh_engine_busy_seconds",
        "Time the engine task has spent working since it started, at the last scrape; its rate is the engine's saturation (near 1: it is the bottleneck).",
    ),
    (
        "mesh_engine_task_busy_seconds",
        "Time each engine task has spent working since it started, by task (0 to the engine's shards - 1), at the last scrape; the busiest one's rate is the instance's saturation.",
    ),
    (
        "mesh_engine_cpu_seconds",
        "CPU time the engine task has used since it started (its thread's CPU clock inside its polls), at the last scrape; divided by tasks completed, the engine's cost per task.",
    ),
    (
        "mesh_queue_jobs",
        "Jobs in the worker queue at the last scrape, by state (available, in_flight, delayed, dead).",
    ),
    (
        "mesh_routing_failures_total",
        "Routing passes that found no agent for a pending task, by reason (no_capable_agent, all_saturated, all_breakers_open, ...); a waiting task counts once per pass.",
    ),
    (
        "mesh_embedding_cache_total",
        "Texts looked up in the embedding cache, by result (hit, miss).",
    ),
    (
        "mesh_embedding_tokens_total",
        "Tokens embedded, by the model that answered.",
    ),
    (
        "mesh_embedding_cost_dollars",
        "What embedding has cost so far, in US dollars (only rises), by the model that answered.",
    ),
    (
        "mesh_connections",
        "WebSocket sessions open on this instance, by surface (hub: agents; mcp).",
    ),
    (
        "mesh_ws_messages_total",
        "WebSocket messages, data and control, by direction (in, out).",
    ),
    (
        "mesh_ws_bytes_total",
        "WebSocket message payload bytes, by direction (in, out).",
    ),
    (
        "mesh_protocol_frames_received_total",
        "Mesh protocol frames received (a batch message carries several).",
    ),
];

/// Registers the help text of every metric with the installed recorder.
pub fn describe() {
    for (name, help) in METRICS {
        metrics::describe_counter!(*name, *help);
    }
}

/// Starts recording `engine`'s events as metrics, once per engine (later calls for the
/// same engine return `None`). The task ends with the engine.
pub fn record(engine: &Engine) -> Option<JoinHandle<()>> {
    if !engine.start_observing() {
        return None;
    }
    let mut events = engine.subscribe();
    Some(tokio::spawn(async move {
        let mut seen = Seen::default();
        loop {
            match events.recv().await {
                Ok(event) => seen.record(event),
                Err(RecvError::Lagged(missed)) => {
                    counter!("mesh_events_missed_total").increment(missed)
                }
                Err(RecvError::Closed) => return,
            }
        }
    }))
}

/// What the recorder remembers between events.
#[derive(Default)]
struct Seen {
    /// Task → its kind's series, when it was submitted, and when its attempt began.
    tasks: HashMap<TaskId, (usize, Instant, Option<Instant>)>,
    /// (run, activation) → when the step began.
    steps: HashMap<(crate::domain::WorkflowId, u64), Instant>,
    connected: f64,
    /// The kinds labelled so far → their series.
    kinds: HashMap<String, usize>,
    series: Vec<KindSeries>,
}

/// The series of one task kind, looked up in the recorder once, not per event.
struct KindSeries {
    kind: String,
    submitted: Counter,
    assigned: Counter,
    schedule_to_start: Histogram,
    /// By terminal status.
    finished: HashMap<&'static str, (Counter, Histogram)>,
}

impl KindSeries {
    fn new(kind: String) -> Self {
        Self {
            submitted: counter!("mesh_tasks_submitted_total", "kind" => kind.clone()),
            assigned: counter!("mesh_tasks_assigned_total", "kind" => kind.clone()),
            schedule_to_start: histogram!("mesh_task_schedule_to_start_seconds", "kind" => kind.clone()),
            finished: HashMap::new(),
            kind,
        }
    }

    fn finished(&mut self, status: &'static str) -> &(Counter, Histogram) {
        let kind = &self.kind;
        self.finished.entry(status).or_insert_with(|| {
            (
                counter!("mesh_tasks_finished_total", "kind" => kind.clone(), "status" => status),
                histogram!("mesh_task_start_to_close_seconds", "kind" => kind.clone(), "status" => status),
            )
        })
    }
}

impl Seen {
    fn record(&mut self, event: Event) {
        match event {
            Event::TaskSubmitted { task, kind, .. } => {
                let kind = self.label(kind);
                self.series[kind].submitted.increment(1);
                if self.tasks.len() >= TRACKED {
                    let mut oldest: Vec<_> = self
                        .tasks
                        .iter()
                        .map(|(id, (_, at, _))| (*at, *id))
                        .collect();
                    oldest.sort_unstable();
                    for (_, id) in oldest.into_iter().take(TRACKED / 2) {
                        self.tasks.remove(&id);
                    }
                }
                self.tasks.insert(task, (kind, Instant::now(), None));
            }
            Event::TaskAssigned { task, .. } => {
                if let Some((kind, submitted, started)) = self.tasks.get_mut(&task) {
                    let now = Instant::now();
                    let series = &self.series[*kind];
                    series.assigned.increment(1);
                    series
                        .schedule_to_start
                        .record(now.duration_since(*submitted).as_secs_f64());
                    *started = Some(now);
                }
            }
            Event::TaskStatus { task, status, .. } if status.is_terminal() => {
                let Some((kind, _, started)) = self.tasks.remove(&task) else {
                    counter!("mesh_tasks_finished_total", "kind" => "unknown", "status" => status.as_str()).increment(1);
                    return;
                };
                let (finished, start_to_close) = self.series[kind].finished(status.as_str());
                finished.increment(1);
                if let Some(started) = started {
                    start_to_close.record(started.elapsed().as_secs_f64());
                }
            }
            Event::TaskStatus {
                task,
                status: TaskStatus::Pending,
                ..
            } => {
                // Back in the queue (retry, rejection, agent lost): a new attempt starts later.
                if let Some((_, _, started)) = self.tasks.get_mut(&task) {
                    *started = None;
                }
            }
            Event::AgentConnected { .. } => {
                self.connected += 1.0;
                gauge!("mesh_agents_connected").set(self.connected);
                counter!("mesh_agent_connections_total").increment(1);
            }
            Event::AgentDisconnected { .. } => {
                self.connected = (self.connected - 1.0).max(0.0);
                gauge!("mesh_agents_connected").set(self.connected);
            }
            Event::WorkflowUpdate {
                run,
                update,
                status,
                ..
            } => self.workflow(run, update, status),
            _ => {}
        }
    }

    /// The series of `kind`: its own among the first [`KINDS`] seen, else `other`'s.
    fn label(&mut self, kind: String) -> usize {
        if let Some(&at) = self.kinds.get(&kind) {
            return at;
        }
        let kind = if self.kinds.len() < KINDS {
            kind
        } else {
            "other".to_owned()
        };
        let at = self.series.len();
        *self.kinds.entry(kind.clone()).or_insert_with(|| {
            self.series.push(KindSeries::new(kind));
            at
        })
    }

    fn workflow(
        &mut self,
        run: crate::domain::WorkflowId,
        update: WorkflowUpdate,
        status: crate::domain::workflow::RunStatus,
    ) {
        let step_ended =
            |steps: &mut HashMap<_, Instant>, activation: u64, outcome: &'static str| {
                counter!("mesh_workflow_steps_total", "outcome" => outcome).increment(1);
                if let Some(began) = steps.remove(&(run, activation)) {
                    histogram!("mesh_workflow_step_duration_seconds", "outcome" => outcome)
                        .record(began.elapsed().as_secs_f64());
                }
            };
        match update {
            WorkflowUpdate::StepStarted { activation, .. } => {
                self.steps.insert((run, activation), Instant::now());
            }
            WorkflowUpdate::StepCompleted { activation, .. } => {
                step_ended(&mut self.steps, activation, "completed")
            }
            WorkflowUpdate::StepFailed { activation, .. } => {
                step_ended(&mut self.steps, activation, "failed")
            }
            WorkflowUpdate::InterruptPending { .. } => {
                counter!("mesh_workflow_interrupts_total").increment(1)
            }
            WorkflowUpdate::Finished => {
                counter!("mesh_workflow_runs_finished_total", "status" => status.as_str())
                    .increment(1);
                self.steps.retain(|(r, _), _| *r != run);
            }
            _ => {}
        }
    }
}

/// An open session, counted in `mesh_connections` until it is dropped.
#[derive(Debug)]
pub struct Open(&'static str);

impl Open {
    /// A WebSocket session of `surface` (`hub`, `mcp`) opens.
    pub fn connection(surface: &'static str) -> Self {
        gauge!("mesh_connections", "surface" => surface).increment(1.0);
        Self(surface)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        gauge!("mesh_connections", "surface" => self.0).decrement(1.0);
    }
}
