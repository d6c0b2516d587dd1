//! The spacecraft registry and its limits, each set in force from its effective time.

use crate::helpers::TestApp;
use serde_json::{json, Value};

async fn put_config(app: &TestApp, id: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .put(app.url(&format!("/spacecraft/{id}/config")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn register_and_configure_limits_with_effective_times() {
    let app = TestApp::spawn().await;
    let (s, r) = app
        .post(
            "/spacecraft",
            json!({"id": "SC-001", "name": "Voyager", "metadata": {"mission": "outer"}}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["id"], "SC-001");
    assert_eq!(
        app.post("/spacecraft", json!({"id": "SC-001", "name": "again"}))
            .await
            .0,
        409
    );

    let t1 = 1_700_000_000_000_i64;
    let t2 = t1 + 60_000;
    let (s, r) = put_config(&app, "SC-001", json!({"effectiveAt": t1, "parameters": {
        "temp": {"warnLow": 0, "warnHigh": 40, "critLow": -10, "critHigh": 50, "persistence": 3, "hysteresis": 1.5, "staleAfter": 30},
        "mode": {"allowedValues": ["CRUISE", "SAFE"]}}})).await;
    assert_eq!((s, r["version"].as_u64()), (200, Some(2)), "{r}");
    let (s, r) = put_config(
        &app,
        "SC-001",
        json!({"effectiveAt": "2023-11-14T22:14:20Z", "parameters": {"temp": {"warnHigh": 45}}}),
    )
    .await;
    assert_eq!((s, r["version"].as_u64()), (200, Some(3)), "{r}");
    let pos = r["position"].as_u64().unwrap();

    let (_, sc) = app
        .get_json(&format!("/spacecraft/SC-001?minPosition={pos}"))
        .await;
    assert_eq!(
        (sc["name"].as_str(), sc["metadata"]["mission"].as_str()),
        (Some("Voyager"), Some("outer"))
    );
    let (_, before) = app
        .get_json(&format!("/spacecraft/SC-001/config?at={}", t1 - 1))
        .await;
    assert!(before["inForce"].is_null(), "{before}");
    let (_, first) = app
        .get_json(&format!("/spacecraft/SC-001/config?at={}", t1 + 1))
        .await;
    assert_eq!(first["inForce"]["version"], 2);
    assert_eq!(first["inForce"]["parameters"]["temp"]["persistence"], 3);
    assert_eq!(
        first["inForce"]["parameters"]["mode"]["allowedValues"],
        json!(["CRUISE", "SAFE"])
    );
    let (_, second) = app
        .get_json(&format!("/spacecraft/SC-001/config?at={t2}"))
        .await;
    assert_eq!(
        (
            second["inForce"]["version"].as_i64(),
            second["inForce"]["parameters"]["temp"]["warnHigh"].as_f64()
        ),
        (Some(3), Some(45.0))
    );
    assert_eq!(second["history"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_spacecraft_and_limits_name_the_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"id": "SC.1", "name": "dots"}), "id"),
        (json!({"id": "SC-9", "name": ""}), "name"),
        (json!({"id": "SC-9", "name": "x", "kind": "probe"}), "kind"),
    ] {
        let (s, p) = app.post("/spacecraft", body.clone()).await;
        assert_eq!(
            (s, p["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{body}: {p}"
        );
    }
    app.create("/spacecraft", json!({"id": "SC-2", "name": "ok"}))
        .await;
    for (body, field) in [
        (
            json!({"parameters": {"temp": {"warnLow": 10, "warnHigh": 5}}}),
            "parameters.temp.warnHigh",
        ),
        (
            json!({"parameters": {"temp": {"persistence": 0}}}),
            "parameters.temp.persistence",
        ),
        (
            json!({"parameters": {"temp": {"staleAfter": -1}}}),
            "parameters.temp.staleAfter",
        ),
        (
            json!({"parameters": {"temp": {"tooHot": 1}}}),
            "parameters.temp.tooHot",
        ),
        (
            json!({"parameters": {}, "effectiveAt": "yesterday"}),
            "effectiveAt",
        ),
    ] {
        let (s, p) = put_config(&app, "SC-2", body.clone()).await;
        assert_eq!(s, 422, "{body}: {p}");
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {p}");
    }
    assert_eq!(
        put_config(&app, "SC-404", json!({"parameters": {}}))
            .await
            .0,
        404
    );
    assert_eq!(app.get_json("/spacecraft/SC-404/config").await.0, 404);
}

#[tokio::test]
async fn spacecraft_list_pages_by_id() {
    let app = TestApp::spawn().await;
    let mut last = 0;
    for id in ["SC-003", "SC-001", "SC-002"] {
        let (_, r) = app.post("/spacecraft", json!({"id": id, "name": id})).await;
        last = r["position"].as_u64().unwrap();
    }
    let (_, p1) = app
        .get_json(&format!("/spacecraft?limit=2&minPosition={last}"))
        .await;
    let ids: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["SC-001", "SC-002"]);
    let (_, p2) = app
        .get_json(&format!(
            "/spacecraft?limit=2&cursor={}",
            p1["nextCursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (p2["items"][0]["id"].as_str(), p2["nextCursor"].is_null()),
        (Some("SC-003"), true)
    );
}
