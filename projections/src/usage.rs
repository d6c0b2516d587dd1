//! Usage read model: the price table (`prices`) and every LLM step (`llm_calls`), each priced
//! with the price in force at its time, with the `/usage/tokens` aggregation. Pricing lives in
//! one SQL statement ([`REPRICE`]) used both when a step arrives and when a price is set or
//! corrected, so a correction reprices history by replay and a rebuild gives the same costs.

use crate::support::decode;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use mc_domain::task::pricing::{PriceEvent, Rates};
use mc_domain::task::run::RunEvent;
use mc_eventlog::RecordedCommit;
use mc_projection::{ApplyError, Projection};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

pub const NAME: &str = "usage";

pub struct Usage;

impl Projection for Usage {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subjects(&self) -> &'static [&'static str] {
        &["mc.events.price.>", "mc.events.task_run.>"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["prices", "usage_runs", "llm_calls"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            for rc in commits {
                if let Some(d) = decode::<PriceEvent>(rc, "price")? {
                    for (event, _) in &d.events {
                        apply_price(tx, event, d.position).await?;
                    }
                } else if let Some(d) = decode::<RunEvent>(rc, "task_run")? {
                    for (i, (event, _)) in d.events.iter().enumerate() {
                        apply_run(tx, d.id, d.position, i as i32, event).await?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Prices the selected `llm_calls` rows (`c`) with the table: the latest price of the model
/// started at or before the step, else the provider's `*` price; NULL when there is none.
/// Each token is priced once: input includes cached input, output includes reasoning.
const REPRICE: &str = "UPDATE llm_calls c SET (cost_nanos, price_from) = (
    SELECT round(((c.input_tokens - c.cached_input_tokens)::numeric * p.input_nanos
                 + c.cached_input_tokens::numeric * p.cached_input_nanos
                 + (c.output_tokens - c.reasoning_tokens)::numeric * p.output_nanos
                 + c.reasoning_tokens::numeric * p.reasoning_nanos) / 1000000)::bigint,
           p.effective_from
      FROM prices p
     WHERE p.provider = c.provider AND (p.model = c.model OR p.model = '*')
       AND p.effective_from <= c.at
     ORDER BY (p.model = c.model) DESC, p.effective_from DESC
     LIMIT 1)";

fn ms(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t).unwrap_or_default()
}

async fn apply_price(
    tx: &mut PgConnection,
    event: &PriceEvent,
    position: i64,
) -> Result<(), sqlx::Error> {
    let (PriceEvent::Set {
        provider,
        model,
        entry,
    }
    | PriceEvent::Corrected {
        provider,
        model,
        entry,
        ..
    }) = event;
    let r: Rates = entry.rates;
    sqlx::query(
        "INSERT INTO prices (provider, model, effective_from, input_nanos, output_nanos, cached_input_nanos, reasoning_nanos, position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (provider, model, effective_from) DO UPDATE SET \
         input_nanos = EXCLUDED.input_nanos, output_nanos = EXCLUDED.output_nanos, \
         cached_input_nanos = EXCLUDED.cached_input_nanos, reasoning_nanos = EXCLUDED.reasoning_nanos, \
         position = EXCLUDED.position",
    )
    .bind(provider)
    .bind(model)
    .bind(ms(entry.from_ms))
    .bind(r.input as i64)
    .bind(r.output as i64)
    .bind(r.cached_input as i64)
    .bind(r.reasoning as i64)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    // Every step this price may now cover: the model's (all of the provider's for `*`) from
    // its start on; the statement picks each step's price again.
    sqlx::query(&format!(
        "{REPRICE} WHERE c.provider = $1 AND ($2 = '*' OR c.model = $2) AND c.at >= $3"
    ))
    .bind(provider)
    .bind(model)
    .bind(ms(entry.from_ms))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn apply_run(
    tx: &mut PgConnection,
    run: Uuid,
    position: i64,
    index: i32,
    event: &RunEvent,
) -> Result<(), sqlx::Error> {
    match event {
        RunEvent::Created(spec) => {
            sqlx::query(
                "INSERT INTO usage_runs (run_id, task_id, agent_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(run)
            .bind(spec.task.as_uuid())
            .bind(spec.agent.map(|a| a.as_uuid()))
            .execute(&mut *tx)
            .await?;
        }
        RunEvent::LlmCalled(c) => {
            sqlx::query(
                "INSERT INTO llm_calls (position, event_index, run_id, task_id, agent_id, at, provider, model, \
                   input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, latency_ms, finish_reason, \
                   recorded_cost_nanos) \
                 SELECT $1, $2, r.run_id, r.task_id, r.agent_id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
                   FROM usage_runs r WHERE r.run_id = $13 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(position)
            .bind(index)
            .bind(ms(c.at_ms))
            .bind(&c.provider)
            .bind(&c.model)
            .bind(c.tokens.input as i64)
            .bind(c.tokens.output as i64)
            .bind(c.tokens.cached_input as i64)
            .bind(c.tokens.reasoning as i64)
            .bind(c.latency_ms as i64)
            .bind(&c.finish_reason)
            .bind(c.cost.map(|c| c.nanos() as i64))
            .bind(run)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "{REPRICE} WHERE c.position = $1 AND c.event_index = $2"
            ))
            .bind(position)
            .bind(index)
            .execute(&mut *tx)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PriceRow {
    pub provider: String,
    pub model: String,
    pub effective_from: DateTime<Utc>,
    #[serde(skip)]
    pub input_nanos: i64,
    #[serde(skip)]
    pub output_nanos: i64,
    #[serde(skip)]
    pub cached_input_nanos: i64,
    #[serde(skip)]
    pub reasoning_nanos: i64,
    pub position: i64,
}

/// Every price, by provider, model and start.
pub async fn prices(pool: &PgPool) -> Result<Vec<PriceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, model, effective_from, input_nanos, output_nanos, cached_input_nanos, \
         reasoning_nanos, position FROM prices ORDER BY provider, model, effective_from",
    )
    .fetch_all(pool)
    .await
}

/// What a new price for `provider`/`model` from `from` would change: the steps it would
/// price (until the model's next price), their cost now and at `rates`, in nano-dollars.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct Repricing {
    pub calls: i64,
    pub before_nanos: i64,
    pub after_nanos: i64,
}

pub async fn repricing(
    pool: &PgPool,
    provider: &str,
    model: &str,
    from: DateTime<Utc>,
    rates: Rates,
) -> Result<Repricing, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) AS calls, coalesce(sum(c.cost_nanos), 0)::bigint AS before_nanos, \
           coalesce(sum(round(((c.input_tokens - c.cached_input_tokens)::numeric * $4 \
             + c.cached_input_tokens::numeric * $6 + (c.output_tokens - c.reasoning_tokens)::numeric * $5 \
             + c.reasoning_tokens::numeric * $7) / 1000000)), 0)::bigint AS after_nanos \
         FROM llm_calls c WHERE c.provider = $1 AND c.model = $2 AND c.at >= $3 \
           AND c.at < coalesce((SELECT min(effective_from) FROM prices p WHERE p.provider = $1 \
                                  AND p.model = $2 AND p.effective_from > $3), 'infinity')",
    )
    .bind(provider)
    .bind(model)
    .bind(from)
    .bind(rates.input as i64)
    .bind(rates.output as i64)
    .bind(rates.cached_input as i64)
    .bind(rates.reasoning as i64)
    .fetch_one(pool)
    .await
}

/// A `groupBy` key of `/usage/tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Provider,
    Model,
    Day,
    Task,
    Agent,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "provider" => Self::Provider,
            "model" => Self::Model,
            "day" => Self::Day,
            "task" => Self::Task,
            "agent" => Self::Agent,
            _ => return None,
        })
    }

    /// (output key, SQL expression as text).
    fn column(self) -> (&'static str, &'static str) {
        match self {
            Self::Provider => ("provider", "provider"),
            Self::Model => ("model", "model"),
            Self::Day => ("day", "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
            Self::Task => ("taskId", "task_id::text"),
            Self::Agent => ("agentId", "agent_id::text"),
        }
    }
}

