//! Alarms read model: the `alarms` table (one row per alarm, its current occurrence) and
//! `alarm_history` (every transition), with their queries.

use crate::support::{decode, Decoded};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use mc_domain::alarm::AlarmEvent;
use mc_eventlog::{EventSchema, RecordedCommit};
use mc_projection::{ApplyError, Projection};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

pub const NAME: &str = "alarms";

pub struct Alarms;

impl Projection for Alarms {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subjects(&self) -> &'static [&'static str] {
        &["mc.events.alarm.>"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["alarms", "alarm_history"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            for rc in commits {
                let Some(d) = decode::<AlarmEvent>(rc, "alarm")? else {
                    continue;
                };
                apply_commit(tx, &d).await?;
            }
            Ok(())
        })
    }
}

fn time(ms: i64, fallback: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(fallback)
}

async fn apply_commit(tx: &mut PgConnection, d: &Decoded<AlarmEvent>) -> Result<(), sqlx::Error> {
    for (event, version) in &d.events {
        let (event_type, _, payload) = event.to_stored();
        sqlx::query(
            "INSERT INTO alarm_history (alarm_id, version, event_type, payload, position, at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(d.id)
        .bind(version)
        .bind(event_type)
        .bind(Json(&payload))
        .bind(d.position)
        .bind(d.at)
        .execute(&mut *tx)
        .await?;
        apply_event(tx, d, event, *version).await?;
    }
    Ok(())
}

/// The `SET` list every transition shares, then the event's own assignments.
fn update(d: &Decoded<AlarmEvent>, version: i64) -> QueryBuilder<'static, Postgres> {
    let mut q = QueryBuilder::new("UPDATE alarms SET version = ");
    q.push_bind(version)
        .push(", position = ")
        .push_bind(d.position)
        .push(", updated_at = ")
        .push_bind(d.at);
    q
}

