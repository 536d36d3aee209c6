//! Prometheus metrics on an optional internal listener (`[metrics] listen`). Metric names
//! live here so that the README's list and the code cannot drift apart. Labels carry
//! reasons and domains only, never addresses.

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio_util::sync::CancellationToken;

pub const CONNECTIONS: &str = "reclaim_connections_total";
pub const CONNECTIONS_REFUSED: &str = "reclaim_connections_refused_total";
pub const CONNECTIONS_ACTIVE: &str = "reclaim_connections_active";
pub const MESSAGES_ACCEPTED: &str = "reclaim_messages_accepted_total";
pub const REJECTIONS: &str = "reclaim_rejections_total";
pub const STORED_BYTES: &str = "reclaim_stored_bytes_total";
pub const STORE_MESSAGES: &str = "reclaim_store_messages";
pub const COMMIT_SECONDS: &str = "reclaim_end_of_data_to_reply_seconds";
pub const NOTICES_QUEUED: &str = "reclaim_notices_queued_total";
pub const NOTICES_SENT: &str = "reclaim_notices_sent_total";
pub const NOTICES_SUPPRESSED: &str = "reclaim_notices_suppressed_total";
pub const NOTICES_FAILED: &str = "reclaim_notices_failed_total";
pub const OUTBOX: &str = "reclaim_notices_outbox";
pub const STORAGE_REFUSALS: &str = "reclaim_storage_refusals_total";
pub const STORE_SEALED_BYTES: &str = "reclaim_store_sealed_bytes";
pub const AUTH_COPY_PARTIAL: &str = "reclaim_auth_copy_partial_total";
pub const TLS_CERT_EXPIRY: &str = "reclaim_tls_certificate_expiry_timestamp_seconds";
pub const REGISTRATION_EXPIRY: &str = "reclaim_domain_registration_expiry_timestamp_seconds";
pub const REGISTRATION_DAYS_LEFT: &str = "reclaim_domain_registration_days_left";
pub const REGISTRATION_STATUS: &str = "reclaim_domain_registration_status";
pub const REGISTRATION_LOCKED: &str = "reclaim_domain_registry_locked";
pub const REGISTRATION_CHECKED: &str = "reclaim_domain_registration_checked_timestamp_seconds";

/// Why the metrics listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Another recorder is installed in this process.
    #[error("metrics listener {addr}: {message}")]
    Listener { addr: SocketAddr, message: String },
    /// The exporter could not be built (its listener could not bind, for one).
    #[error("metrics listener {addr}: {source}")]
    Build {
        addr: SocketAddr,
        source: metrics_exporter_prometheus::BuildError,
    },
}

/// Installs the Prometheus recorder and serves `/metrics` on `addr` until `shutdown`.
pub fn serve(addr: SocketAddr, shutdown: CancellationToken) -> Result<(), TelemetryError> {
    let build = |source| TelemetryError::Build { addr, source };
    // Buckets for the durable-commit latency: the interesting range is 1-100 ms.
    let buckets = [
        0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    ];
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Full(COMMIT_SECONDS.to_owned()), &buckets)
        .map_err(build)?
        .upkeep_timeout(Duration::from_secs(5))
        .build()
        .map_err(build)?;
    metrics::set_global_recorder(recorder).map_err(|_| TelemetryError::Listener {
        addr,
        message: "a metrics recorder is already installed in this process".to_owned(),
    })?;
    describe();
    tokio::spawn(async move {
        tokio::select! {
            _ = exporter => {}
            _ = shutdown.cancelled() => {}
        }
    });
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(CONNECTIONS, "SMTP connections accepted");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "SMTP connections refused at connect, by reason"
    );
    describe_gauge!(CONNECTIONS_ACTIVE, "SMTP connections open now");
    describe_counter!(MESSAGES_ACCEPTED, "messages quarantined, by retired domain");
    describe_counter!(
        REJECTIONS,
        "SMTP error replies, by reply code and enhanced status"
    );
    describe_counter!(STORED_BYTES, "plaintext bytes of quarantined messages");
    describe_gauge!(STORE_MESSAGES, "messages in the quarantine");
    describe_histogram!(COMMIT_SECONDS, "end of DATA to the final reply, seconds");
    describe_counter!(NOTICES_QUEUED, "notices queued for delivery");
    describe_counter!(NOTICES_SENT, "notices delivered");
    describe_counter!(NOTICES_SUPPRESSED, "notices not sent, by reason");
    describe_counter!(
        NOTICES_FAILED,
        "notice delivery failures, by kind (temporary, permanent, expired)"
    );
    describe_gauge!(OUTBOX, "notices waiting for delivery");
    describe_counter!(
        STORAGE_REFUSALS,
        "messages refused with 452 4.3.1 before their data, by reason (max_size, min_free)"
    );
    describe_gauge!(STORE_SEALED_BYTES, "sealed bytes in the quarantine");
    describe_counter!(
        AUTH_COPY_PARTIAL,
        "messages checked on their header section only, by reason (too_large, memory_budget)"
    );
    describe_gauge!(
        TLS_CERT_EXPIRY,
        "notAfter of the STARTTLS certificate, Unix seconds"
    );
    describe_gauge!(
        REGISTRATION_EXPIRY,
        "RDAP expiration date of a retired domain's registration, Unix seconds"
    );
    describe_gauge!(
        REGISTRATION_DAYS_LEFT,
        "whole days until a retired domain's registration expires, at the last check"
    );
    describe_gauge!(
        REGISTRATION_STATUS,
        "registration check of a retired domain: 0 pass, 1 warn, 2 fail"
    );
    describe_gauge!(
        REGISTRATION_LOCKED,
        "1 when the registry lock statuses are all set, else 0"
    );
    describe_gauge!(
        REGISTRATION_CHECKED,
        "time of the last successful RDAP lookup, Unix seconds"
    );
}

/// Counts an SMTP error reply.
pub fn rejection(code: u16, enhanced: &'static str) {
    metrics::counter!(REJECTIONS, "code" => code.to_string(), "status" => enhanced).increment(1);
}