/// One row of `/usage/tokens`: the group's keys and its sums.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRow {
    #[serde(flatten)]
    pub keys: serde_json::Map<String, serde_json::Value>,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: f64,
    /// Steps of the group no price covers (not in `costUsd`).
    pub unpriced_calls: i64,
}

/// Sums of the steps in `from..to` (when given), grouped by `group_by` in that order.
pub async fn usage(
    pool: &PgPool,
    group_by: &[GroupBy],
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<UsageRow>, sqlx::Error> {
    let mut q: QueryBuilder<'static, Postgres> = QueryBuilder::new("SELECT ");
    for (i, g) in group_by.iter().enumerate() {
        q.push(format!("{} AS k{i}, ", g.column().1));
    }
    q.push(
        "count(*), coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint, \
         coalesce(sum(cached_input_tokens), 0)::bigint, coalesce(sum(reasoning_tokens), 0)::bigint, \
         coalesce(sum(cost_nanos), 0)::bigint, count(*) FILTER (WHERE cost_nanos IS NULL) \
         FROM llm_calls WHERE true",
    );
    if let Some(from) = from {
        q.push(" AND at >= ").push_bind(from);
    }
    if let Some(to) = to {
        q.push(" AND at < ").push_bind(to);
    }
    if !group_by.is_empty() {
        let keys: Vec<String> = (0..group_by.len()).map(|i| format!("k{i}")).collect();
        q.push(format!(" GROUP BY {0} ORDER BY {0}", keys.join(", ")));
    }
    let rows = q.build().fetch_all(pool).await?;
    use sqlx::Row;
    let n = group_by.len();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut keys = serde_json::Map::new();
        for (i, g) in group_by.iter().enumerate() {
            let v: Option<String> = row.try_get(i)?;
            keys.insert(g.column().0.to_owned(), v.into());
        }
        let cost: i64 = row.try_get(n + 5)?;
        out.push(UsageRow {
            keys,
            calls: row.try_get(n)?,
            input_tokens: row.try_get(n + 1)?,
            output_tokens: row.try_get(n + 2)?,
            cached_input_tokens: row.try_get(n + 3)?,
            reasoning_tokens: row.try_get(n + 4)?,
            cost_usd: cost as f64 / 1e9,
            unpriced_calls: row.try_get(n + 6)?,
        });
    }
    Ok(out)
}

/// What the steps of task `task` and of agent `agent` cost so far (nano-dollars, at the
/// current prices; unpriced steps count nothing).
pub async fn spent(
    pool: &PgPool,
    task: Uuid,
    agent: Option<Uuid>,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(sum(cost_nanos) FILTER (WHERE task_id = $1), 0)::bigint, \
                coalesce(sum(cost_nanos) FILTER (WHERE agent_id = $2), 0)::bigint \
           FROM llm_calls WHERE task_id = $1 OR agent_id = $2",
    )
    .bind(task)
    .bind(agent)
    .fetch_one(pool)
    .await
}
