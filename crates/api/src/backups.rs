//! `/api/v1/backups`: glue over `mc_backup::BackupService` (background jobs with progress, the
//! listing, verification, restores into the configured target).

use crate::auth::{Caller, Routes};
use crate::extract::{parse_json, RawBody};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_backup::{TelemetryRange, Until};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.get("/backups", list)
        .post("/backups", create)
        .get("/backups/{id}", fetch)
        .post("/backups/{id}/verify", verify)
        .post("/backups/{id}/restore", restore)
}

/// `{"items": [{id, state, ...}]}`, oldest first.
async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"items": state.backups.list()?})))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BackupRequest)]
pub(crate) struct CreateBody {
    /// `true` (all telemetry kept) or `{from?, to?}` (RFC 3339 times or ages like `24h`).
    telemetry: Option<Value>,
}

/// The telemetry a backup request asks for.
fn telemetry_range(v: Option<Value>) -> Result<Option<TelemetryRange>, ApiError> {
    let bound = |field: &str, v: Option<&Value>| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => TelemetryRange::parse_bound(s, chrono::Utc::now())
            .map(Some)
            .map_err(|e| ApiError::field(format!("telemetry.{field}"), e)),
        Some(_) => Err(ApiError::field(
            format!("telemetry.{field}"),
            "must be an RFC 3339 time or an age like 24h",
        )),
    };
    match v {
        None | Some(Value::Null | Value::Bool(false)) => Ok(None),
        Some(Value::Bool(true)) => Ok(Some(TelemetryRange::default())),
        Some(Value::Object(o)) => {
            if let Some(k) = o.keys().find(|k| *k != "from" && *k != "to") {
                return Err(ApiError::field(
                    format!("telemetry.{k}"),
                    "unknown field (expected from, to)",
                ));
            }
            let from = bound("from", o.get("from"))?;
            let to = bound("to", o.get("to"))?;
            TelemetryRange::new(from, to)
                .map(Some)
                .map_err(|e| ApiError::field("telemetry", e))
        }
        Some(_) => Err(ApiError::field(
            "telemetry",
            "must be true or an object {from, to}",
        )),
    }
}

/// 202 `{id, state: "running"}`; progress at `GET /backups/{id}`; the outcome is recorded in
/// the log with the caller as its actor. The body is optional: `{"telemetry": …}` adds a
/// range of telemetry to the event log.
async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RawBody(raw): RawBody<4096>,
) -> Result<Response, ApiError> {
    let body: CreateBody = if raw.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        parse_json(&raw)?
    };
    let telemetry = telemetry_range(body.telemetry)?;
    let id = state
        .backups
        .start_backup(&caller.actor(), false, telemetry)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "state": "running"})),
    )
        .into_response())
}

/// The manifest of a complete backup (with this server's restore of it, if any), or the
/// progress of one being written.
async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.backups.get(&id)?))
}

/// Re-hash and decode every segment: `{verified: true, ...}`, or `{verified: false, reason}`
/// for a damaged backup or one from a newer version.
async fn verify(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    use mc_backup::BackupError as B;
    match state.backups.verify(&id).await {
        Ok(v) => Ok(Json(json!({
            "id": id, "verified": true, "segmentsChecked": v.segments_checked,
            "messagesChecked": v.messages_checked, "first": v.manifest.first, "last": v.manifest.last,
        }))),
        Err(e @ (B::Corrupt(_) | B::Newer(_))) => Ok(Json(
            json!({"id": id, "verified": false, "reason": e.to_string()}),
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RestoreRequest)]
pub(crate) struct RestoreBody {
    /// A position, or an RFC 3339 time.
    until: Option<Value>,
    /// Leave the backup's telemetry out.
    #[serde(default, rename = "skipTelemetry")]
    skip_telemetry: bool,
}

/// 202: the restore runs in the background into the configured restore target; its progress
/// is the backup's `restore` at `GET /backups/{id}`.
async fn restore(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawBody(raw): RawBody<4096>,
) -> Result<Response, ApiError> {
    // The body is optional: an empty one restores everything.
    let body: RestoreBody = if raw.iter().all(u8::is_ascii_whitespace) {
        RestoreBody::default()
    } else {
        parse_json(&raw)?
    };
    let until = match body.until {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(Until::Position(n.as_u64().ok_or_else(|| {
            ApiError::field(
                "until",
                "must be a position (a non-negative integer) or an RFC 3339 time",
            )
        })?)),
        Some(Value::String(s)) => Some(Until::parse(&s).map_err(|e| ApiError::field("until", e))?),
        Some(_) => {
            return Err(ApiError::field(
                "until",
                "must be a position (a non-negative integer) or an RFC 3339 time",
            ))
        }
    };
    state
        .backups
        .start_restore(&id, until, body.skip_telemetry)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "restore": {"state": "running"}})),
    )
        .into_response())
}

/// The server's backup service from its configuration: backups of this deployment's log, the
/// archive's chain head recorded from its database, restores into the configured target.
pub(crate) async fn service(
    config: &crate::Config,
    js: async_nats::jetstream::Context,
    pool: sqlx::PgPool,
    log: mc_commands::BackupLog,
) -> Result<mc_backup::BackupService, crate::app::BuildError> {
    let settings = &config.backups;
    let restore_target = match &settings.restore_nats_url {
        Some(url) => Some(async_nats::jetstream::new(
            async_nats::ConnectOptions::new()
                .name("mission-control restore")
                .retry_on_initial_connect()
                .connect(crate::nats_addrs(url)?)
                .await
                .map_err(|e| crate::app::BuildError::Nats(format!("restore target: {e}")))?,
        )),
        None => None,
    };
    let head = mc_backup::service::head_lookup(move |last| {
        let pool = pool.clone();
        Box::pin(async move {
            match mc_projections::audit::head_when_archived(
                &pool,
                last,
                std::time::Duration::from_secs(30),
            )
            .await
            {
                Ok(head) => head.map(|(position, hash)| mc_backup::ArchiveHead { position, hash }),
                Err(e) => {
                    tracing::warn!(error = %e, "the archive head could not be read; the backup goes without it");
                    None
                }
            }
        })
    });
    let config = mc_backup::ServiceConfig {
        dir: settings.dir.clone(),
        create: mc_backup::CreateOptions {
            schema_version: mc_projections::latest_migration(),
            software: format!("mission-control {}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        },
        keep: settings.keep,
        keep_days: settings.keep_days,
        restore_target,
        scheduled_telemetry: settings.scheduled_telemetry,
        restore: mc_backup::RestoreOptions {
            provision: mc_eventlog::streams::ProvisionOptions {
                replicas: config.stream_replicas,
                telemetry_max_age: config.telemetry_max_age,
            },
            ..Default::default()
        },
    };
    Ok(mc_backup::BackupService::new(
        js,
        config,
        Some(head),
        Some(log),
    ))
}
