//! Change notification between processes on one database: PostgreSQL `NOTIFY` and
//! `LISTEN`, so several service instances learn what the others wrote.

use futures_util::Stream;
use sqlx::postgres::{PgListener, PgPool};

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

    /// Listens on `channel` on a connection of its own. The stream never ends: when
    /// the connection drops or fails (a PostgreSQL restart, a terminated backend) it
    /// yields [`Heard::Lost`], listens again with backoff (100 ms doubling to 5 s),
    /// then yields [`Heard::Resumed`] — notifications sent in between are gone, so a
    /// listener re-reads what it tracks then.
    pub async fn listen(
        &self,
        channel: &str,
    ) -> Result<impl Stream<Item = Heard> + Unpin + Send + use<>> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(backend)?;
        // Report a lost connection at once; `relisten` reconnects, with backoff.
        listener.eager_reconnect(false);
        listener.listen(channel).await.map_err(backend)?;
        let (pool, channel) = (self.pool.clone(), channel.to_owned());
        Ok(Box::pin(futures_util::stream::unfold(
            (Some(listener), pool, channel),
            |(listener, pool, channel)| async move {
                let Some(mut listener) = listener else {
                    let listener = relisten(&pool, &channel).await;
                    return Some((Heard::Resumed, (Some(listener), pool, channel)));
                };
                let lost = match listener.try_recv().await {
                    Ok(Some(note)) => {
                        let heard = Heard::Note(note.payload().to_owned());
                        return Some((heard, (Some(listener), pool, channel)));
                    }
                    Ok(None) => StoreError::Backend {
                        backend: "postgres",
                        retryable: true,
                        source: "the listening connection was lost".into(),
                    },
                    Err(e) => backend(e),
                };
                Some((Heard::Lost(lost), (None, pool, channel)))
            },
        )))
    }
}

/// What a listener ([`PgStore::listen`]) hears.
#[derive(Debug)]
#[non_exhaustive]
pub enum Heard {
    /// A notification's payload.
    Note(String),
    /// The connection was lost: notifications are missed until [`Heard::Resumed`].
    Lost(StoreError),
    /// Listening again after [`Heard::Lost`]: re-read what you track.
    Resumed,
}

/// A new listener on `channel`, trying with backoff until it works.
async fn relisten(pool: &PgPool, channel: &str) -> PgListener {
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.eager_reconnect(false);
            listener.listen(channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match attempt.await {
            Ok(listener) => return listener,
            Err(e) => {
                tracing::warn!(error = %e, "listening again failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}
