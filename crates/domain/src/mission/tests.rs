//! Given/when/then tests of the Mission aggregate.

use super::*;
use crate::values::{Metadata, MissionDescription, Progress, Title};
use serde_json::json;
use uuid::Uuid;

use MissionStatus::{Cancelled, Completed, Failed, InProgress, Pending};

fn id() -> MissionId {
    MissionId::from_uuid(Uuid::from_u128(11))
}

fn agent_id(n: u128) -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(n))
}

fn agent(n: u128, state: AgentAvailability) -> AgentRef {
    AgentRef {
        id: agent_id(n),
        state,
    }
}

fn idle(n: u128) -> AgentRef {
    agent(n, AgentAvailability::Available(AgentStatus::Idle))
}

fn create(agent: Option<AgentRef>) -> MissionCommand {
    MissionCommand::Create(CreateMission {
        id: id(),
        title: Title::parse("Survey", "title").unwrap(),
        description: MissionDescription::default(),
        priority: Priority::High,
        metadata: Metadata::default(),
        agent,
    })
}

fn created_with(status: MissionStatus, agent_id: Option<AgentId>) -> MissionEvent {
    MissionEvent::Created {
        id: id(),
        title: "Survey".into(),
        description: String::new(),
        status,
        priority: Priority::High,
        progress: 0,
        metadata: Map::new(),
        agent_id,
    }
}

fn created() -> MissionEvent {
    created_with(Pending, None)
}

fn change(to: MissionStatus) -> MissionCommand {
    MissionCommand::ChangeStatus { to, reason: None }
}

fn change_event() -> MissionEvent {
    MissionEvent::StatusChanged {
        from: Pending,
        to: InProgress,
        reason: None,
    }
}

fn progress(p: i64) -> MissionCommand {
    MissionCommand::UpdateProgress {
        progress: Progress::parse(p, "progress").unwrap(),
    }
}

/// given `history`, when `command`, then the result.
fn given_when(
    history: &[MissionEvent],
    command: MissionCommand,
) -> Result<Vec<MissionEvent>, DomainError> {
    let state = history.iter().fold(Mission::default(), Mission::evolve);
    state.decide(&command)
}

fn invalid(from: MissionStatus, to: &str) -> DomainError {
    DomainError::InvalidTransition {
        aggregate: "mission",
        from: from.as_str().into(),
        to: to.into(),
    }
}

fn agent_error(message: &str) -> DomainError {
    DomainError::field("agentId", message)
}

#[test]
fn create_new_mission_is_pending_at_zero() {
    assert_eq!(given_when(&[], create(None)), Ok(vec![created()]));
    let state = Mission::default().evolve(&created());
    let data = state.data().unwrap();
    assert_eq!(
        (data.status, data.progress, data.agent_id),
        (Pending, 0, None)
    );
}

#[test]
fn create_with_an_agent_assigns_it() {
    assert_eq!(
        given_when(&[], create(Some(idle(1)))),
        Ok(vec![created_with(Pending, Some(agent_id(1)))])
    );
}

#[test]
fn create_with_an_unusable_agent_is_refused() {
    let offline = agent(1, AgentAvailability::Available(AgentStatus::Offline));
    assert_eq!(
        given_when(&[], create(Some(offline))),
        Err(agent_error("agent is OFFLINE"))
    );
    assert_eq!(
        given_when(&[], create(Some(agent(1, AgentAvailability::Missing)))),
        Err(agent_error("agent does not exist"))
    );
}

#[test]
fn create_twice_is_refused() {
    let exists = Err(DomainError::AlreadyExists {
        aggregate: "mission",
    });
    assert_eq!(given_when(&[created()], create(None)), exists);
    assert_eq!(
        given_when(&[created(), MissionEvent::Deleted], create(None)),
        exists
    );
}

/// The legal transitions, written out independently of `can_go_to`.
const LEGAL: [(MissionStatus, MissionStatus); 6] = [
    (Pending, InProgress),
    (Pending, Cancelled),
    (InProgress, Pending),
    (InProgress, Completed),
    (InProgress, Failed),
    (InProgress, Cancelled),
];

#[test]
fn transition_table_covers_every_pair() {
    let mut checked = 0;
    for from in MissionStatus::ALL {
        for to in MissionStatus::ALL {
            let legal = LEGAL.contains(&(from, to));
            assert_eq!(from.can_go_to(to), legal, "can_go_to {from}->{to}");
            let result = given_when(
                &[created_with(from, None)],
                MissionCommand::ChangeStatus {
                    to,
                    reason: Some("why".into()),
                },
            );
            let expected = if from == to {
                Ok(vec![])
            } else if legal {
                Ok(vec![MissionEvent::StatusChanged {
                    from,
                    to,
                    reason: Some("why".into()),
                }])
            } else {
                Err(invalid(from, to.as_str()))
            };
            assert_eq!(result, expected, "{from}->{to}");
            checked += 1;
        }
    }
    assert_eq!(checked, 25);
}

