//! Given/when/then tests of the Alarm aggregate.

use super::*;
use crate::ids::AlarmId;
use serde_json::json;

fn key() -> AlarmKey {
    AlarmKey {
        spacecraft: SpacecraftId::parse("SC-001", "spacecraftId").unwrap(),
        parameter: "temp".into(),
        kind: AlarmKind::Limit,
    }
}

fn op() -> Operator {
    Operator {
        name: "flight-director".into(),
        comment: "seen".into(),
    }
}

fn raise(severity: Severity, ordinal: u64) -> AlarmCommand {
    AlarmCommand::Raise {
        key: key(),
        severity,
        value: json!(ordinal),
        sample_time_ms: ordinal as i64,
        ordinal,
    }
}

fn normal(ordinal: u64) -> AlarmCommand {
    AlarmCommand::ReturnToNormal {
        value: json!(0),
        sample_time_ms: ordinal as i64,
        ordinal,
    }
}

fn ack() -> AlarmCommand {
    AlarmCommand::Acknowledge {
        operator: op(),
        at_ms: 99,
    }
}

/// Run `commands` from nothing, folding each one's events; the events of the last command.
fn given_when(given: &[AlarmCommand], when: AlarmCommand) -> Result<Vec<AlarmEvent>, DomainError> {
    let mut state = Alarm::default();
    for c in given {
        for e in state.decide(c).expect("given command is legal") {
            state = state.evolve(&e);
        }
    }
    state.decide(&when)
}

fn kinds(events: &[AlarmEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            AlarmEvent::Raised { .. } => "raised",
            AlarmEvent::Escalated { .. } => "escalated",
            AlarmEvent::ReturnedToNormal { .. } => "returned",
            AlarmEvent::Acknowledged { .. } => "acknowledged",
            AlarmEvent::Cleared { .. } => "cleared",
            AlarmEvent::Shelved { .. } => "shelved",
            AlarmEvent::Unshelved { .. } => "unshelved",
        })
        .collect()
}

#[test]
fn ids_are_derived_from_the_key() {
    assert_eq!(AlarmId::for_key(&key()), AlarmId::for_key(&key()));
    let stale = AlarmKey {
        kind: AlarmKind::Stale,
        ..key()
    };
    assert_ne!(AlarmId::for_key(&key()), AlarmId::for_key(&stale));
}

#[test]
fn given_nothing_when_raised_then_first_occurrence() {
    let events = given_when(&[], raise(Severity::Warning, 1)).unwrap();
    assert!(matches!(
        events.as_slice(),
        [AlarmEvent::Raised {
            occurrence: 1,
            severity: Severity::Warning,
            ..
        }]
    ));
    assert_eq!(given_when(&[], normal(1)), Ok(vec![]));
    assert_eq!(
        given_when(&[], ack()),
        Err(DomainError::NotFound { aggregate: "alarm" })
    );
}

#[test]
fn given_raised_when_higher_severity_then_escalates_and_needs_a_new_ack() {
    let given = [raise(Severity::Warning, 1), ack()];
    assert_eq!(
        kinds(&given_when(&given, raise(Severity::Critical, 2)).unwrap()),
        ["escalated"]
    );
    assert_eq!(given_when(&given, raise(Severity::Warning, 2)), Ok(vec![]));
    let escalated = [
        raise(Severity::Warning, 1),
        ack(),
        raise(Severity::Critical, 2),
    ];
    assert_eq!(
        kinds(&given_when(&escalated, ack()).unwrap()),
        ["acknowledged"]
    );
}

#[test]
fn ordinals_already_applied_are_ignored() {
    let given = [raise(Severity::Warning, 5)];
    assert_eq!(given_when(&given, raise(Severity::Critical, 5)), Ok(vec![]));
    assert_eq!(given_when(&given, normal(4)), Ok(vec![]));
    assert_eq!(kinds(&given_when(&given, normal(6)).unwrap()), ["returned"]);
}

#[test]
fn cleared_when_both_acknowledged_and_back_to_normal_in_either_order() {
    let acked = [raise(Severity::Warning, 1), ack()];
    assert_eq!(
        kinds(&given_when(&acked, normal(2)).unwrap()),
        ["returned", "cleared"]
    );
    let returned = [raise(Severity::Warning, 1), normal(2)];
    assert_eq!(
        kinds(&given_when(&returned, ack()).unwrap()),
        ["acknowledged", "cleared"]
    );
    let cleared = [raise(Severity::Warning, 1), normal(2), ack()];
    assert!(matches!(
        given_when(&cleared, ack()),
        Err(DomainError::InvalidTransition { .. })
    ));
    // The next violation is a new occurrence.
    let events = given_when(&cleared, raise(Severity::Warning, 3)).unwrap();
    assert!(matches!(
        events.as_slice(),
        [AlarmEvent::Raised { occurrence: 2, .. }]
    ));
}

#[test]
fn given_returned_unacknowledged_when_out_of_limits_again_then_same_occurrence_reactivates() {
    let given = [raise(Severity::Critical, 1), normal(2)];
    let events = given_when(&given, raise(Severity::Warning, 3)).unwrap();
    assert!(matches!(
        events.as_slice(),
        [AlarmEvent::Raised {
            occurrence: 1,
            severity: Severity::Critical,
            ..
        }]
    ));
}

#[test]
fn clear_only_once_back_to_normal() {
    let clear = AlarmCommand::Clear {
        operator: op(),
        at_ms: 9,
    };
    assert!(matches!(
        given_when(&[raise(Severity::Warning, 1)], clear.clone()),
        Err(DomainError::InvalidTransition { .. })
    ));
    let events = given_when(&[raise(Severity::Warning, 1), normal(2)], clear).unwrap();
    assert!(matches!(
        events.as_slice(),
        [AlarmEvent::Cleared {
            reason: ClearReason::Operator,
            operator: Some(_),
            ..
        }]
    ));
}

#[test]
fn shelve_is_bounded_and_expires() {
    let shelve = |until_ms| AlarmCommand::Shelve {
        operator: op(),
        until_ms,
        now_ms: 1_000,
    };
    let given = [raise(Severity::Warning, 1)];
    assert!(matches!(
        given_when(&given, shelve(1_000)),
        Err(DomainError::Validation(_))
    ));
    assert!(matches!(
        given_when(&given, shelve(1_001 + SHELVE_MAX_MS)),
        Err(DomainError::Validation(_))
    ));
    let shelved = [raise(Severity::Warning, 1), shelve(5_000)];
    assert_eq!(
        given_when(&shelved, AlarmCommand::ExpireShelve { now_ms: 4_999 }),
        Ok(vec![])
    );
    assert_eq!(
        kinds(&given_when(&shelved, AlarmCommand::ExpireShelve { now_ms: 5_000 }).unwrap()),
        ["unshelved"]
    );
    let unshelve = AlarmCommand::Unshelve {
        operator: op(),
        at_ms: 2_000,
    };
    assert_eq!(
        kinds(&given_when(&shelved, unshelve.clone()).unwrap()),
        ["unshelved"]
    );
    assert!(matches!(
        given_when(&given, unshelve),
        Err(DomainError::InvalidTransition { .. })
    ));
    // A shelved alarm still tracks its state.
    assert_eq!(
        kinds(&given_when(&shelved, normal(2)).unwrap()),
        ["returned"]
    );
}
