//! Checkpoint rows: one per projection, the last applied stream sequence.

use sqlx::{PgConnection, PgPool};

pub const CHECKPOINT_TABLE: &str = "projection_checkpoints";

/// Current checkpoint of `name` (0 when it never ran).
pub async fn load_checkpoint(pool: &PgPool, name: &str) -> Result<u64, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map_or(0, |(p,)| p as u64))
}

/// Create the checkpoint row on a projection's first start. History up to `head` (the log's
/// last position now) is then a replay: see [`crate::Projection::replay_until`].
pub async fn create_checkpoint(pool: &PgPool, name: &str, head: u64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, replay_until) VALUES ($1, 0, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(head as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lock the checkpoint row for the rest of the transaction: `(position, replay_until)`.
pub async fn lock_checkpoint(tx: &mut PgConnection, name: &str) -> Result<(u64, u64), sqlx::Error> {
    let (position, replay_until): (i64, i64) = sqlx::query_as(
        "SELECT position, replay_until FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    Ok((position as u64, replay_until as u64))
}

pub async fn store_checkpoint(
    tx: &mut PgConnection,
    name: &str,
    position: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(position as i64)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Record that `name` could not apply `position`. With `skip`, also move the checkpoint past it
/// (only if the checkpoint is right before it, under the lock), so the projection goes on.
pub(crate) async fn record_failure(
    pool: &PgPool,
    name: &str,
    position: u64,
    error: &str,
    skip: bool,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (checkpoint, _) = lock_checkpoint(&mut tx, name).await?;
    sqlx::query(
        "INSERT INTO projection_failures (projection, position, error, skipped) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (projection, position) DO UPDATE SET error = $3, skipped = $4, recorded_at = now()",
    )
    .bind(name)
    .bind(position as i64)
    .bind(error)
    .bind(skip)
    .execute(&mut *tx)
    .await?;
    if skip && checkpoint < position {
        store_checkpoint(&mut tx, name, position).await?;
    }
    tx.commit().await
}
