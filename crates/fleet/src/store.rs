//! The `fleet` tables: load the rows a batch touches, store what the fold left.

use crate::fold::{
    agent_source, AgentRow, AlarmSeen, Decoded, Fold, Stage, SystemRow, Tally, WorkKind, WorkRow,
    HOUR_MS, SYSTEM_SOURCE,
};
use chrono::{DateTime, Utc};
use mc_domain::agent::AgentStatus;
use mc_domain::fleet::{FleetEvent, FleetLimits};
use mc_domain::telemetry::{ParamState, Severity};
use mc_eventlog::EventSchema;
use mc_projection::ApplyError;
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn tally(v: &Value) -> Tally {
    let n = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    Tally {
        completed: n("completed"),
        failed: n("failed"),
        in_progress: n("inProgress"),
    }
}

fn tally_json(t: &Tally) -> Value {
    json!({"completed": t.completed, "failed": t.failed, "inProgress": t.in_progress})
}

fn status(s: &str) -> AgentStatus {
    s.parse().unwrap_or_default()
}

fn stage(s: &str) -> Stage {
    match s {
        "active" => Stage::Active,
        "done" => Stage::Done,
        _ => Stage::Waiting,
    }
}

fn stage_str(s: Stage) -> &'static str {
    match s {
        Stage::Waiting => "waiting",
        Stage::Active => "active",
        Stage::Done => "done",
    }
}

/// The stored limits (the payload of `fleet.limits_configured`) as the fold needs them.
pub fn limits_of(stored: Value) -> Result<mc_domain::fleet::FleetLimits, String> {
    if stored.as_object().is_some_and(serde_json::Map::is_empty) {
        return Ok(Default::default());
    }
    match FleetEvent::from_current("fleet.limits_configured", stored) {
        Ok(FleetEvent::LimitsConfigured(l)) => Ok(l),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(sqlx::FromRow)]
struct SystemDbRow {
    clock: DateTime<Utc>,
    events: i64,
    agents: Value,
    missions: Value,
    runs: Value,
    runs_cancelled: i64,
    alarms_critical: i64,
    alarms_warning: i64,
    limits: Value,
    recent: Value,
}

type WorkDbRow = (String, Uuid, Option<Uuid>, String, Option<DateTime<Utc>>);

/// The system row, the limits in force and the success window, if the projection has run.
pub(crate) async fn load_system(
    tx: &mut PgConnection,
) -> Result<Option<(SystemRow, FleetLimits, BTreeMap<i64, (i64, i64)>)>, ApplyError> {
    let row: Option<SystemDbRow> = sqlx::query_as(
        "SELECT clock, events, agents, missions, runs, runs_cancelled, alarms_critical, \
             alarms_warning, limits, recent FROM fleet_system WHERE id = 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(SystemDbRow {
        clock,
        events,
        agents,
        missions,
        runs,
        runs_cancelled: cancelled,
        alarms_critical: crit,
        alarms_warning: warn,
        limits,
        recent,
    }) = row
    else {
        return Ok(None);
    };
    let agents = AgentStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str(),
                agents.get(s.as_str()).and_then(Value::as_i64).unwrap_or(0),
            )
        })
        .collect();
    let system = SystemRow {
        clock: ms(clock),
        events,
        agents,
        missions: tally(&missions),
        runs: tally(&runs),
        runs_cancelled: cancelled,
        alarms_critical: crit,
        alarms_warning: warn,
    };
    let limits = limits_of(limits).map_err(ApplyError::Transient)?;
    let recent: Vec<(i64, i64, i64)> = serde_json::from_value(recent).unwrap_or_default();
    Ok(Some((
        system,
        limits,
        recent.into_iter().map(|(m, c, f)| (m, (c, f))).collect(),
    )))
}

