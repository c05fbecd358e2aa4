//! One connection's shared documents: `doc_open`, `doc_update`, `doc_close`, and a relay
//! task per open document that forwards everyone else's updates.

use std::collections::HashMap;

use mesh_crdt::VectorClock;
use mesh_protocol::ws::Sender;
use mesh_protocol::{DocOpen, DocSync, DocUpdate, ErrorMessage, Message};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::domain::{SharedDocId, TenantId};
use crate::shared_docs::{DocError, LiveDoc, SharedDocs, Synced};

/// The documents one agent connection has open.
pub(super) struct DocSession {
    docs: SharedDocs,
    tenant: TenantId,
    sender: Sender,
    /// This connection as a subscriber: its own updates are not relayed back to it.
    me: u64,
    open: HashMap<Uuid, (LiveDoc, JoinHandle<()>)>,
}

impl DocSession {
    pub(super) fn new(docs: SharedDocs, tenant: TenantId, sender: Sender) -> Self {
        Self {
            docs,
            tenant,
            sender,
            me: rand::random::<u64>() | 1,
            open: HashMap::new(),
        }
    }

    /// Whether `message` is about documents (this session's to handle).
    pub(super) fn takes(message: &Message) -> bool {
        matches!(
            message,
            Message::DocOpen(_)
                | Message::DocSync(_)
                | Message::DocUpdate(_)
                | Message::DocClose(_)
        )
    }

    pub(super) async fn handle(&mut self, message: Message) {
        match message {
            Message::DocOpen(open) => self.open(open).await,
            Message::DocUpdate(update) => self.update(update).await,
            Message::DocClose(close) => {
                if let Some((_, relay)) = self.open.remove(&close.doc_id) {
                    relay.abort();
                }
            }
            other => {
                let _ = self.sender.try_send(ErrorMessage::new(
                    "unexpected_message",
                    format!("the mesh does not take {} from agents", other.msg_type()),
                ));
            }
        }
    }

    async fn open(&mut self, open: DocOpen) {
        let doc_id = open.doc_id;
        let max = self.docs.limits().max_open_per_connection;
        if !self.open.contains_key(&doc_id) && self.open.len() >= max {
            let message = format!("a connection has at most {max} documents open");
            return self.refuse(doc_id, "too_many_docs", message);
        }
        let since = if open.version.is_empty() {
            VectorClock::new()
        } else {
            match VectorClock::decode(&open.version) {
                Ok(version) => version,
                Err(e) => {
                    return self.refuse(
                        doc_id,
                        "bad_doc_version",
                        format!("malformed version: {e}"),
                    );
                }
            }
        };
        let opened = async {
            let live = self
                .docs
                .live(self.tenant, SharedDocId::from_uuid(doc_id))
                .await?;
            let (relayed, synced) = live.open(since).await?;
            Ok::<_, DocError>((live, relayed, synced))
        };
        let (live, relayed, synced) = match opened.await {
            Ok(opened) => opened,
            Err(e) => return self.refuse(doc_id, e.wire_code(), e.to_string()),
        };
        let _ = self.sender.try_send(sync_message(doc_id, synced));
        let relay = tokio::spawn(relay(live.clone(), relayed, self.sender.clone(), self.me));
        if let Some((_, earlier)) = self.open.insert(doc_id, (live, relay)) {
            earlier.abort();
        }
    }

    async fn update(&mut self, update: DocUpdate) {
        let doc_id = update.doc_id;
        let Some((live, _)) = self.open.get(&doc_id) else {
            return self.refuse(doc_id, "doc_not_open", "send doc_open first".to_owned());
        };
        // The connection reads on while the update is stored: those that follow it
        // are written with it.
        match live.queue(self.me, update.update).await {
            Ok(outcome) => {
                let sender = self.sender.clone();
                tokio::spawn(async move {
                    if let Err(e) = outcome.await {
                        refuse(&sender, doc_id, e.wire_code(), e.to_string());
                    }
                });
            }
            Err(e) => self.refuse(doc_id, e.wire_code(), e.to_string()),
        }
    }

    fn refuse(&self, doc_id: Uuid, code: &str, message: String) {
        refuse(&self.sender, doc_id, code, message);
    }

    /// Stops relaying (the connection ended).
    pub(super) fn close_all(&mut self) {
        for (_, (_, relay)) in self.open.drain() {
            relay.abort();
        }
    }
}

fn sync_message(doc_id: Uuid, synced: Synced) -> DocSync {
    DocSync::new(doc_id, synced.kind, synced.update, synced.version)
}

/// Relayed updates sent to an agent as one queue entry at most: the writer packs them
/// into batch frames, so a burst costs a few frames, not one each.
const RELAY_BATCH: usize = 256;

/// Forwards everyone else's updates of one document to the agent, a burst at a time. A
/// relay that fell behind sends the whole document again (applying what the agent has
/// is a no-op); a deleted document ends it with `doc_not_found`.
async fn relay(
    live: LiveDoc,
    mut relayed: tokio::sync::broadcast::Receiver<crate::shared_docs::Relayed>,
    sender: Sender,
    me: u64,
) {
    let doc_id = *live.id().as_uuid();
    loop {
        let mut next = Some(relayed.recv().await);
        let mut out: Vec<Message> = Vec::new();
        while let Some(received) = next.take() {
            match received {
                Ok(update) if update.from == me => {}
                Ok(update) => out.push(DocUpdate::new(doc_id, update.update.to_vec()).into()),
                Err(RecvError::Lagged(_)) => match live.open(VectorClock::new()).await {
                    Ok((again, synced)) => {
                        relayed = again;
                        // The document as it is now holds everything dropped and queued.
                        out = vec![sync_message(doc_id, synced).into()];
                    }
                    Err(_) => return,
                },
                Err(RecvError::Closed) => {
                    let _ = sender.try_send_all(out);
                    refuse(
                        &sender,
                        doc_id,
                        "doc_not_found",
                        "the document was deleted".into(),
                    );
                    return;
                }
            }
            if out.len() < RELAY_BATCH {
                next = match relayed.try_recv() {
                    Ok(update) => Some(Ok(update)),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                    Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                };
            }
        }
        if sender.try_send_all(out).is_err() {
            return;
        }
    }
}

/// Tells the agent an update or request about `doc_id` was refused.
fn refuse(sender: &Sender, doc_id: Uuid, code: &str, message: String) {
    let mut error = ErrorMessage::new(code, message);
    error.reference = Some(doc_id.to_string());
    let _ = sender.try_send(error);
}
