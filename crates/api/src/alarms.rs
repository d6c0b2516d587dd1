//! `/api/v1/alarms`: list and get alarms, their transition history, and the operator actions
//! (`acknowledge`, `shelve`, `unshelve`, `clear`), each with the operator and a comment.

use crate::auth::{Caller, Routes};
use crate::extract::{if_match, Body, Fields, QueryParams, DEFAULT_LIMIT, MAX_LIMIT};
use crate::problem::ApiError;
use crate::read;
use crate::respond;
use crate::spacecraft::parse_time;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use mc_domain::alarm::{AlarmCommand, AlarmKind, Operator, SHELVE_MAX_MS};
use mc_domain::ids::AlarmId;
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::telemetry::Severity;
use mc_domain::values::{Content, Name};
use mc_domain::FieldError;
use mc_projections::alarms as model;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn routes(r: Routes) -> Routes {
    r.get("/alarms", list)
        .get("/alarms/{id}", fetch)
        .get("/alarms/{id}/history", history)
        .post("/alarms/{id}/acknowledge", acknowledge)
        .post("/alarms/{id}/clear", clear)
        .post("/alarms/{id}/shelve", shelve)
        .post("/alarms/{id}/unshelve", unshelve)
}

/// The body of every action: who acts, and why.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = OperatorAction)]
pub struct ActionBody {
    pub operator: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = Shelve)]
pub struct ShelveBody {
    pub operator: String,
    #[serde(default)]
    pub comment: String,
    /// How long to shelve for (1 s to 30 days); or `until`.
    pub duration_seconds: Option<i64>,
    /// RFC 3339 or epoch milliseconds; or `durationSeconds`.
    pub until: Option<Value>,
}

pub(crate) fn parse_id(raw: &str) -> Result<AlarmId, ApiError> {
    AlarmId::parse(raw, "id").map_err(|e| ApiError::Validation(vec![e]))
}

fn operator(f: &mut Fields, name: &str, comment: &str) -> Option<Operator> {
    let name = f.take(Name::parse(name, "operator"));
    let comment = if comment.trim().is_empty() {
        Some(String::new())
    } else {
        f.take(Content::parse(comment, "comment"))
            .map(|c| c.as_str().to_owned())
    };
    Some(Operator {
        name: name?.as_str().to_owned(),
        comment: comment?,
    })
}

/// Run an operator action on an alarm and answer `{"id", "version", "position"}`.
async fn act(
    state: &AppState,
    caller: &mc_auth::Principal,
    headers: &HeaderMap,
    id: AlarmId,
    command: AlarmCommand,
) -> Result<Response, ApiError> {
    let check = if_match(headers)?;
    let ctx = match crate::idempotency::begin(state, headers, caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.alarms.execute(&ctx, id, check, command).await?;
    Ok(respond::command(StatusCode::OK, id, &done, None))
}

/// The command of `acknowledge`, `clear` or `unshelve` (`action` without the prefix).
pub(crate) fn action_command(
    action: &str,
    body: ActionBody,
    now_ms: i64,
) -> Result<AlarmCommand, ApiError> {
    let mut f = Fields::default();
    let operator = operator(&mut f, &body.operator, &body.comment);
    let operator = f.finish(|| operator)?;
    Ok(match action {
        "acknowledge" => AlarmCommand::Acknowledge {
            operator,
            at_ms: now_ms,
        },
        "clear" => AlarmCommand::Clear {
            operator,
            at_ms: now_ms,
        },
        _ => AlarmCommand::Unshelve {
            operator,
            at_ms: now_ms,
        },
    })
}

/// The command of `shelve`: until `until`, or `durationSeconds` from now.
pub(crate) fn shelve_command(body: ShelveBody, now_ms: i64) -> Result<AlarmCommand, ApiError> {
    let mut f = Fields::default();
    let operator = operator(&mut f, &body.operator, &body.comment);
    let max_seconds = SHELVE_MAX_MS / 1000;
    let until_ms = match (body.duration_seconds, &body.until) {
        (Some(s), None) if (1..=max_seconds).contains(&s) => Some(now_ms + s * 1000),
        (Some(_), None) => f.take(Err(FieldError::new(
            "durationSeconds",
            format!("must be an integer from 1 to {max_seconds} (30 days)"),
        ))),
        (None, Some(v)) => f.take(parse_time(v, "until").map(|t| t.timestamp_millis())),
        _ => f.take(Err(FieldError::new(
            "durationSeconds",
            "give exactly one of durationSeconds and until",
        ))),
    };
    let (operator, until_ms) = f.finish(|| Some((operator?, until_ms?)))?;
    Ok(AlarmCommand::Shelve {
        operator,
        until_ms,
        now_ms,
    })
}

async fn acknowledge(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ActionBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let command = action_command("acknowledge", body, Utc::now().timestamp_millis())?;
    act(&state, &caller, &headers, id, command).await
}

async fn clear(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ActionBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let command = action_command("clear", body, Utc::now().timestamp_millis())?;
    act(&state, &caller, &headers, id, command).await
}

async fn unshelve(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ActionBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let command = action_command("unshelve", body, Utc::now().timestamp_millis())?;
    act(&state, &caller, &headers, id, command).await
}

async fn shelve(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ShelveBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let command = shelve_command(body, Utc::now().timestamp_millis())?;
    act(&state, &caller, &headers, id, command).await
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
        "alarm",
        model::get(&pool, id.as_uuid()),
    )
    .await
}

