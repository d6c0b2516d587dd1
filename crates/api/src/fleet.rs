//! Fleet metrics routes: heartbeats, an agent's metrics and history, the system's status,
//! series, latest events and metric limits. Glue over `mc_fleet`.

use crate::auth::{Caller, Routes};
use crate::extract::{if_match, Body, Fields, QueryParams};
use crate::problem::ApiError;
use crate::read;
use crate::spacecraft::LimitsBody;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_commands::CommandContext;
use mc_domain::fleet::FleetLimits;
use mc_domain::ids::AgentId;
use mc_fleet::projection::NAME;
use mc_fleet::read::HOURS_MAX;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// Most events `/system/events` returns.
const EVENTS_MAX: u64 = 500;

pub fn routes(r: Routes) -> Routes {
    r.post("/agents/{id}/heartbeat", heartbeat)
        .get("/agents/{id}/metrics", agent_metrics)
        .get("/agents/{id}/history", agent_history)
        .get("/system/status", status)
        .get("/system/metrics", system_metrics)
        .get("/system/metrics/limits", limits)
        .put("/system/metrics/limits", configure)
        .get("/system/events", events)
}

fn parse_id(raw: &str) -> Result<AgentId, ApiError> {
    AgentId::parse(raw, "id").map_err(|e| ApiError::Validation(vec![e]))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A heartbeat: 200 `{id, status, at}`; an OFFLINE agent comes back (IDLE) and the answer
/// carries the event's `version` and `position`. Nothing else reaches the log.
pub(crate) async fn beat(state: &AppState, actor: &str, id: AgentId) -> Result<Value, ApiError> {
    let ctx = CommandContext::new(actor, None);
    let at = now_ms();
    let beat = state.liveness.heartbeat(&ctx, id, at).await?;
    let mut body = json!({"id": id.to_string(), "status": beat.status.as_str(),
        "at": mc_fleet::time(at)});
    if let Some(done) = beat.revived {
        body["version"] = json!(done.version);
        body["position"] = json!(done.position);
    }
    Ok(body)
}

async fn heartbeat(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(beat(&state, &caller.actor(), id).await?).into_response())
}

async fn agent_metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut q = QueryParams::new(params);
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, NAME, min_position).await?;
    let body = mc_fleet::read::agent_metrics(&state.pool, id.as_uuid(), now_ms())
        .await
        .map_err(internal)?
        .ok_or(ApiError::NotFound { what: "agent" })?;
    Ok(freshness.wrap(Json(body)))
}

fn internal(e: mc_fleet::read::ReadError) -> ApiError {
    match e {
        mc_fleet::read::ReadError::Database(e) => e.into(),
        other => ApiError::Internal(other.to_string()),
    }
}

/// `hours` from 1 to [`HOURS_MAX`], 24 when absent.
fn hours(q: &mut QueryParams) -> i64 {
    q.u64("hours", 1, HOURS_MAX as u64).unwrap_or(24) as i64
}

async fn agent_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut q = QueryParams::new(params);
    let hours = hours(&mut q);
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, NAME, min_position).await?;
    if mc_fleet::read::agent_metrics(&state.pool, id.as_uuid(), now_ms())
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(ApiError::NotFound { what: "agent" });
    }
    let body = mc_fleet::read::agent_history(&state.pool, id.as_uuid(), hours, now_ms())
        .await
        .map_err(internal)?;
    Ok(freshness.wrap(Json(body)))
}

/// The system's metrics and health score, command latency, and the consumers' standing.
async fn status(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, NAME, min_position).await?;
    let mut body = mc_fleet::read::system_metrics(&state.pool, now_ms())
        .await
        .map_err(internal)?;
    body["commandLatency"] = match mc_metrics::summary("mc_command_seconds") {
        Some(s) => json!({"count": s.count, "meanMs": s.mean * 1000.0,
            "p50Ms": s.p50 * 1000.0, "p99Ms": s.p99 * 1000.0}),
        None => json!({"count": 0}),
    };
    let (_, standings, verdict) = crate::projections::consumer_health(&state).await;
    body["consumers"] = json!({
        "maxLagEvents": standings.iter().filter_map(|s| s.lag_events).max(),
        "failed": verdict.failed,
        "stalled": verdict.stalled,
    });
    body["uptimeSeconds"] = json!(state.started.elapsed().as_secs());
    Ok(freshness.wrap(Json(body)))
}

