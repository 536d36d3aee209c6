//! `[notify]` keys that bound how notices are delivered: deadlines, concurrency and which
//! mail exchangers direct delivery may reach; and the deadline keys `[release]` shares.

use std::time::Duration;

use super::{ConfigError, duration, invalid};
use crate::smtp_client::Deadlines;

/// Longest any delivery deadline may be set to: a slot held longer than this is a stall.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most notices that may be delivered at once.
const MAX_CONCURRENCY: usize = 256;
/// Most mail exchangers, and most addresses, one attempt may try.
const MAX_MX_HOSTS: usize = 20;
const MAX_MX_ADDRESSES: usize = 50;

/// Connect, reply and attempt deadlines unless configured, for notices and releases alike.
pub const DEFAULT_DEADLINES: Deadlines = Deadlines {
    connect: Duration::from_secs(30),
    reply: Duration::from_secs(120),
    attempt: Duration::from_secs(300),
};

/// How notices are delivered. Defaults follow Postfix where it has an equivalent
/// (`smtp_connect_timeout` 30s) and are shorter than its per-reply timeouts (300s and more):
/// a notice is small and may wait for a retry, while a slot held by a stalled server is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Longest wait for one TCP connection to be established.
    pub connect_timeout: Duration,
    /// Longest wait for any read or write to make progress: the greeting, every reply,
    /// the TLS handshake, and the remote side taking the message.
    pub reply_timeout: Duration,
    /// Longest one attempt may take, DNS, every host tried and the whole dialogue included.
    pub attempt_timeout: Duration,
    /// Notices delivered at once; a stalled destination holds one slot only.
    pub concurrency: usize,
    /// Mail exchangers tried per attempt, by preference.
    pub max_mx_hosts: usize,
    /// Addresses connected to per attempt, over all mail exchangers.
    pub max_mx_addresses: usize,
    /// Whether direct delivery may connect to loopback, private and other non-public
    /// addresses (labs and tests only).
    pub allow_private_mx: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_DEADLINES.connect,
            reply_timeout: DEFAULT_DEADLINES.reply,
            attempt_timeout: DEFAULT_DEADLINES.attempt,
            concurrency: 8,
            max_mx_hosts: 5,
            max_mx_addresses: 10,
            allow_private_mx: false,
        }
    }
}

/// The raw `[notify]` keys read here (they sit in `RawNotify`, whose unknown-key check
/// cannot be combined with a flattened struct).
#[derive(Default)]
pub(super) struct RawDelivery {
    pub connect_timeout: Option<String>,
    pub reply_timeout: Option<String>,
    pub attempt_timeout: Option<String>,
    pub delivery_concurrency: Option<usize>,
    pub max_mx_hosts: Option<usize>,
    pub max_mx_addresses: Option<usize>,
    pub allow_private_mx: Option<bool>,
}

fn bounded_duration(
    key: &'static str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let d = duration(key, value, default)?;
    if d > MAX_TIMEOUT {
        return Err(invalid(key, "must be at most 1h"));
    }
    Ok(d)
}

fn bounded_count(
    key: &'static str,
    value: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(invalid(key, format!("must be between 1 and {max}"))),
    }
}

/// `connect_timeout`, `reply_timeout` and `attempt_timeout` of one section, named by
/// `keys` in that order: each at most 1h, and the attempt no shorter than either step.
pub(super) fn deadlines(
    keys: [&'static str; 3],
    raw: [Option<String>; 3],
) -> Result<Deadlines, ConfigError> {
    let [connect, reply, attempt] = raw;
    let d = DEFAULT_DEADLINES;
    let deadlines = Deadlines {
        connect: bounded_duration(keys[0], connect, d.connect)?,
        reply: bounded_duration(keys[1], reply, d.reply)?,
        attempt: bounded_duration(keys[2], attempt, d.attempt)?,
    };
    if deadlines.connect > deadlines.attempt || deadlines.reply > deadlines.attempt {
        return Err(invalid(
            keys[2],
            "must be at least connect_timeout and reply_timeout",
        ));
    }
    Ok(deadlines)
}

pub(super) fn delivery_config(raw: RawDelivery) -> Result<DeliveryConfig, ConfigError> {
    let d = DeliveryConfig::default();
    let deadlines = deadlines(
        [
            "notify.connect_timeout",
            "notify.reply_timeout",
            "notify.attempt_timeout",
        ],
        [raw.connect_timeout, raw.reply_timeout, raw.attempt_timeout],
    )?;
    Ok(DeliveryConfig {
        connect_timeout: deadlines.connect,
        reply_timeout: deadlines.reply,
        attempt_timeout: deadlines.attempt,
        concurrency: bounded_count(
            "notify.delivery_concurrency",
            raw.delivery_concurrency,
            d.concurrency,
            MAX_CONCURRENCY,
        )?,
        max_mx_hosts: bounded_count(
            "notify.max_mx_hosts",
            raw.max_mx_hosts,
            d.max_mx_hosts,
            MAX_MX_HOSTS,
        )?,
        max_mx_addresses: bounded_count(
            "notify.max_mx_addresses",
            raw.max_mx_addresses,
            d.max_mx_addresses,
            MAX_MX_ADDRESSES,
        )?,
        allow_private_mx: raw.allow_private_mx.unwrap_or(d.allow_private_mx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            delivery_config(RawDelivery::default()).expect("defaults"),
            DeliveryConfig::default()
        );
        let set = delivery_config(RawDelivery {
            reply_timeout: Some("10s".into()),
            attempt_timeout: Some("1m".into()),
            delivery_concurrency: Some(2),
            allow_private_mx: Some(true),
            ..RawDelivery::default()
        })
        .expect("valid");
        assert_eq!(set.reply_timeout, Duration::from_secs(10));
        assert_eq!(set.concurrency, 2);
        assert!(set.allow_private_mx);
        for bad in [
            RawDelivery {
                delivery_concurrency: Some(0),
                ..RawDelivery::default()
            },
            RawDelivery {
                max_mx_addresses: Some(51),
                ..RawDelivery::default()
            },
            RawDelivery {
                attempt_timeout: Some("2h".into()),
                ..RawDelivery::default()
            },
            RawDelivery {
                reply_timeout: Some("10m".into()),
                ..RawDelivery::default()
            },
        ] {
            assert!(delivery_config(bad).is_err());
        }
    }
}
