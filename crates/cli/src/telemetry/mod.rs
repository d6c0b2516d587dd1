//! `mission-control telemetry`: `publish` (a telemetry producer and load generator that
//! publishes synthetic snapshots to `mc.telemetry.<spacecraftId>` on JetStream, paced, with
//! pipelined acks) and `list` / `analyze` (read telemetry back through the HTTP API).
//!
//! The generated data is deterministic: frame `f` of spacecraft `s` always has the timestamp
//! `start + f * 1000 / rate` ms and the same parameter values, so two runs with the same
//! `--start-ms` publish the same snapshots.

mod generator;
mod publish;
mod query;
mod replay;

use crate::api_client::ApiArgs;
use clap::{Args, Subcommand, ValueEnum};

/// Limits of the server's decoder.
const SNAPSHOTS_MAX: usize = mc_telemetry::wire::SNAPSHOTS_MAX;
const PARAMETERS_MAX: usize = mc_telemetry::wire::PARAMETERS_MAX;

#[derive(Subcommand)]
pub enum TelemetryCommand {
    /// Publish synthetic telemetry to `mc.telemetry.<spacecraftId>` (a producer and load
    /// generator): paced at `--rate` frames per second per spacecraft, acks pipelined. Prints a
    /// JSON summary on stdout; exits 1 if any publish failed. The stream MC_TELEMETRY must
    /// exist (`mission-control serve` creates it).
    Publish(PublishArgs),
    /// List a spacecraft's snapshots (or one parameter's samples), newest first.
    List(ListArgs),
    /// Judge a spacecraft's recent snapshots against its limits and list the violations.
    Analyze(AnalyzeArgs),
    /// Replay stored telemetry of a time range through the alarm evaluator with new limits
    /// (or the current ones) and list the alarm transitions they would cause. Side effects
    /// off: no alarm, nothing appended or stored, no relay frame.
    Replay(ReplayArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WireFormat {
    Json,
    Msgpack,
}

#[derive(Args)]
pub struct PublishArgs {
    /// The connection (a producer's NATS user may publish only its own spacecraft).
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    /// How many spacecraft: ids `<prefix>-001` .. `<prefix>-NNN`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    spacecraft: u32,
    /// Prefix of the spacecraft ids.
    #[arg(long, default_value = "SC")]
    spacecraft_prefix: String,
    /// Parameters per snapshot: `p000` .. ; most numeric (a sine wave with noise around a
    /// nominal value), every 10th a mode string or a boolean.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=PARAMETERS_MAX as i64))]
    parameters: u32,
    /// Frames per second per spacecraft.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of telemetry to publish (`rate * duration` frames per spacecraft); 10 unless
    /// `--count` is given.
    #[arg(long, conflicts_with = "count")]
    duration: Option<f64>,
    /// Frames to publish per spacecraft (instead of `--duration`).
    #[arg(long)]
    count: Option<u64>,
    /// Payload encoding (msgpack is sent with `Content-Type: application/msgpack`).
    #[arg(long, value_enum, default_value_t = WireFormat::Json)]
    format: WireFormat,
    /// Snapshots per message (of one spacecraft); more than 1 publishes an array.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Every K-th frame of each spacecraft, p000 jumps far above its limits (1000.0 while
    /// nominal is about 20); 0 = never.
    #[arg(long, default_value_t = 0)]
    anomaly_every: u64,
    /// Timestamp of the first frame, epoch milliseconds (default now).
    #[arg(long)]
    start_ms: Option<i64>,
    /// Publishes awaiting their JetStream ack, at most.
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
}

#[derive(Args)]
pub struct ListArgs {
    /// The spacecraft, e.g. SC-001.
    #[arg(long)]
    spacecraft_id: String,
    /// Only this parameter's samples.
    #[arg(long)]
    parameter: Option<String>,
    /// Rows at most.
    #[arg(long, default_value_t = 10)]
    limit: u64,
    /// From this time on (RFC 3339 or epoch milliseconds).
    #[arg(long)]
    from: Option<String>,
    /// Before this time (RFC 3339 or epoch milliseconds).
    #[arg(long)]
    to: Option<String>,
    /// Continue after a previous page (its `nextCursor`).
    #[arg(long)]
    cursor: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
pub struct AnalyzeArgs {
    /// The spacecraft, e.g. SC-001.
    #[arg(long)]
    spacecraft_id: String,
    /// How many of the newest snapshots to judge.
    #[arg(long, default_value_t = 100)]
    limit: u64,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    /// Only this spacecraft (required with --limits).
    #[arg(long)]
    spacecraft: Option<String>,
    /// Frames stored from this time on (RFC 3339 or epoch milliseconds).
    #[arg(long)]
    from: String,
    /// Frames stored before this time (default now).
    #[arg(long)]
    to: Option<String>,
    /// A JSON file like the body of `PUT /spacecraft/{id}/config` (`{"parameters": {...}}`):
    /// these limits judge the whole range. Without it, the limits configured in the database
    /// (each in force from its effective time) do.
    #[arg(long)]
    limits: Option<std::path::PathBuf>,
    /// Pace: the frames' own pace times this (e.g. 10); default as fast as possible.
    #[arg(long)]
    speed: Option<f64>,
    /// Where the current limits are read when --limits is not given.
    #[arg(long, env = "MC_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// One JSON object per transition instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: TelemetryCommand) -> anyhow::Result<()> {
    match command {
        TelemetryCommand::Publish(args) => publish::publish(args).await,
        TelemetryCommand::List(args) => query::list(args).await,
        TelemetryCommand::Analyze(args) => query::analyze(args).await,
        TelemetryCommand::Replay(args) => replay::replay(args).await,
    }
}
