//! Shelve expiry: once a second, every alarm whose shelve has run out is unshelved. The alarm
//! decides (`ExpireShelve` is a no-op unless the shelve really expired), so a stale read model
//! or two processes sweeping at once never unshelve an alarm early or twice.

use mc_commands::{AlarmService, CommandContext};
use mc_domain::alarm::AlarmCommand;
use mc_domain::ids::AlarmId;
use mc_domain::Check;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TICK: Duration = Duration::from_secs(1);
const ACTOR: &str = "system:shelve-expiry";

pub struct ShelveExpiry {
    pool: PgPool,
    alarms: AlarmService,
}

impl ShelveExpiry {
    pub fn new(pool: PgPool, alarms: AlarmService) -> Self {
        Self { pool, alarms }
    }

    pub async fn run(self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(TICK) => {}
            }
            if let Err(reason) = self.sweep(chrono::Utc::now().timestamp_millis()).await {
                tracing::warn!(%reason, "shelve expiry failed; retrying next tick");
            }
        }
    }

    /// Unshelve every alarm whose shelve ended by `now_ms`; how many were unshelved.
    pub async fn sweep(&self, now_ms: i64) -> Result<usize, String> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM alarms WHERE shelved_until IS NOT NULL \
             AND shelved_until <= to_timestamp($1::double precision / 1000)",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| e.to_string())?;
        let mut unshelved = 0;
        for id in ids {
            let ctx = CommandContext::new(ACTOR, None);
            let done = self
                .alarms
                .execute(
                    &ctx,
                    AlarmId::from_uuid(id),
                    Check::Any,
                    AlarmCommand::ExpireShelve { now_ms },
                )
                .await
                .map_err(|e| format!("alarm {id}: {e}"))?;
            if done.position.is_some() {
                unshelved += 1;
            }
        }
        Ok(unshelved)
    }
}
