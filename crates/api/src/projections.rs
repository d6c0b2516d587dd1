//! `GET /api/v1/projections` (positions, lag, state, failures) and `GET /metrics`
//! (Prometheus text).

use crate::auth::Routes;
use crate::problem::ApiError;
use crate::state::{AppState, ProjectorView};
use async_nats::jetstream::stream::Stream;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_eventlog::streams;
use mc_projection::ProjectorStatus;
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

pub fn routes(r: Routes) -> Routes {
    r.get("/projections", list)
}

pub fn metrics_routes(r: Routes) -> Routes {
    r.get("/metrics", metrics)
}

const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// One projector's standing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Standing {
    pub name: &'static str,
    pub version: u32,
    pub subjects: &'static [&'static str],
    pub tables: &'static [&'static str],
    pub position: u64,
    /// Events in the log not applied yet (`None` while NATS is unreachable).
    pub lag_events: Option<u64>,
    /// Age of the oldest event not applied yet.
    pub lag_seconds: Option<f64>,
    /// `starting`, `running`, `retrying`, `failed`, `stopped`, or `elsewhere` (another process).
    pub state: &'static str,
    /// Why it failed (state `failed`) or is retrying.
    pub error: Option<String>,
    /// The last transient error it recovered from or is retrying.
    pub last_error: Option<String>,
    /// Seconds since its checkpoint last moved (in this process).
    pub idle_seconds: Option<f64>,
    /// A blue/green rebuild in progress.
    pub rebuild: Option<Value>,
}

/// A consumer of `MC_TELEMETRY` (positions are that stream's sequences).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryStanding {
    pub name: &'static str,
    pub stream: &'static str,
    pub position: u64,
    /// Messages in `MC_TELEMETRY` not consumed yet (`None` while NATS is unreachable).
    pub lag_messages: Option<u64>,
    /// Age of the oldest message not consumed yet.
    pub lag_seconds: Option<f64>,
    pub state: &'static str,
    pub error: Option<String>,
    pub last_error: Option<String>,
    pub idle_seconds: Option<f64>,
}

/// What this process knows of one consumer, before lag is computed.
struct Entry {
    name: &'static str,
    version: u32,
    subjects: &'static [&'static str],
    tables: &'static [&'static str],
    position: u64,
    state: &'static str,
    error: Option<String>,
    last_error: Option<String>,
    idle_seconds: Option<f64>,
}

impl Entry {
    fn of(view: &ProjectorView) -> Self {
        let monitor = view.monitor.lock().map(|m| m.clone()).ok();
        let (state, error) = match monitor.as_ref().map(|m| &m.status) {
            None | Some(ProjectorStatus::Starting) => ("starting", None),
            Some(ProjectorStatus::Running) => ("running", None),
            Some(ProjectorStatus::Retrying { error }) => ("retrying", Some(error.clone())),
            Some(ProjectorStatus::Stopped) => ("stopped", None),
            Some(ProjectorStatus::Failed { position, error }) => {
                ("failed", Some(format!("at position {position}: {error}")))
            }
        };
        Self {
            name: view.name,
            version: view.version,
            subjects: view.subjects,
            tables: view.tables,
            position: *view.position.borrow(),
            state,
            error,
            last_error: monitor.as_ref().and_then(|m| m.last_error.clone()),
            idle_seconds: monitor.map(|m| m.advanced_at.elapsed().as_secs_f64()),
        }
    }

    fn elsewhere(name: &'static str, position: u64) -> Self {
        Self {
            name,
            version: 1,
            subjects: &[],
            tables: &[],
            position,
            state: "elsewhere",
            error: None,
            last_error: None,
            idle_seconds: None,
        }
    }
}

/// The checkpoint of a consumer running in another process (0 while Postgres is away).
async fn elsewhere_position(state: &AppState, name: &str) -> u64 {
    if !state.is_postgres_up() {
        return 0;
    }
    tokio::time::timeout(QUERY_TIMEOUT, state.positions.current(name))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0)
}

/// Head of `stream` and a handle to read its messages (both `None` while NATS is away).
async fn stream_head(state: &AppState, name: &str) -> (Option<u64>, Option<Stream>) {
    let stream = tokio::time::timeout(QUERY_TIMEOUT, state.log.jetstream().get_stream(name))
        .await
        .ok()
        .and_then(Result::ok);
    let head = stream.as_ref().map(|s| s.cached_info().state.last_sequence);
    (head, stream)
}

