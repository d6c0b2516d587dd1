//! Stored schema of the Alarm events.

use super::{payload, to_value, EventSchema, SchemaError, Upcaster};
use mc_domain::alarm::{AlarmEvent, AlarmKey, AlarmKind, ClearReason, Operator};
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::telemetry::Severity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const RAISED: &str = "alarm.raised";
pub const ESCALATED: &str = "alarm.escalated";
pub const RETURNED_TO_NORMAL: &str = "alarm.returned_to_normal";
pub const ACKNOWLEDGED: &str = "alarm.acknowledged";
pub const CLEARED: &str = "alarm.cleared";
pub const SHELVED: &str = "alarm.shelved";
pub const UNSHELVED: &str = "alarm.unshelved";

pub(super) const VERSIONS: &[(&str, u32)] = &[
    (RAISED, 1),
    (ESCALATED, 1),
    (RETURNED_TO_NORMAL, 1),
    (ACKNOWLEDGED, 1),
    (CLEARED, 1),
    (SHELVED, 1),
    (UNSHELVED, 1),
];
pub(super) const UPCASTERS: &[Upcaster] = &[];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RaisedV1 {
    spacecraft_id: String,
    parameter: String,
    kind: String,
    occurrence: u64,
    severity: String,
    value: Value,
    /// Epoch milliseconds of the sample.
    sample_time: i64,
    ordinal: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EscalatedV1 {
    severity: String,
    value: Value,
    sample_time: i64,
    ordinal: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReturnedV1 {
    value: Value,
    sample_time: i64,
    ordinal: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperatorActionV1 {
    operator: String,
    comment: String,
    /// Epoch milliseconds.
    at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClearedV1 {
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShelvedV1 {
    operator: String,
    comment: String,
    at: i64,
    until: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnshelvedV1 {
    /// `operator` or `expired`.
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    at: i64,
}

fn bad(event_type: &str, reason: impl Into<String>) -> SchemaError {
    SchemaError::BadPayload {
        event_type: event_type.to_owned(),
        reason: reason.into(),
    }
}

fn severity(event_type: &str, s: &str) -> Result<Severity, SchemaError> {
    Severity::parse(s).ok_or_else(|| bad(event_type, format!("unknown severity {s}")))
}

fn operator(name: Option<String>, comment: Option<String>) -> Option<Operator> {
    name.map(|name| Operator {
        name,
        comment: comment.unwrap_or_default(),
    })
}

impl EventSchema for AlarmEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        match self {
            Self::Raised {
                key,
                occurrence,
                severity,
                value,
                sample_time_ms,
                ordinal,
            } => (
                RAISED,
                1,
                to_value(&RaisedV1 {
                    spacecraft_id: key.spacecraft.to_string(),
                    parameter: key.parameter.clone(),
                    kind: key.kind.as_str().to_owned(),
                    occurrence: *occurrence,
                    severity: severity.as_str().to_owned(),
                    value: value.clone(),
                    sample_time: *sample_time_ms,
                    ordinal: *ordinal,
                }),
            ),
            Self::Escalated {
                severity,
                value,
                sample_time_ms,
                ordinal,
            } => (
                ESCALATED,
                1,
                to_value(&EscalatedV1 {
                    severity: severity.as_str().to_owned(),
                    value: value.clone(),
                    sample_time: *sample_time_ms,
                    ordinal: *ordinal,
                }),
            ),
            Self::ReturnedToNormal {
                value,
                sample_time_ms,
                ordinal,
            } => (
                RETURNED_TO_NORMAL,
                1,
                to_value(&ReturnedV1 {
                    value: value.clone(),
                    sample_time: *sample_time_ms,
                    ordinal: *ordinal,
                }),
            ),
            Self::Acknowledged { operator, at_ms } => (
                ACKNOWLEDGED,
                1,
                to_value(&OperatorActionV1 {
                    operator: operator.name.clone(),
                    comment: operator.comment.clone(),
                    at: *at_ms,
                }),
            ),
            Self::Cleared {
                reason,
                operator,
                at_ms,
            } => (
                CLEARED,
                1,
                to_value(&ClearedV1 {
                    reason: reason.as_str().to_owned(),
                    operator: operator.as_ref().map(|o| o.name.clone()),
                    comment: operator.as_ref().map(|o| o.comment.clone()),
                    at: *at_ms,
                }),
            ),
            Self::Shelved {
                operator,
                at_ms,
                until_ms,
            } => (
                SHELVED,
                1,
                to_value(&ShelvedV1 {
                    operator: operator.name.clone(),
                    comment: operator.comment.clone(),
                    at: *at_ms,
                    until: *until_ms,
                }),
            ),
            Self::Unshelved { operator, at_ms } => (
                UNSHELVED,
                1,
                to_value(&UnshelvedV1 {
                    reason: if operator.is_some() {
                        "operator"
                    } else {
                        "expired"
                    }
                    .to_owned(),
                    operator: operator.as_ref().map(|o| o.name.clone()),
                    comment: operator.as_ref().map(|o| o.comment.clone()),
                    at: *at_ms,
                }),
            ),
        }
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        Ok(match event_type {
            RAISED => {
                let p: RaisedV1 = payload(event_type, value)?;
                let spacecraft = SpacecraftId::parse(&p.spacecraft_id, "spacecraftId")
                    .map_err(|e| bad(event_type, e.to_string()))?;
                let kind = AlarmKind::parse(&p.kind)
                    .ok_or_else(|| bad(event_type, format!("unknown alarm kind {}", p.kind)))?;
                Self::Raised {
                    key: AlarmKey {
                        spacecraft,
                        parameter: p.parameter,
                        kind,
                    },
                    occurrence: p.occurrence,
                    severity: severity(event_type, &p.severity)?,
                    value: p.value,
                    sample_time_ms: p.sample_time,
                    ordinal: p.ordinal,
                }
            }
            ESCALATED => {
                let p: EscalatedV1 = payload(event_type, value)?;
                Self::Escalated {
                    severity: severity(event_type, &p.severity)?,
                    value: p.value,
                    sample_time_ms: p.sample_time,
                    ordinal: p.ordinal,
                }
            }
            RETURNED_TO_NORMAL => {
                let p: ReturnedV1 = payload(event_type, value)?;
                Self::ReturnedToNormal {
                    value: p.value,
                    sample_time_ms: p.sample_time,
                    ordinal: p.ordinal,
                }
            }
            ACKNOWLEDGED => {
                let p: OperatorActionV1 = payload(event_type, value)?;
                Self::Acknowledged {
                    operator: Operator {
                        name: p.operator,
                        comment: p.comment,
                    },
                    at_ms: p.at,
                }
            }
            CLEARED => {
                let p: ClearedV1 = payload(event_type, value)?;
                Self::Cleared {
                    reason: ClearReason::parse(&p.reason)
                        .ok_or_else(|| bad(event_type, format!("unknown reason {}", p.reason)))?,
                    operator: operator(p.operator, p.comment),
                    at_ms: p.at,
                }
            }
            SHELVED => {
                let p: ShelvedV1 = payload(event_type, value)?;
                Self::Shelved {
                    operator: Operator {
                        name: p.operator,
                        comment: p.comment,
                    },
                    at_ms: p.at,
                    until_ms: p.until,
                }
            }
            UNSHELVED => {
                let p: UnshelvedV1 = payload(event_type, value)?;
                Self::Unshelved {
                    operator: operator(p.operator, p.comment),
                    at_ms: p.at,
                }
            }
            other => {
                return Err(SchemaError::UnknownType {
                    event_type: other.to_owned(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Snapshot of the stored form: renaming a variant or field must not change these.
    #[test]
    fn stored_form_is_stable() {
        let op = || Operator {
            name: "fd".into(),
            comment: "seen".into(),
        };
        let cases = [
            (
                AlarmEvent::Raised {
                    key: AlarmKey {
                        spacecraft: SpacecraftId::parse("SC-001", "id").unwrap(),
                        parameter: "temp".into(),
                        kind: AlarmKind::Limit,
                    },
                    occurrence: 1,
                    severity: Severity::Warning,
                    value: json!(46.0),
                    sample_time_ms: 1_000,
                    ordinal: 7,
                },
                json!({"type": "alarm.raised", "v": 1, "payload": {"spacecraftId": "SC-001", "parameter": "temp",
                    "kind": "LIMIT", "occurrence": 1, "severity": "WARNING", "value": 46.0, "sampleTime": 1000, "ordinal": 7}}),
            ),
            (
                AlarmEvent::Escalated {
                    severity: Severity::Critical,
                    value: json!(70),
                    sample_time_ms: 2_000,
                    ordinal: 8,
                },
                json!({"type": "alarm.escalated", "v": 1, "payload": {"severity": "CRITICAL", "value": 70, "sampleTime": 2000, "ordinal": 8}}),
            ),
            (
                AlarmEvent::ReturnedToNormal {
                    value: json!("NOMINAL"),
                    sample_time_ms: 3_000,
                    ordinal: 9,
                },
                json!({"type": "alarm.returned_to_normal", "v": 1, "payload": {"value": "NOMINAL", "sampleTime": 3000, "ordinal": 9}}),
            ),
            (
                AlarmEvent::Acknowledged {
                    operator: op(),
                    at_ms: 4,
                },
                json!({"type": "alarm.acknowledged", "v": 1, "payload": {"operator": "fd", "comment": "seen", "at": 4}}),
            ),
            (
                AlarmEvent::Cleared {
                    reason: ClearReason::Normal,
                    operator: None,
                    at_ms: 5,
                },
                json!({"type": "alarm.cleared", "v": 1, "payload": {"reason": "normal", "at": 5}}),
            ),
            (
                AlarmEvent::Cleared {
                    reason: ClearReason::Operator,
                    operator: Some(op()),
                    at_ms: 5,
                },
                json!({"type": "alarm.cleared", "v": 1, "payload": {"reason": "operator", "operator": "fd", "comment": "seen", "at": 5}}),
            ),
            (
                AlarmEvent::Shelved {
                    operator: op(),
                    at_ms: 6,
                    until_ms: 60,
                },
                json!({"type": "alarm.shelved", "v": 1, "payload": {"operator": "fd", "comment": "seen", "at": 6, "until": 60}}),
            ),
            (
                AlarmEvent::Unshelved {
                    operator: None,
                    at_ms: 60,
                },
                json!({"type": "alarm.unshelved", "v": 1, "payload": {"reason": "expired", "at": 60}}),
            ),
        ];
        for (event, expected) in cases {
            let (t, v, p) = event.to_stored();
            assert_eq!(json!({"type": t, "v": v, "payload": p}), expected);
            assert_eq!(AlarmEvent::from_stored(t, v, p).unwrap(), event);
        }
    }
}
