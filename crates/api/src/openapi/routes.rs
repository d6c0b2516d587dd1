//! What the router's table cannot say about a route: its summary, query parameters, request
//! body type and kind of answer. A test fails when a route of the router has no entry here or
//! an entry names a route the router does not serve.

use super::component;
use utoipa::openapi::{RefOr, Schema};

/// Registers a body type's schema and returns a reference to it.
pub(super) type BodyFn = fn(&mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema>;

/// The kind of a route's success answer.
#[derive(Clone, Copy)]
pub(super) enum Answer {
    /// 200 with a JSON document.
    Json,
    /// 200 `{id, version, position}`.
    Command,
    /// 201 `{id, version, position}`.
    Created,
    /// 202: a job was started.
    Accepted,
    /// 200 `{items, nextCursor}`.
    Page,
    /// 200 with a stream of this media type.
    Stream(&'static str),
    /// 200 with one read-model row of this type.
    One(BodyFn),
    /// 200 `{items: [rows of this type], nextCursor}`.
    List(BodyFn),
}

pub(super) struct Doc {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub query: &'static [(&'static str, &'static str)],
    pub body: Option<BodyFn>,
    pub answer: Answer,
}

use Answer::{Accepted, Command, Created, Json, List, One, Page, Stream};

const fn d(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    query: &'static [(&'static str, &'static str)],
    body: Option<BodyFn>,
    answer: Answer,
) -> Doc {
    Doc {
        method,
        path,
        tag,
        summary,
        query,
        body,
        answer,
    }
}

const MIN: (&str, &str) = (
    "minPosition",
    "wait (bounded) until the read model has reached this log position",
);
const LIMIT: (&str, &str) = ("limit", "page size");
const CURSOR: (&str, &str) = ("cursor", "the `nextCursor` of the previous page");
const PAGE: &[(&str, &str)] = &[LIMIT, CURSOR, MIN];
const ONE: &[(&str, &str)] = &[MIN];
const NONE: &[(&str, &str)] = &[];
const HOURS: (&str, &str) = (
    "hours",
    "how far back, 1 to 720 (per minute up to 24, per hour beyond; 24)",
);

use crate::{
    agents, alarms, backups, comments, fleet, missions, spacecraft, task_run_steps, tasks, tokens,
    usage,
};
use mc_projections::{
    agents as agent_rows, alarms as alarm_rows, comments as comment_rows, events as event_rows,
    missions as mission_rows, spacecraft as spacecraft_rows, tasks as task_rows,
};

#[rustfmt::skip]
pub(super) const DOCS: &[Doc] = &[
    d("GET", "/openmct/", "open mct", "Open MCT with the Mission Control plugin (needs MC_OPENMCT_DIR)", NONE, None, Stream("text/html")),
    d("GET", "/openmct/mission-control.js", "open mct", "the Open MCT plugin", NONE, None, Stream("text/javascript")),
    d("GET", "/openmct/lib/{*path}", "open mct", "Open MCT's own files, from MC_OPENMCT_DIR", NONE, None, Stream("application/octet-stream")),
    d("GET", "/", "dashboard", "the operations dashboard (asks for a token)", NONE, None, Stream("text/html")),
    d("GET", "/ui/app.js", "dashboard", "the dashboard's script", NONE, None, Stream("text/javascript")),
    d("GET", "/ui/style.css", "dashboard", "the dashboard's style sheet", NONE, None, Stream("text/css")),
    d("GET", "/health", "health", "readiness with its checks", NONE, None, Json),
    d("GET", "/health/live", "health", "liveness (open)", NONE, None, Json),
    d("GET", "/health/ready", "health", "readiness: NATS, PostgreSQL, migrations, streams, consumers (open)", NONE, None, Json),
    d("GET", "/health/detailed", "health", "readiness, projection lag, NATS and PostgreSQL, uptime, memory", NONE, None, Json),
    d("GET", "/metrics", "health", "Prometheus metrics", NONE, None, Stream("text/plain")),
    d("GET", "/docs", "docs", "this API's documentation page", NONE, None, Stream("text/html")),
    d("GET", "/api/v1/openapi.json", "docs", "this OpenAPI document", NONE, None, Json),
    d("GET", "/api/v1/agents", "agents", "list agents", &[("status", "IDLE, BUSY, OFFLINE or ERROR"), LIMIT, CURSOR, MIN,], None, List(component::<agent_rows::AgentRow>)),
    d("POST", "/api/v1/agents", "agents", "register an agent", NONE, Some(component::<agents::CreateBody>), Created),
    d("GET", "/api/v1/agents/{id}", "agents", "one agent (`ETag`: its version)", ONE, None, One(component::<agent_rows::AgentRow>)),
    d("PATCH", "/api/v1/agents/{id}", "agents", "update an agent (`If-Match` honoured)", NONE, Some(component::<agents::PatchBody>), Command),
    d("DELETE", "/api/v1/agents/{id}", "agents", "remove an agent", NONE, None, Command),
    d("POST", "/api/v1/agents/{id}/heartbeat", "fleet", "a heartbeat (an OFFLINE agent comes back; nothing else is appended)", NONE, None, Json),
    d("GET", "/api/v1/agents/{id}/metrics", "fleet", "an agent's metrics", ONE, None, Json),
    d("GET", "/api/v1/agents/{id}/history", "fleet", "an agent's metric series", &[HOURS, MIN], None, Json),
    d("PUT", "/api/v1/agents/{id}/budget", "tasks", "set an agent's LLM budget", NONE, Some(component::<tasks::BudgetBody>), Command),
    d("GET", "/api/v1/system/status", "fleet", "system metrics, health score, command latency, consumers", ONE, None, Json),
    d("GET", "/api/v1/system/metrics", "fleet", "the system's metric series", &[HOURS, MIN], None, Json),
    d("GET", "/api/v1/system/metrics/limits", "fleet", "limits on agent and system metrics", ONE, None, Json),
    d("PUT", "/api/v1/system/metrics/limits", "fleet", "replace the limits on agent and system metrics", NONE, Some(component::<fleet::LimitsPut>), Json),
    d("GET", "/api/v1/system/events", "fleet", "the latest events, newest first", &[("limit", "1 to 500 (50)"), MIN], None, Json),
    d("GET", "/api/v1/missions", "missions", "list missions", &[("status", "mission status"), ("priority", "LOW, MEDIUM, HIGH or CRITICAL"), ("agentId", "assigned agent"), LIMIT, CURSOR, MIN,], None, List(component::<mission_rows::MissionRow>)),
    d("POST", "/api/v1/missions", "missions", "create a mission (PENDING)", NONE, Some(component::<missions::CreateBody>), Created),
    d("GET", "/api/v1/missions/{id}", "missions", "one mission", ONE, None, One(component::<mission_rows::MissionRow>)),
    d("PATCH", "/api/v1/missions/{id}", "missions", "change a mission: fields, status, progress, assignment in one commit", NONE, Some(component::<missions::ChangeBody>), Command),
    d("DELETE", "/api/v1/missions/{id}", "missions", "delete a mission", NONE, None, Command),
    d("GET", "/api/v1/missions/{id}/progress", "missions", "a mission's progress, status and agent", ONE, None, Json),
    d("GET", "/api/v1/comments", "comments", "list comments", &[("agentId", "author agent"), ("missionId", "mission"), ("type", "comment type"), LIMIT, CURSOR, MIN,], None, List(component::<comment_rows::CommentRow>)),
    d("POST", "/api/v1/comments", "comments", "post a comment", NONE, Some(component::<comments::CreateBody>), Created),
    d("GET", "/api/v1/comments/{id}", "comments", "one comment", ONE, None, One(component::<comment_rows::CommentRow>)),
    d("PATCH", "/api/v1/comments/{id}", "comments", "edit a comment", NONE, Some(component::<comments::EditBody>), Command),
    d("DELETE", "/api/v1/comments/{id}", "comments", "delete a comment", NONE, None, Command),
    d("GET", "/api/v1/spacecraft", "spacecraft", "list spacecraft", PAGE, None, List(component::<spacecraft_rows::SpacecraftRow>)),
    d("POST", "/api/v1/spacecraft", "spacecraft", "register a spacecraft", NONE, Some(component::<spacecraft::CreateBody>), Created),
    d("GET", "/api/v1/spacecraft/{id}", "spacecraft", "one spacecraft", ONE, None, One(component::<spacecraft_rows::SpacecraftRow>)),
    d("GET", "/api/v1/spacecraft/{id}/config", "spacecraft", "the limits in force and their history", &[("at", "the time the limits in force are read at"), MIN], None, Json),
    d("PUT", "/api/v1/spacecraft/{id}/config", "spacecraft", "set parameter limits from a time on", NONE, Some(component::<spacecraft::ConfigBody>), Command),
    d("POST", "/api/v1/telemetry", "telemetry", "ingest one snapshot or an array of them", NONE, Some(component::<serde_json::Value>), Json),
    d("GET", "/api/v1/telemetry", "telemetry", "raw samples", &[("spacecraftId", "spacecraft"), ("parameter", "parameter"), ("from", "RFC 3339"), ("to", "RFC 3339"), LIMIT, CURSOR, MIN,], None, Page),
    d("GET", "/api/v1/telemetry/latest", "telemetry", "the latest value of each parameter", &[("spacecraftId", "spacecraft"), MIN], None, Json),
    d("GET", "/api/v1/telemetry/rollups", "telemetry", "rollups (1s, 1m, 1h)", &[("spacecraftId", "spacecraft"), ("parameter", "parameter"), ("interval", "1s, 1m or 1h"), ("from", "RFC 3339"), ("to", "RFC 3339"), LIMIT, CURSOR, MIN,], None, Page),
    d("GET", "/api/v1/telemetry/analyze", "telemetry", "recent samples judged against the limits", &[("spacecraftId", "spacecraft"), ("limit", "samples"), MIN], None, Json),
    d("GET", "/api/v1/alarms", "alarms", "list alarms", &[("state", "RAISED, ACKNOWLEDGED, RETURNED, CLEARED or active"), ("spacecraftId", "source"), ("parameter", "parameter"), ("severity", "WARNING or CRITICAL"), ("kind", "LIMIT, STALE or BUDGET"), LIMIT, CURSOR, MIN,], None, List(component::<alarm_rows::AlarmRow>)),
    d("GET", "/api/v1/alarms/{id}", "alarms", "one alarm", ONE, None, One(component::<alarm_rows::AlarmRow>)),
    d("GET", "/api/v1/alarms/{id}/history", "alarms", "an alarm's transitions", &[LIMIT, MIN], None, List(component::<alarm_rows::HistoryRow>)),
    d("POST", "/api/v1/alarms/{id}/acknowledge", "alarms", "acknowledge an alarm", NONE, Some(component::<alarms::ActionBody>), Command),
    d("POST", "/api/v1/alarms/{id}/clear", "alarms", "clear an alarm back to normal", NONE, Some(component::<alarms::ActionBody>), Command),
    d("POST", "/api/v1/alarms/{id}/shelve", "alarms", "shelve an alarm until a time", NONE, Some(component::<alarms::ShelveBody>), Command),
    d("POST", "/api/v1/alarms/{id}/unshelve", "alarms", "unshelve an alarm", NONE, Some(component::<alarms::ActionBody>), Command),
    d("GET", "/api/v1/events", "audit", "query the archived events (JSON page, NDJSON or CSV export)", &[("aggregate", "aggregate type"), ("id", "aggregate id"), ("actor", "actor"), ("type", "event type"), ("from", "RFC 3339"), ("to", "RFC 3339"), ("fromPosition", "first position"), ("toPosition", "last position"), ("format", "json, ndjson or csv"), LIMIT, CURSOR, MIN,], None, List(component::<event_rows::EventRow>)),
    d("GET", "/api/v1/audit/verify", "audit", "verify the archive's hash chain", NONE, None, Json),
    d("GET", "/api/v1/backups", "backups", "list backups", NONE, None, Json),
    d("POST", "/api/v1/backups", "backups", "start a backup", NONE, Some(component::<backups::CreateBody>), Accepted),
    d("GET", "/api/v1/backups/{id}", "backups", "a backup's state and manifest", NONE, None, Json),
    d("POST", "/api/v1/backups/{id}/verify", "backups", "verify a backup (optionally a restore drill)", NONE, None, Accepted),
    d("POST", "/api/v1/backups/{id}/restore", "backups", "restore a backup into the configured target", NONE, Some(component::<backups::RestoreBody>), Accepted),
    d("GET", "/api/v1/projections", "projections", "projections: position, lag, state", NONE, None, Json),
    d("POST", "/api/v1/projections/{name}/rebuild", "projections", "blue/green rebuild of a projection", NONE, None, Accepted),
    d("GET", "/api/v1/tokens", "tokens", "list API tokens (no secrets)", NONE, None, Json),
    d("POST", "/api/v1/tokens", "tokens", "issue an API token (the secret is shown once)", NONE, Some(component::<tokens::CreateBody>), Created),
    d("DELETE", "/api/v1/tokens/{id}", "tokens", "revoke an API token", NONE, None, Command),
    d("GET", "/api/v1/tools", "tasks", "list tools", PAGE, None, List(component::<task_rows::ToolRow>)),
    d("POST", "/api/v1/tools", "tasks", "define a tool (risk and JSON Schema of its arguments)", NONE, Some(component::<tasks::ToolBody>), Created),
    d("GET", "/api/v1/tools/{name}", "tasks", "one tool", ONE, None, One(component::<task_rows::ToolRow>)),
    d("GET", "/api/v1/tasks", "tasks", "list tasks", PAGE, None, List(component::<task_rows::TaskRow>)),
    d("POST", "/api/v1/tasks", "tasks", "create a task", NONE, Some(component::<tasks::TaskBody>), Created),
    d("GET", "/api/v1/tasks/{id}", "tasks", "one task", ONE, None, One(component::<task_rows::TaskRow>)),
    d("PUT", "/api/v1/tasks/{id}/budget", "tasks", "set a task's LLM budget", NONE, Some(component::<tasks::BudgetBody>), Command),
    d("GET", "/api/v1/task-runs", "task runs", "list task runs", &[("taskId", "task"), ("agentId", "agent"), ("state", "run state"), LIMIT, CURSOR, MIN,], None, List(component::<task_rows::RunRow>)),
    d("POST", "/api/v1/task-runs", "task runs", "start a run of a task", NONE, Some(component::<task_run_steps::CreateBody>), Created),
    d("GET", "/api/v1/task-runs/{id}", "task runs", "one run with its tool calls", ONE, None, Json),
    d("GET", "/api/v1/task-runs/{id}/events", "task runs", "a run's events", PAGE, None, Page),
    d("GET", "/api/v1/task-runs/{id}/events/stream", "task runs", "a run's events as SSE (resumes from `Last-Event-ID`)", &[("access_token", "the token, for browsers")], None, Stream("text/event-stream")),
    d("POST", "/api/v1/task-runs/{id}/llm-calls", "task runs", "report an LLM call (priced; may cross a budget)", NONE, Some(component::<task_run_steps::LlmCallBody>), Command),
    d("POST", "/api/v1/task-runs/{id}/tool-calls", "task runs", "request a tool call (approved or pending by policy)", NONE, Some(component::<task_run_steps::ToolCallBody>), Created),
    d("POST", "/api/v1/task-runs/{id}/tool-calls/{call}/approve", "task runs", "approve a pending tool call", NONE, Some(component::<task_run_steps::ReasonBody>), Command),
    d("POST", "/api/v1/task-runs/{id}/tool-calls/{call}/deny", "task runs", "deny a pending tool call (fails the run)", NONE, Some(component::<task_run_steps::ReasonBody>), Command),
    d("POST", "/api/v1/task-runs/{id}/tool-calls/{call}/result", "task runs", "report a tool call's result", NONE, Some(component::<task_run_steps::ResultBody>), Command),
    d("POST", "/api/v1/task-runs/{id}/logs", "task runs", "append a log line", NONE, Some(component::<task_run_steps::LogBody>), Command),
    d("POST", "/api/v1/task-runs/{id}/artifacts", "task runs", "attach an artifact", NONE, Some(component::<task_run_steps::ArtifactBody>), Command),
    d("POST", "/api/v1/task-runs/{id}/complete", "task runs", "the run succeeded", NONE, Some(component::<task_run_steps::CompleteBody>), Command),
    d("POST", "/api/v1/task-runs/{id}/fail", "task runs", "the run failed", NONE, Some(component::<task_run_steps::ReasonBody>), Command),
    d("POST", "/api/v1/task-runs/{id}/cancel", "task runs", "cancel the run", NONE, Some(component::<task_run_steps::ReasonBody>), Command),
    d("POST", "/api/v1/task-runs/{id}/budget/approve", "task runs", "waive the run's budgets for the rest of it", NONE, Some(component::<task_run_steps::ReasonBody>), Command),
    d("GET", "/api/v1/pricing", "usage", "the price table", ONE, None, Json),
    d("POST", "/api/v1/pricing", "usage", "set or correct a price (a correction reprices history)", NONE, Some(component::<usage::PriceBody>), Created),
    d("GET", "/api/v1/usage/tokens", "usage", "token usage and cost, grouped", &[("groupBy", "provider, model, day, task, agent (comma-separated)",), ("from", "RFC 3339"), ("to", "RFC 3339"), MIN,], None, Json),
    d("GET", "/api/v1/ws", "live", "the WebSocket relay (see README: subscribe, since, snapshot, lagged)", &[("access_token", "the token, for browsers")], None, Stream("application/json")),
    d(
        "GET",
        "/api/v1/stream",
        "live",
        "server-sent events of topics (resumes from `Last-Event-ID`)",
        &[
            ("topics", "comma-separated topics"),
            ("access_token", "the token, for browsers"),
        ],
        None,
        Stream("text/event-stream"),
    ),
];

/// The entry of a route.
pub(super) fn find(method: &str, path: &str) -> Option<&'static Doc> {
    DOCS.iter().find(|d| d.method == method && d.path == path)
}