/// Messages after `position` and the age of the oldest of them.
async fn lag(
    head: Option<u64>,
    stream: Option<&Stream>,
    position: u64,
) -> (Option<u64>, Option<f64>) {
    let lag = head.map(|h| h.saturating_sub(position));
    let mut seconds = lag.map(|_| 0.0);
    if let (Some(l), Some(stream)) = (lag, stream) {
        if l > 0 {
            if let Ok(Ok(m)) =
                tokio::time::timeout(QUERY_TIMEOUT, stream.get_raw_message(position + 1)).await
            {
                let age = time_now_nanos() - m.time.unix_timestamp_nanos();
                seconds = Some((age.max(0) as f64) / 1e9);
            }
        }
    }
    (lag, seconds)
}

/// The log head (if NATS answers) and every projector's standing: this process's, or in an
/// API-only process every registered projection as the checkpoint table tells.
pub async fn standings(state: &AppState) -> (Option<u64>, Vec<Standing>) {
    let (head, stream) = stream_head(state, streams::EVENTS).await;
    let mut entries: Vec<Entry> = state.projectors.iter().map(Entry::of).collect();
    if entries.is_empty() {
        for p in crate::app::all_projections(&state.agents) {
            let position = elsewhere_position(state, p.name()).await;
            entries.push(Entry {
                version: p.version(),
                subjects: p.subjects(),
                tables: p.tables(),
                ..Entry::elsewhere(p.name(), position)
            });
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    for p in entries {
        let (lag_events, lag_seconds) = lag(head, stream.as_ref(), p.position).await;
        // Postgres known down: say nothing of rebuilds rather than wait on the pool per row.
        let status = match state.is_postgres_up() {
            true => tokio::time::timeout(
                QUERY_TIMEOUT,
                mc_projection::rebuild::rebuild_status(&state.pool, p.name),
            )
            .await
            .ok(),
            false => None,
        };
        let rebuild = match status {
            Some(Ok(Some(r))) => {
                let rate = r.position as f64 / r.running_seconds.max(1e-3);
                let target = head.unwrap_or(r.target).max(r.target);
                Some(json!({
                    "version": r.version,
                    "position": r.position,
                    "head": target,
                    "percent": if target == 0 { 100.0 } else { (r.position as f64 * 100.0 / target as f64).min(100.0) },
                    "eventsPerSecond": rate,
                    "etaSeconds": (rate > 0.0).then(|| target.saturating_sub(r.position) as f64 / rate),
                }))
            }
            _ => None,
        };
        out.push(Standing {
            rebuild,
            name: p.name,
            version: p.version,
            subjects: p.subjects,
            tables: p.tables,
            position: p.position,
            lag_events,
            lag_seconds,
            state: p.state,
            error: p.error,
            last_error: p.last_error,
            idle_seconds: p.idle_seconds,
        });
    }
    (head, out)
}

/// The telemetry stream's head and the standing of its consumers.
pub async fn telemetry_standings(state: &AppState) -> (Option<u64>, Vec<TelemetryStanding>) {
    let (head, stream) = stream_head(state, streams::TELEMETRY).await;
    let mut entries: Vec<Entry> = state.consumers.iter().map(Entry::of).collect();
    if entries.is_empty() {
        for name in [mc_telemetry::STORE, mc_telemetry::ANOMALY] {
            let position = elsewhere_position(state, name).await;
            entries.push(Entry::elsewhere(name, position));
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let (lag_messages, lag_seconds) = lag(head, stream.as_ref(), e.position).await;
        out.push(TelemetryStanding {
            name: e.name,
            stream: streams::TELEMETRY,
            position: e.position,
            lag_messages,
            lag_seconds,
            state: e.state,
            error: e.error,
            last_error: e.last_error,
            idle_seconds: e.idle_seconds,
        });
    }
    (head, out)
}

/// Consumers of this process that are failed, or stuck: messages waiting longer than the stall
/// time and no checkpoint move for as long (retrying forever, or wedged on a lock).
#[derive(Debug, Default)]
pub struct Verdict {
    pub failed: Vec<&'static str>,
    pub stalled: Vec<&'static str>,
}

/// The log head, the event projections' standings and the verdict over every consumer of this
/// process.
pub async fn consumer_health(state: &AppState) -> (Option<u64>, Vec<Standing>, Verdict) {
    let (head, standings) = standings(state).await;
    let (_, telemetry) = telemetry_standings(state).await;
    let stall = state.ready_stall.as_secs_f64();
    let all = standings
        .iter()
        .map(|s| (s.name, s.state, s.lag_seconds, s.idle_seconds))
        .chain(
            telemetry
                .iter()
                .map(|t| (t.name, t.state, t.lag_seconds, t.idle_seconds)),
        );
    let mut verdict = Verdict::default();
    for (name, consumer_state, lag_seconds, idle_seconds) in all {
        if consumer_state == "failed" {
            verdict.failed.push(name);
        } else if lag_seconds.is_some_and(|l| l > stall) && idle_seconds.is_some_and(|i| i > stall)
        {
            verdict.stalled.push(name);
        }
    }
    (head, standings, verdict)
}

fn time_now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or_default()
}

#[derive(sqlx::FromRow, Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    projection: String,
    position: i64,
    error: String,
    skipped: bool,
    recorded_at: chrono::DateTime<chrono::Utc>,
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (head, standings) = standings(&state).await;
    let failures: Vec<Failure> = sqlx::query_as(
        "SELECT projection, position, error, skipped, recorded_at FROM projection_failures \
         ORDER BY recorded_at DESC LIMIT 100",
    )
    .fetch_all(&state.pool)
    .await?;
    let (telemetry_head, telemetry) = telemetry_standings(&state).await;
    Ok(Json(json!({
        "streamHead": head,
        "projections": standings,
        "failures": failures,
        "telemetryHead": telemetry_head,
        "telemetry": telemetry,
    })))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let (head, standings, verdict) = consumer_health(&state).await;
    for s in standings
        .iter()
        .map(|s| s.name)
        .chain([mc_telemetry::STORE, mc_telemetry::ANOMALY])
    {
        mc_metrics::gauge(
            "mc_projection_stalled",
            "1 while a consumer has messages waiting and has not advanced for the stall time.",
            &[("projection", s)],
            if verdict.stalled.contains(&s) {
                1.0
            } else {
                0.0
            },
        );
    }
    let relay = state.relay.stats();
    mc_metrics::gauge(
        "mc_relay_clients",
        "Live clients (WebSocket and SSE) connected to this process.",
        &[],
        relay.clients as f64,
    );
    for stream in mc_relay::StreamKind::ALL {
        mc_metrics::gauge(
            "mc_relay_position",
            "Last stream position the relay fanned out to its clients.",
            &[("stream", stream.as_str())],
            relay.positions.get(stream) as f64,
        );
    }
    if let Some(h) = head {
        mc_metrics::gauge(
            "mc_stream_last_sequence",
            "Last stream sequence of MC_EVENTS.",
            &[],
            h as f64,
        );
    }
    for s in &standings {
        let labels = [("projection", s.name)];
        mc_metrics::gauge(
            "mc_projection_position",
            "Last position a projection applied.",
            &labels,
            s.position as f64,
        );
        if let Some(lag) = s.lag_events {
            mc_metrics::gauge(
                "mc_projection_lag_events",
                "Events in the log a projection has not applied.",
                &labels,
                lag as f64,
            );
        }
        if let Some(secs) = s.lag_seconds {
            mc_metrics::gauge(
                "mc_projection_lag_seconds",
                "Age of the oldest event a projection has not applied.",
                &labels,
                secs,
            );
        }
        let failed = if s.state == "failed" { 1.0 } else { 0.0 };
        mc_metrics::gauge(
            "mc_projection_failed",
            "1 when a projection stopped on an event it cannot apply.",
            &labels,
            failed,
        );
    }
    for t in telemetry_standings(&state).await.1 {
        let failed = if t.state == "failed" { 1.0 } else { 0.0 };
        mc_metrics::gauge(
            "mc_projection_failed",
            "1 when a projection stopped on an event it cannot apply.",
            &[("projection", t.name)],
            failed,
        );
        let labels = [("consumer", t.name)];
        mc_metrics::gauge(
            "mc_telemetry_consumer_position",
            "Last MC_TELEMETRY sequence a telemetry consumer committed.",
            &labels,
            t.position as f64,
        );
        if let Some(lag) = t.lag_messages {
            mc_metrics::gauge(
                "mc_telemetry_consumer_lag_messages",
                "MC_TELEMETRY messages a telemetry consumer has not committed.",
                &labels,
                lag as f64,
            );
        }
    }
    mc_metrics::gauge(
        "mc_uptime_seconds",
        "Seconds since the process started.",
        &[],
        state.started.elapsed().as_secs_f64(),
    );
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        mc_metrics::render(),
    )
        .into_response()
}
