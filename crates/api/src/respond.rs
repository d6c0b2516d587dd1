//! The shapes every resource answers: a command's outcome, one read-model row.

use crate::extract::{etag, QueryParams};
use crate::problem::ApiError;
use crate::read;
use crate::state::AppState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_commands::Executed;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;

/// `{"id", "version", "position"}` with `ETag`; `Location` when `created_in` names the collection.
pub fn command<A>(
    status: StatusCode,
    id: impl Display,
    done: &Executed<A>,
    created_in: Option<&str>,
) -> Response {
    let body = json!({"id": id.to_string(), "version": done.version, "position": done.position});
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(done.version));
    if let Some(location) = created_in.and_then(|c| format!("/api/v1/{c}/{id}").parse().ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A row that knows its aggregate version.
pub trait Versioned {
    fn version(&self) -> i64;
}

/// One row of `projection`, after honouring `minPosition`; 404 `what` when absent.
pub async fn one<T, F>(
    state: &AppState,
    projection: &str,
    params: HashMap<String, String>,
    what: &'static str,
    load: F,
) -> Result<Response, ApiError>
where
    T: Serialize + Versioned,
    F: Future<Output = Result<Option<T>, sqlx::Error>>,
{
    let mut q = QueryParams::new(params);
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(state, projection, min_position).await?;
    let row = load.await?.ok_or(ApiError::NotFound { what })?;
    let version = row.version() as u64;
    let mut response = freshness.wrap(Json(row));
    response.headers_mut().insert(header::ETAG, etag(version));
    Ok(response)
}
