//! Cryptography: everything goes through aws-lc (one crypto stack), except
//! Argon2id password hashing.

pub mod dpop;
pub mod hash;
pub(crate) mod hashing;
pub(crate) mod jws;
pub mod otp;
pub mod password;
pub mod seal;
