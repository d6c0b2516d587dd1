//! Backups against real nats-servers: a backup restores into another server with every
//! position, subject, header and payload; corruption and tampering are refused before
//! anything is written; `until` stops at its position and a later run resumes; a target that
//! holds other history is refused.

use async_nats::jetstream::{self, Context};
use mc_backup::{manifest, BackupError, CreateOptions, RestoreOptions};
use mc_eventlog::streams;
use mc_test_support::NatsServer;
use std::path::Path;

const MESSAGES: u64 = 2_500;

async fn js(server: &NatsServer) -> Context {
    jetstream::new(server.client().await)
}

/// A source with `MESSAGES` commits-to-be on a few subjects, with headers.
async fn source() -> (NatsServer, Context) {
    let server = NatsServer::start().await;
    let js = js(&server).await;
    streams::provision(&js, &Default::default()).await.unwrap();
    for i in 1..=MESSAGES {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("cmd-{i}").as_str());
        headers.insert("Mc-Note", format!("n{i}").as_str());
        let payload = format!("payload {i} {}", "x".repeat((i % 97) as usize));
        js.publish_with_headers(
            format!("mc.events.mission.m{}", i % 7),
            headers,
            payload.into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    (server, js)
}

fn options() -> CreateOptions {
    CreateOptions {
        segment_messages: 1_000,
        schema_version: 14,
        software: "mission-control test".into(),
        ..Default::default()
    }
}

fn restore_options(until: Option<u64>) -> RestoreOptions {
    RestoreOptions {
        until: until.map(mc_backup::Until::Position),
        schema_version: 14,
        ..Default::default()
    }
}

async fn backup(js: &Context, dir: &Path) -> mc_backup::Manifest {
    let draft = mc_backup::create(js, dir, &options(), |_, _| {})
        .await
        .unwrap();
    draft.finish(None).unwrap()
}

/// Every message of `MC_EVENTS` up to `last`: (sequence, subject, payload, Mc-Note).
async fn messages(js: &Context, last: u64) -> Vec<(u64, String, Vec<u8>, Option<String>)> {
    let stream = js.get_stream("MC_EVENTS").await.unwrap();
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = stream.get_raw_message(seq).await.unwrap();
        let note = m.headers.get("Mc-Note").map(|v| v.as_str().to_owned());
        out.push((m.sequence, m.subject.to_string(), m.payload.to_vec(), note));
    }
    out
}

async fn last_position(js: &Context) -> Option<u64> {
    let mut stream = js.get_stream("MC_EVENTS").await.ok()?;
    Some(stream.info().await.unwrap().state.last_sequence)
}

