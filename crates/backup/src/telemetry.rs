//! The telemetry part of a backup: which range of `MC_TELEMETRY` (JetStream store times), where
//! its export starts (read before the events' head) and the export itself, on the one export
//! loop of `create`.

use crate::create::{self, CreateOptions, Exported, Plan};
use crate::manifest::{StreamInfo, TelemetryPart};
use crate::{BackupError, Progress, TELEMETRY_STREAM};
use async_nats::jetstream::{self, consumer, Context};
use std::path::Path;

/// Which telemetry a backup takes: what JetStream stored from `from` to `to` (its own storage
/// times; an open end is the oldest message kept or the head when the backup starts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TelemetryRange {
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

impl TelemetryRange {
    /// Refused when `from` is after `to`.
    pub fn new(
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Self, String> {
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(format!(
                    "the range starts ({}) after it ends ({})",
                    f.to_rfc3339(),
                    t.to_rfc3339()
                ));
            }
        }
        Ok(Self { from, to })
    }

    /// A bound: an RFC 3339 time, or an age before `now` (`90s`, `30m`, `24h`, `7d`).
    pub fn parse_bound(
        s: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<chrono::DateTime<chrono::Utc>, String> {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(t.with_timezone(&chrono::Utc));
        }
        let bad = || format!("{s:?} is neither an RFC 3339 time nor an age like 30m, 24h or 7d");
        let unit = s.chars().last().ok_or_else(bad)?;
        let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        n.checked_mul(seconds)
            .and_then(chrono::Duration::try_seconds)
            .and_then(|age| now.checked_sub_signed(age))
            .filter(|_| n >= 0)
            .ok_or_else(bad)
    }
}

/// Where the telemetry export starts and stops, read before the events' head.
pub(crate) struct TelemetryStart {
    stream: jetstream::stream::Stream,
    config: serde_json::Value,
    range: TelemetryRange,
    /// The head when the backup started (0: nothing to export in the range).
    head: u64,
}

pub(crate) async fn start(
    js: &Context,
    range: &TelemetryRange,
) -> Result<TelemetryStart, BackupError> {
    let mut stream = js
        .get_stream(TELEMETRY_STREAM)
        .await
        .map_err(BackupError::nats)?;
    let info = stream.info().await.map_err(BackupError::nats)?.clone();
    let mut head = info.state.last_sequence;
    if info.state.messages == 0 {
        head = 0;
    } else if let Some(from) = range.from {
        // Nothing stored since `from`: a consumer starting there would wait for the next sample.
        let newest = stream
            .get_raw_message(head)
            .await
            .map_err(BackupError::nats)?;
        if newest.time.unix_timestamp_nanos() < i128::from(from.timestamp_nanos_opt().unwrap_or(0))
        {
            head = 0;
        }
    }
    Ok(TelemetryStart {
        config: serde_json::to_value(&info.config).unwrap_or_default(),
        stream,
        range: *range,
        head,
    })
}

pub(crate) async fn export(
    partial: &Path,
    options: &CreateOptions,
    mut start: TelemetryStart,
    progress: &mut impl FnMut(&str, Progress),
) -> Result<TelemetryPart, BackupError> {
    let range = start.range;
    let exported = if start.head > 0 {
        let plan = Plan {
            dir: partial,
            prefix: "telemetry",
            options,
            start: match range.from {
                Some(from) => consumer::DeliverPolicy::ByStartTime {
                    start_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(
                        from.timestamp_nanos_opt().unwrap_or(0),
                    ))
                    .map_err(|e| BackupError::Refused(e.to_string()))?,
                },
                None => consumer::DeliverPolicy::All,
            },
            head: start.head,
            to_ns: range
                .to
                .map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MAX)),
            contiguous: false,
        };
        // The total is known only as an upper bound: the positions left up to the head.
        let head = start.head;
        create::export(&mut start.stream, &plan, |done| {
            progress(
                "telemetry",
                Progress {
                    done,
                    total: head.max(done),
                },
            )
        })
        .await?
    } else {
        Exported::default()
    };
    progress(
        "telemetry",
        Progress {
            done: exported.messages,
            total: exported.messages,
        },
    );
    Ok(TelemetryPart {
        stream: StreamInfo {
            name: TELEMETRY_STREAM.to_owned(),
            config: start.config,
        },
        from: range.from,
        to: range.to,
        first: exported.first,
        last: exported.last,
        messages: exported.messages,
        uncompressed_bytes: exported.uncompressed,
        compressed_bytes: exported.compressed,
        segments: exported.segments,
    })
}
