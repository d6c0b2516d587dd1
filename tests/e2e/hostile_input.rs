//! Input a hostile client would send (issue 11): nesting bombs over HTTP and NATS, NUL in a
//! reason or a telemetry string, a command without a reply subject. The server answers or
//! dead-letters, stays alive across a restart, and nothing that cannot be archived is appended.

use crate::helpers::{spawn_binary, wait_ready, KillOnDrop, TestApp};
use crate::telemetry::{dead_letters, js, publish, stream_head, wait_consumer};
use async_nats::jetstream;
use chrono::Utc;
use mc_test_support::{free_port, NatsServer, TestDb};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// 1,000 levels of nested arrays: 1 KB of MessagePack, 2 KB of JSON.
fn msgpack_bomb() -> Vec<u8> {
    let mut b = vec![0x91u8; 1_000];
    b.push(0xc0);
    b
}

fn json_bomb() -> Vec<u8> {
    format!("{}{}", "[".repeat(1_000), "]".repeat(1_000)).into_bytes()
}

fn frame(value: f64) -> Vec<u8> {
    let now = Utc::now().timestamp_millis();
    serde_json::to_vec(&json!({"timestamp": now, "parameters": {"temp": value}})).unwrap()
}

/// The fields named by a problem document.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["field"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Poll until `GET /telemetry?spacecraftId=SC-X&parameter=temp` lists `value` (30 s at most),
/// asserting on the way that the server process is still running.
async fn wait_stored(http: &reqwest::Client, base: &str, child: &mut KillOnDrop, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(child.0.try_wait().unwrap().is_none(), "the server exited");
        let r = http
            .get(format!(
                "{base}/api/v1/telemetry?spacecraftId=SC-X&parameter=temp"
            ))
            .send()
            .await;
        if let Ok(r) = r {
            let list: Value = r.json().await.unwrap_or(Value::Null);
            let items = list["items"].as_array().cloned().unwrap_or_default();
            if items.iter().any(|i| i["value"].as_f64() == Some(value)) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "sample {value} never stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nesting_bomb_is_refused_over_http_dead_lettered_over_nats_and_survives_a_restart() {
    let nats = NatsServer::start().await;
    let db = TestDb::new().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let http = crate::helpers::authorized(
        &crate::helpers::issue_token(&nats.url(), "test-admin", "admin", &[]).await,
    );
    let mut child = KillOnDrop(spawn_binary(&nats.url(), db.url(), &addr));
    wait_ready(&http, &base).await;
    let r = http
        .post(format!("{base}/api/v1/spacecraft"))
        .json(&json!({"id": "SC-X", "name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // HTTP: a 4xx problem for either encoding.
    for (ct, body) in [
        ("application/msgpack", msgpack_bomb()),
        ("application/json", json_bomb()),
    ] {
        let r = http
            .post(format!("{base}/api/v1/telemetry"))
            .header("Content-Type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let problem_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        let problem: Value = r.json().await.unwrap();
        assert!((400..500).contains(&status), "{ct}: {status} {problem}");
        assert_eq!(problem_type, "application/problem+json");
        assert!(
            problem["detail"].as_str().unwrap().contains("levels deep"),
            "{problem}"
        );
    }

    // NATS: acknowledged into the stream, dead-lettered, and later telemetry is stored.
    let js = jetstream::new(nats.client().await);
    let subject = "mc.telemetry.SC-X";
    let mp = publish(&js, subject, Some("application/msgpack"), msgpack_bomb()).await;
    let js_bomb = publish(&js, subject, None, json_bomb()).await;
    publish(&js, subject, None, frame(1.0)).await;
    wait_stored(&http, &base, &mut child, 1.0).await;

    // Stop the server, queue a bomb ahead of good telemetry, start again: the bomb is the
    // first thing the consumers meet after the restart (the crash loop of issue 11).
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let again = publish(&js, subject, Some("application/msgpack"), msgpack_bomb()).await;
    publish(&js, subject, None, frame(2.0)).await;
    let mut child = KillOnDrop(spawn_binary(&nats.url(), db.url(), &addr));
    wait_ready(&http, &base).await;
    wait_stored(&http, &base, &mut child, 2.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(child.0.try_wait().unwrap().is_none(), "the server exited");

    let letters = dead_letters(&js).await;
    for position in [mp, js_bomb, again] {
        let letter = letters
            .iter()
            .find(|(_, p)| *p == position.to_string())
            .unwrap_or_else(|| panic!("no dead letter for {position}: {letters:?}"));
        assert!(letter.0.contains("levels deep"), "{letter:?}");
    }
}

#[tokio::test]
async fn a_reason_with_nul_or_of_200_kb_is_refused_and_nothing_is_appended() {
    let app = TestApp::spawn().await;
    let (s, agent) = app.create_agent(json!({"name": "probe"})).await;
    assert_eq!(s, 201, "{agent}");
    let agent = agent["id"].as_str().unwrap().to_owned();
    let (s, mission) = app.post("/missions", json!({"title": "survey"})).await;
    assert_eq!(s, 201, "{mission}");
    let mission = mission["id"].as_str().unwrap().to_owned();
    let js = js(&app).await;
    let head = stream_head(&js, "MC_EVENTS").await;

    let big = "x".repeat(200 * 1024);
    for reason in ["stuck\u{0}wheel", big.as_str()] {
        let (s, p) = app
            .patch(
                &format!("/agents/{agent}"),
                json!({"status": "ERROR", "reason": reason}),
            )
            .await;
        assert_eq!((s, fields(&p)), (422, vec!["reason".to_owned()]), "{p}");
        let (s, p) = app
            .patch(
                &format!("/missions/{mission}"),
                json!({"status": "IN_PROGRESS", "reason": reason}),
            )
            .await;
        assert_eq!((s, fields(&p)), (422, vec!["reason".to_owned()]), "{p}");
    }
    // Over NATS too, and an actor with NUL.
    let client = app.nats.client().await;
    for body in [
        json!({"id": agent, "status": "ERROR", "reason": "a\u{0}"}),
        json!({"id": agent, "status": "ERROR", "actor": "ops\u{0}"}),
    ] {
        let reply = client
            .request_with_headers(
                "mc.cmd.agent.change-status",
                app.nats_headers(),
                body.to_string().into(),
            )
            .await
            .unwrap();
        let r: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["error"]["status"], 422, "{r}");
    }
    assert_eq!(
        stream_head(&js, "MC_EVENTS").await,
        head,
        "an event was appended"
    );

    // A reason within bounds is kept.
    let (s, p) = app
        .patch(
            &format!("/agents/{agent}"),
            json!({"status": "ERROR", "reason": "wheel\nstuck"}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(stream_head(&js, "MC_EVENTS").await, head + 1);
}

#[tokio::test]
async fn a_telemetry_string_with_nul_is_422_over_http_and_dead_lettered_over_nats() {
    let app = TestApp::spawn().await;
    let (s, r) = app
        .post("/spacecraft", json!({"id": "SC-X", "name": "x"}))
        .await;
    assert_eq!(s, 201, "{r}");
    let now = Utc::now().timestamp_millis();
    for (params, field) in [
        (json!({"mode": "SAFE\u{0}"}), "parameters.mode"),
        (json!({"mo\u{0}de": "SAFE"}), "parameters.mo\\0de"),
    ] {
        let (s, p) = app
            .post(
                "/telemetry",
                json!({"spacecraftId": "SC-X", "timestamp": now, "parameters": params}),
            )
            .await;
        assert_eq!((s, fields(&p)), (422, vec![field.to_owned()]), "{p}");
    }

    let js = js(&app).await;
    let subject = "mc.telemetry.SC-X";
    let body = |params: Value| serde_json::to_vec(&json!({"timestamp": now, "parameters": params}));
    let nul = publish(&js, subject, None, body(json!({"mode": "a\u{0}"})).unwrap()).await;
    let mp = rmp_serde::to_vec_named(&json!({"timestamp": now, "parameters": {"mode": "b\u{0}"}}))
        .unwrap();
    let nul_mp = publish(&js, subject, Some("application/msgpack"), mp).await;
    let good = publish(&js, subject, None, body(json!({"mode": "SAFE"})).unwrap()).await;
    wait_consumer(&app, mc_telemetry::STORE, good).await;

    let (_, list) = app
        .get_json("/telemetry?spacecraftId=SC-X&parameter=mode")
        .await;
    let values: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["value"].as_str())
        .collect();
    assert_eq!(values, ["SAFE"], "{list}");
    let letters = dead_letters(&js).await;
    for position in [nul, nul_mp] {
        let (reason, _) = letters
            .iter()
            .find(|(_, p)| *p == position.to_string())
            .unwrap_or_else(|| panic!("no dead letter for {position}: {letters:?}"));
        assert!(
            reason.contains("parameters.mode: must not contain NUL"),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn a_nats_command_without_a_reply_subject_is_dead_lettered_and_not_executed() {
    let app = TestApp::spawn().await;
    let client = app.nats.client().await;
    let js = js(&app).await;
    // The command service is up: a request is executed.
    let reply = client
        .request_with_headers(
            "mc.cmd.agent.register",
            app.nats_headers(),
            br#"{"name": "first"}"#.to_vec().into(),
        )
        .await
        .unwrap();
    let r: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(r["ok"], true, "{r}");
    let head = stream_head(&js, "MC_EVENTS").await;

    client
        .publish(
            "mc.cmd.agent.register",
            br#"{"name": "fire-and-forget"}"#.to_vec().into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = js.get_stream("MC_DLQ").await.unwrap();
    while stream.info().await.unwrap().state.messages == 0 {
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let letter = stream.get_raw_message(1).await.unwrap();
    assert_eq!(letter.subject.as_str(), "mc.dlq.cmd");
    assert_eq!(
        letter.headers.get("Mc-Dlq-Reason").map(|v| v.as_str()),
        Some(mc_api::nats_commands::NO_REPLY_REASON)
    );
    assert_eq!(letter.payload.as_ref(), br#"{"name": "fire-and-forget"}"#);
    // Had it run, its event would be in the stream before the dead letter was published.
    assert_eq!(stream_head(&js, "MC_EVENTS").await, head, "the command ran");
}
