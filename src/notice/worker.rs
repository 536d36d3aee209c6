//! The notice worker: delivers queued notices, retries temporary failures with exponential
//! backoff up to `max_age`, and leaves whatever is undelivered at shutdown for the next start.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::transport::{DeliveryError, Transport};
use super::unix;
use crate::store::{MessageId, OutboxItem, Store};
use crate::telemetry;

/// Notices handled per pass.
const BATCH: usize = 32;
/// Longest wait between passes, so a clock change or a missed wake-up costs little.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// Longest delay between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Delivery settings.
pub struct Worker {
    pub store: Arc<Store>,
    pub transport: Transport,
    pub hostname: String,
    pub max_age: Duration,
    pub retry_base: Duration,
    /// Signalled when new notices are queued.
    pub wake: Arc<Notify>,
}

impl Worker {
    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let handled = self.pass().await;
            if handled >= BATCH {
                continue;
            }
            let wait = self.next_wait().await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn next_wait(&self) -> Duration {
        let store = self.store.clone();
        let next = tokio::task::spawn_blocking(move || store.outbox_next_due())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let store = self.store.clone();
        if let Ok(Ok(waiting)) = tokio::task::spawn_blocking(move || store.outbox_len()).await {
            metrics::gauge!(telemetry::OUTBOX).set(waiting as f64);
        }
        match next {
            Some(at) => {
                Duration::from_secs((at - unix(SystemTime::now())).max(0) as u64).min(MAX_IDLE)
            }
            None => MAX_IDLE,
        }
    }

    /// Delivers what is due; returns how many notices it handled.
    async fn pass(&self) -> usize {
        let store = self.store.clone();
        let now = unix(SystemTime::now());
        let due = match tokio::task::spawn_blocking(move || store.outbox_due(now, BATCH)).await {
            Ok(Ok(due)) => due,
            Ok(Err(error)) => {
                tracing::error!(%error, "reading the notice outbox failed");
                return 0;
            }
            Err(_) => return 0,
        };
        let count = due.len();
        for (id, item) in due {
            let outcome = self
                .transport
                .deliver(&self.hostname, &item.to, item.message.as_bytes())
                .await;
            let (next, counted) = self.after_attempt(id, item, outcome);
            let store = self.store.clone();
            if let Ok(Err(error)) =
                tokio::task::spawn_blocking(move || store.outbox_settle(id, next.as_ref(), counted))
                    .await
            {
                tracing::error!(%error, %id, "updating the notice outbox failed");
            }
        }
        count
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
            Err(DeliveryError::Permanent(reason)) => {
                tracing::warn!(%id, %reason, "notice refused permanently; dropped");
                metrics::counter!(telemetry::NOTICES_FAILED, "kind" => "permanent").increment(1);
                (None, "failed:permanent")
            }
            Err(DeliveryError::Temporary(reason)) => {
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