#[test]
fn terminal_and_active_helpers() {
    for status in MissionStatus::ALL {
        let leaves = MissionStatus::ALL.iter().any(|to| status.can_go_to(*to));
        assert_eq!(status.is_terminal(), !leaves, "{status}");
        assert_eq!(status.is_active(), status == InProgress, "{status}");
    }
}

#[test]
fn completing_sets_progress_to_full() {
    let history = [
        created(),
        MissionEvent::StatusChanged {
            from: Pending,
            to: InProgress,
            reason: None,
        },
        MissionEvent::ProgressUpdated { from: 0, to: 40 },
    ];
    let events = given_when(&history, change(Completed)).unwrap();
    let state = history
        .iter()
        .chain(&events)
        .fold(Mission::default(), Mission::evolve);
    let data = state.data().unwrap();
    assert_eq!((data.status, data.progress), (Completed, 100));
}

#[test]
fn progress_updates_and_same_value_is_a_no_op() {
    assert_eq!(
        given_when(&[created()], progress(30)),
        Ok(vec![MissionEvent::ProgressUpdated { from: 0, to: 30 }])
    );
    let history = [created(), MissionEvent::ProgressUpdated { from: 0, to: 30 }];
    assert_eq!(given_when(&history, progress(30)), Ok(vec![]));
    assert_eq!(
        given_when(&history, progress(100)),
        Ok(vec![MissionEvent::ProgressUpdated { from: 30, to: 100 }])
    );
}

#[test]
fn progress_bounds_are_parsed() {
    assert!(Progress::parse(0, "progress").is_ok());
    assert!(Progress::parse(100, "progress").is_ok());
    for bad in [-1, 101] {
        let err = Progress::parse(bad, "progress").unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.message.as_str()),
            ("progress", "must be from 0 to 100")
        );
    }
}

#[test]
fn progress_in_a_terminal_state_is_refused() {
    for status in [Completed, Failed, Cancelled] {
        assert_eq!(
            given_when(&[created_with(status, None)], progress(50)),
            Err(invalid(status, "progress update"))
        );
    }
}

#[test]
fn evolve_clamps_a_stored_progress_above_full() {
    let history = [
        created(),
        MissionEvent::ProgressUpdated { from: 0, to: 250 },
    ];
    let state = history.iter().fold(Mission::default(), Mission::evolve);
    assert_eq!(state.data().unwrap().progress, 100);
}

#[test]
fn assign_refuses_missing_removed_and_offline_agents() {
    let cases = [
        (AgentAvailability::Missing, "agent does not exist"),
        (AgentAvailability::Removed, "agent does not exist"),
        (
            AgentAvailability::Available(AgentStatus::Offline),
            "agent is OFFLINE",
        ),
    ];
    for (state, message) in cases {
        let cmd = MissionCommand::Assign {
            agent: agent(1, state),
        };
        assert_eq!(given_when(&[created()], cmd), Err(agent_error(message)));
    }
}

#[test]
fn assign_busy_idle_or_error_agent_is_ok() {
    for status in [AgentStatus::Busy, AgentStatus::Idle, AgentStatus::Error] {
        let cmd = MissionCommand::Assign {
            agent: agent(1, AgentAvailability::Available(status)),
        };
        assert_eq!(
            given_when(&[created()], cmd),
            Ok(vec![MissionEvent::Assigned {
                agent_id: agent_id(1),
                previous: None
            }]),
            "{status}"
        );
    }
}

#[test]
fn reassign_names_the_previous_agent_and_same_agent_is_a_no_op() {
    let history = [created_with(Pending, Some(agent_id(1)))];
    assert_eq!(
        given_when(&history, MissionCommand::Assign { agent: idle(2) }),
        Ok(vec![MissionEvent::Assigned {
            agent_id: agent_id(2),
            previous: Some(agent_id(1)),
        }])
    );
    assert_eq!(
        given_when(&history, MissionCommand::Assign { agent: idle(1) }),
        Ok(vec![])
    );
}

#[test]
fn assign_in_a_terminal_state_is_refused() {
    for status in [Completed, Failed, Cancelled] {
        let cmd = MissionCommand::Assign { agent: idle(1) };
        assert_eq!(
            given_when(&[created_with(status, None)], cmd),
            Err(invalid(status, "assignment"))
        );
    }
}

