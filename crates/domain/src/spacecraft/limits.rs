//! Per-parameter limits of a spacecraft (YAMCS/COSMOS style): warning and critical bands,
//! persistence, hysteresis, staleness, allowed values for string parameters.

use crate::error::FieldError;
use std::collections::BTreeMap;

pub const PARAMETERS_MAX: usize = 500;
pub const PARAMETER_NAME_MAX: usize = 64;
pub const ALLOWED_VALUES_MAX: usize = 100;
pub const PERSISTENCE_MAX: u32 = 1_000;
pub const STALE_AFTER_MAX_SECONDS: u32 = 7 * 24 * 3600;

/// Limits of one parameter. Every band is optional; ordering is enforced when present:
/// `critLow ≤ warnLow ≤ warnHigh ≤ critHigh`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParameterLimits {
    pub warn_low: Option<f64>,
    pub warn_high: Option<f64>,
    pub crit_low: Option<f64>,
    pub crit_high: Option<f64>,
    /// Consecutive violating samples before an alarm is raised (≥ 1).
    pub persistence: u32,
    /// Deadband a value must clear before returning to normal (≥ 0).
    pub hysteresis: f64,
    /// Seconds without a sample before the parameter is stale.
    pub stale_after: Option<u32>,
    /// For string parameters: the values that are in limits.
    pub allowed_values: Option<Vec<String>>,
}

/// Unvalidated limits as a client sends them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawLimits {
    pub warn_low: Option<f64>,
    pub warn_high: Option<f64>,
    pub crit_low: Option<f64>,
    pub crit_high: Option<f64>,
    pub persistence: Option<i64>,
    pub hysteresis: Option<f64>,
    pub stale_after: Option<i64>,
    pub allowed_values: Option<Vec<String>>,
}

/// A whole limits configuration: parameter name → limits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LimitsConfig(BTreeMap<String, ParameterLimits>);

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= PARAMETER_NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

