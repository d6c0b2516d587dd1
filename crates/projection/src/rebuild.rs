//! Blue/green rebuilds: build a projection's next version into shadow tables from position 0
//! while the live version keeps serving, then swap them in one transaction.
//!
//! The shadow tables live in schema `mc_rebuild_<name>` with the live tables' names, so the
//! projection's SQL runs unchanged with `search_path` set to it; its checkpoint is
//! `<name>@rebuild`. The rebuild row in `projection_rebuilds` and the shadow checkpoint survive a
//! kill -9: the next `rebuild` resumes where it stopped.

use crate::checkpoint::{create_checkpoint, load_checkpoint};
use crate::{ApplyError, Projection, Projector};
use async_nats::jetstream::Context;
use futures::future::BoxFuture;
use mc_eventlog::{streams, Commit, RecordedCommit};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Gap the swap transaction closes itself (live ahead of the shadow); above it, the shadow
/// projector runs longer first.
const MAX_CATCH_UP_IN_SWAP: u64 = 5_000;
/// The shadow stops following and swaps once it is this close to the head.
const SWAP_WHEN_WITHIN: u64 = 500;
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("projection {0} cannot be rebuilt: {1}")]
    NotRebuildable(String, &'static str),
    #[error("rebuild of {name} failed: {reason}")]
    Failed { name: String, reason: String },
    #[error("rebuild of {0} was cancelled")]
    Cancelled(String),
}

fn failed(name: &str, e: impl std::fmt::Display) -> RebuildError {
    RebuildError::Failed {
        name: name.to_owned(),
        reason: e.to_string(),
    }
}

/// Where a rebuild stands (for progress bars and `GET /projections`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub position: u64,
    pub head: u64,
    pub events_per_second: f64,
    pub eta_seconds: Option<f64>,
}

/// The shadow of a projection: same apply, another checkpoint name, never any side effect.
struct Shadow {
    inner: Arc<dyn Projection>,
    name: &'static str,
}

impl Projection for Shadow {
    fn name(&self) -> &'static str {
        self.name
    }

    fn version(&self) -> u32 {
        self.inner.version()
    }

    fn replay_until(&self, _position: u64) {
        // A shadow only replays: process managers must stay silent all along.
        self.inner.replay_until(u64::MAX);
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        self.inner.apply(tx, commits)
    }
}

/// Record the version of the code that built the live read model.
pub async fn record_version(
    tx: &mut PgConnection,
    name: &str,
    version: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_versions (name, version) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET version = $2, updated_at = now()",
    )
    .bind(name)
    .bind(version as i32)
    .execute(tx)
    .await?;
    Ok(())
}

/// The version of the code that built the live read model (`None` before its first start).
pub async fn live_version(pool: &PgPool, name: &str) -> Result<Option<u32>, sqlx::Error> {
    let row: Option<(i32,)> =
        sqlx::query_as("SELECT version FROM projection_versions WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(v,)| v as u32))
}

/// A rebuild in progress, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildStatus {
    pub version: u32,
    /// Shadow checkpoint.
    pub position: u64,
    /// Log head when the rebuild began.
    pub target: u64,
    pub running_seconds: f64,
}

pub async fn rebuild_status(
    pool: &PgPool,
    name: &str,
) -> Result<Option<RebuildStatus>, sqlx::Error> {
    let row: Option<(i32, i64, f64, Option<i64>)> = sqlx::query_as(
        "SELECT r.version, r.target, EXTRACT(EPOCH FROM now() - r.started_at)::float8, c.position \
         FROM projection_rebuilds r LEFT JOIN projection_checkpoints c ON c.name = r.name || '@rebuild' \
         WHERE r.name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(version, target, secs, position)| RebuildStatus {
        version: version as u32,
        position: position.unwrap_or(0) as u64,
        target: target as u64,
        running_seconds: secs,
    }))
}

pub fn shadow_schema(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("mc_rebuild_{safe}")
}

pub fn shadow_checkpoint(name: &str) -> String {
    format!("{name}@rebuild")
}

/// A rebuild of one projection.
pub struct Rebuild {
    projection: Arc<dyn Projection>,
    /// Checkpoints and the shadow projector's writes (the service's own login, `mc_app`).
    pool: PgPool,
    /// The shadow schema and the swap: DDL, through the migrator's login.
    ddl: PgPool,
    js: Context,
}

