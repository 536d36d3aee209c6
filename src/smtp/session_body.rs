//! The message-body half of the session: starting DATA and BDAT, taking body bytes under
//! the size limit, and ending a body (hop count, summary, the store request).

use super::*;

impl Session {
    /// Checks that a body may start now; the error reply if not.
    pub(super) fn body_allowed(&self, via_bdat: bool) -> Result<(), Reply> {
        let Some(transaction) = &self.transaction else {
            return Err(Reply::new(503, "5.5.1", "Need MAIL command"));
        };
        if transaction.recipients.is_empty() {
            return Err(Reply::new(554, "5.5.1", "No valid recipients"));
        }
        if let Some(body) = &transaction.body
            && body.via_bdat != via_bdat
        {
            return Err(Reply::new(503, "5.5.1", "DATA and BDAT cannot be mixed"));
        }
        Ok(())
    }

    pub(super) fn start_body(&mut self, via_bdat: bool) {
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

    /// Checks, before a body starts, that the store has room for it. Without room the
    /// transaction is cancelled, so that no later BDAT chunk can start a body halfway.
    fn room_for_body(&mut self) -> Result<(), Reply> {
        let starting = self.transaction.as_ref().is_some_and(|t| t.body.is_none());
        if !starting {
            return Ok(());
        }
        self.config.storage.room_for(0).map_err(|shortage| {
            self.transaction = None;
            no_room(shortage)
        })
    }

    pub(super) fn data(&mut self) {
        if let Err(reply) = self.body_allowed(false) {
            return self.fail(reply);
        }
        if let Err(reply) = self.room_for_body() {
            return self.reply(reply);
        }
        self.start_body(false);
        self.reply(Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"));
        self.state = State::Data(DataDecoder::new());
    }

    pub(super) fn bdat(&mut self, size: u64, last: bool) {
        if size > self.config.limits.max_message_size {
            // The chunk alone is over the limit: reading it just to throw it away would let
            // a client keep us busy for as long as it likes.
            self.reply(Reply::too_big());
            self.close();
            return;
        }
        let reject = self
            .body_allowed(true)
            .and_then(|()| self.room_for_body())
            .err();
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

    pub(super) fn step_data(&mut self) -> bool {
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

    pub(super) fn step_bdat(&mut self) -> bool {
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
            // A full store is not the client's error; protocol errors are.
            State::Bdat {
                reject: Some(reply),
                ..
            } if reply.code < 500 => self.reply(reply),
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
                    self.reply(Reply::too_big());
                } else {
                    self.reply(Reply::new(250, "2.0.0", format!("{size} octets received")));
                }
            }
        }
        true
    }

    pub(super) fn body_bytes(&mut self, bytes: Vec<u8>) {
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

    pub(super) fn end_body(&mut self) {
        self.state = State::Command;
        let max_hops = self.config.limits.max_received_headers;
        let Some(transaction) = self.transaction.take() else {
            return;
        };
        let Some(body) = transaction.body.as_ref() else {
            return;
        };
        if body.oversize {
            return self.reply(Reply::too_big());
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
            rcpt_to: transaction
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect(),
            client_ip: self.client_ip.to_string(),
            helo: self.helo.clone().unwrap_or_default(),
            tls: self.tls.clone(),
            subject: facts.subject,
            from: facts.from,
            date: facts.date,
            message_id: facts.message_id,
            auto_submitted: facts.auto_submitted,
            precedence: facts.precedence,
            list_id: facts.list_id,
            list_unsubscribe: facts.list_unsubscribe,
            auth: None,
        };
        self.transaction = Some(transaction);
        self.state = State::AwaitingStore;
        self.actions
            .push_back(Action::MessageEnd(Box::new(summary)));
    }
}
