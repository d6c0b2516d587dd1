//! The projection runtime's guarantees, with a counting projection: resume from the
//! checkpoint, and exactly-once with two runners of one projection.

use futures::future::BoxFuture;
use mc_eventlog::streams::{provision, ProvisionOptions};
use mc_eventlog::{Commit, CommitMeta, EventLog, RecordedCommit};
use mc_projection::{load_checkpoint, ApplyError, Projection, Projector};
use mc_test_support::{NatsServer, TestDb};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Records every position it is given, without any idempotency of its own.
struct Counting;

impl Projection for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut sqlx::PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            for c in commits {
                sqlx::query("INSERT INTO applied (position) VALUES ($1)")
                    .bind(c.position as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }
}

async fn append_many(log: &EventLog, prefix: &str, n: usize) {
    for i in 0..n {
        let event = mc_domain::agent::AgentEvent::Removed {
            name: format!("n{i}"),
        };
        let meta = CommitMeta {
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: "test".into(),
            occurred_at: chrono::Utc::now(),
        };
        let commit = Commit::new("agent", &format!("{prefix}{i}"), 0, meta, &[event]);
        log.append(&commit, 0).await.unwrap();
    }
}

async fn wait_checkpoint(db: &TestDb, position: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while load_checkpoint(&db.pool, "counting").await.unwrap() < position {
        assert!(
            Instant::now() < deadline,
            "projector did not reach {position}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn applied(db: &TestDb) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT position) FROM applied")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_of_one_projection_apply_each_commit_once_and_resume() {
    let nats = NatsServer::start().await;
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE applied (position bigint NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let log = EventLog::new(nats.client().await);
    provision(log.jetstream(), &ProvisionOptions::default())
        .await
        .unwrap();

    let cancel = CancellationToken::new();
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let p = Projector::new(Arc::new(Counting), db.pool.clone(), log.jetstream().clone());
            tokio::spawn(p.run(cancel.clone()))
        })
        .collect();
    append_many(&log, "a", 400).await;
    wait_checkpoint(&db, 400).await;
    cancel.cancel();
    for r in runners {
        r.await.unwrap().unwrap();
    }
    assert_eq!(applied(&db).await, (400, 400));

    // Stopped; more events arrive; a new runner resumes at checkpoint + 1.
    append_many(&log, "b", 100).await;
    let cancel = CancellationToken::new();
    let p = Projector::new(Arc::new(Counting), db.pool.clone(), log.jetstream().clone());
    let runner = tokio::spawn(p.run(cancel.clone()));
    wait_checkpoint(&db, 500).await;
    cancel.cancel();
    runner.await.unwrap().unwrap();
    assert_eq!(applied(&db).await, (500, 500));
}
