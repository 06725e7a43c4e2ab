//! Integration tests: the real server over real HTTP. One binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod authorize;
mod cli;
mod discovery;
mod grants;
mod keys;
mod me_gate;
mod me_methods;
mod me_openapi;
mod refresh;
mod session;
mod support;
mod tenant_files;
