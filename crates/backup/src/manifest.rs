//! A backup on disk: `<dir>/<id>/manifest.json`, its digest `manifest.sha256`, and the
//! segments it lists. Reading, listing and verifying (every byte re-hashed and decoded) are
//! here; nothing in this module writes to NATS.

use crate::segment::{FormatError, Record};
use crate::BackupError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The manifest format this code writes and reads: 1 holds the event log only, 2 adds a
/// range of telemetry (a backup without telemetry is still written as 1, so older builds read it).
pub const FORMAT: u32 = 2;
/// The format of a manifest without telemetry.
pub const FORMAT_EVENTS_ONLY: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_DIGEST: &str = "manifest.sha256";
/// A backup being written lives in `<id>.partial` until its manifest is complete.
pub const PARTIAL_SUFFIX: &str = ".partial";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// `mission-control <version>` that wrote it.
    pub software: String,
    /// The database schema (latest migration) of the writer; a restore refuses a newer one.
    pub schema_version: i64,
    pub stream: StreamInfo,
    /// Positions `first..=last` of the stream (`first` 0 and `last` 0: the stream was empty).
    pub first: u64,
    pub last: u64,
    pub messages: u64,
    pub uncompressed_bytes: u64,
    pub compressed_bytes: u64,
    /// The archive's hash chain head when the backup was taken, if the archive was asked.
    pub archive_head: Option<ArchiveHead>,
    pub segments: Vec<Segment>,
    /// A range of `MC_TELEMETRY`, when the backup was asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryPart>,
}

impl Manifest {
    /// The listing's line of a complete backup.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({"id": self.id, "state": "completed", "createdAt": self.created_at,
            "first": self.first, "last": self.last, "messages": self.messages,
            "telemetryMessages": self.telemetry.as_ref().map_or(0, |t| t.messages),
            "compressedBytes": self.compressed_bytes
                + self.telemetry.as_ref().map_or(0, |t| t.compressed_bytes)})
    }
}

/// The telemetry a backup holds: the messages JetStream stored between `from` and `to` (its
/// own storage times), with their positions. Telemetry positions may have gaps (messages
/// deleted from the live stream); a restore keeps them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelemetryPart {
    pub stream: StreamInfo,
    /// The range asked for (`None`: from the oldest message kept / up to the head).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Positions of the first and last message exported (0 and 0: none in the range).
    pub first: u64,
    pub last: u64,
    pub messages: u64,
    pub uncompressed_bytes: u64,
    pub compressed_bytes: u64,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamInfo {
    pub name: String,
    /// The stream's configuration as JetStream reported it.
    pub config: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveHead {
    pub position: u64,
    /// Hex SHA-256 of the last archived event at or below `position`.
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Segment {
    pub file: String,
    pub first: u64,
    pub last: u64,
    pub messages: u64,
    /// Size of the compressed file.
    pub bytes: u64,
    /// Hex SHA-256 of the compressed file.
    pub sha256: String,
}

/// What `verify` found: a backup that passed every check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub manifest: Manifest,
    pub segments_checked: usize,
    pub messages_checked: u64,
    /// Telemetry messages checked (0 when the backup holds none).
    pub telemetry_messages_checked: u64,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The directory of backup `id` under `dir` (ids are checked: no path tricks).
pub fn path_of(dir: &Path, id: &str) -> Result<PathBuf, BackupError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(BackupError::UnknownBackup(id.chars().take(64).collect()));
    }
    Ok(dir.join(id))
}

