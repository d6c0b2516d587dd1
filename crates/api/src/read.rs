//! Read-your-writes: `minPosition` makes a query wait (bounded) for its read model.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Set to `true` when the read model had not reached `minPosition` in time.
pub const STALE_HEADER: HeaderName = HeaderName::from_static("mc-stale");
/// The position the read model had reached when the answer was read.
pub const POSITION_HEADER: HeaderName = HeaderName::from_static("mc-position");

/// Outcome of waiting for a read model.
pub struct Freshness {
    pub stale: bool,
    pub position: u64,
}

/// Wait until `projection` has applied `min_position` (if given), at most the configured time.
pub async fn wait(
    state: &AppState,
    projection: &str,
    min_position: Option<u64>,
) -> Result<Freshness, ApiError> {
    let stale = match min_position {
        Some(p) if p > 0 => {
            !state
                .positions
                .wait_for(projection, p, state.read_wait)
                .await?
        }
        _ => false,
    };
    let position = state.positions.current(projection).await?;
    Ok(Freshness { stale, position })
}

impl Freshness {
    /// Add the freshness headers to a response.
    pub fn wrap(self, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        let headers = response.headers_mut();
        headers.insert(POSITION_HEADER, HeaderValue::from(self.position));
        if self.stale {
            headers.insert(STALE_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}
