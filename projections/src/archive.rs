//! The event archive: every event of `MC_EVENTS` into `events`, idempotent by position.

use futures::future::BoxFuture;
use mc_eventlog::RecordedCommit;
use mc_projection::{ApplyError, Projection};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

pub const NAME: &str = "archive";

pub struct Archive;

impl Projection for Archive {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(insert(tx, commits))
    }
}

/// One multi-row insert per batch (UNNEST of column arrays).
async fn insert(tx: &mut PgConnection, commits: &[RecordedCommit]) -> Result<(), ApplyError> {
    let n: usize = commits.iter().map(|c| c.commit.events.len()).sum();
    let mut position = Vec::with_capacity(n);
    let mut index = Vec::with_capacity(n);
    let mut event_id = Vec::with_capacity(n);
    let mut aggregate_type = Vec::with_capacity(n);
    let mut aggregate_id = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut event_type = Vec::with_capacity(n);
    let mut schema_version = Vec::with_capacity(n);
    let mut payload = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut command_id: Vec<Uuid> = Vec::with_capacity(n);
    let mut occurred_at = Vec::with_capacity(n);
    for rc in commits {
        let c = &rc.commit;
        let meta = json!({
            "actor": c.meta.actor,
            "correlationId": c.meta.correlation_id,
            "causationId": c.meta.causation_id,
        });
        for (i, e) in c.events.iter().enumerate() {
            position.push(rc.position as i64);
            index.push(i as i32);
            event_id.push(e.event_id);
            aggregate_type.push(c.aggregate_type.as_str());
            aggregate_id.push(c.aggregate_id.as_str());
            version.push(e.aggregate_version as i64);
            event_type.push(e.event_type.as_str());
            schema_version.push(e.schema_version as i32);
            payload.push(e.payload.clone());
            metadata.push(meta.clone());
            command_id.push(c.meta.command_id);
            occurred_at.push(c.meta.occurred_at);
        }
    }
    sqlx::query(
        "INSERT INTO events (position, event_index, event_id, aggregate_type, aggregate_id, \
         aggregate_version, event_type, schema_version, payload, metadata, command_id, occurred_at) \
         SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::uuid[], $4::text[], $5::text[], \
         $6::bigint[], $7::text[], $8::int[], $9::jsonb[], $10::jsonb[], $11::uuid[], $12::timestamptz[]) \
         ON CONFLICT (position, event_index) DO NOTHING",
    )
    .bind(&position)
    .bind(&index)
    .bind(&event_id)
    .bind(&aggregate_type)
    .bind(&aggregate_id)
    .bind(&version)
    .bind(&event_type)
    .bind(&schema_version)
    .bind(&payload)
    .bind(&metadata)
    .bind(&command_id)
    .bind(&occurred_at)
    .execute(tx)
    .await?;
    Ok(())
}
