//! The severity of one sample, the per-parameter evaluator state machine (persistence,
//! hysteresis, escalation), and which limits are in force at a timestamp.

use super::Severity;
use crate::spacecraft::{LimitsConfig, ParameterLimits};
use std::sync::Arc;

/// A sample value as producers send it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleValue<'a> {
    Number(f64),
    Bool(bool),
    Text(&'a str),
}

/// The severity of `value` under `limits`, with every band pulled inwards by `deadband`
/// (0 when deciding to raise; the hysteresis when deciding whether an alarm may return to
/// normal). Bounds are in limits: `warnHigh = 40` raises at 40.000001, not at 40.
/// Strings and booleans are judged by `allowedValues` (a value outside them is a WARNING);
/// a value of a kind the limits do not cover is in limits.
pub fn evaluate(
    limits: &ParameterLimits,
    value: SampleValue<'_>,
    deadband: f64,
) -> Option<Severity> {
    match value {
        SampleValue::Number(v) => {
            let below = |l: Option<f64>| l.is_some_and(|l| v < l + deadband);
            let above = |h: Option<f64>| h.is_some_and(|h| v > h - deadband);
            if below(limits.crit_low) || above(limits.crit_high) {
                Some(Severity::Critical)
            } else if below(limits.warn_low) || above(limits.warn_high) {
                Some(Severity::Warning)
            } else {
                None
            }
        }
        SampleValue::Bool(b) => allowed(limits, if b { "true" } else { "false" }),
        SampleValue::Text(s) => allowed(limits, s),
    }
}

fn allowed(limits: &ParameterLimits, value: &str) -> Option<Severity> {
    match &limits.allowed_values {
        Some(values) if !values.iter().any(|a| a == value) => Some(Severity::Warning),
        _ => None,
    }
}

/// What a sample changes about a parameter's alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// From normal, after `persistence` consecutive violations.
    Raise(Severity),
    /// While in alarm, to a higher severity than the current one.
    Escalate(Severity),
    /// Back inside the limits by at least the hysteresis.
    ReturnToNormal,
}

/// The evaluator's memory of one parameter: its current alarm level and the run of
/// consecutive violations while normal. Small and `Copy` so the processor can persist it
/// with its checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParamState {
    pub level: Option<Severity>,
    pub run: u32,
}

impl ParamState {
    /// Judge one sample. `limits` is `None` when no limits are in force for the parameter at
    /// the sample's time (an alarm in force then returns to normal).
    pub fn step(
        &mut self,
        limits: Option<&ParameterLimits>,
        value: SampleValue<'_>,
    ) -> Option<Transition> {
        let raw = limits.and_then(|l| evaluate(l, value, 0.0));
        match self.level {
            None => {
                let Some(severity) = raw else {
                    self.run = 0;
                    return None;
                };
                self.run += 1;
                let needed = limits.map_or(1, |l| l.persistence.max(1));
                if self.run < needed {
                    return None;
                }
                self.run = 0;
                self.level = Some(severity);
                Some(Transition::Raise(severity))
            }
            Some(current) => {
                if let Some(severity) = raw.filter(|s| *s > current) {
                    self.level = Some(severity);
                    return Some(Transition::Escalate(severity));
                }
                let held = limits.and_then(|l| evaluate(l, value, l.hysteresis));
                match held {
                    None => {
                        self.level = None;
                        self.run = 0;
                        Some(Transition::ReturnToNormal)
                    }
                    // Still out of limits (or inside the deadband): the alarm holds; a lower
                    // severity is remembered so a new rise escalates again.
                    Some(held) => {
                        self.level = Some(held.min(current));
                        None
                    }
                }
            }
        }
    }
}

/// The limits configurations of one spacecraft, each in force from its effective time.
#[derive(Debug, Clone, Default)]
pub struct LimitsHistory {
    /// Sorted by effective time, then by version (a later version wins a tie).
    entries: Vec<(i64, Arc<LimitsConfig>)>,
}

impl LimitsHistory {
    /// Build from `(effective_at_ms, version, limits)` in any order.
    pub fn new(mut entries: Vec<(i64, i64, LimitsConfig)>) -> Self {
        entries.sort_by_key(|(at, version, _)| (*at, *version));
        Self {
            entries: entries
                .into_iter()
                .map(|(at, _, l)| (at, Arc::new(l)))
                .collect(),
        }
    }

    /// The configuration in force at `at_ms`: the last one whose effective time is not after it.
    pub fn at(&self, at_ms: i64) -> Option<&LimitsConfig> {
        let n = self.entries.partition_point(|(from, _)| *from <= at_ms);
        n.checked_sub(1).map(|i| &*self.entries[i].1)
    }

    /// Like [`Self::at`], with the time the configuration took effect.
    pub fn at_with_time(&self, at_ms: i64) -> Option<(i64, &LimitsConfig)> {
        let n = self.entries.partition_point(|(from, _)| *from <= at_ms);
        n.checked_sub(1)
            .map(|i| (self.entries[i].0, &*self.entries[i].1))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
