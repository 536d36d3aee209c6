//! The plaintext copy of a message kept in memory for sender authentication: the whole
//! message while it fits `[notify] auth_max_message_size` and the gateway-wide
//! `[server] auth_memory_budget`, otherwise only its header section (enough for SPF and
//! DMARC's From domain; DKIM is then "skipped").

use std::sync::Arc;

use crate::capacity::{MemoryBudget, Reservation};

/// Most bytes of a header section kept once the whole message is not. Counted per
/// session, outside the budget (the session's header scanner keeps as much).
pub const HEADERS_ONLY_LIMIT: usize = 64 * 1024;

/// The budget is taken in steps of at least this much, so a small message needs one
/// reservation and a large one a few doublings.
const RESERVE_STEP: usize = 64 * 1024;

/// Why a copy holds only the header section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial {
    /// The message is larger than `auth_max_message_size`.
    TooLarge,
    /// The memory budget had no room for it (at the start or as it grew).
    MemoryBudget,
}

impl Partial {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Partial::TooLarge => "too_large",
            Partial::MemoryBudget => "memory_budget",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Keeping every byte.
    Whole,
    /// Keeping bytes until the header section ends.
    Headers,
    /// Keeping nothing more.
    Done,
}

/// The in-memory copy of one message.
#[derive(Debug)]
pub struct AuthCopy {
    bytes: Vec<u8>,
    limit: usize,
    mode: Mode,
    partial: Option<Partial>,
    /// Matches `bytes`' capacity while the whole message is kept.
    reservation: Reservation,
}

impl AuthCopy {
    /// A copy of at most `limit` bytes, reserving its memory from `budget` as it grows.
    pub fn new(limit: usize, budget: Arc<MemoryBudget>) -> Self {
        let mut copy = Self {
            bytes: Vec::new(),
            limit,
            mode: Mode::Whole,
            partial: None,
            reservation: Reservation::empty(budget),
        };
        if !copy.reserve(limit.min(RESERVE_STEP)) {
            copy.degrade(Partial::MemoryBudget);
        }
        copy
    }

    /// The bytes kept.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the copy is the whole message (so DKIM body hashes can be checked).
    pub fn complete(&self) -> bool {
        self.partial.is_none()
    }

    /// Why only the header section was kept, if so.
    pub fn partial(&self) -> Option<Partial> {
        self.partial
    }

    /// Adds the next plaintext bytes of the message.
    pub fn push(&mut self, plaintext: &[u8]) {
        if self.mode == Mode::Whole {
            let need = self.bytes.len().saturating_add(plaintext.len());
            if need > self.limit {
                self.degrade(Partial::TooLarge);
            } else if need > self.reservation.bytes() {
                let want = need
                    .max(self.reservation.bytes().saturating_mul(2))
                    .min(self.limit);
                if !self.reserve(want) {
                    self.degrade(Partial::MemoryBudget);
                }
            }
        }
        match self.mode {
            Mode::Whole => self.bytes.extend_from_slice(plaintext),
            Mode::Headers => self.push_headers(plaintext),
            Mode::Done => {}
        }
    }

    /// Takes `total` bytes of budget and sizes the buffer to match exactly.
    fn reserve(&mut self, total: usize) -> bool {
        if !self.reservation.grow_to(total) {
            return false;
        }
        self.bytes
            .reserve_exact(total.saturating_sub(self.bytes.len()));
        true
    }

    /// Stops keeping the whole message: keeps at most the header section, outside the
    /// budget, and gives the budget back.
    fn degrade(&mut self, why: Partial) {
        self.partial = Some(why);
        self.mode = Mode::Headers;
        self.bytes.truncate(HEADERS_ONLY_LIMIT);
        if let Some(end) = header_end(&self.bytes, 0) {
            self.bytes.truncate(end);
            self.mode = Mode::Done;
        }
        self.bytes.shrink_to_fit();
        self.reservation.release();
    }

    fn push_headers(&mut self, plaintext: &[u8]) {
        let scan_from = self.bytes.len().saturating_sub(3);
        let room = HEADERS_ONLY_LIMIT.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&plaintext[..plaintext.len().min(room)]);
        if let Some(end) = header_end(&self.bytes, scan_from) {
            self.bytes.truncate(end);
            self.bytes.shrink_to_fit();
            self.mode = Mode::Done;
        } else if self.bytes.len() >= HEADERS_ONLY_LIMIT {
            self.mode = Mode::Done;
        }
    }
}

/// Where the header section ends (just after its blank line), searching from `from`.
fn header_end(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| from + at + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &[u8] = b"From: a@sender.example\r\nSubject: hi\r\n\r\n";

    fn message(body_len: usize) -> Vec<u8> {
        let mut m = HEADERS.to_vec();
        m.extend(std::iter::repeat_n(b'x', body_len));
        m
    }

    fn fill(copy: &mut AuthCopy, message: &[u8], chunk: usize) {
        for piece in message.chunks(chunk) {
            copy.push(piece);
        }
    }

    #[test]
    fn small_messages_are_kept_whole_within_the_budget() {
        let budget = MemoryBudget::new(1 << 20);
        let m = message(200_000);
        let mut copy = AuthCopy::new(1 << 20, budget.clone());
        fill(&mut copy, &m, 7_000);
        assert!(copy.complete());
        assert_eq!(copy.bytes(), m.as_slice());
        assert!(budget.in_use() >= m.len() && budget.in_use() <= 1 << 20);
        drop(copy);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn too_large_keeps_headers_and_frees_the_budget() {
        let budget = MemoryBudget::new(1 << 20);
        let mut copy = AuthCopy::new(100_000, budget.clone());
        fill(&mut copy, &message(150_000), 4096);
        assert_eq!(copy.partial(), Some(Partial::TooLarge));
        assert_eq!(copy.bytes(), HEADERS);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn an_exhausted_budget_degrades_to_headers_only() {
        // Room for one small message's first step and no more.
        let budget = MemoryBudget::new(RESERVE_STEP + 1000);
        let mut first = AuthCopy::new(1 << 20, budget.clone());
        let mut second = AuthCopy::new(1 << 20, budget.clone());
        assert_eq!(
            second.partial(),
            Some(Partial::MemoryBudget),
            "no room at start"
        );
        fill(&mut second, &message(10), 3);
        assert_eq!(second.bytes(), HEADERS);
        // The first copy outgrows what it reserved and cannot get more.
        fill(&mut first, &message(RESERVE_STEP), 1000);
        assert_eq!(first.partial(), Some(Partial::MemoryBudget));
        assert_eq!(first.bytes(), HEADERS);
        assert_eq!(budget.in_use(), 0, "a degraded copy holds no budget");
        // Budget given back: the next message is kept whole again.
        let mut third = AuthCopy::new(1 << 20, budget.clone());
        fill(&mut third, &message(100), 50);
        assert!(third.complete());
    }

    #[test]
    fn headers_only_copy_is_bounded_without_a_blank_line() {
        let budget = MemoryBudget::new(0);
        let mut copy = AuthCopy::new(1 << 20, budget);
        let endless = vec![b'a'; 3 * HEADERS_ONLY_LIMIT];
        fill(&mut copy, &endless, 10_000);
        assert_eq!(copy.bytes().len(), HEADERS_ONLY_LIMIT);
    }

    #[test]
    fn header_end_split_across_chunks_is_found() {
        let budget = MemoryBudget::new(0);
        let mut copy = AuthCopy::new(1 << 20, budget);
        fill(&mut copy, &message(500), 1);
        assert_eq!(copy.bytes(), HEADERS);
    }
}
