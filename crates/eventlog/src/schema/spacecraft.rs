//! Stored schema of the Spacecraft events.

use super::{payload, to_value, EventSchema, SchemaError, Upcaster};
use mc_domain::spacecraft::{LimitsConfig, ParameterLimits, SpacecraftEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const REGISTERED: &str = "spacecraft.registered";
pub const LIMITS_CONFIGURED: &str = "spacecraft.limits_configured";

pub(super) const VERSIONS: &[(&str, u32)] = &[(REGISTERED, 1), (LIMITS_CONFIGURED, 1)];
pub(super) const UPCASTERS: &[Upcaster] = &[];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisteredV1 {
    id: String,
    name: String,
    metadata: Map<String, Value>,
}

/// One parameter's limits in stored form (shared with the `fleet` limits).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LimitsV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warn_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warn_high: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit_high: Option<f64>,
    persistence: u32,
    hysteresis: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stale_after: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_values: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LimitsConfiguredV1 {
    parameters: BTreeMap<String, LimitsV1>,
    /// Epoch milliseconds.
    effective_at: i64,
}

/// Limits in their stored form (the `parameters` of `spacecraft.limits_configured`, as the
/// `spacecraft_limits` read model keeps them) back into the domain type.
pub fn limits_from_stored(parameters: Value) -> Result<LimitsConfig, SchemaError> {
    let value = serde_json::json!({"parameters": parameters, "effectiveAt": 0});
    match SpacecraftEvent::from_current(LIMITS_CONFIGURED, value)? {
        SpacecraftEvent::LimitsConfigured { limits, .. } => Ok(limits),
        SpacecraftEvent::Registered { .. } => Err(SchemaError::UnknownType {
            event_type: REGISTERED.to_owned(),
        }),
    }
}

pub(super) fn limits_to_stored(limits: &LimitsConfig) -> BTreeMap<String, LimitsV1> {
    limits
        .parameters()
        .iter()
        .map(|(k, l)| {
            let v1 = LimitsV1 {
                warn_low: l.warn_low,
                warn_high: l.warn_high,
                crit_low: l.crit_low,
                crit_high: l.crit_high,
                persistence: l.persistence,
                hysteresis: l.hysteresis,
                stale_after: l.stale_after,
                allowed_values: l.allowed_values.clone(),
            };
            (k.clone(), v1)
        })
        .collect()
}

pub(super) fn limits_from_v1(parameters: BTreeMap<String, LimitsV1>) -> LimitsConfig {
    let map = parameters
        .into_iter()
        .map(|(k, l)| {
            let limits = ParameterLimits {
                warn_low: l.warn_low,
                warn_high: l.warn_high,
                crit_low: l.crit_low,
                crit_high: l.crit_high,
                persistence: l.persistence,
                hysteresis: l.hysteresis,
                stale_after: l.stale_after,
                allowed_values: l.allowed_values,
            };
            (k, limits)
        })
        .collect();
    LimitsConfig::from_map(map)
}

impl EventSchema for SpacecraftEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        match self {
            Self::Registered { id, name, metadata } => (
                REGISTERED,
                1,
                to_value(&RegisteredV1 {
                    id: id.clone(),
                    name: name.clone(),
                    metadata: metadata.clone(),
                }),
            ),
            Self::LimitsConfigured {
                limits,
                effective_at,
            } => {
                let parameters = limits_to_stored(limits);
                (
                    LIMITS_CONFIGURED,
                    1,
                    to_value(&LimitsConfiguredV1 {
                        parameters,
                        effective_at: *effective_at,
                    }),
                )
            }
        }
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        Ok(match event_type {
            REGISTERED => {
                let p: RegisteredV1 = payload(event_type, value)?;
                Self::Registered {
                    id: p.id,
                    name: p.name,
                    metadata: p.metadata,
                }
            }
            LIMITS_CONFIGURED => {
                let p: LimitsConfiguredV1 = payload(event_type, value)?;
                Self::LimitsConfigured {
                    limits: limits_from_v1(p.parameters),
                    effective_at: p.effective_at,
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
    use mc_domain::spacecraft::RawLimits;
    use serde_json::json;

    /// Snapshot of the stored form: renaming a variant or field must not change these.
    #[test]
    fn stored_form_is_stable() {
        let raw: BTreeMap<String, RawLimits> = [(
            "temp".to_owned(),
            RawLimits {
                warn_high: Some(40.0),
                crit_high: Some(50.0),
                persistence: Some(3),
                stale_after: Some(60),
                ..Default::default()
            },
        )]
        .into();
        let cases = [
            (
                SpacecraftEvent::Registered {
                    id: "SC-001".into(),
                    name: "Voyager".into(),
                    metadata: Map::new(),
                },
                json!({"type": "spacecraft.registered", "v": 1, "payload": {"id": "SC-001", "name": "Voyager", "metadata": {}}}),
            ),
            (
                SpacecraftEvent::LimitsConfigured {
                    limits: LimitsConfig::parse(raw).unwrap(),
                    effective_at: 1_700_000_000_000,
                },
                json!({"type": "spacecraft.limits_configured", "v": 1, "payload": {"effectiveAt": 1_700_000_000_000_i64, "parameters": {
                    "temp": {"warnHigh": 40.0, "critHigh": 50.0, "persistence": 3, "hysteresis": 0.0, "staleAfter": 60}}}}),
            ),
        ];
        for (event, expected) in cases {
            let (t, v, p) = event.to_stored();
            assert_eq!(json!({"type": t, "v": v, "payload": p}), expected);
            assert_eq!(SpacecraftEvent::from_stored(t, v, p).unwrap(), event);
        }
    }
}
