//! Routing: the frames one log message produces. An `MC_EVENTS` commit becomes one `event`
//! frame per topic it matches; an `MC_TELEMETRY` message one `telemetry` frame. Only the
//! aggregates in [`RELAYED`] are relayed; anything else (notably `token`, whose events carry
//! secret hashes) is never decoded. Garbage is skipped with a reason, never a panic.

use crate::topic::{valid_spacecraft_id, Topic};
use crate::StreamKind;
use mc_eventlog::Commit;
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

/// Relayed aggregates: (aggregate type, frame name). Everything else stays in the log.
pub const RELAYED: [(&str, &str); 7] = [
    ("mission", "missionUpdate"),
    ("agent", "agentStatusUpdate"),
    ("comment", "newComment"),
    ("alarm", "alarmUpdate"),
    ("spacecraft", "systemNotification"),
    ("backup", "systemNotification"),
    ("task_run", "taskRunEvent"),
];

/// Nesting a MessagePack telemetry payload may have (as deep as a commit may be).
const TELEMETRY_MAX_DEPTH: usize = mc_eventlog::envelope::COMMIT_MAX_DEPTH;

/// One frame for one topic.
#[derive(Debug, Clone)]
pub struct Routed {
    pub topic: Topic,
    pub stream: StreamKind,
    pub position: u64,
    /// The serialized frame.
    pub text: Arc<str>,
    /// The telemetry payload, kept for coalescing (`None` for events).
    pub data: Option<Arc<Value>>,
}

/// Why a message produced no frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// An aggregate the relay does not relay (e.g. `token`): not an error.
    NotRelayed,
    /// Undecodable or inconsistent: counted.
    Garbage(String),
}

/// The NATS filter subjects of everything the hub reads from `stream`.
pub fn relayed_subjects(stream: StreamKind) -> Vec<String> {
    match stream {
        StreamKind::Events => RELAYED
            .iter()
            .map(|(aggregate, _)| format!("mc.events.{aggregate}.>"))
            .collect(),
        StreamKind::Telemetry => vec!["mc.telemetry.>".into()],
    }
}

/// The frames of one message of `stream`.
pub fn route(
    stream: StreamKind,
    subject: &str,
    position: u64,
    content_type: Option<&str>,
    payload: &[u8],
) -> Result<Vec<Routed>, Skip> {
    match stream {
        StreamKind::Events => route_event(subject, position, payload),
        StreamKind::Telemetry => {
            let msgpack = content_type.is_some_and(|c| {
                c.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/msgpack")
            });
            route_telemetry(subject, position, msgpack, payload).map(|r| vec![r])
        }
    }
}

/// The topics of a commit on `mc.events.<aggregate>.<id>`, most specific first, and its frame
/// name; `None` for an aggregate that is not relayed.
fn event_topics(aggregate: &str, id: &str) -> Option<(&'static str, Vec<Topic>)> {
    let name = RELAYED.iter().find(|(a, _)| *a == aggregate)?.1;
    let uuid = Uuid::parse_str(id).ok();
    let topics = match aggregate {
        "mission" => uuid
            .map(Topic::Mission)
            .into_iter()
            .chain([Topic::Missions])
            .collect(),
        "agent" => uuid
            .map(Topic::Agent)
            .into_iter()
            .chain([Topic::Agents])
            .collect(),
        "comment" => vec![Topic::Comments],
        "alarm" => vec![Topic::Alarms],
        "spacecraft" | "backup" => vec![Topic::System],
        "task_run" => uuid.map(Topic::TaskRun).into_iter().collect(),
        _ => return None,
    };
    Some((name, topics))
}

/// The event frames of one `MC_EVENTS` message.
pub fn route_event(subject: &str, position: u64, payload: &[u8]) -> Result<Vec<Routed>, Skip> {
    let rest = subject
        .strip_prefix("mc.events.")
        .ok_or_else(|| Skip::Garbage(format!("subject {subject} is not an event subject")))?;
    let (aggregate, id) = rest
        .split_once('.')
        .ok_or_else(|| Skip::Garbage(format!("subject {subject} has no aggregate id")))?;
    // Decide from the subject alone, before decoding: unrelayed payloads are never read.
    let (name, topics) = event_topics(aggregate, id).ok_or(Skip::NotRelayed)?;
    let commit = Commit::decode(payload)
        .map_err(|e| Skip::Garbage(format!("undecodable commit at {position}: {e}")))?;
    if commit.aggregate_type != aggregate || commit.aggregate_id != id {
        return Err(Skip::Garbage(format!(
            "commit at {position} is for {}.{}, not its subject {subject}",
            commit.aggregate_type, commit.aggregate_id
        )));
    }
    let events: Vec<Value> = commit
        .events
        .into_iter()
        .map(|e| {
            // Clients see the current schema; an unknown type keeps its stored payload.
            let payload =
                mc_eventlog::schema::upcast(&e.event_type, e.schema_version, e.payload.clone())
                    .unwrap_or(e.payload);
            json!({"type": e.event_type, "version": e.aggregate_version, "payload": payload})
        })
        .collect();
    let data = json!({
        "aggregateType": commit.aggregate_type,
        "aggregateId": commit.aggregate_id,
        "events": events,
        "occurredAt": commit.meta.occurred_at,
        "actor": commit.meta.actor,
    })
    .to_string();
    Ok(topics
        .into_iter()
        .map(|topic| {
            let text = format!(
                "{{\"type\":\"event\",\"topic\":{},\"name\":\"{name}\",\"position\":{position},\"data\":{data}}}",
                Value::String(topic.to_string())
            );
            Routed {
                topic,
                stream: StreamKind::Events,
                position,
                text: text.into(),
                data: None,
            }
        })
        .collect())
}

