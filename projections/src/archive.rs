//! The event archive: every event of `MC_EVENTS` into `events`, idempotent by position, each
//! row chained to the previous one by its hash (see [`crate::audit`]).

use crate::audit::{ArchivedEvent, GENESIS};
use futures::future::BoxFuture;
use mc_eventlog::RecordedCommit;
use mc_projection::{ApplyError, Projection};
use serde_json::json;
use sqlx::PgConnection;

pub const NAME: &str = "archive";

pub struct Archive;

impl Projection for Archive {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subjects(&self) -> &'static [&'static str] {
        &["mc.events.>"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["events"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(insert(tx, commits))
    }
}

fn rows(commits: &[RecordedCommit]) -> Vec<ArchivedEvent> {
    let mut out = Vec::with_capacity(commits.iter().map(|c| c.commit.events.len()).sum());
    for rc in commits {
        let c = &rc.commit;
        let metadata = json!({
            "actor": c.meta.actor,
            "correlationId": c.meta.correlation_id,
            "causationId": c.meta.causation_id,
        });
        for (i, e) in c.events.iter().enumerate() {
            out.push(ArchivedEvent {
                position: rc.position as i64,
                event_index: i as i32,
                event_id: e.event_id,
                aggregate_type: c.aggregate_type.clone(),
                aggregate_id: c.aggregate_id.clone(),
                aggregate_version: e.aggregate_version as i64,
                event_type: e.event_type.clone(),
                schema_version: e.schema_version as i32,
                payload: e.payload.clone(),
                metadata: metadata.clone(),
                command_id: c.meta.command_id,
                occurred_at: c.meta.occurred_at,
            });
        }
    }
    out
}

/// One multi-row insert per batch (UNNEST of column arrays). The projector's checkpoint lock
/// serialises batches, so the last row read here is the chain's head.
async fn insert(tx: &mut PgConnection, commits: &[RecordedCommit]) -> Result<(), ApplyError> {
    let mut rows = rows(commits);
    let last: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT hash FROM events ORDER BY position DESC, event_index DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let mut previous = last.map_or(GENESIS.to_vec(), |(h,)| h);
    let mut hashes: Vec<Vec<u8>> = Vec::with_capacity(rows.len());
    for row in &rows {
        let hash = row.chain(&previous).to_vec();
        previous.clone_from(&hash);
        hashes.push(hash);
    }
    // Hashed: the JSON values can move into their columns instead of being copied.
    let payloads: Vec<_> = rows
        .iter_mut()
        .map(|r| std::mem::take(&mut r.payload))
        .collect();
    let metadata: Vec<_> = rows
        .iter_mut()
        .map(|r| std::mem::take(&mut r.metadata))
        .collect();
    let col = |f: fn(&ArchivedEvent) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO events (position, event_index, event_id, aggregate_type, aggregate_id, \
         aggregate_version, event_type, schema_version, payload, metadata, command_id, occurred_at, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::uuid[], $4::text[], $5::text[], \
         $6::bigint[], $7::text[], $8::int[], $9::jsonb[], $10::jsonb[], $11::uuid[], \
         $12::timestamptz[], $13::bytea[])",
    )
    .bind(col(|r| r.position))
    .bind(rows.iter().map(|r| r.event_index).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.aggregate_type.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.aggregate_id.as_str()).collect::<Vec<_>>())
    .bind(col(|r| r.aggregate_version))
    .bind(rows.iter().map(|r| r.event_type.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.schema_version).collect::<Vec<_>>())
    .bind(&payloads)
    .bind(&metadata)
    .bind(rows.iter().map(|r| r.command_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
    .bind(&hashes)
    .execute(tx)
    .await?;
    Ok(())
}
