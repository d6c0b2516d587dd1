//! Export `MC_EVENTS` positions `1..=head` (the head read when the backup starts, so the range
//! is consistent whatever is appended meanwhile) and, when asked, a time range of
//! `MC_TELEMETRY` into segments, then the manifest.

use crate::manifest::{
    self, sha256_hex, ArchiveHead, Manifest, Segment, StreamInfo, MANIFEST, MANIFEST_DIGEST,
    PARTIAL_SUFFIX,
};
use crate::segment::Record;
use crate::telemetry::{self, TelemetryRange};
use crate::{BackupError, Progress, EVENTS_STREAM};
use async_nats::jetstream::{self, consumer, Context};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a backup is written.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Messages per segment at most.
    pub segment_messages: u64,
    /// Uncompressed bytes per segment at most (a segment ends after the message crossing it).
    pub segment_bytes: u64,
    /// zstd level (1..=19; 3 is zstd's default).
    pub level: i32,
    /// The writer's schema version (latest migration), recorded in the manifest.
    pub schema_version: i64,
    /// `mission-control <version>`.
    pub software: String,
    /// The new backup's id (default: a fresh one, see [`new_id`]).
    pub id: Option<String>,
    /// Also back up this range of `MC_TELEMETRY`.
    pub telemetry: Option<TelemetryRange>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            segment_messages: 100_000,
            segment_bytes: 64 * 1024 * 1024,
            level: 3,
            schema_version: 0,
            software: String::new(),
            id: None,
            telemetry: None,
        }
    }
}

/// An exported backup whose manifest is not written yet: [`Draft::finish`] adds the archive's
/// head (looked up by the caller at [`Draft::last`]) and makes it a backup.
#[derive(Debug)]
pub struct Draft {
    dir: PathBuf,
    manifest: Manifest,
}

impl Draft {
    /// The last position exported (0: the stream was empty).
    pub fn last(&self) -> u64 {
        self.manifest.last
    }

    /// Write the manifest and its digest, then rename `<id>.partial` to `<id>`.
    pub fn finish(mut self, archive_head: Option<ArchiveHead>) -> Result<Manifest, BackupError> {
        self.manifest.archive_head = archive_head;
        let partial = self
            .dir
            .join(format!("{}{PARTIAL_SUFFIX}", self.manifest.id));
        let bytes = serde_json::to_vec_pretty(&self.manifest)
            .map_err(|e| BackupError::Corrupt(e.to_string()))?;
        write_synced(&partial.join(MANIFEST), &bytes)?;
        write_synced(
            &partial.join(MANIFEST_DIGEST),
            sha256_hex(&bytes).as_bytes(),
        )?;
        std::fs::rename(&partial, self.dir.join(&self.manifest.id))?;
        sync_dir(&self.dir)?;
        Ok(self.manifest)
    }
}

/// Export every message of `MC_EVENTS` up to its head now (and the telemetry asked for) into
/// `dir/<new id>.partial`. `progress(phase, …)`: phase `events`, then `telemetry`.
pub async fn create(
    js: &Context,
    dir: &Path,
    options: &CreateOptions,
    mut progress: impl FnMut(&str, Progress),
) -> Result<Draft, BackupError> {
    // Telemetry's head is read first: alarms the anomaly processor derives from it are then
    // more likely to be inside the events' range.
    let telemetry = match &options.telemetry {
        Some(range) => Some(telemetry::start(js, range).await?),
        None => None,
    };
    let mut stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(BackupError::nats)?;
    let info = stream.info().await.map_err(BackupError::nats)?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let config = serde_json::to_value(&info.config).unwrap_or_default();
    let id = match &options.id {
        Some(id) => {
            manifest::path_of(dir, id)?;
            id.clone()
        }
        None => new_id(),
    };
    std::fs::create_dir_all(dir)?;
    let partial = dir.join(format!("{id}{PARTIAL_SUFFIX}"));
    std::fs::create_dir(&partial)?;
    let messages = if last == 0 { 0 } else { last - first + 1 };
    progress(
        "events",
        Progress {
            done: 0,
            total: messages,
        },
    );
    let exported = if messages > 0 {
        let plan = Plan {
            dir: &partial,
            prefix: "events",
            options,
            start: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: first,
            },
            head: last,
            to_ns: None,
            contiguous: true,
        };
        export(&mut stream, &plan, |done| {
            progress(
                "events",
                Progress {
                    done,
                    total: messages,
                },
            )
        })
        .await?
    } else {
        Exported::default()
    };
    if exported.messages != messages || (messages > 0 && exported.first != first) {
        return Err(BackupError::Nats(format!(
            "{} events exported from position {} where {messages} from {first} were expected",
            exported.messages, exported.first
        )));
    }
    progress(
        "events",
        Progress {
            done: messages,
            total: messages,
        },
    );
    let telemetry = match telemetry {
        Some(start) => Some(telemetry::export(&partial, options, start, &mut progress).await?),
        None => None,
    };
    let manifest = Manifest {
        format: if telemetry.is_some() {
            manifest::FORMAT
        } else {
            manifest::FORMAT_EVENTS_ONLY
        },
        id,
        created_at: chrono::Utc::now(),
        software: options.software.clone(),
        schema_version: options.schema_version,
        stream: StreamInfo {
            name: EVENTS_STREAM.to_owned(),
            config,
        },
        first: if last == 0 { 0 } else { first },
        last,
        messages,
        uncompressed_bytes: exported.uncompressed,
        compressed_bytes: exported.compressed,
        archive_head: None,
        segments: exported.segments,
        telemetry,
    };
    Ok(Draft {
        dir: dir.to_owned(),
        manifest,
    })
}

