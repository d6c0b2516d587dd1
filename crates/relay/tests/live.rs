//! The relay against a real nats-server: live fan-out in order, exact resume with `since`
//! (including resumes started in the middle of a burst), refused `since` values.

mod common;

use common::*;
use mc_relay::{Limits, Since, StreamKind};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn two_clients_receive_live_events_in_order_and_never_token_events() {
    let s = setup(Limits::default()).await;
    let a = s.hub.connect();
    let b = s.hub.connect();
    let mission = Uuid::now_v7();
    a.subscribe(
        &topics(&["missions", "agents", "comments", "alarms", "system"]),
        None,
    )
    .await
    .unwrap();
    // A topic and its collection: still one frame per message.
    b.subscribe(&topics(&["missions", &format!("mission:{mission}")]), None)
        .await
        .unwrap();
    let mut expected = Vec::new();
    for v in 1..=10 {
        publish(&s.js, "token", Uuid::now_v7(), 1).await;
        expected.push(publish(&s.js, "mission", mission, v).await);
    }
    for client in [&a, &b] {
        let mut got = Vec::new();
        for _ in 0..10 {
            let f = next_frame(client).await;
            assert_eq!(f["type"], "event");
            assert_eq!(f["name"], "missionUpdate");
            assert_eq!(f["data"]["aggregateId"], mission.to_string());
            got.push(f["position"].as_u64().unwrap());
        }
        assert_eq!(got, expected);
        assert_quiet(client).await;
    }
    assert_eq!(
        s.hub.position(StreamKind::Events),
        *expected.last().unwrap()
    );
}

#[tokio::test]
async fn resume_with_since_replays_exactly_the_missed_events_then_goes_live() {
    let s = setup(Limits::default()).await;
    let mission = Uuid::now_v7();
    let first = s.hub.connect();
    first.subscribe(&topics(&["missions"]), None).await.unwrap();
    publish(&s.js, "mission", mission, 1).await;
    let last_seen = next_frame(&first).await["position"].as_u64().unwrap();
    drop(first);

    let mut missed = Vec::new();
    for v in 2..=101 {
        missed.push(publish(&s.js, "mission", mission, v).await);
        // Noise on other topics is not replayed.
        if v % 10 == 0 {
            publish(&s.js, "agent", Uuid::now_v7(), 1).await;
        }
    }
    // Live events keep coming while the replay runs, to exercise the switch.
    let js = s.js.clone();
    let live = tokio::spawn(async move {
        let mut positions = Vec::new();
        for v in 102..=131 {
            positions.push(publish(&js, "mission", mission, v).await);
        }
        positions
    });
    let client = s.hub.connect();
    client
        .subscribe(&topics(&["missions"]), Some(Since::One(last_seen)))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..130 {
        got.push(next_frame(&client).await["position"].as_u64().unwrap());
    }
    let live = live.await.unwrap();
    assert_eq!(&got[..100], &missed[..], "the 100 missed events, in order");
    assert_eq!(
        &got[100..],
        &live[..],
        "then the live ones, no gap, no duplicate"
    );
    assert_quiet(&client).await;
}

#[tokio::test]
async fn since_outside_the_stream_is_refused() {
    let s = setup(Limits::default()).await;
    let head = publish(&s.js, "mission", Uuid::now_v7(), 1).await;
    let client = s.hub.connect();
    let err = client
        .subscribe(&topics(&["missions"]), Some(Since::One(head + 5)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("beyond the head of MC_EVENTS"),
        "{err}"
    );
    // Telemetry that aged out (here: purged) cannot be resumed from.
    for t in 0..3 {
        publish_telemetry(&s.js, "SC-1", t).await;
    }
    s.js.get_stream("MC_TELEMETRY")
        .await
        .unwrap()
        .purge()
        .await
        .unwrap();
    let err = client
        .subscribe(&topics(&["telemetry:SC-1"]), Some(Since::One(0)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("before the first sequence"),
        "{err}"
    );
    // One number for topics of both streams is ambiguous.
    let err = client
        .subscribe(
            &topics(&["missions", "telemetry:SC-1"]),
            Some(Since::One(1)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"events\":n"), "{err}");
    // The refused subscribes left nothing behind.
    assert!(client.topics().is_empty());
}

#[tokio::test]
async fn resumes_started_at_any_moment_of_a_burst_have_no_gap_and_no_duplicate() {
    let s = setup(Limits::default()).await;
    let mission = Uuid::now_v7();
    let mut positions = Vec::new();
    for v in 1..=50 {
        positions.push(publish(&s.js, "mission", mission, v).await);
    }
    // A burst published without waiting for each ack, while clients resume from various points.
    let js = s.js.clone();
    let burst = tokio::spawn(async move {
        let mut acks = Vec::new();
        for v in 51..=450 {
            let c = commit("mission", mission, v);
            acks.push(
                js.publish(format!("mc.events.mission.{mission}"), c.encode().into())
                    .await
                    .unwrap(),
            );
            if v % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let mut out = Vec::new();
        for ack in acks {
            out.push(ack.await.unwrap().sequence);
        }
        out
    });
    let mut clients = Vec::new();
    for (i, since) in [0usize, 10, 25, 40, 49].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(3 * i as u64)).await;
        let since = if since == 0 { 0 } else { positions[since - 1] };
        let client = s.hub.connect();
        client
            .subscribe(&topics(&["missions"]), Some(Since::One(since)))
            .await
            .unwrap();
        clients.push((since, client));
    }
    positions.extend(burst.await.unwrap());
    for (since, client) in &clients {
        let expected: Vec<u64> = positions.iter().copied().filter(|p| p > since).collect();
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            got.push(next_frame(client).await["position"].as_u64().unwrap());
        }
        assert_eq!(got, expected, "since {since}");
        assert_quiet(client).await;
    }
}

#[tokio::test]
async fn a_client_behind_takes_what_is_ready_in_batches_in_order() {
    let s = setup(Limits::default()).await;
    let client = s.hub.connect();
    client
        .subscribe(&topics(&["missions"]), None)
        .await
        .unwrap();
    let mission = Uuid::now_v7();
    let mut expected = Vec::new();
    for v in 1..=10 {
        expected.push(publish(&s.js, "mission", mission, v).await);
    }
    // Wait until the hub has routed all ten, then take them four at most per batch.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.hub.position(StreamKind::Events) < *expected.last().unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "hub did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    while got.len() < expected.len() {
        let batch = client.next_batch(4).await;
        sizes.push(batch.len());
        for out in batch {
            match out {
                mc_relay::Outgoing::Frame(f) => got.push(f.position),
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }
    assert_eq!(got, expected);
    assert_eq!(sizes, [4, 4, 2]);
    assert_quiet(&client).await;
}
