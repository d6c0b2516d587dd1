//! Rebuilds in `serve`: `POST /api/v1/projections/{name}/rebuild`, the automatic rebuild when
//! a projection's version in code is higher than the one that built its tables, and resuming a
//! rebuild a crash interrupted.

use crate::app::all_projections;
use crate::auth::Routes;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mc_projection::rebuild::{live_version, rebuild_status, record_version};
use mc_projection::{Rebuild, RebuildError};
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.post("/projections/{name}/rebuild", rebuild)
}

async fn rebuild(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    start(&state, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"name": name, "state": "rebuilding", "progress": format!("/api/v1/projections")}),
        ),
    ))
}

/// Start a rebuild of `name` in the background (at most one per projection per process). The
/// shadow and the rebuild row exist when this returns, so progress is visible at once.
pub async fn start(state: &AppState, name: &str) -> Result<(), ApiError> {
    let projection = all_projections(&state.agents)
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or(ApiError::NotFound { what: "projection" })?;
    let rebuild = Rebuild::new(
        projection,
        state.pool.clone(),
        state.log.jetstream().clone(),
    )
    .map_err(|e| match e {
        RebuildError::NotRebuildable(_, why) => ApiError::field("name", why),
        e => ApiError::Internal(e.to_string()),
    })?
    .with_ddl(state.ddl.clone());
    let name = rebuild.name();
    {
        let mut running = state
            .rebuilding
            .lock()
            .map_err(|_| ApiError::Internal("rebuild registry poisoned".into()))?;
        if !running.insert(name) {
            return Err(ApiError::AlreadyExists { what: "rebuild" });
        }
    }
    if let Err(e) = rebuild.begin().await {
        if let Ok(mut running) = state.rebuilding.lock() {
            running.remove(name);
        }
        return Err(ApiError::Unavailable(e.to_string()));
    }
    let state = state.clone();
    tokio::spawn(async move {
        tracing::info!(projection = name, "rebuild started");
        let result = rebuild.run(&state.background, |_| {}).await;
        match result {
            Ok(position) => tracing::info!(projection = name, position, "rebuild done"),
            Err(RebuildError::Cancelled(_)) => tracing::info!(
                projection = name,
                "rebuild paused; it resumes at the next start"
            ),
            Err(e) => tracing::error!(projection = name, error = %e, "rebuild failed"),
        }
        if let Ok(mut running) = state.rebuilding.lock() {
            running.remove(name);
        }
    });
    Ok(())
}

/// At start: record the version of projections seen for the first time; rebuild those whose
/// code version is higher than the one that built their tables; resume interrupted rebuilds.
pub async fn at_start(state: &AppState) -> Result<(), String> {
    for view in &state.projectors {
        let name = view.name;
        let stored = live_version(&state.pool, name)
            .await
            .map_err(|e| e.to_string())?;
        let pending = rebuild_status(&state.pool, name)
            .await
            .map_err(|e| e.to_string())?;
        let outdated = stored.is_some_and(|v| v < view.version);
        if stored.is_none() {
            let mut tx = state.pool.begin().await.map_err(|e| e.to_string())?;
            record_version(&mut tx, name, view.version)
                .await
                .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())?;
        }
        if outdated || pending.is_some() {
            tracing::info!(
                projection = name,
                ?stored,
                code = view.version,
                resuming = pending.is_some(),
                "rebuilding at start"
            );
            if let Err(e) = start(state, name).await {
                tracing::warn!(projection = name, error = ?e, "cannot start rebuild");
            }
        }
    }
    Ok(())
}