/// What one stream's export reads and where it writes.
pub(crate) struct Plan<'a> {
    pub dir: &'a Path,
    /// Segment files are `<prefix>-000001.zst`, ….
    pub prefix: &'a str,
    pub options: &'a CreateOptions,
    pub start: consumer::DeliverPolicy,
    /// Stop after this position (read when the backup started).
    pub head: u64,
    /// Stop before the first message stored after this time.
    pub to_ns: Option<i64>,
    /// Every position must follow the one before (the event log).
    pub contiguous: bool,
}

#[derive(Default)]
pub(crate) struct Exported {
    pub first: u64,
    pub last: u64,
    pub messages: u64,
    pub uncompressed: u64,
    pub compressed: u64,
    pub segments: Vec<Segment>,
}

/// Read the stream from `plan.start` up to `plan.head` (or `plan.to_ns`) with an ordered
/// consumer into segments. `progress(messages exported)` every 1,000.
pub(crate) async fn export(
    stream: &mut jetstream::stream::Stream,
    plan: &Plan<'_>,
    mut progress: impl FnMut(u64),
) -> Result<Exported, BackupError> {
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: plan.start,
            ..Default::default()
        })
        .await
        .map_err(BackupError::nats)?;
    let mut messages_in = consumer.messages().await.map_err(BackupError::nats)?;
    let mut out = Exported::default();
    let mut writer: Option<SegmentWriter> = None;
    let mut previous: Option<u64> = None;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), messages_in.next()).await;
        let message = match next {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(BackupError::nats(e)),
            Ok(None) => return Err(BackupError::Nats("the consumer ended early".into())),
            Err(_) => {
                return Err(BackupError::Nats(format!(
                    "no message for 30 s after position {} (head {})",
                    previous.unwrap_or(0),
                    plan.head
                )))
            }
        };
        let record = record_of(&message)?;
        if record.seq > plan.head || plan.to_ns.is_some_and(|to| record.time_ns > to) {
            break;
        }
        let in_place = match previous {
            Some(p) if plan.contiguous => record.seq == p + 1,
            Some(p) => record.seq > p,
            None => true,
        };
        if !in_place {
            return Err(BackupError::Nats(format!(
                "position {} arrived after {}",
                record.seq,
                previous.unwrap_or(0)
            )));
        }
        let seq = record.seq;
        let w = match &mut writer {
            Some(w) => w,
            None => writer.insert(SegmentWriter::new(
                plan.dir,
                plan.prefix,
                out.segments.len() + 1,
                seq,
                plan.options.level,
            )?),
        };
        w.push(&record)?;
        if out.messages == 0 {
            out.first = seq;
        }
        out.last = seq;
        out.messages += 1;
        previous = Some(seq);
        let full = w.messages >= plan.options.segment_messages
            || w.uncompressed >= plan.options.segment_bytes;
        if full {
            if let Some(w) = writer.take() {
                out.close(w)?;
            }
        }
        if out.messages.is_multiple_of(1_000) {
            progress(out.messages);
        }
        if seq >= plan.head {
            break;
        }
    }
    if let Some(w) = writer.take() {
        out.close(w)?;
    }
    Ok(out)
}

