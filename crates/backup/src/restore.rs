//! Restore a verified backup into a NATS deployment whose `MC_EVENTS` is empty, keeping every
//! position: each message is published with `Nats-Expected-Last-Sequence` = its position − 1,
//! so JetStream itself refuses anything out of place. A restore that stopped (killed, network)
//! is resumed by running it again: the target's last message must be the backup's message at
//! that position, and the restore continues after it.

use crate::manifest::{self, path_of, read_segment, Verified};
use crate::segment::Record;
use crate::{BackupError, Progress, EVENTS_STREAM};
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
}

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
    streams::provision(js, &options.provision)
        .await
        .map_err(BackupError::nats)?;
    let root = path_of(dir, id)?;
    let mut restored: Option<Restored> = None;
    // A publish refused for a wrong last sequence means someone else wrote meanwhile: most
    // likely the publishes a killed earlier run left on the wire. Look again: if what landed
    // is this backup's, go on after it.
    for attempt in 1..=RACE_ATTEMPTS {
        let mut stream = js
            .get_stream(EVENTS_STREAM)
            .await
            .map_err(BackupError::nats)?;
        let target_last = stream
            .info()
            .await
            .map_err(BackupError::nats)?
            .state
            .last_sequence;
        if target_last > 0 {
            check_resumable(&stream, &root, &manifest, target_last, end).await?;
        }
        let run = restored.get_or_insert(Restored {
            id: id.to_owned(),
            last: target_last,
            written: 0,
            resumed_after: target_last,
        });
        run.last = target_last;
        if run.written == 0 {
            run.resumed_after = target_last;
        }
        if target_last >= end {
            break;
        }
        match publish_from(js, &root, &manifest, target_last, end, run, &mut progress).await {
            Ok(()) => break,
            Err(Raced(e)) if attempt < RACE_ATTEMPTS => {
                tracing::info!(error = %e, "the target moved while restoring; looking again");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt as u64)).await;
            }
            Err(Raced(e) | Failed(e)) => return Err(e),
        }
    }
    let restored = restored.ok_or_else(|| BackupError::Refused("nothing was attempted".into()))?;
    if restored.last != end {
        return Err(BackupError::Refused(format!(
            "the restore ended at position {} instead of {end}",
            restored.last
        )));
    }
    progress(
        "restore",
        Progress {
            done: end,
            total: end,
        },
    );
    Ok(restored)
}

/// Times a restore looks at the target again after another writer moved it.
const RACE_ATTEMPTS: u32 = 5;

/// Why publishing stopped: the target moved under us (look again), or anything else.
enum PublishStop {
    Raced(BackupError),
    Failed(BackupError),
}
use PublishStop::{Failed, Raced};

/// Publish the backup's positions `after + 1..=end` in order, 256 acks in flight.
async fn publish_from(
    js: &Context,
    root: &Path,
    manifest: &crate::Manifest,
    after: u64,
    end: u64,
    restored: &mut Restored,
    progress: &mut impl FnMut(&str, Progress),
) -> Result<(), PublishStop> {
    // Records are read on a blocking thread and handed over in order.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Record>(1024);
    let reader = {
        let segments = manifest.segments.clone();
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
    let outcome: Result<(), PublishStop> = async {
        while let Some(record) = rx.recv().await {
            let seq = record.seq;
            let ack = js
                .send_publish(record.subject.clone(), publication(record))
                .await
                .map_err(|e| Failed(BackupError::nats(e)))?;
            in_flight.push_back((seq, ack));
            if in_flight.len() >= IN_FLIGHT {
                settle(&mut in_flight, restored).await?;
                progress(
                    "restore",
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

/// Await the oldest acknowledgement; it must be for its own position.
async fn settle(
    in_flight: &mut VecDeque<(u64, PublishAckFuture)>,
    restored: &mut Restored,
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
    let segments = manifest.segments.clone();
    let (first, found) = tokio::task::spawn_blocking(move || {
        let (mut first, mut found) = (None, None);
        for s in &segments {
            read_segment(&root, s, |r| {
                first.get_or_insert(r.time_ns);
                if r.time_ns <= t_ns {
                    found = Some((r.seq, r.time_ns));
                }
                Ok(())
            })?;
        }
        Ok::<_, BackupError>((first, found))
    })
    .await
    .map_err(|e| BackupError::Refused(e.to_string()))??;
    let when = |ns: i64| chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339();
    match (first, found) {
        (Some(first), None) => Err(BackupError::Refused(format!(
            "--until {} is before the backup's first event ({})",
            t.to_rfc3339(),
            when(first)
        ))),
        (Some(_), Some((seq, _))) => Ok(seq),
        (None, _) => Err(BackupError::Refused(
            "--until: the backup holds no events".into(),
        )),
    }
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

/// The target already holds positions `1..=target_last`: that is fine only when they are this
/// backup's (an unfinished restore of it); the last one is compared byte for byte.
async fn check_resumable(
    stream: &async_nats::jetstream::stream::Stream,
    root: &Path,
    manifest: &crate::Manifest,
    target_last: u64,
    end: u64,
) -> Result<(), BackupError> {
    let refused = || {
        BackupError::Refused(format!(
            "the target's {EVENTS_STREAM} is not empty ({target_last} messages) and is not an unfinished restore of backup {}: restore into an empty deployment",
            manifest.id
        ))
    };
    if target_last > manifest.last {
        return Err(refused());
    }
    let theirs = stream
        .get_raw_message(target_last)
        .await
        .map_err(BackupError::nats)?;
    let segment = manifest
        .segments
        .iter()
        .find(|s| (s.first..=s.last).contains(&target_last))
        .ok_or_else(refused)?
        .clone();
    let root = root.to_owned();
    let ours = tokio::task::spawn_blocking(move || {
        let mut found = None;
        read_segment(&root, &segment, |r| {
            if r.seq == target_last {
                found = Some(r);
            }
            Ok(())
        })
        .map(|()| found)
    })
    .await
    .map_err(|e| BackupError::Refused(e.to_string()))??
    .ok_or_else(refused)?;
    if ours.subject != theirs.subject.as_str() || ours.payload != theirs.payload.as_ref() {
        return Err(refused());
    }
    if target_last > end {
        return Err(BackupError::Refused(format!(
            "the target already holds positions up to {target_last}, past --until {end}"
        )));
    }
    Ok(())
}
