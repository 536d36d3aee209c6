//! The SMTP session as a pure state machine: bytes in, actions out. It never awaits and
//! never touches a socket or a file; [`super::connection`] carries out what it asks for.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::{Error as ParseError, Request};

use super::command;
use super::data::DataDecoder;
use super::headers::HeaderScanner;
use super::reply::Reply;
use crate::capacity::{Shortage, StorageState};
use crate::config::Limits;
use crate::domains::{Mode, Recipient, RetiredDomains};
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
    /// How full the store is: a new message is refused `452 4.3.1` before its data when
    /// the quota or the free-disk floor is reached.
    pub storage: Arc<StorageState>,
}

/// The envelope of the message being received, for the trace fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub helo: String,
    pub client_ip: IpAddr,
    pub mail_from: String,
    /// Accepted recipients, each with its disposition as decided at RCPT time.
    pub recipients: Vec<Recipient>,
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
    recipients: Vec<Recipient>,
    smtputf8: bool,
    body: Option<Body>,
    /// Bounce-mode transactions answer the end of data with this `550 5.1.6` text. One
    /// reply covers every recipient, so all must share it (RFC 5321 4.5.3.1.10).
    bounce: Option<String>,
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
        let bounce = self.transaction.take().and_then(|t| t.bounce);
        self.actions.push_back(Action::Reply(match outcome {
            StoreOutcome::Stored { .. } if bounce.is_some() => {
                Reply::new(550, "5.1.6", bounce.unwrap_or_default())
            }
            StoreOutcome::Stored { id } => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
            StoreOutcome::Failed => Reply::not_stored(),
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
        let text = match command::text(line) {
            Ok(text) => text,
            Err(error) => return self.fail(command::refusal(line, error)),
        };
        if is_rcpt_to_postmaster(line) {
            return self.rcpt("postmaster".to_owned());
        }
        match Request::parse(&mut line.iter()) {
            Ok(request) => self.request(request.into_owned(), text),
            Err(error) => self.parse_error(error),
        }
    }

    fn parse_error(&mut self, error: ParseError) {
        let reply = match error {
            ParseError::UnknownCommand => Reply::new(500, "5.5.2", "Command unrecognized"),
            ParseError::InvalidSenderAddress => {
                Reply::new(501, "5.1.7", "Bad sender address syntax")
            }
            ParseError::InvalidRecipientAddress => Reply::bad_recipient(),
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

    /// Carries out a parsed command; `text` is its line as sent, already checked.
    fn request(&mut self, request: Request<String>, text: &str) {
        match request {
            Request::Ehlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::Mail { from } => self.mail(from, text),
            Request::Rcpt { to } => match command::as_sent(&to.address, text) {
                Some(address) => self.rcpt(address),
                None => self.fail(Reply::bad_recipient()),
            },
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

    fn mail(&mut self, from: smtp_proto::MailFrom<String>, text: &str) {
        let Some(address) = command::as_sent(&from.address, text) else {
            return self.fail(Reply::new(501, "5.1.7", "Bad sender address syntax"));
        };
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
            return self.fail(Reply::too_big());
        }
        if let Err(shortage) = self.config.storage.room_for(from.size as u64) {
            return self.reply(no_room(shortage));
        }
        self.transaction = Some(Transaction {
            mail_from: address,
            recipients: Vec::new(),
            smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
            body: None,
            bounce: None,
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
        if transaction.recipients.len() >= max {
            return self.fail(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        // RFC 5321 4.5.1: <postmaster> without a domain must always be accepted; it is
        // quarantined like silent-mode mail.
        let disposition = if address.eq_ignore_ascii_case("postmaster") {
            None
        } else {
            match address.rsplit_once('@') {
                Some((local, _)) if !local.is_empty() => {
                    match self.config.domains.disposition(&address) {
                        Some(d) => Some(d),
                        None => {
                            return self.fail(Reply::new(
                                550,
                                "5.7.1",
                                "Relaying denied: not a domain this server accepts mail for",
                            ));
                        }
                    }
                }
                _ => return self.fail(Reply::bad_recipient()),
            }
        };
        let bounce_text = match &disposition {
            Some(d) if d.mode == Mode::Reject => {
                return self.reply(Reply::new(
                    550,
                    "5.1.6",
                    moved_text(&address, d.forward.as_deref()),
                ));
            }
            Some(d) if d.mode == Mode::Bounce => Some(moved_text(&address, d.forward.as_deref())),
            _ => None,
        };
        if !transaction.recipients.is_empty() && transaction.bounce != bounce_text {
            return self.reply(Reply::new(
                452,
                "4.5.3",
                "Too many recipients for one transaction; send to this one separately",
            ));
        }
        transaction.bounce = bounce_text;
        if !transaction.recipients.iter().any(|r| r.address == address) {
            transaction.recipients.push(Recipient {
                address,
                disposition,
            });
        }
        self.reply(Reply::new(250, "2.1.5", "Recipient ok"));
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
        let (mail_from, recipients, smtputf8) = match &self.transaction {
            Some(t) => (t.mail_from.clone(), t.recipients.clone(), t.smtputf8),
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
            recipients,
            protocol,
            tls: self.tls.clone(),
        }
    }
}

/// `452 4.3.1`: no room for a message now (RFC 3463 "mail system full").
fn no_room(shortage: Shortage) -> Reply {
    let text = match shortage {
        Shortage::Quota => "Quarantine full, try again later",
        Shortage::DiskFloor => "Insufficient system storage, try again later",
    };
    Reply::new(452, "4.3.1", text)
}

/// The `5.1.6` text for a retired address: where to write instead, if known.
fn moved_text(address: &str, forward: Option<&str>) -> String {
    match forward {
        Some(new) => format!("<{address}> has moved to <{new}>"),
        None => format!("<{address}> is retired and no longer receives mail"),
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

#[path = "session_body.rs"]
mod body;

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