impl Exported {
    fn close(&mut self, w: SegmentWriter) -> Result<(), BackupError> {
        let (segment, raw) = w.finish()?;
        self.uncompressed += raw;
        self.compressed += segment.bytes;
        self.segments.push(segment);
        Ok(())
    }
}

/// A sortable, unique id: `<UTC time>-<random>`.
pub fn new_id() -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!("{now}-{}", &random[random.len() - 8..])
}

fn record_of(message: &jetstream::Message) -> Result<Record, BackupError> {
    let info = message.info().map_err(BackupError::nats)?;
    let headers = message
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string(), v.as_str().to_owned()))
        })
        .collect();
    Ok(Record {
        seq: info.stream_sequence,
        time_ns: i64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(i64::MAX),
        subject: message.subject.to_string(),
        headers,
        payload: message.payload.to_vec(),
    })
}

/// A segment being written: zstd over a writer that hashes and counts the compressed bytes.
struct SegmentWriter {
    file: String,
    path: PathBuf,
    encoder: zstd::stream::write::Encoder<'static, Hashing<BufWriter<std::fs::File>>>,
    first: u64,
    last: u64,
    messages: u64,
    uncompressed: u64,
}

impl SegmentWriter {
    fn new(
        dir: &Path,
        prefix: &str,
        number: usize,
        first: u64,
        level: i32,
    ) -> Result<Self, BackupError> {
        let file = format!("{prefix}-{number:06}.zst");
        let path = dir.join(&file);
        let out = Hashing {
            inner: BufWriter::new(std::fs::File::create(&path)?),
            hasher: Sha256::new(),
            bytes: 0,
        };
        Ok(Self {
            file,
            path,
            encoder: zstd::stream::write::Encoder::new(out, level)?,
            first,
            last: first,
            messages: 0,
            uncompressed: 0,
        })
    }

    fn push(&mut self, record: &Record) -> Result<(), BackupError> {
        let mut buf = Vec::with_capacity(record.payload.len() + 128);
        record.write_to(&mut buf)?;
        self.encoder.write_all(&buf)?;
        self.uncompressed += buf.len() as u64;
        self.last = record.seq;
        self.messages += 1;
        Ok(())
    }

    /// Close the zstd frame, flush and fsync the file; the segment and its uncompressed size.
    fn finish(self) -> Result<(Segment, u64), BackupError> {
        let hashing = self.encoder.finish()?;
        let file = hashing
            .inner
            .into_inner()
            .map_err(|e| BackupError::Io(e.into_error()))?;
        file.sync_all()?;
        let segment = Segment {
            file: self.file,
            first: self.first,
            last: self.last,
            messages: self.messages,
            bytes: hashing.bytes,
            sha256: hex::encode(hashing.hasher.finalize()),
        };
        tracing::debug!(path = %self.path.display(), messages = segment.messages, "segment written");
        Ok((segment, self.uncompressed))
    }
}

struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Delete complete backups beyond the newest `keep` and those older than `max_age` (never the
/// newest one). Returns the ids removed.
pub fn prune(
    dir: &Path,
    keep: Option<usize>,
    max_age: Option<chrono::Duration>,
) -> Result<Vec<String>, BackupError> {
    // Any schema version: pruning reads only ids and times.
    let (complete, _) = manifest::list(dir, i64::MAX)?;
    let mut backups: Vec<Manifest> = complete.into_iter().filter_map(Result::ok).collect();
    backups.sort_by_key(|m| std::cmp::Reverse(m.created_at));
    let now = chrono::Utc::now();
    let mut removed = Vec::new();
    for (i, m) in backups.iter().enumerate().skip(1) {
        let too_many = keep.is_some_and(|k| i >= k);
        let too_old = max_age.is_some_and(|age| now - m.created_at > age);
        if too_many || too_old {
            std::fs::remove_dir_all(dir.join(&m.id))?;
            removed.push(m.id.clone());
        }
    }
    Ok(removed)
}
