//! `/api/v1/spacecraft`: register, list, get, and the per-parameter limits
//! (`GET/PUT /spacecraft/{id}/config`), each set in force from its effective time.

use crate::auth::{Caller, Routes};
use crate::extract::{if_match, Body, Fields, Page, QueryParams, DEFAULT_LIMIT, MAX_LIMIT};
use crate::problem::ApiError;
use crate::read;
use crate::respond;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use mc_domain::spacecraft::{LimitsConfig, RawLimits, SpacecraftId};
use mc_domain::values::{Metadata, Name};
use mc_domain::FieldError;
use mc_projections::spacecraft as model;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

pub fn routes(r: Routes) -> Routes {
    r.get("/spacecraft", list)
        .post("/spacecraft", create)
        .get("/spacecraft/{id}", fetch)
        .get("/spacecraft/{id}/config", config)
        .put("/spacecraft/{id}/config", configure)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = SpacecraftRegistration)]
pub struct CreateBody {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub metadata: Value,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = ParameterLimits)]
pub struct LimitsBody {
    pub warn_low: Option<f64>,
    pub warn_high: Option<f64>,
    pub crit_low: Option<f64>,
    pub crit_high: Option<f64>,
    pub persistence: Option<i64>,
    pub hysteresis: Option<f64>,
    pub stale_after: Option<i64>,
    pub allowed_values: Option<Vec<String>>,
}

impl LimitsBody {
    pub fn raw(self) -> RawLimits {
        RawLimits {
            warn_low: self.warn_low,
            warn_high: self.warn_high,
            crit_low: self.crit_low,
            crit_high: self.crit_high,
            persistence: self.persistence,
            hysteresis: self.hysteresis,
            stale_after: self.stale_after,
            allowed_values: self.allowed_values,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = LimitsConfig)]
pub struct ConfigBody {
    pub parameters: BTreeMap<String, LimitsBody>,
    /// RFC 3339 or epoch milliseconds; now when absent.
    pub effective_at: Option<Value>,
}

/// A time as RFC 3339 text or epoch milliseconds.
pub fn parse_time(value: &Value, field: &str) -> Result<DateTime<Utc>, FieldError> {
    let bad = || FieldError::new(field, "must be an RFC 3339 time or epoch milliseconds");
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad()),
        Value::Number(n) => n
            .as_i64()
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// A limits configuration as clients write it (the body of `PUT /spacecraft/{id}/config`,
/// also read from files by `mission-control telemetry replay --limits`): every field error
/// named; `effectiveAt` now when absent.
pub fn parse_config(body: ConfigBody) -> Result<(LimitsConfig, DateTime<Utc>), ApiError> {
    let mut f = Fields::default();
    let raw = body
        .parameters
        .into_iter()
        .map(|(k, l)| (k, l.raw()))
        .collect();
    let limits = f.take_all(LimitsConfig::parse(raw));
    let effective_at = match &body.effective_at {
        Some(v) => f.take(parse_time(v, "effectiveAt")),
        None => Some(Utc::now()),
    };
    let (limits, effective_at) = f.finish(|| Some((limits?, effective_at?)))?;
    Ok((limits, effective_at))
}

/// [`parse_config`] of JSON text.
pub fn parse_config_json(bytes: &[u8]) -> Result<(LimitsConfig, DateTime<Utc>), ApiError> {
    parse_config(crate::extract::parse_json::<ConfigBody>(bytes)?)
}

fn parse_id(raw: &str) -> Result<SpacecraftId, ApiError> {
    SpacecraftId::parse(raw, "id").map_err(|e| ApiError::Validation(vec![e]))
}

async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let mut f = Fields::default();
    let id = f.take(SpacecraftId::parse(&body.id, "id"));
    let name = f.take(Name::parse(&body.name, "name"));
    let metadata = f.take(Metadata::parse(body.metadata, "metadata"));
    let (id, name, metadata) = f.finish(|| Some((id?, name?, metadata?)))?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state
        .spacecraft
        .register(&ctx, id.clone(), name, metadata)
        .await?;
    Ok(respond::command(
        StatusCode::CREATED,
        &id,
        &done,
        Some("spacecraft"),
    ))
}

async fn configure(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ConfigBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let check = if_match(&headers)?;
    let (limits, effective_at) = parse_config(body)?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state
        .spacecraft
        .configure(&ctx, &id, check, limits, effective_at.timestamp_millis())
        .await?;
    Ok(respond::command(StatusCode::OK, &id, &done, None))
}

async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let pool = state.pool.clone();
    respond::one(
        &state,
        model::NAME,
        params,
        "spacecraft",
        model::get(&pool, id.as_str()),
    )
    .await
}

/// The limits in force at `at` (default now), with the spacecraft's whole limits history.
async fn config(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut q = QueryParams::new(params);
    let min_position = q.min_position();
    let at = q.parse("at", |s| {
        let v = s
            .parse::<i64>()
            .map_or_else(|_| Value::String(s.to_owned()), Value::from);
        parse_time(&v, "at").map_err(|e| e.message)
    });
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, min_position).await?;
    if model::get(&state.pool, id.as_str()).await?.is_none() {
        return Err(ApiError::NotFound { what: "spacecraft" });
    }
    let at = at.unwrap_or_else(Utc::now);
    let in_force = model::limits_at(&state.pool, id.as_str(), at).await?;
    let history = model::limits_history(&state.pool, id.as_str()).await?;
    let body = json!({
        "spacecraftId": id.as_str(),
        "at": at,
        "inForce": in_force,
        "history": history,
    });
    Ok(freshness.wrap(Json(body)))
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    // Spacecraft ids are text: the cursor is the last id itself, not a uuid.
    let page = Page {
        limit: q.u64("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT),
        cursor: None,
        min_position: q.min_position(),
    };
    let cursor = q.parse("cursor", |s| {
        SpacecraftId::parse(s, "cursor")
            .map(|id| id.as_str().to_owned())
            .map_err(|_| "is not a cursor returned by this API".to_owned())
    });
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, page.min_position).await?;
    let items = model::list(&state.pool, cursor.as_deref(), page.fetch()).await?;
    Ok(freshness.wrap(Json(page.render(items, |s| s.id.clone()))))
}

impl respond::Versioned for model::SpacecraftRow {
    fn version(&self) -> i64 {
        self.version
    }
}
