//! Tests of the per-client queue: order and de-duplication, coalescing and `lagged`, and the
//! close of a client whose event backlog overflows.

use super::*;
use serde_json::{json, Value};
use std::sync::Arc;

fn event(position: u64) -> Routed {
    Routed {
        topic: Topic::Missions,
        stream: StreamKind::Events,
        position,
        text: format!("{{\"type\":\"event\",\"position\":{position}}}").into(),
        data: None,
    }
}

fn telemetry(sc: &str, position: u64, temp: u64) -> Routed {
    let topic = Topic::Telemetry(sc.into());
    let data = json!({"timestamp": position, "parameters": {"temp": temp}});
    Routed {
        text: crate::route::telemetry_text(&topic, position, &data),
        topic,
        stream: StreamKind::Telemetry,
        position,
        data: Some(Arc::new(data)),
    }
}

fn drain(q: &mut ClientQueue) -> Vec<Outgoing> {
    std::iter::from_fn(|| q.pop()).collect()
}

fn frames(out: &[Outgoing]) -> Vec<Value> {
    out.iter()
        .map(|o| match o {
            Outgoing::Frame(f) => serde_json::from_str(&f.text).unwrap(),
            Outgoing::Close { code, reason } => json!({"close": code, "reason": reason}),
        })
        .collect()
}

#[test]
fn frames_come_out_in_order_and_duplicates_are_dropped() {
    let mut q = ClientQueue::new(8);
    assert_eq!(q.push_live(&event(1)), Pushed::Queued);
    assert_eq!(q.push_live(&event(2)), Pushed::Queued);
    // The same message for a second topic, and an old one: not delivered twice.
    assert_eq!(q.push_live(&event(2)), Pushed::Duplicate);
    assert_eq!(q.push_replay(&event(1)), Pushed::Duplicate);
    assert_eq!(q.push_live(&telemetry("A", 1, 1)), Pushed::Queued);
    let positions: Vec<u64> = frames(&drain(&mut q))
        .iter()
        .map(|f| f["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 1]);
    assert!(q.pop().is_none());
}

#[test]
fn a_full_queue_coalesces_telemetry_and_says_lagged_once_drained() {
    let mut q = ClientQueue::new(4);
    for p in 1..=4 {
        assert_eq!(q.push_live(&telemetry("A", p, p)), Pushed::Queued);
    }
    // Full: the next ones merge per topic; replaced frames count as dropped.
    assert_eq!(
        q.push_live(&telemetry("A", 5, 5)),
        Pushed::Coalesced { dropped: false }
    );
    assert_eq!(
        q.push_live(&telemetry("B", 6, 60)),
        Pushed::Coalesced { dropped: false }
    );
    assert_eq!(
        q.push_live(&telemetry("A", 7, 7)),
        Pushed::Coalesced { dropped: true }
    );
    // Events are not coalesced and still fit (they never displace or get displaced).
    assert_eq!(q.push_live(&event(1)), Pushed::Queued);
    let out = frames(&drain(&mut q));
    let kinds: Vec<String> = out
        .iter()
        .map(|f| format!("{}@{}", f["type"].as_str().unwrap(), f["position"]))
        .collect();
    assert_eq!(
        kinds,
        [
            "telemetry@1",
            "telemetry@2",
            "telemetry@3",
            "telemetry@4",
            "event@1",
            "lagged@null",
            "telemetry@6",
            "telemetry@7",
        ]
    );
    // Telemetry positions strictly increase; the latest value per topic survives.
    let tele: Vec<&Value> = out.iter().filter(|f| f["type"] == "telemetry").collect();
    let ps: Vec<u64> = tele
        .iter()
        .map(|f| f["position"].as_u64().unwrap())
        .collect();
    assert!(ps.windows(2).all(|w| w[0] < w[1]), "{ps:?}");
    let lagged = out.iter().find(|f| f["type"] == "lagged").unwrap();
    assert_eq!(lagged["dropped"], 1);
    let a = tele.iter().find(|f| f["position"] == 7).unwrap();
    assert_eq!(a["topic"], "telemetry:A");
    assert_eq!(a["data"][0]["parameters"]["temp"], 7);
    let b = tele.iter().find(|f| f["position"] == 6).unwrap();
    assert_eq!(b["data"][0]["parameters"]["temp"], 60);
}

#[test]
fn an_event_backlog_overflow_closes_with_where_to_resume() {
    let mut q = ClientQueue::new(3);
    q.start(StreamKind::Events, 10);
    for p in 11..=13 {
        assert_eq!(q.push_live(&event(p)), Pushed::Queued);
    }
    // The reader took one: it has 11.
    assert!(matches!(q.pop(), Some(Outgoing::Frame(f)) if f.position == 11));
    assert_eq!(q.push_live(&event(14)), Pushed::Queued);
    assert_eq!(q.push_live(&event(15)), Pushed::Overflowed);
    assert_eq!(q.push_live(&event(16)), Pushed::Ignored);
    assert_eq!(
        drain(&mut q),
        [Outgoing::Close {
            code: 4008,
            reason: "too far behind: resume with since=11".into()
        }]
    );
    assert!(q.finished());
    assert!(q.pop().is_none());
}

#[test]
fn the_resume_hint_names_both_streams_when_both_are_in_use() {
    let mut q = ClientQueue::new(1);
    q.start(StreamKind::Events, 4);
    q.start(StreamKind::Telemetry, 9);
    q.push_live(&event(5));
    q.push_live(&event(6));
    assert_eq!(
        drain(&mut q),
        [Outgoing::Close {
            code: 4008,
            reason: "too far behind: resume with since={\"events\":4,\"telemetry\":9}".into()
        }]
    );
}

#[test]
fn replay_frames_ignore_room_and_restart_resets_the_stream() {
    let mut q = ClientQueue::new(1);
    q.push_live(&event(50));
    assert!(!q.has_room());
    q.restart(StreamKind::Events, 10);
    assert!(q.has_room());
    assert_eq!(q.push_replay(&event(11)), Pushed::Queued);
    assert_eq!(q.push_replay(&event(12)), Pushed::Queued);
    assert_eq!(q.push_live(&event(12)), Pushed::Duplicate);
    let positions: Vec<u64> = frames(&drain(&mut q))
        .iter()
        .map(|f| f["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [11, 12]);
}
