//! What a run's steps carry: tool calls and their status, log levels, artifacts, LLM calls.
//! Plain data the [`super::run::TaskRun`] aggregate decides on.

use super::pricing::Tokens;
use super::{Risk, ToolName, Usd};
use crate::error::FieldError;
use crate::ids::ToolCallId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    PendingApproval,
    Approved,
    Denied,
    Succeeded,
    Failed,
}

impl CallStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending-approval",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: ToolCallId,
    pub tool: ToolName,
    pub risk: Risk,
    pub status: CallStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }

    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        match input {
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warn" => Ok(Self::Warn),
            "error" => Ok(Self::Error),
            _ => Err(FieldError::new(field, "must be debug, info, warn or error")),
        }
    }
}

/// A file or object a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub name: String,
    pub uri: String,
    pub content_type: String,
    /// Hex SHA-256 of the content, lowercase.
    pub sha256: String,
}

/// One LLM request/response of a run, as its runner reported it, priced when recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmCall {
    pub provider: String,
    pub model: String,
    pub tokens: Tokens,
    pub latency_ms: u64,
    pub finish_reason: String,
    /// When it was recorded (epoch milliseconds): the time it is priced at.
    pub at_ms: i64,
    /// At the price in force at `at_ms`; `None`: no price of this model was known.
    pub cost: Option<Usd>,
    /// When that price took effect.
    pub price_from_ms: Option<i64>,
}
