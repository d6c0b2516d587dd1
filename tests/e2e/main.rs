//! End-to-end tests: the real `mission-control` server (in-process or as a child process)
//! against a real nats-server and a real PostgreSQL database, one of each per test.

mod agents;
mod alarms;
mod audit;
mod audit_queries;
mod backup;
mod backup_drill;
mod backup_http;
mod comments;
mod concurrency;
mod helpers;
mod hostile_input;
mod http_edges;
mod idempotency;
mod kill;
mod live;
mod missions;
mod nats_commands;
mod nats_users;
mod poison;
mod process_manager;
mod projections;
mod projector;
mod rebuild;
mod roles;
mod runtime_poison;
mod security;
mod spacecraft;
mod startup;
mod task_runs;
mod telemetry;
mod telemetry_alarms;
mod telemetry_cli;
mod telemetry_kill;
mod telemetry_replay;
mod telemetry_retention;
