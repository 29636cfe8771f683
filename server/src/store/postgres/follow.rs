//! Following the change log from another node: every commit that numbers changes also sends
//! `NOTIFY changes, '<its last number>'`, which PostgreSQL delivers when the transaction
//! commits and in commit order, so the numbers a listener hears only grow. A listener keeps
//! the latest heard in a `watch` (a slow reader sees the newest, not a queue) and reads the
//! changes themselves with [`PgStore::changes_after`]: the notification says when, the log
//! says what, so a lost or merged notification loses nothing.

use futures::StreamExt;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;

use super::error::PgError;
use super::store::PgStore;

/// The channel the change log's numbers are sent on.
pub(super) const CHANNEL: &str = "changes";

/// A listener on the change log's numbers; dropping it closes its connection.
pub struct Follower {
    latest: watch::Receiver<u64>,
    _client: tokio_postgres::Client,
}

impl Follower {
    /// The highest number heard so far (0 before any); [`Follower::changed`] then waits for
    /// a higher one.
    pub fn latest(&mut self) -> u64 {
        *self.latest.borrow_and_update()
    }

    /// Waits for a higher number than the last one this returned or [`Follower::latest`]
    /// saw; `None` once the connection is gone (listen again, then catch up from the log).
    pub async fn changed(&mut self) -> Option<u64> {
        self.latest.changed().await.ok()?;
        Some(*self.latest.borrow_and_update())
    }
}

impl PgStore {
    /// Listens on a connection of its own (not the pool's) for changes committed by any
    /// node, from now on.
    pub async fn follow(&self) -> Result<Follower, PgError> {
        let (client, mut connection) = self.connect.config.connect(self.connect.tls.clone()).await?;
        let (heard, latest) = watch::channel(0u64);
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        tokio::spawn(async move {
            // Ends when the connection does, or when the Follower drops its client.
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => {
                        if let Ok(seq) = n.payload().parse::<u64>() {
                            heard.send_if_modified(|latest| {
                                let newer = seq > *latest;
                                *latest = (*latest).max(seq);
                                newer
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "postgres: the change log's listener lost its connection");
                        break;
                    }
                }
            }
        });
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        Ok(Follower { latest, _client: client })
    }
}
