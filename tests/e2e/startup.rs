//! Startup with dependencies missing: not ready (503), retrying, then serving.

use crate::helpers::{config, wait_ready};
use mc_api::Application;
use mc_test_support::{NatsServer, TestDb};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn not_ready_until_nats_comes_then_serves() {
    let mut nats = NatsServer::reserve();
    let db = TestDb::new().await;
    let app = Application::build(config(
        nats.url(),
        db.url().to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .expect("build without NATS running");
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    // A well-formed token nobody could check yet: the token table loads from NATS.
    let unchecked = format!("mc_{}_{}", "0".repeat(32), "0".repeat(64));
    let http = crate::helpers::authorized(&unchecked);

    let r = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["nats"], false);
    assert_eq!(
        http.get(format!("{base}/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http
        .post(format!("{base}/api/v1/agents"))
        .json(&json!({"name": "early"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "commands fail clearly while NATS is away");
    assert_eq!(r.headers()["retry-after"], "1");

    nats.restart().await;
    wait_ready(&http, &base).await;
    let token = crate::helpers::issue_token(&nats.url(), "late", "operator", &[]).await;
    let http = crate::helpers::authorized(&token);
    crate::helpers::wait_accepted(&http, &format!("{base}/api/v1/agents")).await;
    let r = http
        .post(format!("{base}/api/v1/agents"))
        .json(&json!({"name": "late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn not_ready_while_postgres_is_unreachable() {
    let nats = NatsServer::start().await;
    let token = crate::helpers::issue_token(&nats.url(), "test-admin", "admin", &[]).await;
    let port = mc_test_support::free_port();
    let app = Application::build(config(
        nats.url(),
        format!("postgres://postgres@127.0.0.1:{port}/nothing"),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let r = reqwest::get(format!("{base}/health/ready")).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (
            body["checks"]["postgres"].as_bool(),
            body["checks"]["migrations"].as_bool()
        ),
        (Some(false), Some(false))
    );
    let r = crate::helpers::authorized(&token)
        .get(format!("{base}/api/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_database_paired_with_another_event_log_is_not_projected_into() {
    let mut app = crate::helpers::TestApp::spawn().await;
    let (s, _) = app.create_agent(json!({"name": "original"})).await;
    assert_eq!(s, 201);
    app.stop().await;
    let checkpoint = mc_projection::load_checkpoint(&app.db.pool, "agents")
        .await
        .unwrap();

    // Same database, a fresh NATS store: its positions mean something else.
    let other = NatsServer::start().await;
    let server = Application::build(config(
        other.url(),
        app.db.url().to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", server.port());
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(server.run(shutdown.clone()));
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body: Value = loop {
        let body: Value = http
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body.get("error").is_some() {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mismatch reported: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(body["checks"]["eventLog"], false);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("another MC_EVENTS"),
        "{body}"
    );
    assert_eq!(
        http.get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        mc_projection::load_checkpoint(&app.db.pool, "agents")
            .await
            .unwrap(),
        checkpoint
    );
    shutdown.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn project_role_and_api_only_role_split_the_work() {
    let nats = NatsServer::start().await;
    let db = TestDb::new().await;
    let http = crate::helpers::authorized(
        &crate::helpers::issue_token(&nats.url(), "test-admin", "admin", &[]).await,
    );
    // Projectors in their own process (`mission-control project`).
    let addr = format!("127.0.0.1:{}", mc_test_support::free_port());
    let _project = crate::helpers::KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_mission-control"))
            .arg("project")
            .env("MC_NATS_URL", nats.url())
            .env("MC_DATABASE_URL", db.url())
            .env("MC_HTTP_ADDR", &addr)
            .env("MC_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    wait_ready(&http, &format!("http://{addr}")).await;
    assert_eq!(
        http.get(format!("http://{addr}/api/v1/agents"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http.get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The API without projectors; read-your-writes across the two processes.
    let mut cfg = config(
        nats.url(),
        db.url().to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    );
    cfg.run_projectors = false;
    let api = Application::build(cfg).await.unwrap();
    let base = format!("http://127.0.0.1:{}", api.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(api.run(shutdown.clone()));
    wait_ready(&http, &base).await;
    let r: Value = http
        .post(format!("{base}/api/v1/agents"))
        .json(&json!({"name": "split"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, pos) = (r["id"].as_str().unwrap(), r["position"].as_u64().unwrap());
    let r = http
        .get(format!("{base}/api/v1/agents/{id}?minPosition={pos}"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("mc-stale").is_none());
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "split");
    // The API-only process reports the projections the other process runs.
    let body: Value = http
        .get(format!("{base}/api/v1/projections"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agents = body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "agents")
        .unwrap()
        .clone();
    assert_eq!(agents["state"], "elsewhere");
    assert!(agents["position"].as_u64().unwrap() >= pos, "{agents}");
    // Every read model, the agent-status process manager and the fleet metrics.
    assert_eq!(
        body["projections"].as_array().unwrap().len(),
        mc_projections::all().len() + 2
    );
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
