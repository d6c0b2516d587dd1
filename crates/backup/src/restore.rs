//! Restore a verified backup into a NATS deployment whose `MC_EVENTS` is empty, keeping every
//! position: each message is published with `Nats-Expected-Last-Sequence` = its position − 1,
//! so JetStream itself refuses anything out of place. A restore that stopped (killed, network)
//! is resumed by running it again: the target's last message must be the backup's message at
//! that position, and the restore continues after it.
//!
//! A backup's telemetry is restored after the events, the same way: the target's empty
//! `MC_TELEMETRY` is first moved to start at the backup's first telemetry position (a purge up
//! to it), and a gap in the backup's positions (messages deleted from the live stream) is
//! kept by publishing a placeholder there and deleting it. Positions matter: the anomaly
//! processor's alarm commands carry them, so a restored deployment judging its telemetry again
//! repeats no alarm.

use crate::manifest::Segment;
use crate::manifest::{self, path_of, read_segment, Verified};
use crate::segment::Record;
use crate::{BackupError, Progress, EVENTS_STREAM, TELEMETRY_STREAM};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use mc_eventlog::streams::{self, ProvisionOptions};
use std::collections::VecDeque;
use std::path::Path;

/// Publishes awaiting their acknowledgement at most.
const IN_FLIGHT: usize = 256;

/// A point in time to restore up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// This position, inclusive.
    Position(u64),
    /// The last event JetStream stored at or before this time.
    Time(chrono::DateTime<chrono::Utc>),
}

impl Until {
    /// A position (digits) or an RFC 3339 time.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(p) = s.parse::<u64>() {
            return Ok(Self::Position(p));
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Self::Time(t.with_timezone(&chrono::Utc)))
            .map_err(|_| format!("{s:?} is neither a position nor an RFC 3339 time"))
    }
}

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Restore up to this point only; `None`: everything.
    pub until: Option<Until>,
    /// The restoring build's schema version: a backup from a newer one is refused.
    pub schema_version: i64,
    /// Stream provisioning of the target (replicas, telemetry retention).
    pub provision: ProvisionOptions,
    /// Leave the backup's telemetry out (the event log alone is restored).
    pub skip_telemetry: bool,
}

/// Subject of the placeholders that keep a telemetry gap (published, then deleted at once).
pub const GAP_SUBJECT: &str = "mc.telemetry._restore_gap";

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    pub id: String,
    /// The last position now in the target.
    pub last: u64,
    /// Messages this run wrote (fewer than the backup holds when it resumed).
    pub written: u64,
    /// Position this run started after (0: the target was empty).
    pub resumed_after: u64,
    /// The backup's telemetry, when it held some and it was restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<RestoredStream>,
}

/// What a restore did to one stream.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoredStream {
    /// The last position now in the target.
    pub last: u64,
    /// Messages this run wrote.
    pub written: u64,
    /// Position this run started after.
    pub resumed_after: u64,
}

/// One stream to restore: the backup's segments of it and how far.
struct Target<'a> {
    stream: &'static str,
    /// Progress phase.
    phase: &'static str,
    segments: &'a [Segment],
    /// The backup's first and last positions of this stream.
    first: u64,
    last: u64,
    /// Restore up to this position.
    end: u64,
}

