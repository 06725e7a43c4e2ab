//! latchkey: a self-hosted identity server that speaks Auth0's dialect.
//!
//! The binary's library: `server` puts a server together from its
//! configuration. The other modules are the workspace's crates, re-exported
//! at the paths the binary, the integration tests and the benchmarks name.
//! See `ARCHITECTURE.md` at the repository root for the map.

pub use latchkey_adapters as adapters;
pub use latchkey_core::{clock, context, crypto, outbound, rng, services, tenant};
pub use latchkey_http::{app, http};
pub use latchkey_store as store;

pub mod server;
