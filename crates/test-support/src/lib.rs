//! Test support: a real nats-server per test (the pinned binary, free loopback port,
//! temporary store, killed and cleaned on drop) and a fresh, migrated Postgres database per
//! test (dropped on drop).

mod db;
mod nats;

pub use db::TestDb;
pub use nats::{free_port, NatsServer};

/// Root of the workspace (for locating `.dev/` and the binaries).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
