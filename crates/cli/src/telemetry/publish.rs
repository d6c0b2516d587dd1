//! `telemetry publish`: synthetic snapshots for N spacecraft x M parameters, paced, with
//! pipelined JetStream acks, progress on stderr and a JSON summary on stdout.

use anyhow::{bail, Context as _};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::{HeaderMap, Subject};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::future::IntoFuture;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{PublishArgs, WireFormat, SNAPSHOTS_MAX};

/// The stream `mission-control serve` creates for telemetry.
const STREAM: &str = mc_eventlog::streams::TELEMETRY;
/// Parameter p000 jumps to this on an anomalous frame (its nominal value is about 20).
const ANOMALY_VALUE: f64 = 1000.0;
/// The value of p000 around which it oscillates.
const P000_NOMINAL: f64 = 20.0;

// ---- publish --------------------------------------------------------------------------------

/// The synthetic telemetry: ids, parameter names and the shape of every parameter, built once;
/// values are computed while serializing, so a frame allocates nothing per sample.
struct Generator {
    ids: Vec<String>,
    names: Vec<String>,
    kinds: Vec<Kind>,
    start_ms: i64,
    step_ms: f64,
    anomaly_every: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    /// `nominal + amplitude * sin(2π t / period + phase) + noise`.
    Wave {
        nominal: f64,
        amplitude: f64,
        period: f64,
        phase: f64,
    },
    /// A mode string, NOMINAL most of the time.
    Mode,
    /// A flag, true most of the time.
    Flag,
}

/// One sample value.
#[derive(Clone, Copy)]
enum Sample {
    Number(f64),
    Text(&'static str),
    Bool(bool),
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Number(v) => s.serialize_f64(v),
            Self::Text(v) => s.serialize_str(v),
            Self::Bool(v) => s.serialize_bool(v),
        }
    }
}

/// splitmix64: a stateless, well-mixed hash for deterministic noise.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix(a ^ mix(b ^ mix(c)))
}

/// A hash as a number in [0, 1).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Generator {
    fn new(args: &PublishArgs, start_ms: i64) -> Self {
        let ids = (1..=args.spacecraft)
            .map(|n| format!("{}-{n:03}", args.spacecraft_prefix))
            .collect();
        let names = (0..args.parameters).map(|i| format!("p{i:03}")).collect();
        let kinds = (0..u64::from(args.parameters))
            .map(|i| match i % 10 {
                9 if (i / 10) % 2 == 0 => Kind::Mode,
                9 => Kind::Flag,
                _ => {
                    let nominal = if i == 0 {
                        P000_NOMINAL
                    } else {
                        5.0 + (mix(i) % 1000) as f64 / 10.0
                    };
                    Kind::Wave {
                        nominal,
                        amplitude: nominal * 0.05 + 0.5,
                        period: 30.0 + (i % 17) as f64 * 10.0,
                        phase: i as f64 * 0.3,
                    }
                }
            })
            .collect();
        Self {
            ids,
            names,
            kinds,
            start_ms,
            step_ms: 1000.0 / args.rate,
            anomaly_every: args.anomaly_every,
        }
    }

    fn timestamp(&self, frame: u64) -> i64 {
        self.start_ms + (frame as f64 * self.step_ms).round() as i64
    }

    fn anomalous(&self, frame: u64) -> bool {
        self.anomaly_every > 0 && (frame + 1).is_multiple_of(self.anomaly_every)
    }

    /// Anomalous frames among `first .. first + n` of one spacecraft.
    fn anomalies(&self, first: u64, n: u64) -> u64 {
        match self.anomaly_every {
            0 => 0,
            k => (first + n) / k - first / k,
        }
    }

    fn value(&self, sc: usize, frame: u64, i: usize) -> Sample {
        if i == 0 && self.anomalous(frame) {
            return Sample::Number(ANOMALY_VALUE);
        }
        match self.kinds[i] {
            Kind::Wave {
                nominal,
                amplitude,
                period,
                phase,
            } => {
                let t = frame as f64 * self.step_ms / 1000.0;
                let angle = std::f64::consts::TAU * t / period + phase + sc as f64 * 0.7;
                let noise = (unit(hash3(sc as u64, i as u64, frame)) - 0.5) * 0.2 * amplitude;
                let v = nominal + amplitude * angle.sin() + noise;
                Sample::Number((v * 1000.0).round() / 1000.0)
            }
            // Modes and flags hold for stretches of 100 frames.
            Kind::Mode => Sample::Text(match hash3(sc as u64, i as u64, frame / 100) % 20 {
                0 => "SAFE",
                1 => "STANDBY",
                _ => "NOMINAL",
            }),
            Kind::Flag => Sample::Bool(!hash3(sc as u64, i as u64, frame / 100).is_multiple_of(50)),
        }
    }
}

