//! Command-line interface: `serve` (API + projectors, the default way to run it) and
//! `migrate`. Every flag also reads an `MC_*` environment variable.

use anyhow::Context as _;
// Boolean settings read from the environment go through `BoolishValueParser` (1/0, true/false,
// yes/no, on/off); a test below checks every one.
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use mc_api::{Application, Config};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "mission-control",
    version,
    about = "Event-sourced mission operations backend"
)]
struct Cli {
    /// Log filter (tracing env-filter syntax), e.g. `info` or `mc_api=debug,info`. Default:
    /// `info`, or `warn` for the `telemetry` commands (their output is the point).
    #[arg(long, env = "MC_LOG", global = true)]
    log: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "MC_LOG_FORMAT", default_value = "text", global = true)]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API, the NATS command service and the projectors in one process.
    Serve(ServeArgs),
    /// Run only the projectors and process managers (scale them apart from the API; pair with
    /// `serve --no-projectors`). Serves /health and /metrics on MC_HTTP_ADDR.
    Project(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(DbArgs),
    /// Audit the event archive.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage projections.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Benchmark helpers.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Telemetry: publish synthetic snapshots (producer and load generator), list, analyze.
    Telemetry {
        #[command(subcommand)]
        command: crate::telemetry::TelemetryCommand,
    },
    /// API tokens: create (prints the secret once), list, revoke.
    #[command(subcommand)]
    Tokens(crate::tokens::TokensCommand),
    /// The audit trail: query archived events by aggregate, actor, type, time or position.
    #[command(subcommand)]
    Events(crate::events::EventsCommand),
    /// Backups of the event log: create, list, verify, restore.
    #[command(subcommand)]
    Backup(crate::backup::BackupCommand),
    /// The provider price table LLM steps are priced with.
    #[command(subcommand)]
    Pricing(crate::pricing::PricingCommand),
    /// Print the permission table (the least role of every route and NATS command) as
    /// Markdown; docs/permissions.md is this output.
    Permissions,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Many WebSocket clients on `missions` against a running server: delivered frames/s,
    /// latency from commit to receipt, server memory (scripts/bench/fanout.sh runs it).
    Fanout(crate::fanout::FanoutArgs),
    /// A fleet of agents beating over NATS against a running server: heartbeats/s absorbed,
    /// reply latency, events appended (scripts/bench/heartbeats.sh runs it).
    Heartbeats(crate::heartbeats::HeartbeatArgs),
    /// Append synthetic agent registrations straight to MC_EVENTS (for rebuild and projection
    /// benchmarks; never against a production log).
    Seed {
        /// How many events to append.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        #[command(flatten)]
        nats: crate::nats::NatsArgs,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Rebuild a projection blue/green: build it from position 0 into shadow tables while the
    /// live version keeps serving, then swap in one transaction. Resumes an interrupted rebuild.
    Rebuild(RebuildArgs),
}

#[derive(Args)]
struct RebuildArgs {
    /// Projection name (see GET /api/v1/projections): agents, missions, comments,
    /// agent-status-manager.
    name: String,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the archive's hash chain; exit 1 and name the first broken position if it
    /// does not hold.
    Verify(DbArgs),
}

#[derive(Args)]
struct DbArgs {
    /// PostgreSQL connection URL.
    /// (Its value is never printed by `--help`: it may hold a password.)
    #[arg(
        long,
        env = "MC_DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/mission_control"
    )]
    database_url: String,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    #[command(flatten)]
    auth: crate::auth_args::AuthArgs,
    #[command(flatten)]
    backups: crate::backup::ServeBackupArgs,
    /// Address the HTTP API listens on.
    #[arg(long, env = "MC_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// A PostgreSQL login that owns the schema (in `mc_migrator`): migrations at start and the
    /// DDL of blue/green rebuilds go through it, so `MC_DATABASE_URL` can be an `mc_app` login
    /// without DDL rights. Unset: `MC_DATABASE_URL` does both.
    #[arg(long, env = "MC_MIGRATOR_DATABASE_URL", hide_env_values = true)]
    migrator_database_url: Option<String>,
    /// A client must send a request's whole head within this many ms, else it is disconnected.
    #[arg(long, env = "MC_HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    http_header_timeout_ms: u64,
    /// A client must send a request's whole body within this many ms of its head, else 408.
    #[arg(long, env = "MC_HTTP_BODY_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    http_body_timeout_ms: u64,
    /// HTTP connections open at once; past it new connections wait in the listen backlog.
    #[arg(long, env = "MC_HTTP_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    http_max_connections: u64,
    /// JetStream replicas for the streams: 1 on a single node, 3 in a cluster.
    #[arg(long, env = "MC_STREAM_REPLICAS", default_value_t = 1)]
    stream_replicas: usize,
    /// How long MC_TELEMETRY keeps samples, in hours.
    #[arg(long, env = "MC_TELEMETRY_MAX_AGE_HOURS", default_value_t = 168)]
    telemetry_max_age_hours: u64,
    /// Longest wait, in milliseconds, of a query with `minPosition` before it answers stale.
    #[arg(long, env = "MC_READ_WAIT_MS", default_value_t = 2000)]
    read_wait_ms: u64,
    /// Do not run projectors in this process (run them elsewhere).
    #[arg(long, env = "MC_NO_PROJECTORS", value_parser = BoolishValueParser::new())]
    no_projectors: bool,
    /// Do not apply migrations at start (when serving as the `mc_app` role); wait until
    /// `mission-control migrate` has applied them.
    #[arg(long, env = "MC_NO_MIGRATE", value_parser = BoolishValueParser::new())]
    no_migrate: bool,
    /// Projections (comma-separated names) that record and skip events they cannot apply
    /// instead of stopping.
    #[arg(long, env = "MC_SKIP_POISON", value_delimiter = ',')]
    skip_poison: Vec<String>,
    /// `/health/ready` fails while any projection lags more than this many events.
    #[arg(long, env = "MC_READY_MAX_LAG")]
    ready_max_lag: Option<u64>,
    /// `/health/ready` fails while a projection or telemetry consumer has had messages waiting
    /// longer than this many seconds and has not advanced for as long (stuck, not only slow).
    #[arg(long, env = "MC_READY_STALL_SECONDS", default_value_t = 60)]
    ready_stall_seconds: u64,
    /// An agent with neither a heartbeat nor any activity for this many seconds is marked
    /// OFFLINE (an event); its next heartbeat brings it back.
    #[arg(long, env = "MC_AGENT_OFFLINE_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    agent_offline_seconds: u64,
    /// How often the liveness sweeper looks for silent agents.
    #[arg(long, env = "MC_AGENT_SWEEP_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    agent_sweep_seconds: u64,
    /// Open MCT's `dist` directory (`scripts/openmct.sh` fetches it), served under
    /// `/openmct/lib/` for the Open MCT page at `/openmct/`.
    #[arg(long, env = "MC_OPENMCT_DIR")]
    openmct_dir: Option<std::path::PathBuf>,
    /// Telemetry from a spacecraft nobody registered: `register` it (name = id) or `reject`
    /// it (to the dead-letter stream over NATS, 422 over HTTP).
    #[arg(long, env = "MC_TELEMETRY_UNKNOWN_SPACECRAFT", default_value = "register", value_parser = mc_telemetry::UnknownSpacecraft::parse)]
    telemetry_unknown_spacecraft: mc_telemetry::UnknownSpacecraft,
    /// How far past its receive time a sample's timestamp may be before it is refused.
    #[arg(long, env = "MC_TELEMETRY_MAX_FUTURE_SECONDS", default_value_t = 300)]
    telemetry_max_future_seconds: u32,
    /// How long the telemetry store gathers a batch (ms): longer costs Postgres less per sample,
    /// shorter makes stored telemetry queryable sooner.
    #[arg(long, env = "MC_TELEMETRY_STORE_WINDOW_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    telemetry_store_window_ms: u64,
    /// Whole days of raw telemetry and 1 s rollups kept in Postgres before today (UTC); older
    /// day partitions are dropped hourly. 0 keeps everything. 1 min and 1 h rollups are kept.
    #[arg(long, env = "MC_TELEMETRY_RETENTION_DAYS", default_value_t = 0)]
    telemetry_retention_days: u32,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = match cli.command {
        Command::Telemetry { .. }
        | Command::Events(_)
        | Command::Backup(_)
        | Command::Pricing(_) => "warn",
        _ => "info",
    };
    init_tracing(cli.log.as_deref().unwrap_or(default_log), &cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args, true).await,
            Command::Project(args) => serve(args, false).await,
            Command::Migrate(args) => migrate(args).await,
            Command::Audit(AuditCommand::Verify(args)) => audit_verify(args).await,
            Command::Projections(ProjectionsCommand::Rebuild(args)) => rebuild(args).await,
            Command::Bench(BenchCommand::Fanout(args)) => crate::fanout::run(args).await,
            Command::Bench(BenchCommand::Heartbeats(args)) => crate::heartbeats::run(args).await,
            Command::Bench(BenchCommand::Seed { events, nats }) => {
                crate::bench::seed(&nats, events).await
            }
            Command::Telemetry { command } => crate::telemetry::run(command).await,
            Command::Tokens(command) => crate::tokens::run(command).await,
            Command::Events(command) => crate::events::run(command).await,
            Command::Backup(command) => crate::backup::run(command).await,
            Command::Pricing(command) => crate::pricing::run(command).await,
            Command::Permissions => {
                print!("{}", mc_auth::table::markdown());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "fatal");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `serve` (`api` true) or `project` (projectors only; health and metrics over HTTP).
