//! The SMTP session as a pure state machine: bytes in, actions out. It never awaits and
//! never touches a socket or a file; [`super::connection`] carries out what it asks for.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::{Error as ParseError, Request};

use super::data::DataDecoder;
use super::headers::HeaderScanner;
use super::reply::Reply;
use crate::config::Limits;
use crate::domains::RetiredDomains;
use crate::summary::{Summary, TlsInfo};

/// How much of a message's header section is kept for the summary and the hop count.
pub const HEADER_SCAN_LIMIT: usize = 64 * 1024;

/// What the session was configured with; shared by all sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    pub limits: Limits,
    pub domains: RetiredDomains,
    /// Whether STARTTLS can be offered (a certificate is configured).
    pub tls_available: bool,
}

/// The envelope of the message being received, for the trace fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub helo: String,
    pub client_ip: IpAddr,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// `SMTP`, `ESMTP`, `ESMTPS`, `UTF8SMTP` or `UTF8SMTPS` (RFC 3848, RFC 6531).
    pub protocol: &'static str,
    pub tls: Option<TlsInfo>,
}

/// What the driver must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this reply (buffered; flushed before the next read).
    Reply(Reply),
    /// Flush, then read more input within `timeout`.
    NeedInput { timeout: Duration },
    /// Flush the 220, drop nothing-else-buffered input (already dropped here), and hand the
    /// stream to the TLS handshake; then call [`Session::tls_established`].
    StartTls,
    /// A message body begins; open a sealed sink for it.
    MessageStart(Box<Envelope>),
    /// Message bytes, exactly as the client meant them (dot-stuffing removed).
    MessageData(Vec<u8>),
    /// The message will not be kept (too big, too many hops, reset): discard the sink.
    MessageAbort,
    /// The body is complete: seal, store durably, then call [`Session::message_stored`].
    /// The session produces no further action until then.
    MessageEnd(Box<Summary>),
    /// Flush and close the connection.
    Close,
}

/// The outcome of storing a message, as the session needs it for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored { id: String },
    Failed,
}

#[derive(Debug)]
struct Body {
    scanner: HeaderScanner,
    size: u64,
    oversize: bool,
    via_bdat: bool,
}

#[derive(Debug)]
struct Transaction {
    mail_from: String,
    rcpt_to: Vec<String>,
    smtputf8: bool,
    body: Option<Body>,
}

#[derive(Debug)]
enum State {
    Command,
    Data(DataDecoder),
    /// Reading a BDAT chunk; `reject` is the reply to give instead of accepting it.
    Bdat {
        size: u64,
        remaining: u64,
        last: bool,
        reject: Option<Reply>,
    },
    AwaitingStore,
    Closed,
}

/// One SMTP session.
#[derive(Debug)]
pub struct Session {
    config: Arc<SessionConfig>,
    client_ip: IpAddr,
    tls: Option<TlsInfo>,
    helo: Option<String>,
    esmtp: bool,
    transaction: Option<Transaction>,
    state: State,
    input: Vec<u8>,
    /// The current command line exceeded the limit: drop input up to the next LF.
    skipping_long_line: bool,
    errors: usize,
    actions: VecDeque<Action>,
}

impl Session {
    /// A new session for a client at `client_ip`; `tls` is set for implicit-TLS listeners.
    pub fn new(config: Arc<SessionConfig>, client_ip: IpAddr, tls: Option<TlsInfo>) -> Self {
        Self {
            config,
            client_ip,
            tls,
            helo: None,
            esmtp: false,
            transaction: None,
            state: State::Command,
            input: Vec::new(),
            skipping_long_line: false,
            errors: 0,
            actions: VecDeque::new(),
        }
    }

    /// The 220 greeting.
    pub fn greeting(&self) -> Reply {
        Reply::new(220, "", format!("{} ESMTP reclaim", self.config.hostname))
    }

