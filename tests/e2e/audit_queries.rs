//! Audit queries over HTTP: `GET /api/v1/events` with each filter, keyset pages that add up
//! to the whole archive, streamed NDJSON and CSV exports, token secrets kept out, bad filters
//! named, and the viewer role enough to read.

use crate::helpers::{authorized, issue_token, wait_accepted, TestApp, SETUP_EVENTS};
use serde_json::{json, Value};

/// Two operators write: one registers an agent and edits it, the other creates a mission and
/// assigns it. Returns (agent id, mission id, last position).
async fn history(
    app: &TestApp,
    alice: &reqwest::Client,
    bob: &reqwest::Client,
) -> (String, String, u64) {
    let post = |c: &reqwest::Client, path: &str, body: Value| {
        let req = c.post(app.url(path)).json(&body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            let body = r.json::<Value>().await.unwrap();
            assert!(status.is_success(), "{status}: {body}");
            body
        }
    };
    let agent = post(alice, "/agents", json!({"name": "audited"})).await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    for i in 0..2 {
        let r = alice
            .patch(app.url(&format!("/agents/{agent_id}")))
            .json(&json!({"description": format!("d{i}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let mission = post(bob, "/missions", json!({"title": "audit, \"quoted\""})).await;
    let mission_id = mission["id"].as_str().unwrap().to_owned();
    let r = bob
        .patch(app.url(&format!("/missions/{mission_id}")))
        .json(&json!({"agentId": agent_id}))
        .send()
        .await
        .unwrap();
    let last = r.json::<Value>().await.unwrap()["position"]
        .as_u64()
        .unwrap();
    app.wait_projection("archive", last).await;
    (agent_id, mission_id, last)
}

async fn events(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.get_json(&format!("/events?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn types(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn events_are_filtered_paged_and_exported() {
    let app = TestApp::spawn().await;
    let alice_token = issue_token(&app.nats.url(), "alice", "operator", &[]).await;
    let bob_token = issue_token(&app.nats.url(), "bob", "operator", &[]).await;
    let (alice, bob) = (authorized(&alice_token), authorized(&bob_token));
    wait_accepted(&alice, &app.url("/agents")).await;
    wait_accepted(&bob, &app.url("/agents")).await;
    let (agent, mission, last) = history(&app, &alice, &bob).await;

    // Everything, in archive order: the setup token, two more tokens, then the five commits.
    let all = events(&app, "limit=500").await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, last, "{all}");
    assert_eq!(all["nextCursor"], Value::Null);
    let positions: Vec<u64> = items
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // Token secrets stay out of the audit trail, even their hashes.
    let issued: Vec<&Value> = items
        .iter()
        .filter(|e| e["type"] == "token.issued")
        .collect();
    assert_eq!(issued.len() as u64, SETUP_EVENTS + 2);
    for e in &issued {
        assert!(e["payload"].get("secretSha256").is_none(), "{e}");
        assert!(e["payload"]["name"].is_string(), "{e}");
    }

    // Per aggregate: who did what, when, with correlation and causation.
    let agent_history = events(&app, &format!("aggregate=agent&id={agent}")).await;
    assert_eq!(
        types(&agent_history),
        ["agent.registered", "agent.updated", "agent.updated"],
        "{agent_history}"
    );
    for e in agent_history["items"].as_array().unwrap() {
        assert!(e["actor"].as_str().unwrap().ends_with("/alice"), "{e}");
        assert!(e["correlationId"].is_string(), "{e}");
        assert!(
            e["occurredAt"].is_string() && e["recordedAt"].is_string(),
            "{e}"
        );
    }

    // By actor: bob's mission commits only.
    let bob_actor = events(&app, &format!("aggregate=mission&id={mission}")).await["items"][0]
        ["actor"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_bob = events(&app, &format!("actor={}", urlencode(&bob_actor))).await;
    assert!(!by_bob["items"].as_array().unwrap().is_empty());
    assert!(by_bob["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == bob_actor.as_str()));
    assert!(by_bob["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["aggregateType"] == "mission"));

    // By type, by position range, by time range.
    assert_eq!(types(&events(&app, "type=agent.updated").await).len(), 2);
    let range = events(
        &app,
        &format!("fromPosition={}&toPosition={}", last - 1, last),
    )
    .await;
    let got: Vec<u64> = range["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(got, [last - 1, last]);
    let first_time = items[3]["occurredAt"].as_str().unwrap();
    let since = events(&app, &format!("from={}&limit=500", urlencode(first_time))).await;
    assert_eq!(since["items"].as_array().unwrap().len(), items.len() - 3);
    let before = events(&app, &format!("to={}&limit=500", urlencode(first_time))).await;
    assert_eq!(before["items"].as_array().unwrap().len(), 3);

    // Keyset pages of 2 add up to the whole archive, in order, without repeats.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_owned(),
        };
        let page = events(&app, &q).await;
        paged.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["position"].as_u64().unwrap()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, positions);

    // NDJSON export by parameter and by Accept: every event, one per line, same content.
    let ndjson = app
        .http
        .get(app.url("/events?format=ndjson"))
        .send()
        .await
        .unwrap();
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = ndjson
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(&lines, items);
    let by_accept = app
        .http
        .get(app.url(&format!("/events?aggregate=mission&id={mission}")))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(by_accept.lines().count(), 2, "{by_accept}");

    // CSV: a header and one record per event; the mission title's comma and quotes
    // stay inside the quoted payload cell.
    let csv = app
        .http
        .get(app.url(&format!(
            "/events?format=csv&aggregate=mission&id={mission}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("position,eventIndex,eventId,occurredAt,"),
        "{csv}"
    );
    let records = csv.split("\r\n").filter(|r| !r.is_empty()).count();
    assert_eq!(records, 3, "{csv}");
    assert!(csv.contains(r#"\""quoted\"""#), "{csv}");

    // An export can be limited too.
    let limited = app
        .http
        .get(app.url("/events?format=ndjson&limit=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.text().await.unwrap().lines().count(), 3);
}

#[tokio::test]
async fn bad_filters_are_named_and_viewers_may_read() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("aggregate=Mission", "aggregate"),
        ("type=%00", "type"),
        ("id=a%00b", "id"),
        ("from=yesterday", "from"),
        ("fromPosition=9&toPosition=3", "toPosition"),
        ("limit=0", "limit"),
        ("cursor=nope", "cursor"),
        ("format=xml", "format"),
    ] {
        let r = app
            .http
            .get(app.url(&format!("/events?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{query}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    let viewer = authorized(&issue_token(&app.nats.url(), "reader", "viewer", &[]).await);
    wait_accepted(&viewer, &app.url("/events")).await;
    let r = viewer.get(app.url("/events")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let anonymous = reqwest::Client::new();
    let r = anonymous
        .get(app.url("/events?format=ndjson"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Run `mission-control events query <args>` against `app`.
async fn events_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let args: Vec<&str> = ["events", "query"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    app.cli(&args, &[]).await
}

#[tokio::test]
async fn events_query_from_the_command_line() {
    let app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "cli-audited"})).await;
    let (_, r) = app
        .patch(&format!("/agents/{agent}"), json!({"description": "x"}))
        .await;
    app.wait_projection("archive", r["position"].as_u64().unwrap())
        .await;

    let out = events_cli(&app, &["--aggregate", "agent", "--id", &agent]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.starts_with("position"), "{table}");
    assert!(
        table.contains("agent.registered") && table.contains("agent.updated"),
        "{table}"
    );
    assert!(table.trim_end().ends_with("2 events"), "{table}");

    let out = events_cli(&app, &["--limit", "1"]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("1 events; more with --cursor 1.0"),
        "{table}"
    );

    let out = events_cli(&app, &["--format", "csv"]).await;
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(
        csv.split("\r\n").filter(|l| !l.is_empty()).count(),
        1 + 3,
        "{csv}"
    );

    let out = events_cli(&app, &["--type", "Not A Type"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("422") && err.contains("type"), "{err}");
}