/// Read and check the manifest of backup `id`: its digest matches, it parses, and its format
/// and schema are ones this code can restore.
pub fn read(dir: &Path, id: &str, schema_version: i64) -> Result<Manifest, BackupError> {
    let root = path_of(dir, id)?;
    if !root.join(MANIFEST).exists() {
        if dir.join(format!("{id}{PARTIAL_SUFFIX}")).exists() {
            return Err(BackupError::Incomplete(id.to_owned()));
        }
        return Err(BackupError::UnknownBackup(id.to_owned()));
    }
    let bytes = std::fs::read(root.join(MANIFEST))?;
    let recorded = std::fs::read_to_string(root.join(MANIFEST_DIGEST))
        .map_err(|_| BackupError::Corrupt(format!("{MANIFEST_DIGEST} is missing")))?;
    if recorded.trim() != sha256_hex(&bytes) {
        return Err(BackupError::Corrupt(format!(
            "{MANIFEST} does not match {MANIFEST_DIGEST}"
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::Corrupt(format!("{MANIFEST} is not a manifest: {e}")))?;
    if manifest.format > FORMAT {
        return Err(BackupError::Newer(format!(
            "manifest format {} (this build reads {FORMAT})",
            manifest.format
        )));
    }
    if manifest.telemetry.is_some() && manifest.format < FORMAT {
        return Err(BackupError::Corrupt(format!(
            "manifest format {} cannot hold telemetry",
            manifest.format
        )));
    }
    if manifest.schema_version > schema_version {
        return Err(BackupError::Newer(format!(
            "schema version {} (this build has {schema_version})",
            manifest.schema_version
        )));
    }
    if manifest.id != id {
        return Err(BackupError::Corrupt(format!(
            "the manifest names backup {}",
            manifest.id
        )));
    }
    Ok(manifest)
}

/// A listed backup: its manifest, or its id and why it cannot be read.
pub type Listed = Result<Manifest, (String, BackupError)>;

/// The recorded SHA-256 of backup `id`'s manifest (`manifest.sha256`).
pub fn digest(dir: &Path, id: &str) -> Result<String, BackupError> {
    let text = std::fs::read_to_string(path_of(dir, id)?.join(MANIFEST_DIGEST))?;
    Ok(text.trim().to_owned())
}

/// Every complete backup under `dir`, oldest first, and the ids of unfinished ones.
pub fn list(dir: &Path, schema_version: i64) -> Result<(Vec<Listed>, Vec<String>), BackupError> {
    let mut complete = Vec::new();
    let mut partial = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((complete, partial)),
        Err(e) => return Err(e.into()),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        if let Some(id) = name.strip_suffix(PARTIAL_SUFFIX) {
            partial.push(id.to_owned());
        } else if dir.join(&name).join(MANIFEST).exists() {
            complete.push(read(dir, &name, schema_version).map_err(|e| (name.clone(), e)));
        }
    }
    Ok((complete, partial))
}

/// Check everything before trusting a backup: the manifest (as [`read`]), then every segment's
/// size and SHA-256, then every record decoded, in order, with the positions the manifest
/// claims (the event log with no gap). `progress(messages checked, messages in all)`.
pub fn verify(
    dir: &Path,
    id: &str,
    schema_version: i64,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verified, BackupError> {
    let manifest = read(dir, id, schema_version)?;
    let root = path_of(dir, id)?;
    let telemetry = manifest.telemetry.as_ref();
    let all_segments = manifest
        .segments
        .iter()
        .chain(telemetry.iter().flat_map(|t| &t.segments));
    // Sizes and hashes of every file first: a corrupted last segment is found before any
    // record is decoded.
    for s in all_segments {
        let bytes = segment_bytes(&root, s)?;
        if sha256_hex(&bytes) != s.sha256 {
            return Err(BackupError::Corrupt(format!(
                "segment {} does not match its SHA-256",
                s.file
            )));
        }
    }
    let total = manifest.messages + telemetry.map_or(0, |t| t.messages);
    let mut checked = 0u64;
    let mut tick = |checked: u64| {
        if checked.is_multiple_of(10_000) {
            progress(checked, total);
        }
    };
    let events = Range {
        what: "event",
        first: manifest.first,
        last: manifest.last,
        messages: manifest.messages,
        contiguous: true,
    };
    let events_checked = check_range(&root, &manifest.segments, &events, &mut checked, &mut tick)?;
    let telemetry_checked = match telemetry {
        Some(t) => {
            let range = Range {
                what: "telemetry",
                first: t.first,
                last: t.last,
                messages: t.messages,
                contiguous: false,
            };
            check_range(&root, &t.segments, &range, &mut checked, &mut tick)?
        }
        None => 0,
    };
    progress(checked, total);
    Ok(Verified {
        segments_checked: manifest.segments.len() + telemetry.map_or(0, |t| t.segments.len()),
        messages_checked: events_checked,
        telemetry_messages_checked: telemetry_checked,
        manifest,
    })
}

/// What a list of segments claims to hold.
struct Range {
    what: &'static str,
    first: u64,
    last: u64,
    messages: u64,
    /// Every position of `first..=last` present (the event log); otherwise only increasing.
    contiguous: bool,
}

/// Decode every record of `segments`: positions strictly increasing inside each segment's
/// bounds, segments in order, the counts the manifest claims. Returns the records checked.
fn check_range(
    root: &Path,
    segments: &[Segment],
    range: &Range,
    checked: &mut u64,
    tick: &mut impl FnMut(u64),
) -> Result<u64, BackupError> {
    let what = range.what;
    if range.messages == 0 {
        if !segments.is_empty() || range.first != 0 || range.last != 0 {
            return Err(BackupError::Corrupt(format!(
                "no {what} messages listed, yet segments or positions are"
            )));
        }
        return Ok(0);
    }
    if range.first == 0 || range.last < range.first || range.messages > range.last - range.first + 1
    {
        return Err(BackupError::Corrupt(format!(
            "{} {what} messages cannot be positions {}..={}",
            range.messages, range.first, range.last
        )));
    }
    let mut previous = range.first - 1;
    let mut count = 0u64;
    for s in segments {
        let in_order = s.first > previous && s.last >= s.first && s.last <= range.last;
        let sized = if range.contiguous {
            s.first == previous + 1 && s.messages == s.last - s.first + 1
        } else {
            s.messages <= s.last - s.first + 1
        };
        if !in_order || !sized {
            return Err(BackupError::Corrupt(format!(
                "segment {} covers {}..={} ({} messages) after position {previous}",
                s.file, s.first, s.last, s.messages
            )));
        }
        let mut in_segment = 0u64;
        let mut last_seen = None;
        read_segment(root, s, |r| {
            let expected_ok = match last_seen {
                None => r.seq == s.first,
                Some(p) if range.contiguous => r.seq == p + 1,
                Some(p) => r.seq > p,
            };
            if !expected_ok || r.seq > s.last {
                return Err(BackupError::Corrupt(format!(
                    "segment {} holds position {} after {}",
                    s.file,
                    r.seq,
                    last_seen.map_or("its start".to_owned(), |p: u64| p.to_string())
                )));
            }
            last_seen = Some(r.seq);
            in_segment += 1;
            *checked += 1;
            tick(*checked);
            Ok(())
        })?;
        if last_seen != Some(s.last) || in_segment != s.messages {
            return Err(BackupError::Corrupt(format!(
                "segment {} ends at {} with {in_segment} messages instead of {} with {}",
                s.file,
                last_seen.unwrap_or(0),
                s.last,
                s.messages
            )));
        }
        previous = s.last;
        count += in_segment;
    }
    if count != range.messages || previous != range.last {
        return Err(BackupError::Corrupt(format!(
            "{count} {what} messages found up to position {previous}, the manifest lists {} up to {}",
            range.messages, range.last
        )));
    }
    Ok(count)
}

fn segment_bytes(root: &Path, s: &Segment) -> Result<Vec<u8>, BackupError> {
    if s.file.contains(['/', '\\']) || s.file.starts_with('.') {
        return Err(BackupError::Corrupt(format!("segment name {:?}", s.file)));
    }
    let bytes = std::fs::read(root.join(&s.file))
        .map_err(|e| BackupError::Corrupt(format!("segment {}: {e}", s.file)))?;
    if bytes.len() as u64 != s.bytes {
        return Err(BackupError::Corrupt(format!(
            "segment {} is {} bytes, the manifest says {}",
            s.file,
            bytes.len(),
            s.bytes
        )));
    }
    Ok(bytes)
}

/// Decode every record of a segment (already hash-checked by [`verify`]) in order.
pub fn read_segment(
    root: &Path,
    s: &Segment,
    mut each: impl FnMut(Record) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let file = std::fs::File::open(root.join(&s.file))?;
    let mut decoder = zstd::stream::read::Decoder::new(file)
        .map_err(|e| BackupError::Corrupt(format!("segment {}: {e}", s.file)))?;
    loop {
        match Record::read_from(&mut decoder) {
            Ok(Some(r)) => each(r)?,
            Ok(None) => return Ok(()),
            Err(FormatError::Io(e)) => {
                return Err(BackupError::Corrupt(format!("segment {}: {e}", s.file)))
            }
            Err(e) => return Err(BackupError::Corrupt(format!("segment {}: {e}", s.file))),
        }
    }
}
