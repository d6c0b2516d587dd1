//! The store consumer's sink: validates each snapshot, dead-letters what fails, and writes a
//! batch as one binary COPY of snapshots plus merged rollups and latest values, inside the
//! batch transaction that also moves the checkpoint (so nothing is counted twice).

use crate::copy::{write_params, write_value, CopyWriter};
use crate::dlq::{self, DeadLetter};
use crate::registry::Registry;
use crate::wire::{self, Context as WireContext, Format};
use crate::Message;
use async_nats::jetstream::Context;
use chrono::{DateTime, NaiveDate, Utc};
use mc_domain::telemetry::SampleValue;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Rollup widths in milliseconds and their `interval_seconds`.
pub const INTERVALS: [(i64, i32); 3] = [(1_000, 1), (60_000, 60), (3_600_000, 3_600)];
const DAY_MS: i64 = 86_400_000;
/// Forget per-parameter accumulators beyond this many (bounded memory under junk names).
const ACC_MAX: usize = 200_000;

const SAMPLES: &str = "mc_telemetry_samples_total";
const SAMPLES_HELP: &str = "Telemetry samples (parameter values) stored.";
const FRAMES: &str = "mc_telemetry_snapshots_total";
const FRAMES_HELP: &str = "Telemetry snapshots stored.";

#[derive(Debug, Clone, Copy)]
struct Agg {
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    first: f64,
    first_at: i64,
    last: f64,
    last_at: i64,
}

impl Agg {
    fn new(v: f64, at: i64) -> Self {
        Self {
            count: 1,
            sum: v,
            min: v,
            max: v,
            first: v,
            first_at: at,
            last: v,
            last_at: at,
        }
    }

    fn add(&mut self, v: f64, at: i64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if at < self.first_at {
            self.first = v;
            self.first_at = at;
        }
        // Later arrival wins a tie, as in the database merge.
        if at >= self.last_at {
            self.last = v;
            self.last_at = at;
        }
    }
}

#[derive(Default)]
struct ParamAcc {
    touched: bool,
    latest_at: i64,
    latest_position: i64,
    latest_value: Vec<u8>,
    buckets: [Vec<(i64, Agg)>; 3],
}

/// Accumulates one batch; see the module docs.
pub struct StoreSink {
    js: Context,
    pool: PgPool,
    registry: Registry,
    max_future_ms: i64,
    copy: CopyWriter,
    acc: HashMap<String, HashMap<String, ParamAcc>>,
    /// Days whose partitions this sink has made sure of (epoch days).
    partitions: HashSet<i64>,
    letters: Vec<DeadLetter>,
    samples: u64,
}

impl StoreSink {
    pub fn new(js: Context, pool: PgPool, registry: Registry, max_future_ms: i64) -> Self {
        Self {
            js,
            pool,
            registry,
            max_future_ms,
            copy: CopyWriter::new(),
            acc: HashMap::new(),
            partitions: HashSet::new(),
            letters: Vec::new(),
            samples: 0,
        }
    }

    pub(crate) fn js(&self) -> &Context {
        &self.js
    }

    fn clear(&mut self) {
        self.copy.reset();
        self.letters.clear();
        self.samples = 0;
        if self.acc.values().map(HashMap::len).sum::<usize>() > ACC_MAX {
            self.acc.clear();
        }
        for params in self.acc.values_mut() {
            for a in params.values_mut() {
                a.touched = false;
                for b in &mut a.buckets {
                    b.clear();
                }
            }
        }
    }

    /// Decode and validate `batch`, dead-letter the rejects, make sure the day partitions
    /// exist. Side effects here are idempotent (dead letters carry a `Nats-Msg-Id`).
    pub async fn prepare(&mut self, batch: &[Message]) -> Result<(), String> {
        self.clear();
        let mut days = BTreeSet::new();
        for m in batch {
            self.take(m, &mut days).await?;
        }
        if !self.letters.is_empty() {
            dlq::publish(&self.js, "telemetry", &self.letters).await?;
        }
        for day in days {
            if self.partitions.contains(&day) {
                continue;
            }
            let date = DateTime::from_timestamp_millis(day * DAY_MS)
                .map(|d| d.date_naive())
                .unwrap_or(NaiveDate::MIN);
            sqlx::query("SELECT mc_telemetry_partition($1)")
                .bind(date)
                .execute(&self.pool)
                .await
                .map_err(|e| format!("cannot create the partition for {date}: {e}"))?;
            self.partitions.insert(day);
        }
        Ok(())
    }

