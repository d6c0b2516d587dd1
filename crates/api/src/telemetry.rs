//! `/api/v1/telemetry`: HTTP ingest (202 with the stream position) and the telemetry
//! queries: snapshots or one parameter's samples, latest values, rollups, and analyze.

use crate::auth::{Caller, Routes};
use crate::extract::{QueryParams, RawBody, DEFAULT_LIMIT, MAX_LIMIT};
use crate::problem::ApiError;
use crate::read;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::FieldError;
use mc_telemetry::ingest::{self, IngestError};
use mc_telemetry::read::{self as model, FrameCursor, Range};
use mc_telemetry::wire::Format;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Largest telemetry request body (an array of snapshots).
pub const MAX_TELEMETRY_BODY: usize = 8 * 1024 * 1024;
const ANALYZE_MAX: u64 = 10_000;

pub fn routes(r: Routes) -> Routes {
    r.get("/telemetry", list)
        .post("/telemetry", publish)
        .get("/telemetry/latest", latest)
        .get("/telemetry/rollups", rollups)
        .get("/telemetry/analyze", analyze)
}

async fn publish(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    RawBody(body): RawBody<MAX_TELEMETRY_BODY>,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Some(ct) = content_type {
        let ct = ct.to_ascii_lowercase();
        if !(ct.starts_with("application/json") || ct.contains("+json") || ct.contains("msgpack")) {
            return Err(ApiError::BadHeader {
                header: "Content-Type",
                message: "must be application/json or application/msgpack".into(),
            });
        }
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let accepted = ingest::ingest(
        state.log.jetstream(),
        &state.telemetry_registry,
        Format::from_content_type(content_type),
        &body,
        Utc::now().timestamp_millis(),
        state.telemetry.max_future_ms,
        ingest::Publisher {
            idempotency_key: key.as_deref(),
            allowed: caller.spacecraft.as_deref(),
        },
    )
    .await
    .map_err(|e| match e {
        IngestError::Undecodable(m) => ApiError::MalformedJson(m),
        IngestError::Invalid(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|i| FieldError::new(i.field, i.message))
                .collect(),
        ),
        IngestError::UnknownSpacecraft(sc) => ApiError::Validation(vec![FieldError::new(
            "spacecraftId",
            format!("{sc} is not registered (this server rejects unknown spacecraft)"),
        )]),
        IngestError::Forbidden(spacecraft) => {
            ApiError::Auth(mc_auth::AuthError::SpacecraftForbidden { spacecraft })
        }
        IngestError::Unavailable(m) => ApiError::Unavailable(m),
    })?;
    let position = accepted
        .positions
        .iter()
        .map(|(_, p)| *p)
        .max()
        .unwrap_or(0);
    let positions: Map<String, Value> = accepted
        .positions
        .into_iter()
        .map(|(sc, p)| (sc, p.into()))
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "accepted": accepted.snapshots,
            "samples": accepted.samples,
            "position": position,
            "positions": positions,
        })),
    )
        .into_response())
}

fn spacecraft_param(q: &mut QueryParams) -> Option<SpacecraftId> {
    match q.str("spacecraftId") {
        None => {
            q.errors
                .push(FieldError::new("spacecraftId", "is required"));
            None
        }
        Some(_) => q.parse("spacecraftId", |s| {
            SpacecraftId::parse(s, "spacecraftId").map_err(|e| e.message)
        }),
    }
}

fn range(q: &mut QueryParams) -> Range {
    let range = Range {
        from: q.time("from"),
        to: q.time("to"),
    };
    if let (Some(f), Some(t)) = (range.from, range.to) {
        if f > t {
            q.errors
                .push(FieldError::new("to", "must not be before from"));
        }
    }
    range
}

fn limit(q: &mut QueryParams, max: u64) -> u64 {
    q.u64("limit", 1, max).unwrap_or(DEFAULT_LIMIT)
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let sc = spacecraft_param(&mut q);
    let parameter = q.str("parameter").map(str::to_owned);
    let range = range(&mut q);
    let limit = limit(&mut q, MAX_LIMIT);
    let cursor = q.parse("cursor", |s| {
        FrameCursor::decode(s).ok_or_else(|| "is not a cursor returned by this API".to_owned())
    });
    let min_position = q.min_position();
    q.finish()?;
    let sc = sc.ok_or(ApiError::Internal("spacecraftId checked above".into()))?;
    let freshness = read::wait(&state, mc_telemetry::STORE, min_position).await?;
    let mut rows = model::frames(
        &state.pool,
        sc.as_str(),
        parameter.as_deref(),
        &range,
        cursor,
        limit as i64 + 1,
    )
    .await?;
    let next = (rows.len() > limit as usize).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.cursor().encode())
    });
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| match &parameter {
            None => json!({
                "spacecraftId": r.spacecraft_id,
                "timestamp": r.ts,
                "position": r.position,
                "parameters": r.value,
            }),
            Some(p) => json!({
                "spacecraftId": r.spacecraft_id,
                "parameter": p,
                "timestamp": r.ts,
                "position": r.position,
                "value": r.value,
            }),
        })
        .collect();
    Ok(freshness.wrap(Json(json!({"items": items, "nextCursor": next.flatten()}))))
}

