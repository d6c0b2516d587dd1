//! [`Application`]: binds the listener (port 0 in tests), connects lazily to NATS and
//! Postgres, boots (migrate, provision, projectors) in the background with backoff, serves,
//! and shuts down gracefully.

use crate::edges::HttpLimits;
use crate::state::{AppState, Config, Inner, ProjectorView};
use async_nats::ServerAddr;
use mc_commands::{
    AgentService, AlarmService, CommentService, Handler, MissionService, NameRegistry,
    SpacecraftService,
};
use mc_eventlog::streams::{self, ProvisionOptions};
use mc_eventlog::EventLog;
use mc_projection::{Positions, Projector};
use mc_telemetry::TelemetryConsumer;
use sqlx::postgres::PgPoolOptions;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest wait for a pooled Postgres connection before a request answers 503. Generous: a
/// burst of reads queues for connections; Postgres being down is detected by the probe below
/// and answered at once.
const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often, and how patiently, the server probes Postgres.
const POSTGRES_PROBE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid NATS url {url:?}: {reason}")]
    NatsUrl { url: String, reason: String },
    #[error("invalid database url: {0}")]
    DatabaseUrl(sqlx::Error),
    #[error("nats: {0}")]
    Nats(String),
    #[error("jwt issuer: {0}")]
    Jwt(String),
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    projectors: Vec<Projector>,
    telemetry: Vec<TelemetryConsumer>,
    config: Config,
    http: HttpLimits,
}

/// Fresh instances of every projection and process manager `serve` runs, in order. A rebuild
/// gets its own instances (process managers keep state in them).
pub fn all_projections(agents: &AgentService) -> Vec<Arc<dyn mc_projection::Projection>> {
    let mut all = mc_projections::all();
    all.push(Arc::new(mc_processes::AgentStatusManager::new(
        agents.clone(),
    )));
    all.push(Arc::new(mc_fleet::FleetProjection::new(AlarmService::new(
        agents.handler().clone(),
    ))));
    all
}

/// Parse `nats://a:4222,nats://b:4222`.
pub fn nats_addrs(urls: &str) -> Result<Vec<ServerAddr>, BuildError> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<ServerAddr>().map_err(|e| BuildError::NatsUrl {
                url: u.to_owned(),
                reason: e.to_string(),
            })
        })
        .collect()
}

