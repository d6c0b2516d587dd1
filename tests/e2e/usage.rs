//! Token usage and cost over HTTP against real NATS and PostgreSQL: each LLM step priced with
//! the price in force at its time (cached and reasoning tokens at their own rates, a price
//! change mid-period), unpriced models counted apart, `*` prices for local models, a correction
//! that reprices history and reports the difference, bad counts and overlapping prices refused.

use crate::helpers::TestApp;
use serde_json::{json, Value};
use std::time::Duration;

async fn price(app: &TestApp, body: Value) -> (u16, Value) {
    app.post("/pricing", body).await
}

/// An LLM step of 10,000 input tokens (4,000 cached) and 3,000 output (1,000 reasoning).
async fn step(app: &TestApp, run: &str, provider: &str, model: &str) -> Value {
    let (status, body) = app
        .post(
            &format!("/task-runs/{run}/llm-calls"),
            json!({"provider": provider, "model": model, "inputTokens": 10_000, "outputTokens": 3_000,
                "cachedInputTokens": 4_000, "reasoningTokens": 1_000, "latencyMs": 1_200,
                "finishReason": "stop"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_are_priced_at_their_own_time_and_corrections_reprice_history() {
    let app = TestApp::spawn().await;
    let (status, body) = price(
        &app,
        json!({"provider": "openai", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z",
            "inputPerMillion": 2.5, "outputPerMillion": 10, "cachedInputPerMillion": 1.25,
            "reasoningPerMillion": 12}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = price(
        &app,
        json!({"provider": "ollama", "model": "*", "effectiveFrom": "2026-01-01T00:00:00Z",
            "inputPerMillion": 0, "outputPerMillion": 0}),
    )
    .await;
    assert_eq!(status, 201);
    let agent = app.create("/agents", json!({"name": "llm-runner"})).await;
    let task = app
        .create("/tasks", json!({"title": "summarise logs"}))
        .await;
    let (_, created) = app
        .post("/task-runs", json!({"taskId": task, "agentId": agent}))
        .await;
    let run = created["id"].as_str().unwrap().to_owned();

    // 6,000 × 2.5 + 4,000 × 1.25 + 2,000 × 10 + 1,000 × 12 = 52,000 $/M tokens.
    let first = step(&app, &run, "openai", "gpt-4o").await;
    assert!(close(&first["costUsd"], 0.052), "{first}");
    assert_eq!(first["state"], "running");
    // A new price from now on: the next step is priced with it, the first one is not.
    let change = chrono::Utc::now() + chrono::Duration::milliseconds(1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, body) = price(
        &app,
        json!({"provider": "openai", "model": "gpt-4o", "effectiveFrom": change.to_rfc3339(),
            "inputPerMillion": 2.0, "outputPerMillion": 8.0, "cachedInputPerMillion": 0.5}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // 6,000 × 2 + 4,000 × 0.5 + 2,000 × 8 + 1,000 × 8 (reasoning defaults to output) = 38,000.
    let second = step(&app, &run, "openai", "gpt-4o").await;
    assert!(close(&second["costUsd"], 0.038), "{second}");
    assert!(close(&second["spentUsd"], 0.090), "{second}");
    let local = step(&app, &run, "ollama", "llama3.1:8b").await;
    assert!(close(&local["costUsd"], 0.0), "{local}");
    let unknown = step(&app, &run, "acme", "mystery-1").await;
    assert_eq!(unknown["costUsd"], Value::Null, "{unknown}");
    let at = unknown["position"].as_u64().unwrap();

    let (_, by_model) = app
        .get_json(&format!(
            "/usage/tokens?groupBy=provider,model&minPosition={at}"
        ))
        .await;
    let items = by_model["items"].as_array().unwrap();
    let row = |p: &str, m: &str| {
        items
            .iter()
            .find(|r| r["provider"] == p && r["model"] == m)
            .unwrap_or_else(|| panic!("no {p}/{m} in {by_model}"))
            .clone()
    };
    let gpt = row("openai", "gpt-4o");
    assert_eq!(
        (
            &gpt["calls"],
            &gpt["inputTokens"],
            &gpt["cachedInputTokens"],
            &gpt["outputTokens"],
            &gpt["reasoningTokens"]
        ),
        (
            &json!(2),
            &json!(20_000),
            &json!(8_000),
            &json!(6_000),
            &json!(2_000)
        )
    );
    assert!(close(&gpt["costUsd"], 0.090), "{gpt}");
    assert_eq!(row("acme", "mystery-1")["unpricedCalls"], 1);
    assert!(close(&row("ollama", "llama3.1:8b")["costUsd"], 0.0));
    let (_, by_task) = app
        .get_json(&format!(
            "/usage/tokens?groupBy=task,agent&minPosition={at}"
        ))
        .await;
    assert_eq!(by_task["items"][0]["taskId"], task.as_str(), "{by_task}");
    assert_eq!(by_task["items"][0]["agentId"], agent.as_str());
    assert_eq!(by_task["items"][0]["calls"], 4);
    let (_, total) = app
        .get_json(&format!("/usage/tokens?minPosition={at}"))
        .await;
    assert!(close(&total["items"][0]["costUsd"], 0.090), "{total}");
    let (_, none) = app
        .get_json("/usage/tokens?groupBy=day&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z")
        .await;
    assert_eq!(none["items"], json!([]));

    // The first price was wrong: correcting it reprices the step it covered, and says by how
    // much; the step's event keeps what it cost when recorded.
    let (status, fixed) = price(
        &app,
        json!({"provider": "openai", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z",
            "inputPerMillion": 3.0, "outputPerMillion": 10, "cachedInputPerMillion": 1.25,
            "reasoningPerMillion": 12, "correction": true}),
    )
    .await;
    assert_eq!(status, 200, "{fixed}");
    let r = &fixed["repricing"];
    assert_eq!(r["calls"], 1, "{fixed}");
    assert!(
        close(&r["previousUsd"], 0.052) && close(&r["newUsd"], 0.055),
        "{fixed}"
    );
    assert!(close(&r["differenceUsd"], 0.003), "{fixed}");
    let at = fixed["position"].as_u64().unwrap();
    let (_, after) = app
        .get_json(&format!("/usage/tokens?groupBy=model&minPosition={at}"))
        .await;
    let gpt = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "gpt-4o")
        .unwrap()
        .clone();
    assert!(close(&gpt["costUsd"], 0.093), "{after}");
    let (_, events) = app
        .get_json(&format!(
            "/task-runs/{run}/events?type=task_run.llm_called&minPosition={at}"
        ))
        .await;
    assert_eq!(events["items"][0]["payload"]["costNanos"], 52_000_000);
    let (_, prices) = app.get_json(&format!("/pricing?minPosition={at}")).await;
    assert_eq!(prices["items"].as_array().unwrap().len(), 3, "{prices}");
    assert_eq!(prices["items"][1]["inputPerMillion"], 3.0, "{prices}");

    // Replaying the whole log into a rebuilt usage read model gives the same costs.
    let before = after_all(&app, at).await;
    let (status, body) = app.post("/projections/usage/rebuild", json!({})).await;
    assert_eq!(status, 202, "{body}");
    crate::rebuild::wait_rebuild_done(&app, "usage").await;
    let (_, rebuilt) = app
        .get_json(&format!(
            "/usage/tokens?groupBy=provider,model&minPosition={at}"
        ))
        .await;
    assert_eq!(rebuilt["items"], before, "{rebuilt}");
    let gpt = rebuilt["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "gpt-4o")
        .unwrap()
        .clone();
    assert!(close(&gpt["costUsd"], 0.093), "{rebuilt}");
}

/// Usage by provider and model at `at`.
async fn after_all(app: &TestApp, at: u64) -> Value {
    let (_, v) = app
        .get_json(&format!(
            "/usage/tokens?groupBy=provider,model&minPosition={at}"
        ))
        .await;
    v["items"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_counts_and_overlapping_prices_are_refused_and_append_nothing() {
    let app = TestApp::spawn().await;
    let base = json!({"provider": "openai", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z",
        "inputPerMillion": 2.5, "outputPerMillion": 10});
    assert_eq!(price(&app, base.clone()).await.0, 201);
    // Again: nothing changes. Other rates at the same start: an overlap, unless a correction.
    let (status, same) = price(&app, base.clone()).await;
    assert_eq!((status, &same["position"]), (200, &Value::Null), "{same}");
    let mut other = base.clone();
    other["inputPerMillion"] = json!(9);
    let (status, problem) = price(&app, other).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("effectiveFrom")),
        "{problem}"
    );
    for (patch, field) in [
        (json!({"inputPerMillion": -1}), "inputPerMillion"),
        (json!({"outputPerMillion": 1e7}), "outputPerMillion"),
        (json!({"effectiveFrom": "soon"}), "effectiveFrom"),
        (json!({"provider": "a b"}), "provider"),
        (
            json!({"correction": true, "effectiveFrom": "2026-02-01T00:00:00Z"}),
            "effectiveFrom",
        ),
    ] {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, problem) = price(&app, body).await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{patch}: {problem}"
        );
    }
    let task = app.create("/tasks", json!({"title": "t"})).await;
    let (_, created) = app.post("/task-runs", json!({"taskId": task})).await;
    let run = created["id"].as_str().unwrap();
    for (patch, field) in [
        (json!({"inputTokens": -5}), "inputTokens"),
        (json!({"cachedInputTokens": 11}), "cachedInputTokens"),
        (json!({"reasoningTokens": 6}), "reasoningTokens"),
        (
            json!({"outputTokens": 1_000_000_000_000i64}),
            "outputTokens",
        ),
        (json!({"model": "*"}), "model"),
        (json!({"latencyMs": -1}), "latencyMs"),
        (json!({"finishReason": "a\nb"}), "finishReason"),
    ] {
        let mut body =
            json!({"provider": "openai", "model": "gpt-4o", "inputTokens": 10, "outputTokens": 5});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, problem) = app.post(&format!("/task-runs/{run}/llm-calls"), body).await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{patch}: {problem}"
        );
    }
    let (_, history) = app
        .get_json(&format!(
            "/task-runs/{run}/events?minPosition={}",
            created["position"]
        ))
        .await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");
    // A finished run takes no more steps.
    let (status, _) = app
        .post(
            &format!("/task-runs/{run}/cancel"),
            json!({"reason": "stop"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            &format!("/task-runs/{run}/llm-calls"),
            json!({"provider": "openai", "model": "gpt-4o", "inputTokens": 1, "outputTokens": 1}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, problem) = app.get_json("/usage/tokens?groupBy=planet").await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("groupBy"))
    );
}
