//! The consumer runtime's poison policy with a sink of the test's own, on a stream of its own:
//! one bad message among good ones in one batch (a panic, a value PostgreSQL refuses) is
//! isolated, recorded and skipped or stopped on; every good message commits exactly once.

use async_nats::jetstream::{self, stream};
use futures::future::BoxFuture;
use mc_projection::{
    load_checkpoint, CheckpointedStream, PoisonPolicy, ProjectorError, Sink, SinkError,
    StreamConfig, StreamMessage,
};
use mc_test_support::{NatsServer, TestDb};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const NAME: &str = "runtime-probe";

/// Inserts each message's text; `panic` panics, `nul` carries U+0000 into a text column.
struct Probe {
    letters: Arc<Mutex<Vec<(u64, String)>>>,
}

impl Sink for Probe {
    fn apply<'a>(
        &'a mut self,
        tx: &'a mut sqlx::PgConnection,
        batch: &'a [StreamMessage],
        _replay_until: u64,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            for m in batch {
                let text = String::from_utf8_lossy(&m.payload).into_owned();
                let stored = match text.as_str() {
                    "panic" => panic!("probe told to panic at {}", m.position),
                    "nul" => "nul \u{0} inside".to_owned(),
                    _ => text,
                };
                sqlx::query("INSERT INTO probe (position, text) VALUES ($1, $2)")
                    .bind(m.position as i64)
                    .bind(stored)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }

    fn dead_letter<'a>(
        &'a mut self,
        m: &'a StreamMessage,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        self.letters
            .lock()
            .unwrap()
            .push((m.position, reason.to_owned()));
        Box::pin(async { Ok(()) })
    }
}

struct Fixture {
    _nats: NatsServer,
    db: TestDb,
    js: jetstream::Context,
    letters: Arc<Mutex<Vec<(u64, String)>>>,
}

/// A stream `PROBE` holding, in order: 5 good, `panic`, 5 good, `nul`, 5 good (positions 1..=17).
async fn fixture() -> Fixture {
    let nats = NatsServer::start().await;
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE probe (position bigint PRIMARY KEY, text text NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let js = jetstream::new(nats.client().await);
    js.create_stream(stream::Config {
        name: "PROBE".into(),
        subjects: vec!["probe.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut payloads: Vec<String> = Vec::new();
    for i in 0..17 {
        payloads.push(match i {
            5 => "panic".into(),
            11 => "nul".into(),
            _ => format!("good {i}"),
        });
    }
    for p in payloads {
        js.publish("probe.x", p.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    Fixture {
        _nats: nats,
        db,
        js,
        letters: Arc::default(),
    }
}

fn runtime(f: &Fixture, poison: PoisonPolicy) -> CheckpointedStream {
    let config = StreamConfig {
        name: NAME,
        stream: "PROBE",
        max_messages: 100,
        max_bytes: 1 << 20,
        // One window long enough to take all 17 messages into one batch.
        window: Duration::from_millis(300),
        linger: Duration::from_millis(300),
        poison,
        relaxed_commit: false,
        schema: None,
        replay_marker: false,
    };
    let sink = Probe {
        letters: f.letters.clone(),
    };
    CheckpointedStream::new(config, Box::new(sink), f.db.pool.clone(), f.js.clone())
}

async fn stored(f: &Fixture) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM probe ORDER BY 1")
        .fetch_all(&f.db.pool)
        .await
        .unwrap()
}

async fn failures(f: &Fixture) -> Vec<(i64, bool, String)> {
    sqlx::query_as("SELECT position, skipped, error FROM projection_failures ORDER BY 1")
        .fetch_all(&f.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn skip_policy_commits_every_good_message_and_records_each_poison_once() {
    let f = fixture().await;
    let cancel = CancellationToken::new();
    let task = tokio::spawn(runtime(&f, PoisonPolicy::Skip).run(cancel.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while load_checkpoint(&f.db.pool, NAME).await.unwrap() < 17 {
        assert!(Instant::now() < deadline, "never reached the head");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    cancel.cancel();
    task.await.unwrap().unwrap();
    let good: Vec<i64> = (1..=17).filter(|p| *p != 6 && *p != 12).collect();
    assert_eq!(stored(&f).await, good);
    let recorded = failures(&f).await;
    assert_eq!(
        recorded
            .iter()
            .map(|(p, skipped, _)| (*p, *skipped))
            .collect::<Vec<_>>(),
        [(6, true), (12, true)]
    );
    assert!(recorded[0].2.contains("panic"), "{recorded:?}");
    assert!(recorded[1].2.contains("22021"), "{recorded:?}");
    let letters = f.letters.lock().unwrap().clone();
    assert_eq!(letters.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [6, 12]);
}

#[tokio::test]
async fn stop_policy_commits_what_precedes_the_poison_and_stops_there() {
    let f = fixture().await;
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        runtime(&f, PoisonPolicy::Stop).run(CancellationToken::new()),
    )
    .await
    .expect("the runtime stopped by itself");
    match result {
        Err(ProjectorError::Poison { position, .. }) => assert_eq!(position, 6),
        other => panic!("expected a poison stop, got {other:?}"),
    }
    assert_eq!(stored(&f).await, [1, 2, 3, 4, 5]);
    assert_eq!(load_checkpoint(&f.db.pool, NAME).await.unwrap(), 5);
    assert_eq!(
        failures(&f)
            .await
            .iter()
            .map(|(p, skipped, _)| (*p, *skipped))
            .collect::<Vec<_>>(),
        [(6, false)]
    );
    assert!(f.letters.lock().unwrap().is_empty());
}
