//! The agent runtime's document client: a shared document opened from a task, its
//! sync and everyone else's updates delivered to the task, the task's edits sent.
//!
//! It carries updates as bytes and holds no replica: the agent keeps its own (mesh-crdt's
//! `TextDoc` or `StateCrdt`), applies what arrives and sends what it makes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::Sender;
use crate::{DocClose, DocOpen, DocSync, DocUpdate, Error, ErrorMessage, Message};

/// Events held for one open document whose task does not read them; past this the
/// document is closed on it (its [`OpenDoc::next`] ends) rather than growing memory.
pub const DOC_EVENT_BUFFER: usize = 1024;

/// What arrives for an open document.
#[derive(Debug, Clone, PartialEq)]
pub enum DocEvent {
    /// What the agent lacked and the mesh's version: first after opening, and again
    /// whenever the mesh's relay to this agent fell behind (applying it is then safe:
    /// what the replica has is skipped).
    Sync(DocSync),
    /// Another editor's update.
    Update(Vec<u8>),
    /// The open or an update was refused (`doc_not_found`, `rate_limited`,
    /// `doc_too_large`, …); a refused update changed nothing.
    Refused(ErrorMessage),
}

/// Each open document's handle (a token naming it) and where its events go.
type Routes = HashMap<Uuid, (u64, mpsc::Sender<DocEvent>)>;

/// The documents open on one connection.
#[derive(Debug, Default, Clone)]
pub(super) struct OpenDocs(Arc<Mutex<Routes>>);

impl OpenDocs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delivers a document message to its open document; hands back anything else
    /// (including an error that refers to no open document).
    pub(super) fn route(&self, message: Message, sender: &Sender) -> Option<Message> {
        let (doc_id, event) = match message {
            Message::DocSync(sync) => (sync.doc_id, DocEvent::Sync(sync)),
            Message::DocUpdate(update) => (update.doc_id, DocEvent::Update(update.update)),
            Message::Error(error) => {
                let open = error
                    .reference
                    .as_deref()
                    .and_then(|r| r.parse::<Uuid>().ok())
                    .filter(|id| self.lock().contains_key(id));
                match open {
                    Some(id) => (id, DocEvent::Refused(error)),
                    None => return Some(Message::Error(error)),
                }
            }
            other => return Some(other),
        };
        let mut docs = self.lock();
        if let Some((_, events)) = docs.get(&doc_id)
            && events.try_send(event).is_err()
        {
            // Not read (or no longer wanted): close it; the task reopens from its
            // replica's version when it wants the document again.
            docs.remove(&doc_id);
            let _ = sender.try_send(DocClose::new(doc_id));
        }
        None
    }

    /// Ends every open document's events: the connection is gone.
    pub(super) fn clear(&self) {
        self.lock().clear();
    }
}

/// A shared document open on the agent's connection, from [`AgentContext::open_doc`];
/// closed when dropped.
///
/// [`AgentContext::open_doc`]: super::AgentContext::open_doc
#[derive(Debug)]
pub struct OpenDoc {
    doc_id: Uuid,
    token: u64,
    sender: Sender,
    docs: OpenDocs,
    events: mpsc::Receiver<DocEvent>,
}

impl OpenDoc {
    pub(super) async fn open(
        sender: Sender,
        docs: OpenDocs,
        doc_id: Uuid,
        version: Vec<u8>,
    ) -> Result<Self, Error> {
        let (tx, events) = mpsc::channel(DOC_EVENT_BUFFER);
        let token = rand::random();
        // Opening a document again replaces the earlier handle: its events end.
        docs.lock().insert(doc_id, (token, tx));
        sender.send(DocOpen::new(doc_id, version)).await?;
        Ok(Self {
            doc_id,
            token,
            sender,
            docs,
            events,
        })
    }

    /// The document.
    pub fn id(&self) -> Uuid {
        self.doc_id
    }

    /// The next event. `None` once the connection closed, the document was opened
    /// again, or this handle fell [`DOC_EVENT_BUFFER`] events behind: open it again
    /// with the replica's version to resume where it is.
    pub async fn next(&mut self) -> Option<DocEvent> {
        self.events.recv().await
    }

    /// Sends a local edit: an update the agent's replica made. The mesh relays it to
    /// the other editors, not back to this one; a refusal arrives as
    /// [`DocEvent::Refused`].
    pub async fn send(&self, update: Vec<u8>) -> Result<(), Error> {
        self.sender.send(DocUpdate::new(self.doc_id, update)).await
    }
}

impl Drop for OpenDoc {
    fn drop(&mut self) {
        let mut docs = self.docs.lock();
        if docs.get(&self.doc_id).map(|(token, _)| *token) == Some(self.token) {
            docs.remove(&self.doc_id);
            let _ = self.sender.try_send(DocClose::new(self.doc_id));
        }
    }
}