    async fn take(&mut self, m: &Message, days: &mut BTreeSet<i64>) -> Result<(), String> {
        let letter = |index: Option<usize>, class: &'static str, reason: String| DeadLetter {
            origin_subject: m.subject.clone(),
            position: m.position,
            index,
            class,
            reason,
            content_type: m.content_type.clone(),
            payload: m.payload.clone(),
        };
        let Some(spacecraft) = crate::subject_spacecraft(&m.subject) else {
            self.letters.push(letter(
                None,
                "invalid",
                format!("subject {} is not mc.telemetry.<spacecraftId>", m.subject),
            ));
            return Ok(());
        };
        let format = Format::from_content_type(m.content_type.as_deref());
        let snapshots = match wire::decode(format, &m.payload) {
            Ok(s) => s,
            Err(reason) => {
                self.letters.push(letter(None, "undecodable", reason));
                return Ok(());
            }
        };
        if !self.registry.admit(spacecraft).await? {
            self.letters.push(letter(
                None,
                "unknown-spacecraft",
                format!("spacecraft {spacecraft} is not registered"),
            ));
            return Ok(());
        }
        let cx = WireContext {
            subject_spacecraft: Some(spacecraft),
            received_ms: m.received_ms,
            max_future_ms: self.max_future_ms,
        };
        let mut names = Vec::new();
        for (i, snapshot) in snapshots.items.iter().enumerate() {
            match wire::validate(snapshot, &snapshots.prefix(i), &cx, &mut names) {
                Ok((sc, s)) => {
                    days.insert(s.timestamp_ms.div_euclid(DAY_MS));
                    self.accumulate(m.position as i64, i as i32, sc, s.timestamp_ms, &s.samples);
                }
                Err(invalid) => self.letters.push(letter(
                    snapshots.array.then_some(i),
                    "invalid",
                    invalid.to_string(),
                )),
            }
        }
        Ok(())
    }

    fn accumulate(
        &mut self,
        position: i64,
        idx: i32,
        spacecraft: &str,
        at: i64,
        samples: &[(&str, SampleValue<'_>)],
    ) {
        let c = &mut self.copy;
        c.begin_row(5);
        c.text(spacecraft);
        c.timestamptz_ms(at);
        c.int8(position);
        c.int4(idx);
        c.jsonb(|b| write_params(b, samples));
        self.samples += samples.len() as u64;
        if !self.acc.contains_key(spacecraft) {
            self.acc.insert(spacecraft.to_owned(), HashMap::new());
        }
        let params = self.acc.get_mut(spacecraft).expect("inserted above");
        for (name, value) in samples {
            if !params.contains_key(*name) {
                params.insert((*name).to_owned(), ParamAcc::default());
            }
            let a = params.get_mut(*name).expect("inserted above");
            if !a.touched || at >= a.latest_at {
                a.touched = true;
                a.latest_at = at;
                a.latest_position = position;
                a.latest_value.clear();
                write_value(&mut a.latest_value, *value);
            }
            let v = match value {
                SampleValue::Number(n) => *n,
                SampleValue::Bool(b) => f64::from(u8::from(*b)),
                SampleValue::Text(_) => continue,
            };
            for (k, (width, _)) in INTERVALS.iter().enumerate() {
                let bucket = at - at.rem_euclid(*width);
                let list = &mut a.buckets[k];
                match list.iter_mut().rev().find(|(b, _)| *b == bucket) {
                    Some((_, agg)) => agg.add(v, at),
                    None => list.push((bucket, Agg::new(v, at))),
                }
            }
        }
    }

    /// Write the prepared batch in the caller's transaction. On failure the partitions this
    /// sink knows are forgotten: retention may have dropped one, and the retry creates it again.
    pub async fn write(&mut self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let written = self.write_batch(tx).await;
        if written.is_err() {
            self.partitions.clear();
        }
        written
    }

    async fn write_batch(&mut self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let frames = self.copy.rows();
        if frames > 0 {
            let mut copy = tx
                .copy_in_raw(
                    "COPY telemetry_frames (spacecraft_id, ts, position, idx, parameters) \
                     FROM STDIN (FORMAT binary)",
                )
                .await?;
            copy.send(self.copy.finish()).await?;
            copy.finish().await?;
        }
        self.write_rollups(tx).await?;
        self.write_latest(tx).await?;
        mc_metrics::count(SAMPLES, SAMPLES_HELP, &[], self.samples);
        mc_metrics::count(FRAMES, FRAMES_HELP, &[], frames as u64);
        Ok(())
    }

    async fn write_rollups(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut cols = RollupColumns::default();
        for (sc, params) in &self.acc {
            for (name, a) in params.iter().filter(|(_, a)| a.touched) {
                for (k, (_, seconds)) in INTERVALS.iter().enumerate() {
                    for (bucket, agg) in &a.buckets[k] {
                        cols.push(sc, name, *seconds, *bucket, agg);
                    }
                }
            }
        }
        if cols.sc.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO telemetry_rollups AS r (spacecraft_id, parameter, interval_seconds, bucket, \
               count, sum, min, max, first, first_at, last, last_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::bigint[], \
               $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::timestamptz[], \
               $11::float8[], $12::timestamptz[]) \
             ON CONFLICT (spacecraft_id, parameter, interval_seconds, bucket) DO UPDATE SET \
               count = r.count + EXCLUDED.count, sum = r.sum + EXCLUDED.sum, \
               min = LEAST(r.min, EXCLUDED.min), max = GREATEST(r.max, EXCLUDED.max), \
               first = CASE WHEN EXCLUDED.first_at < r.first_at THEN EXCLUDED.first ELSE r.first END, \
               first_at = LEAST(r.first_at, EXCLUDED.first_at), \
               last = CASE WHEN EXCLUDED.last_at >= r.last_at THEN EXCLUDED.last ELSE r.last END, \
               last_at = GREATEST(r.last_at, EXCLUDED.last_at)",
        )
        .bind(&cols.sc)
        .bind(&cols.param)
        .bind(&cols.interval)
        .bind(&cols.bucket)
        .bind(&cols.count)
        .bind(&cols.sum)
        .bind(&cols.min)
        .bind(&cols.max)
        .bind(&cols.first)
        .bind(&cols.first_at)
        .bind(&cols.last)
        .bind(&cols.last_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn write_latest(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let (mut sc, mut param, mut at, mut value, mut position) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (s, params) in &self.acc {
            for (name, a) in params.iter().filter(|(_, a)| a.touched) {
                sc.push(s.as_str());
                param.push(name.as_str());
                at.push(ms(a.latest_at));
                value.push(std::str::from_utf8(&a.latest_value).unwrap_or("null"));
                position.push(a.latest_position);
            }
        }
        if sc.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO telemetry_latest AS l (spacecraft_id, parameter, ts, value, position) \
             SELECT s, p, t, v::jsonb, pos FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], \
               $4::text[], $5::bigint[]) AS u(s, p, t, v, pos) \
             ON CONFLICT (spacecraft_id, parameter) DO UPDATE SET \
               ts = EXCLUDED.ts, value = EXCLUDED.value, position = EXCLUDED.position \
             WHERE EXCLUDED.ts >= l.ts",
        )
        .bind(&sc)
        .bind(&param)
        .bind(&at)
        .bind(&value)
        .bind(&position)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

fn ms(at: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at).unwrap_or_default()
}

#[derive(Default)]
struct RollupColumns<'a> {
    sc: Vec<&'a str>,
    param: Vec<&'a str>,
    interval: Vec<i32>,
    bucket: Vec<DateTime<Utc>>,
    count: Vec<i64>,
    sum: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    first: Vec<f64>,
    first_at: Vec<DateTime<Utc>>,
    last: Vec<f64>,
    last_at: Vec<DateTime<Utc>>,
}

impl<'a> RollupColumns<'a> {
    fn push(&mut self, sc: &'a str, param: &'a str, seconds: i32, bucket: i64, a: &Agg) {
        self.sc.push(sc);
        self.param.push(param);
        self.interval.push(seconds);
        self.bucket.push(ms(bucket));
        self.count.push(a.count);
        self.sum.push(a.sum);
        self.min.push(a.min);
        self.max.push(a.max);
        self.first.push(a.first);
        self.first_at.push(ms(a.first_at));
        self.last.push(a.last);
        self.last_at.push(ms(a.last_at));
    }
}
