//! Missions over HTTP: every endpoint, each filter, pagination, transitions, bad input.

use crate::helpers::TestApp;
use serde_json::{json, Value};

impl TestApp {
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .patch(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .put(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Create and return the id (asserting 201).
    pub async fn create(&self, path: &str, body: Value) -> String {
        let (status, created) = self.post(path, body).await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().unwrap().to_owned()
    }
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn mission_lifecycle_over_http() {
    let app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "pilot"})).await;
    let (status, created) = app
        .post("/missions", json!({"title": "Survey", "description": "map the crater", "priority": "HIGH", "agentId": agent, "metadata": {"zone": 4}}))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let pos = created["position"].as_u64().unwrap();
    let (s, m) = app
        .get_json(&format!("/missions/{id}?minPosition={pos}"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            m["title"].as_str(),
            m["status"].as_str(),
            m["priority"].as_str(),
            m["progress"].as_i64(),
            m["agentId"].as_str()
        ),
        (
            Some("Survey"),
            Some("PENDING"),
            Some("HIGH"),
            Some(0),
            Some(agent.as_str())
        )
    );
    assert_eq!(m["metadata"], json!({"zone": 4}));

    // Start and report progress in one commit.
    let (s, r) = app
        .patch(
            &format!("/missions/{id}"),
            json!({"status": "IN_PROGRESS", "progress": 40}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["version"], 3);
    let pos = r["position"].as_u64().unwrap();
    let (_, p) = app
        .get_json(&format!("/missions/{id}/progress?minPosition={pos}"))
        .await;
    assert_eq!(
        (p["progress"].as_i64(), p["status"].as_str()),
        (Some(40), Some("IN_PROGRESS"))
    );

    // Bad progress, illegal transition: problems, nothing appended.
    let (s, problem) = app
        .patch(&format!("/missions/{id}"), json!({"progress": 101}))
        .await;
    assert_eq!(
        (s, problem["errors"][0]["field"].as_str()),
        (422, Some("progress"))
    );
    let (s, r) = app
        .patch(&format!("/missions/{id}"), json!({"status": "COMPLETED"}))
        .await;
    assert_eq!(s, 200);
    let (s, problem) = app
        .patch(&format!("/missions/{id}"), json!({"status": "IN_PROGRESS"}))
        .await;
    assert_eq!(s, 409, "{problem}");
    assert_eq!(
        (problem["code"].as_str(), problem["currentState"].as_str()),
        (Some("invalid-transition"), Some("COMPLETED"))
    );
    let (s, problem) = app
        .patch(&format!("/missions/{id}"), json!({"progress": 10}))
        .await;
    assert_eq!(s, 409, "{problem}");
    let (_, p) = app
        .get_json(&format!(
            "/missions/{id}/progress?minPosition={}",
            r["position"]
        ))
        .await;
    assert_eq!(p["progress"], 100, "completing sets progress to 100");

    // Delete keeps history; later GETs answer 404 and lists hide it.
    let r = app
        .http
        .delete(app.url(&format!("/missions/{id}")))
        .header("if-match", "\"4\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pos = r.json::<Value>().await.unwrap()["position"]
        .as_u64()
        .unwrap();
    let (s, _) = app
        .get_json(&format!("/missions/{id}?minPosition={pos}"))
        .await;
    assert_eq!(s, 404);
    let (_, list) = app.get_json("/missions").await;
    assert!(list["items"].as_array().unwrap().is_empty());
    app.wait_projection("archive", pos).await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 5, "created, status, progress, completed, deleted");
}

#[tokio::test]
async fn mission_refuses_bad_references_and_bad_fields() {
    let app = TestApp::spawn().await;
    let offline = app
        .create("/agents", json!({"name": "sleepy", "status": "OFFLINE"}))
        .await;
    let cases = [
        (
            json!({"title": "x", "agentId": uuid::Uuid::now_v7().to_string()}),
            "agentId",
        ),
        (json!({"title": "x", "agentId": offline}), "agentId"),
        (json!({"title": "x", "agentId": "nope"}), "agentId"),
        (json!({"title": ""}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"title": "x", "priority": "SOON"}), "priority"),
        (
            json!({"title": "x", "metadata": "not an object"}),
            "metadata",
        ),
        (json!({"title": "x", "status": "IN_PROGRESS"}), "status"),
    ];
    for (body, field) in cases {
        let (s, problem) = app.post("/missions", body.clone()).await;
        assert_eq!(s, 422, "{body}: {problem}");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
    }
    let id = app.create("/missions", json!({"title": "ok"})).await;
    let (s, problem) = app
        .patch(&format!("/missions/{id}"), json!({"agentId": offline}))
        .await;
    assert_eq!(
        (s, problem["errors"][0]["message"].as_str()),
        (422, Some("agent is OFFLINE"))
    );
    let (s, _) = app
        .patch(
            &format!("/missions/{}", uuid::Uuid::now_v7()),
            json!({"progress": 5}),
        )
        .await;
    assert_eq!(s, 404);
    let log = mc_eventlog::EventLog::new(app.nats.client().await);
    assert_eq!(
        log.head().await.unwrap(),
        2 + crate::helpers::SETUP_EVENTS,
        "only the agent and the valid mission were appended"
    );
}

#[tokio::test]
async fn mission_filters_and_pages() {
    let app = TestApp::spawn().await;
    let a = app.create("/agents", json!({"name": "a"})).await;
    let b = app.create("/agents", json!({"name": "b"})).await;
    let mut last = 0;
    for i in 0..9 {
        let priority = ["LOW", "MEDIUM", "URGENT"][i % 3];
        let agent = if i % 2 == 0 { &a } else { &b };
        let (_, r) = app
            .post(
                "/missions",
                json!({"title": format!("m{i}"), "priority": priority, "agentId": agent}),
            )
            .await;
        last = r["position"].as_u64().unwrap();
        if i < 3 {
            let id = r["id"].as_str().unwrap();
            let (_, r) = app
                .patch(&format!("/missions/{id}"), json!({"status": "IN_PROGRESS"}))
                .await;
            last = r["position"].as_u64().unwrap();
        }
    }
    let (_, list) = app
        .get_json(&format!("/missions?status=IN_PROGRESS&minPosition={last}"))
        .await;
    assert_eq!(names(&list, "title"), ["m0", "m1", "m2"]);
    let (_, list) = app.get_json("/missions?priority=URGENT").await;
    assert_eq!(names(&list, "title"), ["m2", "m5", "m8"]);
    let (_, list) = app.get_json(&format!("/missions?agentId={b}")).await;
    assert_eq!(names(&list, "title"), ["m1", "m3", "m5", "m7"]);
    let (_, list) = app
        .get_json(&format!(
            "/missions?agentId={a}&priority=LOW&status=IN_PROGRESS"
        ))
        .await;
    assert_eq!(names(&list, "title"), ["m0"]);

    let mut seen = Vec::new();
    let mut url = "/missions?limit=4".to_owned();
    loop {
        let (_, page) = app.get_json(&url).await;
        seen.extend(names(&page, "title"));
        match page["nextCursor"].as_str() {
            Some(c) => url = format!("/missions?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..9).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let (s, problem) = app
        .get_json("/missions?status=DONE&priority=x&agentId=y")
        .await;
    assert_eq!((s, problem["errors"].as_array().unwrap().len()), (422, 3));
}
