//! Open MCT against this server: `/openmct/` (a page that starts Open MCT with the Mission
//! Control plugin), `/openmct/mission-control.js` (the plugin, compiled in) and
//! `/openmct/lib/…` (Open MCT's own files, read from the directory `MC_OPENMCT_DIR` names; not
//! shipped in the binary). Same origin as the API, so no CORS is needed.

use crate::auth::Routes;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

pub fn routes(r: Routes) -> Routes {
    r.get("/openmct/", page)
        .get("/openmct/mission-control.js", plugin)
        .get("/openmct/lib/{*path}", lib)
}

async fn page(State(state): State<AppState>) -> Response {
    if state.openmct_dir.is_none() {
        return Html(
            "<!doctype html><title>Open MCT</title><p>Open MCT is not installed on this server: \
             run <code>scripts/openmct.sh</code> and start the server with \
             <code>MC_OPENMCT_DIR</code> set (see README, \"Open MCT\").</p>",
        )
        .into_response();
    }
    Html(include_str!("../../../openmct/index.html")).into_response()
}

async fn plugin(_: State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../../openmct/mission-control.js"),
    )
        .into_response()
}

/// The media type of an Open MCT asset.
fn media_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        _ => "application/octet-stream",
    }
}

/// A file under `MC_OPENMCT_DIR`: plain path segments only (no `..`, no hidden files), and the
/// resolved file must still be inside the directory.
async fn lib(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound { what: "file" };
    let dir = state.openmct_dir.as_ref().ok_or_else(not_found)?;
    let clean = path.split('/').all(|s| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    });
    if !clean || path.len() > 256 {
        return Err(not_found());
    }
    let file = tokio::fs::canonicalize(dir.join(&path))
        .await
        .map_err(|_| not_found())?;
    if !file.starts_with(dir) {
        return Err(not_found());
    }
    let bytes = tokio::fs::read(&file).await.map_err(|_| not_found())?;
    Ok((
        [
            (header::CONTENT_TYPE, media_type(&path)),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}
