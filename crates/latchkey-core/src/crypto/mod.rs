//! Cryptography: everything goes through aws-lc (one crypto stack), except
//! Argon2id password hashing.

pub mod dpop;
pub mod hash;
pub mod hashing;
pub mod jws;
pub mod otp;
pub mod password;
pub mod seal;
