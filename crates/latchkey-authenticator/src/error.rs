//! The authenticator's one error type: a one-line message for the user, never
//! carrying a secret (tokens, keys and transaction tokens are never put in
//! one).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the cause said.
        f.write_str(&self.0.replace(['\n', '\r'], " "))
    }
}

impl std::error::Error for Error {}