async fn serve(args: ServeArgs, api: bool) -> anyhow::Result<()> {
    let config = Config {
        nats_auth: args.nats.auth()?,
        nats_url: args.nats.nats_url,
        auth: args.auth.config()?,
        backups: args.backups.settings(),
        sweepers: true,
        liveness: mc_fleet::LivenessConfig {
            offline_after: Duration::from_secs(args.agent_offline_seconds),
            sweep_every: Duration::from_secs(args.agent_sweep_seconds),
        },
        openmct_dir: args.openmct_dir,
        database_url: args.db.database_url,
        migrator_database_url: args.migrator_database_url,
        http_addr: args.http_addr,
        http_limits: mc_api::HttpLimits {
            header_timeout: Duration::from_millis(args.http_header_timeout_ms),
            body_timeout: Duration::from_millis(args.http_body_timeout_ms),
            max_connections: args.http_max_connections as usize,
        },
        stream_replicas: args.stream_replicas,
        telemetry_max_age: Duration::from_secs(args.telemetry_max_age_hours * 3600),
        read_wait: Duration::from_millis(args.read_wait_ms),
        run_projectors: !api || !args.no_projectors,
        serve_nats_commands: api,
        migrate_on_start: !args.no_migrate,
        skip_poison: args.skip_poison,
        ready_max_lag: args.ready_max_lag,
        ready_stall: Duration::from_secs(args.ready_stall_seconds),
        telemetry: mc_telemetry::TelemetryConfig {
            unknown_spacecraft: args.telemetry_unknown_spacecraft,
            max_future_ms: i64::from(args.telemetry_max_future_seconds) * 1000,
            store_window: Duration::from_millis(args.telemetry_store_window_ms),
            retention_days: (args.telemetry_retention_days > 0)
                .then_some(args.telemetry_retention_days),
        },
    };
    let app = Application::build(config).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(signal(shutdown.clone()));
    app.run(shutdown).await.context("http server")?;
    Ok(())
}

