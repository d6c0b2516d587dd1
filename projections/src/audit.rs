//! The archive's hash chain: `hash = sha256(previous hash ‖ canonical bytes of the event)`,
//! computed by the archive projection on insert and recomputed by `verify`.
//!
//! Canonical bytes are the compact JSON array
//! `[position, eventIndex, eventId, aggregateType, aggregateId, aggregateVersion, eventType,
//! schemaVersion, payload, metadata, commandId, occurredAtMicros]`, with object keys sorted
//! (serde_json's map), so they can be rebuilt from the row as PostgreSQL returns it. The first
//! row's previous hash is 32 zero bytes.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

pub const GENESIS: [u8; 32] = [0; 32];

/// One archived event, as hashed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArchivedEvent {
    pub position: i64,
    pub event_index: i32,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
    pub metadata: Value,
    pub command_id: Uuid,
    pub occurred_at: DateTime<Utc>,
}

impl ArchivedEvent {
    pub fn canonical(&self) -> Vec<u8> {
        let array = json!([
            self.position,
            self.event_index,
            self.event_id,
            self.aggregate_type,
            self.aggregate_id,
            self.aggregate_version,
            self.event_type,
            self.schema_version,
            self.payload,
            self.metadata,
            self.command_id,
            // PostgreSQL keeps microseconds.
            self.occurred_at.timestamp_micros(),
        ]);
        serde_json::to_vec(&array).unwrap_or_default()
    }

    /// This event's hash after `previous`.
    pub fn chain(&self, previous: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(previous);
        h.update(self.canonical());
        h.finalize().into()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Whether every row's hash matches the chain recomputed from the start.
    pub holds: bool,
    /// Rows checked (up to and including the first broken one).
    pub count: u64,
    /// The last hash when the chain holds.
    pub head_hash: Option<String>,
    /// The first row whose stored hash does not match: `(position, eventIndex)`.
    pub first_broken_position: Option<i64>,
    pub first_broken_index: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct Row {
    #[sqlx(flatten)]
    event: ArchivedEvent,
    hash: Vec<u8>,
}

/// Recompute the chain over the whole archive, streaming; `progress` is called every 10,000 rows.
pub async fn verify(
    pool: &PgPool,
    mut progress: impl FnMut(u64),
) -> Result<Verification, sqlx::Error> {
    let mut rows = sqlx::query_as::<_, Row>(
        "SELECT position, event_index, event_id, aggregate_type, aggregate_id, aggregate_version, \
         event_type, schema_version, payload, metadata, command_id, occurred_at, hash \
         FROM events ORDER BY position, event_index",
    )
    .fetch(pool);
    let mut previous: [u8; 32] = GENESIS;
    let mut count = 0u64;
    while let Some(row) = rows.try_next().await? {
        count += 1;
        let expected = row.event.chain(&previous);
        if row.hash != expected {
            return Ok(Verification {
                holds: false,
                count,
                head_hash: None,
                first_broken_position: Some(row.event.position),
                first_broken_index: Some(row.event.event_index),
            });
        }
        previous = expected;
        if count.is_multiple_of(10_000) {
            progress(count);
        }
    }
    Ok(Verification {
        holds: true,
        count,
        head_hash: (count > 0).then(|| hex(&previous)),
        first_broken_position: None,
        first_broken_index: None,
    })
}

/// The chain's hash at the last archived event at or below `position`: `(its position, hex
/// hash)`, `None` while nothing that old is archived. Backups record it, and a restore drill
/// compares it with the restored archive's.
pub async fn head_at(pool: &PgPool, position: u64) -> Result<Option<(u64, String)>, sqlx::Error> {
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT position, hash FROM events WHERE position <= $1 \
         ORDER BY position DESC, event_index DESC LIMIT 1",
    )
    .bind(i64::try_from(position).unwrap_or(i64::MAX))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(p, h)| (p as u64, hex(&h))))
}

/// [`head_at`] once the archive has reached `position` (it lags the log), waiting up to
/// `timeout`; after that, the head below it (`None` if nothing is archived).
pub async fn head_when_archived(
    pool: &PgPool,
    position: u64,
    timeout: std::time::Duration,
) -> Result<Option<(u64, String)>, sqlx::Error> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let head = head_at(pool, position).await?;
        let caught_up = position == 0 || head.as_ref().is_some_and(|(p, _)| *p == position);
        if caught_up || std::time::Instant::now() >= deadline {
            if !caught_up {
                tracing::warn!(position, "the archive has not reached the backup's last position; recording its head below it");
            }
            return Ok(head);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A read-model table's row count and a checksum of its content, to compare two deployments
/// (restore drills). The archive (`events`) is summed by its hash chain up to `position`, which
/// covers every field but the archive's own `recorded_at`; other tables by every row's text,
/// sorted. `table` comes from a projection's `tables()`, never from outside input.
pub async fn table_checksum(
    pool: &PgPool,
    table: &str,
    position: u64,
) -> Result<(i64, String), sqlx::Error> {
    if table == "events" {
        return sqlx::query_as(
            "SELECT count(*), coalesce(md5(string_agg(encode(hash, 'hex'), '' ORDER BY position, event_index)), '') \
             FROM events WHERE position <= $1",
        )
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .fetch_one(pool)
        .await;
    }
    let ident = format!("\"{}\"", table.replace('"', "\"\""));
    sqlx::query_as(&format!(
        "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {ident} t"
    ))
    .fetch_one(pool)
    .await
}
