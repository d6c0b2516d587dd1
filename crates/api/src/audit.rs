//! `GET /api/v1/audit/verify`: recompute the archive's hash chain and report.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use mc_projections::audit::{self, Verification};

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit/verify", get(verify))
}

/// `{"holds": true, "count", "headHash"}` or `{"holds": false, "firstBrokenPosition", …}`.
async fn verify(State(state): State<AppState>) -> Result<Json<Verification>, ApiError> {
    Ok(Json(audit::verify(&state.pool, |_| {}).await?))
}
