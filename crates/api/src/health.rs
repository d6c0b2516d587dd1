//! `/health*`: liveness, readiness (NATS, Postgres, migrations, streams), details.

use crate::auth::Routes;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub fn routes(r: Routes) -> Routes {
    r.get("/health", health)
        .get("/health/live", live)
        .get("/health/ready", ready)
        .get("/health/detailed", detailed)
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// Postgres answers and the latest migration is applied.
async fn postgres_ok(state: &AppState) -> (bool, Option<f64>) {
    // Known down by the once-a-second probe: answer now rather than wait on the pool.
    if !state.is_postgres_up() {
        return (false, None);
    }
    let started = Instant::now();
    let ok = tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pool))
        .await
        .is_ok_and(|r| r.is_ok());
    (ok, ok.then(|| started.elapsed().as_secs_f64() * 1000.0))
}

fn nats_ok(state: &AppState) -> bool {
    state.nats.connection_state() == async_nats::connection::State::Connected
}

async fn readiness(state: &AppState) -> (bool, Value) {
    let (ok, body, _, _) = readiness_with(state, postgres_ok(state).await.0).await;
    (ok, body)
}

/// Readiness given the outcome of the Postgres check, and the projections' standings it judged
/// (so `/health/detailed` runs neither twice).
async fn readiness_with(
    state: &AppState,
    pg: bool,
) -> (bool, Value, Option<u64>, Vec<crate::projections::Standing>) {
    let nats = nats_ok(state);
    let migrated = state.is_migrated();
    let streams = state.is_provisioned();
    let paired = state.is_log_paired();
    let workers = state.serving.load(std::sync::atomic::Ordering::Acquire);
    // Until the token table has caught up with the log, every authenticated request answers 503.
    let tokens = state.auth.tokens().is_ready();
    let mut ok = pg && nats && migrated && streams && paired && workers && tokens;
    let mut body = json!({"status": "", "checks": {
        "postgres": pg, "nats": nats, "migrations": migrated, "streams": streams, "eventLog": paired,
        "workers": workers, "tokens": tokens}});
    let (head, standings, verdict) = crate::projections::consumer_health(state).await;
    let (failed, stalled) = (verdict.failed, verdict.stalled);
    ok &= failed.is_empty() && stalled.is_empty();
    body["checks"]["consumers"] = json!(failed.is_empty() && stalled.is_empty());
    if !failed.is_empty() {
        body["failed"] = json!(failed);
    }
    if !stalled.is_empty() {
        body["stalled"] = json!(stalled);
    }
    if let Some(max) = state.ready_max_lag {
        let lagging: Vec<&str> = standings
            .iter()
            .filter(|s| s.lag_events.is_none_or(|l| l > max))
            .map(|s| s.name)
            .collect();
        ok &= lagging.is_empty();
        body["checks"]["lag"] = json!(lagging.is_empty());
        if !lagging.is_empty() {
            body["lagging"] = json!(lagging);
        }
    }
    body["status"] = json!(if ok { "ready" } else { "not ready" });
    if let Some(reason) = state.log_mismatch.lock().ok().and_then(|m| m.clone()) {
        body["error"] = json!(reason);
    }
    (ok, body, head, standings)
}

async fn health(State(state): State<AppState>) -> Response {
    ready(State(state)).await
}

async fn ready(State(state): State<AppState>) -> Response {
    let (ok, body) = readiness(&state).await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Resident memory of this process, from /proc (Linux); `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

async fn detailed(State(state): State<AppState>) -> Response {
    let (pg, pg_latency) = postgres_ok(&state).await;
    let (ok, readiness, head, projections) = readiness_with(&state, pg).await;
    let body = json!({
        "status": readiness["status"],
        "checks": readiness["checks"],
        "nats": {"connected": nats_ok(&state), "streamHead": head},
        "postgres": {"reachable": pg_latency.is_some(), "latencyMs": pg_latency},
        "projections": projections,
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "memory": {"rssBytes": rss_bytes()},
        "version": env!("CARGO_PKG_VERSION"),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
