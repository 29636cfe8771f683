//! [`PgBlocking`]: the PostgreSQL store behind the synchronous [`super::super::Store`] traits.
//!
//! The server calls its store from blocking threads and from request handlers alike, as the
//! redb store's calls are short. A database round trip cannot be awaited there, and
//! `Handle::block_on` panics inside a runtime; so the store keeps a small runtime of its own
//! where its connections live and its queries run, and a call hands its query over and
//! waits for the answer on a channel. That works from any thread, a runtime's or not, and a
//! caller's runtime stopping never takes a connection with it.

use std::future::Future;
use std::sync::Arc;

use super::super::error::StoreError;
use super::error::PgError;
use super::pool::PgSettings;
use super::store::PgStore;

/// The runtime's threads: the queries' work is in the database, so two are plenty.
const THREADS: usize = 2;

/// A node's store on PostgreSQL, for the synchronous traits. Clones share the pool and the
/// runtime (the server's store and its sign-in's users are one).
#[derive(Clone)]
pub struct PgBlocking {
    store: Arc<PgStore>,
    runtime: Arc<Threads>,
}

/// The store's runtime, stopped when the last clone goes.
struct Threads(Option<tokio::runtime::Runtime>);

impl PgBlocking {
    /// Starts the store's runtime, then opens the store on it ([`PgStore::open`]).
    pub fn open(settings: &PgSettings) -> Result<PgBlocking, PgError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(THREADS)
            .thread_name("postgres")
            .enable_all()
            .build()
            .map_err(|e| PgError::Setting(format!("cannot start the store's threads: {e}")))?;
        let settings = settings.clone();
        let store = wait(&runtime, async move { PgStore::open(&settings).await })
            .ok_or_else(|| PgError::Setting("the store's threads stopped".into()))??;
        Ok(PgBlocking { store: Arc::new(store), runtime: Arc::new(Threads(Some(runtime))) })
    }

    /// The asynchronous store, for what awaits (the change log's follower). Its connections
    /// are made on the runtime that first needs them: await it in [`PgBlocking::spawn`]ed
    /// tasks.
    pub fn store(&self) -> &Arc<PgStore> {
        &self.store
    }

    /// Runs a task on the store's runtime.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime().spawn(task)
    }

    /// Runs `query` on the store's runtime and waits for its answer.
    pub(super) fn call<T, Q, F>(&self, query: Q) -> Result<T, StoreError>
    where
        Q: FnOnce(Arc<PgStore>) -> F,
        F: Future<Output = Result<T, PgError>> + Send + 'static,
        T: Send + 'static,
    {
        wait(self.runtime(), query(self.store.clone())).ok_or(StoreError::Unavailable)?.map_err(Into::into)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.0.as_ref().expect("the runtime lives as long as the store")
    }
}

/// Runs `task` on `runtime`, blocking this thread until it ends; `None` if the runtime
/// dropped it.
fn wait<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    task: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(task.await);
    });
    rx.recv().ok()
}

impl Drop for Threads {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which a caller's runtime forbids:
        // they are told to stop and left to.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