/// Verify backup `id` completely, then restore it into the deployment behind `js`.
pub async fn restore(
    js: &Context,
    dir: &Path,
    id: &str,
    options: &RestoreOptions,
    mut progress: impl FnMut(&str, Progress),
) -> Result<Restored, BackupError> {
    // Nothing is written before every byte of the backup checked out.
    let verified = {
        let (dir, id, schema) = (dir.to_owned(), id.to_owned(), options.schema_version);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::task::spawn_blocking(move || {
            manifest::verify(&dir, &id, schema, |done, total| {
                let _ = tx.send(Progress { done, total });
            })
        });
        while let Some(p) = rx.recv().await {
            progress("verify", p);
        }
        task.await
            .map_err(|e| BackupError::Refused(format!("verification stopped: {e}")))??
    };
    let Verified { manifest, .. } = verified;
    let end = match options.until {
        None => manifest.last,
        Some(Until::Position(u))
            if manifest.messages > 0 && (manifest.first..=manifest.last).contains(&u) =>
        {
            u
        }
        Some(Until::Position(u)) => {
            return Err(BackupError::Refused(format!(
                "--until {u} is outside the backup's positions {}..={}",
                manifest.first, manifest.last
            )))
        }
        Some(Until::Time(t)) => position_at(dir, &manifest, t).await?,
    };
    if manifest.messages > 0 && manifest.first != 1 {
        return Err(BackupError::Refused(format!(
            "the backup starts at position {}: only a stream's whole history (from 1) restores with its positions",
            manifest.first
        )));
    }
    let root = path_of(dir, id)?;
    // Telemetry up to the same point in time as the events.
    let telemetry = match &manifest.telemetry {
        Some(t) if t.messages > 0 && !options.skip_telemetry => {
            let cut = match options.until {
                None => None,
                Some(Until::Time(t)) => Some(t.timestamp_nanos_opt().unwrap_or(i64::MAX)),
                Some(Until::Position(_)) => Some(
                    scan(&root, &manifest.segments, move |r| {
                        (r.seq == end).then_some(r.time_ns)
                    })
                    .await?
                    .ok_or_else(|| {
                        BackupError::Corrupt(format!("position {end} is not in the backup"))
                    })?,
                ),
            };
            let t_end = match cut {
                None => Some(t.last),
                Some(ns) => {
                    scan(&root, &t.segments, move |r| {
                        (r.time_ns <= ns).then_some(r.seq)
                    })
                    .await?
                }
            };
            t_end.map(|t_end| Target {
                stream: TELEMETRY_STREAM,
                phase: "telemetry",
                segments: &t.segments,
                first: t.first,
                last: t.last,
                end: t_end,
            })
        }
        _ => None,
    };
    // A target's telemetry that is neither empty nor this restore's is refused before the
    // events are written.
    if let Some(target) = &telemetry {
        if let Ok(mut stream) = js.get_stream(TELEMETRY_STREAM).await {
            let state = stream
                .info()
                .await
                .map_err(BackupError::nats)?
                .state
                .clone();
            if !untouched(&state, target) {
                check_resumable(&stream, &root, &manifest.id, target, state.last_sequence).await?;
            }
        }
    }
    streams::provision(js, &options.provision)
        .await
        .map_err(BackupError::nats)?;
    let events = Target {
        stream: EVENTS_STREAM,
        phase: "restore",
        segments: &manifest.segments,
        first: 1,
        last: manifest.last,
        end,
    };
    let restored = restore_stream(js, &root, &manifest.id, &events, &mut progress).await?;
    let telemetry = match &telemetry {
        Some(target) => Some(restore_stream(js, &root, &manifest.id, target, &mut progress).await?),
        None => None,
    };
    Ok(Restored {
        id: id.to_owned(),
        last: restored.last,
        written: restored.written,
        resumed_after: restored.resumed_after,
        telemetry,
    })
}

/// Restore one stream of the backup up to `target.end`, or resume an unfinished restore of it.
async fn restore_stream(
    js: &Context,
    root: &Path,
    id: &str,
    target: &Target<'_>,
    progress: &mut impl FnMut(&str, Progress),
) -> Result<RestoredStream, BackupError> {
    let mut restored: Option<RestoredStream> = None;
    // A publish refused for a wrong last sequence means someone else wrote meanwhile: most
    // likely the publishes a killed earlier run left on the wire. Look again: if what landed
    // is this backup's, go on after it.
    for attempt in 1..=RACE_ATTEMPTS {
        let mut stream = js
            .get_stream(target.stream)
            .await
            .map_err(BackupError::nats)?;
        let mut state = stream
            .info()
            .await
            .map_err(BackupError::nats)?
            .state
            .clone();
        if state.last_sequence == 0 && target.first > 1 {
            // A stream never written to starts at the backup's first position.
            stream
                .purge()
                .sequence(target.first)
                .await
                .map_err(BackupError::nats)?;
            state = stream
                .info()
                .await
                .map_err(BackupError::nats)?
                .state
                .clone();
        }
        let target_last = state.last_sequence;
        if !untouched(&state, target) {
            check_resumable(&stream, root, id, target, target_last).await?;
        }
        let run = restored.get_or_insert(RestoredStream {
            last: target_last,
            written: 0,
            resumed_after: target_last,
        });
        run.last = target_last;
        if run.written == 0 {
            run.resumed_after = target_last;
        }
        if target_last >= target.end {
            break;
        }
        let outcome = publish_from(js, &stream, root, target, target_last, run, progress).await;
        match outcome {
            Ok(()) => break,
            Err(Raced(e)) if attempt < RACE_ATTEMPTS => {
                tracing::info!(error = %e, stream = target.stream, "the target moved while restoring; looking again");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt as u64)).await;
            }
            Err(Raced(e) | Failed(e)) => return Err(e),
        }
    }
    let restored = restored.ok_or_else(|| BackupError::Refused("nothing was attempted".into()))?;
    if restored.last != target.end {
        return Err(BackupError::Refused(format!(
            "the restore of {} ended at position {} instead of {}",
            target.stream, restored.last, target.end
        )));
    }
    progress(
        target.phase,
        Progress {
            done: target.end,
            total: target.end,
        },
    );
    Ok(restored)
}

