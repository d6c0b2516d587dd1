//! Tests of a client's hand-over from replay to live and of its replay buffer limit.

use super::*;
use crate::CLOSE_TOO_FAR_BEHIND;

fn shared(queue: usize) -> ClientShared {
    ClientShared {
        state: Mutex::new(ClientState {
            topics: [Topic::Missions].into(),
            replaying: [Some(Vec::new()), None],
            queue: ClientQueue::new(queue),
        }),
        readable: Notify::new(),
        room: Notify::new(),
        tasks: CancellationToken::new(),
    }
}

fn event(topic: Topic, position: u64) -> Routed {
    Routed {
        topic,
        stream: StreamKind::Events,
        position,
        text: format!("{position}").into(),
        data: None,
    }
}

fn positions(c: &ClientShared) -> Vec<u64> {
    let mut st = c.lock();
    std::iter::from_fn(|| match st.queue.pop() {
        Some(Outgoing::Frame(f)) => Some(f.position),
        _ => None,
    })
    .collect()
}

#[test]
fn live_frames_held_during_a_replay_follow_it_without_duplicates() {
    let c = shared(8);
    assert_eq!(
        c.deliver_live(&event(Topic::Missions, 5), 10),
        Pushed::Queued
    );
    assert_eq!(
        c.deliver_live(&event(Topic::Missions, 6), 10),
        Pushed::Queued
    );
    // Not subscribed: ignored.
    assert_eq!(
        c.deliver_live(&event(Topic::Alarms, 7), 10),
        Pushed::Ignored
    );
    assert_eq!(c.first_buffered(StreamKind::Events), Some(5));
    assert!(positions(&c).is_empty(), "held, not queued");
    c.push_replay(&event(Topic::Missions, 3));
    c.push_replay(&event(Topic::Missions, 5));
    c.finish_replay(StreamKind::Events);
    assert_eq!(positions(&c), [3, 5, 6]);
    assert_eq!(
        c.deliver_live(&event(Topic::Missions, 8), 10),
        Pushed::Queued
    );
    assert_eq!(positions(&c), [8]);
}

#[test]
fn a_replay_buffer_overflow_closes_the_client() {
    let c = shared(8);
    for p in 1..=2 {
        c.deliver_live(&event(Topic::Missions, p), 2);
    }
    assert_eq!(
        c.deliver_live(&event(Topic::Missions, 3), 2),
        Pushed::Overflowed
    );
    let out = c.lock().queue.pop();
    assert!(
        matches!(out, Some(Outgoing::Close { code, .. }) if code == CLOSE_TOO_FAR_BEHIND),
        "{out:?}"
    );
}
