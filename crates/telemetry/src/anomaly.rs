//! The anomaly consumer's sink: judges every sample against the limits in force at its
//! timestamp, keeps each parameter's evaluator state (persistence, hysteresis) in Postgres with
//! the checkpoint, and turns state changes into alarm commands. Alarm events are written only
//! on transitions.
//!
//! Architecture Invariant: an alarm command carries the sample's ordinal (stream position and
//! index); the alarm aggregate ignores ordinals it has passed, so re-judging a batch after a
//! crash never repeats a transition.

use crate::judge::{Judge, Pending};
use crate::Message;
use mc_commands::AlarmService;
use mc_domain::alarm::{AlarmKey, AlarmKind};
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::telemetry::{LimitsHistory, ParamState, Severity, Transition};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;

const TRANSITIONS: &str = "mc_alarm_transitions_total";
const TRANSITIONS_HELP: &str = "Alarm transitions decided by the anomaly processor.";

pub struct AnomalySink {
    pool: PgPool,
    alarms: AlarmService,
    /// The limits and every parameter's evaluator state.
    judge: Judge,
    /// The `spacecraft` projection's checkpoint when the limits were loaded.
    limits_seen: Option<i64>,
    /// Where the limits must have caught up to before the first judgement: the event log's
    /// head when this sink first ran (`None`: not checked yet).
    limits_gate: Option<u64>,
    js: async_nats::jetstream::Context,
    dirty: Vec<(String, String, ParamState)>,
    pending: Vec<Pending>,
}

impl AnomalySink {
    pub fn new(
        pool: PgPool,
        js: async_nats::jetstream::Context,
        alarms: AlarmService,
        max_future_ms: i64,
    ) -> Self {
        Self {
            pool,
            alarms,
            judge: Judge::new(max_future_ms),
            limits_seen: None,
            limits_gate: None,
            js,
            dirty: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Load the evaluator state as committed (after a start or a failed batch).
    pub async fn load(&mut self) -> Result<(), sqlx::Error> {
        let rows: Vec<(String, String, Option<String>, i32)> =
            sqlx::query_as("SELECT spacecraft_id, parameter, level, run FROM telemetry_evaluator")
                .fetch_all(&self.pool)
                .await?;
        self.judge.state.clear();
        for (sc, param, level, run) in rows {
            let s = ParamState {
                level: level.as_deref().and_then(Severity::parse),
                run: run.max(0) as u32,
            };
            self.judge.state.entry(sc).or_default().insert(param, s);
        }
        self.limits_seen = None;
        Ok(())
    }

    async fn refresh_limits(&mut self) -> Result<(), String> {
        let seen: Option<(i64,)> =
            sqlx::query_as("SELECT position FROM projection_checkpoints WHERE name = 'spacecraft'")
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| e.to_string())?;
        let seen = seen.map_or(0, |(p,)| p);
        // Telemetry stored before its limits reached the read model (a restored deployment,
        // a rebuilt `spacecraft` projection) would be judged without them: the first batch
        // waits (retried as transient) until the limits have caught up with the log as it was
        // when this sink started.
        let gate = match self.limits_gate {
            Some(gate) => gate,
            None => {
                let mut events = self
                    .js
                    .get_stream(mc_eventlog::streams::EVENTS)
                    .await
                    .map_err(|e| e.to_string())?;
                let head = events
                    .info()
                    .await
                    .map_err(|e| e.to_string())?
                    .state
                    .last_sequence;
                *self.limits_gate.insert(head)
            }
        };
        if (seen.max(0) as u64) < gate {
            return Err(format!(
                "limits not loaded yet: the spacecraft projection is at {seen} of {gate}"
            ));
        }
        if self.limits_seen == Some(seen) {
            return Ok(());
        }
        self.judge.limits = load_limits(&self.pool).await?;
        self.limits_seen = Some(seen);
        Ok(())
    }

    /// Judge `batch` and send the alarm commands it calls for (idempotent, see the module docs).
    pub async fn prepare(&mut self, batch: &[Message]) -> Result<(), String> {
        self.dirty.clear();
        self.pending.clear();
        self.refresh_limits().await?;
        for m in batch {
            self.judge.judge(m, &mut self.dirty, &mut self.pending);
        }
        for p in std::mem::take(&mut self.pending) {
            self.send(&p).await?;
        }
        Ok(())
    }

    async fn send(&self, p: &Pending) -> Result<(), String> {
        let spacecraft =
            SpacecraftId::parse(&p.spacecraft, "spacecraftId").map_err(|e| e.message)?;
        let key = AlarmKey {
            spacecraft,
            parameter: p.parameter.clone(),
            kind: AlarmKind::Limit,
        };
        self.alarms
            .judge(
                "anomaly-processor",
                key,
                p.transition,
                p.value.clone(),
                p.sample_time_ms,
                p.ordinal,
            )
            .await
            .map_err(|e| {
                format!(
                    "alarm command for {}/{} failed: {e}",
                    p.spacecraft, p.parameter
                )
            })?;
        let kind = match p.transition {
            Transition::Raise(_) => "raise",
            Transition::Escalate(_) => "escalate",
            Transition::ReturnToNormal => "return_to_normal",
        };
        mc_metrics::count(TRANSITIONS, TRANSITIONS_HELP, &[("transition", kind)], 1);
        Ok(())
    }

    /// Persist the evaluator states this batch changed, in the batch transaction.
    pub async fn write(&mut self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        // The last change of each parameter wins.
        let mut last: HashMap<(&str, &str), ParamState> = HashMap::new();
        for (sc, p, s) in &self.dirty {
            last.insert((sc.as_str(), p.as_str()), *s);
        }
        let (mut sc, mut param, mut level, mut run) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((s, p), state) in last {
            sc.push(s);
            param.push(p);
            level.push(state.level.map(Severity::as_str));
            run.push(state.run as i32);
        }
        sqlx::query(
            "INSERT INTO telemetry_evaluator (spacecraft_id, parameter, level, run) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[]) \
             ON CONFLICT (spacecraft_id, parameter) DO UPDATE SET level = EXCLUDED.level, run = EXCLUDED.run",
        )
        .bind(&sc)
        .bind(&param)
        .bind(&level)
        .bind(&run)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Every spacecraft's limits history from the `spacecraft_limits` read model.
pub async fn load_limits(pool: &PgPool) -> Result<HashMap<String, LimitsHistory>, String> {
    let rows: Vec<(String, i64, i64, serde_json::Value)> = sqlx::query_as(
        "SELECT spacecraft_id, version, (extract(epoch FROM effective_at) * 1000)::bigint, parameters \
         FROM spacecraft_limits",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| e.to_string())?;
    let mut by_sc: HashMap<String, Vec<_>> = HashMap::new();
    for (sc, version, at, parameters) in rows {
        let limits = mc_eventlog::schema::limits_from_stored(parameters)
            .map_err(|e| format!("stored limits of {sc} v{version} do not decode: {e}"))?;
        by_sc.entry(sc).or_default().push((at, version, limits));
    }
    Ok(by_sc
        .into_iter()
        .map(|(sc, entries)| (sc, LimitsHistory::new(entries)))
        .collect())
}
