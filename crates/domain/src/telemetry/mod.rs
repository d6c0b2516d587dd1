//! Telemetry limit checking, pure: the severity of a sample under a parameter's limits, the
//! per-parameter evaluator (persistence, hysteresis) that turns samples into alarm
//! transitions, and the history of limits so a sample is judged by the limits in force at its
//! own timestamp.

mod evaluate;
#[cfg(test)]
mod tests;

pub use evaluate::{evaluate, LimitsHistory, ParamState, SampleValue, Transition};

use std::fmt;

/// How far out of limits a sample is. `Option<Severity>::None` is "in limits".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    /// The wire and storage name: `WARNING`, `CRITICAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "WARNING",
            Self::Critical => "CRITICAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "WARNING" => Some(Self::Warning),
            "CRITICAL" => Some(Self::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
