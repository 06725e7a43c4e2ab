//! latchkey's core: the tenant model, the services and the ports they take
//! (store traits and rows, `Clock`, `Rng`, outbound HTTP, message delivery),
//! and crypto. It knows no HTTP server, no SQL driver, no HTTP client.
//!
//! See `ARCHITECTURE.md` at the repository root for the map.

#![warn(unreachable_pub)]

pub mod clock;
pub mod context;
pub mod crypto;
pub mod outbound;
pub mod rng;
pub mod services;
pub mod store;
pub mod tenant;
