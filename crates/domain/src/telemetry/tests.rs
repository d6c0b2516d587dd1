//! Limit checking: bands, allowed values, persistence, hysteresis, escalation, limits history.

use super::*;
use crate::spacecraft::{LimitsConfig, ParameterLimits};

fn temp() -> ParameterLimits {
    ParameterLimits {
        crit_low: Some(-10.0),
        warn_low: Some(0.0),
        warn_high: Some(40.0),
        crit_high: Some(60.0),
        persistence: 1,
        ..Default::default()
    }
}

fn run(limits: &ParameterLimits, values: &[f64]) -> Vec<Option<Transition>> {
    let mut state = ParamState::default();
    values
        .iter()
        .map(|v| state.step(Some(limits), SampleValue::Number(*v)))
        .collect()
}

#[test]
fn bands_give_severities_and_bounds_are_in_limits() {
    let l = temp();
    let sev = |v| evaluate(&l, SampleValue::Number(v), 0.0);
    assert_eq!(sev(20.0), None);
    assert_eq!(sev(40.0), None);
    assert_eq!(sev(40.5), Some(Severity::Warning));
    assert_eq!(sev(60.5), Some(Severity::Critical));
    assert_eq!(sev(-0.5), Some(Severity::Warning));
    assert_eq!(sev(-11.0), Some(Severity::Critical));
}

#[test]
fn allowed_values_judge_strings_and_booleans() {
    let l = ParameterLimits {
        allowed_values: Some(vec!["NOMINAL".into(), "true".into()]),
        ..Default::default()
    };
    assert_eq!(evaluate(&l, SampleValue::Text("NOMINAL"), 0.0), None);
    assert_eq!(
        evaluate(&l, SampleValue::Text("SAFE"), 0.0),
        Some(Severity::Warning)
    );
    assert_eq!(evaluate(&l, SampleValue::Bool(true), 0.0), None);
    assert_eq!(
        evaluate(&l, SampleValue::Bool(false), 0.0),
        Some(Severity::Warning)
    );
    // Numeric bands do not judge strings.
    assert_eq!(evaluate(&temp(), SampleValue::Text("hot"), 0.0), None);
}

#[test]
fn given_normal_when_one_violation_then_raise_and_no_repeat() {
    use Transition::*;
    assert_eq!(
        run(&temp(), &[20.0, 45.0, 46.0, 20.0]),
        [
            None,
            Some(Raise(Severity::Warning)),
            None,
            Some(ReturnToNormal)
        ]
    );
}

#[test]
fn given_persistence_3_when_violations_are_interrupted_then_no_raise() {
    use Transition::*;
    let l = ParameterLimits {
        persistence: 3,
        ..temp()
    };
    assert_eq!(
        run(&l, &[45.0, 45.0, 20.0, 45.0, 45.0, 45.0]),
        [None, None, None, None, None, Some(Raise(Severity::Warning))]
    );
}

#[test]
fn given_hysteresis_when_value_sits_in_the_deadband_then_alarm_holds() {
    use Transition::*;
    let l = ParameterLimits {
        hysteresis: 2.0,
        ..temp()
    };
    assert_eq!(
        run(&l, &[41.0, 39.0, 38.5, 37.9]),
        [
            Some(Raise(Severity::Warning)),
            None,
            None,
            Some(ReturnToNormal)
        ]
    );
}

#[test]
fn given_warning_when_value_goes_critical_then_escalate_once() {
    use Transition::*;
    assert_eq!(
        run(&temp(), &[45.0, 65.0, 70.0, 45.0, 65.0, 20.0]),
        [
            Some(Raise(Severity::Warning)),
            Some(Escalate(Severity::Critical)),
            None,
            None,
            Some(Escalate(Severity::Critical)),
            Some(ReturnToNormal)
        ]
    );
}

#[test]
fn given_alarm_when_limits_are_removed_then_return_to_normal() {
    let mut s = ParamState::default();
    assert!(s.step(Some(&temp()), SampleValue::Number(50.0)).is_some());
    assert_eq!(
        s.step(None, SampleValue::Number(50.0)),
        Some(Transition::ReturnToNormal)
    );
    assert_eq!(s, ParamState::default());
}

#[test]
fn limits_in_force_at_a_timestamp() {
    let cfg = |hi: f64| {
        LimitsConfig::from_map(
            [(
                "temp".to_owned(),
                ParameterLimits {
                    warn_high: Some(hi),
                    ..temp()
                },
            )]
            .into_iter()
            .collect(),
        )
    };
    let hi = |h: &LimitsHistory, at| h.at(at).map(|c| c.parameters()["temp"].warn_high);
    let h = LimitsHistory::new(vec![
        (2_000, 2, cfg(30.0)),
        (1_000, 1, cfg(40.0)),
        (2_000, 3, cfg(35.0)),
    ]);
    assert_eq!(hi(&h, 999), None);
    assert_eq!(hi(&h, 1_000), Some(Some(40.0)));
    assert_eq!(hi(&h, 1_999), Some(Some(40.0)));
    // Two configurations effective at the same instant: the later version wins.
    assert_eq!(hi(&h, 2_000), Some(Some(35.0)));
    assert!(LimitsHistory::default().is_empty());
}