async fn latest(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let sc = spacecraft_param(&mut q);
    let min_position = q.min_position();
    q.finish()?;
    let sc = sc.ok_or(ApiError::Internal("spacecraftId checked above".into()))?;
    let freshness = read::wait(&state, mc_telemetry::STORE, min_position).await?;
    let rows = model::latest(&state.pool, sc.as_str()).await?;
    let parameters: Map<String, Value> = rows
        .into_iter()
        .map(|r| {
            (
                r.parameter,
                json!({"value": r.value, "timestamp": r.ts, "position": r.position}),
            )
        })
        .collect();
    Ok(freshness.wrap(Json(
        json!({"spacecraftId": sc.as_str(), "parameters": parameters}),
    )))
}

async fn rollups(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let sc = spacecraft_param(&mut q);
    let parameter = q.str("parameter").map(str::to_owned);
    if parameter.is_none() {
        q.errors.push(FieldError::new("parameter", "is required"));
    }
    let interval = q
        .parse("interval", |s| match s {
            "1s" => Ok(1),
            "1m" => Ok(60),
            "1h" => Ok(3600),
            _ => Err("must be 1s, 1m or 1h".to_owned()),
        })
        .unwrap_or(60);
    let range = range(&mut q);
    let limit = q.u64("limit", 1, 10_000).unwrap_or(DEFAULT_LIMIT);
    let cursor = q.parse("cursor", |s| {
        s.parse::<i64>()
            .ok()
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .ok_or_else(|| "is not a cursor returned by this API".to_owned())
    });
    let min_position = q.min_position();
    q.finish()?;
    let (Some(sc), Some(parameter)) = (sc, parameter) else {
        return Err(ApiError::Internal("checked above".into()));
    };
    let freshness = read::wait(&state, mc_telemetry::STORE, min_position).await?;
    let mut rows = model::rollups(
        &state.pool,
        sc.as_str(),
        &parameter,
        interval,
        &range,
        cursor,
        limit as i64 + 1,
    )
    .await?;
    let next = (rows.len() > limit as usize).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.bucket.timestamp_micros().to_string())
    });
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "bucket": r.bucket,
                "count": r.count,
                "min": r.min,
                "max": r.max,
                "avg": r.sum / r.count.max(1) as f64,
                "sum": r.sum,
                "first": r.first,
                "firstAt": r.first_at,
                "last": r.last,
                "lastAt": r.last_at,
            })
        })
        .collect();
    let interval_name = match interval {
        1 => "1s",
        60 => "1m",
        _ => "1h",
    };
    Ok(freshness.wrap(Json(json!({
        "spacecraftId": sc.as_str(),
        "parameter": parameter,
        "interval": interval_name,
        "items": items,
        "nextCursor": next.flatten(),
    }))))
}

async fn analyze(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let sc = spacecraft_param(&mut q);
    let limit = q.u64("limit", 1, ANALYZE_MAX).unwrap_or(100);
    let min_position = q.min_position();
    q.finish()?;
    let sc = sc.ok_or(ApiError::Internal("spacecraftId checked above".into()))?;
    let freshness = read::wait(&state, mc_telemetry::STORE, min_position).await?;
    let (snapshots, violations) = model::analyze(&state.pool, sc.as_str(), limit as i64)
        .await
        .map_err(ApiError::Unavailable)?;
    let violations: Vec<Value> = violations
        .into_iter()
        .map(|v| {
            json!({
                "timestamp": v.timestamp,
                "position": v.position,
                "parameter": v.parameter,
                "value": v.value,
                "severity": v.severity.as_str(),
                "limit": v.limit,
                "threshold": v.threshold,
            })
        })
        .collect();
    Ok(freshness.wrap(Json(json!({
        "spacecraftId": sc.as_str(),
        "snapshots": snapshots,
        "violations": violations,
    }))))
}
