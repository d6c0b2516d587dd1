//! Blue/green rebuilds: under concurrent writes the result equals a build from scratch; a
//! kill -9 mid-rebuild resumes; a stored version older than the code rebuilds at start.

use crate::helpers::TestApp;
use futures::future::join_all;
use mc_domain::agent::{AgentEvent, AgentStatus};
use mc_domain::ids::AgentId;
use mc_eventlog::{Commit, CommitMeta, EventLog};
use mc_projection::{load_checkpoint, Projector};
use mc_test_support::TestDb;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const CHECKSUM: &str = "SELECT md5(coalesce(string_agg(row_to_json(t)::text, '|' ORDER BY id), '')) FROM \
    (SELECT id, name, description, capabilities, metadata, status, version, position, created_at, updated_at \
     FROM agents) t";

async fn checksum(pool: &sqlx::PgPool) -> String {
    sqlx::query_scalar(CHECKSUM).fetch_one(pool).await.unwrap()
}

/// The agents read model built from nothing into a fresh database, up to `head`.
async fn from_scratch(app: &TestApp, head: u64) -> String {
    let db = TestDb::new().await;
    let js = EventLog::new(app.nats.client().await).jetstream().clone();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(
        Projector::new(
            Arc::new(mc_projections::agents::Agents),
            db.pool.clone(),
            js,
        )
        .run(cancel.clone()),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while load_checkpoint(&db.pool, "agents").await.unwrap() < head {
        assert!(
            Instant::now() < deadline,
            "scratch build did not reach {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    task.await.unwrap().unwrap();
    checksum(&db.pool).await
}

pub(crate) async fn wait_rebuild_done(app: &TestApp, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = app.get_json("/projections").await;
        let p = body["projections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone();
        let version: Option<(i32,)> =
            sqlx::query_as("SELECT version FROM projection_versions WHERE name = $1")
                .bind(name)
                .fetch_optional(&app.db.pool)
                .await
                .unwrap();
        if p["rebuild"].is_null() && version.is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rebuild of {name} did not finish: {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn table_oid(app: &TestApp) -> u32 {
    let (oid,): (sqlx::postgres::types::Oid,) =
        sqlx::query_as("SELECT 'public.agents'::regclass::oid")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    oid.0
}

async fn head(app: &TestApp) -> u64 {
    EventLog::new(app.nats.client().await).head().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_under_concurrent_writes_equals_a_build_from_scratch() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(
            app.create("/agents", json!({"name": format!("a{i}")}))
                .await,
        );
    }
    let stop = CancellationToken::new();
    let writer = {
        let (http, base, ids, stop) = (
            app.http.clone(),
            app.base.clone(),
            ids.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                let id = &ids[n % ids.len()];
                let r = http
                    .patch(format!("{base}/api/v1/agents/{id}"))
                    .json(&json!({"description": format!("write {n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let table_before = table_oid(&app).await;
    let (status, body) = app.post("/projections/agents/rebuild", json!({})).await;
    assert_eq!(status, 202, "{body}");
    // Reads keep working while it rebuilds.
    let (s, _) = app.get_json("/agents?limit=5").await;
    assert_eq!(s, 200);
    wait_rebuild_done(&app, "agents").await;
    assert_ne!(
        table_oid(&app).await,
        table_before,
        "the live table was swapped for the rebuilt one"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let writes = writer.await.unwrap();
    assert!(writes > 0);
    let head = head(&app).await;
    app.wait_projection("agents", head).await;
    assert_eq!(
        checksum(&app.db.pool).await,
        from_scratch(&app, head).await,
        "after {writes} concurrent writes"
    );
    let (_, list) = app.get_json("/agents?limit=500").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 60);
}

#[tokio::test]
async fn the_archive_is_never_rebuilt_and_unknown_projections_are_404() {
    let app = TestApp::spawn().await;
    let (s, problem) = app.post("/projections/archive/rebuild", json!({})).await;
    assert_eq!(
        (s, problem["errors"][0]["field"].as_str()),
        (422, Some("name")),
        "{problem}"
    );
    let (s, _) = app.post("/projections/nope/rebuild", json!({})).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn an_older_stored_version_is_rebuilt_at_start() {
    let mut app = TestApp::spawn().await;
    for i in 0..20 {
        app.create("/agents", json!({"name": format!("v{i}")}))
            .await;
    }
    app.stop().await;
    sqlx::query("UPDATE projection_versions SET version = 0 WHERE name = 'agents'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let table_before = table_oid(&app).await;
    app.start().await;
    wait_rebuild_done(&app, "agents").await;
    assert_ne!(table_oid(&app).await, table_before);
    let (v,): (i32,) =
        sqlx::query_as("SELECT version FROM projection_versions WHERE name = 'agents'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(v, 1);
    let head = head(&app).await;
    app.wait_projection("agents", head).await;
    assert_eq!(checksum(&app.db.pool).await, from_scratch(&app, head).await);
}

/// Append `n` agent registrations straight to the log (no name reservations), 200 at a time.
async fn seed(log: &EventLog, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        join_all(chunk.iter().map(|i| {
            let id = AgentId::from_uuid(Uuid::now_v7());
            let event = AgentEvent::Registered {
                id,
                name: format!("seed-{i}"),
                description: String::new(),
                capabilities: vec![],
                metadata: Map::new(),
                status: AgentStatus::Idle,
            };
            let meta = CommitMeta {
                command_id: Uuid::now_v7(),
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                actor: "test:seed".into(),
                occurred_at: chrono::Utc::now(),
            };
            let commit = Commit::new("agent", &id.to_string(), 0, meta, &[event]);
            async move { log.append(&commit, 0).await.unwrap() }
        }))
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_rebuild_resumes_where_it_stopped() {
    let app = TestApp::spawn().await;
    let log = EventLog::new(app.nats.client().await);
    seed(&log, 20_000).await;
    let head = log.head().await.unwrap();
    app.wait_projection("agents", head).await;

    let rebuild = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mission-control"));
        cmd.args(["projections", "rebuild", "agents"])
            .env("MC_DATABASE_URL", app.db.url())
            .env("MC_NATS_URL", app.nats.url())
            .env("MC_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    };
    let mut child = rebuild(&[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_at = loop {
        if let Some(r) = mc_projection::rebuild::rebuild_status(&app.db.pool, "agents")
            .await
            .unwrap()
        {
            if r.position > 0 {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break mc_projection::rebuild::rebuild_status(&app.db.pool, "agents")
                    .await
                    .unwrap()
                    .unwrap()
                    .position;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "rebuild finished before it could be killed"
        );
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        killed_at > 0 && killed_at < head,
        "killed at {killed_at} of {head}"
    );

    let out = rebuild(&[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming rebuild of agents"), "{stderr}");
    assert!(stdout.contains("swapped it in"), "{stdout}");
    let resumed_from: u64 = stderr
        .split("at position ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(
        resumed_from >= killed_at,
        "resumed from {resumed_from}, killed at {killed_at}"
    );
    assert!(
        mc_projection::rebuild::rebuild_status(&app.db.pool, "agents")
            .await
            .unwrap()
            .is_none()
    );
    let schemas: Vec<(String,)> =
        sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'mc_rebuild_%'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert!(schemas.is_empty(), "{schemas:?}");
    let head = log.head().await.unwrap();
    app.wait_projection("agents", head).await;
    assert_eq!(checksum(&app.db.pool).await, from_scratch(&app, head).await);
    let (_, v): (u16, Value) = app.get_json("/agents?limit=1").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
}
