//! Shared state of the HTTP handlers and the configuration of the server.

use mc_commands::{AgentService, AlarmService, CommentService, MissionService, SpacecraftService};
use mc_eventlog::EventLog;
use mc_projection::{Monitor, Positions};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Everything `serve` needs to know; the CLI fills it from flags and environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// One or more NATS URLs, comma-separated.
    pub nats_url: String,
    /// The service's own NATS credentials (user/password, nkey or creds file).
    pub nats_auth: mc_eventlog::connect::NatsAuth,
    pub database_url: String,
    /// A login that owns the schema (the migrator), for migrations at start and the DDL of
    /// blue/green rebuilds; `None`: the service's own login does those too.
    pub migrator_database_url: Option<String>,
    pub http_addr: SocketAddr,
    /// How long a client may take to send a request's head and body.
    pub http_limits: crate::HttpLimits,
    /// JetStream replicas of the streams (1 single node, 3 in a cluster).
    pub stream_replicas: usize,
    pub telemetry_max_age: Duration,
    /// Longest wait of a query with `minPosition` before answering stale.
    pub read_wait: Duration,
    /// Run the projectors in this process.
    pub run_projectors: bool,
    /// Serve commands over NATS (`mc.cmd.>`) in this process.
    pub serve_nats_commands: bool,
    /// Apply migrations at start (needs the migrator role); otherwise wait until they are.
    pub migrate_on_start: bool,
    /// Projections that go on past events they cannot apply (recorded, not silent).
    pub skip_poison: Vec<String>,
    /// `/health/ready` fails while a projection lags more events than this.
    pub ready_max_lag: Option<u64>,
    /// `/health/ready` fails while a consumer has had unapplied messages older than this and
    /// has not advanced for this long (stuck, even if not failed).
    pub ready_stall: Duration,
    /// Telemetry ingest: the unknown-spacecraft policy and how far in the future a sample may be.
    pub telemetry: mc_telemetry::TelemetryConfig,
    /// The JWT issuer (if any) and the per-principal write limit.
    pub auth: mc_auth::AuthConfig,
    /// Where backups go, their schedule and retention, and where restores go.
    pub backups: BackupSettings,
    /// Run the wall-clock sweepers (staleness alarms, shelve expiry, agent liveness) with the
    /// projectors.
    pub sweepers: bool,
    /// When a silent agent is marked OFFLINE, and how often that is checked.
    pub liveness: mc_fleet::LivenessConfig,
    /// Open MCT's `dist` directory, served under `/openmct/lib/` (none: `/openmct/` says how
    /// to install it).
    pub openmct_dir: Option<std::path::PathBuf>,
}

impl Config {
    /// A server on `nats_url` and `database_url` with the CLI's defaults, listening on a free
    /// loopback port (restore drills, tools).
    pub fn local(nats_url: String, database_url: String) -> Self {
        Self {
            nats_url,
            nats_auth: Default::default(),
            database_url,
            migrator_database_url: None,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_limits: crate::HttpLimits::default(),
            stream_replicas: 1,
            telemetry_max_age: Duration::from_secs(7 * 24 * 3600),
            read_wait: Duration::from_secs(2),
            run_projectors: true,
            serve_nats_commands: true,
            migrate_on_start: true,
            skip_poison: Vec::new(),
            ready_max_lag: None,
            ready_stall: Duration::from_secs(60),
            telemetry: mc_telemetry::TelemetryConfig::default(),
            auth: mc_auth::AuthConfig::default(),
            backups: BackupSettings::default(),
            sweepers: true,
            liveness: mc_fleet::LivenessConfig::default(),
            openmct_dir: None,
        }
    }
}

