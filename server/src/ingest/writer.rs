//! The single writer: it groups whatever is waiting into one durable commit, answers each
//! submitter (so MQTT acknowledges only stored readings), then broadcasts the changes live.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tracing::{error, warn};

use super::{Batching, IngestError, Job, Refusals};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::Store;

pub(super) struct Writer {
    pub store: Arc<dyn Store>,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub refusals: Arc<Refusals>,
    pub batching: Batching,
}

impl Writer {
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) {
        let batching = self.batching;
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
            self.commit(jobs).await;
        }
    }

    async fn commit(&self, jobs: Vec<Job>) {
        let metrics = &self.metrics;
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
        let store = self.store.clone();
        let (n_messages, n_statuses) = (messages.len(), statuses.len() as u64);
        let result = tokio::task::spawn_blocking(move || {
            let outcome = store.commit(&messages, &statuses);
            (outcome, messages)
        })
        .await;
        let (outcome, messages) = match result {
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
                    self.hub.publish_json(event.device(), json);
                }
                if self.refusals.watching() {
                    for incoming in &messages {
                        self.refusals.accepted(incoming.message.device.as_str());
                    }
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
}