async fn apply_event(
    tx: &mut PgConnection,
    d: &Decoded<AlarmEvent>,
    event: &AlarmEvent,
    version: i64,
) -> Result<(), sqlx::Error> {
    let mut q = match event {
        AlarmEvent::Raised {
            key,
            occurrence,
            severity,
            value,
            sample_time_ms,
            ..
        } => {
            // A new occurrence starts afresh; the same occurrence raised again (out of limits
            // before it was acknowledged) keeps its first raise.
            sqlx::query(
                "INSERT INTO alarms (id, spacecraft_id, parameter, kind, state, severity, active, acknowledged, \
                   occurrence, raised_at, trigger_value, last_value, version, position, updated_at) \
                 VALUES ($1, $2, $3, $4, 'RAISED', $5, true, false, $6, $7, $8, $8, $9, $10, $11) \
                 ON CONFLICT (id) DO UPDATE SET state = 'RAISED', severity = EXCLUDED.severity, active = true, \
                   acknowledged = false, last_value = EXCLUDED.last_value, version = EXCLUDED.version, \
                   position = EXCLUDED.position, updated_at = EXCLUDED.updated_at, returned_at = NULL, \
                   occurrence = EXCLUDED.occurrence, \
                   raised_at = CASE WHEN alarms.occurrence = EXCLUDED.occurrence THEN alarms.raised_at ELSE EXCLUDED.raised_at END, \
                   trigger_value = CASE WHEN alarms.occurrence = EXCLUDED.occurrence THEN alarms.trigger_value ELSE EXCLUDED.trigger_value END, \
                   acknowledged_at = NULL, acknowledged_by = NULL, cleared_at = NULL",
            )
            .bind(d.id)
            .bind(key.spacecraft.as_str())
            .bind(&key.parameter)
            .bind(key.kind.as_str())
            .bind(severity.as_str())
            .bind(*occurrence as i64)
            .bind(time(*sample_time_ms, d.at))
            .bind(Json(value))
            .bind(version)
            .bind(d.position)
            .bind(d.at)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        AlarmEvent::Escalated {
            severity, value, ..
        } => {
            let mut q = update(d, version);
            q.push(", state = 'RAISED', acknowledged = false, acknowledged_at = NULL, acknowledged_by = NULL, severity = ")
                .push_bind(severity.as_str())
                .push(", last_value = ")
                .push_bind(Json(value.clone()));
            q
        }
        AlarmEvent::ReturnedToNormal {
            value,
            sample_time_ms,
            ..
        } => {
            let mut q = update(d, version);
            q.push(", active = false, state = CASE WHEN acknowledged THEN 'ACKNOWLEDGED' ELSE 'RETURNED' END, last_value = ")
                .push_bind(Json(value.clone()))
                .push(", returned_at = ")
                .push_bind(time(*sample_time_ms, d.at));
            q
        }
        AlarmEvent::Acknowledged { operator, at_ms } => {
            let mut q = update(d, version);
            q.push(", acknowledged = true, state = CASE WHEN active THEN 'ACKNOWLEDGED' ELSE state END, acknowledged_at = ")
                .push_bind(time(*at_ms, d.at))
                .push(", acknowledged_by = ")
                .push_bind(operator.name.clone());
            q
        }
        AlarmEvent::Cleared { at_ms, .. } => {
            let mut q = update(d, version);
            q.push(", state = 'CLEARED', active = false, cleared_at = ")
                .push_bind(time(*at_ms, d.at));
            q
        }
        AlarmEvent::Shelved {
            operator, until_ms, ..
        } => {
            let mut q = update(d, version);
            q.push(", shelved_until = ")
                .push_bind(time(*until_ms, d.at))
                .push(", shelved_by = ")
                .push_bind(operator.name.clone())
                .push(", shelve_comment = ")
                .push_bind(operator.comment.clone());
            q
        }
        AlarmEvent::Unshelved { .. } => {
            let mut q = update(d, version);
            q.push(", shelved_until = NULL, shelved_by = NULL, shelve_comment = NULL");
            q
        }
    };
    q.push(" WHERE id = ").push_bind(d.id);
    q.build().execute(&mut *tx).await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlarmRow {
    pub id: Uuid,
    pub spacecraft_id: String,
    pub parameter: String,
    pub kind: String,
    pub state: String,
    pub severity: String,
    pub active: bool,
    pub acknowledged: bool,
    pub shelved: bool,
    pub occurrence: i64,
    pub raised_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub trigger_value: Json<Value>,
    #[schema(value_type = Object)]
    pub last_value: Json<Value>,
    pub returned_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub shelved_until: Option<DateTime<Utc>>,
    pub shelved_by: Option<String>,
    pub shelve_comment: Option<String>,
    pub version: i64,
    pub position: i64,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, spacecraft_id, parameter, kind, state, severity, active, acknowledged, \
    (shelved_until IS NOT NULL AND shelved_until > now()) AS shelved, occurrence, raised_at, \
    trigger_value, last_value, returned_at, acknowledged_at, acknowledged_by, cleared_at, \
    shelved_until, shelved_by, shelve_comment, version, position, updated_at";

/// Filters of `GET /alarms`; `state` is a state name, `SHELVED`, `UNSHELVED` or `ACTIVE`.
#[derive(Debug, Default, Clone)]
pub struct AlarmFilter {
    pub state: Option<String>,
    pub spacecraft_id: Option<String>,
    pub parameter: Option<String>,
    pub severity: Option<String>,
    pub kind: Option<String>,
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<AlarmRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM alarms WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// One page, most recently changed first, after the cursor `(updated_at, id)`.
pub async fn list(
    pool: &PgPool,
    filter: &AlarmFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AlarmRow>, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM alarms WHERE true"));
    match filter.state.as_deref() {
        Some("SHELVED") => {
            q.push(" AND shelved_until > now()");
        }
        Some("UNSHELVED") => {
            q.push(" AND (shelved_until IS NULL OR shelved_until <= now())");
        }
        Some("ACTIVE") => {
            q.push(" AND active");
        }
        Some(state) => {
            q.push(" AND state = ").push_bind(state.to_owned());
        }
        None => {}
    }
    for (column, value) in [
        ("spacecraft_id", &filter.spacecraft_id),
        ("parameter", &filter.parameter),
        ("severity", &filter.severity),
        ("kind", &filter.kind),
    ] {
        if let Some(v) = value {
            q.push(format!(" AND {column} = ")).push_bind(v.clone());
        }
    }
    if let Some((at, id)) = after {
        q.push(" AND (updated_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY updated_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    q.build_query_as().fetch_all(pool).await
}

/// One transition of an alarm as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    pub version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: Json<Value>,
    pub position: i64,
    pub at: DateTime<Utc>,
}

/// Every transition of an alarm, oldest first (at most `limit`).
pub async fn history(pool: &PgPool, id: Uuid, limit: i64) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT version, event_type, payload, position, at FROM alarm_history \
         WHERE alarm_id = $1 ORDER BY version DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map(|mut rows: Vec<HistoryRow>| {
        rows.reverse();
        rows
    })
}
