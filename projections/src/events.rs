//! Audit queries over the event archive: who did what, when, why. Filters, keyset pages in
//! archive order `(position, event_index)`, and a stream of every match for exports.
//!
//! Token secrets never leave through here: a `token.issued` payload is returned without its
//! `secretSha256`.

use chrono::{DateTime, Utc};
use futures::stream::{self, Stream};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, Postgres, QueryBuilder};
use std::fmt;
use uuid::Uuid;

/// Rows fetched per round trip while an export streams.
pub const EXPORT_CHUNK: i64 = 1_000;

/// What an audit query selects; every field narrows it (all are ANDed).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub actor: Option<String>,
    pub event_type: Option<String>,
    /// `occurred_at >= from`.
    pub from: Option<DateTime<Utc>>,
    /// `occurred_at < to`.
    pub to: Option<DateTime<Utc>>,
    /// `position >= from_position`.
    pub from_position: Option<i64>,
    /// `position <= to_position`.
    pub to_position: Option<i64>,
}

/// Where a page ended: the last row's `(position, event_index)`, written `<position>.<index>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub position: i64,
    pub event_index: i32,
}

impl Cursor {
    /// Parse `<position>.<index>` as written by [`Cursor`]'s `Display`.
    pub fn parse(s: &str) -> Option<Self> {
        let (p, i) = s.split_once('.')?;
        let all_digits =
            |t: &str| !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(p) || !all_digits(i) {
            return None;
        }
        Some(Self {
            position: p.parse().ok()?,
            event_index: i.parse().ok()?,
        })
    }

    pub fn of(row: &EventRow) -> Self {
        Self {
            position: row.position,
            event_index: row.event_index,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.position, self.event_index)
    }
}

/// One archived event as an audit query returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    pub position: i64,
    pub event_index: i32,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: i32,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub command_id: Uuid,
    pub payload: Value,
}

fn select(filter: &Filter, after: Option<Cursor>, limit: i64) -> QueryBuilder<'static, Postgres> {
    select_ordered(filter, after, limit, "position, event_index")
}

fn select_ordered(
    filter: &Filter,
    after: Option<Cursor>,
    limit: i64,
    order: &str,
) -> QueryBuilder<'static, Postgres> {
    let mut q = QueryBuilder::new(
        "SELECT position, event_index, event_id, aggregate_type, aggregate_id, \
         aggregate_version, event_type, schema_version, occurred_at, recorded_at, \
         metadata ->> 'actor' AS actor, metadata ->> 'correlationId' AS correlation_id, \
         metadata ->> 'causationId' AS causation_id, command_id, \
         CASE WHEN event_type = 'token.issued' THEN payload - 'secretSha256' ELSE payload END \
         AS payload FROM events WHERE true",
    );
    let text = [
        (" AND aggregate_type = ", &filter.aggregate_type),
        (" AND aggregate_id = ", &filter.aggregate_id),
        (" AND metadata ->> 'actor' = ", &filter.actor),
        (" AND event_type = ", &filter.event_type),
    ];
    for (clause, value) in text {
        if let Some(v) = value {
            q.push(clause).push_bind(v.clone());
        }
    }
    for (clause, value) in [
        (" AND occurred_at >= ", filter.from),
        (" AND occurred_at < ", filter.to),
    ] {
        if let Some(v) = value {
            q.push(clause).push_bind(v);
        }
    }
    for (clause, value) in [
        (" AND position >= ", filter.from_position),
        (" AND position <= ", filter.to_position),
    ] {
        if let Some(v) = value {
            q.push(clause).push_bind(v);
        }
    }
    if let Some(c) = after {
        q.push(" AND (position, event_index) > (")
            .push_bind(c.position)
            .push(", ")
            .push_bind(c.event_index)
            .push(")");
    }
    q.push(" ORDER BY ")
        .push(order)
        .push(" LIMIT ")
        .push_bind(limit);
    q
}

/// Up to `limit` matching events after `after`, in archive order.
pub async fn page(
    pool: &PgPool,
    filter: &Filter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    select(filter, after, limit)
        .build_query_as::<EventRow>()
        .fetch_all(pool)
        .await
}

/// The `limit` latest events, newest first.
pub async fn latest(pool: &PgPool, limit: i64) -> Result<Vec<EventRow>, sqlx::Error> {
    select_ordered(
        &Filter::default(),
        None,
        limit,
        "position DESC, event_index DESC",
    )
    .build_query_as::<EventRow>()
    .fetch_all(pool)
    .await
}

/// Every matching event after `after` (at most `limit` when given), in archive order, fetched
/// [`EXPORT_CHUNK`] rows per query: memory stays bounded and no transaction is held open
/// however long the reader takes.
pub fn export(
    pool: PgPool,
    filter: Filter,
    after: Option<Cursor>,
    limit: Option<u64>,
) -> impl Stream<Item = Result<EventRow, sqlx::Error>> + Send + 'static {
    struct State {
        pool: PgPool,
        filter: Filter,
        after: Option<Cursor>,
        left: u64,
        done: bool,
    }
    let start = State {
        pool,
        filter,
        after,
        left: limit.unwrap_or(u64::MAX),
        done: false,
    };
    let chunks = stream::try_unfold(start, |mut st| async move {
        if st.done || st.left == 0 {
            return Ok(None);
        }
        let want = st.left.min(EXPORT_CHUNK as u64) as i64;
        let rows = page(&st.pool, &st.filter, st.after, want).await?;
        st.done = (rows.len() as i64) < want;
        st.left -= rows.len() as u64;
        st.after = rows.last().map(Cursor::of).or(st.after);
        Ok::<_, sqlx::Error>(Some((stream::iter(rows.into_iter().map(Ok)), st)))
    });
    futures::TryStreamExt::try_flatten(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor {
            position: 1234,
            event_index: 2,
        };
        assert_eq!(Cursor::parse(&c.to_string()), Some(c));
        for bad in [
            "",
            "12",
            "12.",
            ".3",
            "-1.0",
            "1.-2",
            "a.b",
            "1.2.3",
            "1 .2",
            "99999999999999999999.0",
            "1.99999999999",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_filter_is_a_bound_parameter() {
        let filter = Filter {
            aggregate_type: Some("mission'; DROP TABLE events; --".into()),
            aggregate_id: Some("x".into()),
            actor: Some("token:1/a".into()),
            event_type: Some("mission.created".into()),
            from: Some(Utc::now()),
            to: Some(Utc::now()),
            from_position: Some(1),
            to_position: Some(2),
        };
        let after = Some(Cursor {
            position: 1,
            event_index: 0,
        });
        let sql = select(&filter, after, 10).into_sql();
        assert!(!sql.contains("DROP"), "{sql}");
        assert_eq!(sql.matches('$').count(), 11, "{sql}");
    }
}