async fn system_metrics(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let hours = hours(&mut q);
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, NAME, min_position).await?;
    let body = mc_fleet::read::system_series(&state.pool, hours, now_ms())
        .await
        .map_err(internal)?;
    Ok(freshness.wrap(Json(body)))
}

/// The latest events of the log, newest first: `{items: [...]}` (`limit` 1..500, 50).
async fn events(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let limit = q.u64("limit", 1, EVENTS_MAX).unwrap_or(50) as i64;
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, mc_projections::archive::NAME, min_position).await?;
    let items = mc_projections::events::latest(&state.pool, limit).await?;
    Ok(freshness.wrap(Json(json!({ "items": items }))))
}

async fn limits(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, NAME, min_position).await?;
    Ok(freshness.wrap(Json(mc_fleet::limits(&state.pool).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MetricLimits)]
pub(crate) struct LimitsPut {
    #[serde(default)]
    agent: BTreeMap<String, LimitsBody>,
    #[serde(default)]
    system: BTreeMap<String, LimitsBody>,
}

/// Replace the limits on agent and system metrics (admin): 200 with `version`/`position`;
/// every field error named (`agent.successRate.warnLow`).
async fn configure(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(b): Body<LimitsPut>,
) -> Result<Response, ApiError> {
    let mut f = Fields::default();
    let raw = |m: BTreeMap<String, LimitsBody>| m.into_iter().map(|(k, l)| (k, l.raw())).collect();
    let limits = f.take_all(FleetLimits::parse(raw(b.agent), raw(b.system)));
    let limits = f.finish(|| limits)?;
    let check = if_match(&headers)?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = mc_fleet::configure_limits(state.agents.handler(), &ctx, check, limits).await?;
    let body = json!({"version": done.version, "position": done.position});
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// How often the system's metrics go to the relay (`system` topic) and to `/metrics`.
const TICK: std::time::Duration = std::time::Duration::from_secs(5);

/// Every [`TICK`]: the system's metrics as Prometheus gauges an operator would alert on, and as
/// a `metrics` frame on the relay's `system` topic.
pub(crate) async fn tick(state: AppState, cancel: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
        if !state.is_postgres_up() {
            continue;
        }
        let m = match mc_fleet::read::system_metrics(&state.pool, now_ms()).await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "fleet metrics not read");
                continue;
            }
        };
        publish_gauges(&m);
        state.relay.announce(&mc_relay::Topic::System, &m);
    }
}

fn publish_gauges(m: &Value) {
    let n = |k: &str| m.get(k).and_then(Value::as_f64);
    if let Some(v) = n("healthScore") {
        mc_metrics::gauge(
            "mc_fleet_health_score",
            "fleet health score (0-100, see README)",
            &[],
            v,
        );
    }
    for (status, key) in [
        ("BUSY", "agentsActive"),
        ("IDLE", "agentsIdle"),
        ("OFFLINE", "agentsOffline"),
        ("ERROR", "agentsError"),
    ] {
        if let Some(v) = n(key) {
            mc_metrics::gauge(
                "mc_fleet_agents",
                "registered agents by status",
                &[("status", status)],
                v,
            );
        }
    }
    for (state, key) in [
        ("pending", "tasksPending"),
        ("completed", "tasksCompleted"),
        ("failed", "tasksFailed"),
    ] {
        if let Some(v) = n(key) {
            mc_metrics::gauge(
                "mc_fleet_task_runs",
                "task runs by state",
                &[("state", state)],
                v,
            );
        }
    }
    if let Some(v) = n("successRate") {
        mc_metrics::gauge(
            "mc_fleet_success_rate",
            "share of missions and task runs finished in the last hour that succeeded",
            &[],
            v,
        );
    }
    if let Some(v) = n("eventsPerMinute") {
        mc_metrics::gauge(
            "mc_fleet_events_per_minute",
            "events appended per minute (last 5 minutes)",
            &[],
            v,
        );
    }
}