async fn head(js: &Context) -> Result<u64, String> {
    crate::stream::stream_head(js, streams::EVENTS).await
}

impl Rebuild {
    pub fn new(
        projection: Arc<dyn Projection>,
        pool: PgPool,
        js: Context,
    ) -> Result<Self, RebuildError> {
        if projection.tables().is_empty() {
            return Err(RebuildError::NotRebuildable(
                projection.name().to_owned(),
                "it declares no tables",
            ));
        }
        if projection.name() == "archive" {
            return Err(RebuildError::NotRebuildable(
                "archive".into(),
                "the archive is the append-only, hash-chained record; it is never rebuilt",
            ));
        }
        Ok(Self {
            projection,
            ddl: pool.clone(),
            pool,
            js,
        })
    }

    /// Run the DDL (shadow schema, swap) on `ddl`, a login that owns the tables (the migrator),
    /// so the service itself can keep a login without DDL rights.
    pub fn with_ddl(mut self, ddl: PgPool) -> Self {
        self.ddl = ddl;
        self
    }

    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// Create the shadow tables and the rebuild row, or find them from an interrupted
    /// rebuild. Returns the position it resumes at (0 for a new rebuild).
    pub async fn begin(&self) -> Result<u64, RebuildError> {
        let name = self.name();
        let schema = shadow_schema(name);
        let target = head(&self.js).await.map_err(|e| failed(name, e))?;
        let mut tx = self.ddl.begin().await.map_err(|e| failed(name, e))?;
        let existing: Option<(i32,)> =
            sqlx::query_as("SELECT version FROM projection_rebuilds WHERE name = $1 FOR UPDATE")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| failed(name, e))?;
        let version = self.projection.version() as i32;
        let resume = matches!(existing, Some((v,)) if v == version);
        if !resume {
            // New rebuild (or one of an older code version): start from a clean shadow.
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut *tx)
                .await
                .map_err(|e| failed(name, e))?;
            sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
                .execute(&mut *tx)
                .await
                .map_err(|e| failed(name, e))?;
            for table in self.projection.tables() {
                sqlx::query(&format!(
                    "CREATE TABLE \"{schema}\".{table} (LIKE public.{table} INCLUDING ALL)"
                ))
                .execute(&mut *tx)
                .await
                .map_err(|e| failed(name, e))?;
            }
            // The shadow projector writes as the service (mc_app), like the live one.
            for sql in [
                format!("GRANT USAGE ON SCHEMA \"{schema}\" TO mc_app"),
                format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"{schema}\" TO mc_app"
                ),
            ] {
                sqlx::query(&sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| failed(name, e))?;
            }
            sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
                .bind(shadow_checkpoint(name))
                .execute(&mut *tx)
                .await
                .map_err(|e| failed(name, e))?;
            sqlx::query(
                "INSERT INTO projection_rebuilds (name, version, schema_name, target) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET version = $2, schema_name = $3, target = $4, started_at = now()",
            )
            .bind(name)
            .bind(version)
            .bind(&schema)
            .bind(target as i64)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(name, e))?;
        }
        tx.commit().await.map_err(|e| failed(name, e))?;
        let shadow = shadow_checkpoint(name);
        create_checkpoint(&self.pool, &shadow, 0)
            .await
            .map_err(|e| failed(name, e))?;
        load_checkpoint(&self.pool, &shadow)
            .await
            .map_err(|e| failed(name, e))
    }

    /// Build the shadow up to the head, swap, and return the position of the swap.
    /// `progress` is called about every 100 ms.
    pub async fn run(
        &self,
        cancel: &CancellationToken,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64, RebuildError> {
        let name = self.name();
        let resumed_at = self.begin().await?;
        let shadow_name: &'static str = Box::leak(shadow_checkpoint(name).into_boxed_str());
        let schema = shadow_schema(name);
        let started = Instant::now();
        loop {
            let shadow = Projector::new(
                Arc::new(Shadow {
                    inner: self.projection.clone(),
                    name: shadow_name,
                }),
                self.pool.clone(),
                self.js.clone(),
            )
            .in_schema(&schema);
            let mut position = shadow.subscribe();
            let stop = cancel.child_token();
            let task = tokio::spawn(shadow.run(stop.clone()));
            // Follow it until it reaches the head as it is now.
            loop {
                let target = head(&self.js).await.map_err(|e| failed(name, e))?;
                let at = *position.borrow_and_update();
                let done = at.saturating_sub(resumed_at) as f64;
                let rate = done / started.elapsed().as_secs_f64().max(1e-3);
                progress(Progress {
                    position: at,
                    head: target,
                    events_per_second: rate,
                    eta_seconds: (rate > 0.0).then(|| target.saturating_sub(at) as f64 / rate),
                });
                // Close enough: the swap transaction applies the rest itself (under a steady
                // write load the shadow would otherwise chase a moving head forever).
                if target.saturating_sub(at) <= SWAP_WHEN_WITHIN {
                    break;
                }
                if task.is_finished() || cancel.is_cancelled() {
                    break;
                }
                tokio::select! {
                    () = cancel.cancelled() => {}
                    _ = tokio::time::timeout(POLL, position.changed()) => {}
                }
            }
            stop.cancel();
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(failed(name, e)),
                Err(e) => return Err(failed(name, e)),
            }
            if cancel.is_cancelled() {
                return Err(RebuildError::Cancelled(name.to_owned()));
            }
            if let Some(position) = self.swap().await? {
                return Ok(position);
            }
        }
    }

    /// In one transaction: block the live projector, bring the shadow to exactly the live
    /// position (applying the few commits it lacks), replace the live tables, move the
    /// checkpoint, record the version. `None` when the live projection ran too far ahead.
    async fn swap(&self) -> Result<Option<u64>, RebuildError> {
        let name = self.name();
        let schema = shadow_schema(name);
        let shadow = shadow_checkpoint(name);
        let mut tx = self.ddl.begin().await.map_err(|e| failed(name, e))?;
        let live: Option<(i64,)> = sqlx::query_as(
            "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| failed(name, e))?;
        let live = live.map_or(0, |(p,)| p as u64);
        let (built,): (i64,) = sqlx::query_as(
            "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
        )
        .bind(&shadow)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| failed(name, e))?;
        let built = built as u64;
        if live > built {
            if live - built > MAX_CATCH_UP_IN_SWAP {
                return Ok(None);
            }
            self.catch_up(&mut tx, &schema, built, live).await?;
        }
        let at = live.max(built);
        for table in self.projection.tables() {
            for sql in [
                format!("DROP TABLE public.{table}"),
                format!("ALTER TABLE \"{schema}\".{table} SET SCHEMA public"),
                // Owned by mc_migrator like every table the migrations create (migration 13).
                format!("ALTER TABLE public.{table} OWNER TO mc_migrator"),
                format!("GRANT SELECT, INSERT, UPDATE, DELETE ON public.{table} TO mc_app"),
            ] {
                sqlx::query(&sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| failed(name, e))?;
            }
        }
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = $2, updated_at = now()",
        )
        .bind(name)
        .bind(at as i64)
        .execute(&mut *tx)
        .await
        .map_err(|e| failed(name, e))?;
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(&shadow)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(name, e))?;
        sqlx::query("DELETE FROM projection_rebuilds WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(name, e))?;
        record_version(&mut tx, name, self.projection.version())
            .await
            .map_err(|e| failed(name, e))?;
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(name, e))?;
        tx.commit().await.map_err(|e| failed(name, e))?;
        tracing::info!(projection = name, position = at, "rebuild swapped in");
        Ok(Some(at))
    }

    /// Apply commits `from + 1 ..= to` to the shadow inside the swap transaction.
    async fn catch_up(
        &self,
        tx: &mut PgConnection,
        schema: &str,
        from: u64,
        to: u64,
    ) -> Result<(), RebuildError> {
        let name = self.name();
        let stream = self
            .js
            .get_stream_no_info(streams::EVENTS)
            .await
            .map_err(|e| failed(name, e))?;
        let mut commits = Vec::with_capacity((to - from) as usize);
        for position in from + 1..=to {
            let m = stream
                .get_raw_message(position)
                .await
                .map_err(|e| failed(name, e))?;
            // Not a commit: every projection skipped it (the runtime's reject rule), so does
            // the shadow.
            if let Ok(commit) = Commit::decode(&m.payload) {
                commits.push(RecordedCommit { position, commit });
            }
        }
        sqlx::query(&format!("SET LOCAL search_path TO \"{schema}\", public"))
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(name, e))?;
        self.projection.replay_until(u64::MAX);
        self.projection
            .apply(tx, &commits)
            .await
            .map_err(|e| failed(name, e))?;
        sqlx::query("SET LOCAL search_path TO public")
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(name, e))?;
        Ok(())
    }
}
