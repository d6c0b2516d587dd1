//! Idempotent retries past NATS's duplicate window: a command id seen in the archive gets its
//! earlier outcome back, over HTTP (`Idempotency-Key`) and NATS (`commandId`).

use crate::helpers::TestApp;
use mc_eventlog::EventLog;
use serde_json::{json, Value};

#[tokio::test]
async fn http_retries_with_an_idempotency_key_get_the_earlier_outcome() {
    let app = TestApp::spawn().await;
    let key = uuid::Uuid::now_v7().to_string();
    let post = || {
        app.http
            .post(app.url("/missions"))
            .header("idempotency-key", &key)
            .json(&json!({"title": "once"}))
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    app.wait_projection("archive", first["position"].as_u64().unwrap())
        .await;
    let log = EventLog::new(app.nats.client().await);
    let head = log.head().await.unwrap();

    let again = post().await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (
            &again["id"],
            &again["version"],
            &again["position"],
            &again["replayed"]
        ),
        (
            &first["id"],
            &first["version"],
            &first["position"],
            &json!(true)
        )
    );
    assert_eq!(
        log.head().await.unwrap(),
        head,
        "nothing appended by the retry"
    );
    // Read once the missions read model has the first command (it trails under load).
    let (_, list) = app
        .get_json(&format!("/missions?minPosition={}", first["position"]))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let r = app
        .http
        .post(app.url("/missions"))
        .header("idempotency-key", "yesterday")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn nats_retries_with_a_command_id_get_the_earlier_outcome() {
    let app = TestApp::spawn().await;
    let client = app.nats.client().await;
    let body = json!({"name": "retrying-agent", "commandId": uuid::Uuid::now_v7().to_string()})
        .to_string();
    let send = || async {
        let reply = client
            .request_with_headers(
                "mc.cmd.agent.register",
                app.nats_headers(),
                body.clone().into(),
            )
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&reply.payload).unwrap()
    };
    let first = send().await;
    assert_eq!(first["ok"], true, "{first}");
    app.wait_projection("archive", first["position"].as_u64().unwrap())
        .await;
    let again = send().await;
    assert_eq!(
        (
            &again["ok"],
            &again["id"],
            &again["position"],
            &again["replayed"]
        ),
        (&json!(true), &first["id"], &first["position"], &json!(true)),
        "{again}"
    );
    assert_eq!(
        EventLog::new(client.clone()).head().await.unwrap(),
        first["position"].as_u64().unwrap()
    );
}
