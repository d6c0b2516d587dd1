//! Pure domain of Mission Control: aggregates as `decide`/`evolve`, newtypes that parse.
//!
//! Architecture Invariant: this crate does no IO (no tokio, sqlx, axum or NATS) and
//! nothing in it panics on user input. Data a decision needs is fetched by the caller
//! and put in the command.

pub mod agent;
pub mod aggregate;
pub mod alarm;
pub mod backup;
pub mod comment;
pub mod error;
pub mod fleet;
pub mod ids;
pub mod mission;
pub mod spacecraft;
pub mod task;
pub mod telemetry;
pub mod token;
pub mod values;

pub use aggregate::{Aggregate, Check, ConflictError, Root};
pub use error::{DomainError, FieldError};
