//! Shared helpers of the relay's integration tests: a real nats-server with provisioned
//! streams and a running hub, publishing commits and telemetry, reading frames with a timeout.

#![allow(dead_code)]

use async_nats::jetstream::{self, Context};
use mc_eventlog::{Commit, CommitMeta, StoredEvent};
use mc_relay::{Client, Hub, Limits, Outgoing, Topic};
use mc_test_support::NatsServer;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Setup {
    pub _nats: NatsServer,
    pub js: Context,
    pub hub: Hub,
    pub cancel: CancellationToken,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub async fn setup(limits: Limits) -> Setup {
    let nats = NatsServer::start().await;
    let js = jetstream::new(nats.client().await);
    mc_eventlog::streams::provision(&js, &Default::default())
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let hub = Hub::spawn(js.clone(), limits, cancel.clone());
    tokio::time::timeout(WAIT, async {
        while !hub.ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("hub ready");
    Setup {
        _nats: nats,
        js,
        hub,
        cancel,
    }
}

pub fn commit(aggregate: &str, id: Uuid, version: u64) -> Commit {
    Commit {
        aggregate_type: aggregate.into(),
        aggregate_id: id.to_string(),
        meta: CommitMeta {
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: "user:test".into(),
            occurred_at: chrono::Utc::now(),
        },
        events: vec![StoredEvent {
            event_id: Uuid::now_v7(),
            aggregate_version: version,
            event_type: format!("{aggregate}.updated"),
            schema_version: 1,
            payload: json!({"n": version, "hash": "not-for-clients"}),
        }],
    }
}

/// Publish a commit; its position.
pub async fn publish(js: &Context, aggregate: &str, id: Uuid, version: u64) -> u64 {
    let c = commit(aggregate, id, version);
    js.publish(format!("mc.events.{aggregate}.{id}"), c.encode().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

pub async fn publish_telemetry(js: &Context, sc: &str, temp: u64) -> u64 {
    let body = json!({"timestamp": temp, "parameters": {"temp": temp}});
    js.publish(format!("mc.telemetry.{sc}"), body.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

pub async fn next(client: &Client) -> Outgoing {
    tokio::time::timeout(WAIT, client.next())
        .await
        .expect("a frame in time")
        .expect("client open")
}

pub async fn next_frame(client: &Client) -> Value {
    match next(client).await {
        Outgoing::Frame(f) => serde_json::from_str(&f.text).unwrap(),
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// Nothing more arrives within a short while.
pub async fn assert_quiet(client: &Client) {
    let extra = tokio::time::timeout(Duration::from_millis(300), client.next()).await;
    assert!(extra.is_err(), "unexpected extra output: {extra:?}");
}

pub fn topics(names: &[&str]) -> Vec<Topic> {
    Topic::parse_all(names).unwrap()
}