#[tokio::test]
async fn a_backup_restores_every_position_and_resumes_after_a_point_in_time() {
    let (_a, source_js) = source().await;
    let dir = tempfile::tempdir().unwrap();
    let m = backup(&source_js, dir.path()).await;
    assert_eq!((m.first, m.last, m.messages), (1, MESSAGES, MESSAGES));
    assert_eq!(m.segments.len(), 3);
    assert!(m.compressed_bytes < m.uncompressed_bytes, "{m:?}");
    let verified = manifest::verify(dir.path(), &m.id, 14, |_, _| {}).unwrap();
    assert_eq!(verified.messages_checked, MESSAGES);
    let (listed, partial) = manifest::list(dir.path(), 14).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(partial.is_empty());

    // Point in time, then the rest: the second run resumes where the first stopped.
    let target = NatsServer::start().await;
    let target_js = js(&target).await;
    let first = mc_backup::restore(
        &target_js,
        dir.path(),
        &m.id,
        &restore_options(Some(1_234)),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (first.last, first.written, first.resumed_after),
        (1_234, 1_234, 0)
    );
    assert_eq!(last_position(&target_js).await, Some(1_234));
    let rest = mc_backup::restore(
        &target_js,
        dir.path(),
        &m.id,
        &restore_options(None),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (rest.last, rest.written, rest.resumed_after),
        (MESSAGES, MESSAGES - 1_234, 1_234)
    );
    // Once more: nothing to do.
    let again = mc_backup::restore(
        &target_js,
        dir.path(),
        &m.id,
        &restore_options(None),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(again.written, 0);

    let theirs = messages(&target_js, MESSAGES).await;
    assert_eq!(theirs, messages(&source_js, MESSAGES).await);
    assert_eq!(
        theirs[41].3.as_deref(),
        Some("n42"),
        "headers other than publish instructions are kept"
    );

    // The source has moved on: its history is not this backup's any more than a stranger's.
    let refused = mc_backup::restore(
        &source_js,
        dir.path(),
        &m.id,
        &restore_options(None),
        |_, _| {},
    )
    .await;
    assert!(
        matches!(refused, Ok(ref r) if r.written == 0),
        "{refused:?}"
    );
    source_js
        .publish("mc.events.mission.extra", "more".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let refused = mc_backup::restore(
        &source_js,
        dir.path(),
        &m.id,
        &restore_options(None),
        |_, _| {},
    )
    .await;
    assert!(
        matches!(refused, Err(BackupError::Refused(ref r)) if r.contains("not empty")),
        "{refused:?}"
    );
    let stranger = NatsServer::start().await;
    let stranger_js = js(&stranger).await;
    streams::provision(&stranger_js, &Default::default())
        .await
        .unwrap();
    stranger_js
        .publish("mc.events.agent.a", "other".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let refused = mc_backup::restore(
        &stranger_js,
        dir.path(),
        &m.id,
        &restore_options(None),
        |_, _| {},
    )
    .await;
    assert!(
        matches!(refused, Err(BackupError::Refused(ref r)) if r.contains("not empty")),
        "{refused:?}"
    );
    assert_eq!(last_position(&stranger_js).await, Some(1));

    let out_of_range = mc_backup::restore(
        &stranger_js,
        dir.path(),
        &m.id,
        &restore_options(Some(MESSAGES + 1)),
        |_, _| {},
    )
    .await;
    assert!(
        matches!(out_of_range, Err(BackupError::Refused(ref r)) if r.contains("outside")),
        "{out_of_range:?}"
    );
}

fn copy_backup(from: &Path, id: &str) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    std::fs::create_dir(to.path().join(id)).unwrap();
    for entry in std::fs::read_dir(from.join(id)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.path().join(id).join(entry.file_name())).unwrap();
    }
    to
}

#[tokio::test]
async fn damaged_or_foreign_backups_are_refused_before_anything_is_written() {
    let (_a, source_js) = source().await;
    let dir = tempfile::tempdir().unwrap();
    let m = backup(&source_js, dir.path()).await;
    let target = NatsServer::start().await;
    let target_js = js(&target).await;

    let restore_from = |d: std::path::PathBuf, id: String, schema: i64| {
        let js = target_js.clone();
        async move {
            let options = RestoreOptions {
                schema_version: schema,
                ..Default::default()
            };
            mc_backup::restore(&js, &d, &id, &options, |_, _| {}).await
        }
    };

    // One flipped byte in the middle segment.
    let flipped = copy_backup(dir.path(), &m.id);
    let seg = flipped.path().join(&m.id).join(&m.segments[1].file);
    let mut bytes = std::fs::read(&seg).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let r = restore_from(flipped.path().to_owned(), m.id.clone(), 14).await;
    assert!(
        matches!(r, Err(BackupError::Corrupt(ref e)) if e.contains("events-000002.zst")),
        "{r:?}"
    );

    // The last segment cut short.
    let truncated = copy_backup(dir.path(), &m.id);
    let seg = truncated.path().join(&m.id).join(&m.segments[2].file);
    let bytes = std::fs::read(&seg).unwrap();
    std::fs::write(&seg, &bytes[..bytes.len() - 10]).unwrap();
    let r = restore_from(truncated.path().to_owned(), m.id.clone(), 14).await;
    assert!(
        matches!(r, Err(BackupError::Corrupt(ref e)) if e.contains("events-000003.zst")),
        "{r:?}"
    );

    // A manifest edited to match a forged segment list: its digest gives it away.
    let edited = copy_backup(dir.path(), &m.id);
    let path = edited.path().join(&m.id).join(manifest::MANIFEST);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"last\": 2500", "\"last\": 2400");
    std::fs::write(&path, text).unwrap();
    let r = restore_from(edited.path().to_owned(), m.id.clone(), 14).await;
    assert!(
        matches!(r, Err(BackupError::Corrupt(ref e)) if e.contains("manifest.sha256")),
        "{r:?}"
    );

    // From a newer schema, unknown, or a path trick.
    let r = restore_from(dir.path().to_owned(), m.id.clone(), 13).await;
    assert!(matches!(r, Err(BackupError::Newer(_))), "{r:?}");
    let r = restore_from(
        dir.path().to_owned(),
        "20260101T000000Z-deadbeef".into(),
        14,
    )
    .await;
    assert!(matches!(r, Err(BackupError::UnknownBackup(_))), "{r:?}");
    let r = restore_from(dir.path().to_owned(), "../etc".into(), 14).await;
    assert!(matches!(r, Err(BackupError::UnknownBackup(_))), "{r:?}");

    // Nothing reached the target: not even the streams were created.
    assert_eq!(last_position(&target_js).await, None);
}

