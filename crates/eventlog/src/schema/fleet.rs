//! Stored schema of the `fleet` events: limits on agent and system metrics, in the same
//! per-parameter form as a spacecraft's limits.

use super::spacecraft::{limits_from_v1, limits_to_stored, LimitsV1};
use super::{payload, to_value, EventSchema, SchemaError, Upcaster};
use mc_domain::fleet::{FleetEvent, FleetLimits};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const LIMITS_CONFIGURED: &str = "fleet.limits_configured";

pub(super) const VERSIONS: &[(&str, u32)] = &[(LIMITS_CONFIGURED, 1)];
pub(super) const UPCASTERS: &[Upcaster] = &[];

#[derive(Serialize, Deserialize)]
struct LimitsConfiguredV1 {
    agent: BTreeMap<String, LimitsV1>,
    system: BTreeMap<String, LimitsV1>,
}

impl EventSchema for FleetEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        match self {
            Self::LimitsConfigured(limits) => (
                LIMITS_CONFIGURED,
                1,
                to_value(&LimitsConfiguredV1 {
                    agent: limits_to_stored(&limits.agent),
                    system: limits_to_stored(&limits.system),
                }),
            ),
        }
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        match event_type {
            LIMITS_CONFIGURED => {
                let p: LimitsConfiguredV1 = payload(event_type, value)?;
                Ok(Self::LimitsConfigured(FleetLimits {
                    agent: limits_from_v1(p.agent),
                    system: limits_from_v1(p.system),
                }))
            }
            other => Err(SchemaError::UnknownType {
                event_type: other.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_domain::spacecraft::RawLimits;
    use serde_json::json;

    /// Snapshot of the stored form: renaming a variant or field must not change it.
    #[test]
    fn stored_form_is_stable() {
        let limits = FleetLimits::parse(
            [(
                "successRate".to_owned(),
                RawLimits {
                    warn_low: Some(0.8),
                    crit_low: Some(0.5),
                    persistence: Some(2),
                    ..RawLimits::default()
                },
            )]
            .into(),
            [(
                "healthScore".to_owned(),
                RawLimits {
                    warn_low: Some(70.0),
                    hysteresis: Some(5.0),
                    ..RawLimits::default()
                },
            )]
            .into(),
        )
        .unwrap();
        super::super::assert_round_trip(
            FleetEvent::LimitsConfigured(limits),
            json!({"type": "fleet.limits_configured", "v": 1, "payload": {
                "agent": {"successRate": {"warnLow": 0.8, "critLow": 0.5, "persistence": 2, "hysteresis": 0.0}},
                "system": {"healthScore": {"warnLow": 70.0, "persistence": 1, "hysteresis": 5.0}}}}),
        );
    }
}
