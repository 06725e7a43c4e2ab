//! The upstream providers of the tests, tested with a plain HTTP client and
//! no latchkey: what they answer is what the real ones answer, so tests of
//! connected accounts and upstream login can lean on them.

mod github;
mod oidc;

/// Where the providers send the browser back to.
const CALLBACK: &str = "http://localhost:5173/upstream/callback";