#[tokio::test]
async fn an_empty_stream_backs_up_and_restores_as_empty() {
    let server = NatsServer::start().await;
    let js = js(&server).await;
    streams::provision(&js, &Default::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = backup(&js, dir.path()).await;
    assert_eq!((m.messages, m.segments.len()), (0, 0));
    let target = NatsServer::start().await;
    let target_js = self::js(&target).await;
    let r = mc_backup::restore(
        &target_js,
        dir.path(),
        &m.id,
        &restore_options(None),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(r.last, 0);
    assert_eq!(last_position(&target_js).await, Some(0));
}

#[tokio::test]
async fn until_a_time_restores_what_was_stored_by_then() {
    let (_a, source_js) = source().await;
    let dir = tempfile::tempdir().unwrap();
    let m = backup(&source_js, dir.path()).await;
    let stream = source_js.get_stream("MC_EVENTS").await.unwrap();
    let at = |seq| {
        let stream = stream.clone();
        async move {
            let t = stream.get_raw_message(seq).await.unwrap().time;
            chrono::DateTime::from_timestamp_nanos(t.unix_timestamp_nanos() as i64)
        }
    };
    let t = at(1_234).await;
    let target = NatsServer::start().await;
    let target_js = js(&target).await;
    let options = RestoreOptions {
        until: Some(mc_backup::Until::Time(t)),
        schema_version: 14,
        ..Default::default()
    };
    let r = mc_backup::restore(&target_js, dir.path(), &m.id, &options, |_, _| {})
        .await
        .unwrap();
    assert!(r.last >= 1_234, "{r:?}");
    assert!(at(r.last).await <= t && at(r.last + 1).await > t, "{r:?}");

    let before = at(1).await - chrono::Duration::seconds(1);
    let options = RestoreOptions {
        until: Some(mc_backup::Until::Time(before)),
        schema_version: 14,
        ..Default::default()
    };
    let fresh = NatsServer::start().await;
    let refused =
        mc_backup::restore(&js(&fresh).await, dir.path(), &m.id, &options, |_, _| {}).await;
    assert!(
        matches!(refused, Err(BackupError::Refused(ref e)) if e.contains("before the backup's first event")),
        "{refused:?}"
    );
    assert_eq!(
        mc_backup::Until::parse("2026-12-03T10:00:00Z"),
        Ok(mc_backup::Until::Time(
            "2026-12-03T10:00:00Z".parse().unwrap()
        ))
    );
    assert_eq!(
        mc_backup::Until::parse("17"),
        Ok(mc_backup::Until::Position(17))
    );
    assert!(mc_backup::Until::parse("yesterday").is_err());
}
