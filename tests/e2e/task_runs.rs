//! Task runs over HTTP against real NATS and PostgreSQL: the tool registry (schemas that must
//! compile), tasks that allow only registered tools, and a run's whole lifecycle through the
//! policy gate — a READ_ONLY call approved at once, arguments refused by the tool's schema
//! with nothing appended, a DESTRUCTIVE call that blocks the run until an operator approves
//! (a viewer may not), a denial that fails the run, steps after the end refused.

use crate::helpers::{authorized, issue_token, TestApp};
use crate::live::sse_events;
use serde_json::{json, Value};

/// The run's aggregate version and state as the read model shows them (at `position`).
async fn run(app: &TestApp, id: &str, position: u64) -> Value {
    let (status, run) = app
        .get_json(&format!("/task-runs/{id}?minPosition={position}"))
        .await;
    assert_eq!(status, 200, "{run}");
    run
}

async fn register_tools(app: &TestApp) {
    for (name, risk) in [
        ("read_file", "READ_ONLY"),
        ("restart_service", "SAFE_MUTATE"),
        ("wipe_disk", "DESTRUCTIVE"),
    ] {
        let (status, body) = app
            .post(
                "/tools",
                json!({"name": name, "description": format!("{name} on a host"), "risk": risk,
                    "schema": {"type": "object", "properties": {"path": {"type": "string", "pattern": "^/"}},
                        "required": ["path"], "additionalProperties": false}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_goes_through_the_policy_gate_from_queued_to_its_end() {
    let app = TestApp::spawn().await;
    register_tools(&app).await;
    // The same definition again changes nothing; bad definitions name their field.
    let (status, same) = app
        .post(
            "/tools",
            json!({"name": "read_file", "description": "read_file on a host", "risk": "READ_ONLY",
                "schema": {"type": "object", "properties": {"path": {"type": "string", "pattern": "^/"}},
                    "required": ["path"], "additionalProperties": false}}),
        )
        .await;
    assert_eq!((status, &same["position"]), (200, &Value::Null), "{same}");
    for (body, field) in [
        (
            json!({"name": "t1", "risk": "READ_ONLY", "schema": {"type": "nope"}}),
            "schema",
        ),
        (json!({"name": "t1", "risk": "SCARY", "schema": {}}), "risk"),
        (
            json!({"name": "a.b", "risk": "READ_ONLY", "schema": {}}),
            "name",
        ),
        (
            json!({"name": "t1", "risk": "READ_ONLY", "schema": {"$ref": "http://x/y.json"}}),
            "schema",
        ),
    ] {
        let (status, problem) = app.post("/tools", body.clone()).await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{body}: {problem}"
        );
    }

    // Tasks allow registered tools only.
    let (status, problem) = app
        .post(
            "/tasks",
            json!({"title": "t", "allowedTools": ["read_file", "format_c"]}),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("allowedTools[1]")),
        "{problem}"
    );
    let task = app
        .create(
            "/tasks",
            json!({"title": "Clean up host-7", "prompt": "Free disk space on host-7",
                "allowedTools": ["read_file", "restart_service", "wipe_disk"],
                "safeMutateApproval": "operator", "budgetUsd": 1.25}),
        )
        .await;
    let (status, created) = app.post("/task-runs", json!({"taskId": task})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let r = run(&app, &id, created["position"].as_u64().unwrap()).await;
    assert_eq!(
        (r["state"].as_str(), r["taskId"].as_str()),
        (Some("queued"), Some(task.as_str()))
    );

    // Arguments that fail the tool's schema: 422 naming the pointer, nothing appended.
    let (status, problem) = app
        .post(
            &format!("/task-runs/{id}/tool-calls"),
            json!({"tool": "read_file", "arguments": {"path": "etc/passwd"}}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "arguments/path", "{problem}");
    for (body, field) in [
        (json!({"tool": "nope", "arguments": {}}), "tool"),
        (
            json!({"tool": "read_file", "arguments": {"path": "/x", "rm": true}}),
            "arguments",
        ),
    ] {
        let (status, problem) = app
            .post(&format!("/task-runs/{id}/tool-calls"), body.clone())
            .await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{problem}"
        );
    }
    let (_, history) = app
        .get_json(&format!(
            "/task-runs/{id}/events?minPosition={}",
            created["position"]
        ))
        .await;
    assert_eq!(
        history["items"].as_array().unwrap().len(),
        1,
        "only created: {history}"
    );

    // READ_ONLY: approved by the policy at once; the run starts.
    let (status, read) = app
        .post(
            &format!("/task-runs/{id}/tool-calls"),
            json!({"tool": "read_file", "arguments": {"path": "/var/log"}}),
        )
        .await;
    assert_eq!(status, 201, "{read}");
    assert_eq!(
        (read["callState"].as_str(), read["state"].as_str()),
        (Some("approved"), Some("running"))
    );
    let read_call = read["callId"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post(
            &format!("/task-runs/{id}/tool-calls/{read_call}/result"),
            json!({"result": {"bytes": 1024}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            &format!("/task-runs/{id}/logs"),
            json!({"level": "info", "message": "disk 97% full"}),
        )
        .await;
    assert_eq!(status, 200);

    // SAFE_MUTATE with an operator-approval task, then DESTRUCTIVE: each waits.
    let (status, wipe) = app
        .post(
            &format!("/task-runs/{id}/tool-calls"),
            json!({"tool": "wipe_disk", "arguments": {"path": "/tmp"}}),
        )
        .await;
    assert_eq!(status, 201, "{wipe}");
    assert_eq!(
        (wipe["callState"].as_str(), wipe["state"].as_str()),
        (Some("pending-approval"), Some("awaiting_approval"))
    );
    let wipe_call = wipe["callId"].as_str().unwrap().to_owned();
    // Blocked: nothing goes past the pending call.
    for (path, body) in [
        (
            format!("/task-runs/{id}/complete"),
            json!({"output": "done"}),
        ),
        (
            format!("/task-runs/{id}/tool-calls"),
            json!({"tool": "read_file", "arguments": {"path": "/"}}),
        ),
    ] {
        let (status, problem) = app.post(&path, body).await;
        assert_eq!(status, 409, "{path}: {problem}");
    }
    // A viewer may look but not approve.
    let viewer = authorized(&issue_token(&app.nats.url(), "watcher", "viewer", &[]).await);
    let r = viewer
        .post(app.url(&format!("/task-runs/{id}/tool-calls/{wipe_call}/approve")))
        .json(&json!({"reason": "looks fine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = viewer
        .get(app.url(&format!("/task-runs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, approved) = app
        .post(
            &format!("/task-runs/{id}/tool-calls/{wipe_call}/approve"),
            json!({"reason": "only /tmp"}),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "running");
    let (status, again) = app
        .post(
            &format!("/task-runs/{id}/tool-calls/{wipe_call}/deny"),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(status, 409, "decided once: {again}");
    let mut end = 0;
    for (path, body) in [
        (
            format!("/task-runs/{id}/tool-calls/{wipe_call}/result"),
            json!({"error": "device busy"}),
        ),
        (
            format!("/task-runs/{id}/artifacts"),
            json!({"name": "report", "uri": "s3://ops/host-7.txt",
            "contentType": "text/plain", "sha256": "ab".repeat(32)}),
        ),
        (
            format!("/task-runs/{id}/complete"),
            json!({"output": "freed 12 GB"}),
        ),
    ] {
        let (status, body) = app.post(&path, body).await;
        assert_eq!(status, 200, "{path}: {body}");
        end = body["position"].as_u64().unwrap();
    }
    // Finished: every further step is refused and nothing is appended.
    let (status, problem) = app
        .post(&format!("/task-runs/{id}/logs"), json!({"message": "late"}))
        .await;
    assert_eq!(status, 409, "{problem}");
    let (status, done) = app
        .post(&format!("/task-runs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409, "{done}");

    let (_, events) = app
        .get_json(&format!("/task-runs/{id}/events?minPosition={end}"))
        .await;
    let types: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "task_run.created",
            "task_run.started",
            "task_run.tool_call_requested",
            "task_run.tool_call_approved",
            "task_run.tool_call_finished",
            "task_run.logged",
            "task_run.tool_call_requested",
            "task_run.tool_call_approved",
            "task_run.tool_call_finished",
            "task_run.artifact_added",
            "task_run.succeeded"
        ]
    );
    let last = events["items"][10]["position"].as_u64().unwrap();
    let r = run(&app, &id, last).await;
    assert_eq!(
        (
            r["state"].as_str(),
            r["output"].as_str(),
            r["logs"].as_i64()
        ),
        (Some("succeeded"), Some("freed 12 GB"), Some(1))
    );
    let calls = r["toolCalls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0]["status"].as_str(), calls[0]["decidedBy"].as_str()),
        (Some("succeeded"), Some("policy"))
    );
    assert_eq!(calls[1]["status"], "failed");
    assert_eq!(calls[1]["error"], "device busy");
    // The approver is the authenticated principal.
    assert!(
        calls[1]["decidedBy"]
            .as_str()
            .unwrap()
            .starts_with("token:"),
        "{calls:?}"
    );
    assert_eq!(r["artifacts"][0]["name"], "report");
    let (_, listed) = app
        .get_json(&format!(
            "/task-runs?state=succeeded&taskId={task}&minPosition={last}"
        ))
        .await;
    assert_eq!(listed["items"][0]["id"], id.as_str(), "{listed}");
    let (status, problem) = app.get_json("/task-runs?state=sleeping").await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("state"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_call_fails_the_run_with_who_and_why() {
    let app = TestApp::spawn().await;
    register_tools(&app).await;
    let task = app
        .create(
            "/tasks",
            json!({"title": "risky", "allowedTools": ["wipe_disk", "restart_service"]}),
        )
        .await;
    let (_, created) = app.post("/task-runs", json!({"taskId": task})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // SAFE_MUTATE on a task with the default policy: approved automatically.
    let (_, restart) = app
        .post(
            &format!("/task-runs/{id}/tool-calls"),
            json!({"tool": "restart_service", "arguments": {"path": "/srv"}}),
        )
        .await;
    assert_eq!(restart["callState"], "approved", "{restart}");
    let (_, wipe) = app
        .post(
            &format!("/task-runs/{id}/tool-calls"),
            json!({"tool": "wipe_disk", "arguments": {"path": "/"}}),
        )
        .await;
    let call = wipe["callId"].as_str().unwrap();
    let (status, denied) = app
        .post(
            &format!("/task-runs/{id}/tool-calls/{call}/deny"),
            json!({"reason": "not the root disk"}),
        )
        .await;
    assert_eq!(
        (status, denied["state"].as_str()),
        (200, Some("failed")),
        "{denied}"
    );
    let r = run(&app, &id, denied["position"].as_u64().unwrap()).await;
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("wipe_disk") && reason.contains("not the root disk"),
        "{reason}"
    );
    assert_eq!(r["toolCalls"][1]["status"], "denied");
    // Unknown runs and tasks are 404 / 422; a run of an unknown task is refused.
    let unknown = uuid::Uuid::now_v7();
    let (status, _) = app.get_json(&format!("/task-runs/{unknown}")).await;
    assert_eq!(status, 404);
    let (status, problem) = app
        .post(&format!("/task-runs/{unknown}/complete"), json!({}))
        .await;
    assert_eq!(status, 404, "{problem}");
    let (status, problem) = app.post("/task-runs", json!({"taskId": unknown})).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("taskId")),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_events_stream_over_sse_and_resume_from_last_event_id() {
    let app = TestApp::spawn().await;
    register_tools(&app).await;
    let task = app
        .create(
            "/tasks",
            json!({"title": "watched", "allowedTools": ["read_file"]}),
        )
        .await;
    let (_, created) = app.post("/task-runs", json!({"taskId": task})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let stream_url = app.url(&format!("/task-runs/{id}/events/stream"));
    // From just after the run's creation: the relay may not have fanned the creation out yet
    // when the stream opens, and the test wants the log lines that follow it.
    let created_at = created["position"].as_u64().unwrap();
    let r = app
        .http
        .get(&stream_url)
        .header("Last-Event-ID", format!("{created_at}-0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let log = |n: u32| {
        let app = &app;
        let id = id.clone();
        async move {
            let (status, body) = app
                .post(
                    &format!("/task-runs/{id}/logs"),
                    json!({"message": format!("step {n}")}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["position"].as_u64().unwrap()
        }
    };
    let first = log(0).await;
    let events = sse_events(r, 1).await;
    assert_eq!(events[0].1["position"], first);
    assert_eq!(events[0].1["name"], "taskRunEvent");
    let last_id = events[0].0.clone();
    let mut missed = Vec::new();
    for n in 1..=3 {
        missed.push(log(n).await);
    }
    let r = app
        .http
        .get(&stream_url)
        .header("Last-Event-ID", &last_id)
        .send()
        .await
        .unwrap();
    let resumed: Vec<u64> = sse_events(r, 3)
        .await
        .into_iter()
        .map(|(_, v)| v["position"].as_u64().unwrap())
        .collect();
    assert_eq!(resumed, missed);
    let r = app
        .http
        .get(app.url(&format!(
            "/task-runs/{}/events/stream",
            uuid::Uuid::now_v7()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::Client::new()
        .get(&stream_url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// A runner that speaks NATS: the same steps, policy and answers as over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_reports_its_steps_over_nats() {
    let app = TestApp::spawn().await;
    register_tools(&app).await;
    let client = app.nats.client().await;
    let headers = app.nats_headers();
    let request = |action: &str, body: Value| {
        let (client, headers) = (client.clone(), headers.clone());
        let subject = format!("mc.cmd.{action}");
        async move {
            let reply = client
                .request_with_headers(subject, headers, serde_json::to_vec(&body).unwrap().into())
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&reply.payload).unwrap()
        }
    };
    // Tools and tasks too.
    let tool = request(
        "tool.define",
        json!({"name": "list_dir", "risk": "READ_ONLY", "schema": {"type": "object"}}),
    )
    .await;
    assert_eq!(
        (tool["ok"].as_bool(), tool["id"].as_str()),
        (Some(true), Some("list_dir")),
        "{tool}"
    );
    let bad = request(
        "task.create",
        json!({"title": " ", "allowedTools": ["nope"]}),
    )
    .await;
    assert_eq!(bad["error"]["status"], 422, "{bad}");
    let task = request(
        "task.create",
        json!({"title": "over nats", "allowedTools": ["read_file", "wipe_disk", "list_dir"]}),
    )
    .await;
    assert_eq!(task["ok"], true, "{task}");
    let task = task["id"].as_str().unwrap().to_owned();
    let created = request("task-run.create", json!({"taskId": task})).await;
    assert_eq!(created["ok"], true, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let read = request(
        "task-run.tool-call",
        json!({"id": id, "tool": "read_file", "arguments": {"path": "/etc"}}),
    )
    .await;
    assert_eq!(
        (read["ok"].as_bool(), read["callState"].as_str()),
        (Some(true), Some("approved")),
        "{read}"
    );
    let bad = request(
        "task-run.tool-call",
        json!({"id": id, "tool": "read_file", "arguments": {"path": 3}}),
    )
    .await;
    assert_eq!(bad["ok"], false);
    assert_eq!(
        bad["error"]["errors"][0]["field"], "arguments/path",
        "{bad}"
    );
    let wipe = request(
        "task-run.tool-call",
        json!({"id": id, "tool": "wipe_disk", "arguments": {"path": "/tmp"}}),
    )
    .await;
    assert_eq!(wipe["state"], "awaiting_approval", "{wipe}");
    let missing = request("task-run.approve", json!({"id": id, "reason": "ok"})).await;
    assert_eq!(
        missing["error"]["errors"][0]["field"], "callId",
        "{missing}"
    );
    let approved = request(
        "task-run.approve",
        json!({"id": id, "callId": wipe["callId"], "reason": "scratch"}),
    )
    .await;
    assert_eq!(approved["state"], "running", "{approved}");
    let llm = request(
        "task-run.llm-call",
        json!({"id": id, "provider": "acme", "model": "m1", "inputTokens": 5, "outputTokens": 2}),
    )
    .await;
    assert_eq!(
        (llm["ok"].as_bool(), &llm["costUsd"]),
        (Some(true), &Value::Null),
        "{llm}"
    );
    let done = request("task-run.complete", json!({"id": id, "output": "ok"})).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let late = request("task-run.log", json!({"id": id, "message": "late"})).await;
    assert_eq!(
        (late["ok"].as_bool(), late["error"]["status"].as_u64()),
        (Some(false), Some(409)),
        "{late}"
    );
    // The approver is the token's principal, as over HTTP.
    let r = run(&app, &id, done["position"].as_u64().unwrap()).await;
    assert!(
        r["toolCalls"][1]["decidedBy"]
            .as_str()
            .unwrap()
            .starts_with("token:"),
        "{r}"
    );
}
