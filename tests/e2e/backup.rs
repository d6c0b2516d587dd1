//! Backups end to end with the real binary: history across every aggregate, `backup create`,
//! a wiped deployment (new NATS, new database), `backup restore`, `serve` → every read model
//! identical and the hash chain verifies to the recorded head; a damaged copy fails `verify`;
//! `--until` stops at its position; a restore killed with SIGKILL resumes and completes.
//! Backups over HTTP are in `backup_http.rs`, restore drills in `backup_drill.rs`.

use crate::helpers::{authorized, spawn_binary, wait_ready, KillOnDrop, TestApp};
use crate::telemetry::stream_head;
use crate::telemetry_alarms::{act, alarm, configure, settle};
use async_nats::jetstream;
use mc_test_support::{free_port, NatsServer, TestDb};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run `mission-control backup <args>` against `nats_url`, off the async runtime.
pub(crate) async fn backup_cli(
    nats_url: &str,
    database_url: Option<&str>,
    args: &[&str],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mission-control"));
    command
        .arg("backup")
        .args(args)
        .env("MC_NATS_URL", nats_url)
        .env("MC_LOG", "warn")
        .env_remove("MC_DATABASE_URL");
    if let Some(url) = database_url {
        command.env("MC_DATABASE_URL", url);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

pub(crate) fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Read models as checksums: every row of each table (the archive: its hash chain, which covers
/// every field but the archive's own `recorded_at`).
async fn checksums(pool: &PgPool) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for table in [
        "agents",
        "missions",
        "comments",
        "pm_agent_status_missions",
        "spacecraft",
        "spacecraft_limits",
        "alarms",
        "alarm_history",
        "telemetry_frames",
        "telemetry_latest",
        "telemetry_rollups",
        "telemetry_evaluator",
        "tools",
        "tasks",
        "task_runs",
        "task_run_calls",
        "prices",
        "usage_runs",
        "llm_calls",
    ] {
        let (count, sum): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((table.to_owned(), count, sum.unwrap_or_default()));
    }
    let (count, sum): (i64, Option<String>) = sqlx::query_as(
        "SELECT count(*), md5(string_agg(encode(hash, 'hex'), '' ORDER BY position, event_index)) FROM events",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    out.push(("events".to_owned(), count, sum.unwrap_or_default()));
    out
}

/// Every aggregate gets history: agents, a mission assigned and started, a comment, a
/// spacecraft with limits, telemetry that raises an alarm, its acknowledgement, a token.
pub(crate) async fn history(app: &TestApp) {
    let agent = app.create("/agents", json!({"name": "restorer"})).await;
    let mission = app
        .create("/missions", json!({"title": "restore me"}))
        .await;
    let (s, _) = app
        .patch(
            &format!("/missions/{mission}"),
            json!({"agentId": agent, "status": "IN_PROGRESS", "progress": 40}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .post(
            "/comments",
            json!({"missionId": mission, "agentId": agent, "content": "half way"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post("/spacecraft", json!({"id": "SC-001", "name": "one"}))
        .await;
    assert_eq!(s, 201);
    configure(
        app,
        "SC-001",
        json!({"effectiveAt": 0, "parameters": {"p000": {"warnHigh": 50, "critHigh": 100}}}),
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    let (s, body) = app
        .post(
            "/telemetry",
            json!([{"spacecraftId": "SC-001", "timestamp": now, "parameters": {"p000": 150.0}}]),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let raised = loop {
        let a = alarm(app, "SC-001", "p000", "LIMIT").await;
        if !a.is_null() {
            break a;
        }
        assert!(Instant::now() < deadline, "no alarm raised");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (s, _) = act(app, raised["id"].as_str().unwrap(), "acknowledge").await;
    assert_eq!(s, 200);
    let (s, _) = app
        .post(
            "/tokens",
            json!({"name": "restored-viewer", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, 201);
    // A task run with a tool call approved by the policy and a priced LLM step.
    let (s, _) = app
        .post(
            "/tools",
            json!({"name": "probe", "risk": "READ_ONLY", "schema": {"type": "object"}}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post(
            "/pricing",
            json!({"provider": "openai", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z",
                "inputPerMillion": 2.5, "outputPerMillion": 10}),
        )
        .await;
    assert_eq!(s, 201);
    let task = app
        .create(
            "/tasks",
            json!({"title": "restore me too", "allowedTools": ["probe"]}),
        )
        .await;
    let run = app
        .create("/task-runs", json!({"taskId": task, "agentId": agent}))
        .await;
    let (s, _) = app
        .post(
            &format!("/task-runs/{run}/tool-calls"),
            json!({"tool": "probe", "arguments": {}}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post(
            &format!("/task-runs/{run}/llm-calls"),
            json!({"provider": "openai", "model": "gpt-4o", "inputTokens": 100, "outputTokens": 10}),
        )
        .await;
    assert_eq!(s, 201);
    settle(app).await;
    let head = stream_head(&jetstream::new(app.nats.client().await), "MC_EVENTS").await;
    for projection in ["tasks", "usage"] {
        app.wait_projection(projection, head).await;
    }
}

/// Wait until every consumer of `MC_EVENTS` (projections, process managers; `telemetry`
/// false) or of `MC_TELEMETRY` (the two telemetry consumers; `telemetry` true) reached
/// `position` (30 s at most).
async fn wait_checkpoints(pool: &PgPool, position: u64, telemetry: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (min, n): (Option<i64>, i64) = sqlx::query_as(
            "SELECT min(position), count(*) FROM projection_checkpoints \
                 WHERE (name LIKE 'telemetry-%') = $1",
        )
        .bind(telemetry)
        .fetch_one(pool)
        .await
        .unwrap_or((None, 0));
        if n > 0 && min.unwrap_or(0) >= position as i64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "projections stuck below {position}: min {min:?} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_deployment_restored_from_a_backup_has_identical_read_models() {
    let app = TestApp::spawn().await;
    history(&app).await;
    let source_js = jetstream::new(app.nats.client().await);
    let last = stream_head(&source_js, "MC_EVENTS").await;
    let telemetry_last = stream_head(&source_js, "MC_TELEMETRY").await;
    assert!(telemetry_last > 0);
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    // The read models as backed up (the backup's own record comes after).
    let source = checksums(&app.db.pool).await;
    assert!(
        source.iter().all(|(_, count, _)| *count > 0),
        "every read model has rows: {source:?}"
    );

    let created = stdout_json(
        &backup_cli(
            &app.nats.url(),
            Some(app.db.url()),
            &["create", "--dir", dir_arg, "--telemetry", "--json"],
        )
        .await,
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["last"], last);
    assert_eq!(created["telemetry"]["last"], telemetry_last, "{created}");
    assert_eq!(created["archiveHead"]["position"], last, "{created}");
    // The backup is recorded in the log it backed up, by the CLI's operator.
    assert_eq!(stream_head(&source_js, "MC_EVENTS").await, last + 1);
    app.wait_projection("archive", last + 1).await;
    let (_, recorded) = app.get_json("/events?aggregate=backup").await;
    let record = &recorded["items"][0];
    assert_eq!(record["type"], "backup.completed", "{recorded}");
    assert_eq!(record["aggregateId"], id.as_str());
    assert!(
        record["actor"].as_str().unwrap().starts_with("cli:"),
        "{record}"
    );
    assert_eq!(record["payload"]["last"], last);
    let digest = std::fs::read_to_string(dir.path().join(&id).join("manifest.sha256")).unwrap();
    assert_eq!(record["payload"]["manifestSha256"], digest.trim());
    let listed = stdout_json(
        &backup_cli(&app.nats.url(), None, &["list", "--dir", dir_arg, "--json"]).await,
    );
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert_eq!(listed["items"][0]["state"], "completed");
    let verified = stdout_json(
        &backup_cli(
            &app.nats.url(),
            None,
            &["verify", &id, "--dir", dir_arg, "--json"],
        )
        .await,
    );
    assert_eq!(verified["messagesChecked"], last);
    assert_eq!(verified["telemetryMessagesChecked"], telemetry_last);

    // A copy with one byte flipped fails verification and is not restored.
    let damaged = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join(&id), &damaged.path().join(&id));
    let segment = damaged.path().join(&id).join("events-000001.zst");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&segment, bytes).unwrap();
    let wiped = NatsServer::start().await;
    let out = backup_cli(
        &wiped.url(),
        None,
        &["verify", &id, "--dir", damaged.path().to_str().unwrap()],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("events-000001.zst"));
    let out = backup_cli(
        &wiped.url(),
        None,
        &["restore", &id, "--dir", damaged.path().to_str().unwrap()],
    )
    .await;
    assert!(!out.status.success());
    let wiped_js = jetstream::new(wiped.client().await);
    assert!(
        wiped_js.get_stream("MC_EVENTS").await.is_err(),
        "nothing written"
    );

    // Restore into the wiped deployment and serve it from a fresh database.
    let restored = stdout_json(
        &backup_cli(
            &wiped.url(),
            None,
            &["restore", &id, "--dir", dir_arg, "--json"],
        )
        .await,
    );
    assert_eq!(restored["last"], last);
    assert_eq!(restored["telemetry"]["last"], telemetry_last, "{restored}");
    assert_eq!(restored["agentNames"], 1, "{restored}");
    let db = TestDb::new().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let _server = KillOnDrop(spawn_binary(&wiped.url(), db.url(), &addr));
    // The admin token came back with the log.
    let http = authorized(&app.token);
    wait_ready(&http, &format!("http://{addr}")).await;
    wait_checkpoints(&db.pool, last, false).await;
    wait_checkpoints(&db.pool, telemetry_last, true).await;
    // Telemetry read models too: the restored telemetry kept its positions, so judging it again
    // raised no alarm twice (nothing was appended, checked below).
    assert_eq!(checksums(&db.pool).await, source);
    let audit: Value = http
        .get(format!("http://{addr}/api/v1/audit/verify"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["holds"], true, "{audit}");
    assert_eq!(audit["headHash"], created["archiveHead"]["hash"], "{audit}");
    assert_eq!(
        stream_head(&wiped_js, "MC_EVENTS").await,
        last,
        "serving the restore appended nothing"
    );

    // Point in time: a third deployment gets the first five positions only.
    let early = NatsServer::start().await;
    let out = stdout_json(
        &backup_cli(
            &early.url(),
            None,
            &["restore", &id, "--dir", dir_arg, "--until", "5", "--json"],
        )
        .await,
    );
    assert_eq!(out["last"], 5);
    assert_eq!(
        stream_head(&jetstream::new(early.client().await), "MC_EVENTS").await,
        5
    );
    let out = backup_cli(
        &early.url(),
        None,
        &[
            "restore",
            &id,
            "--dir",
            dir_arg,
            "--until",
            &(last + 1).to_string(),
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside"));
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_midway_resumes_where_it_stopped() {
    const MESSAGES: u64 = 20_000;
    let source = NatsServer::start().await;
    // Acks may take more than the default 5 s while the whole suite loads the machine.
    let source_js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(60))
        .build(source.client().await);
    mc_eventlog::streams::provision(&source_js, &Default::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..MESSAGES {
        acks.push(
            source_js
                .publish(
                    format!("mc.events.mission.m{}", i % 50),
                    format!("commit {i}").into(),
                )
                .await
                .unwrap(),
        );
        if acks.len() == 512 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap().to_owned();
    let created = stdout_json(
        &backup_cli(
            &source.url(),
            None,
            &[
                "create",
                "--dir",
                &dir_arg,
                "--segment-messages",
                "3000",
                "--json",
            ],
        )
        .await,
    );
    let id = created["id"].as_str().unwrap().to_owned();

    let target = NatsServer::start().await;
    let target_js = jetstream::new(target.client().await);
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_mission-control"))
            .args(["backup", "restore", &id, "--dir", &dir_arg])
            .env("MC_NATS_URL", target.url())
            .env("MC_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let head = match target_js.get_stream("MC_EVENTS").await {
            Ok(mut s) => s.info().await.map(|i| i.state.last_sequence).unwrap_or(0),
            Err(_) => 0,
        };
        if head >= 1_000 {
            child.0.kill().unwrap(); // SIGKILL
            child.0.wait().unwrap();
            break head;
        }
        assert!(
            Instant::now() < deadline,
            "the restore never started writing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // Publishes already on the wire when it died may still land: the head is read by the
    // resumed run itself.
    let resumed = stdout_json(
        &backup_cli(
            &target.url(),
            None,
            &["restore", &id, "--dir", &dir_arg, "--json"],
        )
        .await,
    );
    let after_kill = resumed["resumedAfter"].as_u64().unwrap();
    assert!(after_kill >= at_kill, "{resumed}");
    assert!(
        after_kill < MESSAGES,
        "killed too late to prove anything: {resumed}"
    );
    assert_eq!(resumed["last"], MESSAGES);
    assert_eq!(resumed["written"], MESSAGES - after_kill);
    let theirs = target_js.get_stream("MC_EVENTS").await.unwrap();
    let ours = source_js.get_stream("MC_EVENTS").await.unwrap();
    for seq in (1..=MESSAGES)
        .step_by(97)
        .chain([after_kill, after_kill + 1, MESSAGES])
    {
        let (a, b) = (
            ours.get_raw_message(seq).await.unwrap(),
            theirs.get_raw_message(seq).await.unwrap(),
        );
        assert_eq!(
            (a.subject, a.payload),
            (b.subject, b.payload),
            "position {seq}"
        );
    }
}
