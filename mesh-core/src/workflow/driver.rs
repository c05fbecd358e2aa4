//! The task that drives one run on this instance: it performs the steps its position
//! hands out, writes a checkpoint after each one before anything else happens, takes
//! messages and timers for waiting steps, and renews the run's lease. Any failure to
//! write ends the driver without losing anything: the run is taken up again from its
//! last checkpoint, here or elsewhere, once its lease runs out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use mesh_store::{BoxFuture, Query, StoreError, Versioned};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::shared::{Inner, Launch, Poke};
use super::steps::Outcome;
use super::{
    Action, Activation, Checkpoint, DefinitionRecord, JournalEvent, MessageKind, PendingInterrupt,
    Position, RunStatus, Running, Step, Wait, WorkflowRun, interrupt_id,
};
use crate::domain::{TenantId, WorkflowId};
use crate::engine::{Event, WorkflowUpdate};

/// Why a driver stopped driving.
#[derive(Debug)]
pub(super) enum Stop {
    /// The run finished (or was cancelled).
    Finished,
    /// Another instance holds the run now.
    Lost,
    /// The stores failed; the lease will run out and the run be taken up again.
    Failed(String),
}

type StepResult = (u64, Outcome);

pub(super) struct Driver {
    inner: Arc<Inner>,
    tenant: TenantId,
    key: String,
    run: Versioned<WorkflowRun>,
    definition: Arc<DefinitionRecord>,
    steps: HashMap<String, Step>,
    position: Position,
    seq: u64,
    in_flight: FuturesUnordered<BoxFuture<'static, StepResult>>,
    /// The steps being performed here, by activation.
    performing: HashMap<u64, String>,
    pokes: mpsc::UnboundedReceiver<Poke>,
}

/// Starts driving a run just written.
pub(super) fn launch(inner: Arc<Inner>, launch: Launch) {
    let pokes = launch.pokes.or_else(|| inner.reserve(launch.run.record.id));
    if let Some(pokes) = pokes {
        // A new run: no message can predate the pokes (see `Launch::pokes`).
        let start = Start {
            retry: false,
            look_for_messages: false,
        };
        drive(
            inner,
            launch.tenant,
            launch.run,
            launch.definition,
            launch.first,
            pokes,
            start,
        );
    }
}

/// How a driver begins.
#[derive(Clone, Copy)]
struct Start {
    /// Gives the failed steps new activations first.
    retry: bool,
    /// Takes in messages sent before the driver started.
    look_for_messages: bool,
}

/// Starts driving `run` from `checkpoint` unless this instance drives it already;
/// `retry` first gives its failed steps new activations.
pub(super) fn spawn(
    inner: Arc<Inner>,
    tenant: TenantId,
    run: Versioned<WorkflowRun>,
    definition: Arc<DefinitionRecord>,
    checkpoint: Checkpoint,
    retry: bool,
) {
    if let Some(pokes) = inner.reserve(run.record.id) {
        let start = Start {
            retry,
            look_for_messages: true,
        };
        drive(inner, tenant, run, definition, checkpoint, pokes, start);
    }
}

