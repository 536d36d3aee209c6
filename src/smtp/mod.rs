//! SMTP: the pure session ([`session`]), its parts, and the tokio driver ([`connection`]).

mod command;
pub mod connection;
pub mod data;
pub mod headers;
pub mod reply;
pub mod session;
pub mod tls;
pub mod trace;

pub use reply::Reply;
pub use session::{Action, Envelope, Session, SessionConfig, StoreOutcome};
