//! Retention of raw telemetry in Postgres: once an hour (and at start), the day partitions of
//! `telemetry_frames` and of the 1 s rollups older than the retention are dropped whole, which
//! costs no vacuum and no index churn. The 1 min and 1 h rollups and the latest values stay.

use chrono::{DateTime, Days, Utc};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(3600);
const PARTITIONS: &str = "mc_telemetry_partitions_dropped_total";
const PARTITIONS_HELP: &str =
    "Day partitions of raw telemetry and 1 s rollups dropped by retention.";

pub struct Retention {
    pool: PgPool,
    days: u32,
}

impl Retention {
    /// Keep `days` whole days before today (UTC).
    pub fn new(pool: PgPool, days: u32) -> Self {
        Self { pool, days }
    }

    pub async fn run(self, cancel: CancellationToken) {
        let mut wait = Duration::from_secs(5);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = EVERY;
            match self.sweep(Utc::now()).await {
                Ok(dropped) if !dropped.is_empty() => {
                    tracing::info!(
                        ?dropped,
                        days = self.days,
                        "telemetry retention dropped partitions"
                    );
                }
                Ok(_) => {}
                Err(reason) => {
                    tracing::warn!(%reason, "telemetry retention failed; retrying in a minute");
                    wait = Duration::from_secs(60);
                }
            }
        }
    }

    /// Drop what is older than the retention at `now`; the partitions dropped.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<String>, String> {
        let cutoff = now
            .date_naive()
            .checked_sub_days(Days::new(u64::from(self.days)))
            .ok_or("retention reaches before the calendar")?;
        let dropped: Vec<String> = sqlx::query_scalar("SELECT mc_telemetry_drop_before($1)")
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| e.to_string())?;
        mc_metrics::count(PARTITIONS, PARTITIONS_HELP, &[], dropped.len() as u64);
        Ok(dropped)
    }
}
