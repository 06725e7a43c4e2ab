//! The adapters the binary wires into [`latchkey_core::context::Core`]: the
//! implementations of the outbound HTTP and message delivery ports over
//! reqwest, lettre and minijinja. Services never name them.

#![warn(unreachable_pub)]

pub mod delivery;
pub mod http_client;