/// A telemetry frame's text.
pub(crate) fn telemetry_text(topic: &Topic, position: u64, data: &Value) -> Arc<str> {
    format!(
        "{{\"type\":\"telemetry\",\"topic\":{},\"position\":{position},\"data\":{data}}}",
        Value::String(topic.to_string())
    )
    .into()
}

/// The telemetry frame of one `MC_TELEMETRY` message (JSON, or MessagePack when `msgpack`).
pub fn route_telemetry(
    subject: &str,
    position: u64,
    msgpack: bool,
    payload: &[u8],
) -> Result<Routed, Skip> {
    let sc = subject
        .strip_prefix("mc.telemetry.")
        .filter(|sc| valid_spacecraft_id(sc))
        .ok_or_else(|| Skip::Garbage(format!("subject {subject} is not a telemetry subject")))?;
    let data: Value = if msgpack {
        let mut de = rmp_serde::Deserializer::from_read_ref(payload);
        de.set_max_depth(TELEMETRY_MAX_DEPTH + 1);
        serde::Deserialize::deserialize(&mut de).map_err(|e| {
            Skip::Garbage(format!("undecodable msgpack telemetry at {position}: {e}"))
        })?
    } else {
        serde_json::from_slice(payload)
            .map_err(|e| Skip::Garbage(format!("undecodable json telemetry at {position}: {e}")))?
    };
    let snapshots: &[Value] = match &data {
        Value::Array(items) => items,
        Value::Object(_) => std::slice::from_ref(&data),
        _ => {
            return Err(Skip::Garbage(format!(
                "telemetry at {position} is neither a snapshot nor an array of snapshots"
            )))
        }
    };
    // The ingest sends a snapshot naming another spacecraft to the DLQ; so does the relay.
    if snapshots.iter().any(|s| {
        s.get("spacecraftId")
            .is_some_and(|id| id.as_str() != Some(sc))
    }) {
        return Err(Skip::Garbage(format!(
            "telemetry at {position} names another spacecraft than its subject {subject}"
        )));
    }
    let topic = Topic::Telemetry(sc.to_owned());
    Ok(Routed {
        text: telemetry_text(&topic, position, &data),
        topic,
        stream: StreamKind::Telemetry,
        position,
        data: Some(Arc::new(data)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_eventlog::{CommitMeta, StoredEvent};

    const ID: &str = "0191e5a4-1c1e-7cc0-8000-000000000001";

    fn commit(aggregate: &str, id: &str, event_type: &str, payload: Value) -> Commit {
        Commit {
            aggregate_type: aggregate.into(),
            aggregate_id: id.into(),
            meta: CommitMeta {
                command_id: Uuid::now_v7(),
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                actor: "user:ops".into(),
                occurred_at: chrono::Utc::now(),
            },
            events: vec![StoredEvent {
                event_id: Uuid::now_v7(),
                aggregate_version: 3,
                event_type: event_type.into(),
                schema_version: 1,
                payload,
            }],
        }
    }

    fn parse(r: &Routed) -> Value {
        serde_json::from_str(&r.text).unwrap()
    }

    #[test]
    fn a_mission_commit_goes_to_the_mission_then_the_collection() {
        let c = commit("mission", ID, "mission.progressed", json!({"progress": 40}));
        let frames = route_event(&format!("mc.events.mission.{ID}"), 7, &c.encode()).unwrap();
        let topics: Vec<String> = frames.iter().map(|f| f.topic.to_string()).collect();
        assert_eq!(topics, [format!("mission:{ID}"), "missions".into()]);
        let f = parse(&frames[1]);
        assert_eq!(f["type"], "event");
        assert_eq!(f["topic"], "missions");
        assert_eq!(f["name"], "missionUpdate");
        assert_eq!(f["position"], 7);
        assert_eq!(f["data"]["aggregateType"], "mission");
        assert_eq!(f["data"]["aggregateId"], ID);
        assert_eq!(f["data"]["actor"], "user:ops");
        assert_eq!(f["data"]["events"][0]["type"], "mission.progressed");
        assert_eq!(f["data"]["events"][0]["version"], 3);
        assert_eq!(f["data"]["events"][0]["payload"]["progress"], 40);
        assert!(f["data"]["occurredAt"].is_string());
        assert_eq!(frames[0].stream, StreamKind::Events);
    }

    #[test]
    fn every_relayed_aggregate_has_its_name_and_topics() {
        for (aggregate, name, topic) in [
            ("agent", "agentStatusUpdate", format!("agent:{ID}")),
            ("comment", "newComment", "comments".into()),
            ("alarm", "alarmUpdate", "alarms".into()),
            ("spacecraft", "systemNotification", "system".into()),
            ("backup", "systemNotification", "system".into()),
            ("task_run", "taskRunEvent", format!("task-run:{ID}")),
        ] {
            let c = commit(aggregate, ID, "x.happened", json!({}));
            let frames =
                route_event(&format!("mc.events.{aggregate}.{ID}"), 1, &c.encode()).unwrap();
            let f = parse(&frames[0]);
            assert_eq!(f["name"], name, "{aggregate}");
            assert_eq!(f["topic"], topic, "{aggregate}");
        }
    }

    #[test]
    fn token_events_are_never_relayed_nor_decoded() {
        let c = commit("token", ID, "token.issued", json!({"hash": "secret-hash"}));
        let subject = format!("mc.events.token.{ID}");
        assert_eq!(
            route_event(&subject, 1, &c.encode()).unwrap_err(),
            Skip::NotRelayed
        );
        // Not even decoded: garbage on a token subject is just not relayed.
        assert_eq!(
            route_event(&subject, 1, b"garbage").unwrap_err(),
            Skip::NotRelayed
        );
        assert_eq!(
            route_event("mc.events.unknown.x", 1, &c.encode()).unwrap_err(),
            Skip::NotRelayed
        );
        assert!(!relayed_subjects(StreamKind::Events)
            .iter()
            .any(|s| s.contains("token")));
    }

    #[test]
    fn a_commit_disguised_under_another_subject_is_skipped() {
        // A token commit published on a mission subject must not leak.
        let c = commit("token", ID, "token.issued", json!({"hash": "secret-hash"}));
        let skip = route_event(&format!("mc.events.mission.{ID}"), 1, &c.encode()).unwrap_err();
        assert!(matches!(skip, Skip::Garbage(_)));
    }

    #[test]
    fn garbage_is_skipped_not_a_panic() {
        for (subject, payload) in [
            (format!("mc.events.mission.{ID}"), &b"\xc1garbage"[..]),
            (format!("mc.events.mission.{ID}"), &b""[..]),
            ("mc.events.mission".to_owned(), &b""[..]),
            ("other.subject".to_owned(), &b""[..]),
        ] {
            assert!(matches!(
                route_event(&subject, 1, payload),
                Err(Skip::Garbage(_))
            ));
        }
        for (subject, payload) in [
            ("mc.telemetry.SC-1", &b"{not json"[..]),
            ("mc.telemetry.SC-1", &b"42"[..]),
            ("mc.telemetry.-bad", &b"{}"[..]),
            (
                "mc.telemetry.SC-1",
                &br#"{"spacecraftId":"SC-2","parameters":{}}"#[..],
            ),
        ] {
            assert!(matches!(
                route_telemetry(subject, 1, false, payload),
                Err(Skip::Garbage(_))
            ));
        }
        assert!(route_telemetry("mc.telemetry.SC-1", 1, true, b"\xc1").is_err());
    }

    #[test]
    fn a_non_uuid_mission_id_still_reaches_the_collection() {
        let c = commit("mission", "legacy-1", "mission.created", json!({}));
        let frames = route_event("mc.events.mission.legacy-1", 2, &c.encode()).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].topic, Topic::Missions);
    }

    #[test]
    fn telemetry_json_and_msgpack_become_the_same_frame() {
        let snapshot = json!({"spacecraftId": "SC-1", "timestamp": 5, "parameters": {"temp": 42}});
        let json_bytes = serde_json::to_vec(&snapshot).unwrap();
        let mp = rmp_serde::to_vec_named(&snapshot).unwrap();
        let a = route(
            StreamKind::Telemetry,
            "mc.telemetry.SC-1",
            9,
            None,
            &json_bytes,
        )
        .unwrap();
        let b = route(
            StreamKind::Telemetry,
            "mc.telemetry.SC-1",
            9,
            Some("application/msgpack"),
            &mp,
        )
        .unwrap();
        assert_eq!(parse(&a[0]), parse(&b[0]));
        let f = parse(&a[0]);
        assert_eq!(f["type"], "telemetry");
        assert_eq!(f["topic"], "telemetry:SC-1");
        assert_eq!(f["position"], 9);
        assert_eq!(f["data"]["parameters"]["temp"], 42);
        assert_eq!(a[0].data.as_deref(), Some(&snapshot));
    }
}
