//! Domain services. They take typed requests, talk to the store through its
//! ports, and know nothing of HTTP.

pub mod accounts;
pub mod audit;
pub mod authorize;
pub mod connected_accounts;
pub mod delivery;
pub mod dpop;
pub mod email_address;
pub mod enrollment;
pub mod factors;
pub(crate) mod front_channel;
pub mod grants;
pub mod keys;
pub mod language;
pub mod login;
pub mod login_flow;
pub mod management;
pub mod methods;
pub mod mfa;
pub mod passkey_login;
pub mod password_policy;
pub mod passwordless;
pub(crate) mod phone;
pub mod policy;
pub mod push;
pub(crate) mod push_message;
pub mod push_step;
pub mod pushed_request;
pub mod ratelimit;
pub mod revocation;
pub mod sweep;
pub mod tokens;
pub mod upstream;
pub mod upstream_login;
pub mod username;
pub(crate) mod webauthn;
