//! The ingest service: every source (embedded broker, external broker, HTTP) hands accepted
//! messages here. A single writer task groups whatever is waiting into one durable commit,
//! then answers each submitter (so MQTT acknowledges only stored readings), then broadcasts
//! the readings live. Order: validate (at the source) → group commit → acknowledge → broadcast.

use std::sync::Arc;
use std::time::{Duration, Instant};

use telemetry::{Message, Millis};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, warn};

use crate::hub::Hub;
use crate::limits::{Limits, Pace, Refusal};
use crate::metrics::{Metrics, Source};
use crate::store::{Incoming, StatusReport, Store};

/// Jobs waiting for the writer, beyond which submitters wait (backpressure).
const QUEUE: usize = 16_384;

/// The result a submitter waits for.
pub type Ack = Result<(), IngestError>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("storage unavailable; nothing in this batch was stored")]
    Storage,
    #[error("the server is shutting down")]
    Closed,
}

enum Job {
    Messages(Vec<Incoming>, oneshot::Sender<Ack>),
    Status(StatusReport, oneshot::Sender<Ack>),
}

impl Job {
    fn readings(&self) -> usize {
        match self {
            Job::Messages(m, _) => m.iter().map(|i| i.message.values.len()).sum::<usize>().max(1),
            Job::Status(..) => 1,
        }
    }
}

/// Handle to the ingest service; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    limits: Arc<Limits>,
}

/// Group-commit limits.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub max_readings: usize,
    pub linger: Duration,
}

impl Ingest {
    /// Starts the writer task. Once `stop` turns true (or every `Ingest` handle is dropped)
    /// it refuses new jobs, commits what is queued and ends; await the returned handle to
    /// know the last commit is done.
    pub fn start(
        store: Arc<dyn Store>,
        hub: Hub,
        metrics: Arc<Metrics>,
        limits: Arc<Limits>,
        batching: Batching,
        stop: watch::Receiver<bool>,
    ) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(writer(rx, store, hub, metrics.clone(), batching, stop));
        (Ingest { tx, metrics, limits }, writer)
    }

    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// Applies the admission limits to an accepted message, counting what they drop or
    /// refuse. `Ok` holds how long to wait before storing it (see [`Pace::Wait`]).
    pub fn admit(&self, message: &mut Message, pace: Pace) -> Result<Duration, Refusal> {
        let before = message.dropped.len();
        let result = self.limits.admit(message, pace, Instant::now());
        for d in &message.dropped[before..] {
            self.metrics.dropped_metric(d.reason.label());
            warn!(device = %message.device, metric = %d.name, "metric dropped: the device has too many metrics");
        }
        match &result {
            Ok(wait) if !wait.is_zero() => self.metrics.throttled(),
            Ok(_) => {}
            Err(refusal) => {
                self.metrics.rejected(refusal.label());
                match refusal {
                    // A flooding device would flood the log too; the counter tells.
                    Refusal::RateLimited(_) => debug!(device = %message.device, "message dropped: {refusal}"),
                    _ => warn!(device = %message.device, "message refused: {refusal}"),
                }
            }
        }
        result
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Counts the outcome of parsing a message (call once per received message).
    pub fn record_parse(&self, source: Source, result: &Result<Message, telemetry::RejectReason>) {
        self.metrics.received(source);
        match result {
            Ok(m) => {
                for d in &m.dropped {
                    self.metrics.dropped_metric(d.reason.label());
                }
                if m.ts_source != telemetry::TimestampSource::Device {
                    self.metrics.timestamp_replaced(m.ts_source.label());
                }
            }
            Err(reason) => self.metrics.rejected(reason.label()),
        }
    }

    /// Queues messages for the next commit; the receiver resolves once they are durable.
    pub async fn submit(&self, messages: Vec<Message>, received: Millis) -> oneshot::Receiver<Ack> {
        let (done, wait) = oneshot::channel();
        let incoming = messages.into_iter().map(|message| Incoming { message, received }).collect();
        if let Err(mpsc::error::SendError(Job::Messages(_, done))) =
            self.tx.send(Job::Messages(incoming, done)).await
        {
            let _ = done.send(Err(IngestError::Closed));
        }
        wait
    }

    /// Stores messages and waits until they are durable.
    pub async fn store(&self, messages: Vec<Message>, received: Millis) -> Ack {
        self.submit(messages, received).await.await.unwrap_or(Err(IngestError::Closed))
    }

    /// Records a device's online/offline report and waits until it is durable.
    pub async fn status(&self, report: StatusReport) -> Ack {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Status(report, done)).await.is_err() {
            return Err(IngestError::Closed);
        }
        wait.await.unwrap_or(Err(IngestError::Closed))
    }
}

async fn writer(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<dyn Store>,
    hub: Hub,
    metrics: Arc<Metrics>,
    batching: Batching,
    mut stop: watch::Receiver<bool>,
) {
    let mut closed = false;
    loop {
        let first = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop), if !closed => {
                rx.close();
                closed = true;
                continue;
            }
            job = rx.recv() => job,
        };
        let Some(first) = first else { break };
        let mut jobs = vec![first];
        let mut readings = jobs[0].readings();
        let deadline = tokio::time::Instant::now() + batching.linger;
        while readings < batching.max_readings {
            let next = match rx.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) if batching.linger.is_zero() => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv()).await.ok().flatten()
                }
            };
            let Some(job) = next else { break };
            readings += job.readings();
            jobs.push(job);
        }
        commit(jobs, &store, &hub, &metrics).await;
    }
}

async fn commit(jobs: Vec<Job>, store: &Arc<dyn Store>, hub: &Hub, metrics: &Metrics) {
    let mut messages = Vec::new();
    let mut statuses = Vec::new();
    let mut replies = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job {
            Job::Messages(m, done) => {
                messages.extend(m);
                replies.push(done);
            }
            Job::Status(s, done) => {
                statuses.push(s);
                replies.push(done);
            }
        }
    }
    let started = Instant::now();
    let store = store.clone();
    let (n_messages, n_statuses) = (messages.len(), statuses.len() as u64);
    let result = tokio::task::spawn_blocking(move || store.commit(&messages, &statuses)).await;
    let outcome = match result {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "storage commit panicked");
            metrics.commit_failed();
            for done in replies {
                let _ = done.send(Err(IngestError::Storage));
            }
            return;
        }
    };
    match outcome {
        Ok(outcome) => {
            metrics.committed(
                outcome.fresh_messages,
                outcome.stored,
                outcome.duplicates,
                n_statuses,
                started.elapsed().as_micros() as u64,
            );
            if outcome.duplicates > 0 {
                warn!(duplicates = outcome.duplicates, "redelivered readings were already stored");
            }
            for done in replies {
                let _ = done.send(Ok(()));
            }
            for (event, json) in outcome.events.iter().zip(outcome.wire) {
                hub.publish_json(event.device(), json);
            }
        }
        Err(e) => {
            error!(error = %e, messages = n_messages, "storage commit failed; nothing acknowledged");
            metrics.commit_failed();
            for done in replies {
                let _ = done.send(Err(IngestError::Storage));
            }
        }
    }
}

/// Server time now, in milliseconds.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}
