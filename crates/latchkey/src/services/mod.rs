//! Domain services. They take typed requests, talk to the store through its
//! ports, and know nothing of HTTP.

pub mod keys;
pub mod login;
pub mod policy;
pub mod tokens;
