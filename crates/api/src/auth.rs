//! The one authentication extractor and the route registrar. Every route is added through
//! [`Routes`], which refuses (panics at build) a route without a rule in
//! `mc_auth::table`; the [`authorize`] layer then checks each request against that rule and
//! hands handlers the [`Caller`].

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, MatchedPath, Query, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use mc_auth::table::{self, Access};
use mc_auth::Principal;
use std::collections::HashMap;

/// The authenticated principal of a request, for handlers.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| {
                ApiError::Internal("handler of an open route asked for the caller".into())
            })
    }
}

/// Check the request against its route's rule: 401 without valid credentials, 403 without
/// the role, 429 past the write limit, 500 for a route without a rule.
pub async fn authorize(
    State(state): State<AppState>,
    path: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = path.as_ref().map_or("", MatchedPath::as_str);
    let Some(access) = table::http(method.as_str(), path) else {
        // A method the route does not serve: the router answers 405 with `Allow` (only routes
        // with a rule are ever registered, see `Routes`).
        if table::HTTP.iter().any(|r| r.path == path) {
            return next.run(req).await;
        }
        return ApiError::NoRule {
            method: method.to_string(),
            path: path.to_owned(),
        }
        .into_response();
    };
    if access == Access::Open {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    // Browsers cannot set headers on WebSocket and EventSource requests: live routes also take
    // `?access_token=` (only when no Authorization header is sent).
    let principal = match (header, live_token(&req, path)) {
        (None, Some(token)) => state.auth.authenticate(&token),
        _ => state.auth.from_header(header),
    };
    let write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    match principal.and_then(|p| state.auth.admit(&p, access, write).map(|()| p)) {
        Ok(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(e) => ApiError::Auth(e).into_response(),
    }
}

/// The routes that accept `?access_token=` (WebSocket and SSE).
pub const LIVE_ROUTES: &[&str] = &[
    "/api/v1/ws",
    "/api/v1/stream",
    "/api/v1/task-runs/{id}/events/stream",
];

/// The `access_token` query parameter of a GET on a live route (decoded as axum's `Query`
/// decodes every query string).
fn live_token(req: &Request, path: &str) -> Option<String> {
    if req.method() != Method::GET || !LIVE_ROUTES.contains(&path) {
        return None;
    }
    let Query(mut params) = Query::<HashMap<String, String>>::try_from_uri(req.uri()).ok()?;
    params.remove("access_token")
}

/// One route of the router's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: String,
}

/// Builds a router and its route table together; a route without a permission rule panics
/// at build (every test that builds the router fails).
pub struct Routes {
    prefix: &'static str,
    router: Router<AppState>,
    table: Vec<Route>,
}

impl Routes {
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            router: Router::new(),
            table: Vec::new(),
        }
    }

    fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let full = format!("{}{path}", self.prefix);
        assert!(
            table::http(method.as_str(), &full).is_some(),
            "route {method} {full} has no rule in mc_auth::table::HTTP"
        );
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        self.router = self.router.route(path, on(filter, handler));
        self.table.push(Route { method, path: full });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::GET, path, h)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::POST, path, h)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::PUT, path, h)
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::PATCH, path, h)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::DELETE, path, h)
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Route>) {
        (self.router, self.table)
    }
}
