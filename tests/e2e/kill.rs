//! kill -9 of the server during a burst of registrations: nothing acknowledged is lost,
//! nothing is applied twice, the archive has no gap.

use crate::helpers::{spawn_binary, wait_ready};
use futures::StreamExt;
use mc_eventlog::EventLog;
use mc_test_support::{free_port, NatsServer, TestDb};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOTAL: usize = 1_000;
const KILL_AFTER: usize = 300;
const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_registration_burst_loses_no_acknowledged_agent() {
    let nats = NatsServer::start().await;
    let db = TestDb::new().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let http = crate::helpers::authorized(
        &crate::helpers::issue_token(&nats.url(), "test-admin", "admin", &[]).await,
    );
    let child = Arc::new(Mutex::new(spawn_binary(&nats.url(), db.url(), &addr)));
    wait_ready(&http, &base).await;

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let killed = Arc::new(Mutex::new(false));
    futures::stream::iter(0..TOTAL)
        .map(|i| {
            let (http, base, acked, child, killed) = (
                http.clone(),
                base.clone(),
                acked.clone(),
                child.clone(),
                killed.clone(),
            );
            async move {
                let r = http
                    .post(format!("{base}/api/v1/agents"))
                    .json(&json!({"name": format!("burst-{i}")}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                if let Ok(r) = r {
                    if r.status().is_success() {
                        if let Ok(body) = r.json::<Value>().await {
                            let mut acked = acked.lock().unwrap();
                            acked.push(body["id"].as_str().unwrap().to_owned());
                            if acked.len() >= KILL_AFTER && !*killed.lock().unwrap() {
                                *killed.lock().unwrap() = true;
                                child.lock().unwrap().kill().unwrap(); // SIGKILL
                            }
                        }
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    child.lock().unwrap().wait().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(*killed.lock().unwrap(), "the server was killed mid-burst");
    assert!(
        acked.len() >= KILL_AFTER && acked.len() < TOTAL,
        "acked {}",
        acked.len()
    );

    eprintln!("acknowledged before kill -9: {} of {TOTAL}", acked.len());
    // Restart on the same NATS and database; it resumes from its checkpoints.
    let _restarted = crate::helpers::KillOnDrop(spawn_binary(&nats.url(), db.url(), &addr));
    wait_ready(&http, &base).await;
    let head = EventLog::new(nats.client().await).head().await.unwrap();
    assert!(head as usize >= acked.len());
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in ["agents", "archive"] {
        while mc_projection::load_checkpoint(&db.pool, name)
            .await
            .unwrap()
            < head
        {
            assert!(
                Instant::now() < deadline,
                "{name} did not catch up to {head}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    eprintln!("log head after restart: {head}");
    let ids: Vec<uuid::Uuid> = acked.iter().map(|s| s.parse().unwrap()).collect();
    let (present,): (i64,) = sqlx::query_as("SELECT count(*) FROM agents WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        present as usize,
        acked.len(),
        "every acknowledged agent is in the read model"
    );

    let (rows, positions, min, max): (i64, i64, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT position), min(position), max(position) FROM events",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        (rows, positions, min, max),
        (head as i64, head as i64, Some(1), Some(head as i64)),
        "archive has no gap and no duplicate"
    );
    let (agents,): (i64,) = sqlx::query_as("SELECT count(*) FROM agents")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        agents,
        head as i64 - crate::helpers::SETUP_EVENTS as i64,
        "one read-model row per registration in the log (all but the token), none twice"
    );

    // And it keeps working.
    let r = http
        .post(format!("{base}/api/v1/agents"))
        .json(&json!({"name": "after-restart"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let nats = NatsServer::start().await;
    let db = TestDb::new().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let http = crate::helpers::authorized(
        &crate::helpers::issue_token(&nats.url(), "test-admin", "admin", &[]).await,
    );
    let mut child = spawn_binary(&nats.url(), db.url(), &addr);
    wait_ready(&http, &base).await;
    let r = http
        .post(format!("{base}/api/v1/agents"))
        .json(&json!({"name": "term"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
}
