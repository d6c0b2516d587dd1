//! Task runs as a policy gate. A runner reports each step of a run as a command; this crate
//! decides whether it may proceed: the tool must be registered and allowed by the task, its
//! arguments must satisfy the tool's JSON Schema, and the tool's risk (with the task's policy)
//! decides whether the call is approved at once or waits for an operator. The decisions
//! themselves are the pure `mc_domain::task` aggregates; this crate fetches what they need
//! (the tool's definition, the task a run follows) and checks schemas, which needs a validator
//! the domain does not carry.
//!
//! Architecture Invariant: a tool call reaches the log only with arguments that satisfied the
//! schema of the tool as registered when the call was requested; nothing is appended for a call
//! that fails it.

mod schema;
pub mod seed;
mod service;

pub use schema::{check_schema, validate_arguments, MAX_ERRORS};
pub use service::{NewRun, Spent, TaskService};
