//! Integration tests: the real server over real HTTP. One binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod authenticator;
mod authorize;
mod cli;
mod cluster;
mod custom_domains;
mod discovery;
mod dpop;
mod dpop_client;
mod edge;
mod faults;
mod grants;
mod idp;
mod keys;
mod limits;
mod me_codes;
mod me_gate;
mod me_methods;
mod me_openapi;
mod me_passkeys;
mod mfa_api;
mod mfa_page;
mod mrrt;
mod native_passkeys;
mod outbound;
mod refresh;
mod session;
mod sms_receiver;
mod smtp;
mod store_contract;
mod support;
mod sweep;
mod tenant_files;
mod upstream;
mod upstream_client;
mod upstream_providers;
