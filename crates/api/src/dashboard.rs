//! The operations dashboard at `/`: static assets compiled into the binary (no build step, no
//! CDN); the page asks for a token and reads everything through the API and the relay.

use crate::auth::Routes;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

pub fn routes(r: Routes) -> Routes {
    r.get("/", index)
        .get("/ui/app.js", script)
        .get("/ui/style.css", style)
}

async fn index(_: State<AppState>) -> Html<&'static str> {
    Html(include_str!("dashboard/index.html"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn script(_: State<AppState>) -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("dashboard/app.js"),
    )
}

async fn style(_: State<AppState>) -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("dashboard/style.css"),
    )
}
