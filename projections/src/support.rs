//! What every aggregate read model does first: pick its commits, decode their events.

use mc_eventlog::{EventSchema, RecordedCommit};
use mc_projection::ApplyError;
use uuid::Uuid;

/// The events of one commit with their aggregate versions.
pub struct Decoded<E> {
    pub id: Uuid,
    pub position: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub events: Vec<(E, i64)>,
}

/// Decode `rc` if it belongs to `aggregate`; an undecodable commit is a poison event.
pub fn decode<E: EventSchema>(
    rc: &RecordedCommit,
    aggregate: &str,
) -> Result<Option<Decoded<E>>, ApplyError> {
    let c = &rc.commit;
    if c.aggregate_type != aggregate {
        return Ok(None);
    }
    let poison = |reason: String| ApplyError::Poison {
        position: rc.position,
        reason,
    };
    let id: Uuid = c
        .aggregate_id
        .parse()
        .map_err(|_| poison(format!("{aggregate} id {} is not a uuid", c.aggregate_id)))?;
    let events: Vec<E> = c.domain_events().map_err(|e| poison(e.to_string()))?;
    let versions = c.events.iter().map(|e| e.aggregate_version as i64);
    Ok(Some(Decoded {
        id,
        position: rc.position as i64,
        at: c.meta.occurred_at,
        events: events.into_iter().zip(versions).collect(),
    }))
}