/// Backups of a running server (`/api/v1/backups`, the schedule).
#[derive(Debug, Clone)]
pub struct BackupSettings {
    pub dir: std::path::PathBuf,
    /// Back up this often (`None`: only on request).
    pub every: Option<Duration>,
    pub keep: Option<usize>,
    pub keep_days: Option<u32>,
    /// The NATS of the deployment restores go into (beside the live one; credentials may be in
    /// the URL). `None`: `POST /backups/{id}/restore` is refused.
    pub restore_nats_url: Option<String>,
    /// Scheduled backups also take the telemetry stored in this window before them.
    pub scheduled_telemetry: Option<Duration>,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            dir: "backups".into(),
            every: None,
            keep: None,
            keep_days: None,
            restore_nats_url: None,
            scheduled_telemetry: None,
        }
    }
}

/// A consumer (event projection or telemetry consumer) as the API reports it.
#[derive(Clone)]
pub struct ProjectorView {
    pub name: &'static str,
    /// The stream it reads (`MC_EVENTS` or `MC_TELEMETRY`).
    pub stream: &'static str,
    pub version: u32,
    pub subjects: &'static [&'static str],
    pub tables: &'static [&'static str],
    pub monitor: Arc<Mutex<Monitor>>,
    pub position: watch::Receiver<u64>,
}

pub struct Inner {
    pub pool: PgPool,
    /// The migrator's pool (migrations, rebuild DDL); the same as `pool` when not configured.
    pub ddl: PgPool,
    pub nats: async_nats::Client,
    pub log: EventLog,
    pub agents: AgentService,
    pub missions: MissionService,
    pub comments: CommentService,
    pub spacecraft: SpacecraftService,
    pub alarms: AlarmService,
    pub tokens: mc_commands::TokenService,
    /// Tools, tasks and task runs (the policy gate of tool calls).
    pub tasks: mc_tasks::TaskService,
    /// Credentials → principal, and the permission checks (HTTP and NATS).
    pub auth: Arc<mc_auth::Authenticator>,
    /// The live relay: one consumer per stream fanning out to WebSocket and SSE clients.
    pub relay: mc_relay::Hub,
    /// Heartbeats and the OFFLINE sweeper.
    pub liveness: mc_fleet::Liveness,
    /// Backup jobs, the listing, verification and restores.
    pub backups: mc_backup::BackupService,
    pub telemetry: mc_telemetry::TelemetryConfig,
    pub telemetry_registry: mc_telemetry::Registry,
    pub positions: Positions,
    pub projectors: Vec<ProjectorView>,
    /// The telemetry consumers running in this process.
    pub consumers: Vec<ProjectorView>,
    pub migrated: AtomicBool,
    /// Postgres answered the last probe (once a second, see `watch_postgres`): while it does
    /// not, queries answer 503 at once instead of waiting for a pooled connection.
    pub postgres_up: AtomicBool,
    pub provisioned: AtomicBool,
    /// The database is paired with the connected `MC_EVENTS` (see ARCHITECTURE.md).
    pub log_paired: AtomicBool,
    /// Boot finished: projectors and the NATS command service are running.
    pub serving: AtomicBool,
    /// Why it is not: the database mirrors another event log.
    pub log_mismatch: Mutex<Option<String>>,
    pub started: Instant,
    pub read_wait: Duration,
    pub ready_max_lag: Option<u64>,
    pub ready_stall: Duration,
    /// Serves the `/api/v1` routes (false in the `project` role: health and metrics only).
    pub api: bool,
    /// Open MCT's files (canonical path), if configured.
    pub openmct_dir: Option<std::path::PathBuf>,
    /// Rebuilds running in this process.
    pub rebuilding: Mutex<std::collections::HashSet<&'static str>>,
    /// Cancelled at shutdown: background work (rebuilds) stops, to resume at the next start.
    pub background: tokio_util::sync::CancellationToken,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn is_postgres_up(&self) -> bool {
        self.postgres_up.load(Ordering::Acquire)
    }

    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    pub fn is_log_paired(&self) -> bool {
        self.log_paired.load(Ordering::Acquire)
    }

    pub fn is_provisioned(&self) -> bool {
        self.provisioned.load(Ordering::Acquire)
    }
}
