//! Telemetry queries over the read models: snapshots, one parameter's samples, latest values,
//! rollups, and `analyze` (recent snapshots judged against the limits in force at their time).

use chrono::{DateTime, Utc};
use mc_domain::telemetry::{evaluate, LimitsHistory, SampleValue, Severity};
use serde_json::Value;
use sqlx::PgPool;

/// Newest first; the keyset cursor is the last row's `(ts, position, idx)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCursor {
    pub ts_us: i64,
    pub position: i64,
    pub idx: i32,
}

impl FrameCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.ts_us, self.position, self.idx)
    }

    /// `None` unless `s` could have come from [`Self::encode`] of a stored row: a timestamp
    /// telemetry accepts (2000-01-01 on, representable), a stream position (from 1) and an
    /// index within one message.
    pub fn decode(s: &str) -> Option<Self> {
        let mut it = s.split('.');
        let c = Self {
            ts_us: it.next()?.parse().ok()?,
            position: it.next()?.parse().ok()?,
            idx: it.next()?.parse().ok()?,
        };
        let plausible = c.ts_us >= crate::wire::EARLIEST_MS * 1000
            && DateTime::<Utc>::from_timestamp_micros(c.ts_us).is_some()
            && c.position >= 1
            && (0..crate::wire::SNAPSHOTS_MAX as i32).contains(&c.idx);
        (it.next().is_none() && plausible).then_some(c)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FrameRow {
    pub spacecraft_id: String,
    pub ts: DateTime<Utc>,
    pub position: i64,
    pub idx: i32,
    /// The whole snapshot's parameters, or one parameter's value.
    pub value: Value,
}

impl FrameRow {
    pub fn cursor(&self) -> FrameCursor {
        FrameCursor {
            ts_us: self.ts.timestamp_micros(),
            position: self.position,
            idx: self.idx,
        }
    }
}

/// Query bounds shared by the list endpoints.
#[derive(Debug, Clone, Default)]
pub struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Snapshots (or, with `parameter`, that parameter's samples) of one spacecraft, newest first.
pub async fn frames(
    pool: &PgPool,
    spacecraft: &str,
    parameter: Option<&str>,
    range: &Range,
    after: Option<FrameCursor>,
    limit: i64,
) -> Result<Vec<FrameRow>, sqlx::Error> {
    let after_ts = after.and_then(|c| DateTime::from_timestamp_micros(c.ts_us));
    sqlx::query_as(
        "SELECT spacecraft_id, ts, position, idx, \
                CASE WHEN $2::text IS NULL THEN parameters ELSE parameters -> $2 END AS value \
         FROM telemetry_frames \
         WHERE spacecraft_id = $1 \
           AND ($2::text IS NULL OR parameters ? $2) \
           AND ($3::timestamptz IS NULL OR ts >= $3) \
           AND ($4::timestamptz IS NULL OR ts < $4) \
           AND ($5::timestamptz IS NULL OR (ts, position, idx) < ($5, $6, $7)) \
         ORDER BY ts DESC, position DESC, idx DESC \
         LIMIT $8",
    )
    .bind(spacecraft)
    .bind(parameter)
    .bind(range.from)
    .bind(range.to)
    .bind(after_ts)
    .bind(after.map_or(0, |c| c.position))
    .bind(after.map_or(0, |c| c.idx))
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LatestRow {
    pub parameter: String,
    pub ts: DateTime<Utc>,
    pub value: Value,
    pub position: i64,
}

pub async fn latest(pool: &PgPool, spacecraft: &str) -> Result<Vec<LatestRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT parameter, ts, value, position FROM telemetry_latest \
         WHERE spacecraft_id = $1 ORDER BY parameter",
    )
    .bind(spacecraft)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RollupRow {
    pub bucket: DateTime<Utc>,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub first: f64,
    pub first_at: DateTime<Utc>,
    pub last: f64,
    pub last_at: DateTime<Utc>,
}

/// Rollups of one parameter at `interval_seconds`, oldest bucket first, after `after`.
pub async fn rollups(
    pool: &PgPool,
    spacecraft: &str,
    parameter: &str,
    interval_seconds: i32,
    range: &Range,
    after: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<RollupRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT bucket, count, sum, min, max, first, first_at, last, last_at FROM telemetry_rollups \
         WHERE spacecraft_id = $1 AND parameter = $2 AND interval_seconds = $3 \
           AND ($4::timestamptz IS NULL OR bucket >= $4) \
           AND ($5::timestamptz IS NULL OR bucket < $5) \
           AND ($6::timestamptz IS NULL OR bucket > $6) \
         ORDER BY bucket LIMIT $7",
    )
    .bind(spacecraft)
    .bind(parameter)
    .bind(interval_seconds)
    .bind(range.from)
    .bind(range.to)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One sample out of limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub timestamp: DateTime<Utc>,
    pub position: i64,
    pub parameter: String,
    pub value: Value,
    pub severity: Severity,
    /// Which limit it broke (`critHigh`, `warnLow`, `allowedValues`) and its threshold.
    pub limit: &'static str,
    pub threshold: Value,
}

/// Judge the last `limit` snapshots of `spacecraft` against the limits in force at each
/// snapshot's time (raw judgement: no persistence or hysteresis). Returns the number of
/// snapshots judged and the violations, newest first.
pub async fn analyze(
    pool: &PgPool,
    spacecraft: &str,
    limit: i64,
) -> Result<(usize, Vec<Violation>), String> {
    let frames = frames(pool, spacecraft, None, &Range::default(), None, limit)
        .await
        .map_err(|e| e.to_string())?;
    let history = crate::load_limits(pool)
        .await?
        .remove(spacecraft)
        .unwrap_or_default();
    Ok((frames.len(), judge(&history, &frames)))
}

fn judge(history: &LimitsHistory, frames: &[FrameRow]) -> Vec<Violation> {
    let mut out = Vec::new();
    for f in frames {
        let Some(config) = history.at(f.ts.timestamp_millis()) else {
            continue;
        };
        let Value::Object(params) = &f.value else {
            continue;
        };
        for (name, limits) in config.parameters() {
            let Some(v) = params.get(name) else { continue };
            let value = match v {
                Value::Number(n) => SampleValue::Number(n.as_f64().unwrap_or(0.0)),
                Value::Bool(b) => SampleValue::Bool(*b),
                Value::String(s) => SampleValue::Text(s),
                _ => continue,
            };
            let Some(severity) = evaluate(limits, value, 0.0) else {
                continue;
            };
            let (limit, threshold) = broken(limits, value, severity);
            out.push(Violation {
                timestamp: f.ts,
                position: f.position,
                parameter: name.clone(),
                value: v.clone(),
                severity,
                limit,
                threshold,
            });
        }
    }
    out
}

fn broken(
    l: &mc_domain::spacecraft::ParameterLimits,
    value: SampleValue<'_>,
    severity: Severity,
) -> (&'static str, Value) {
    let SampleValue::Number(v) = value else {
        return (
            "allowedValues",
            serde_json::to_value(&l.allowed_values).unwrap_or(Value::Null),
        );
    };
    let (low, high, low_name, high_name) = match severity {
        Severity::Critical => (l.crit_low, l.crit_high, "critLow", "critHigh"),
        Severity::Warning => (l.warn_low, l.warn_high, "warnLow", "warnHigh"),
    };
    match (low, high) {
        (Some(lo), _) if v < lo => (low_name, lo.into()),
        (_, Some(hi)) => (high_name, hi.into()),
        _ => (low_name, low.map_or(Value::Null, Into::into)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = FrameCursor {
            ts_us: 1_700_000_000_000_000,
            position: 42,
            idx: 3,
        };
        assert_eq!(FrameCursor::decode(&c.encode()), Some(c));
        assert_eq!(FrameCursor::decode("1.2"), None);
        assert_eq!(FrameCursor::decode("1.2.3.4"), None);
        assert_eq!(FrameCursor::decode("a.b.c"), None);
        // Well-formed but no stored row can have them.
        assert_eq!(FrameCursor::decode("1.2.3"), None);
        assert_eq!(FrameCursor::decode("1700000000000000.0.0"), None);
        assert_eq!(FrameCursor::decode("1700000000000000.1.-1"), None);
        assert_eq!(FrameCursor::decode("9000000000000000000.1.0"), None);
    }
}
