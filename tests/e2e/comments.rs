//! Comments over HTTP: every endpoint, each filter, pagination, bad input.

use crate::helpers::TestApp;
use serde_json::{json, Value};

fn contents(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn comments_endpoints_filters_and_pages() {
    let app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "writer"})).await;
    let mission = app.create("/missions", json!({"title": "log"})).await;
    let mut last = 0;
    for (i, (t, a, m)) in [
        ("NOTE", true, false),
        ("ERROR", false, true),
        ("SUCCESS", true, true),
        ("NOTE", false, false),
        ("WARNING", true, false),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = json!({"content": format!("c{i}"), "type": t});
        if a {
            body["agentId"] = json!(agent);
        }
        if m {
            body["missionId"] = json!(mission);
        }
        let (s, r) = app.post("/comments", body).await;
        assert_eq!(s, 201, "{r}");
        last = r["position"].as_u64().unwrap();
    }
    let (_, all) = app.get_json(&format!("/comments?minPosition={last}")).await;
    assert_eq!(contents(&all), ["c0", "c1", "c2", "c3", "c4"]);
    let (_, l) = app.get_json(&format!("/comments?agentId={agent}")).await;
    assert_eq!(contents(&l), ["c0", "c2", "c4"]);
    let (_, l) = app
        .get_json(&format!("/comments?missionId={mission}"))
        .await;
    assert_eq!(contents(&l), ["c1", "c2"]);
    let (_, l) = app.get_json("/comments?type=NOTE").await;
    assert_eq!(contents(&l), ["c0", "c3"]);
    let (_, l) = app
        .get_json(&format!(
            "/comments?agentId={agent}&missionId={mission}&type=SUCCESS"
        ))
        .await;
    assert_eq!(contents(&l), ["c2"]);
    let (_, p1) = app.get_json("/comments?limit=2").await;
    let cursor = p1["nextCursor"].as_str().unwrap();
    let (_, p2) = app
        .get_json(&format!("/comments?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(
        (contents(&p1), contents(&p2)),
        (
            vec!["c0".to_owned(), "c1".into()],
            vec!["c2".to_owned(), "c3".into()]
        )
    );

    // Get, edit with If-Match, delete.
    let id = all["items"][0]["id"].as_str().unwrap();
    let r = app
        .http
        .get(app.url(&format!("/comments/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"], "\"1\"");
    let c: Value = r.json().await.unwrap();
    assert_eq!(
        (c["type"].as_str(), c["agentId"].as_str()),
        (Some("NOTE"), Some(agent.as_str()))
    );
    let r = app
        .http
        .patch(app.url(&format!("/comments/{id}")))
        .header("if-match", "\"1\"")
        .json(&json!({"content": "edited", "type": "SYSTEM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pos = r.json::<Value>().await.unwrap()["position"]
        .as_u64()
        .unwrap();
    let (_, c) = app
        .get_json(&format!("/comments/{id}?minPosition={pos}"))
        .await;
    assert_eq!(
        (
            c["content"].as_str(),
            c["type"].as_str(),
            c["version"].as_i64()
        ),
        (Some("edited"), Some("SYSTEM"), Some(2))
    );
    let r = app
        .http
        .patch(app.url(&format!("/comments/{id}")))
        .header("if-match", "\"1\"")
        .json(&json!({"content": "late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = app
        .http
        .delete(app.url(&format!("/comments/{id}")))
        .send()
        .await
        .unwrap();
    let pos = r.json::<Value>().await.unwrap()["position"]
        .as_u64()
        .unwrap();
    let (s, _) = app
        .get_json(&format!("/comments/{id}?minPosition={pos}"))
        .await;
    assert_eq!(s, 404);
    let (_, l) = app.get_json("/comments?type=SYSTEM").await;
    assert!(contents(&l).is_empty());
}

#[tokio::test]
async fn comments_refuse_unknown_references_and_oversized_content() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"content": "x", "agentId": uuid::Uuid::now_v7().to_string()}),
            "agentId",
        ),
        (
            json!({"content": "x", "missionId": uuid::Uuid::now_v7().to_string()}),
            "missionId",
        ),
        (json!({"content": "   "}), "content"),
        (json!({"content": "x".repeat(10_001)}), "content"),
        (json!({"content": "x", "type": "RANT"}), "type"),
        (
            json!({"content": "x", "metadata": {"blob": "y".repeat(17_000)}}),
            "metadata",
        ),
        (json!({"content": "x", "author": "me"}), "author"),
    ];
    for (body, field) in cases {
        let (s, problem) = app.post("/comments", body.clone()).await;
        assert_eq!(s, 422, "{problem}");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{problem}");
    }
    let log = mc_eventlog::EventLog::new(app.nats.client().await);
    assert_eq!(log.head().await.unwrap(), crate::helpers::SETUP_EVENTS);
}
