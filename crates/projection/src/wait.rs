//! Read-your-writes: wait (bounded) until a projection has reached a position.

use crate::checkpoint::load_checkpoint;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Positions of the projections: live from projectors in this process, else from Postgres.
#[derive(Clone)]
pub struct Positions {
    pool: PgPool,
    local: Arc<HashMap<&'static str, watch::Receiver<u64>>>,
}

const POLL: Duration = Duration::from_millis(20);

impl Positions {
    pub fn new(pool: PgPool, local: HashMap<&'static str, watch::Receiver<u64>>) -> Self {
        Self {
            pool,
            local: Arc::new(local),
        }
    }

    /// Current position of `name`.
    pub async fn current(&self, name: &str) -> Result<u64, sqlx::Error> {
        match self.local.get(name) {
            Some(rx) => Ok(*rx.borrow()),
            None => load_checkpoint(&self.pool, name).await,
        }
    }

    /// Wait until `name` has applied `position`, at most `timeout`. Returns whether it did.
    pub async fn wait_for(
        &self,
        name: &str,
        position: u64,
        timeout: Duration,
    ) -> Result<bool, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(rx) = self.local.get(name) {
            let mut rx = rx.clone();
            let reached = tokio::time::timeout_at(deadline, rx.wait_for(|p| *p >= position)).await;
            return Ok(matches!(reached, Ok(Ok(_))));
        }
        loop {
            if load_checkpoint(&self.pool, name).await? >= position {
                return Ok(true);
            }
            if tokio::time::Instant::now() + POLL > deadline {
                return Ok(false);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