async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut q = QueryParams::new(params);
    let limit = q.u64("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, min_position).await?;
    if model::get(&state.pool, id.as_uuid()).await?.is_none() {
        return Err(ApiError::NotFound { what: "alarm" });
    }
    let items = model::history(&state.pool, id.as_uuid(), limit as i64).await?;
    Ok(freshness.wrap(Json(json!({"id": id.to_string(), "items": items}))))
}

/// `<updated_at micros>.<id>` of the last row of a page.
fn encode_cursor(row: &model::AlarmRow) -> String {
    format!("{}.{}", row.updated_at.timestamp_micros(), row.id)
}

fn decode_cursor(s: &str) -> Option<(DateTime<Utc>, uuid::Uuid)> {
    let (micros, id) = s.split_once('.')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, uuid::Uuid::parse_str(id).ok()?))
}

const STATES: [&str; 7] = [
    "RAISED",
    "ACKNOWLEDGED",
    "RETURNED",
    "CLEARED",
    "ACTIVE",
    "SHELVED",
    "UNSHELVED",
];

async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let limit = q.u64("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let min_position = q.min_position();
    let cursor = q.parse("cursor", |s| {
        decode_cursor(s).ok_or_else(|| "is not a cursor returned by this API".to_owned())
    });
    let filter = model::AlarmFilter {
        state: q.parse("state", |s| {
            let s = s.to_ascii_uppercase();
            STATES
                .contains(&s.as_str())
                .then_some(s)
                .ok_or_else(|| format!("must be one of {}", STATES.join(", ")))
        }),
        spacecraft_id: q.parse("spacecraftId", |s| {
            SpacecraftId::parse(s, "spacecraftId")
                .map(|id| id.as_str().to_owned())
                .map_err(|e| e.message)
        }),
        parameter: q.str("parameter").map(str::to_owned),
        severity: q.parse("severity", |s| {
            Severity::parse(&s.to_ascii_uppercase())
                .map(|v| v.as_str().to_owned())
                .ok_or_else(|| "must be WARNING or CRITICAL".to_owned())
        }),
        kind: q.parse("kind", |s| {
            AlarmKind::parse(&s.to_ascii_uppercase())
                .map(|v| v.as_str().to_owned())
                .ok_or_else(|| "must be LIMIT or STALE".to_owned())
        }),
    };
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, min_position).await?;
    let mut items = model::list(&state.pool, &filter, cursor, limit as i64 + 1).await?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(encode_cursor)
    } else {
        None
    };
    Ok(freshness.wrap(Json(json!({"items": items, "nextCursor": next}))))
}

impl respond::Versioned for model::AlarmRow {
    fn version(&self) -> i64 {
        self.version
    }
}
