//! Telemetry in backups, against real nats-servers: a time range of `MC_TELEMETRY` is backed
//! up with its positions (a stream whose oldest messages aged out, gaps where messages were
//! deleted), restored with the same positions and gaps, cut at the same point in time as the
//! events, resumed after a stop (even one that left a gap's placeholder), refused into a
//! target that holds other telemetry, and checked before anything is written.

use async_nats::jetstream::{self, Context};
use mc_backup::{manifest, BackupError, CreateOptions, RestoreOptions, TelemetryRange, Until};
use mc_eventlog::streams;
use mc_test_support::NatsServer;
use std::path::Path;

type Time = chrono::DateTime<chrono::Utc>;

async fn js(server: &NatsServer) -> Context {
    jetstream::new(server.client().await)
}

async fn publish(js: &Context, subject: String, payload: String) -> u64 {
    js.publish(subject, payload.into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

/// Telemetry 1..=100, events 1..=5, telemetry 101..=300, events 6..=10; telemetry below 51
/// aged out (purged) and 120, 121 and 200 deleted.
async fn source() -> (NatsServer, Context) {
    let server = NatsServer::start().await;
    let js = js(&server).await;
    streams::provision(&js, &Default::default()).await.unwrap();
    let telemetry = |i: u64| {
        (
            format!("mc.telemetry.SC-00{}", i % 3),
            format!(
                r#"{{"spacecraftId":"SC-00{}","timestamp":{i},"parameters":{{"p":{i}}}}}"#,
                i % 3
            ),
        )
    };
    for i in 1..=300 {
        if i == 101 {
            for e in 1..=5 {
                publish(&js, format!("mc.events.mission.m{e}"), format!("event {e}")).await;
            }
        }
        let (subject, payload) = telemetry(i);
        assert_eq!(publish(&js, subject, payload).await, i);
    }
    for e in 6..=10 {
        publish(&js, format!("mc.events.mission.m{e}"), format!("event {e}")).await;
    }
    let stream = js.get_stream("MC_TELEMETRY").await.unwrap();
    stream.purge().sequence(51).await.unwrap();
    for seq in [120, 121, 200] {
        assert!(stream.delete_message(seq).await.unwrap());
    }
    (server, js)
}

async fn backup(js: &Context, dir: &Path, range: TelemetryRange) -> mc_backup::Manifest {
    let options = CreateOptions {
        segment_messages: 64,
        schema_version: 14,
        telemetry: Some(range),
        ..Default::default()
    };
    let draft = mc_backup::create(js, dir, &options, |_, _| {})
        .await
        .unwrap();
    draft.finish(None).unwrap()
}

async fn restore(
    js: &Context,
    dir: &Path,
    id: &str,
    until: Option<Until>,
) -> Result<mc_backup::Restored, BackupError> {
    let options = RestoreOptions {
        until,
        schema_version: 14,
        ..Default::default()
    };
    mc_backup::restore(js, dir, id, &options, |_, _| {}).await
}

/// `(first, last, messages)` of a stream.
async fn state(js: &Context, name: &str) -> (u64, u64, u64) {
    let mut stream = js.get_stream(name).await.unwrap();
    let s = stream.info().await.unwrap().state.clone();
    (s.first_sequence, s.last_sequence, s.messages)
}

/// Every telemetry position in `range`: its subject and payload, or `None` where there is no
/// message.
async fn telemetry(
    js: &Context,
    range: std::ops::RangeInclusive<u64>,
) -> Vec<Option<(String, Vec<u8>)>> {
    let stream = js.get_stream("MC_TELEMETRY").await.unwrap();
    let mut out = Vec::new();
    for seq in range {
        out.push(
            stream
                .get_raw_message(seq)
                .await
                .ok()
                .map(|m| (m.subject.to_string(), m.payload.to_vec())),
        );
    }
    out
}

async fn stored_at(js: &Context, name: &str, seq: u64) -> Time {
    let m = js
        .get_stream(name)
        .await
        .unwrap()
        .get_raw_message(seq)
        .await
        .unwrap();
    chrono::DateTime::from_timestamp_nanos(m.time.unix_timestamp_nanos() as i64)
}

#[tokio::test]
async fn telemetry_restores_with_its_positions_and_gaps_up_to_the_events_point_in_time() {
    let (_a, source_js) = source().await;
    let dir = tempfile::tempdir().unwrap();
    let m = backup(&source_js, dir.path(), TelemetryRange::default()).await;
    assert_eq!(m.format, manifest::FORMAT);
    let t = m.telemetry.clone().unwrap();
    assert_eq!((t.first, t.last, t.messages), (51, 300, 247));
    assert_eq!(t.segments.len(), 4, "{t:?}");
    let verified = manifest::verify(dir.path(), &m.id, 14, |_, _| {}).unwrap();
    assert_eq!(
        (
            verified.messages_checked,
            verified.telemetry_messages_checked
        ),
        (10, 247)
    );
    assert_eq!(m.summary()["telemetryMessages"], 247);

    // Up to event 5: the telemetry stored before it (51..=100), nothing after.
    let target = NatsServer::start().await;
    let target_js = js(&target).await;
    let early = restore(&target_js, dir.path(), &m.id, Some(Until::Position(5)))
        .await
        .unwrap();
    assert_eq!(early.last, 5);
    let early_t = early.telemetry.unwrap();
    assert_eq!(
        (early_t.last, early_t.written, early_t.resumed_after),
        (100, 50, 50)
    );
    assert_eq!(state(&target_js, "MC_TELEMETRY").await, (51, 100, 50));

    // A run stopped in the gap at 120..=121 after publishing 120's placeholder: simulated by
    // restoring up to a time inside it and publishing the placeholder as that run would have.
    let (_b, gap_js) = {
        let s = NatsServer::start().await;
        let j = js(&s).await;
        (s, j)
    };
    let at_119 = stored_at(&source_js, "MC_TELEMETRY", 119).await;
    let stopped = restore(&gap_js, dir.path(), &m.id, Some(Until::Time(at_119)))
        .await
        .unwrap();
    assert_eq!((stopped.last, stopped.telemetry.unwrap().last), (5, 119));
    let placeholder = async_nats::jetstream::message::PublishMessage::build()
        .payload(bytes::Bytes::new())
        .expected_last_sequence(119);
    let ack = gap_js
        .send_publish(mc_backup::GAP_SUBJECT, placeholder)
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 120);

    // Both resume to the whole backup: every position as in the source, gaps included.
    let source_telemetry = telemetry(&source_js, 51..=300).await;
    assert_eq!(source_telemetry.iter().filter(|m| m.is_none()).count(), 3);
    for (target_js, resumed_after) in [(&target_js, 100), (&gap_js, 120)] {
        let r = restore(target_js, dir.path(), &m.id, None).await.unwrap();
        assert_eq!((r.last, r.resumed_after), (10, 5));
        let rt = r.telemetry.unwrap();
        assert_eq!((rt.last, rt.resumed_after), (300, resumed_after));
        assert_eq!(state(target_js, "MC_TELEMETRY").await, (51, 300, 247));
        assert_eq!(telemetry(target_js, 51..=300).await, source_telemetry);
        // Done: running it again writes nothing.
        let again = restore(target_js, dir.path(), &m.id, None).await.unwrap();
        assert_eq!((again.written, again.telemetry.unwrap().written), (0, 0));
    }
}

#[tokio::test]
async fn a_time_range_of_telemetry_is_what_was_stored_in_it() {
    let (_a, source_js) = source().await;
    let dir = tempfile::tempdir().unwrap();
    let from = stored_at(&source_js, "MC_TELEMETRY", 150).await;
    let to = stored_at(&source_js, "MC_TELEMETRY", 250).await;
    let range = TelemetryRange::new(Some(from), Some(to)).unwrap();
    let m = backup(&source_js, dir.path(), range).await;
    let t = m.telemetry.clone().unwrap();
    assert_eq!((t.first, t.last, t.messages), (150, 250, 100));
    assert_eq!((t.from, t.to), (Some(from), Some(to)));
    let target = NatsServer::start().await;
    let target_js = js(&target).await;
    restore(&target_js, dir.path(), &m.id, None).await.unwrap();
    assert_eq!(state(&target_js, "MC_TELEMETRY").await, (150, 250, 100));
    assert_eq!(
        telemetry(&target_js, 150..=250).await,
        telemetry(&source_js, 150..=250).await
    );

    // A range after everything stored holds no telemetry and restores none.
    let later = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    let empty = backup(
        &source_js,
        dir.path(),
        TelemetryRange::new(later, None).unwrap(),
    )
    .await;
    let t = empty.telemetry.clone().unwrap();
    assert_eq!(
        (t.first, t.last, t.messages, t.segments.len()),
        (0, 0, 0, 0)
    );
    manifest::verify(dir.path(), &empty.id, 14, |_, _| {}).unwrap();
    let fresh = NatsServer::start().await;
    let r = restore(&js(&fresh).await, dir.path(), &empty.id, None)
        .await
        .unwrap();
    assert!(r.telemetry.is_none());

    // Bounds: RFC 3339 or an age; a range that ends before it starts is refused.
    let now: Time = "2026-12-03T12:00:00Z".parse().unwrap();
    assert_eq!(
        TelemetryRange::parse_bound("24h", now),
        Ok("2026-12-02T12:00:00Z".parse().unwrap())
    );
    assert_eq!(
        TelemetryRange::parse_bound("2026-12-01T00:00:00+01:00", now),
        Ok("2026-11-30T23:00:00Z".parse().unwrap())
    );
    for bad in ["", "h", "-3h", "3w", "yesterday", "99999999999999d"] {
        assert!(TelemetryRange::parse_bound(bad, now).is_err(), "{bad:?}");
    }
    assert!(TelemetryRange::new(Some(now), Some(now - chrono::Duration::seconds(1))).is_err());
}

#[tokio::test]
async fn foreign_telemetry_or_a_damaged_telemetry_segment_is_refused_before_anything_is_written() {
    let (_a, source_js) = source().await;
    let dir = tempfile::tempdir().unwrap();
    let m = backup(&source_js, dir.path(), TelemetryRange::default()).await;

    // A target whose telemetry is its own: refused, and its event log stays empty.
    let live = NatsServer::start().await;
    let live_js = js(&live).await;
    streams::provision(&live_js, &Default::default())
        .await
        .unwrap();
    publish(&live_js, "mc.telemetry.SC-009".into(), "{}".into()).await;
    let refused = restore(&live_js, dir.path(), &m.id, None).await;
    assert!(
        matches!(refused, Err(BackupError::Refused(ref e)) if e.contains("MC_TELEMETRY is not empty")),
        "{refused:?}"
    );
    assert_eq!(state(&live_js, "MC_EVENTS").await.1, 0);

    // One flipped byte in a telemetry segment: verification fails, nothing is created.
    let segment = dir.path().join(&m.id).join("telemetry-000002.zst");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&segment, bytes).unwrap();
    let fresh = NatsServer::start().await;
    let fresh_js = js(&fresh).await;
    let refused = restore(&fresh_js, dir.path(), &m.id, None).await;
    assert!(
        matches!(refused, Err(BackupError::Corrupt(ref e)) if e.contains("telemetry-000002.zst")),
        "{refused:?}"
    );
    assert!(fresh_js.get_stream("MC_EVENTS").await.is_err());
    assert!(fresh_js.get_stream("MC_TELEMETRY").await.is_err());
}
