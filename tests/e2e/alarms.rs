//! Alarm operator actions over HTTP: shelve (with expiry), unshelve, acknowledge and clear
//! rules, list filters, the transition history, and bad input answered with the field at fault.

use crate::helpers::TestApp;
use crate::telemetry_alarms::{act, alarm, configure, feed, settle};
use chrono::Utc;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A spacecraft whose `temp` is out of limits (WARNING above 40): one RAISED alarm.
async fn raised(app: &TestApp) -> String {
    let t0 = Utc::now().timestamp_millis() - 60_000;
    let (s, _) = app
        .post("/spacecraft", json!({"id": "SC-001", "name": "one"}))
        .await;
    assert_eq!(s, 201);
    configure(
        app,
        "SC-001",
        json!({"effectiveAt": 0, "parameters": {"temp": {"warnHigh": 40}}}),
    )
    .await;
    feed(app, "SC-001", t0, 0, &[json!({"temp": 45})]).await;
    let a = alarm(app, "SC-001", "temp", "LIMIT").await;
    assert_eq!(a["state"], "RAISED", "{a}");
    a["id"].as_str().unwrap().to_owned()
}

fn field(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn shelve_hides_an_alarm_until_it_expires_and_unshelve_ends_it_early() {
    let app = TestApp::spawn().await;
    let id = raised(&app).await;
    let body = |extra: Value| {
        let mut b = json!({"operator": "fd", "comment": "known sensor glitch"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    // Bad shelves change nothing and name the field.
    for (extra, at_fault) in [
        (json!({}), "durationSeconds"),
        (json!({"durationSeconds": 0}), "durationSeconds"),
        (json!({"durationSeconds": 31 * 86_400}), "durationSeconds"),
        (
            json!({"durationSeconds": 5, "until": "2030-01-01T00:00:00Z"}),
            "durationSeconds",
        ),
        (json!({"until": "tomorrow"}), "until"),
        (json!({"until": "2001-01-01T00:00:00Z"}), "until"),
    ] {
        let (s, p) = app
            .post(&format!("/alarms/{id}/shelve"), body(extra.clone()))
            .await;
        assert_eq!((s, field(&p)), (422, at_fault), "{extra} → {p}");
    }
    let (s, p) = app
        .post(
            &format!("/alarms/{id}/shelve"),
            json!({"durationSeconds": 60}),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(field(&p), "operator", "{p}");

    // Shelved for an hour: listed as SHELVED, still RAISED underneath.
    let (s, r) = app
        .post(
            &format!("/alarms/{id}/shelve"),
            body(json!({"durationSeconds": 3600})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    settle(&app).await;
    let (_, shelved) = app.get_json("/alarms?state=SHELVED").await;
    assert_eq!(shelved["items"].as_array().unwrap().len(), 1, "{shelved}");
    let a = &shelved["items"][0];
    assert_eq!(
        (
            a["shelved"].as_bool(),
            a["state"].as_str(),
            a["shelvedBy"].as_str()
        ),
        (Some(true), Some("RAISED"), Some("fd"))
    );
    let (_, unshelved) = app.get_json("/alarms?state=UNSHELVED").await;
    assert_eq!(unshelved["items"].as_array().unwrap().len(), 0);

    // Unshelve early, then a second unshelve is refused.
    assert_eq!(
        app.post(&format!("/alarms/{id}/unshelve"), body(json!({})))
            .await
            .0,
        200
    );
    let (s, p) = app
        .post(&format!("/alarms/{id}/unshelve"), body(json!({})))
        .await;
    assert_eq!(s, 409, "{p}");

    // A one-second shelve expires by itself.
    assert_eq!(
        app.post(
            &format!("/alarms/{id}/shelve"),
            body(json!({"durationSeconds": 1}))
        )
        .await
        .0,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        settle(&app).await;
        let (_, h) = app.get_json(&format!("/alarms/{id}/history")).await;
        let items = h["items"].as_array().unwrap().clone();
        let last = items.last().unwrap();
        if last["type"] == "alarm.unshelved" && last["payload"]["reason"] == "expired" {
            let types: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
            assert_eq!(
                types,
                [
                    "alarm.raised",
                    "alarm.shelved",
                    "alarm.unshelved",
                    "alarm.shelved",
                    "alarm.unshelved"
                ]
            );
            break;
        }
        assert!(Instant::now() < deadline, "shelve never expired: {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, a) = app.get_json(&format!("/alarms/{id}")).await;
    assert_eq!(
        (a["shelved"].as_bool(), a["shelvedUntil"].clone()),
        (Some(false), Value::Null),
        "{a}"
    );
}

#[tokio::test]
async fn actions_follow_the_alarm_state_and_bad_input_names_the_field() {
    let app = TestApp::spawn().await;
    let id = raised(&app).await;
    // Still out of limits: clear is refused; acknowledge once, not twice.
    assert_eq!(act(&app, &id, "clear").await.0, 409);
    assert_eq!(act(&app, &id, "acknowledge").await.0, 200);
    let (s, p) = act(&app, &id, "acknowledge").await;
    assert_eq!(s, 409, "{p}");
    settle(&app).await;
    let (s, a) = app.get_json(&format!("/alarms/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(
        (a["state"].as_str(), a["acknowledgedBy"].as_str()),
        (Some("ACKNOWLEDGED"), Some("flight-director")),
        "{a}"
    );

    // Filters.
    for (query, n) in [
        ("state=ACKNOWLEDGED", 1),
        ("state=raised", 0),
        ("state=ACTIVE&severity=WARNING", 1),
        ("severity=CRITICAL", 0),
        ("spacecraftId=SC-002", 0),
        ("kind=STALE", 0),
        ("parameter=temp", 1),
    ] {
        let (s, list) = app.get_json(&format!("/alarms?{query}")).await;
        assert_eq!(s, 200, "{query}: {list}");
        assert_eq!(
            list["items"].as_array().unwrap().len(),
            n,
            "{query}: {list}"
        );
    }
    for (query, at_fault) in [
        ("state=LOUD", "state"),
        ("severity=HIGH", "severity"),
        ("kind=X", "kind"),
        ("spacecraftId=a.b", "spacecraftId"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
    ] {
        let (s, p) = app.get_json(&format!("/alarms?{query}")).await;
        assert_eq!((s, field(&p)), (422, at_fault), "{query}: {p}");
    }

    // Unknown and malformed ids.
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(app.get_json(&format!("/alarms/{unknown}")).await.0, 404);
    assert_eq!(act(&app, &unknown.to_string(), "acknowledge").await.0, 404);
    let (s, p) = act(&app, "not-a-uuid", "acknowledge").await;
    assert_eq!((s, field(&p)), (422, "id"), "{p}");
    let (s, p) = app
        .post(
            &format!("/alarms/{id}/acknowledge"),
            json!({"operator": "", "comment": "x"}),
        )
        .await;
    assert_eq!((s, field(&p)), (422, "operator"), "{p}");
    let (s, p) = app
        .post(
            &format!("/alarms/{id}/acknowledge"),
            json!({"operator": "fd", "mood": "x"}),
        )
        .await;
    assert_eq!(s, 422, "{p}");
}

#[tokio::test]
async fn operators_act_on_alarms_over_nats_too() {
    let app = TestApp::spawn().await;
    let id = raised(&app).await;
    let client = app.nats.client().await;
    let headers = app.nats_headers();
    let request = |subject: &'static str, body: Value| {
        let client = client.clone();
        let headers = headers.clone();
        async move {
            let r = client
                .request_with_headers(
                    subject,
                    headers.clone(),
                    serde_json::to_vec(&body).unwrap().into(),
                )
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&r.payload).unwrap()
        }
    };
    let r = request(
        "mc.cmd.alarm.shelve",
        json!({"id": id, "operator": "fd", "durationSeconds": 0}),
    )
    .await;
    assert_eq!(
        (r["ok"].as_bool(), r["error"]["errors"][0]["field"].as_str()),
        (Some(false), Some("durationSeconds")),
        "{r}"
    );
    let r = request(
        "mc.cmd.alarm.shelve",
        json!({"id": id, "operator": "fd", "durationSeconds": 600}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let r = request(
        "mc.cmd.alarm.acknowledge",
        json!({"id": id, "operator": "fd", "comment": "on it"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let r = request("mc.cmd.alarm.clear", json!({"id": id, "operator": "fd"})).await;
    assert_eq!(
        (r["ok"].as_bool(), r["error"]["status"].as_u64()),
        (Some(false), Some(409)),
        "{r}"
    );
    let r = request("mc.cmd.alarm.unshelve", json!({"id": id, "operator": "fd"})).await;
    assert_eq!(r["ok"], true, "{r}");
    settle(&app).await;
    let (_, h) = app.get_json(&format!("/alarms/{id}/history")).await;
    let types: Vec<&str> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "alarm.raised",
            "alarm.shelved",
            "alarm.acknowledged",
            "alarm.unshelved"
        ]
    );
    assert_eq!(h["items"][2]["payload"]["comment"], "on it");
}