/// The rows of `ids` (removed agents included).
pub(crate) async fn load_agents(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, AgentRow>, sqlx::Error> {
    type AgentTuple = (
        Uuid,
        String,
        String,
        DateTime<Utc>,
        DateTime<Utc>,
        bool,
        DateTime<Utc>,
        Value,
        Value,
        (i64, i64, i64, i64, i64),
    );
    let agents: Vec<AgentTuple> = sqlx::query_as(
        "SELECT agent_id, name, status, status_since, registered_at, removed, last_activity, \
         missions, runs, (timed, duration_ms, work_ms, idle_ms, comments) \
         FROM fleet_agents WHERE agent_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut out = HashMap::new();
    for (id, name, st, since, registered, removed, activity, missions, runs, n) in agents {
        let row = AgentRow {
            name,
            status: status(&st),
            status_since: ms(since),
            registered_at: ms(registered),
            removed,
            last_activity: ms(activity),
            missions: tally(&missions),
            runs: tally(&runs),
            timed: n.0,
            duration_ms: n.1,
            work_ms: n.2,
            idle_ms: n.3,
            comments: n.4,
        };
        out.insert(id, row);
    }
    Ok(out)
}

pub(crate) async fn load(
    tx: &mut PgConnection,
    batch: &[(u64, i64, Decoded)],
) -> Result<Fold, ApplyError> {
    let mut fold = Fold::default();
    if let Some((system, limits, recent)) = load_system(tx).await? {
        fold.system = system;
        fold.limits = limits;
        fold.recent = recent;
    }
    let ids = |kind: WorkKind| -> Vec<Uuid> {
        batch
            .iter()
            .filter_map(|(_, _, d)| d.work().filter(|(k, _)| *k == kind).map(|(_, id)| id))
            .collect()
    };
    let work: Vec<WorkDbRow> = sqlx::query_as(
        "SELECT kind, id, agent_id, stage, since FROM fleet_work \
         WHERE (kind = 'mission' AND id = ANY($1)) OR (kind = 'run' AND id = ANY($2))",
    )
    .bind(ids(WorkKind::Mission))
    .bind(ids(WorkKind::Run))
    .fetch_all(&mut *tx)
    .await?;
    for (kind, id, agent, st, since) in work {
        let kind = if kind == "run" {
            WorkKind::Run
        } else {
            WorkKind::Mission
        };
        let row = WorkRow {
            agent,
            stage: stage(&st),
            since: since.map(ms),
        };
        fold.work.insert((kind, id), row);
    }
    let alarm_ids: Vec<Uuid> = batch
        .iter()
        .filter_map(|(_, _, d)| match d {
            Decoded::Alarm(id, _) => Some(*id),
            _ => None,
        })
        .collect();
    let alarms: Vec<(Uuid, Option<String>, bool)> = sqlx::query_as(
        "SELECT alarm_id, severity, counted FROM fleet_alarms WHERE alarm_id = ANY($1)",
    )
    .bind(&alarm_ids)
    .fetch_all(&mut *tx)
    .await?;
    for (id, severity, counted) in alarms {
        let active = severity.as_deref().and_then(Severity::parse);
        fold.alarms.insert(id, AlarmSeen { active, counted });
    }
    let agent_ids: Vec<Uuid> = batch
        .iter()
        .flat_map(|(_, _, d)| fold.agents_of(d))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    fold.agents = load_agents(tx, &agent_ids).await?;
    let mut sources: Vec<String> = agent_ids.iter().map(|a| agent_source(*a)).collect();
    sources.push(SYSTEM_SOURCE.to_owned());
    let params: Vec<(String, String, Option<String>, i32)> = sqlx::query_as(
        "SELECT source, metric, level, run FROM fleet_params WHERE source = ANY($1)",
    )
    .bind(&sources)
    .fetch_all(&mut *tx)
    .await?;
    for (source, metric, level, run) in params {
        let state = ParamState {
            level: level.as_deref().and_then(Severity::parse),
            run: run.max(0) as u32,
        };
        fold.params.insert((source, metric), state);
    }
    Ok(fold)
}

pub(crate) async fn store(tx: &mut PgConnection, fold: &Fold) -> Result<(), sqlx::Error> {
    store_system(tx, fold).await?;
    store_rows(tx, fold).await?;
    store_series(tx, fold).await
}

async fn store_system(tx: &mut PgConnection, fold: &Fold) -> Result<(), sqlx::Error> {
    let s = &fold.system;
    let agents: serde_json::Map<String, Value> = AgentStatus::ALL
        .iter()
        .map(|st| {
            (
                st.as_str().to_owned(),
                json!(s.agents.get(st.as_str()).copied().unwrap_or(0)),
            )
        })
        .collect();
    let (_, _, limits) = FleetEvent::LimitsConfigured(fold.limits.clone()).to_stored();
    let recent: Vec<(i64, i64, i64)> = fold.recent.iter().map(|(m, (c, f))| (*m, *c, *f)).collect();
    sqlx::query(
        "INSERT INTO fleet_system (id, clock, events, agents, missions, runs, runs_cancelled, \
         alarms_critical, alarms_warning, limits, recent) \
         VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (id) DO UPDATE SET clock = $1, events = $2, agents = $3, missions = $4, \
         runs = $5, runs_cancelled = $6, alarms_critical = $7, alarms_warning = $8, limits = $9, \
         recent = $10",
    )
    .bind(time(s.clock))
    .bind(s.events)
    .bind(Value::Object(agents))
    .bind(tally_json(&s.missions))
    .bind(tally_json(&s.runs))
    .bind(s.runs_cancelled)
    .bind(s.alarms_critical)
    .bind(s.alarms_warning)
    .bind(limits)
    .bind(json!(recent))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn store_rows(tx: &mut PgConnection, fold: &Fold) -> Result<(), sqlx::Error> {
    if !fold.agents.is_empty() {
        let rows: Vec<Value> = fold
            .agents
            .iter()
            .map(|(id, a)| {
                json!({
                    "agent_id": id, "name": a.name, "status": a.status.as_str(),
                    "status_since": time(a.status_since), "registered_at": time(a.registered_at),
                    "removed": a.removed, "last_activity": time(a.last_activity),
                    "missions": tally_json(&a.missions), "runs": tally_json(&a.runs),
                    "timed": a.timed, "duration_ms": a.duration_ms, "work_ms": a.work_ms,
                    "idle_ms": a.idle_ms, "comments": a.comments,
                })
            })
            .collect();
        sqlx::query(
            "INSERT INTO fleet_agents SELECT * FROM jsonb_populate_recordset(NULL::fleet_agents, $1) \
             ON CONFLICT (agent_id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status, \
             status_since = EXCLUDED.status_since, removed = EXCLUDED.removed, \
             last_activity = EXCLUDED.last_activity, missions = EXCLUDED.missions, \
             runs = EXCLUDED.runs, timed = EXCLUDED.timed, duration_ms = EXCLUDED.duration_ms, \
             work_ms = EXCLUDED.work_ms, idle_ms = EXCLUDED.idle_ms, comments = EXCLUDED.comments",
        )
        .bind(Value::Array(rows))
        .execute(&mut *tx)
        .await?;
    }
    if !fold.work.is_empty() {
        let rows: Vec<Value> = fold
            .work
            .iter()
            .map(|((kind, id), w)| {
                json!({"kind": kind.as_str(), "id": id, "agent_id": w.agent,
                       "stage": stage_str(w.stage), "since": w.since.map(time)})
            })
            .collect();
        sqlx::query(
            "INSERT INTO fleet_work SELECT * FROM jsonb_populate_recordset(NULL::fleet_work, $1) \
             ON CONFLICT (kind, id) DO UPDATE SET agent_id = EXCLUDED.agent_id, \
             stage = EXCLUDED.stage, since = EXCLUDED.since",
        )
        .bind(Value::Array(rows))
        .execute(&mut *tx)
        .await?;
    }
    if !fold.alarms.is_empty() {
        let rows: Vec<Value> = fold
            .alarms
            .iter()
            .map(|(id, a)| json!({"alarm_id": id, "severity": a.active.map(Severity::as_str), "counted": a.counted}))
            .collect();
        sqlx::query(
            "INSERT INTO fleet_alarms SELECT * FROM jsonb_populate_recordset(NULL::fleet_alarms, $1) \
             ON CONFLICT (alarm_id) DO UPDATE SET severity = EXCLUDED.severity, counted = EXCLUDED.counted",
        )
        .bind(Value::Array(rows))
        .execute(&mut *tx)
        .await?;
    }
    if !fold.params.is_empty() {
        let rows: Vec<Value> = fold
            .params
            .iter()
            .map(|((source, metric), p)| {
                json!({"source": source, "metric": metric, "level": p.level.map(Severity::as_str), "run": p.run})
            })
            .collect();
        sqlx::query(
            "INSERT INTO fleet_params SELECT * FROM jsonb_populate_recordset(NULL::fleet_params, $1) \
             ON CONFLICT (source, metric) DO UPDATE SET level = EXCLUDED.level, run = EXCLUDED.run",
        )
        .bind(Value::Array(rows))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

fn hour_of(t: i64) -> i64 {
    t - t.rem_euclid(HOUR_MS)
}

async fn store_series(tx: &mut PgConnection, fold: &Fold) -> Result<(), sqlx::Error> {
    // Minute buckets as they are, and summed into their hours.
    let mut agent_rows: BTreeMap<(Uuid, &str, i64), crate::fold::AgentBucket> = BTreeMap::new();
    for ((agent, minute), b) in &fold.agent_minutes {
        for (resolution, at) in [("minute", *minute), ("hour", hour_of(*minute))] {
            let r = agent_rows.entry((*agent, resolution, at)).or_default();
            r.completed += b.completed;
            r.failed += b.failed;
            r.comments += b.comments;
            r.work_ms += b.work_ms;
            r.idle_ms += b.idle_ms;
            r.events += b.events;
        }
    }
    if !agent_rows.is_empty() {
        let rows: Vec<Value> = agent_rows
            .iter()
            .map(|((agent, resolution, at), b)| {
                json!({"agent_id": agent, "resolution": resolution, "at": time(*at),
                       "completed": b.completed, "failed": b.failed, "comments": b.comments,
                       "work_ms": b.work_ms, "idle_ms": b.idle_ms, "events": b.events})
            })
            .collect();
        sqlx::query(
            "INSERT INTO fleet_agent_series AS s \
             SELECT * FROM jsonb_populate_recordset(NULL::fleet_agent_series, $1) \
             ON CONFLICT (agent_id, resolution, at) DO UPDATE SET \
             completed = s.completed + EXCLUDED.completed, failed = s.failed + EXCLUDED.failed, \
             comments = s.comments + EXCLUDED.comments, work_ms = s.work_ms + EXCLUDED.work_ms, \
             idle_ms = s.idle_ms + EXCLUDED.idle_ms, events = s.events + EXCLUDED.events",
        )
        .bind(Value::Array(rows))
        .execute(&mut *tx)
        .await?;
    }
    // Gauges: the last minute of the batch in each hour stands for the hour; health_min the
    // lowest score seen in it.
    let mut system_rows: BTreeMap<(&str, i64), (crate::fold::SystemBucket, i64)> = BTreeMap::new();
    for (minute, b) in &fold.system_minutes {
        for (resolution, at) in [("minute", *minute), ("hour", hour_of(*minute))] {
            let (r, low) = system_rows
                .entry((resolution, at))
                .or_insert_with(|| (Default::default(), i64::MAX));
            r.events += b.events;
            r.completed += b.completed;
            r.failed += b.failed;
            r.gauges = b.gauges.clone();
            *low = (*low).min(b.health_min.unwrap_or(b.gauges.health_score));
        }
    }
    if !system_rows.is_empty() {
        let rows: Vec<Value> = system_rows
            .iter()
            .map(|((resolution, at), (b, low))| {
                json!({"resolution": resolution, "at": time(*at), "events": b.events,
                       "completed": b.completed, "failed": b.failed, "gauges": b.gauges,
                       "health_min": low})
            })
            .collect();
        sqlx::query(
            "INSERT INTO fleet_system_series AS s \
             SELECT * FROM jsonb_populate_recordset(NULL::fleet_system_series, $1) \
             ON CONFLICT (resolution, at) DO UPDATE SET events = s.events + EXCLUDED.events, \
             completed = s.completed + EXCLUDED.completed, failed = s.failed + EXCLUDED.failed, \
             gauges = EXCLUDED.gauges, health_min = LEAST(s.health_min, EXCLUDED.health_min)",
        )
        .bind(Value::Array(rows))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