/// The target stream holds nothing yet: never written, or moved to start at the backup's first
/// position by an earlier run.
fn untouched(state: &async_nats::jetstream::stream::State, target: &Target<'_>) -> bool {
    state.last_sequence == 0 || (state.messages == 0 && state.last_sequence + 1 == target.first)
}

/// Times a restore looks at the target again after another writer moved it.
const RACE_ATTEMPTS: u32 = 5;

/// Why publishing stopped: the target moved under us (look again), or anything else.
enum PublishStop {
    Raced(BackupError),
    Failed(BackupError),
}
use PublishStop::{Failed, Raced};

/// Publish the backup's positions `after + 1..=end` in order, 256 acks in flight; a gap in the
/// positions is kept with placeholders deleted at once.
async fn publish_from(
    js: &Context,
    stream: &async_nats::jetstream::stream::Stream,
    root: &Path,
    target: &Target<'_>,
    after: u64,
    restored: &mut RestoredStream,
    progress: &mut impl FnMut(&str, Progress),
) -> Result<(), PublishStop> {
    let end = target.end;
    // Records are read on a blocking thread and handed over in order.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Record>(1024);
    let reader = {
        let segments = target.segments.to_vec();
        let root = root.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(), BackupError> {
            for s in segments.iter().filter(|s| s.last > after && s.first <= end) {
                let stop = read_segment(&root, s, |r| {
                    if r.seq > after && r.seq <= end && tx.blocking_send(r).is_err() {
                        return Err(BackupError::Refused("stopped".into()));
                    }
                    Ok(())
                });
                if let Err(BackupError::Refused(_)) = stop {
                    return Ok(());
                }
                stop?;
            }
            Ok(())
        })
    };
    let mut in_flight: VecDeque<(u64, PublishAckFuture)> = VecDeque::new();
    let mut next = after + 1;
    let outcome: Result<(), PublishStop> = async {
        while let Some(record) = rx.recv().await {
            let seq = record.seq;
            if seq > next {
                while !in_flight.is_empty() {
                    settle(&mut in_flight, restored).await?;
                }
                fill_gap(js, stream, next, seq, restored).await?;
            }
            let ack = js
                .send_publish(record.subject.clone(), publication(record))
                .await
                .map_err(|e| Failed(BackupError::nats(e)))?;
            in_flight.push_back((seq, ack));
            next = seq + 1;
            if in_flight.len() >= IN_FLIGHT {
                settle(&mut in_flight, restored).await?;
                progress(
                    target.phase,
                    Progress {
                        done: restored.last,
                        total: end,
                    },
                );
            }
        }
        while !in_flight.is_empty() {
            settle(&mut in_flight, restored).await?;
        }
        Ok(())
    }
    .await;
    drop(rx);
    let read = reader.await.map_err(|e| {
        Failed(BackupError::Refused(format!(
            "reading the backup stopped: {e}"
        )))
    })?;
    outcome?;
    read.map_err(Failed)
}

/// Keep positions `from..to` empty: a placeholder at each, deleted once stored.
async fn fill_gap(
    js: &Context,
    stream: &async_nats::jetstream::stream::Stream,
    from: u64,
    to: u64,
    restored: &mut RestoredStream,
) -> Result<(), PublishStop> {
    for seq in from..to {
        let ack = js
            .send_publish(
                GAP_SUBJECT,
                PublishMessage::build()
                    .payload(bytes::Bytes::new())
                    .expected_last_sequence(seq - 1),
            )
            .await
            .map_err(|e| Failed(BackupError::nats(e)))?;
        let mut one = VecDeque::from([(seq, ack)]);
        settle(&mut one, restored).await?;
        restored.written -= 1;
        stream
            .delete_message(seq)
            .await
            .map_err(|e| Failed(BackupError::nats(e)))?;
    }
    Ok(())
}

/// Await the oldest acknowledgement; it must be for its own position.
async fn settle(
    in_flight: &mut VecDeque<(u64, PublishAckFuture)>,
    restored: &mut RestoredStream,
) -> Result<(), PublishStop> {
    let Some((seq, ack)) = in_flight.pop_front() else {
        return Ok(());
    };
    let ack = ack.await.map_err(|e| {
        let raced = e.kind() == async_nats::jetstream::context::PublishErrorKind::WrongLastSequence;
        let e = BackupError::Nats(format!(
            "position {seq} was not stored: {e} (run the restore again to resume)"
        ));
        if raced {
            Raced(e)
        } else {
            Failed(e)
        }
    })?;
    if ack.sequence != seq || ack.duplicate {
        return Err(Failed(BackupError::Refused(format!(
            "position {seq} was stored at {} (duplicate: {})",
            ack.sequence, ack.duplicate
        ))));
    }
    restored.last = seq;
    restored.written += 1;
    Ok(())
}

