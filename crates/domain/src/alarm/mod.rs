//! The Alarm aggregate, modelled on ISA-18.2 as YAMCS applies it: one alarm per spacecraft,
//! parameter and kind; each occurrence is raised, may escalate, is acknowledged by an operator
//! and returns to normal, and is cleared once it is both acknowledged and back to normal.
//! Shelving hides an alarm until a time; it does not stop the alarm from tracking its state.
//!
//! Architecture Invariant: `Raise` and `ReturnToNormal` carry the ordinal of the sample that
//! caused them (stream position and index, or the sweep time for staleness); an ordinal not
//! above the last one applied is a no-op, so re-judging telemetry after a crash or a replay
//! never repeats a transition.

#[cfg(test)]
mod tests;

use crate::aggregate::Aggregate;
use crate::error::DomainError;
use crate::spacecraft::SpacecraftId;
use crate::telemetry::Severity;
use serde_json::Value;
use std::fmt;

/// The longest an alarm may be shelved: 30 days.
pub const SHELVE_MAX_MS: i64 = 30 * 24 * 3_600_000;

/// What an alarm watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlarmKind {
    /// A parameter out of its limits (or outside its allowed values).
    Limit,
    /// A parameter with no sample for longer than its `staleAfter`.
    Stale,
    /// A task's or agent's LLM spend past its budget (`parameter` `budgetUsd` of the source
    /// `task-<id>` or `agent-<id>`).
    Budget,
}