impl LimitsConfig {
    /// Parse every parameter, collecting all errors (`parameters.<name>.<field>`).
    pub fn parse(raw: BTreeMap<String, RawLimits>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if raw.len() > PARAMETERS_MAX {
            errors.push(FieldError::new(
                "parameters",
                format!("must have at most {PARAMETERS_MAX} entries"),
            ));
            return Err(errors);
        }
        let mut out = BTreeMap::new();
        for (name, r) in raw {
            let at = |f: &str| format!("parameters.{name}.{f}");
            if !valid_name(&name) {
                errors.push(FieldError::new(
                    format!("parameters.{name}"),
                    format!("parameter names are 1 to {PARAMETER_NAME_MAX} of A-Z a-z 0-9 _ - . :"),
                ));
                continue;
            }
            let before = errors.len();
            for (field, v) in [
                ("warnLow", r.warn_low),
                ("warnHigh", r.warn_high),
                ("critLow", r.crit_low),
                ("critHigh", r.crit_high),
            ] {
                if v.is_some_and(|v| !v.is_finite()) {
                    errors.push(FieldError::new(at(field), "must be a finite number"));
                }
            }
            let order = [
                ("critLow", r.crit_low),
                ("warnLow", r.warn_low),
                ("warnHigh", r.warn_high),
                ("critHigh", r.crit_high),
            ];
            let present: Vec<(&str, f64)> = order
                .iter()
                .filter_map(|(f, v)| v.map(|v| (*f, v)))
                .collect();
            for pair in present.windows(2) {
                if pair[0].1 > pair[1].1 {
                    errors.push(FieldError::new(
                        at(pair[1].0),
                        format!("must not be below {}", pair[0].0),
                    ));
                }
            }
            let persistence = match r.persistence {
                None => 1,
                Some(p) if (1..=i64::from(PERSISTENCE_MAX)).contains(&p) => p as u32,
                Some(_) => {
                    errors.push(FieldError::new(
                        at("persistence"),
                        format!("must be from 1 to {PERSISTENCE_MAX}"),
                    ));
                    1
                }
            };
            let hysteresis = match r.hysteresis {
                None => 0.0,
                Some(h) if h.is_finite() && h >= 0.0 => h,
                Some(_) => {
                    errors.push(FieldError::new(
                        at("hysteresis"),
                        "must be a finite number ≥ 0",
                    ));
                    0.0
                }
            };
            let stale_after = match r.stale_after {
                None => None,
                Some(s) if (1..=i64::from(STALE_AFTER_MAX_SECONDS)).contains(&s) => Some(s as u32),
                Some(_) => {
                    errors.push(FieldError::new(
                        at("staleAfter"),
                        format!("must be from 1 to {STALE_AFTER_MAX_SECONDS} seconds"),
                    ));
                    None
                }
            };
            if let Some(values) = &r.allowed_values {
                if values.is_empty() || values.len() > ALLOWED_VALUES_MAX {
                    errors.push(FieldError::new(
                        at("allowedValues"),
                        format!("must have 1 to {ALLOWED_VALUES_MAX} entries"),
                    ));
                } else if values.iter().any(|v| {
                    v.is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control)
                }) {
                    errors.push(FieldError::new(
                        at("allowedValues"),
                        "entries are 1 to 64 characters without control characters",
                    ));
                }
            }
            if errors.len() == before {
                out.insert(
                    name,
                    ParameterLimits {
                        warn_low: r.warn_low,
                        warn_high: r.warn_high,
                        crit_low: r.crit_low,
                        crit_high: r.crit_high,
                        persistence,
                        hysteresis,
                        stale_after,
                        allowed_values: r.allowed_values,
                    },
                );
            }
        }
        if errors.is_empty() {
            Ok(Self(out))
        } else {
            Err(errors)
        }
    }

    /// Trusted limits (from stored events).
    pub fn from_map(map: BTreeMap<String, ParameterLimits>) -> Self {
        Self(map)
    }

    pub fn parameters(&self) -> &BTreeMap<String, ParameterLimits> {
        &self.0
    }

    pub fn into_map(self) -> BTreeMap<String, ParameterLimits> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, r: RawLimits) -> Result<LimitsConfig, Vec<FieldError>> {
        LimitsConfig::parse([(name.to_owned(), r)].into_iter().collect())
    }

    fn fields(r: Result<LimitsConfig, Vec<FieldError>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn bands_must_be_ordered_and_finite() {
        let ok = one(
            "temp",
            RawLimits {
                crit_low: Some(-10.0),
                warn_low: Some(0.0),
                warn_high: Some(40.0),
                crit_high: Some(50.0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ok.parameters()["temp"].persistence, 1);
        assert_eq!(
            fields(one(
                "temp",
                RawLimits {
                    warn_low: Some(5.0),
                    crit_low: Some(6.0),
                    ..Default::default()
                }
            )),
            ["parameters.temp.warnLow"]
        );
        assert_eq!(
            fields(one(
                "temp",
                RawLimits {
                    warn_high: Some(f64::NAN),
                    ..Default::default()
                }
            )),
            ["parameters.temp.warnHigh"]
        );
    }

    #[test]
    fn counts_and_names_are_bounded() {
        assert_eq!(
            fields(one(
                "temp",
                RawLimits {
                    persistence: Some(0),
                    ..Default::default()
                }
            )),
            ["parameters.temp.persistence"]
        );
        assert_eq!(
            fields(one(
                "temp",
                RawLimits {
                    hysteresis: Some(-1.0),
                    ..Default::default()
                }
            )),
            ["parameters.temp.hysteresis"]
        );
        assert_eq!(
            fields(one(
                "temp",
                RawLimits {
                    stale_after: Some(0),
                    ..Default::default()
                }
            )),
            ["parameters.temp.staleAfter"]
        );
        assert_eq!(
            fields(one(
                "mode",
                RawLimits {
                    allowed_values: Some(vec![]),
                    ..Default::default()
                }
            )),
            ["parameters.mode.allowedValues"]
        );
        assert_eq!(
            fields(one("bad name", RawLimits::default())),
            ["parameters.bad name"]
        );
    }
}
