//! The stale-parameter sweeper: once a second, every parameter whose limits set `staleAfter`
//! and whose last sample is older than that raises a STALE alarm; a fresh sample returns it to
//! normal. Staleness is about the wall clock now, so it is judged live, not on replay.

use mc_commands::{AlarmService, CommandContext};
use mc_domain::alarm::{AlarmCommand, AlarmKey, AlarmKind};
use mc_domain::ids::AlarmId;
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::telemetry::Severity;
use mc_domain::Check;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TICK: Duration = Duration::from_secs(1);

pub struct StaleSweeper {
    pool: PgPool,
    alarms: AlarmService,
    /// (spacecraft, parameter) with an active STALE alarm, as this sweeper knows it.
    active: HashSet<(String, String)>,
    loaded: bool,
}

impl StaleSweeper {
    pub fn new(pool: PgPool, alarms: AlarmService) -> Self {
        Self {
            pool,
            alarms,
            active: HashSet::new(),
            loaded: false,
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(TICK) => {}
            }
            if let Err(reason) = self.sweep(chrono::Utc::now().timestamp_millis()).await {
                tracing::warn!(%reason, "stale sweep failed; retrying next tick");
                self.loaded = false;
            }
        }
    }

    /// One pass at `now_ms`.
    pub async fn sweep(&mut self, now_ms: i64) -> Result<(), String> {
        let db = |e: sqlx::Error| e.to_string();
        if !self.loaded {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT spacecraft_id, parameter FROM alarms WHERE kind = 'STALE' AND active",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
            self.active = rows.into_iter().collect();
            self.loaded = true;
        }
        let limits = crate::load_limits(&self.pool).await?;
        // (spacecraft, parameter) → (staleAfter ms, in force since).
        let mut watched: HashMap<(String, String), (i64, i64)> = HashMap::new();
        for (sc, history) in &limits {
            let Some((since, config)) = history.at_with_time(now_ms) else {
                continue;
            };
            for (name, l) in config.parameters() {
                if let Some(after) = l.stale_after {
                    watched.insert((sc.clone(), name.clone()), (i64::from(after) * 1000, since));
                }
            }
        }
        if watched.is_empty() && self.active.is_empty() {
            return Ok(());
        }
        let spacecraft: Vec<&str> = watched.keys().map(|(sc, _)| sc.as_str()).collect();
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT spacecraft_id, parameter, (extract(epoch FROM ts) * 1000)::bigint \
             FROM telemetry_latest WHERE spacecraft_id = ANY($1)",
        )
        .bind(&spacecraft)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let last: HashMap<(String, String), i64> =
            rows.into_iter().map(|(s, p, t)| ((s, p), t)).collect();
        for (key, (after, since)) in &watched {
            let seen = last.get(key).copied().unwrap_or(i64::MIN).max(*since);
            let stale = now_ms - seen > *after;
            let active = self.active.contains(key);
            if stale && !active {
                self.send(key, true, now_ms).await?;
                self.active.insert(key.clone());
            } else if !stale && active {
                self.send(key, false, now_ms).await?;
                self.active.remove(key);
            }
        }
        // Parameters no longer watched (limits changed) return to normal.
        let gone: Vec<_> = self
            .active
            .iter()
            .filter(|k| !watched.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            self.send(&key, false, now_ms).await?;
            self.active.remove(&key);
        }
        Ok(())
    }

    async fn send(
        &self,
        (sc, param): &(String, String),
        stale: bool,
        now_ms: i64,
    ) -> Result<(), String> {
        let spacecraft = SpacecraftId::parse(sc, "spacecraftId").map_err(|e| e.message)?;
        let key = AlarmKey {
            spacecraft,
            parameter: param.clone(),
            kind: AlarmKind::Stale,
        };
        let id = AlarmId::for_key(&key);
        let ordinal = now_ms.max(0) as u64;
        let cmd = if stale {
            AlarmCommand::Raise {
                key,
                severity: Severity::Warning,
                value: serde_json::Value::Null,
                sample_time_ms: now_ms,
                ordinal,
            }
        } else {
            AlarmCommand::ReturnToNormal {
                value: serde_json::Value::Null,
                sample_time_ms: now_ms,
                ordinal,
            }
        };
        let ctx = CommandContext::new("stale-sweeper", None);
        self.alarms
            .execute(&ctx, id, Check::Any, cmd)
            .await
            .map(|_| ())
            .map_err(|e| format!("stale alarm command for {sc}/{param} failed: {e}"))
    }
}
