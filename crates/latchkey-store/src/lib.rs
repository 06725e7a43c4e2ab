//! latchkey's stores: the core's store traits (re-exported here, so a
//! backend names them as its parent's) implemented for SQLite and
//! PostgreSQL, with their migrations. It knows no HTTP.

#![warn(unreachable_pub)]

pub use latchkey_core::store::*;

pub mod errors;
pub mod postgres;
mod sql;
pub mod sqlite;
