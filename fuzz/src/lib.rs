//! The bodies of the fuzz targets, shared by `cargo fuzz` (fuzz_targets/) and the stable
//! fallback test below, which runs them on mutated seeds for a bounded time.
//!
//! Each body feeds outside input to a decoder exactly as the server does and asserts what
//! must hold of whatever it accepts. A panic is a finding even where the server would catch
//! it (libFuzzer aborts on any panic; the fallback test fails on one).

use mc_domain::telemetry::SampleValue;
use mc_eventlog::Commit;
use mc_telemetry::wire::{self, Context, Format};

const NOW_MS: i64 = 1_750_000_000_000;

/// Telemetry as it arrives on `mc.telemetry.<id>` or `POST /telemetry`: decoded in both
/// formats, every snapshot validated with and without a subject spacecraft. An accepted
/// sample can always be stored: no NUL in a name or a string.
pub fn telemetry_wire(data: &[u8]) {
    for format in [Format::Json, Format::MsgPack] {
        let Ok(snapshots) = wire::decode(format, data) else {
            continue;
        };
        assert!(!snapshots.items.is_empty() && snapshots.items.len() <= wire::SNAPSHOTS_MAX);
        for subject in [Some("SC-001"), None] {
            let cx = Context {
                subject_spacecraft: subject,
                received_ms: NOW_MS,
                max_future_ms: 300_000,
            };
            let mut names = Vec::new();
            for (i, snapshot) in snapshots.items.iter().enumerate() {
                let Ok((spacecraft, s)) =
                    wire::validate(snapshot, &snapshots.prefix(i), &cx, &mut names)
                else {
                    continue;
                };
                assert!(!spacecraft.contains('\0'));
                assert!(s.timestamp_ms >= wire::EARLIEST_MS);
                for (name, value) in &s.samples {
                    assert!(!name.is_empty() && !name.contains('\0'));
                    match value {
                        SampleValue::Text(t) => assert!(!t.contains('\0')),
                        SampleValue::Number(n) => assert!(n.is_finite()),
                        SampleValue::Bool(_) => {}
                    }
                }
            }
        }
    }
}

/// A command on `mc.cmd.<action>`: the first byte picks the action, the rest is the payload,
/// parsed up to the domain command (nothing is executed).
pub fn nats_command(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let actions = mc_api::nats_commands::actions();
    let action = actions[usize::from(pick) % actions.len()];
    let _ = mc_api::nats_commands::parse(action, payload);
}

/// A message of `MC_EVENTS` as every projector reads it: the commit, then its events in each
/// aggregate's schema (upcasters included). A decoded commit encodes and decodes again.
pub fn stored_commit(data: &[u8]) {
    let Ok(commit) = Commit::decode(data) else {
        return;
    };
    let _ = commit.domain_events::<mc_domain::agent::AgentEvent>();
    let _ = commit.domain_events::<mc_domain::mission::MissionEvent>();
    let _ = commit.domain_events::<mc_domain::comment::CommentEvent>();
    let _ = commit.domain_events::<mc_domain::spacecraft::SpacecraftEvent>();
    let _ = commit.domain_events::<mc_domain::alarm::AlarmEvent>();
    let again = Commit::decode(&commit.encode());
    assert!(
        again.is_ok(),
        "a decoded commit does not decode after encoding: {again:?}"
    );
}

/// Valid inputs for each target to start from.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    use serde_json::json;
    match target {
        "telemetry_wire" => {
            let one = json!({"spacecraftId": "SC-001", "timestamp": NOW_MS,
                "parameters": {"temp": 21.5, "mode": "SAFE", "heater": true, "n": 3}});
            let many = json!([one, {"timestamp": "2025-06-15T15:06:40Z",
                "parameters": {"a": [1], "b": {"x": null}}}]);
            vec![
                serde_json::to_vec(&one).unwrap_or_default(),
                serde_json::to_vec(&many).unwrap_or_default(),
                rmp_serde::to_vec_named(&one).unwrap_or_default(),
                rmp_serde::to_vec_named(&many).unwrap_or_default(),
            ]
        }
        "nats_command" => {
            let id = uuid::Uuid::now_v7();
            let bodies: [(u8, serde_json::Value); 6] = [
                (
                    4,
                    json!({"name": "rover", "capabilities": ["drive"], "metadata": {"a": [1]}}),
                ),
                (
                    6,
                    json!({"id": id, "status": "ERROR", "reason": "stuck", "actor": "ops"}),
                ),
                (
                    8,
                    json!({"title": "Survey", "priority": "HIGH", "agentId": id}),
                ),
                (
                    15,
                    json!({"content": "hi", "type": "note", "missionId": id}),
                ),
                (
                    2,
                    json!({"id": id, "operator": "op", "comment": "c", "until": NOW_MS}),
                ),
                (
                    9,
                    json!({"id": id, "title": "x", "expectedVersion": 3, "commandId": id}),
                ),
            ];
            let names = mc_api::nats_commands::actions();
            bodies
                .iter()
                .map(|(i, b)| {
                    let pick = names.iter().position(|a| *a == names[*i as usize]);
                    let mut out = vec![pick.unwrap_or(0) as u8];
                    out.extend(serde_json::to_vec(b).unwrap_or_default());
                    out
                })
                .collect()
        }
        "stored_commit" => {
            use mc_eventlog::{CommitMeta, StoredEvent};
            let meta = CommitMeta {
                command_id: uuid::Uuid::now_v7(),
                correlation_id: uuid::Uuid::now_v7(),
                causation_id: None,
                actor: "user:test".into(),
                occurred_at: chrono::DateTime::from_timestamp_millis(NOW_MS).unwrap_or_default(),
            };
            let events = [
                (
                    "agent",
                    "agent.registered",
                    json!({"id": uuid::Uuid::now_v7(), "name": "rover",
                    "description": "", "capabilities": ["a"], "metadata": {"k": [1]}, "status": "IDLE"}),
                ),
                (
                    "mission",
                    "mission.created",
                    json!({"id": uuid::Uuid::now_v7(), "title": "t",
                    "description": "", "priority": "HIGH", "metadata": {}}),
                ),
                (
                    "comment",
                    "comment.posted",
                    json!({"id": uuid::Uuid::now_v7(), "content": "c",
                    "type": "note", "metadata": {}}),
                ),
            ];
            events
                .into_iter()
                .map(|(aggregate, event_type, payload)| {
                    Commit {
                        aggregate_type: aggregate.into(),
                        aggregate_id: uuid::Uuid::now_v7().to_string(),
                        meta: meta.clone(),
                        events: vec![StoredEvent {
                            event_id: uuid::Uuid::now_v7(),
                            aggregate_version: 1,
                            event_type: event_type.into(),
                            schema_version: 1,
                            payload,
                        }],
                    }
                    .encode()
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Every target by name.
pub const TARGETS: [(&str, fn(&[u8])); 3] = [
    ("telemetry_wire", telemetry_wire),
    ("nats_command", nats_command),
    ("stored_commit", stored_commit),
];

#[cfg(test)]
mod tests;
