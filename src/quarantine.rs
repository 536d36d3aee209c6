//! The quarantine service: the non-SMTP half of the message path. It owns the store, the
//! reader groups, sender authentication, notice planning and the notice wake-up, so that the SMTP
//! driver only carries out the session's actions: [`Quarantine::open`] when a message
//! starts, [`Intake::write`] for its bytes, [`Quarantine::commit`] at its end.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use crate::auth::{self, AuthInput};
use crate::capacity::MemoryBudget;
use crate::config::NotifyConfig;
use crate::dns::Dns;
use crate::domains::Recipient;
use crate::domains::RetiredDomains;
use crate::intake::{AuthCopyLimits, Intake, IntakeError};
use crate::notice::{self, Templates};
use crate::retention::RetentionPolicy;
use crate::seal::ReaderGroups;
use crate::smtp::{Envelope, StoreOutcome};
use crate::store::QuarantineStore;
use crate::summary::Summary;
use crate::telemetry;

/// Everything a message needs between its first byte and its durable commit, shared by all
/// connections. Generic over the store behind it.
pub struct Quarantine<S: QuarantineStore> {
    pub store: Arc<S>,
    /// Who each message is sealed to, by the retired domains it is addressed to.
    pub readers: ReaderGroups,
    /// This gateway's name, for trace fields and notices.
    pub hostname: String,
    pub domains: RetiredDomains,
    pub dns: Dns,
    pub notify: Arc<NotifyConfig>,
    pub templates: Templates,
    /// Per-domain retention, for what notices say about keeping the copy.
    pub retention: RetentionPolicy,
    /// Wakes the notice worker when a commit queued notices.
    pub notices_queued: Arc<Notify>,
    /// What the in-memory copies kept for DKIM may use together.
    pub auth_budget: Arc<MemoryBudget>,
}

impl<S: QuarantineStore> Quarantine<S> {
    /// Opens a sealed intake for a message with this envelope, sealed to the readers of the
    /// retired domains its recipients were accepted for; with DNS on, it also keeps a
    /// plaintext copy for DKIM within the size limit and the memory budget.
    pub async fn open(&self, envelope: &Envelope) -> Result<Intake<S>, IntakeError> {
        let sealer = self
            .readers
            .sealer_for(envelope.recipients.iter().map(Recipient::retired_domain))?;
        let auth_limit = (!matches!(self.dns, Dns::Off)).then(|| AuthCopyLimits {
            max_size: self.notify.auth_max_message_size,
            budget: self.auth_budget.clone(),
        });
        Intake::start(&*self.store, &sealer, envelope, &self.hostname, auth_limit).await
    }

    /// Authenticates the sender, plans notices, and commits message and notices together.
    pub async fn commit(&self, intake: Intake<S>, mut summary: Summary) -> StoreOutcome {
        let started = Instant::now();
        if let Some(partial) = intake.auth_copy_partial() {
            metrics::counter!(telemetry::AUTH_COPY_PARTIAL, "reason" => partial.reason())
                .increment(1);
        }
        if let Some((message, complete)) = intake.auth_copy() {
            summary.auth = auth::check(
                &self.dns,
                AuthInput {
                    client_ip: intake.envelope().client_ip,
                    helo: &summary.helo,
                    hostname: &self.hostname,
                    mail_from: &summary.mail_from,
                    message,
                    complete,
                },
            )
            .await;
        }
        let planner = notice::Planner {
            notify: &self.notify,
            domains: &self.domains,
            templates: &self.templates,
            store: &*self.store,
            hostname: &self.hostname,
            retention: &self.retention,
        };
        let recipients = intake.envelope().recipients.clone();
        let notices = planner.plan(&summary, &recipients, intake.received_at());
        let size = intake.size();
        match intake.finish(&self.store, &summary, notices).await {
            Ok((id, notice)) => {
                metrics::histogram!(telemetry::COMMIT_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                for disposition in recipients.iter().filter_map(|r| r.disposition.as_ref()) {
                    metrics::counter!(telemetry::MESSAGES_ACCEPTED, "domain" => disposition.domain.clone())
                        .increment(1);
                }
                metrics::gauge!(telemetry::STORE_MESSAGES).increment(1.0);
                metrics::counter!(telemetry::STORED_BYTES).increment(size);
                metrics::counter!(telemetry::NOTICES_QUEUED).increment(notice.queued as u64);
                if let Some(reason) = notice.limited {
                    metrics::counter!(telemetry::NOTICES_SUPPRESSED, "reason" => reason)
                        .increment(1);
                }
                tracing::info!(%id, notices = notice.queued, limited = notice.limited, elapsed_ms = started.elapsed().as_millis() as u64, "message quarantined");
                if notice.queued > 0 {
                    self.notices_queued.notify_one();
                }
                StoreOutcome::Stored { id: id.to_string() }
            }
            Err(error) => {
                tracing::error!(%error, "storing a message failed");
                StoreOutcome::Failed
            }
        }
    }
}
