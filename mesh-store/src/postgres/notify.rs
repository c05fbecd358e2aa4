//! Change notification between processes on one database: PostgreSQL `NOTIFY` and
//! `LISTEN`, so several service instances learn what the others wrote.

use futures_util::{Stream, StreamExt};
use sqlx::postgres::PgListener;

use super::{PgStore, backend};
use crate::{Result, StoreError};

/// The largest payload PostgreSQL accepts in one notification (its limit is 8,000 bytes).
pub const MAX_NOTIFY_PAYLOAD: usize = 7999;

impl PgStore {
    /// Sends `payload` to every session listening on `channel`. Delivered when (and
    /// only if) the sending transaction commits; here each call is its own transaction.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if payload.len() > MAX_NOTIFY_PAYLOAD {
            return Err(StoreError::Invalid(format!(
                "a notification payload has at most {MAX_NOTIFY_PAYLOAD} bytes"
            )));
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Listens on `channel` on a connection of its own; yields each payload. The
    /// connection is re-established if it drops — notifications sent meanwhile are
    /// lost, so listeners should also re-read what they care about now and then.
    pub async fn listen(
        &self,
        channel: &str,
    ) -> Result<impl Stream<Item = Result<String>> + Unpin + Send + use<>> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(backend)?;
        listener.listen(channel).await.map_err(backend)?;
        Ok(listener
            .into_stream()
            .map(|n| n.map(|n| n.payload().to_owned()).map_err(backend)))
    }
}
