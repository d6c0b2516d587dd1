//! Given/when/then tests of the Agent aggregate.

use super::*;
use crate::values::{Capabilities, Description, Metadata, Name};
use uuid::Uuid;

fn id() -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(7))
}

fn register(name: &str) -> AgentCommand {
    AgentCommand::Register(RegisterAgent {
        id: id(),
        name: Name::parse(name, "name").unwrap(),
        description: Description::default(),
        capabilities: Capabilities::parse(&["search".into()], "capabilities").unwrap(),
        metadata: Metadata::default(),
        status: AgentStatus::Idle,
    })
}

fn registered(name: &str) -> AgentEvent {
    AgentEvent::Registered {
        id: id(),
        name: name.into(),
        description: String::new(),
        capabilities: vec!["search".into()],
        metadata: Map::new(),
        status: AgentStatus::Idle,
    }
}

/// given `history`, when `command`, then the result.
fn given_when(
    history: &[AgentEvent],
    command: AgentCommand,
) -> Result<Vec<AgentEvent>, DomainError> {
    let state = history.iter().fold(Agent::default(), Agent::evolve);
    state.decide(&command)
}

#[test]
fn register_new_agent() {
    assert_eq!(
        given_when(&[], register("probe")),
        Ok(vec![registered("probe")])
    );
}

#[test]
fn register_twice_is_refused() {
    assert_eq!(
        given_when(&[registered("probe")], register("probe")),
        Err(DomainError::AlreadyExists { aggregate: "agent" })
    );
}

#[test]
fn update_emits_only_changed_fields() {
    let cmd = AgentCommand::Update(UpdateAgent {
        name: Some(Name::parse("probe", "name").unwrap()),
        description: Some(Description::parse("scans", "description").unwrap()),
        ..UpdateAgent::default()
    });
    assert_eq!(
        given_when(&[registered("probe")], cmd),
        Ok(vec![AgentEvent::Updated {
            name: None,
            description: Some("scans".into()),
            capabilities: None,
            metadata: None,
        }])
    );
}

#[test]
fn update_with_nothing_new_emits_nothing() {
    let cmd = AgentCommand::Update(UpdateAgent {
        name: Some(Name::parse("probe", "name").unwrap()),
        status: Some(AgentStatus::Idle),
        ..UpdateAgent::default()
    });
    assert_eq!(given_when(&[registered("probe")], cmd), Ok(vec![]));
}

#[test]
fn update_with_status_is_two_events_in_one_commit() {
    let cmd = AgentCommand::Update(UpdateAgent {
        name: Some(Name::parse("scout", "name").unwrap()),
        status: Some(AgentStatus::Busy),
        ..UpdateAgent::default()
    });
    let events = given_when(&[registered("probe")], cmd).unwrap();
    assert_eq!(events.len(), 2);
    assert!(matches!(
        &events[1],
        AgentEvent::StatusChanged {
            from: AgentStatus::Idle,
            to: AgentStatus::Busy,
            ..
        }
    ));
}

#[test]
fn every_status_change_is_legal_and_same_status_is_a_no_op() {
    for from in AgentStatus::ALL {
        for to in AgentStatus::ALL {
            let mut start = registered("probe");
            if let AgentEvent::Registered { status, .. } = &mut start {
                *status = from;
            }
            let events = given_when(
                &[start],
                AgentCommand::ChangeStatus {
                    status: to,
                    reason: None,
                },
            )
            .unwrap();
            if from == to {
                assert!(events.is_empty(), "{from}->{to}");
            } else {
                assert_eq!(
                    events,
                    vec![AgentEvent::StatusChanged {
                        from,
                        to,
                        reason: None
                    }]
                );
            }
        }
    }
}

#[test]
fn removed_agent_refuses_everything_but_history_stays() {
    let history = [
        registered("probe"),
        AgentEvent::Removed {
            name: "probe".into(),
        },
    ];
    let state = history.iter().fold(Agent::default(), Agent::evolve);
    assert!(matches!(state, Agent::Removed(ref d) if d.name == "probe"));
    for cmd in [
        AgentCommand::Remove,
        AgentCommand::ChangeStatus {
            status: AgentStatus::Busy,
            reason: None,
        },
    ] {
        assert_eq!(
            given_when(&history, cmd),
            Err(DomainError::NotFound { aggregate: "agent" })
        );
    }
}

#[test]
fn unknown_agent_is_not_found() {
    assert_eq!(
        given_when(&[], AgentCommand::Remove),
        Err(DomainError::NotFound { aggregate: "agent" })
    );
}

#[test]
fn status_parses_exact_names() {
    assert_eq!("BUSY".parse::<AgentStatus>(), Ok(AgentStatus::Busy));
    assert!("busy".parse::<AgentStatus>().is_err());
}

#[test]
fn root_counts_versions_and_checks() {
    let mut root = crate::Root::<Agent>::default();
    root.handle(&register("probe")).unwrap();
    assert_eq!(root.version(), 1);
    assert_eq!(root.take_uncommitted().len(), 1);
    assert!(root.check(crate::Check::MustBe(1)).is_ok());
    assert_eq!(
        root.check(crate::Check::MustBe(0)),
        Err(crate::ConflictError {
            expected: 0,
            actual: 1
        })
    );
}

fn went(from: AgentStatus, to: AgentStatus) -> AgentEvent {
    AgentEvent::StatusChanged {
        from,
        to,
        reason: None,
    }
}

#[test]
fn a_heartbeat_brings_back_only_an_offline_agent() {
    let offline = [
        registered("a"),
        went(AgentStatus::Idle, AgentStatus::Offline),
    ];
    assert_eq!(
        given_when(&offline, AgentCommand::Heartbeat).unwrap(),
        vec![AgentEvent::StatusChanged {
            from: AgentStatus::Offline,
            to: AgentStatus::Idle,
            reason: Some(HEARTBEAT_REASON.into()),
        }]
    );
    for status in [AgentStatus::Idle, AgentStatus::Busy, AgentStatus::Error] {
        let history = [registered("a"), went(AgentStatus::Idle, status)];
        assert!(given_when(&history, AgentCommand::Heartbeat)
            .unwrap()
            .is_empty());
    }
    assert!(matches!(
        given_when(&[], AgentCommand::Heartbeat),
        Err(DomainError::NotFound { .. })
    ));
}

#[test]
fn marking_offline_records_the_silence_once() {
    let busy = [registered("a"), went(AgentStatus::Idle, AgentStatus::Busy)];
    assert_eq!(
        given_when(&busy, AgentCommand::MarkOffline { silent_seconds: 90 }).unwrap(),
        vec![AgentEvent::StatusChanged {
            from: AgentStatus::Busy,
            to: AgentStatus::Offline,
            reason: Some("no heartbeat or activity for 90 s".into()),
        }]
    );
    let offline = [
        registered("a"),
        went(AgentStatus::Idle, AgentStatus::Offline),
    ];
    assert!(
        given_when(&offline, AgentCommand::MarkOffline { silent_seconds: 90 })
            .unwrap()
            .is_empty()
    );
}
