//! Domain errors: what a decision can refuse, in terms the API maps to status codes.

use std::fmt;

/// One invalid input field, named as the client sent it (`name`, `capabilities[2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Input that does not parse; nothing is decided.
    #[error("validation failed: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// The aggregate does not exist (or was removed).
    #[error("{aggregate} not found")]
    NotFound { aggregate: &'static str },
    /// Creating an aggregate whose id is already taken.
    #[error("{aggregate} already exists")]
    AlreadyExists { aggregate: &'static str },
    /// The command is not legal in the current state.
    #[error("illegal transition of {aggregate} from {from} to {to}")]
    InvalidTransition {
        aggregate: &'static str,
        from: String,
        to: String,
    },
}

impl DomainError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}
