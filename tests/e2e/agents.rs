//! Agents over HTTP: command → JetStream → projector → Postgres → query.

use crate::helpers::TestApp;
use mc_eventlog::{streams, Commit};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn agent_travels_from_command_to_read_model_and_archive() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .create_agent(json!({"name": "probe-1", "description": "scans", "capabilities": ["scan", "dock"], "metadata": {"team": "a"}}))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let position = created["position"].as_u64().unwrap();
    assert_eq!(created["version"], 1);

    let r = app
        .http
        .get(app.url(&format!("/agents/{id}?minPosition={position}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"1\"");
    assert!(r.headers().get("mc-stale").is_none());
    let agent: Value = r.json().await.unwrap();
    assert_eq!(agent["name"], "probe-1");
    assert_eq!(agent["capabilities"], json!(["scan", "dock"]));
    assert_eq!(agent["metadata"], json!({"team": "a"}));
    assert_eq!(agent["status"], "IDLE");
    assert_eq!(agent["position"], position);

    // The same event is in MC_EVENTS and in the archive at the same position.
    let js = async_nats::jetstream::new(app.nats.client().await);
    let stream = js.get_stream(streams::EVENTS).await.unwrap();
    let message = stream.get_raw_message(position).await.unwrap();
    assert_eq!(message.subject.as_str(), format!("mc.events.agent.{id}"));
    let commit = Commit::decode(&message.payload).unwrap();
    assert_eq!(commit.events.len(), 1);
    let stored = &commit.events[0];
    assert_eq!(stored.event_type, "agent.registered");

    let deadline = Instant::now() + Duration::from_secs(10);
    let row: (uuid::Uuid, String, String, i64, Value) = loop {
        let row = sqlx::query_as(
            "SELECT event_id, event_type, aggregate_id, aggregate_version, payload FROM events WHERE position = $1",
        )
        .bind(position as i64)
        .fetch_optional(&app.db.pool)
        .await
        .unwrap();
        if let Some(row) = row {
            break row;
        }
        assert!(Instant::now() < deadline, "event never reached the archive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row.0, stored.event_id);
    assert_eq!(row.1, "agent.registered");
    assert_eq!(row.2, id);
    assert_eq!(row.3, 1);
    assert_eq!(row.4, stored.payload);
}

#[tokio::test]
async fn update_status_and_remove_keep_history() {
    let app = TestApp::spawn().await;
    let (_, created) = app.create_agent(json!({"name": "worker"})).await;
    let id = created["id"].as_str().unwrap();
    let r = app
        .http
        .patch(app.url(&format!("/agents/{id}")))
        .header("if-match", "\"1\"")
        .json(&json!({"name": "worker-2", "status": "BUSY"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["version"], 3,
        "rename and status change are two events of one commit"
    );
    let position = body["position"].as_u64().unwrap();
    let agent: Value = app
        .http
        .get(app.url(&format!("/agents/{id}?minPosition={position}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (agent["name"].as_str(), agent["status"].as_str()),
        (Some("worker-2"), Some("BUSY"))
    );

    // The old name is free again, the new one is taken.
    assert_eq!(app.create_agent(json!({"name": "worker-2"})).await.0, 409);
    let (status, other) = app.create_agent(json!({"name": "Worker"})).await;
    assert_eq!(status, 201, "{other}");

    let r = app
        .http
        .delete(app.url(&format!("/agents/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let removed: Value = r.json().await.unwrap();
    let position = removed["position"].as_u64().unwrap();
    let r = app
        .http
        .get(app.url(&format!("/agents/{id}?minPosition={position}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let list: Value = app
        .http
        .get(app.url("/agents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["id"] != id));
    // History stays in the archive.
    app.wait_projection("archive", position).await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 4, "registered, updated, status_changed, removed");
    // Commands on a removed agent are 404, and its name can be reused.
    let r = app
        .http
        .patch(app.url(&format!("/agents/{id}")))
        .json(&json!({"status": "IDLE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.create_agent(json!({"name": "worker-2"})).await.0, 201);
}

#[tokio::test]
async fn bad_input_is_a_problem_naming_the_field_and_appends_nothing() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, u16, &str)> = vec![
        ("{nope", 400, "malformed-json"),
        (r#"{"name": ""}"#, 422, "name"),
        (r#"{"name": "   "}"#, 422, "name"),
        (r#"{"name": 12}"#, 422, "name"),
        (r#"{"description": "no name"}"#, 422, "name"),
        (r#"{"name": "a", "colour": "red"}"#, 422, "colour"),
        (r#"{"name": "a", "status": "SLEEPING"}"#, 422, "status"),
        (
            r#"{"name": "a", "capabilities": ["ok", ""]}"#,
            422,
            "capabilities[1]",
        ),
        (r#"{"name": "a", "metadata": [1, 2]}"#, 422, "metadata"),
    ];
    let long_name = format!(r#"{{"name": "{}"}}"#, "x".repeat(101));
    let big_meta = format!(
        r#"{{"name": "a", "metadata": {{"blob": "{}"}}}}"#,
        "x".repeat(17 * 1024)
    );
    let mut all = cases.clone();
    all.push((&long_name, 422, "name"));
    all.push((&big_meta, 422, "metadata"));
    for (body, status, field) in all {
        let r = app
            .http
            .post(app.url("/agents"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        if status == 422 {
            let fields: Vec<&str> = problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&field), "{body}: {problem}");
        } else {
            assert_eq!(problem["code"], field);
        }
    }
    let r = app
        .http
        .get(app.url("/agents?limit=0&status=nope&cursor=zz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3);
    let r = app
        .http
        .patch(app.url("/agents/not-a-uuid"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = app
        .http
        .patch(app.url(&format!("/agents/{}", uuid::Uuid::now_v7())))
        .header("if-match", "yesterday")
        .json(&json!({"status": "IDLE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let log = mc_eventlog::EventLog::new(app.nats.client().await);
    assert_eq!(
        log.head().await.unwrap(),
        crate::helpers::SETUP_EVENTS,
        "nothing was appended"
    );
}

#[tokio::test]
async fn list_pages_with_keyset_cursor_and_filters_by_status() {
    let app = TestApp::spawn().await;
    let mut last = 0;
    for i in 0..7 {
        let status = if i % 2 == 0 { "IDLE" } else { "OFFLINE" };
        let (s, body) = app
            .create_agent(json!({"name": format!("agent-{i}"), "status": status}))
            .await;
        assert_eq!(s, 201);
        last = body["position"].as_u64().unwrap();
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = app.url(&format!("/agents?limit=3&minPosition={last}"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        (0..7).map(|i| format!("agent-{i}")).collect::<Vec<_>>()
    );
    let offline: Value = app
        .http
        .get(app.url("/agents?status=OFFLINE"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let offline: Vec<&str> = offline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(offline, ["agent-1", "agent-3", "agent-5"]);
}

#[tokio::test]
async fn graceful_restart_resumes_from_checkpoints_without_duplicates() {
    let mut app = TestApp::spawn().await;
    let mut last = 0;
    for i in 0..5 {
        last = app
            .create_agent(json!({"name": format!("before-{i}")}))
            .await
            .1["position"]
            .as_u64()
            .unwrap();
    }
    app.wait_projection("archive", last).await;
    app.stop().await;
    app.start().await;
    for i in 0..3 {
        last = app
            .create_agent(json!({"name": format!("after-{i}")}))
            .await
            .1["position"]
            .as_u64()
            .unwrap();
    }
    let list: Value = app
        .http
        .get(app.url(&format!("/agents?minPosition={last}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 8);
    app.wait_projection("archive", last).await;
    let (rows, positions): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT position) FROM events")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let expected = 8 + crate::helpers::SETUP_EVENTS as i64;
    assert_eq!((rows, positions), (expected, expected));
}
