//! Commands over NATS request-reply with a real NATS client: same handlers and validation as
//! HTTP, structured error replies, and a service that survives garbage.

use crate::helpers::TestApp;
use serde_json::{json, Value};

/// A NATS client and the admin token's headers.
type Authed = (async_nats::Client, async_nats::HeaderMap);

async fn request((client, headers): &Authed, subject: &str, body: &[u8]) -> Value {
    let reply = client
        .request_with_headers(subject.to_owned(), headers.clone(), body.to_vec().into())
        .await
        .unwrap();
    serde_json::from_slice(&reply.payload).unwrap()
}

#[tokio::test]
async fn agents_report_status_and_progress_over_nats() {
    let app = TestApp::spawn().await;
    let client: Authed = (app.nats.client().await, app.nats_headers());
    let r = request(
        &client,
        "mc.cmd.agent.register",
        br#"{"name": "rover", "capabilities": ["drive"]}"#,
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let agent = r["id"].as_str().unwrap().to_owned();

    let r = request(
        &client,
        "mc.cmd.mission.create",
        json!({"title": "Drive", "agentId": agent})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let mission = r["id"].as_str().unwrap().to_owned();
    let r = request(
        &client,
        "mc.cmd.mission.change-status",
        json!({"id": mission, "status": "IN_PROGRESS"})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(
        (r["ok"].as_bool(), r["version"].as_u64()),
        (Some(true), Some(2)),
        "{r}"
    );
    let r = request(
        &client,
        "mc.cmd.mission.update-progress",
        json!({"id": mission, "progress": 55, "expectedVersion": 2})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let pos = r["position"].as_u64().unwrap();
    let (_, m) = app
        .get_json(&format!("/missions/{mission}?minPosition={pos}"))
        .await;
    assert_eq!(m["progress"], 55);

    let r = request(
        &client,
        "mc.cmd.agent.change-status",
        json!({"id": agent, "status": "ERROR", "reason": "wheel stuck"})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let pos = r["position"].as_u64().unwrap();
    let (_, a) = app
        .get_json(&format!("/agents/{agent}?minPosition={pos}"))
        .await;
    assert_eq!(a["status"], "ERROR");

    let r = request(
        &client,
        "mc.cmd.comment.post",
        json!({"content": "stuck", "type": "ERROR", "agentId": agent, "missionId": mission})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let r = request(
        &client,
        "mc.cmd.mission.unassign",
        json!({"id": mission}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test]
async fn bad_nats_commands_get_structured_error_replies_and_the_service_keeps_going() {
    let app = TestApp::spawn().await;
    let client: Authed = (app.nats.client().await, app.nats_headers());
    let head = mc_eventlog::EventLog::new(client.0.clone())
        .head()
        .await
        .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str, Option<&str>)> = vec![
        (
            "mc.cmd.agent.register",
            b"\xff\x00garbage".to_vec(),
            "malformed-json",
            None,
        ),
        (
            "mc.cmd.agent.register",
            b"[1,2]".to_vec(),
            "validation",
            Some("body"),
        ),
        (
            "mc.cmd.agent.register",
            br#"{"name": ""}"#.to_vec(),
            "validation",
            Some("name"),
        ),
        (
            "mc.cmd.agent.register",
            br#"{"name": "x", "wings": 2}"#.to_vec(),
            "validation",
            Some("wings"),
        ),
        (
            "mc.cmd.mission.update-progress",
            json!({"id": uuid::Uuid::now_v7().to_string(), "progress": 150})
                .to_string()
                .into_bytes(),
            "validation",
            Some("progress"),
        ),
        (
            "mc.cmd.mission.update-progress",
            json!({"id": uuid::Uuid::now_v7().to_string()})
                .to_string()
                .into_bytes(),
            "validation",
            Some("progress"),
        ),
        (
            "mc.cmd.mission.update-progress",
            json!({"progress": 5}).to_string().into_bytes(),
            "validation",
            Some("id"),
        ),
        (
            "mc.cmd.mission.update-progress",
            json!({"id": uuid::Uuid::now_v7().to_string(), "progress": 5})
                .to_string()
                .into_bytes(),
            "not-found",
            None,
        ),
        (
            "mc.cmd.mission.change-status",
            json!({"id": uuid::Uuid::now_v7().to_string(), "status": "DONE"})
                .to_string()
                .into_bytes(),
            "validation",
            Some("status"),
        ),
        (
            "mc.cmd.mission.assign",
            json!({"id": uuid::Uuid::now_v7().to_string(), "agentId": "x", "title": "sneaky"})
                .to_string()
                .into_bytes(),
            "validation",
            Some("title"),
        ),
        ("mc.cmd.agent.fly", b"{}".to_vec(), "unknown-command", None),
        (
            "mc.cmd.agent.remove",
            json!({"id": "nope"}).to_string().into_bytes(),
            "validation",
            Some("id"),
        ),
    ];
    for (subject, body, code, field) in cases {
        let r = request(&client, subject, &body).await;
        assert_eq!(r["ok"], false, "{subject}: {r}");
        assert_eq!(r["error"]["code"], code, "{subject}: {r}");
        if let Some(field) = field {
            let fields: Vec<&str> = r["error"]["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&field), "{subject}: {r}");
        }
    }
    // Still serving after all that, and nothing was appended.
    let log = mc_eventlog::EventLog::new(client.0.clone());
    assert_eq!(log.head().await.unwrap(), head);
    let r = request(&client, "mc.cmd.agent.register", br#"{"name": "survivor"}"#).await;
    assert_eq!(r["ok"], true, "{r}");
}
