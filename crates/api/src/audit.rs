//! `GET /api/v1/audit/verify`: recompute the archive's hash chain and report.

use crate::auth::Routes;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mc_projections::audit::{self, Verification};

pub fn routes(r: Routes) -> Routes {
    r.get("/audit/verify", verify)
}

/// `{"holds": true, "count", "headHash"}` or `{"holds": false, "firstBrokenPosition", …}`.
async fn verify(State(state): State<AppState>) -> Result<Json<Verification>, ApiError> {
    Ok(Json(audit::verify(&state.pool, |_| {}).await?))
}
