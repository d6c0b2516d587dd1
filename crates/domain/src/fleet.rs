//! Limits on fleet metrics: the telemetry limit engine's bands (warning and critical,
//! persistence, hysteresis) applied to per-agent metrics (`successRate`, …) and system
//! metrics (`healthScore`, …). One `fleet` aggregate holds them, so a replay judges every
//! metric against the limits in force at its time.

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldError};
use crate::spacecraft::{LimitsConfig, RawLimits};
use std::collections::BTreeMap;

/// The metrics of one agent that limits may watch.
pub const AGENT_METRICS: &[&str] = &[
    "successRate",
    "errorRate",
    "avgDurationSeconds",
    "missionsInProgress",
    "runsInProgress",
];

/// The system metrics that limits may watch.
pub const SYSTEM_METRICS: &[&str] = &[
    "healthScore",
    "successRate",
    "agentsOffline",
    "agentsActive",
    "tasksPending",
    "tasksFailed",
];

/// The aggregate id of the one `fleet` aggregate.
pub const FLEET_ID: &str = "limits";

/// Limits of agent metrics (the same for every agent) and of system metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FleetLimits {
    pub agent: LimitsConfig,
    pub system: LimitsConfig,
}

impl FleetLimits {
    /// Parse both sides, naming errors `agent.<metric>.<field>` / `system.<metric>.<field>`.
    /// Only numeric bands apply to metrics: `staleAfter` and `allowedValues` are refused.
    pub fn parse(
        agent: BTreeMap<String, RawLimits>,
        system: BTreeMap<String, RawLimits>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let agent = side("agent", AGENT_METRICS, agent, &mut errors);
        let system = side("system", SYSTEM_METRICS, system, &mut errors);
        match (agent, system) {
            (Some(agent), Some(system)) if errors.is_empty() => Ok(Self { agent, system }),
            _ => Err(errors),
        }
    }
}

fn side(
    prefix: &str,
    known: &[&str],
    raw: BTreeMap<String, RawLimits>,
    errors: &mut Vec<FieldError>,
) -> Option<LimitsConfig> {
    for (name, r) in &raw {
        if !known.contains(&name.as_str()) {
            errors.push(FieldError::new(
                format!("{prefix}.{}", truncate(name)),
                format!("unknown metric: one of {}", known.join(", ")),
            ));
        }
        if r.stale_after.is_some() {
            errors.push(FieldError::new(
                format!("{prefix}.{name}.staleAfter"),
                "metrics are judged when they change; staleAfter does not apply",
            ));
        }
        if r.allowed_values.is_some() {
            errors.push(FieldError::new(
                format!("{prefix}.{name}.allowedValues"),
                "metrics are numbers; allowedValues does not apply",
            ));
        }
    }
    if !errors.is_empty() {
        return None;
    }
    match LimitsConfig::parse(raw) {
        Ok(limits) => Some(limits),
        Err(found) => {
            errors.extend(found.into_iter().map(|e| FieldError {
                field: e.field.replacen("parameters", prefix, 1),
                message: e.message,
            }));
            None
        }
    }
}

/// A metric name from a client, cut to a length fit for an error message.
fn truncate(name: &str) -> String {
    name.chars().take(64).collect()
}

/// The `fleet` aggregate: the limits in force.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fleet {
    pub limits: FleetLimits,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FleetCommand {
    ConfigureLimits(FleetLimits),
}

#[derive(Debug, Clone, PartialEq)]
pub enum FleetEvent {
    LimitsConfigured(FleetLimits),
}

impl Aggregate for Fleet {
    const TYPE: &'static str = "fleet";
    type Command = FleetCommand;
    type Event = FleetEvent;

    /// The same limits again decide nothing.
    fn decide(&self, command: &FleetCommand) -> Result<Vec<FleetEvent>, DomainError> {
        match command {
            FleetCommand::ConfigureLimits(limits) if *limits == self.limits => Ok(Vec::new()),
            FleetCommand::ConfigureLimits(limits) => {
                Ok(vec![FleetEvent::LimitsConfigured(limits.clone())])
            }
        }
    }

    fn evolve(self, event: &FleetEvent) -> Self {
        match event {
            FleetEvent::LimitsConfigured(limits) => Self {
                limits: limits.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(warn_low: f64) -> RawLimits {
        RawLimits {
            warn_low: Some(warn_low),
            ..RawLimits::default()
        }
    }

    #[test]
    fn known_metrics_parse_and_the_same_limits_decide_nothing() {
        let limits = FleetLimits::parse(
            [("successRate".to_owned(), raw(0.8))].into(),
            [("healthScore".to_owned(), raw(70.0))].into(),
        )
        .unwrap();
        let events = Fleet::default()
            .decide(&FleetCommand::ConfigureLimits(limits.clone()))
            .unwrap();
        assert_eq!(events, vec![FleetEvent::LimitsConfigured(limits.clone())]);
        let state = events.iter().fold(Fleet::default(), Fleet::evolve);
        assert!(state
            .decide(&FleetCommand::ConfigureLimits(limits))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unknown_metrics_and_non_numeric_limits_name_their_field() {
        let mut stale = raw(1.0);
        stale.stale_after = Some(5);
        let errors = FleetLimits::parse(
            [
                ("cpu".to_owned(), raw(1.0)),
                ("errorRate".to_owned(), stale),
            ]
            .into(),
            BTreeMap::new(),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["agent.cpu", "agent.errorRate.staleAfter"]);
        let mut bad = raw(0.9);
        bad.crit_low = Some(0.95);
        let errors = FleetLimits::parse(BTreeMap::new(), [("successRate".to_owned(), bad)].into())
            .unwrap_err();
        assert_eq!(errors[0].field, "system.successRate.warnLow");
    }
}