/// Frames `first .. first + n` of spacecraft `sc`: one snapshot or an array.
struct Frames<'g> {
    gen: &'g Generator,
    sc: usize,
    first: u64,
    n: u64,
    array: bool,
}

struct Frame<'g> {
    gen: &'g Generator,
    sc: usize,
    frame: u64,
}

struct Parameters<'g>(&'g Frame<'g>);

impl Serialize for Frames<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let frame = |frame| Frame {
            gen: self.gen,
            sc: self.sc,
            frame,
        };
        if !self.array {
            return frame(self.first).serialize(s);
        }
        let mut seq = s.serialize_seq(Some(self.n as usize))?;
        for f in self.first..self.first + self.n {
            seq.serialize_element(&frame(f))?;
        }
        seq.end()
    }
}

impl Serialize for Frame<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("spacecraftId", &self.gen.ids[self.sc])?;
        map.serialize_entry("timestamp", &self.gen.timestamp(self.frame))?;
        map.serialize_entry("parameters", &Parameters(self))?;
        map.end()
    }
}

impl Serialize for Parameters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut map = s.serialize_map(Some(f.gen.names.len()))?;
        for (i, name) in f.gen.names.iter().enumerate() {
            map.serialize_entry(name, &f.gen.value(f.sc, f.frame, i))?;
        }
        map.end()
    }
}

fn encode(buf: &mut Vec<u8>, format: WireFormat, frames: &Frames<'_>) -> anyhow::Result<()> {
    buf.clear();
    match format {
        WireFormat::Json => serde_json::to_writer(&mut *buf, frames).context("encode json")?,
        WireFormat::Msgpack => {
            rmp_serde::encode::write_named(buf, frames).context("encode msgpack")?
        }
    }
    Ok(())
}

/// What a publish run did.
#[derive(Default)]
struct Tally {
    /// Snapshots published (all spacecraft).
    frames: u64,
    samples: u64,
    messages: u64,
    acked: u64,
    failed: u64,
    anomalies: u64,
    first_error: Option<String>,
    max_behind_seconds: f64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
}

impl Tally {
    fn fail(&mut self, e: &PublishError) {
        self.failed += 1;
        if self.failed <= 5 {
            eprintln!("publish failed: {e}");
        }
        self.first_error.get_or_insert_with(|| e.to_string());
    }

    /// Count one ack; a missing stream is fatal (nothing would ever be stored).
    fn ack(&mut self, result: Result<PublishAck, PublishError>) -> anyhow::Result<()> {
        match result {
            Ok(_) => self.acked += 1,
            Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                bail!(no_stream_message())
            }
            Err(e) => self.fail(&e),
        }
        Ok(())
    }
}

fn no_stream_message() -> String {
    format!(
        "no stream {STREAM} takes mc.telemetry.> subjects (no responders): start \
         `mission-control serve` against this NATS server first, it creates the stream"
    )
}

type AckFuture = <async_nats::jetstream::context::PublishAckFuture as IntoFuture>::IntoFuture;