/// The last position stored at or before `t`; refused when `t` is outside the backup's times.
async fn position_at(
    dir: &Path,
    manifest: &crate::Manifest,
    t: chrono::DateTime<chrono::Utc>,
) -> Result<u64, BackupError> {
    let t_ns = t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let root = path_of(dir, &manifest.id)?;
    let first = scan(&root, &manifest.segments, |r| Some(r.time_ns)).await?;
    let found = scan(&root, &manifest.segments, move |r| {
        (r.time_ns <= t_ns).then_some(r.seq)
    })
    .await?;
    let when = |ns: i64| chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339();
    match (first, found) {
        (Some(first), None) => Err(BackupError::Refused(format!(
            "--until {} is before the backup's first event ({})",
            t.to_rfc3339(),
            when(first)
        ))),
        (Some(_), Some(seq)) => Ok(seq),
        (None, _) => Err(BackupError::Refused(
            "--until: the backup holds no events".into(),
        )),
    }
}

/// The last `Some` that `pick` returns over the segments' records, read in order (it stops at
/// the first record `pick` passes over after a match when positions are ordered by time).
async fn scan<T: Send + 'static>(
    root: &Path,
    segments: &[Segment],
    pick: impl Fn(&Record) -> Option<T> + Send + 'static,
) -> Result<Option<T>, BackupError> {
    let (root, segments) = (root.to_owned(), segments.to_vec());
    tokio::task::spawn_blocking(move || {
        let mut found = None;
        for s in &segments {
            read_segment(&root, s, |r| {
                if let Some(v) = pick(&r) {
                    found = Some(v);
                }
                Ok(())
            })?;
        }
        Ok::<_, BackupError>(found)
    })
    .await
    .map_err(|e| BackupError::Refused(e.to_string()))?
}

/// The message to publish for `record`: its subject, payload and headers, without the
/// publish-time instructions it was written with (`Nats-Msg-Id`, `Nats-Expected-*`), expecting
/// the stream to end right before it.
fn publication(record: Record) -> PublishMessage {
    let mut publish = PublishMessage::build().payload(record.payload.into());
    for (name, value) in &record.headers {
        if name.eq_ignore_ascii_case("Nats-Msg-Id") || name.starts_with("Nats-Expected") {
            continue;
        }
        publish = publish.header(name.as_str(), value.as_str());
    }
    publish.expected_last_sequence(record.seq - 1)
}

/// The target already holds positions up to `target_last`: that is fine only when they are
/// this backup's (an unfinished restore of it); the last one is compared byte for byte (or, in
/// a gap of the backup, must be a placeholder or deleted).
async fn check_resumable(
    stream: &async_nats::jetstream::stream::Stream,
    root: &Path,
    id: &str,
    target: &Target<'_>,
    target_last: u64,
) -> Result<(), BackupError> {
    let refused = || {
        BackupError::Refused(format!(
            "the target's {} is not empty (up to position {target_last}) and is not an unfinished restore of backup {id}: restore into an empty deployment",
            target.stream
        ))
    };
    if target_last > target.last || target_last < target.first {
        return Err(refused());
    }
    let theirs = stream.get_raw_message(target_last).await;
    let segment = target
        .segments
        .iter()
        .find(|s| (s.first..=s.last).contains(&target_last))
        .cloned();
    let ours = match segment {
        Some(segment) => {
            scan(root, &[segment], move |r| {
                (r.seq == target_last).then(|| r.clone())
            })
            .await?
        }
        None => None,
    };
    match (ours, theirs) {
        (Some(ours), Ok(theirs))
            if ours.subject == theirs.subject.as_str()
                && ours.payload == theirs.payload.as_ref() => {}
        // A gap of the backup: the placeholder a stopped restore left, or its deletion.
        (None, Ok(theirs)) if theirs.subject.as_str() == GAP_SUBJECT => {
            stream
                .delete_message(target_last)
                .await
                .map_err(BackupError::nats)?;
        }
        (None, Err(e))
            if matches!(
                e.kind(),
                async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound
            ) => {}
        _ => return Err(refused()),
    }
    if target_last > target.end {
        return Err(BackupError::Refused(format!(
            "the target already holds positions up to {target_last}, past --until {}",
            target.end
        )));
    }
    Ok(())
}
