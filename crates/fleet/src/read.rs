//! The queries behind the metric routes: an agent's metrics and history, the system's status
//! and series. Windows over the series are in wall-clock time; the rows are in log time.

use crate::fold::{Fold, MINUTE_MS};
use crate::metrics::AgentMetrics;
use crate::store::{load_agents, load_system, time};
use mc_domain::agent::AgentStatus;
use mc_projection::ApplyError;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// Longest history a series query returns.
pub const HOURS_MAX: i64 = 24 * 30;
/// Up to this many hours a series is per minute; beyond, per hour.
pub const MINUTE_SERIES_HOURS: i64 = 24;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Stored(String),
}

impl From<ApplyError> for ReadError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Db(e) => Self::Database(e),
            other => Self::Stored(other.to_string()),
        }
    }
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// One agent's metrics now, or `None` for an agent the read model does not know (or removed).
/// Work and idle time include the current stretch up to `now_ms`.
pub async fn agent_metrics(
    pool: &PgPool,
    id: Uuid,
    now_ms: i64,
) -> Result<Option<Value>, ReadError> {
    let mut conn = pool.acquire().await?;
    let Some(row) = load_agents(&mut conn, &[id])
        .await?
        .remove(&id)
        .filter(|r| !r.removed)
    else {
        return Ok(None);
    };
    let heartbeat: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT at FROM agent_heartbeats WHERE agent_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let stretch = (now_ms - row.status_since).max(0);
    let work = row.work_ms
        + if row.status == AgentStatus::Busy {
            stretch
        } else {
            0
        };
    let idle = row.idle_ms
        + if row.status == AgentStatus::Idle {
            stretch
        } else {
            0
        };
    let m = AgentMetrics::of(&row);
    let tally = |t: &crate::fold::Tally| json!({"completed": t.completed, "failed": t.failed, "inProgress": t.in_progress});
    Ok(Some(json!({
        "agentId": id,
        "name": row.name,
        "status": row.status.as_str(),
        "statusSince": time(row.status_since),
        "lastActivityAt": time(row.last_activity),
        "lastHeartbeatAt": heartbeat,
        "missions": tally(&row.missions),
        "taskRuns": tally(&row.runs),
        "successRate": m.success_rate,
        "errorRate": m.error_rate,
        "avgDurationSeconds": m.avg_duration_seconds,
        "workSeconds": seconds(work),
        "idleSeconds": seconds(idle),
        "commentsSent": row.comments,
    })))
}

/// One agent bucket: time, completed, failed, comments, work ms, idle ms, events.
type AgentPoint = (chrono::DateTime<chrono::Utc>, i64, i64, i64, i64, i64, i64);

/// `"minute"` up to [`MINUTE_SERIES_HOURS`], `"hour"` beyond.
pub fn resolution(hours: i64) -> &'static str {
    if hours <= MINUTE_SERIES_HOURS {
        "minute"
    } else {
        "hour"
    }
}

/// An agent's series over the last `hours` (1..=[`HOURS_MAX`]), oldest first. Buckets
/// without events have no row.
pub async fn agent_history(
    pool: &PgPool,
    id: Uuid,
    hours: i64,
    now_ms: i64,
) -> Result<Value, ReadError> {
    let resolution = resolution(hours);
    let rows: Vec<AgentPoint> = sqlx::query_as(
        "SELECT at, completed, failed, comments, work_ms, idle_ms, events FROM fleet_agent_series \
         WHERE agent_id = $1 AND resolution = $2 AND at >= $3 ORDER BY at",
    )
    .bind(id)
    .bind(resolution)
    .bind(time(now_ms - hours * 60 * MINUTE_MS))
    .fetch_all(pool)
    .await?;
    let points: Vec<Value> = rows
        .into_iter()
        .map(|(at, completed, failed, comments, work, idle, events)| {
            json!({"at": at, "completed": completed, "failed": failed, "comments": comments,
                   "workSeconds": seconds(work), "idleSeconds": seconds(idle), "events": events})
        })
        .collect();
    Ok(json!({"agentId": id, "hours": hours, "resolution": resolution, "points": points}))
}

/// The system's metrics as of the log's clock, with the event rate of the last five minutes.
pub async fn system_metrics(pool: &PgPool, now_ms: i64) -> Result<Value, ReadError> {
    let mut conn = pool.acquire().await?;
    let mut fold = Fold::default();
    let clock = match load_system(&mut conn).await? {
        Some((system, limits, recent)) => {
            let clock = system.clock;
            fold.system = system;
            fold.limits = limits;
            fold.recent = recent;
            Some(clock)
        }
        None => None,
    };
    let metrics = fold.system_metrics();
    let recent_events: Option<i64> = sqlx::query_scalar(
        "SELECT sum(events)::bigint FROM fleet_system_series WHERE resolution = 'minute' AND at >= $1",
    )
    .bind(time(now_ms - now_ms.rem_euclid(MINUTE_MS) - 4 * MINUTE_MS))
    .fetch_one(&mut *conn)
    .await?;
    let mut out = serde_json::to_value(&metrics).unwrap_or_default();
    out["eventsPerMinute"] = json!(recent_events.unwrap_or(0) as f64 / 5.0);
    out["eventsTotal"] = json!(fold.system.events);
    out["asOf"] = json!(clock.map(time));
    Ok(out)
}

/// The system series over the last `hours`, oldest first.
pub async fn system_series(pool: &PgPool, hours: i64, now_ms: i64) -> Result<Value, ReadError> {
    let resolution = resolution(hours);
    let rows: Vec<(chrono::DateTime<chrono::Utc>, i64, i64, i64, Value, i16)> = sqlx::query_as(
        "SELECT at, events, completed, failed, gauges, health_min FROM fleet_system_series \
         WHERE resolution = $1 AND at >= $2 ORDER BY at",
    )
    .bind(resolution)
    .bind(time(now_ms - hours * 60 * MINUTE_MS))
    .fetch_all(pool)
    .await?;
    let points: Vec<Value> = rows
        .into_iter()
        .map(|(at, events, completed, failed, mut gauges, health_min)| {
            gauges["at"] = json!(at);
            gauges["events"] = json!(events);
            gauges["completed"] = json!(completed);
            gauges["failed"] = json!(failed);
            gauges["healthMin"] = json!(health_min);
            gauges
        })
        .collect();
    Ok(json!({"hours": hours, "resolution": resolution, "points": points}))
}
