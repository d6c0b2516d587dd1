//! Given/when/then tests of the Spacecraft aggregate.

use super::*;
use crate::values::{Metadata, Name};
use std::collections::BTreeMap;

fn register() -> SpacecraftCommand {
    SpacecraftCommand::Register {
        id: SpacecraftId::parse("SC-001", "id").unwrap(),
        name: Name::parse("Voyager", "name").unwrap(),
        metadata: Metadata::default(),
    }
}

fn registered() -> SpacecraftEvent {
    SpacecraftEvent::Registered {
        id: "SC-001".into(),
        name: "Voyager".into(),
        metadata: Map::new(),
    }
}

fn limits(warn_high: f64) -> LimitsConfig {
    let raw: BTreeMap<String, RawLimits> = [(
        "temp".to_owned(),
        RawLimits {
            warn_high: Some(warn_high),
            ..Default::default()
        },
    )]
    .into();
    LimitsConfig::parse(raw).unwrap()
}

fn given_when(
    history: &[SpacecraftEvent],
    command: SpacecraftCommand,
) -> Result<Vec<SpacecraftEvent>, DomainError> {
    history
        .iter()
        .fold(Spacecraft::default(), Spacecraft::evolve)
        .decide(&command)
}

#[test]
fn ids_are_subject_tokens() {
    assert!(SpacecraftId::parse("SC-001", "id").is_ok());
    for bad in ["", "SC.001", "SC*", "-SC", "a b", &"x".repeat(65)] {
        assert!(SpacecraftId::parse(bad, "spacecraftId").is_err(), "{bad}");
    }
}

#[test]
fn register_once() {
    assert_eq!(given_when(&[], register()), Ok(vec![registered()]));
    assert_eq!(
        given_when(&[registered()], register()),
        Err(DomainError::AlreadyExists {
            aggregate: "spacecraft"
        })
    );
}

#[test]
fn limits_need_a_spacecraft_and_change_with_an_effective_time() {
    let cmd = |w, at| SpacecraftCommand::ConfigureLimits {
        limits: limits(w),
        effective_at: at,
    };
    assert_eq!(
        given_when(&[], cmd(40.0, 0)),
        Err(DomainError::NotFound {
            aggregate: "spacecraft"
        })
    );
    let first = given_when(&[registered()], cmd(40.0, 1_000)).unwrap();
    assert_eq!(
        first,
        vec![SpacecraftEvent::LimitsConfigured {
            limits: limits(40.0),
            effective_at: 1_000
        }]
    );
    let history = [registered(), first[0].clone()];
    assert_eq!(
        given_when(&history, cmd(40.0, 1_000)),
        Ok(vec![]),
        "same limits, same time: no-op"
    );
    assert_eq!(given_when(&history, cmd(45.0, 2_000)).unwrap().len(), 1);
}
