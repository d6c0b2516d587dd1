//! Backups over HTTP: a job with progress, the listing, the record in the log, verification,
//! roles, bad input, a restore into the configured target, a damaged segment.

use crate::helpers::{authorized, TestApp};
use crate::telemetry::stream_head;
use async_nats::jetstream;
use mc_test_support::NatsServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The restore target and backup directory of [`backups_over_http_with_progress_verification_and_a_restore`]'s server: its tweak reads them
/// here (a `fn` pointer captures nothing; each test runs in its own process).
fn http_settings(c: &mut mc_api::Config) {
    c.backups.dir = std::env::var("MC_E2E_BACKUP_DIR").unwrap().into();
    c.backups.restore_nats_url = std::env::var("MC_E2E_RESTORE_NATS_URL").ok();
}

async fn poll(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never finished: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_over_http_with_progress_verification_and_a_restore() {
    let target = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("MC_E2E_BACKUP_DIR", dir.path());
    std::env::set_var("MC_E2E_RESTORE_NATS_URL", target.url());
    let app = TestApp::spawn_with(http_settings).await;
    app.create("/agents", json!({"name": "backed-up"})).await;
    let (_, r) = app.post("/missions", json!({"title": "kept"})).await;
    let last = r["position"].as_u64().unwrap();
    app.wait_projection("archive", last).await;
    let (status, r) = app
        .post("/spacecraft", json!({"id": "SC-007", "name": "seven"}))
        .await;
    assert_eq!(status, 201);
    let last = r["position"].as_u64().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let (status, _) = app
        .post(
            "/telemetry",
            json!([{"spacecraftId": "SC-007", "timestamp": now, "parameters": {"v": 1.5}}]),
        )
        .await;
    assert_eq!(status, 202);
    app.wait_projection("archive", last).await;
    let source_js = jetstream::new(app.nats.client().await);
    let telemetry_last = stream_head(&source_js, "MC_TELEMETRY").await;

    // Bad telemetry ranges name their field; nothing starts.
    for (body, field) in [
        (
            json!({"telemetry": {"from": "yesterday"}}),
            "telemetry.from",
        ),
        (
            json!({"telemetry": {"from": "1h", "to": "2h"}}),
            "telemetry",
        ),
        (json!({"telemetry": {"since": "1h"}}), "telemetry.since"),
        (json!({"telemetry": 5}), "telemetry"),
    ] {
        let (status, problem) = app.post("/backups", body.clone()).await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{body}: {problem}"
        );
    }
    let (_, listed) = app.get_json("/backups").await;
    assert_eq!(listed["items"], json!([]), "{listed}");

    let (status, started) = app
        .post("/backups", json!({"telemetry": {"from": "1h"}}))
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["state"], "running");
    let id = started["id"].as_str().unwrap().to_owned();
    let manifest = poll(&app, &format!("/backups/{id}"), |b| b["state"] != "running").await;
    assert_eq!(manifest["state"], "completed", "{manifest}");
    assert_eq!(manifest["last"], last);
    assert_eq!(manifest["archiveHead"]["position"], last, "{manifest}");
    assert_eq!(manifest["telemetry"]["last"], telemetry_last, "{manifest}");
    let (_, listed) = app.get_json("/backups").await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    // Recorded in the log with the admin who asked as its actor.
    let recorded = poll(&app, "/events?aggregate=backup", |b| {
        b["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert_eq!(
        recorded["items"][0]["type"], "backup.completed",
        "{recorded}"
    );
    assert!(
        recorded["items"][0]["actor"]
            .as_str()
            .unwrap()
            .ends_with("/test-admin"),
        "{recorded}"
    );
    let (status, verified) = app.post(&format!("/backups/{id}/verify"), json!({})).await;
    assert_eq!(
        (status, verified["verified"].as_bool()),
        (200, Some(true)),
        "{verified}"
    );
    assert_eq!(verified["messagesChecked"], last);

    // Viewers read; only admins write.
    let viewer =
        authorized(&crate::helpers::issue_token(&app.nats.url(), "v", "viewer", &[]).await);
    crate::helpers::wait_accepted(&viewer, &app.url("/backups")).await;
    assert_eq!(
        viewer
            .get(app.url("/backups"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        viewer
            .post(app.url("/backups"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // Bad input: unknown or malformed ids, a bad until; nothing starts.
    for bad in ["20260101T000000Z-00000000", "a.b"] {
        let (status, problem) = app.post(&format!("/backups/{bad}/verify"), json!({})).await;
        assert_eq!(status, 404, "{bad}: {problem}");
    }
    let (status, problem) = app
        .post(
            &format!("/backups/{id}/restore"),
            json!({"until": "yesterday"}),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("until")),
        "{problem}"
    );
    let (status, problem) = app
        .post(
            &format!("/backups/{id}/restore"),
            json!({"until": last + 100}),
        )
        .await;
    assert_eq!(status, 202, "{problem}");
    let failed = poll(&app, &format!("/backups/{id}"), |b| {
        b["restore"]["state"] != "running"
    })
    .await;
    assert_eq!(failed["restore"]["state"], "failed", "{failed}");
    assert!(
        failed["restore"]["error"]
            .as_str()
            .unwrap()
            .contains("outside"),
        "{failed}"
    );

    // The restore goes into the configured target with every position.
    let (status, _) = app.post(&format!("/backups/{id}/restore"), json!({})).await;
    assert_eq!(status, 202);
    let restored = poll(&app, &format!("/backups/{id}"), |b| {
        b["restore"]["state"] != "running"
    })
    .await;
    assert_eq!(restored["restore"]["state"], "completed", "{restored}");
    assert_eq!(restored["restore"]["result"]["last"], last);
    assert_eq!(
        restored["restore"]["result"]["telemetry"]["last"],
        telemetry_last
    );
    let target_js = jetstream::new(target.client().await);
    assert_eq!(stream_head(&target_js, "MC_EVENTS").await, last);
    assert_eq!(
        stream_head(&target_js, "MC_TELEMETRY").await,
        telemetry_last
    );

    // A damaged segment shows in verification.
    let segment = dir.path().join(&id).join("events-000001.zst");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    let (status, verified) = app.post(&format!("/backups/{id}/verify"), json!({})).await;
    assert_eq!(
        (status, verified["verified"].as_bool()),
        (200, Some(false)),
        "{verified}"
    );
    assert!(verified["reason"]
        .as_str()
        .unwrap()
        .contains("events-000001.zst"));
}
