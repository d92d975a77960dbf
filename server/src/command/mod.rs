//! The commands: handlers grouped by Redis's command groups, and the dispatch that runs them.
//!
//! The table of what each command is (name, arity, flags, keys) lives below this module, in
//! [`crate::table`]; [`handlers`] attaches a handler to each row by index. A request is looked
//! up by name through the server's [`CommandNames`](crate::table::CommandNames)
//! (case-insensitive, no allocation), its arity checked the way Redis does (positive: exact,
//! negative: at least), the memory limit enforced for commands flagged `denyoom`, and its
//! handler run ([`dispatch`]). Handlers write their reply straight into the connection's output
//! buffer, or return a [`CmdError`] whose text is Redis's.

mod admin;
mod args;
mod bits;
mod connection;
mod ctx;
mod dispatch;
mod generic;
pub mod handlers;
mod keys;
mod observe;
mod scripting;
mod server;
mod strings;
pub mod transaction;
pub mod unsupported;

pub use args::{eq_ic, parse_i64, parse_i64_strict};
pub use ctx::{CmdError, CmdResult, Ctx, Flow};
pub use dispatch::{dispatch, execute, pause_class, run, Dispatched};
pub use handlers::Handler;