impl AlarmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "LIMIT",
            Self::Stale => "STALE",
            Self::Budget => "BUDGET",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LIMIT" => Some(Self::Limit),
            "STALE" => Some(Self::Stale),
            "BUDGET" => Some(Self::Budget),
            _ => None,
        }
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of an alarm; its id is derived from it ([`crate::ids::AlarmId::for_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlarmKey {
    pub spacecraft: SpacecraftId,
    pub parameter: String,
    pub kind: AlarmKind,
}

/// Who did an operator action, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub comment: String,
}

/// One occurrence: from raise to clear.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// 1 for the first occurrence of this alarm, then counting up.
    pub number: u64,
    /// The highest severity reached in this occurrence.
    pub severity: Severity,
    /// Out of limits now (not yet returned to normal).
    pub active: bool,
    pub acknowledged: bool,
    pub raised_at_ms: i64,
    pub trigger_value: Value,
    pub last_value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmData {
    pub key: AlarmKey,
    /// The ordinal of the last sample applied.
    pub last_ordinal: u64,
    /// Occurrences so far, including the current one.
    pub occurrences: u64,
    /// The current occurrence; `None` once cleared.
    pub occurrence: Option<Occurrence>,
    /// Shelved until this time (epoch ms).
    pub shelved_until_ms: Option<i64>,
}

/// The operator-visible state of an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// Active, not acknowledged.
    Raised,
    /// Active, acknowledged.
    Acknowledged,
    /// Back to normal, not yet acknowledged.
    Returned,
    /// No occurrence in progress.
    Cleared,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "RAISED",
            Self::Acknowledged => "ACKNOWLEDGED",
            Self::Returned => "RETURNED",
            Self::Cleared => "CLEARED",
        }
    }
}

impl AlarmData {
    pub fn state(&self) -> AlarmState {
        match &self.occurrence {
            None => AlarmState::Cleared,
            Some(o) if o.active && o.acknowledged => AlarmState::Acknowledged,
            Some(o) if o.active => AlarmState::Raised,
            Some(_) => AlarmState::Returned,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Alarm {
    #[default]
    Absent,
    Known(AlarmData),
}

impl Alarm {
    pub fn data(&self) -> Option<&AlarmData> {
        match self {
            Self::Known(d) => Some(d),
            Self::Absent => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlarmCommand {
    /// A sample out of limits at `severity` (after persistence).
    Raise {
        key: AlarmKey,
        severity: Severity,
        value: Value,
        sample_time_ms: i64,
        ordinal: u64,
    },
    /// A sample back within limits (past the hysteresis deadband).
    ReturnToNormal {
        value: Value,
        sample_time_ms: i64,
        ordinal: u64,
    },
    Acknowledge {
        operator: Operator,
        at_ms: i64,
    },
    /// Clear an occurrence that is back to normal without acknowledging it first.
    Clear {
        operator: Operator,
        at_ms: i64,
    },
    Shelve {
        operator: Operator,
        until_ms: i64,
        now_ms: i64,
    },
    Unshelve {
        operator: Operator,
        at_ms: i64,
    },
    /// Unshelve if the shelve has expired by `now_ms`; otherwise nothing.
    ExpireShelve {
        now_ms: i64,
    },
}

/// Why an occurrence was cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearReason {
    /// Returned to normal while acknowledged.
    Normal,
    /// Acknowledged after returning to normal.
    Acknowledged,
    /// Cleared by an operator after returning to normal.
    Operator,
}

impl ClearReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Acknowledged => "acknowledged",
            Self::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(Self::Normal),
            "acknowledged" => Some(Self::Acknowledged),
            "operator" => Some(Self::Operator),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlarmEvent {
    Raised {
        key: AlarmKey,
        occurrence: u64,
        severity: Severity,
        value: Value,
        sample_time_ms: i64,
        ordinal: u64,
    },
    Escalated {
        severity: Severity,
        value: Value,
        sample_time_ms: i64,
        ordinal: u64,
    },
    ReturnedToNormal {
        value: Value,
        sample_time_ms: i64,
        ordinal: u64,
    },
    Acknowledged {
        operator: Operator,
        at_ms: i64,
    },
    Cleared {
        reason: ClearReason,
        /// The operator who cleared it, for [`ClearReason::Operator`].
        operator: Option<Operator>,
        at_ms: i64,
    },
    Shelved {
        operator: Operator,
        at_ms: i64,
        until_ms: i64,
    },
    /// `operator` is `None` when the shelve expired.
    Unshelved {
        operator: Option<Operator>,
        at_ms: i64,
    },
}

const ALARM: &str = "alarm";

fn refuse(from: AlarmState, to: &str) -> DomainError {
    DomainError::InvalidTransition {
        aggregate: ALARM,
        from: from.as_str().to_owned(),
        to: to.to_owned(),
    }
}

impl Aggregate for Alarm {
    const TYPE: &'static str = ALARM;
    type Command = AlarmCommand;
    type Event = AlarmEvent;

    fn decide(&self, command: &AlarmCommand) -> Result<Vec<AlarmEvent>, DomainError> {
        let data = match (self, command) {
            (Self::Known(d), _) => d,
            (
                Self::Absent,
                AlarmCommand::Raise {
                    key,
                    severity,
                    value,
                    sample_time_ms,
                    ordinal,
                },
            ) => {
                return Ok(vec![AlarmEvent::Raised {
                    key: key.clone(),
                    occurrence: 1,
                    severity: *severity,
                    value: value.clone(),
                    sample_time_ms: *sample_time_ms,
                    ordinal: *ordinal,
                }])
            }
            // Nothing was ever raised: a return to normal or an expiry check changes nothing.
            (
                Self::Absent,
                AlarmCommand::ReturnToNormal { .. } | AlarmCommand::ExpireShelve { .. },
            ) => return Ok(vec![]),
            (Self::Absent, _) => return Err(DomainError::NotFound { aggregate: ALARM }),
        };
        decide_known(data, command)
    }

    fn evolve(self, event: &AlarmEvent) -> Self {
        match (self, event) {
            (
                Self::Absent,
                AlarmEvent::Raised {
                    key,
                    occurrence,
                    severity,
                    value,
                    sample_time_ms,
                    ordinal,
                },
            ) => Self::Known(AlarmData {
                key: key.clone(),
                last_ordinal: *ordinal,
                occurrences: *occurrence,
                occurrence: Some(Occurrence {
                    number: *occurrence,
                    severity: *severity,
                    active: true,
                    acknowledged: false,
                    raised_at_ms: *sample_time_ms,
                    trigger_value: value.clone(),
                    last_value: value.clone(),
                }),
                shelved_until_ms: None,
            }),
            (Self::Known(d), event) => Self::Known(evolve_known(d, event)),
            (state, _) => state,
        }
    }
}

fn decide_known(d: &AlarmData, command: &AlarmCommand) -> Result<Vec<AlarmEvent>, DomainError> {
    let state = d.state();
    Ok(match command {
        AlarmCommand::Raise {
            severity,
            value,
            sample_time_ms,
            ordinal,
            ..
        } => {
            if *ordinal <= d.last_ordinal {
                return Ok(vec![]);
            }
            match &d.occurrence {
                Some(o) if o.active && *severity > o.severity => vec![AlarmEvent::Escalated {
                    severity: *severity,
                    value: value.clone(),
                    sample_time_ms: *sample_time_ms,
                    ordinal: *ordinal,
                }],
                Some(o) if o.active => vec![],
                // Out of limits again before the last occurrence was acknowledged: it is
                // active again, at the higher of the two severities.
                Some(o) => vec![AlarmEvent::Raised {
                    key: d.key.clone(),
                    occurrence: o.number,
                    severity: (*severity).max(o.severity),
                    value: value.clone(),
                    sample_time_ms: *sample_time_ms,
                    ordinal: *ordinal,
                }],
                None => vec![AlarmEvent::Raised {
                    key: d.key.clone(),
                    occurrence: d.occurrences + 1,
                    severity: *severity,
                    value: value.clone(),
                    sample_time_ms: *sample_time_ms,
                    ordinal: *ordinal,
                }],
            }
        }
        AlarmCommand::ReturnToNormal {
            value,
            sample_time_ms,
            ordinal,
        } => {
            if *ordinal <= d.last_ordinal {
                return Ok(vec![]);
            }
            match &d.occurrence {
                Some(o) if o.active => {
                    let mut events = vec![AlarmEvent::ReturnedToNormal {
                        value: value.clone(),
                        sample_time_ms: *sample_time_ms,
                        ordinal: *ordinal,
                    }];
                    if o.acknowledged {
                        events.push(AlarmEvent::Cleared {
                            reason: ClearReason::Normal,
                            operator: None,
                            at_ms: *sample_time_ms,
                        });
                    }
                    events
                }
                _ => vec![],
            }
        }
        AlarmCommand::Acknowledge { operator, at_ms } => match state {
            AlarmState::Raised => vec![AlarmEvent::Acknowledged {
                operator: operator.clone(),
                at_ms: *at_ms,
            }],
            AlarmState::Returned => vec![
                AlarmEvent::Acknowledged {
                    operator: operator.clone(),
                    at_ms: *at_ms,
                },
                AlarmEvent::Cleared {
                    reason: ClearReason::Acknowledged,
                    operator: None,
                    at_ms: *at_ms,
                },
            ],
            AlarmState::Acknowledged | AlarmState::Cleared => {
                return Err(refuse(state, "ACKNOWLEDGED"))
            }
        },
        AlarmCommand::Clear { operator, at_ms } => match state {
            AlarmState::Returned => vec![AlarmEvent::Cleared {
                reason: ClearReason::Operator,
                operator: Some(operator.clone()),
                at_ms: *at_ms,
            }],
            _ => return Err(refuse(state, "CLEARED")),
        },
        AlarmCommand::Shelve {
            operator,
            until_ms,
            now_ms,
        } => {
            if *until_ms <= *now_ms {
                return Err(DomainError::field("until", "must be in the future"));
            }
            if *until_ms - *now_ms > SHELVE_MAX_MS {
                return Err(DomainError::field(
                    "until",
                    "must be at most 30 days from now",
                ));
            }
            vec![AlarmEvent::Shelved {
                operator: operator.clone(),
                at_ms: *now_ms,
                until_ms: *until_ms,
            }]
        }
        AlarmCommand::Unshelve { operator, at_ms } => match d.shelved_until_ms {
            Some(_) => vec![AlarmEvent::Unshelved {
                operator: Some(operator.clone()),
                at_ms: *at_ms,
            }],
            None => {
                return Err(DomainError::InvalidTransition {
                    aggregate: ALARM,
                    from: "UNSHELVED".to_owned(),
                    to: "UNSHELVED".to_owned(),
                })
            }
        },
        AlarmCommand::ExpireShelve { now_ms } => match d.shelved_until_ms {
            Some(until) if until <= *now_ms => vec![AlarmEvent::Unshelved {
                operator: None,
                at_ms: *now_ms,
            }],
            _ => vec![],
        },
    })
}

fn evolve_known(mut d: AlarmData, event: &AlarmEvent) -> AlarmData {
    match event {
        AlarmEvent::Raised {
            occurrence,
            severity,
            value,
            sample_time_ms,
            ordinal,
            ..
        } => {
            d.last_ordinal = *ordinal;
            match &mut d.occurrence {
                Some(o) if o.number == *occurrence => {
                    o.active = true;
                    o.acknowledged = false;
                    o.severity = *severity;
                    o.last_value = value.clone();
                }
                _ => {
                    d.occurrences = *occurrence;
                    d.occurrence = Some(Occurrence {
                        number: *occurrence,
                        severity: *severity,
                        active: true,
                        acknowledged: false,
                        raised_at_ms: *sample_time_ms,
                        trigger_value: value.clone(),
                        last_value: value.clone(),
                    });
                }
            }
        }
        AlarmEvent::Escalated {
            severity,
            value,
            ordinal,
            ..
        } => {
            d.last_ordinal = *ordinal;
            if let Some(o) = &mut d.occurrence {
                // A higher severity needs acknowledging again.
                o.severity = *severity;
                o.acknowledged = false;
                o.last_value = value.clone();
            }
        }
        AlarmEvent::ReturnedToNormal { value, ordinal, .. } => {
            d.last_ordinal = *ordinal;
            if let Some(o) = &mut d.occurrence {
                o.active = false;
                o.last_value = value.clone();
            }
        }
        AlarmEvent::Acknowledged { .. } => {
            if let Some(o) = &mut d.occurrence {
                o.acknowledged = true;
            }
        }
        AlarmEvent::Cleared { .. } => d.occurrence = None,
        AlarmEvent::Shelved { until_ms, .. } => d.shelved_until_ms = Some(*until_ms),
        AlarmEvent::Unshelved { .. } => d.shelved_until_ms = None,
    }
    d
}