impl Application {
    /// Bind and connect (lazily: nothing here waits for NATS or Postgres to be up).
    pub async fn build(config: Config) -> Result<Self, BuildError> {
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| BuildError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let http = config.http_limits;
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
            .connect_lazy(&config.database_url)
            .map_err(BuildError::DatabaseUrl)?;
        let ddl = match &config.migrator_database_url {
            Some(url) => PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
                .connect_lazy(url)
                .map_err(BuildError::DatabaseUrl)?,
            None => pool.clone(),
        };
        let options = config
            .nats_auth
            .apply(async_nats::ConnectOptions::new())
            .map_err(|e| BuildError::Nats(e.to_string()))?;
        let nats = options
            .name("mission-control")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .connect(nats_addrs(&config.nats_url)?)
            .await
            .map_err(|e| BuildError::Nats(e.to_string()))?;
        let log = EventLog::new(nats.clone());
        let handler = Handler::new(log.clone());
        let agents = AgentService::new(handler.clone(), NameRegistry::new(log.jetstream().clone()));
        let missions = MissionService::new(handler.clone());
        let comments = CommentService::new(handler.clone());
        let spacecraft = SpacecraftService::new(handler.clone());
        let alarms = AlarmService::new(handler.clone());
        let tasks = mc_tasks::TaskService::new(handler.clone());
        let tokens = mc_commands::TokenService::new(handler);
        let jwt = match config.auth.jwt.clone() {
            Some(jwt) => Some(
                mc_auth::jwt::JwtVerifier::load(jwt)
                    .await
                    .map_err(|e| BuildError::Jwt(e.to_string()))?,
            ),
            None => None,
        };
        let auth = Arc::new(mc_auth::Authenticator::new(
            mc_auth::registry::TokenRegistry::new(),
            jwt,
            config.auth.writes,
        ));
        let projectors: Vec<Projector> = if config.run_projectors {
            all_projections(&agents)
                .into_iter()
                .map(|p| {
                    let skip = config.skip_poison.iter().any(|n| n == p.name());
                    Projector::new(p, pool.clone(), log.jetstream().clone()).skip_poison(skip)
                })
                .collect()
        } else {
            Vec::new()
        };
        let views: Vec<ProjectorView> = projectors
            .iter()
            .map(|p| ProjectorView {
                name: p.name(),
                stream: streams::EVENTS,
                version: p.projection().version(),
                subjects: p.projection().subjects(),
                tables: p.projection().tables(),
                monitor: p.monitor(),
                position: p.subscribe(),
            })
            .collect();
        let telemetry: Vec<TelemetryConsumer> = if config.run_projectors {
            mc_telemetry::consumers(
                &pool,
                log.jetstream(),
                &spacecraft,
                &alarms,
                config.telemetry,
            )
        } else {
            Vec::new()
        };
        let consumers: Vec<ProjectorView> = telemetry
            .iter()
            .map(|t| ProjectorView {
                name: t.name(),
                stream: streams::TELEMETRY,
                version: 1,
                subjects: &["mc.telemetry.>"],
                tables: &[],
                monitor: t.monitor(),
                position: t.subscribe(),
            })
            .collect();
        let mut local: HashMap<_, _> = views.iter().map(|v| (v.name, v.position.clone())).collect();
        local.extend(consumers.iter().map(|t| (t.name, t.position.clone())));
        let telemetry_registry = mc_telemetry::Registry::new(
            pool.clone(),
            spacecraft.clone(),
            config.telemetry.unknown_spacecraft,
        );
        let background = CancellationToken::new();
        let relay = mc_relay::Hub::spawn(
            log.jetstream().clone(),
            mc_relay::Limits::default(),
            background.clone(),
        );
        let backups = crate::backups::service(
            &config,
            log.jetstream().clone(),
            pool.clone(),
            mc_commands::BackupLog::new(Handler::new(log.clone())),
        )
        .await?;
        let liveness =
            mc_fleet::Liveness::new(pool.clone(), agents.clone(), log.clone(), config.liveness);
        let state = AppState(Arc::new(Inner {
            positions: Positions::new(pool.clone(), local),
            pool,
            ddl,
            nats,
            log,
            agents,
            missions,
            comments,
            spacecraft,
            alarms,
            tokens,
            tasks,
            auth,
            relay,
            liveness,
            backups,
            telemetry: config.telemetry,
            telemetry_registry,
            projectors: views,
            consumers,
            migrated: AtomicBool::new(false),
            postgres_up: AtomicBool::new(true),
            log_paired: AtomicBool::new(false),
            serving: AtomicBool::new(false),
            log_mismatch: std::sync::Mutex::new(None),
            provisioned: AtomicBool::new(false),
            started: Instant::now(),
            read_wait: config.read_wait,
            ready_max_lag: config.ready_max_lag,
            ready_stall: config.ready_stall,
            api: config.serve_nats_commands,
            openmct_dir: config
                .openmct_dir
                .as_ref()
                .and_then(|d| std::fs::canonicalize(d).ok()),
            rebuilding: std::sync::Mutex::default(),
            background,
        }));
        Ok(Self {
            listener,
            state,
            projectors,
            telemetry,
            config,
            http,
        })
    }

