//! The notice worker: delivers queued notices, up to `delivery_concurrency` at once, retries
//! temporary failures with exponential backoff up to `max_age`, and at shutdown gives
//! attempts in flight `shutdown_grace` before it interrupts them, leaving them queued.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::{Id as TaskId, JoinSet};
use tokio_util::sync::CancellationToken;

use super::transport::{DeliveryError, Transport};
use super::unix;
use crate::store::{MessageId, OutboxItem, QuarantineStore};
use crate::telemetry;

/// Longest wait between passes, so a clock change or a missed wake-up costs little.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// Longest delay between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Delivery settings.
pub struct Worker<S: QuarantineStore> {
    pub store: Arc<S>,
    pub transport: Transport,
    pub hostname: String,
    pub max_age: Duration,
    pub retry_base: Duration,
    /// Signalled when new notices are queued.
    pub wake: Arc<Notify>,
    /// How long attempts in flight may still finish once shutdown begins.
    pub shutdown_grace: Duration,
}

impl<S: QuarantineStore> Worker<S> {
    /// Runs until `shutdown`, then returns within `shutdown_grace` (plus the moment an
    /// interrupted attempt needs to let go).
    pub async fn run(self, shutdown: CancellationToken) {
        let worker = Arc::new(self);
        let interrupt = CancellationToken::new();
        let mut attempts = JoinSet::new();
        // Which notice each attempt delivers: a notice is never attempted twice at once.
        let mut in_flight: HashMap<TaskId, MessageId> = HashMap::new();
        let limit = worker.transport.limits.concurrency;
        loop {
            if in_flight.len() < limit {
                let busy: Vec<MessageId> = in_flight.values().copied().collect();
                for (id, item) in worker.due(limit, &busy).await {
                    let task = attempts.spawn(worker.clone().attempt(id, item, interrupt.clone()));
                    in_flight.insert(task.id(), id);
                }
            }
            let wait = if in_flight.len() < limit {
                let busy: Vec<MessageId> = in_flight.values().copied().collect();
                worker.next_wait(busy).await
            } else {
                MAX_IDLE
            };
            tokio::select! {
                Some(done) = attempts.join_next_with_id() => {
                    let task = match done {
                        Ok((task, ())) => task,
                        Err(error) => error.id(),
                    };
                    in_flight.remove(&task);
                }
                _ = tokio::time::sleep(wait) => {}
                _ = worker.wake.notified() => {}
                _ = shutdown.cancelled() => break,
            }
        }
        let finished = tokio::time::timeout(worker.shutdown_grace, async {
            while attempts.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::info!(
                attempts = attempts.len(),
                "grace period over; interrupting notice deliveries, which stay queued"
            );
            interrupt.cancel();
            while attempts.join_next().await.is_some() {}
        }
    }

    /// Notices due now that are not being delivered, at most enough to fill the free slots.
    async fn due(&self, limit: usize, busy: &[MessageId]) -> Vec<(MessageId, OutboxItem)> {
        let now = unix(SystemTime::now());
        // Exactly as many as there are free slots: on a shared store each one is claimed.
        match self
            .store
            .outbox_due(now, limit.saturating_sub(busy.len()), busy)
            .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "reading the notice outbox failed");
                Vec::new()
            }
        }
    }

    async fn next_wait(&self, busy: Vec<MessageId>) -> Duration {
        let next = self.store.outbox_next_due(&busy).await.ok().flatten();
        if let Ok(waiting) = self.store.outbox_len().await {
            metrics::gauge!(telemetry::OUTBOX).set(waiting as f64);
        }
        match next {
            Some(at) => {
                Duration::from_secs((at - unix(SystemTime::now())).max(0) as u64).min(MAX_IDLE)
            }
            None => MAX_IDLE,
        }
    }

    /// One attempt, then the outbox row settled. An attempt interrupted by shutdown is not
    /// settled: the notice stays queued as it was, its attempts not counted.
    async fn attempt(
        self: Arc<Self>,
        id: MessageId,
        item: OutboxItem,
        interrupt: CancellationToken,
    ) {
        let outcome = tokio::select! {
            biased;
            outcome = self.transport.deliver(&self.hostname, &item.to, item.message.as_bytes()) => outcome,
            _ = interrupt.cancelled() => {
                tracing::info!(%id, "notice delivery interrupted by shutdown; left queued");
                return;
            }
        };
        let (next, counted) = self.after_attempt(id, item.clone(), outcome);
        if let Err(error) = self
            .store
            .outbox_settle(id, &item, next.as_ref(), counted)
            .await
        {
            tracing::error!(%error, %id, "updating the notice outbox failed");
        }
    }

    /// What to keep of a notice after an attempt (`None` to remove it), and the total the
    /// attempt counts towards.
    fn after_attempt(
        &self,
        id: MessageId,
        mut item: OutboxItem,
        outcome: Result<(), DeliveryError>,
    ) -> (Option<OutboxItem>, &'static str) {
        let now = unix(SystemTime::now());
        match outcome {
            Ok(()) => {
                tracing::info!(%id, attempts = item.attempts + 1, "notice delivered");
                metrics::counter!(telemetry::NOTICES_SENT).increment(1);
                tracing::debug!(%id, to = %item.to, "notice delivered to");
                (None, "sent")
            }
            Err(DeliveryError::Permanent { summary, detail }) => {
                tracing::warn!(%id, reason = %summary, "notice refused permanently; dropped");
                tracing::debug!(%id, %detail, "notice refusal in full");
                metrics::counter!(telemetry::NOTICES_FAILED, "kind" => "permanent").increment(1);
                (None, "failed:permanent")
            }
            Err(DeliveryError::Temporary { summary, detail }) => {
                tracing::debug!(%id, %detail, "notice delivery failure in full");
                let reason = summary;
                item.attempts += 1;
                metrics::counter!(telemetry::NOTICES_FAILED, "kind" => "temporary").increment(1);
                if now - item.created_at >= self.max_age.as_secs() as i64 {
                    tracing::warn!(%id, attempts = item.attempts, %reason, "notice undeliverable within max_age; dropped");
                    metrics::counter!(telemetry::NOTICES_FAILED, "kind" => "expired").increment(1);
                    return (None, "failed:expired");
                }
                let delay = backoff(self.retry_base, item.attempts);
                item.next_attempt_at = now + delay.as_secs().max(1) as i64;
                tracing::info!(%id, attempts = item.attempts, retry_in_s = delay.as_secs(), %reason, "notice delivery failed; will retry");
                (Some(item), "failed:temporary")
            }
        }
    }
}

/// `base * 2^(attempts-1)`, at most an hour.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = Duration::from_secs(60);
        assert_eq!(backoff(base, 1), Duration::from_secs(60));
        assert_eq!(backoff(base, 2), Duration::from_secs(120));
        assert_eq!(backoff(base, 5), Duration::from_secs(960));
        assert_eq!(backoff(base, 7), MAX_BACKOFF);
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }
}
