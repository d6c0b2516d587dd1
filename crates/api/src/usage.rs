//! `/api/v1/pricing` and `/api/v1/usage/tokens`: the provider price table (set, corrected with
//! the repricing it causes) and token usage and cost grouped as asked. Glue over
//! `mc_tasks::TaskService` and the `usage` read model.

use crate::auth::{Caller, Routes};
use crate::extract::{Body, Fields, QueryParams};
use crate::problem::ApiError;
use crate::read;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_domain::task::pricing::{parse_name, Rates, SetPrice};
use mc_projections::usage::{self as model, GroupBy};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn routes(r: Routes) -> Routes {
    r.get("/pricing", list)
        .post("/pricing", set)
        .get("/usage/tokens", usage)
}

fn dollars(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}

/// Every price: `{items: [{provider, model, effectiveFrom, inputPerMillion, …}]}`.
async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, min_position).await?;
    let items: Vec<Value> = model::prices(&state.pool)
        .await?
        .into_iter()
        .map(|p| {
            json!({"provider": p.provider, "model": p.model, "effectiveFrom": p.effective_from,
                "inputPerMillion": dollars(p.input_nanos), "outputPerMillion": dollars(p.output_nanos),
                "cachedInputPerMillion": dollars(p.cached_input_nanos),
                "reasoningPerMillion": dollars(p.reasoning_nanos), "position": p.position})
        })
        .collect();
    Ok(freshness.wrap(Json(json!({ "items": items }))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = Price)]
pub(crate) struct PriceBody {
    provider: String,
    model: String,
    effective_from: Value,
    input_per_million: f64,
    output_per_million: f64,
    cached_input_per_million: Option<f64>,
    reasoning_per_million: Option<f64>,
    /// Replace the price that starts at `effectiveFrom` (reprices the steps it covers).
    #[serde(default)]
    correction: bool,
}

/// Set a price (201) or correct one (200, with `repricing`: the steps it covers and their cost
/// before and after, in dollars). The same price again changes nothing (200).
async fn set(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(b): Body<PriceBody>,
) -> Result<Response, ApiError> {
    let mut f = Fields::default();
    let provider = f.take(parse_name(&b.provider, "provider"));
    let model = f.take(parse_name(&b.model, "model"));
    let from = f.take(crate::spacecraft::parse_time(
        &b.effective_from,
        "effectiveFrom",
    ));
    let rates = f.take_all(Rates::parse(
        b.input_per_million,
        b.output_per_million,
        b.cached_input_per_million,
        b.reasoning_per_million,
    ));
    let (provider, model, from, rates) = f.finish(|| Some((provider?, model?, from?, rates?)))?;
    // What a correction will change, measured before it is applied.
    let repricing = if b.correction {
        Some(model::repricing(&state.pool, &provider, &model, from, rates).await?)
    } else {
        None
    };
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let price = SetPrice {
        provider,
        model,
        from_ms: from.timestamp_millis(),
        rates,
        correction: b.correction,
    };
    let done = state.tasks.set_price(&ctx, price).await?;
    let status = if done.position.is_some() && !b.correction {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut body = json!({"version": done.version, "position": done.position});
    if let (Some(r), Some(_)) = (repricing, done.position) {
        body["repricing"] = json!({"calls": r.calls, "previousUsd": dollars(r.before_nanos),
            "newUsd": dollars(r.after_nanos), "differenceUsd": dollars(r.after_nanos - r.before_nanos)});
    }
    Ok((status, Json(body)).into_response())
}

/// `?groupBy=provider,model,day,task,agent&from=&to=` → `{items: [{<keys>, calls,
/// inputTokens, outputTokens, cachedInputTokens, reasoningTokens, costUsd, unpricedCalls}]}`.
async fn usage(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let group_by = q
        .parse("groupBy", |s| {
            let mut keys: Vec<GroupBy> = Vec::new();
            for k in s.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                let g = GroupBy::parse(k).ok_or_else(|| {
                    format!("{k:?} is not one of provider, model, day, task, agent")
                })?;
                if !keys.contains(&g) {
                    keys.push(g);
                }
            }
            Ok(keys)
        })
        .unwrap_or_default();
    let from = q.time("from");
    let to = q.time("to");
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, min_position).await?;
    let items = model::usage(&state.pool, &group_by, from, to).await?;
    Ok(freshness.wrap(Json(json!({ "items": items }))))
}