    /// Replace the header and body read timeouts of the configuration.
    pub fn with_http_limits(mut self, limits: HttpLimits) -> Self {
        self.http = limits;
        self
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` is cancelled: in-flight requests finish, then the projectors
    /// commit or roll back their batch and stop.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let Self {
            listener,
            state,
            projectors,
            telemetry,
            config,
            http,
        } = self;
        let workers = shutdown.child_token();
        let state_for_shutdown = state.clone();
        let boot = tokio::spawn(boot(
            state.clone(),
            Workers {
                projectors,
                telemetry,
            },
            config,
            workers.clone(),
        ));
        let probe = tokio::spawn(watch_postgres(state.clone(), workers.clone()));
        let token_table = tokio::spawn(
            state
                .auth
                .tokens()
                .clone()
                .follow(state.log.jetstream().clone(), workers.clone()),
        );
        let jwks = state.auth.spawn_refresh(workers.clone());
        tracing::info!(addr = %listener.local_addr()?, "http server listening");
        let served = crate::edges::serve(listener, crate::router(state), http, shutdown).await;
        workers.cancel();
        let _ = probe.await;
        let _ = token_table.await;
        if let Some(jwks) = jwks {
            let _ = jwks.await;
        }
        state_for_shutdown.background.cancel();
        if let Ok(handles) = boot.await {
            for handle in handles {
                let _ = handle.await;
            }
        }
        tracing::info!("shut down");
        served
    }
}

/// Probe Postgres once a second (a query on a connection of its own pool slot, bounded by the
/// probe interval) and publish the outcome in `postgres_up`, so requests fail fast while it is
/// known to be down.
async fn watch_postgres(state: AppState, cancel: CancellationToken) {
    loop {
        let up = tokio::time::timeout(POSTGRES_PROBE, sqlx::query("SELECT 1").execute(&state.pool))
            .await
            .is_ok_and(|r| r.is_ok());
        if up != state.is_postgres_up() {
            if up {
                tracing::info!("postgres is reachable again");
            } else {
                tracing::warn!("postgres is unreachable: queries answer 503 until it is back");
            }
        }
        state.postgres_up.store(up, Ordering::Release);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(POSTGRES_PROBE) => {}
        }
    }
}

/// Retry `step` with exponential backoff until it succeeds or we are cancelled.
async fn with_backoff<F, Fut, E>(what: &str, cancel: &CancellationToken, mut step: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut delay = Duration::from_millis(200);
    loop {
        match step().await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(step = what, error = %e, retry_in = ?delay, "startup step failed")
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

/// Pair the database with this `MC_EVENTS` on first start; afterwards refuse another one.
/// Outer error: transient (retry); inner error: a different event log (final).
async fn check_identity(state: &AppState) -> Result<Result<(), String>, String> {
    let identity = state.log.identity().await.map_err(|e| e.to_string())?;
    sqlx::query("INSERT INTO event_log_identity (stream, identity) VALUES ($1, $2) ON CONFLICT (stream) DO NOTHING")
        .bind(streams::EVENTS)
        .bind(&identity)
        .execute(&state.pool)
        .await
        .map_err(|e| e.to_string())?;
    let (stored,): (String,) =
        sqlx::query_as("SELECT identity FROM event_log_identity WHERE stream = $1")
            .bind(streams::EVENTS)
            .fetch_one(&state.pool)
            .await
            .map_err(|e| e.to_string())?;
    if stored == identity {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "this database mirrors another {} (stored {stored}, connected {identity}); \
             use a fresh database or the NATS store it was built from",
            streams::EVENTS
        )))
    }
}

/// Migrate, provision, then start the projectors. Returns their task handles.
/// The background workers `boot` starts once the server is ready.
struct Workers {
    projectors: Vec<Projector>,
    telemetry: Vec<TelemetryConsumer>,
}

async fn boot(
    state: AppState,
    workers: Workers,
    config: Config,
    cancel: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Workers {
        projectors,
        telemetry,
    } = workers;
    let migrated = with_backoff("migrate", &cancel, || async {
        if config.migrate_on_start {
            return mc_projections::migrator().run(&state.ddl).await.map_err(|e| e.to_string());
        }
        let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&state.pool)
            .await
            .map_err(|e| e.to_string())?;
        let latest = mc_projections::latest_migration();
        match applied {
            Some(v) if v >= latest => Ok(()),
            v => Err(format!("database at migration {v:?}, this binary needs {latest}: run `mission-control migrate`")),
        }
    })
    .await;
    if !migrated {
        return Vec::new();
    }
    state.migrated.store(true, Ordering::Release);
    let options = ProvisionOptions {
        replicas: config.stream_replicas,
        telemetry_max_age: config.telemetry_max_age,
    };
    let provisioned = with_backoff("provision streams", &cancel, || {
        streams::provision(state.log.jetstream(), &options)
    })
    .await;
    if !provisioned {
        return Vec::new();
    }
    state.provisioned.store(true, Ordering::Release);
    tracing::info!("migrations applied and streams provisioned");
    let outcome = std::sync::Mutex::new(None);
    let checked = with_backoff("check event log identity", &cancel, || async {
        let paired = check_identity(&state).await?;
        if let Ok(mut o) = outcome.lock() {
            *o = Some(paired);
        }
        Ok::<_, String>(())
    })
    .await;
    let paired = outcome.into_inner().ok().flatten();
    match paired {
        Some(Ok(())) if checked => {
            let prepared = with_backoff("prepare projectors", &cancel, || async {
                for p in &projectors {
                    p.prepare().await?;
                }
                Ok::<_, String>(())
            })
            .await;
            if !prepared {
                return Vec::new();
            }
            state.log_paired.store(true, Ordering::Release);
        }
        Some(Err(mismatch)) => {
            tracing::error!(%mismatch, "refusing to run projectors against another event log");
            if let Ok(mut m) = state.log_mismatch.lock() {
                *m = Some(mismatch);
            }
            return Vec::new();
        }
        _ => return Vec::new(),
    }
    if config.run_projectors {
        let rebuilds = with_backoff("check projection versions", &cancel, || {
            crate::rebuilds::at_start(&state)
        })
        .await;
        if !rebuilds {
            return Vec::new();
        }
    }
    let commands = if config.serve_nats_commands {
        let slot = std::sync::Mutex::new(None);
        let subscribed = with_backoff("subscribe to nats commands", &cancel, || async {
            let subscription = crate::nats_commands::subscribe(&state).await?;
            if let Ok(mut s) = slot.lock() {
                *s = Some(subscription);
            }
            Ok::<_, async_nats::SubscribeError>(())
        })
        .await;
        match slot.into_inner().ok().flatten() {
            Some(s) if subscribed => tokio::spawn(crate::nats_commands::serve(
                state.clone(),
                s,
                cancel.clone(),
            )),
            _ => return Vec::new(),
        }
    } else {
        tokio::spawn(async {})
    };
    state.serving.store(true, Ordering::Release);
    if let Some(every) = config.backups.every {
        state.backups.spawn_schedule(every, cancel.clone());
    }
    // Sweepers act on the wall clock (staleness, shelve expiry): a drill over restored history
    // turns them off, so it appends nothing.
    let sweepers = if config.run_projectors && config.sweepers {
        vec![
            tokio::spawn(
                mc_telemetry::stale::StaleSweeper::new(state.pool.clone(), state.alarms.clone())
                    .run(cancel.clone()),
            ),
            tokio::spawn(
                mc_processes::ShelveExpiry::new(state.pool.clone(), state.alarms.clone())
                    .run(cancel.clone()),
            ),
        ]
        .into_iter()
        .chain(state.telemetry.retention_days.map(|days| {
            tokio::spawn(
                mc_telemetry::retention::Retention::new(state.pool.clone(), days)
                    .run(cancel.clone()),
            )
        }))
        .collect()
    } else {
        Vec::new()
    };
    let liveness = tokio::spawn(
        state
            .liveness
            .clone()
            .run(cancel.clone(), config.run_projectors && config.sweepers),
    );
    let ticker = tokio::spawn(crate::fleet::tick(state.clone(), cancel.clone()));
    projectors
        .into_iter()
        .map(|p| {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                if let Err(e) = p.run(cancel).await {
                    tracing::error!(error = %e, "projector stopped");
                }
            })
        })
        .chain(
            telemetry
                .into_iter()
                .map(|t| tokio::spawn(t.run(cancel.clone()))),
        )
        .chain(sweepers)
        .chain([commands, liveness, ticker])
        .collect()
}
