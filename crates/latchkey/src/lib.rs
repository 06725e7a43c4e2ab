//! latchkey: a self-hosted identity server that speaks Auth0's dialect.
//!
//! See `ARCHITECTURE.md` at the repository root for the map of this crate.

pub mod adapters;
pub mod app;
pub mod clock;
pub mod context;
pub mod crypto;
pub mod http;
pub mod login;
pub mod myaccount;
pub mod oauth;
pub mod outbound;
pub mod pages;
pub mod rng;
pub mod server;
pub mod services;
pub mod store;
pub mod tenant;
