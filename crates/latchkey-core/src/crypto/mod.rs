//! Cryptography: everything goes through aws-lc (one crypto stack), except
//! Argon2id password hashing.

pub mod dpop;
pub mod hash;
pub(crate) mod hashing;
pub(crate) mod jose;
pub(crate) mod jws;
pub mod otp;
pub mod password;
pub mod seal;

/// Keys of each algorithm and JWS signing, as a client would: the tests'
/// DPoP client, shared with the unit tests here.
#[cfg(test)]
#[path = "../../../latchkey/tests/it/dpop_client.rs"]
#[allow(unreachable_pub)]
mod test_keys;