#[test]
fn unassign_releases_the_agent_or_does_nothing() {
    let history = [
        created(),
        MissionEvent::Assigned {
            agent_id: agent_id(3),
            previous: None,
        },
    ];
    let events = given_when(&history, MissionCommand::Unassign).unwrap();
    assert_eq!(
        events,
        vec![MissionEvent::Unassigned {
            agent_id: agent_id(3)
        }]
    );
    let state = history
        .iter()
        .chain(&events)
        .fold(Mission::default(), Mission::evolve);
    assert_eq!(state.data().unwrap().agent_id, None);
    assert_eq!(
        given_when(&[created()], MissionCommand::Unassign),
        Ok(vec![])
    );
    let done = [created_with(Completed, Some(agent_id(3)))];
    assert_eq!(
        given_when(&done, MissionCommand::Unassign).map(|e| e.len()),
        Ok(1)
    );
}

#[test]
fn update_emits_only_changed_fields() {
    let cmd = MissionCommand::Update(UpdateMission {
        title: Some(Title::parse(" Survey ", "title").unwrap()),
        description: Some(MissionDescription::parse("map the crater", "d").unwrap()),
        priority: Some(Priority::High),
        metadata: Some(Metadata::parse(json!({"zone": 4}), "metadata").unwrap()),
    });
    let events = given_when(&[created()], cmd).unwrap();
    assert_eq!(
        events,
        vec![MissionEvent::Updated {
            title: None,
            description: Some("map the crater".into()),
            priority: None,
            metadata: Some(json!({"zone": 4}).as_object().cloned().unwrap()),
        }]
    );
    let state = std::iter::once(&created())
        .chain(&events)
        .fold(Mission::default(), Mission::evolve);
    assert_eq!(state.data().unwrap().description, "map the crater");
}

#[test]
fn update_with_nothing_new_emits_nothing() {
    let cmd = MissionCommand::Update(UpdateMission {
        title: Some(Title::parse("Survey", "title").unwrap()),
        priority: Some(Priority::High),
        ..UpdateMission::default()
    });
    assert_eq!(given_when(&[created()], cmd), Ok(vec![]));
    assert_eq!(
        given_when(
            &[created()],
            MissionCommand::Update(UpdateMission::default())
        ),
        Ok(vec![])
    );
}

#[test]
fn deleted_mission_refuses_every_command() {
    let history = [created(), MissionEvent::Deleted];
    let state = history.iter().fold(Mission::default(), Mission::evolve);
    assert!(matches!(state, Mission::Deleted(ref d) if d.title == "Survey"));
    assert_eq!(state.data(), None);
    let not_found = Err(DomainError::NotFound {
        aggregate: "mission",
    });
    for cmd in [
        MissionCommand::Update(UpdateMission::default()),
        change(InProgress),
        progress(10),
        MissionCommand::Assign { agent: idle(1) },
        MissionCommand::Unassign,
        MissionCommand::Delete,
    ] {
        assert_eq!(given_when(&history, cmd.clone()), not_found, "{cmd:?}");
        assert_eq!(given_when(&[], cmd), not_found);
    }
}

#[test]
fn delete_is_allowed_in_any_status() {
    for status in MissionStatus::ALL {
        assert_eq!(
            given_when(&[created_with(status, None)], MissionCommand::Delete),
            Ok(vec![MissionEvent::Deleted])
        );
    }
}

#[test]
fn unfitting_events_leave_the_state_unchanged() {
    let absent = Mission::default();
    for event in [
        MissionEvent::Deleted,
        MissionEvent::ProgressUpdated { from: 0, to: 5 },
        MissionEvent::Unassigned {
            agent_id: agent_id(1),
        },
    ] {
        assert_eq!(absent.clone().evolve(&event), Mission::Absent);
    }
    let deleted = [created(), MissionEvent::Deleted]
        .iter()
        .fold(Mission::default(), Mission::evolve);
    assert_eq!(deleted.clone().evolve(&created()), deleted);
    assert_eq!(deleted.clone().evolve(&change_event()), deleted);
}

#[test]
fn enums_parse_exact_names_and_list_them_on_error() {
    assert_eq!("IN_PROGRESS".parse::<MissionStatus>(), Ok(InProgress));
    assert_eq!(
        "done".parse::<MissionStatus>(),
        Err("must be one of PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED".into())
    );
    for status in MissionStatus::ALL {
        assert_eq!(status.as_str().parse(), Ok(status));
    }
    assert_eq!("URGENT".parse::<Priority>(), Ok(Priority::Urgent));
    assert_eq!(
        "high".parse::<Priority>(),
        Err("must be one of LOW, MEDIUM, HIGH, URGENT".into())
    );
    assert_eq!(Priority::default(), Priority::Medium);
    assert!(Priority::Low < Priority::Urgent);
}
