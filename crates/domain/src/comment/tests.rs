//! Given/when/then tests of the Comment aggregate.

use super::*;
use crate::agent::AgentStatus;
use crate::error::FieldError;
use crate::mission::AgentAvailability;
use crate::values::{Content, Metadata};
use serde_json::json;
use uuid::Uuid;

fn id() -> CommentId {
    CommentId::from_uuid(Uuid::from_u128(21))
}

fn agent_id() -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(1))
}

fn mission_id() -> MissionId {
    MissionId::from_uuid(Uuid::from_u128(2))
}

fn agent(state: AgentAvailability) -> Option<AgentRef> {
    Some(AgentRef {
        id: agent_id(),
        state,
    })
}

fn mission(exists: bool) -> Option<MissionRef> {
    Some(MissionRef {
        id: mission_id(),
        exists,
    })
}

fn content(text: &str) -> Content {
    Content::parse(text, "content").unwrap()
}

fn post(agent: Option<AgentRef>, mission: Option<MissionRef>) -> CommentCommand {
    CommentCommand::Post(PostComment {
        id: id(),
        content: content(" all clear "),
        comment_type: CommentType::Note,
        agent,
        mission,
        metadata: Metadata::default(),
    })
}

fn posted(agent_id: Option<AgentId>, mission_id: Option<MissionId>) -> CommentEvent {
    CommentEvent::Posted {
        id: id(),
        content: "all clear".into(),
        comment_type: CommentType::Note,
        agent_id,
        mission_id,
        metadata: Map::new(),
    }
}

fn edit() -> CommentCommand {
    CommentCommand::Edit {
        content: None,
        comment_type: None,
        metadata: None,
    }
}

/// given `history`, when `command`, then the result.
fn given_when(
    history: &[CommentEvent],
    command: CommentCommand,
) -> Result<Vec<CommentEvent>, DomainError> {
    let state = history.iter().fold(Comment::default(), Comment::evolve);
    state.decide(&command)
}

#[test]
fn post_free_standing_comment() {
    assert_eq!(
        given_when(&[], post(None, None)),
        Ok(vec![posted(None, None)])
    );
}

#[test]
fn post_with_existing_references() {
    let busy = AgentAvailability::Available(AgentStatus::Busy);
    assert_eq!(
        given_when(&[], post(agent(busy), mission(true))),
        Ok(vec![posted(Some(agent_id()), Some(mission_id()))])
    );
    // An OFFLINE agent still exists: it may be commented on.
    let offline = AgentAvailability::Available(AgentStatus::Offline);
    assert!(given_when(&[], post(agent(offline), None)).is_ok());
}

#[test]
fn post_refuses_dangling_references_naming_each_field() {
    for state in [AgentAvailability::Missing, AgentAvailability::Removed] {
        assert_eq!(
            given_when(&[], post(agent(state), None)),
            Err(DomainError::field("agentId", "agent does not exist"))
        );
    }
    assert_eq!(
        given_when(&[], post(None, mission(false))),
        Err(DomainError::field("missionId", "mission does not exist"))
    );
    assert_eq!(
        given_when(&[], post(agent(AgentAvailability::Missing), mission(false))),
        Err(DomainError::Validation(vec![
            FieldError::new("agentId", "agent does not exist"),
            FieldError::new("missionId", "mission does not exist"),
        ]))
    );
}

#[test]
fn post_twice_is_refused() {
    let exists = Err(DomainError::AlreadyExists {
        aggregate: "comment",
    });
    assert_eq!(given_when(&[posted(None, None)], post(None, None)), exists);
    let history = [posted(None, None), CommentEvent::Deleted];
    assert_eq!(given_when(&history, post(None, None)), exists);
}

#[test]
fn edit_emits_only_changed_fields() {
    let cmd = CommentCommand::Edit {
        content: Some(content("all clear")),
        comment_type: Some(CommentType::Warning),
        metadata: Some(Metadata::parse(json!({}), "metadata").unwrap()),
    };
    let events = given_when(&[posted(None, None)], cmd).unwrap();
    assert_eq!(
        events,
        vec![CommentEvent::Edited {
            content: None,
            comment_type: Some(CommentType::Warning),
            metadata: None,
        }]
    );
    let state = std::iter::once(&posted(None, None))
        .chain(&events)
        .fold(Comment::default(), Comment::evolve);
    assert_eq!(state.data().unwrap().comment_type, CommentType::Warning);
}

#[test]
fn edit_applies_content_and_metadata() {
    let cmd = CommentCommand::Edit {
        content: Some(content("hold")),
        comment_type: None,
        metadata: Some(Metadata::parse(json!({"k": 1}), "metadata").unwrap()),
    };
    let events = given_when(&[posted(None, None)], cmd).unwrap();
    let state = std::iter::once(&posted(None, None))
        .chain(&events)
        .fold(Comment::default(), Comment::evolve);
    let data = state.data().unwrap();
    assert_eq!(data.content, "hold");
    assert_eq!(data.metadata.get("k"), Some(&json!(1)));
}

#[test]
fn edit_with_nothing_new_emits_nothing() {
    assert_eq!(given_when(&[posted(None, None)], edit()), Ok(vec![]));
    let same = CommentCommand::Edit {
        content: Some(content("all clear")),
        comment_type: Some(CommentType::Note),
        metadata: None,
    };
    assert_eq!(given_when(&[posted(None, None)], same), Ok(vec![]));
}

#[test]
fn deleted_or_unknown_comment_is_not_found() {
    let history = [posted(None, None), CommentEvent::Deleted];
    let state = history.iter().fold(Comment::default(), Comment::evolve);
    assert!(matches!(state, Comment::Deleted(ref d) if d.content == "all clear"));
    let not_found = Err(DomainError::NotFound {
        aggregate: "comment",
    });
    for cmd in [edit(), CommentCommand::Delete] {
        assert_eq!(given_when(&history, cmd.clone()), not_found);
        assert_eq!(given_when(&[], cmd), not_found);
    }
    assert_eq!(
        given_when(&[posted(None, None)], CommentCommand::Delete),
        Ok(vec![CommentEvent::Deleted])
    );
}

#[test]
fn unfitting_events_leave_the_state_unchanged() {
    assert_eq!(
        Comment::default().evolve(&CommentEvent::Deleted),
        Comment::Absent
    );
    let active = Comment::default().evolve(&posted(None, None));
    assert_eq!(
        active.clone().evolve(&posted(Some(agent_id()), None)),
        active
    );
}

#[test]
fn type_parses_exact_names_and_lists_them_on_error() {
    for t in CommentType::ALL {
        assert_eq!(t.as_str().parse(), Ok(t));
    }
    assert_eq!(
        "note".parse::<CommentType>(),
        Err("must be one of NOTE, SYSTEM, ERROR, WARNING, SUCCESS".into())
    );
}