/// Cancel on SIGTERM or Ctrl-C.
async fn signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    shutdown.cancel();
}

async fn migrate(args: DbArgs) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&args.database_url)
        .await
        .context("connect to postgres")?;
    mc_projections::migrator()
        .run(&pool)
        .await
        .context("apply migrations")?;
    tracing::info!(
        latest = mc_projections::latest_migration(),
        "migrations applied"
    );
    Ok(())
}

async fn audit_verify(args: DbArgs) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&args.database_url)
        .await
        .context("connect to postgres")?;
    let started = std::time::Instant::now();
    let v = mc_projections::audit::verify(&pool, |n| eprint!("\rverified {n} events")).await?;
    eprintln!("\r");
    let secs = started.elapsed().as_secs_f64();
    if v.holds {
        println!(
            "archive chain holds: {} events, head hash {}, {:.1} s",
            v.count,
            v.head_hash.as_deref().unwrap_or("(empty)"),
            secs
        );
        Ok(())
    } else {
        println!(
            "archive chain BROKEN at position {} (event index {}), after {} events",
            v.first_broken_position.unwrap_or_default(),
            v.first_broken_index.unwrap_or_default(),
            v.count
        );
        std::process::exit(1);
    }
}

async fn rebuild(args: RebuildArgs) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&args.db.database_url)
        .await
        .context("connect to postgres")?;
    let nats = args.nats.connect("mission-control rebuild").await?;
    let log = mc_eventlog::EventLog::new(nats);
    let handler = mc_commands::Handler::new(log.clone());
    let agents = mc_commands::AgentService::new(
        handler,
        mc_commands::NameRegistry::new(log.jetstream().clone()),
    );
    let projection = mc_api::all_projections(&agents)
        .into_iter()
        .find(|p| p.name() == args.name)
        .with_context(|| format!("no projection named {:?}", args.name))?;
    let rebuild = mc_projection::Rebuild::new(projection, pool.clone(), log.jetstream().clone())?;
    if let Some(r) = mc_projection::rebuild::rebuild_status(&pool, &args.name).await? {
        eprintln!(
            "resuming rebuild of {} (v{}) at position {}",
            args.name, r.version, r.position
        );
    }
    let cancel = CancellationToken::new();
    tokio::spawn(signal(cancel.clone()));
    let started = std::time::Instant::now();
    // A live bar on a terminal; a line every 10 % otherwise (logs, CI).
    let mut bar = crate::progress::Bar::new(args.name.clone(), "events");
    let result = rebuild
        .run(&cancel, |p| {
            bar.show_with(p.position, p.head, p.events_per_second, p.eta_seconds)
        })
        .await;
    bar.finish();
    match result {
        Ok(position) => {
            println!(
                "rebuilt {} up to position {position} in {:.1} s and swapped it in",
                args.name,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(mc_projection::RebuildError::Cancelled(_)) => {
            println!(
                "rebuild of {} interrupted; run the same command to resume",
                args.name
            );
            std::process::exit(130);
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::{ArgAction, CommandFactory, Parser};

    /// Every boolean flag that reads an environment variable accepts `1/0/true/false` there
    /// (`MC_NO_MIGRATE=1`, as the README writes it), and refuses anything else. One test, as it
    /// is the only one that sets these variables (tests of a binary share its environment).
    #[test]
    fn boolean_settings_accept_one_and_zero_from_the_environment() {
        let parse = |env: &str, value: &str, sub: &str| {
            std::env::set_var(env, value);
            let parsed = Cli::command().try_get_matches_from(["mission-control", sub]);
            std::env::remove_var(env);
            parsed
        };
        let mut checked = Vec::new();
        for sub in Cli::command().get_subcommands() {
            for arg in sub.get_arguments() {
                let (Some(env), ArgAction::SetTrue) = (arg.get_env(), arg.get_action()) else {
                    continue;
                };
                let env = env.to_str().unwrap().to_owned();
                for (value, expected) in
                    [("1", true), ("0", false), ("true", true), ("false", false)]
                {
                    let matches = parse(&env, value, sub.get_name())
                        .unwrap_or_else(|e| panic!("{env}={value}: {e}"));
                    let (_, sub_matches) = matches.subcommand().unwrap();
                    let got = sub_matches.get_flag(arg.get_id().as_str());
                    assert_eq!(got, expected, "{env}={value}");
                }
                assert!(
                    parse(&env, "maybe", sub.get_name()).is_err(),
                    "{env}=maybe accepted"
                );
                checked.push(env);
            }
        }
        for expected in ["MC_NO_MIGRATE", "MC_NO_PROJECTORS"] {
            assert!(
                checked.iter().any(|e| e == expected),
                "{expected} not checked"
            );
        }

        // Into the typed arguments, and the flag form still works.
        std::env::set_var("MC_NO_MIGRATE", "1");
        let cli = Cli::try_parse_from(["mission-control", "serve"]);
        std::env::remove_var("MC_NO_MIGRATE");
        let Command::Serve(args) = cli.expect("MC_NO_MIGRATE=1 parses").command else {
            panic!("not serve");
        };
        assert!(args.no_migrate && !args.no_projectors);
        let cli = Cli::try_parse_from(["mission-control", "serve", "--no-projectors"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert!(args.no_projectors && !args.no_migrate);
    }
}

#[cfg(test)]
mod http_limit_tests {
    use super::Cli;
    use clap::Parser;

    #[test]
    fn http_timeouts_are_bounded_milliseconds() {
        let parse = |flag: &str, value: &str| {
            Cli::try_parse_from(["mission-control", "serve", flag, value]).map(|_| ())
        };
        for flag in ["--http-header-timeout-ms", "--http-body-timeout-ms"] {
            assert!(parse(flag, "1500").is_ok(), "{flag}");
            for bad in ["0", "-1", "3600001", "soon"] {
                assert!(parse(flag, bad).is_err(), "{flag} {bad} accepted");
            }
        }
    }
}

#[cfg(test)]
mod secret_tests {
    use super::Cli;
    use clap::CommandFactory;

    /// `--help` shows where a setting comes from, never a database URL's value (a password).
    #[test]
    fn help_never_prints_database_urls() {
        std::env::set_var("MC_MIGRATOR_DATABASE_URL", "postgres://owner:s3cret-m@db/x");
        std::env::set_var("MC_DATABASE_URL", "postgres://app:s3cret-a@db/x");
        let mut cmd = Cli::command();
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let help = serve.render_long_help().to_string();
        std::env::remove_var("MC_MIGRATOR_DATABASE_URL");
        std::env::remove_var("MC_DATABASE_URL");
        assert!(help.contains("MC_MIGRATOR_DATABASE_URL"), "{help}");
        assert!(help.contains("MC_DATABASE_URL"), "{help}");
        assert!(!help.contains("s3cret"), "{help}");
    }
}
