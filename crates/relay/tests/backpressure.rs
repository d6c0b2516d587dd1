//! The relay under backpressure against a real nats-server: telemetry coalescing for a slow
//! client, the close of a client too far behind on events, and shutdown.

mod common;

use common::*;
use mc_relay::{Limits, Outgoing, Since, StreamKind};
use uuid::Uuid;

#[tokio::test]
async fn a_slow_client_gets_telemetry_coalesced_while_another_receives_everything() {
    let s = setup(Limits {
        queue: 16,
        ..Limits::default()
    })
    .await;
    let slow = s.hub.connect();
    let fast = s.hub.connect();
    slow.subscribe(&topics(&["telemetry:SC-1"]), None)
        .await
        .unwrap();
    fast.subscribe(&topics(&["telemetry:SC-1"]), None)
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        let mut temps = Vec::new();
        for _ in 0..200 {
            let f = next_frame(&fast).await;
            assert_eq!(f["type"], "telemetry", "{f}");
            temps.push(f["data"]["parameters"]["temp"].as_u64().unwrap());
        }
        temps
    });
    let mut last = 0;
    for t in 0..200 {
        last = publish_telemetry(&s.js, "SC-1", t).await;
    }
    assert_eq!(reader.await.unwrap(), (0..200).collect::<Vec<_>>());

    // The slow one: its queue, then `lagged`, then the latest value at the latest position.
    let mut lagged = None;
    let mut positions = Vec::new();
    let latest = loop {
        let f = next_frame(&slow).await;
        match f["type"].as_str() {
            Some("lagged") => lagged = f["dropped"].as_u64(),
            Some("telemetry") => {
                let p = f["position"].as_u64().unwrap();
                positions.push(p);
                if p == last {
                    break f;
                }
            }
            _ => panic!("unexpected {f}"),
        }
    };
    assert!(
        lagged.is_some_and(|n| n > 0),
        "lagged announced: {lagged:?}"
    );
    assert!(
        positions.len() < 200,
        "coalesced: {} frames",
        positions.len()
    );
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(latest["data"][0]["parameters"]["temp"], 199);
    assert_quiet(&slow).await;
    assert!(s.hub.stats().telemetry_dropped > 0);
}

#[tokio::test]
async fn a_client_too_far_behind_on_events_is_closed_and_can_resume() {
    let s = setup(Limits {
        queue: 16,
        ..Limits::default()
    })
    .await;
    let start = s.hub.position(StreamKind::Events);
    let slow = s.hub.connect();
    let fast = s.hub.connect();
    let from = slow.subscribe(&topics(&["missions"]), None).await.unwrap();
    assert_eq!(from.events, start, "live after the hub's position");
    fast.subscribe(&topics(&["missions"]), None).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..40 {
            got.push(next_frame(&fast).await["position"].as_u64().unwrap());
        }
        got
    });
    let mission = Uuid::now_v7();
    let mut published = Vec::new();
    for v in 1..=40 {
        published.push(publish(&s.js, "mission", mission, v).await);
    }
    assert_eq!(
        reader.await.unwrap(),
        published,
        "the other client is unaffected"
    );

    let reason = match next(&slow).await {
        Outgoing::Close { code: 4008, reason } => reason,
        other => panic!("expected close 4008, got {other:?}"),
    };
    assert_eq!(reason, format!("too far behind: resume with since={start}"));
    assert!(tokio::time::timeout(WAIT, slow.next())
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.hub.stats().overflow_closes, 1);

    // Resuming from the reason's position gets all 40.
    let resumed = s.hub.connect();
    resumed
        .subscribe(&topics(&["missions"]), Some(Since::One(start)))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..40 {
        got.push(next_frame(&resumed).await["position"].as_u64().unwrap());
    }
    assert_eq!(got, published);
}

#[tokio::test]
async fn shutting_down_closes_clients_with_going_away() {
    let s = setup(Limits::default()).await;
    let client = s.hub.connect();
    client.subscribe(&topics(&["alarms"]), None).await.unwrap();
    s.cancel.cancel();
    assert_eq!(
        next(&client).await,
        Outgoing::Close {
            code: 1001,
            reason: "server shutting down".into()
        }
    );
}
