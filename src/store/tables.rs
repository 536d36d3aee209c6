//! The redb tables of the index and the audit trail, in one place so that the modules that
//! read and write them depend on this file rather than on each other.

use redb::TableDefinition;

/// Message metadata (plaintext JSON: id, time, size, domains), keyed by id.
pub(super) const META: TableDefinition<u128, &[u8]> = TableDefinition::new("meta");
/// Sealed summaries (envelope, subject, auth results), keyed by id.
pub(super) const SUMMARIES: TableDefinition<u128, &[u8]> = TableDefinition::new("summaries");
/// Where a message stored in a segment lives: id -> (segment, offset, length). Messages
/// without a row have their own file, `messages/<id>.age`.
pub(super) const SEGMENT_REFS: TableDefinition<u128, (u64, u64, u64)> =
    TableDefinition::new("segment_refs");
/// Messages under legal hold: id -> when the hold was placed (seconds since the epoch).
pub(super) const HOLDS: TableDefinition<u128, i64> = TableDefinition::new("holds");
/// Audit records by sequence number, each its canonical JSON bytes.
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// `head` and `anchor` of the audit chain, see [`super::audit`].
pub(super) const AUDIT_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_state");
/// Four-eyes approval requests by number, each its JSON (see [`super::requests`]).
pub(super) const REQUESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("requests");
