//! `telemetry publish`: synthetic snapshots for N spacecraft x M parameters, paced, with
//! pipelined JetStream acks, progress on stderr and a JSON summary on stdout.

use anyhow::{bail, Context as _};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::{HeaderMap, Subject};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde::Serialize;
use std::future::IntoFuture;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::generator::{encode, Frames, Generator};
use super::{PublishArgs, WireFormat, SNAPSHOTS_MAX};

/// The stream `mission-control serve` creates for telemetry.
const STREAM: &str = mc_eventlog::streams::TELEMETRY;

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

    let client = args
        .nats
        .connect("mission-control telemetry publish")
        .await?;
    let js = async_nats::jetstream::ContextBuilder::new()
        .max_ack_inflight(args.max_in_flight)
        .build(client.clone());
    // A producer's NATS user has no JetStream API (it may only publish its own subjects), so
    // a failed lookup is a warning; a missing stream shows as "no responders" on the first ack.
    if let Err(e) = js.get_stream(STREAM).await {
        tracing::warn!(
            stream = STREAM,
            error = %e,
            "cannot look up the telemetry stream (normal for a producer login; otherwise start \
             `mission-control serve` against this NATS server first, it creates the stream)"
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
