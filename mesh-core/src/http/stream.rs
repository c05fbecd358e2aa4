//! The resumable event stream: a workflow run's journal as Server-Sent Events. Each
//! checkpoint is one `checkpoint` event whose id is its `seq`, so a client that
//! reconnects with `Last-Event-ID` gets exactly the entries it missed; a `finished`
//! event (the run) closes the stream once the run has ended.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::broadcast;

use crate::domain::{TenantId, WorkflowId};
use crate::engine::Event;
use crate::workflow::Workflows;

/// How long the stream waits for news of the run before reading the journal again
/// (the run may be driven by another instance, whose events do not reach this one).
const POLL: Duration = Duration::from_secs(1);

struct Follow {
    workflows: Workflows,
    tenant: TenantId,
    run: WorkflowId,
    after: Option<u64>,
    events: broadcast::Receiver<Event>,
    ready: VecDeque<SseEvent>,
    done: bool,
}

/// The journal of `run` from the entry after `after` (from the start when `None`),
/// followed live until the run ends — or until `stop` resolves (the REST API passes
/// [`Gate::until_revoked`](super::Gate::until_revoked): a revoked key's stream ends).
pub fn journal_stream(
    workflows: Workflows,
    tenant: TenantId,
    run: WorkflowId,
    after: Option<u64>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Response {
    let follow = Follow {
        events: workflows.engine().subscribe(),
        workflows,
        tenant,
        run,
        after,
        ready: VecDeque::new(),
        done: false,
    };
    let events = stream::unfold(follow, |mut follow| async move {
        loop {
            if let Some(event) = follow.ready.pop_front() {
                return Some((Ok::<_, Infallible>(event), follow));
            }
            if follow.done {
                return None;
            }
            if let Err(e) = follow.read().await {
                let event = SseEvent::default().event("error").data(e.to_string());
                follow.done = true;
                return Some((Ok(event), follow));
            }
            if follow.ready.is_empty() && !follow.done {
                follow.wait().await;
            }
        }
    });
    Sse::new(futures_util::StreamExt::take_until(events, Box::pin(stop)))
        .keep_alive(KeepAlive::default())
        .into_response()
}

impl Follow {
    /// Queues the entries written since the last one sent; when there are none and
    /// the run has ended, the `finished` event.
    async fn read(&mut self) -> Result<(), crate::workflow::WorkflowError> {
        let entries = self
            .workflows
            .history(self.tenant, self.run, self.after, Some(100))
            .await?;
        for entry in entries {
            self.after = Some(entry.seq);
            let data = serde_json::to_string(&entry).unwrap_or_default();
            self.ready.push_back(
                SseEvent::default()
                    .event("checkpoint")
                    .id(entry.seq.to_string())
                    .data(data),
            );
        }
        if self.ready.is_empty() {
            let run = self.workflows.run(self.tenant, self.run).await?;
            if run.status.is_finished() {
                let data = serde_json::to_string(&run).unwrap_or_default();
                self.ready
                    .push_back(SseEvent::default().event("finished").data(data));
                self.done = true;
            }
        }
        Ok(())
    }

    /// Until the run moves here, or [`POLL`] passes.
    async fn wait(&mut self) {
        let run = self.run;
        let heard = async {
            loop {
                match self.events.recv().await {
                    Ok(Event::WorkflowUpdate { run: r, .. }) if r == run => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                }
            }
        };
        let _ = tokio::time::timeout(POLL, heard).await;
    }
}