pub(super) async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of frames per second");
    }
    if let Some(d) = args.duration {
        if !(d.is_finite() && d >= 0.0) {
            bail!("--duration must be a non-negative number of seconds");
        }
    }
    if args.batch == 0 || args.batch > SNAPSHOTS_MAX {
        bail!("--batch must be between 1 and {SNAPSHOTS_MAX}");
    }
    if args.max_in_flight == 0 {
        bail!("--max-in-flight must be at least 1");
    }
    let prefix_ok = args
        .spacecraft_prefix
        .starts_with(|c: char| c.is_ascii_alphanumeric())
        && args
            .spacecraft_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !prefix_ok {
        bail!("--spacecraft-prefix must be A-Z a-z 0-9 - _, starting with a letter or digit");
    }
    let start_ms = args
        .start_ms
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let per_spacecraft = match (args.count, args.duration) {
        (Some(c), _) => c,
        (None, d) => (d.unwrap_or(10.0) * args.rate).ceil() as u64,
    };

    let client = async_nats::ConnectOptions::new()
        .name("mission-control telemetry publish")
        .connect(mc_api::nats_addrs(&args.nats_url)?)
        .await
        .context("connect to nats")?;
    let js = async_nats::jetstream::ContextBuilder::new()
        .max_ack_inflight(args.max_in_flight)
        .build(client.clone());
    if let Err(e) = js.get_stream(STREAM).await {
        bail!(
            "cannot find stream {STREAM} on {} ({e}): start `mission-control serve` against \
             this NATS server first, it creates the stream",
            args.nats_url
        );
    }

    let gen = Generator::new(&args, start_ms);
    let subjects: Vec<Subject> = gen
        .ids
        .iter()
        .map(|id| Subject::from(format!("mc.telemetry.{id}")))
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert("Content-Type", "application/msgpack");
    let parameters = gen.names.len() as u64;
    let batch = args.batch as u64;
    let array = args.batch > 1;

    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: stopping, waiting for outstanding acks");
                stop.cancel();
            }
        });
    }

    eprintln!(
        "publishing {per_spacecraft} frames per spacecraft of {} spacecraft x {parameters} \
         parameters at {} frames/s, {}, snapshots per message: {}",
        gen.ids.len(),
        args.rate,
        match args.format {
            WireFormat::Json => "json",
            WireFormat::Msgpack => "msgpack",
        },
        args.batch
    );
    let mut tally = Tally::default();
    let mut acks: FuturesUnordered<AckFuture> = FuturesUnordered::new();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    // One tick per batch of frames (at most one per millisecond; each tick publishes every
    // frame due by then, so high rates are kept up).
    let tick = Duration::from_secs_f64(args.batch as f64 / args.rate).max(Duration::from_millis(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut last_report = (started, 0u64);
    let mut produced = 0u64; // frames per spacecraft
    let mut behind_now: f64;
    // Seconds since the newest frame of the next message fell due (0 while on schedule).
    let lateness = |produced: u64| {
        let newest = (produced + batch).min(per_spacecraft).saturating_sub(1);
        (started.elapsed().as_secs_f64() - newest as f64 / args.rate).max(0.0)
    };

    'run: while produced < per_spacecraft {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break 'run,
            Some(r) = acks.next(), if !acks.is_empty() => {
                tally.ack(r)?;
                continue 'run;
            }
            _ = interval.tick() => {}
        }
        let due =
            ((started.elapsed().as_secs_f64() * args.rate).floor() as u64 + 1).min(per_spacecraft);
        behind_now = lateness(produced);
        while produced < due && (due - produced >= batch || due == per_spacecraft) {
            if stop.is_cancelled() {
                break 'run;
            }
            let n = (due - produced).min(batch);
            behind_now = lateness(produced);
            tally.max_behind_seconds = tally.max_behind_seconds.max(behind_now);
            for (sc, subject) in subjects.iter().enumerate() {
                let frames = Frames {
                    gen: &gen,
                    sc,
                    first: produced,
                    n,
                    array,
                };
                encode(&mut buf, args.format, &frames)?;
                while acks.len() >= args.max_in_flight {
                    match acks.next().await {
                        Some(r) => tally.ack(r)?,
                        None => break,
                    }
                }
                let payload = buf.as_slice().to_vec().into();
                let sent = match args.format {
                    WireFormat::Json => js.publish(subject.clone(), payload).await,
                    WireFormat::Msgpack => {
                        js.publish_with_headers(subject.clone(), headers.clone(), payload)
                            .await
                    }
                };
                match sent {
                    Ok(ack) => {
                        acks.push(ack.into_future());
                        tally.messages += 1;
                        tally.frames += n;
                        tally.samples += n * parameters;
                        tally.anomalies += gen.anomalies(produced, n);
                    }
                    Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                        bail!(no_stream_message())
                    }
                    Err(e) => tally.fail(&e),
                }
            }
            tally.first_ts.get_or_insert(gen.timestamp(produced));
            tally.last_ts = Some(gen.timestamp(produced + n - 1));
            produced += n;
            report(&tally, &mut last_report, behind_now);
        }
        report(&tally, &mut last_report, behind_now);
    }
    // Every ack is awaited, also after Ctrl-C (each is bounded by the ack timeout).
    while let Some(r) = acks.next().await {
        tally.ack(r)?;
        report(&tally, &mut last_report, 0.0);
    }
    client.flush().await.ok();
    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        spacecraft: gen.ids.len(),
        parameters,
        frames: tally.frames,
        samples: tally.samples,
        messages: tally.messages,
        acked: tally.acked,
        failed: tally.failed,
        anomalies: tally.anomalies,
        seconds: (seconds * 1000.0).round() / 1000.0,
        samples_per_second: (tally.samples as f64 / seconds.max(1e-9)).round(),
        first_timestamp_ms: tally.first_ts,
        last_timestamp_ms: tally.last_ts,
        max_behind_seconds: (tally.max_behind_seconds * 1000.0).round() / 1000.0,
        interrupted: stop.is_cancelled(),
    };
    let summary = serde_json::to_string(&summary).context("encode the summary")?;
    println!("{summary}");
    if tally.failed > 0 {
        bail!(
            "{} of {} publishes failed (first: {})",
            tally.failed,
            tally.messages + tally.failed,
            tally.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// The JSON line a publish run ends with (stdout). `frames` counts snapshots of all
/// spacecraft; `acked` and `failed` count messages.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    spacecraft: usize,
    parameters: u64,
    frames: u64,
    samples: u64,
    messages: u64,
    acked: u64,
    failed: u64,
    anomalies: u64,
    seconds: f64,
    samples_per_second: f64,
    first_timestamp_ms: Option<i64>,
    last_timestamp_ms: Option<i64>,
    /// Largest lag behind the `--rate` schedule seen: how long after the newest frame of a
    /// message fell due the message was sent.
    max_behind_seconds: f64,
    /// Stopped early by Ctrl-C.
    interrupted: bool,
}

/// A progress line on stderr at most once a second.
fn report(tally: &Tally, last: &mut (Instant, u64), behind: f64) {
    let elapsed = last.0.elapsed();
    if elapsed < Duration::from_secs(1) {
        return;
    }
    let rate = (tally.samples - last.1) as f64 / elapsed.as_secs_f64();
    let behind = if behind >= 1.0 {
        format!(", behind schedule by {behind:.1} s")
    } else {
        String::new()
    };
    eprintln!(
        "published {} frames, {} samples, acked {}, rate {rate:.0} samples/s{behind}",
        tally.frames, tally.samples, tally.acked
    );
    *last = (Instant::now(), tally.samples);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TelemetryCommand;
    use clap::Parser;
    use serde_json::Value;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        command: TelemetryCommand,
    }

    fn publish_args(extra: &[&str]) -> PublishArgs {
        let mut argv = vec!["t", "publish"];
        argv.extend_from_slice(extra);
        match T::try_parse_from(argv).unwrap().command {
            TelemetryCommand::Publish(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn frames_are_deterministic_and_encode_as_snapshots() {
        let args = publish_args(&["--parameters", "20", "--rate", "4", "--anomaly-every", "3"]);
        let gen = Generator::new(&args, 1_700_000_000_000);
        let frames = Frames {
            gen: &gen,
            sc: 0,
            first: 0,
            n: 3,
            array: true,
        };
        let mut json = Vec::new();
        encode(&mut json, WireFormat::Json, &frames).unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        let items = v.as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["spacecraftId"], "SC-001");
        assert_eq!(items[0]["timestamp"], 1_700_000_000_000i64);
        assert_eq!(items[2]["timestamp"], 1_700_000_000_500i64);
        let p = items[0]["parameters"].as_object().unwrap();
        assert_eq!(p.len(), 20);
        assert!((p["p000"].as_f64().unwrap() - P000_NOMINAL).abs() < 3.0);
        assert!(p["p009"].is_string());
        assert!(p["p019"].is_boolean());
        // The third frame is anomalous.
        assert_eq!(items[2]["parameters"]["p000"], ANOMALY_VALUE);
        assert_eq!(gen.anomalies(0, 3), 1);
        assert_eq!(gen.anomalies(3, 3), 1);
        assert_eq!(gen.anomalies(0, 2), 0);

        // MessagePack: a map with string keys and an integer timestamp, same content.
        let mut mp = Vec::new();
        encode(&mut mp, WireFormat::Msgpack, &frames).unwrap();
        let back: Value = rmp_serde::from_slice(&mp).unwrap();
        assert_eq!(back, v);

        // The same again: deterministic.
        let mut again = Vec::new();
        encode(&mut again, WireFormat::Json, &frames).unwrap();
        assert_eq!(again, json);
    }

    #[test]
    fn single_snapshots_are_not_arrays() {
        let args = publish_args(&["--spacecraft", "12", "--spacecraft-prefix", "X"]);
        let gen = Generator::new(&args, 1_700_000_000_000);
        assert_eq!(gen.ids[11], "X-012");
        let mut json = Vec::new();
        let frames = Frames {
            gen: &gen,
            sc: 11,
            first: 5,
            n: 1,
            array: false,
        };
        encode(&mut json, WireFormat::Json, &frames).unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["spacecraftId"], "X-012");
        assert_eq!(v["timestamp"], 1_700_000_005_000i64);
    }

    #[test]
    fn the_server_decoder_accepts_both_formats() {
        use mc_telemetry::wire::{self, Format};
        let args = publish_args(&["--parameters", "30", "--anomaly-every", "2"]);
        let gen = Generator::new(&args, 1_700_000_000_000);
        for (format, wire_format) in [
            (WireFormat::Json, Format::Json),
            (
                WireFormat::Msgpack,
                Format::from_content_type(Some("application/msgpack")),
            ),
        ] {
            for array in [false, true] {
                let frames = Frames {
                    gen: &gen,
                    sc: 0,
                    first: 0,
                    n: if array { 4 } else { 1 },
                    array,
                };
                let mut buf = Vec::new();
                encode(&mut buf, format, &frames).unwrap();
                let decoded = wire::decode(wire_format, &buf).unwrap();
                assert_eq!(decoded.array, array);
                assert_eq!(decoded.items.len(), frames.n as usize);
                let cx = wire::Context {
                    subject_spacecraft: Some("SC-001"),
                    received_ms: 1_800_000_000_000,
                    max_future_ms: 0,
                };
                for (i, item) in decoded.items.iter().enumerate() {
                    let mut names = Vec::new();
                    let (sc, snapshot) =
                        wire::validate(item, &decoded.prefix(i), &cx, &mut names).unwrap();
                    assert_eq!(sc, "SC-001");
                    assert_eq!(snapshot.timestamp_ms, gen.timestamp(i as u64));
                    assert_eq!(snapshot.samples.len(), 30);
                    assert_eq!(snapshot.samples[0].0, "p000");
                }
            }
        }
    }

    #[test]
    fn duration_and_count_exclude_each_other() {
        assert!(T::try_parse_from(["t", "publish", "--duration", "1", "--count", "2"]).is_err());
    }
}
