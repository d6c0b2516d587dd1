//! The live relay end to end with a real WebSocket client and a real SSE reader: auth, ordered
//! delivery, resume with `since` / `Last-Event-ID` with no gap and no duplicate, error frames,
//! and a revoked token closing the connection.

use crate::helpers::{authorized, TestApp};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, token: &str) -> Ws {
    let url = format!(
        "{}/api/v1/ws?access_token={token}",
        app.base.replace("http://", "ws://")
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket handshake")
        .0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON text frame (5 s at most); `None` on close.
async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no frame within 5 s")?
            .map_err(|e| eprintln!("websocket error: {e}"))
            .ok()?;
        match m {
            Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
            Message::Close(c) => {
                eprintln!("closed: {c:?}");
                return None;
            }
            _ => continue,
        }
    }
}

async fn missions(app: &TestApp, n: usize) -> Vec<u64> {
    let mut positions = Vec::new();
    for i in 0..n {
        let (s, r) = app
            .post("/missions", json!({"title": format!("m{i}")}))
            .await;
        assert_eq!(s, 201, "{r}");
        positions.push(r["position"].as_u64().unwrap());
    }
    positions
}

#[tokio::test]
async fn the_websocket_needs_a_token_and_delivers_events_in_order() {
    let app = TestApp::spawn().await;
    let anonymous = format!("{}/api/v1/ws", app.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(anonymous).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("anonymous websocket: {:?}", other.map(|_| ())),
    }
    let mut ws = connect(&app, &app.token).await;
    send(&mut ws, json!({"op": "subscribe", "topics": ["missions"]})).await;
    let subscribed = next(&mut ws).await.unwrap();
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    let positions = missions(&app, 5).await;
    for p in positions {
        let f = next(&mut ws).await.unwrap();
        assert_eq!(
            (f["type"].as_str(), f["name"].as_str()),
            (Some("event"), Some("missionUpdate")),
            "{f}"
        );
        assert_eq!(f["position"], p, "{f}");
        assert_eq!(f["topic"], "missions");
    }
    send(&mut ws, json!({"op": "ping"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "pong");
    let metrics = app.metrics().await;
    assert!(metrics.contains("mc_relay_clients{} 1"), "{metrics}");
}

#[tokio::test]
async fn resuming_with_since_delivers_exactly_the_missed_events_then_live() {
    let app = TestApp::spawn().await;
    let mut ws = connect(&app, &app.token).await;
    send(&mut ws, json!({"op": "subscribe", "topics": ["missions"]})).await;
    next(&mut ws).await.unwrap();
    let first = missions(&app, 1).await[0];
    assert_eq!(next(&mut ws).await.unwrap()["position"], first);
    drop(ws);
    let missed = missions(&app, 100).await;
    let mut ws = connect(&app, &app.token).await;
    send(
        &mut ws,
        json!({"op": "subscribe", "topics": ["missions"], "since": first}),
    )
    .await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "subscribed");
    let mut got = Vec::new();
    for _ in 0..100 {
        got.push(next(&mut ws).await.unwrap()["position"].as_u64().unwrap());
    }
    assert_eq!(got, missed, "exactly the missed events, in order");
    let live = missions(&app, 1).await[0];
    assert_eq!(
        next(&mut ws).await.unwrap()["position"],
        live,
        "then live, no duplicate"
    );
}

#[tokio::test]
async fn bad_messages_get_error_frames_and_the_connection_stays() {
    let app = TestApp::spawn().await;
    let mut ws = connect(&app, &app.token).await;
    for (message, expect) in [
        ("{\"op\":\"explode\"}".to_owned(), "unknown op"),
        ("{not json".to_owned(), "malformed json"),
        (
            json!({"op": "subscribe", "topics": ["planets"]}).to_string(),
            "planets",
        ),
        (
            json!({"op": "subscribe", "topics": ["missions"], "since": 1_000_000}).to_string(),
            "since",
        ),
        (format!("{}{}", "[".repeat(100), "]".repeat(100)), "deep"),
    ] {
        ws.send(Message::Text(message.clone().into()))
            .await
            .unwrap();
        let f = next(&mut ws).await.unwrap();
        assert_eq!(f["type"], "error", "{message}: {f}");
        assert!(
            f["message"].as_str().unwrap().contains(expect),
            "{message}: {f}"
        );
    }
    send(&mut ws, json!({"op": "ping"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "pong");
    // A message three times the server's read buffer (4 KiB), within the 16 KiB frame limit,
    // is read whole over several reads.
    send(&mut ws, json!({"op": "ping", "pad": "x".repeat(12 * 1024)})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn a_token_revoked_while_connected_closes_the_websocket() {
    let app = TestApp::spawn().await;
    let (_, issued) = app
        .post("/tokens", json!({"name": "wall-screen", "role": "viewer"}))
        .await;
    let token = issued["token"].as_str().unwrap().to_owned();
    crate::helpers::wait_accepted(&authorized(&token), &app.url("/missions")).await;
    let mut ws = connect(&app, &token).await;
    send(&mut ws, json!({"op": "subscribe", "topics": ["alarms"]})).await;
    next(&mut ws).await.unwrap();
    let r = app
        .http
        .delete(app.url(&format!("/tokens/{}", issued["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(m) = ws.next().await {
            if let Ok(Message::Close(Some(frame))) = m {
                return Some(frame);
            }
        }
        None
    })
    .await
    .expect("not closed within 2 s")
    .expect("closed without a close frame");
    assert_eq!(u16::from(closed.code), 4001);
    assert_eq!(closed.reason.as_str(), "token revoked");
}

/// The SSE events (`id`, `data` as JSON) of a response until `n` arrived.
pub(crate) async fn sse_events(mut r: reqwest::Response, n: usize) -> Vec<(String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), r.chunk())
            .await
            .expect("no sse event within 5 s")
            .unwrap()
            .expect("the stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .map(str::to_owned);
            let data = block.lines().find_map(|l| l.strip_prefix("data: "));
            if let (Some(id), Some(data)) = (id, data) {
                out.push((id, serde_json::from_str(data).unwrap()));
            }
        }
    }
    out
}

#[tokio::test]
async fn sse_resumes_from_last_event_id() {
    let app = TestApp::spawn().await;
    let stream = || app.http.get(app.url("/stream?topics=missions")).send();
    let r = stream().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let first = missions(&app, 1).await[0];
    let events = sse_events(r, 1).await;
    assert_eq!(events[0].1["position"], first);
    let last_id = events[0].0.clone();
    let missed = missions(&app, 3).await;
    let r = app
        .http
        .get(app.url("/stream?topics=missions"))
        .header("Last-Event-ID", &last_id)
        .send()
        .await
        .unwrap();
    let resumed: Vec<u64> = sse_events(r, 3)
        .await
        .into_iter()
        .map(|(_, v)| v["position"].as_u64().unwrap())
        .collect();
    assert_eq!(resumed, missed);
    // Without a token, no stream.
    let r = reqwest::Client::new()
        .get(app.url("/stream?topics=missions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .get(app.url("/stream?topics=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn a_new_subscriber_gets_a_snapshot_then_the_changes_after_it() {
    let app = TestApp::spawn().await;
    let (_, created) = app.post("/missions", json!({"title": "snap"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let r = app
        .http
        .post(app.url("/telemetry"))
        .json(&json!({"spacecraftId": "SC-9", "timestamp": 1_700_000_000_000i64, "parameters": {"temp": 21.5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Stored before anyone subscribes: the snapshot must show it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !app
        .get_json("/telemetry/latest?spacecraftId=SC-9")
        .await
        .1
        .to_string()
        .contains("temp")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "telemetry never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ws = connect(&app, &app.token).await;
    let topics = [format!("mission:{id}"), "telemetry:SC-9".to_owned()];
    send(&mut ws, json!({"op": "subscribe", "topics": topics})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "subscribed");
    let mission = next(&mut ws).await.unwrap();
    assert_eq!(
        (mission["type"].as_str(), mission["topic"].as_str()),
        (Some("snapshot"), Some(topics[0].as_str())),
        "{mission}"
    );
    assert_eq!(mission["data"]["title"], "snap");
    let stamp = mission["position"].as_u64().unwrap();
    assert!(stamp >= created["position"].as_u64().unwrap(), "{mission}");
    let telemetry = next(&mut ws).await.unwrap();
    assert_eq!(telemetry["type"], "snapshot", "{telemetry}");
    assert_eq!(
        telemetry["data"]["parameters"]["temp"]["value"], 21.5,
        "{telemetry}"
    );
    // Then the change after the snapshot, no gap.
    let (s, changed) = app
        .patch(&format!("/missions/{id}"), json!({"progress": 10}))
        .await;
    assert_eq!(s, 200, "{changed}");
    let delta = next(&mut ws).await.unwrap();
    assert_eq!(
        (delta["type"].as_str(), delta["position"].as_u64()),
        (Some("event"), changed["position"].as_u64()),
        "{delta}"
    );
    assert!(delta["position"].as_u64().unwrap() > stamp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_websocket_client_gets_lagged_while_another_gets_everything() {
    let app = TestApp::spawn().await;
    let topic = json!({"op": "subscribe", "topics": ["telemetry:SC-LAG"]});
    let mut slow = connect(&app, &app.token).await;
    send(&mut slow, topic.clone()).await;
    assert_eq!(next(&mut slow).await.unwrap()["type"], "subscribed");
    let mut fast = connect(&app, &app.token).await;
    send(&mut fast, topic).await;
    assert_eq!(next(&mut fast).await.unwrap()["type"], "subscribed");
    // The fast client reads everything as it comes.
    const N: usize = 4000;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    let reader = tokio::spawn(async move {
        let mut positions = Vec::with_capacity(N);
        while positions.len() < N {
            let f = next(&mut fast).await.expect("fast client closed");
            assert_ne!(
                f["type"], "lagged",
                "the client that keeps up was coalesced"
            );
            if f["type"] == "telemetry" {
                positions.push(f["position"].as_u64().unwrap());
                counter.store(positions.len(), std::sync::atomic::Ordering::Release);
            }
        }
        positions
    });
    // ~4 KB per snapshot, 16 MB in all: more than the slow client's queue and socket buffers.
    let js = async_nats::jetstream::new(app.nats.client().await);
    let parameters: serde_json::Map<String, Value> = (0..200)
        .map(|i| (format!("p{i:03}"), json!(i as f64 + 0.5)))
        .collect();
    // In bursts of 200 that the fast client keeps up with (a 2-core machine running a whole
    // test suite is slow to read too); the slow one reads nothing meanwhile.
    let mut last = 0;
    for burst in 0..N / 200 {
        let mut acks = Vec::with_capacity(200);
        for i in burst * 200..(burst + 1) * 200 {
            let mut p = parameters.clone();
            p.insert("seq".into(), json!(i));
            let body = json!({"timestamp": 1_700_000_000_000i64 + i as i64, "parameters": p});
            acks.push(
                js.publish("mc.telemetry.SC-LAG", body.to_string().into())
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            last = ack.await.unwrap().sequence;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while seen.load(std::sync::atomic::Ordering::Acquire) < (burst + 1) * 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "the fast client did not keep up"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let positions = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the fast client fell behind")
        .unwrap();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(positions.len(), N);
    assert_eq!(*positions.last().unwrap(), last);
    // The slow client now reads: it was told what was coalesced, and ends on the latest value.
    let mut dropped = 0;
    loop {
        let f = next(&mut slow).await.expect("slow client closed");
        match f["type"].as_str() {
            Some("lagged") => dropped += f["dropped"].as_u64().unwrap(),
            Some("telemetry") if f["position"].as_u64() == Some(last) => {
                assert!(
                    f.to_string().contains(&format!("\"seq\":{}", N - 1)),
                    "latest value"
                );
                break;
            }
            _ => {}
        }
    }
    assert!(dropped > 0, "the slow client was never told it lagged");
}