    /// Adds bytes read from the client.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Whether a mail transaction is open (MAIL given, not yet finished or reset).
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some() || matches!(self.state, State::AwaitingStore)
    }

    /// The next thing to do.
    pub fn poll(&mut self) -> Action {
        loop {
            if let Some(action) = self.actions.pop_front() {
                return action;
            }
            match self.state {
                State::Closed => return Action::Close,
                // The driver owes us message_stored(); nothing can happen before it.
                State::AwaitingStore => return Action::Close,
                State::Command => {
                    if !self.step_command() {
                        return self.need_input(self.config.limits.command_timeout);
                    }
                }
                State::Data(_) => {
                    if !self.step_data() {
                        return self.need_input(self.config.limits.data_timeout);
                    }
                }
                State::Bdat { .. } => {
                    if !self.step_bdat() {
                        return self.need_input(self.config.limits.data_timeout);
                    }
                }
            }
        }
    }

    fn need_input(&self, timeout: Duration) -> Action {
        Action::NeedInput { timeout }
    }

    /// Reports how storing the last message went; queues the reply.
    pub fn message_stored(&mut self, outcome: StoreOutcome) {
        if !matches!(self.state, State::AwaitingStore) {
            return;
        }
        self.state = State::Command;
        self.transaction = None;
        self.actions.push_back(Action::Reply(match outcome {
            StoreOutcome::Stored { id } => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
            StoreOutcome::Failed => Reply::new(
                451,
                "4.3.0",
                "Local error in processing, message not accepted; try again later",
            ),
        }));
    }

    /// The TLS handshake succeeded: start afresh, as RFC 3207 requires.
    pub fn tls_established(&mut self, info: TlsInfo) {
        self.tls = Some(info);
        self.helo = None;
        self.esmtp = false;
        self.transaction = None;
        self.input.clear();
        self.skipping_long_line = false;
        self.state = State::Command;
    }

    /// The client was silent too long: the reply to send before closing.
    pub fn timed_out(&mut self) -> Reply {
        self.close();
        Reply::new(
            421,
            "4.4.2",
            format!(
                "{} Timeout exceeded, closing connection",
                self.config.hostname
            ),
        )
    }

    /// The server is shutting down: the reply to send before closing.
    pub fn shutting_down(&mut self) -> Reply {
        self.close();
        Reply::new(
            421,
            "4.3.0",
            format!(
                "{} Service shutting down, try again later",
                self.config.hostname
            ),
        )
    }

    fn close(&mut self) {
        if self.transaction.as_ref().is_some_and(|t| t.body.is_some()) {
            self.actions.push_back(Action::MessageAbort);
        }
        self.transaction = None;
        self.state = State::Closed;
    }

    fn reply(&mut self, reply: Reply) {
        self.actions.push_back(Action::Reply(reply));
    }

    /// Replies with an error and counts it; too many errors end the session.
    fn fail(&mut self, reply: Reply) {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= self.config.limits.max_errors {
            self.reply(Reply::new(
                421,
                "4.7.0",
                format!(
                    "{} Too many errors, closing connection",
                    self.config.hostname
                ),
            ));
            self.close();
            self.actions.push_back(Action::Close);
        }
    }

    /// Handles one command line if a whole one is buffered. Returns false if more input is needed.
    fn step_command(&mut self) -> bool {
        let newline = self.input.iter().position(|&b| b == b'\n');
        let Some(end) = newline else {
            if self.input.len() > self.config.limits.max_line_length {
                self.skipping_long_line = true;
                self.input.clear();
            }
            return false;
        };
        let line: Vec<u8> = self.input.drain(..=end).collect();
        if std::mem::take(&mut self.skipping_long_line)
            || line.len() > self.config.limits.max_line_length
        {
            self.fail(Reply::new(500, "5.5.2", "Line too long"));
            return true;
        }
        self.command_line(&line);
        true
    }

    fn command_line(&mut self, line: &[u8]) {
        let upper: Vec<u8> = line.iter().take(8).map(u8::to_ascii_uppercase).collect();
        // An HTTP client or proxy talking to port 25: hang up, as Postfix does.
        if ["GET ", "POST ", "CONNECT ", "HEAD ", "PUT "]
            .iter()
            .any(|verb| upper.starts_with(verb.as_bytes()))
        {
            self.reply(Reply::new(
                554,
                "5.7.0",
                "This is an SMTP server, closing connection",
            ));
            self.close();
            return;
        }
        if is_rcpt_to_postmaster(line) {
            return self.rcpt("postmaster".to_owned());
        }
        match Request::parse(&mut line.iter()) {
            Ok(request) => self.request(request.into_owned()),
            Err(error) => self.parse_error(error),
        }
    }

    fn parse_error(&mut self, error: ParseError) {
        let reply = match error {
            ParseError::UnknownCommand => Reply::new(500, "5.5.2", "Command unrecognized"),
            ParseError::InvalidSenderAddress => {
                Reply::new(501, "5.1.7", "Bad sender address syntax")
            }
            ParseError::InvalidRecipientAddress => {
                Reply::new(501, "5.1.3", "Bad recipient address syntax")
            }
            ParseError::SyntaxError { syntax } => {
                Reply::new(501, "5.5.4", format!("Syntax: {syntax}"))
            }
            ParseError::InvalidParameter { param } => {
                Reply::new(501, "5.5.4", format!("Invalid parameter {param}"))
            }
            ParseError::UnsupportedParameter { .. } => {
                Reply::new(555, "5.5.4", "Unsupported parameter")
            }
            _ => Reply::new(500, "5.5.2", "Syntax error"),
        };
        self.fail(reply);
    }

    fn request(&mut self, request: Request<String>) {
        match request {
            Request::Ehlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to.address),
            Request::Data => self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size as u64, is_last),
            Request::Rset => {
                self.reset_transaction();
                self.reply(Reply::new(250, "2.0.0", "Ok"));
            }
            Request::Noop { .. } => self.reply(Reply::new(250, "2.0.0", "Ok")),
            Request::Quit => {
                self.reply(Reply::new(221, "2.0.0", "Bye"));
                self.close();
            }
            Request::Vrfy { .. } => self.reply(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Request::Help { .. } => self.reply(Reply::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS",
            )),
            Request::StartTls => self.starttls(),
            Request::Expn { .. } => self.fail(Reply::new(502, "5.5.1", "EXPN not available")),
            Request::Lhlo { .. } => {
                self.fail(Reply::new(500, "5.5.1", "This is not an LMTP server"))
            }
            Request::Auth { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                self.fail(Reply::new(502, "5.5.1", "Command not implemented"))
            }
        }
    }

    fn hello(&mut self, host: String, extended: bool) {
        self.reset_transaction();
        self.helo = Some(host);
        self.esmtp = extended;
        if !extended {
            self.reply(Reply::new(250, "", self.config.hostname.clone()));
            return;
        }
        let mut lines = vec![
            self.config.hostname.clone(),
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.config.limits.max_message_size),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "CHUNKING".to_owned(),
        ];
        if self.config.tls_available && self.tls.is_none() {
            lines.push("STARTTLS".to_owned());
        }
        lines.push("HELP".to_owned());
        self.reply(Reply::multiline(250, lines));
    }

    fn mail(&mut self, from: smtp_proto::MailFrom<String>) {
        if self.helo.is_none() {
            return self.fail(Reply::new(503, "5.5.1", "Send EHLO or HELO first"));
        }
        if self.transaction.is_some() {
            return self.fail(Reply::new(503, "5.5.1", "Nested MAIL command"));
        }
        if from.flags & smtp_proto::MAIL_BODY_BINARYMIME != 0 {
            return self.fail(Reply::new(555, "5.5.4", "BODY=BINARYMIME is not supported"));
        }
        if from.size as u64 > self.config.limits.max_message_size {
            return self.fail(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
        }
        self.transaction = Some(Transaction {
            mail_from: from.address,
            rcpt_to: Vec::new(),
            smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
            body: None,
        });
        self.reply(Reply::new(250, "2.1.0", "Sender ok"));
    }

    fn rcpt(&mut self, address: String) {
        let max = self.config.limits.max_recipients;
        let Some(transaction) = self.transaction.as_mut() else {
            return self.fail(Reply::new(503, "5.5.1", "Need MAIL before RCPT"));
        };
        if transaction.body.is_some() {
            return self.fail(Reply::new(503, "5.5.1", "RCPT not allowed after BDAT"));
        }
        if transaction.rcpt_to.len() >= max {
            return self.fail(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        let accepted = if address.eq_ignore_ascii_case("postmaster") {
            // RFC 5321 4.5.1: <postmaster> without a domain must always be accepted.
            true
        } else {
            match address.rsplit_once('@') {
                Some((local, domain)) if !local.is_empty() => {
                    self.config.domains.matching(domain).is_some()
                }
                _ => return self.fail(Reply::new(501, "5.1.3", "Bad recipient address syntax")),
            }
        };
        if !accepted {
            return self.fail(Reply::new(
                550,
                "5.7.1",
                "Relaying denied: not a domain this server accepts mail for",
            ));
        }
        if !transaction.rcpt_to.contains(&address) {
            transaction.rcpt_to.push(address);
        }
        self.reply(Reply::new(250, "2.1.5", "Recipient ok"));
    }

    /// Checks that a body may start now; the error reply if not.
    fn body_allowed(&self, via_bdat: bool) -> Result<(), Reply> {
        let Some(transaction) = &self.transaction else {
            return Err(Reply::new(503, "5.5.1", "Need MAIL command"));
        };
        if transaction.rcpt_to.is_empty() {
            return Err(Reply::new(554, "5.5.1", "No valid recipients"));
        }
        if let Some(body) = &transaction.body
            && body.via_bdat != via_bdat
        {
            return Err(Reply::new(503, "5.5.1", "DATA and BDAT cannot be mixed"));
        }
        Ok(())
    }

    fn start_body(&mut self, via_bdat: bool) {
        let envelope = self.envelope();
        let Some(transaction) = self.transaction.as_mut() else {
            return;
        };
        if transaction.body.is_none() {
            transaction.body = Some(Body {
                scanner: HeaderScanner::new(HEADER_SCAN_LIMIT),
                size: 0,
                oversize: false,
                via_bdat,
            });
            self.actions
                .push_back(Action::MessageStart(Box::new(envelope)));
        }
    }

    fn data(&mut self) {
        if let Err(reply) = self.body_allowed(false) {
            return self.fail(reply);
        }
        self.start_body(false);
        self.reply(Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"));
        self.state = State::Data(DataDecoder::new());
    }

    fn bdat(&mut self, size: u64, last: bool) {
        if size > self.config.limits.max_message_size {
            // The chunk alone is over the limit: reading it just to throw it away would let
            // a client keep us busy for as long as it likes.
            self.reply(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
            self.close();
            return;
        }
        let reject = self.body_allowed(true).err();
        if reject.is_none() {
            self.start_body(true);
        }
        self.state = State::Bdat {
            size,
            remaining: size,
            last,
            reject,
        };
    }

    fn starttls(&mut self) {
        if !self.config.tls_available {
            return self.fail(Reply::new(502, "5.5.1", "STARTTLS not available"));
        }
        if self.tls.is_some() {
            return self.fail(Reply::new(503, "5.5.1", "TLS already active"));
        }
        if self.transaction.is_some() {
            return self.fail(Reply::new(
                503,
                "5.5.1",
                "STARTTLS not allowed during a mail transaction",
            ));
        }
        self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"));
        // CVE-2011-0411: whatever the client sent after STARTTLS in plaintext must not be
        // taken as if it came over TLS.
        self.input.clear();
        self.actions.push_back(Action::StartTls);
    }

    fn step_data(&mut self) -> bool {
        if self.input.is_empty() {
            return false;
        }
        let State::Data(decoder) = &mut self.state else {
            return false;
        };
        let mut out = Vec::with_capacity(self.input.len());
        let ended = decoder.feed(&self.input, &mut out);
        let used = ended.unwrap_or(self.input.len());
        self.input.drain(..used);
        self.body_bytes(out);
        if ended.is_some() {
            self.end_body();
        }
        true
    }

    fn step_bdat(&mut self) -> bool {
        let State::Bdat {
            size,
            remaining,
            reject,
            ..
        } = &mut self.state
        else {
            return false;
        };
        if *remaining > 0 && self.input.is_empty() {
            return false;
        }
        let take = (*remaining).min(self.input.len() as u64) as usize;
        *remaining -= take as u64;
        let (size, done, accepting) = (*size, *remaining == 0, reject.is_none());
        let chunk: Vec<u8> = self.input.drain(..take).collect();
        if accepting {
            self.body_bytes(chunk);
        }
        if !done {
            return true;
        }
        match std::mem::replace(&mut self.state, State::Command) {
            State::Bdat {
                reject: Some(reply),
                ..
            } => self.fail(reply),
            State::Bdat { last: true, .. } => self.end_body(),
            _ => {
                let oversize = self
                    .transaction
                    .as_ref()
                    .and_then(|t| t.body.as_ref())
                    .is_some_and(|b| b.oversize);
                if oversize {
                    self.reset_transaction();
                    self.reply(Reply::new(
                        552,
                        "5.3.4",
                        "Message size exceeds fixed maximum message size",
                    ));
                } else {
                    self.reply(Reply::new(250, "2.0.0", format!("{size} octets received")));
                }
            }
        }
        true
    }

    fn body_bytes(&mut self, bytes: Vec<u8>) {
        let max = self.config.limits.max_message_size;
        let Some(body) = self.transaction.as_mut().and_then(|t| t.body.as_mut()) else {
            return;
        };
        if body.oversize {
            return;
        }
        body.size += bytes.len() as u64;
        if body.size > max {
            body.oversize = true;
            self.actions.push_back(Action::MessageAbort);
            return;
        }
        body.scanner.feed(&bytes);
        if !bytes.is_empty() {
            self.actions.push_back(Action::MessageData(bytes));
        }
    }

    fn end_body(&mut self) {
        self.state = State::Command;
        let max_hops = self.config.limits.max_received_headers;
        let Some(transaction) = self.transaction.take() else {
            return;
        };
        let Some(body) = transaction.body.as_ref() else {
            return;
        };
        if body.oversize {
            return self.reply(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
        }
        let facts = body.scanner.facts();
        if facts.received_count > max_hops {
            self.actions.push_back(Action::MessageAbort);
            return self.reply(Reply::new(
                554,
                "5.4.6",
                "Too many hops (Received header fields), routing loop?",
            ));
        }
        let summary = Summary {
            mail_from: transaction.mail_from.clone(),
            rcpt_to: transaction.rcpt_to.clone(),
            client_ip: self.client_ip.to_string(),
            helo: self.helo.clone().unwrap_or_default(),
            tls: self.tls.clone(),
            subject: facts.subject,
            from: facts.from,
            date: facts.date,
            message_id: facts.message_id,
            auto_submitted: facts.auto_submitted,
            list_id: facts.list_id,
            precedence: facts.precedence,
        };
        self.transaction = Some(transaction);
        self.state = State::AwaitingStore;
        self.actions
            .push_back(Action::MessageEnd(Box::new(summary)));
    }

    fn reset_transaction(&mut self) {
        if self
            .transaction
            .take()
            .is_some_and(|t| t.body.is_some_and(|b| !b.oversize))
        {
            self.actions.push_back(Action::MessageAbort);
        }
    }

    fn envelope(&self) -> Envelope {
        let (mail_from, rcpt_to, smtputf8) = match &self.transaction {
            Some(t) => (t.mail_from.clone(), t.rcpt_to.clone(), t.smtputf8),
            None => Default::default(),
        };
        let protocol = match (smtputf8, self.esmtp, self.tls.is_some()) {
            (true, _, true) => "UTF8SMTPS",
            (true, _, false) => "UTF8SMTP",
            (false, true, true) => "ESMTPS",
            (false, true, false) => "ESMTP",
            (false, false, true) => "SMTPS",
            (false, false, false) => "SMTP",
        };
        Envelope {
            helo: self.helo.clone().unwrap_or_default(),
            client_ip: self.client_ip,
            mail_from,
            rcpt_to,
            protocol,
            tls: self.tls.clone(),
        }
    }
}

/// `RCPT TO:<Postmaster>` without a domain (RFC 5321 4.1.1.3), which the parser refuses.
fn is_rcpt_to_postmaster(line: &[u8]) -> bool {
    let text = line.trim_ascii_end().to_ascii_lowercase();
    let Some(rest) = text.strip_prefix(b"rcpt to:") else {
        return false;
    };
    rest.trim_ascii_start() == b"<postmaster>"
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
