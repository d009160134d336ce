//! Errors from parsing and evaluating JSONata.

use std::fmt;

/// A JSONata error: a code as JSONata uses them (`S0201` syntax, `T2001` type, `D3001`
/// dynamic, `U1001` resource limit), a message, and where known the character position just
/// after the token that caused it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Error {
    pub code: String,
    pub message: String,
    pub position: Option<usize>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{} at position {}: {}", self.code, p, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl Error {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Error {
            code: code.to_string(),
            message: message.into(),
            position: None,
        }
    }

    pub(crate) fn at(code: &str, message: impl Into<String>, position: usize) -> Self {
        Error {
            code: code.to_string(),
            message: message.into(),
            position: Some(position),
        }
    }

    /// Adds a position if the error does not have one yet.
    pub(crate) fn or_at(mut self, position: usize) -> Self {
        if self.position.is_none() {
            self.position = Some(position);
        }
        self
    }
}
