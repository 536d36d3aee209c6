//! `reclaim release ID --to ADDR --reason TEXT`: decrypts the message here and submits it
//! to the organisation's submission server (see [`crate::review::release`]), then says
//! where it went.

use std::io::Write;

use crate::review::release::release;
use crate::review::{ReviewContext, parse_id};

pub fn run(context: &ReviewContext, id: &str, to: &[String], reason: &str) -> anyhow::Result<()> {
    let id = parse_id(id)?;
    let released = release(context, id, to, reason)?;
    let mut out = super::stdout::lock();
    writeln!(
        out,
        "released {id} to {} as {}",
        released.to, released.message_id
    )?;
    out.flush()?;
    Ok(())
}
