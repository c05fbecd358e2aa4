//! Several engines on one PostgreSQL (feature `postgres`): each publishes the records it
//! writes with `NOTIFY`, and [`refresh`](crate::Engine::refresh)es the ones the others
//! write, heard with `LISTEN`. So an agent connected to one service instance receives
//! a task submitted through another, and a task cancelled anywhere stops everywhere.

use mesh_store::{Heard, PgStore, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::engine::{Change, Engine};

/// The PostgreSQL channel the engines talk on.
pub const CHANNEL: &str = "mesh_changes";

#[derive(Serialize, Deserialize)]
struct Note {
    origin: Uuid,
    #[serde(flatten)]
    change: Change,
}

/// Joins `engine` (started with [`EngineConfig::clustered`](crate::EngineConfig::clustered))
/// to the other engines on `store`'s database. The returned tasks run until the engine
/// stops; abort them to leave earlier.
pub async fn join(engine: &Engine, store: &PgStore) -> Result<[JoinHandle<()>; 2], StoreError> {
    let origin = Uuid::new_v4();
    let mut heard = store.listen(CHANNEL).await?;
    let listener = {
        let engine = engine.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(heard) = heard.next().await {
                let note = match heard {
                    Heard::Note(payload) => serde_json::from_str::<Note>(&payload),
                    Heard::Lost(e) => {
                        tracing::warn!(error = %e, "lost the change notifications; listening again");
                        engine.set_listening(false);
                        continue;
                    }
                    Heard::Resumed => {
                        // Whatever changed meanwhile was not heard: catch up.
                        if engine.resync().await.is_err() {
                            return;
                        }
                        engine.set_listening(true);
                        tracing::info!("listening for changes again");
                        continue;
                    }
                    _ => continue,
                };
                match note {
                    Ok(note) if note.origin == origin => {}
                    Ok(note) => {
                        if engine.refresh(note.change).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "an unreadable change note"),
                }
            }
        })
    };
    let mut changes = engine.changes();
    let store = store.clone();
    let publisher = tokio::spawn(async move {
        loop {
            let change = match changes.recv().await {
                Ok(change) => change,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "fell behind publishing changes");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let note = Note { origin, change };
            let Ok(payload) = serde_json::to_string(&note) else {
                continue;
            };
            if let Err(e) = store.notify(CHANNEL, &payload).await {
                tracing::warn!(error = %e, "publishing a change failed");
            }
        }
    });
    Ok([listener, publisher])
}
