//! Intake: turns one message's plaintext stream into a sealed, durable quarantine entry.
//! The only place where sealing meets the store; plaintext exists here in memory only,
//! one chunk at a time.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::auth_copy::{AuthCopy, Partial};
use crate::capacity::MemoryBudget;
use crate::domains::Recipient;
use crate::seal::{SealError, SealWriter, Sealer, SummarySealer};
use crate::smtp::Envelope;
use crate::smtp::trace::trace_fields;
use crate::store::{
    MessageId, MessageMeta, NoticeOutcome, NoticePlan, QuarantineStore, StagedMessage, StoreError,
};
use crate::summary::Summary;

/// Why a message could not be taken in. Always answered with `451 4.3.0`.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("encoding the summary: {0}")]
    Summary(#[from] serde_json::Error),
}

/// Ciphertext produced by the age stream, waiting to be written to the blob file. The
/// age writer owns its output, so it writes here and the async side drains it.
#[derive(Clone, Default)]
struct Spill(Arc<Mutex<Vec<u8>>>);

impl Spill {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|poison| poison.into_inner()))
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How much of a message may be kept in memory for DKIM.
pub struct AuthCopyLimits {
    /// `[notify] auth_max_message_size`.
    pub max_size: u64,
    /// The gateway-wide budget every copy reserves from.
    pub budget: Arc<MemoryBudget>,
}

/// The message being received, staged in a store of type `S`.
pub struct Intake<S: QuarantineStore> {
    /// Seals the summary at the end, under this message's own file key.
    summary_sealer: SummarySealer,
    /// The fingerprints of the keys the message is sealed to, for its metadata.
    sealed_to: Vec<String>,
    writer: SealWriter<Spill>,
    spill: Spill,
    blob: S::Staged,
    size: u64,
    received_at: SystemTime,
    /// A plaintext copy for sender authentication (DKIM needs the whole message), kept
    /// whole only within a size limit and the gateway's memory budget.
    auth_copy: Option<AuthCopy>,
    /// The envelope as the session accepted it: what the commit needs to know about the
    /// client and the recipients travels here, typed, from RCPT time.
    envelope: Envelope,
}

impl<S: QuarantineStore> Intake<S> {
    /// Opens a sealed blob for a new message and writes the trace fields into it.
    pub async fn start(
        store: &S,
        sealer: &Sealer,
        envelope: &Envelope,
        hostname: &str,
        auth: Option<AuthCopyLimits>,
    ) -> Result<Self, IntakeError> {
        let id = MessageId::new();
        let received_at = SystemTime::now();
        let blob = store.create_blob(id).await?;
        let spill = Spill::default();
        let (writer, summary_sealer) = sealer.seal_message(spill.clone())?;
        let mut intake = Self {
            summary_sealer,
            sealed_to: sealer.fingerprints().to_vec(),
            writer,
            spill,
            blob,
            size: 0,
            received_at,
            auth_copy: None,
            envelope: envelope.clone(),
        };
        intake
            .write(&trace_fields(
                envelope,
                hostname,
                &id.to_string(),
                received_at,
            ))
            .await?;
        // Set after the trace fields: authentication looks at what the sender sent.
        intake.auth_copy = auth
            .map(|a| AuthCopy::new(usize::try_from(a.max_size).unwrap_or(usize::MAX), a.budget));
        Ok(intake)
    }

    /// The envelope the message started with.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Plaintext bytes so far (trace fields included).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// When the message started to arrive.
    pub fn received_at(&self) -> SystemTime {
        self.received_at
    }

    /// The plaintext kept for authentication, and whether it is the whole message.
    pub fn auth_copy(&self) -> Option<(&[u8], bool)> {
        self.auth_copy.as_ref().map(|c| (c.bytes(), c.complete()))
    }

    /// Why the authentication copy holds only the header section, if it does.
    pub fn auth_copy_partial(&self) -> Option<Partial> {
        self.auth_copy.as_ref().and_then(AuthCopy::partial)
    }

    /// Seals and writes the next plaintext bytes.
    pub async fn write(&mut self, plaintext: &[u8]) -> Result<(), IntakeError> {
        if let Some(copy) = self.auth_copy.as_mut() {
            copy.push(plaintext);
        }
        self.writer.write_all(plaintext).map_err(SealError::from)?;
        self.size += plaintext.len() as u64;
        let sealed = self.spill.take();
        if !sealed.is_empty() {
            self.blob.write(sealed).await?;
        }
        Ok(())
    }

    /// Finishes the sealed stream, seals the summary, and commits durably together with
    /// the notices the message causes. Returns the id and how many notices were queued.
    pub async fn finish(
        self,
        store: &S,
        summary: &Summary,
        notices: NoticePlan,
    ) -> Result<(MessageId, NoticeOutcome), IntakeError> {
        let Self {
            summary_sealer,
            sealed_to,
            writer,
            spill,
            mut blob,
            size,
            received_at,
            auth_copy: _,
            envelope,
        } = self;
        writer.finish()?;
        blob.write(spill.take()).await?;
        let sealed_summary = summary_sealer.seal(&serde_json::to_vec(summary)?);
        let meta = MessageMeta {
            received_at: received_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            size,
            sealed_size: 0,
            domains: retired_domains_of(&envelope.recipients),
            notice: None,
            sealed_to,
        };
        Ok(store.commit(blob, meta, sealed_summary, notices).await?)
    }
}

/// The distinct retired domains a message was addressed to (`postmaster` for the bare
/// `<postmaster>` recipient).
fn retired_domains_of(recipients: &[Recipient]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in recipients.iter().map(Recipient::retired_domain) {
        if !out.iter().any(|d| d == name) {
            out.push(name.to_owned());
        }
    }
    out
}
