//! The axum HTTP API and the [`Application`] that wires NATS, Postgres, projectors and
//! routes into one server (`mission-control serve`).
//!
//! Architecture Invariant: handlers only parse, call a command service or a read-model query,
//! and render; errors leave through [`problem::ApiError`] as `application/problem+json`.

mod agents;
mod alarms;
mod app;
mod audit;
mod comments;
pub mod edges;
pub mod extract;
mod health;
pub mod idempotency;
mod missions;
pub mod nats_commands;
pub mod problem;
pub mod projections;
pub mod read;
mod rebuilds;
mod respond;
mod spacecraft;
mod state;
mod telemetry;

pub use app::{all_projections, nats_addrs, Application};
pub use edges::HttpLimits;
pub use state::{AppState, Config};

use axum::Router;

/// All routes over a state.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(agents::routes())
        .merge(missions::routes())
        .merge(comments::routes())
        .merge(spacecraft::routes())
        .merge(telemetry::routes())
        .merge(alarms::routes())
        .merge(audit::routes())
        .merge(projections::routes())
        .merge(rebuilds::routes());
    let root = Router::new()
        .merge(health::routes())
        .merge(projections::metrics_routes());
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        edges::fail_fast,
    ));
    let root = if state.api {
        root.nest("/api/v1", api)
    } else {
        root
    };
    root.fallback(|| async { problem::ApiError::NotFound { what: "route" } })
        .layer(axum::extract::DefaultBodyLimit::max(
            extract::MAX_BODY_BYTES,
        ))
        .layer(axum::middleware::from_fn(edges::catch_panic))
        .layer(axum::middleware::from_fn(edges::problems))
        .with_state(state)
}