/// Spawns the driver of `run`, whose pokes are registered.
fn drive(
    inner: Arc<Inner>,
    tenant: TenantId,
    run: Versioned<WorkflowRun>,
    definition: Arc<DefinitionRecord>,
    checkpoint: Checkpoint,
    pokes: mpsc::UnboundedReceiver<Poke>,
    start: Start,
) {
    let id = run.record.id;
    let steps = definition
        .definition
        .steps_by_name()
        .into_iter()
        .map(|(name, step)| (name.to_owned(), step.clone()))
        .collect();
    let driver = Driver {
        key: tenant.to_string(),
        inner: inner.clone(),
        tenant,
        run,
        definition,
        steps,
        position: checkpoint.position,
        seq: checkpoint.seq,
        in_flight: FuturesUnordered::new(),
        performing: HashMap::new(),
        pokes,
    };
    tokio::spawn(async move {
        let stop = driver.drive(start).await;
        match &stop {
            Stop::Failed(why) => tracing::warn!(run = %id, %why, "stopped driving a workflow run"),
            Stop::Lost => tracing::info!(run = %id, "another instance took over a workflow run"),
            Stop::Finished => {}
        }
        inner.drivers().remove(&id);
    });
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

impl Driver {
    fn id(&self) -> WorkflowId {
        self.run.record.id
    }

    async fn drive(mut self, start: Start) -> Stop {
        match self.run_loop(start).await {
            Ok(stop) | Err(stop) => stop,
        }
    }

    async fn run_loop(&mut self, start: Start) -> Result<Stop, Stop> {
        if start.retry {
            for activation in self.running()? {
                if !self.is_wait(&activation) {
                    self.position
                        .renumber(&self.definition.definition, activation.id)
                        .map_err(|e| Stop::Failed(e.to_string()))?;
                }
            }
            self.checkpoint(JournalEvent::Retried).await?;
        }
        self.publish(WorkflowUpdate::Started);
        self.forget_consumed().await?;
        for activation in self.activations()? {
            self.begin(activation);
        }
        if start.look_for_messages {
            self.take_messages().await?;
        }
        let lease = self.inner.config.lease;
        let mut renew = tokio::time::interval(lease / 3);
        renew.tick().await;
        let mut poll = tokio::time::interval(self.inner.config.poll_every);
        loop {
            if self.position.is_done() {
                return self.finish().await;
            }
            self.settle().await?;
            let timer = self.next_timer()?;
            let waiting = self.in_flight.is_empty();
            tokio::select! {
                Some((activation, result)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    let step = self.performing.remove(&activation).unwrap_or_default();
                    match result {
                        Outcome::Done(value) => self.complete(activation, value, None).await?,
                        Outcome::Failed(error) => return self.fail(step, activation, error).await,
                        Outcome::Broken(why) => return Err(Stop::Failed(why)),
                    }
                }
                poke = self.pokes.recv() => match poke {
                    Some(Poke::Message) => self.take_messages().await?,
                    Some(Poke::Cancel) | None => return Ok(Stop::Finished),
                },
                () = sleep_until_ms(timer), if timer.is_some() => self.fire_timers().await?,
                _ = renew.tick() => self.renew().await?,
                _ = poll.tick(), if waiting => self.take_messages().await?,
            }
        }
    }

    /// The running steps, with their inputs (to perform them).
    fn activations(&self) -> Result<Vec<Activation>, Stop> {
        self.position
            .running(&self.definition.definition)
            .map_err(|e| Stop::Failed(e.to_string()))
    }

    /// The running steps, for bookkeeping (no inputs rendered).
    fn running(&self) -> Result<Vec<Running>, Stop> {
        self.position
            .running_steps(&self.definition.definition)
            .map_err(|e| Stop::Failed(e.to_string()))
    }

    fn step(&self, name: &str) -> Option<&Step> {
        self.steps.get(name)
    }

    fn is_wait(&self, activation: &Running) -> bool {
        matches!(
            self.step(&activation.step).map(|s| &s.action),
            Some(Action::Wait(_))
        )
    }

    /// Starts performing `activation` unless it is a wait (messages and timers end
    /// those) or already under way.
    fn begin(&mut self, activation: Activation) {
        let Some(step) = self.step(&activation.step).cloned() else {
            return;
        };
        self.publish(WorkflowUpdate::StepStarted {
            step: step.name.clone(),
            activation: activation.id,
        });
        match &step.action {
            Action::Wait(Wait::Interrupt { .. }) => {
                self.publish(WorkflowUpdate::InterruptPending {
                    step: step.name.clone(),
                    id: interrupt_id(self.id(), activation.id),
                })
            }
            Action::Wait(_) => {}
            _ => {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    self.performing.entry(activation.id)
                {
                    slot.insert(step.name.clone());
                    let span = self.step_span(&step.name, activation.id);
                    let work = super::steps::perform(
                        self.inner.clone(),
                        self.tenant,
                        self.run.record.id,
                        step,
                        activation,
                    );
                    self.in_flight.push(match span {
                        Some(span) => Box::pin(traced_step(work).instrument(span)),
                        None => work,
                    });
                }
            }
        }
    }

    /// A span for performing a step, when the run's trace is sampled.
    fn step_span(&self, step: &str, activation: u64) -> Option<tracing::Span> {
        let parent = self.run.record.traceparent.as_deref()?;
        if !crate::trace::is_sampled(parent) {
            return None;
        }
        let span = tracing::info_span!(
            parent: None,
            "workflow_step",
            otel.name = format!("workflow_step {step}"),
            otel.kind = "internal",
            otel.status_code = tracing::field::Empty,
            mesh.workflow.name = %self.run.record.workflow,
            mesh.workflow.run_id = %self.run.record.id,
            mesh.workflow.step = step,
            mesh.workflow.activation = activation,
        );
        crate::trace::set_parent(&span, parent);
        Some(span)
    }

    /// Takes `value` as the result of `activation`, checkpoints, and starts what
    /// follows. `message` is the message that carried the value, deleted once the
    /// checkpoint holds.
    async fn complete(
        &mut self,
        activation: u64,
        value: Value,
        message: Option<uuid::Uuid>,
    ) -> Result<(), Stop> {
        let definition = self.definition.clone();
        let step = match self
            .position
            .complete(&definition.definition, activation, value.clone())
        {
            Ok(step) => step,
            Err(e) => return Err(Stop::Failed(e.to_string())),
        };
        let started = match self.position.advance(&definition.definition, now_ms()) {
            Ok(started) => started,
            Err(e) => {
                let stop = self.fail(step, activation, e.to_string()).await;
                return Err(stop.unwrap_or_else(|stop| stop));
            }
        };
        if let Some(message) = message {
            self.position.consumed.push(message);
        }
        self.checkpoint(JournalEvent::StepCompleted {
            step: step.clone(),
            activation,
            result: value,
        })
        .await?;
        self.publish(WorkflowUpdate::StepCompleted { step, activation });
        for activation in started {
            self.begin(activation);
        }
        self.forget_consumed().await
    }

    /// Deletes the messages the position has taken in, now that a checkpoint says so.
    async fn forget_consumed(&mut self) -> Result<(), Stop> {
        for id in std::mem::take(&mut self.position.consumed) {
            if let Err(e) = self.inner.journal.messages.delete(&self.key, id).await {
                self.position.consumed.push(id);
                return Err(Stop::Failed(e.to_string()));
            }
        }
        Ok(())
    }

    /// Writes the next journal entry; a taken entry means another instance drives the
    /// run now.
    async fn checkpoint(&mut self, event: JournalEvent) -> Result<(), Stop> {
        let entry = Checkpoint::new(self.id(), self.seq + 1, event, self.position.clone());
        match self.inner.checkpoint_writes.create(&self.key, entry).await {
            Ok(_) => {
                self.seq += 1;
                Ok(())
            }
            Err(StoreError::AlreadyExists { .. }) => Err(Stop::Lost),
            Err(e) => Err(Stop::Failed(e.to_string())),
        }
    }

    /// Messages for the run: signals for waiting signal steps (kept until one waits),
    /// values for pending interrupts.
    async fn take_messages(&mut self) -> Result<(), Stop> {
        let query = Query::new().filter("run", self.id().to_string()).limit(100);
        let page = self
            .inner
            .journal
            .messages
            .list(&self.key, &query)
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?;
        for message in page.items.into_iter().map(|v| v.record) {
            let waiting = self.running()?;
            let target = waiting.iter().find(|a| {
                match (self.step(&a.step).map(|s| &s.action), &message.kind) {
                    (
                        Some(Action::Wait(Wait::Signal { name })),
                        MessageKind::Signal { name: sent },
                    ) => name == sent,
                    (
                        Some(Action::Wait(Wait::Interrupt { .. })),
                        MessageKind::Resume { interrupt },
                    ) => interrupt_id(self.id(), a.id) == *interrupt,
                    _ => false,
                }
            });
            match (target.map(|a| (a.id, a.step.clone())), &message.kind) {
                (Some((activation, step)), _) => {
                    let schema = self.step(&step).and_then(|s| s.output_schema.as_ref());
                    if let Some(misfit) = super::steps::misfit("output", schema, &message.value) {
                        self.position.consumed.push(message.id);
                        return Err(self
                            .fail(step, activation, misfit)
                            .await
                            .unwrap_or_else(|s| s));
                    }
                    self.complete(activation, message.value, Some(message.id))
                        .await?;
                }
                // A resume for an interrupt that no longer waits: nothing to do.
                (None, MessageKind::Resume { .. }) => {
                    self.position.consumed.push(message.id);
                    self.forget_consumed().await?;
                }
                (None, _) => {}
            }
        }
        Ok(())
    }

    /// When the earliest running timer ends (ms since the epoch).
    fn next_timer(&self) -> Result<Option<i64>, Stop> {
        Ok(self
            .running()?
            .iter()
            .filter_map(|a| match self.step(&a.step).map(|s| &s.action) {
                Some(Action::Wait(Wait::Timer { ms })) => Some(
                    a.since_ms
                        .saturating_add(i64::try_from(*ms).unwrap_or(i64::MAX)),
                ),
                _ => None,
            })
            .min())
    }

    async fn fire_timers(&mut self) -> Result<(), Stop> {
        let now = now_ms();
        let due: Vec<u64> = self
            .running()?
            .iter()
            .filter(|a| match self.step(&a.step).map(|s| &s.action) {
                Some(Action::Wait(Wait::Timer { ms })) => {
                    a.since_ms
                        .saturating_add(i64::try_from(*ms).unwrap_or(i64::MAX))
                        <= now
                }
                _ => false,
            })
            .map(|a| a.id)
            .collect();
        for activation in due {
            self.complete(activation, Value::Null, None).await?;
        }
        Ok(())
    }

    /// Brings the run's record in line with the position: running or waiting, and the
    /// interrupts pending.
    async fn settle(&mut self) -> Result<(), Stop> {
        let running = self.running()?;
        let interrupts: Vec<PendingInterrupt> = running
            .iter()
            .filter_map(|a| match self.step(&a.step).map(|s| &s.action) {
                Some(Action::Wait(Wait::Interrupt { prompt })) => Some(PendingInterrupt {
                    id: interrupt_id(self.id(), a.id),
                    step: a.step.clone(),
                    prompt: prompt.clone(),
                }),
                _ => None,
            })
            .collect();
        let status = if self.in_flight.is_empty() && !running.is_empty() {
            RunStatus::Waiting
        } else {
            RunStatus::Running
        };
        if self.run.record.status == status && self.run.record.interrupts == interrupts {
            return Ok(());
        }
        self.write_run(|run| {
            run.status = status;
            run.interrupts = interrupts.clone();
        })
        .await
    }

    async fn renew(&mut self) -> Result<(), Stop> {
        let until = Utc::now() + self.inner.lease();
        self.write_run(|run| run.lease_until = Some(until)).await
    }

    /// Changes the run's record, as long as this instance still holds the run and it
    /// was not cancelled meanwhile.
    async fn write_run(&mut self, change: impl Fn(&mut WorkflowRun)) -> Result<(), Stop> {
        loop {
            let mut record = self.run.record.clone();
            change(&mut record);
            match self
                .inner
                .run_writes
                .update(&self.key, record, self.run.version)
                .await
            {
                Ok(written) => {
                    self.run = written;
                    return Ok(());
                }
                Err(StoreError::Conflict { .. }) => {
                    let current = self
                        .inner
                        .journal
                        .runs
                        .get(&self.key, *self.id().as_uuid())
                        .await
                        .map_err(|e| Stop::Failed(e.to_string()))?
                        .ok_or(Stop::Finished)?;
                    if current.record.status.is_finished() {
                        return Err(Stop::Finished);
                    }
                    if current.record.owner.as_deref() != Some(self.inner.config.instance.as_str())
                    {
                        return Err(Stop::Lost);
                    }
                    self.run = current;
                }
                Err(e) => return Err(Stop::Failed(e.to_string())),
            }
        }
    }

    async fn finish(&mut self) -> Result<Stop, Stop> {
        let output = Value::Object(self.position.state().clone());
        self.write_run(|run| {
            run.end(RunStatus::Succeeded);
            run.output = Some(output.clone());
        })
        .await?;
        self.publish(WorkflowUpdate::Finished);
        Ok(Stop::Finished)
    }

    /// The step failed: so does the run, and the rest of its work is cancelled.
    async fn fail(&mut self, step: String, activation: u64, error: String) -> Result<Stop, Stop> {
        self.checkpoint(JournalEvent::StepFailed {
            step: step.clone(),
            activation,
            error: error.clone(),
        })
        .await?;
        self.publish(WorkflowUpdate::StepFailed {
            step: step.clone(),
            activation,
            error: error.clone(),
        });
        let reason = format!("step {step:?} failed: {error}");
        self.write_run(|run| {
            run.end(RunStatus::Failed);
            run.error = Some(reason.clone());
        })
        .await?;
        self.in_flight = FuturesUnordered::new();
        self.inner
            .cancel_work(self.tenant, self.id(), &self.definition, &self.position)
            .await;
        self.publish(WorkflowUpdate::Finished);
        Ok(Stop::Finished)
    }

    fn publish(&self, update: WorkflowUpdate) {
        let running = self
            .position
            .running_steps(&self.definition.definition)
            .map_or(0, |r| r.len());
        self.inner.engine.publish(Event::WorkflowUpdate {
            tenant: self.tenant,
            run: self.id(),
            seq: self.seq,
            update,
            status: self.run.record.status,
            steps_done: self.position.steps_done,
            steps_running: running as u64,
        });
    }
}

/// A step's work that marks its span failed when the step fails.
async fn traced_step(work: BoxFuture<'static, StepResult>) -> StepResult {
    let (id, outcome) = work.await;
    if !matches!(outcome, Outcome::Done(_)) {
        tracing::Span::current().record("otel.status_code", "ERROR");
    }
    (id, outcome)
}

async fn sleep_until_ms(at: Option<i64>) {
    let left = at.map_or(0, |at| at.saturating_sub(now_ms()).max(0));
    tokio::time::sleep(Duration::from_millis(u64::try_from(left).unwrap_or(0))).await;
}
