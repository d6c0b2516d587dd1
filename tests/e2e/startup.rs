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
    let http = reqwest::Client::new();

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

    nats.restart().await;
    wait_ready(&http, &base).await;
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
    let r = reqwest::get(format!("{base}/api/v1/agents")).await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
