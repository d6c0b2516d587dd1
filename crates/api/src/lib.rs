//! The axum HTTP API and the [`Application`] that wires NATS, Postgres, projectors and
//! routes into one server (`mission-control serve`).
//!
//! Architecture Invariant: handlers only parse, call a command service or a read-model query,
//! and render; errors leave through [`problem::ApiError`] as `application/problem+json`.

mod agents;
mod alarms;
mod app;
mod audit;
pub mod auth;
mod backups;
mod comments;
mod dashboard;
pub mod edges;
pub mod extract;
mod fleet;
mod health;
pub mod idempotency;
mod live;
mod missions;
pub mod nats_commands;
mod openapi;
mod openmct;
pub mod problem;
pub mod projections;
pub mod read;
mod rebuilds;
mod respond;
pub mod spacecraft;
mod state;
mod task_run_steps;
mod task_runs;
mod tasks;
mod telemetry;
mod tokens;
mod usage;

pub use app::{all_projections, nats_addrs, Application};
pub use auth::{Caller, Route};
pub use edges::HttpLimits;
pub use state::{AppState, BackupSettings, Config};

use auth::Routes;
use axum::Router;

/// The API routes (under `/api/v1`) and the root routes, with their tables.
fn routes() -> (Routes, Routes) {
    let api = [
        agents::routes,
        missions::routes,
        comments::routes,
        spacecraft::routes,
        telemetry::routes,
        alarms::routes,
        audit::routes,
        backups::routes,
        projections::routes,
        rebuilds::routes,
        tokens::routes,
        tasks::routes,
        task_runs::routes,
        usage::routes,
        fleet::routes,
        live::routes,
        openapi::routes,
    ]
    .into_iter()
    .fold(Routes::new("/api/v1"), |r, add| add(r));
    let root = openmct::routes(dashboard::routes(openapi::docs_routes(
        projections::metrics_routes(health::routes(Routes::new(""))),
    )));
    (api, root)
}

/// Every route the router serves (method and path as matched), for tests that walk them.
pub fn route_table() -> Vec<Route> {
    let (api, root) = routes();
    root.into_parts()
        .1
        .into_iter()
        .chain(api.into_parts().1)
        .collect()
}

/// All routes over a state. Every route passes the permission check of [`auth::authorize`].
pub fn router(state: AppState) -> Router {
    let (api, root) = routes();
    let (api, root) = (api.into_parts().0, root.into_parts().0);
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        edges::fail_fast,
    ));
    let root = if state.api {
        root.nest("/api/v1", api)
    } else {
        root
    };
    root.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::authorize,
    ))
    .fallback(|| async { problem::ApiError::NotFound { what: "route" } })
    .layer(axum::extract::DefaultBodyLimit::max(
        extract::MAX_BODY_BYTES,
    ))
    .layer(axum::middleware::from_fn(edges::catch_panic))
    .layer(axum::middleware::from_fn(edges::problems))
    .with_state(state)
}
