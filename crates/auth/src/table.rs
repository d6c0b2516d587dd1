//! The permission table: the least role each HTTP route and each NATS command action needs.
//! It is the only place a permission is written down; the API refuses to build a route that
//! has no rule here, and `docs/permissions.md` is rendered from it.

use mc_domain::token::Role;
use std::fmt::Write;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed (orchestrators' probes only).
    Open,
    /// A principal whose role satisfies this one.
    Needs(Role),
}

/// One HTTP route: method, path as the router writes it, who may call it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// One NATS command action (`mc.cmd.<action>`).
#[derive(Debug, Clone, Copy)]
pub struct NatsRule {
    pub action: &'static str,
    pub role: Role,
}

use Access::{Needs, Open};
use Role::{Admin, Operator, Producer, Viewer};

const fn r(method: &'static str, path: &'static str, access: Access) -> HttpRule {
    HttpRule {
        method,
        path,
        access,
    }
}

/// Every HTTP route. Paths under the API carry the `/api/v1` prefix.
pub const HTTP: &[HttpRule] = &[
    r("GET", "/health/live", Open),
    r("GET", "/health/ready", Open),
    r("GET", "/health", Needs(Viewer)),
    r("GET", "/health/detailed", Needs(Viewer)),
    r("GET", "/metrics", Needs(Viewer)),
    r("GET", "/docs", Open),
    r("GET", "/", Open),
    r("GET", "/ui/app.js", Open),
    r("GET", "/ui/style.css", Open),
    r("GET", "/openmct/", Open),
    r("GET", "/openmct/mission-control.js", Open),
    r("GET", "/openmct/lib/{*path}", Open),
    r("GET", "/api/v1/openapi.json", Open),
    r("GET", "/api/v1/agents", Needs(Viewer)),
    r("POST", "/api/v1/agents", Needs(Operator)),
    r("GET", "/api/v1/agents/{id}", Needs(Viewer)),
    r("PATCH", "/api/v1/agents/{id}", Needs(Operator)),
    r("DELETE", "/api/v1/agents/{id}", Needs(Operator)),
    r("POST", "/api/v1/agents/{id}/heartbeat", Needs(Operator)),
    r("GET", "/api/v1/agents/{id}/metrics", Needs(Viewer)),
    r("GET", "/api/v1/agents/{id}/history", Needs(Viewer)),
    r("GET", "/api/v1/system/status", Needs(Viewer)),
    r("GET", "/api/v1/system/metrics", Needs(Viewer)),
    r("GET", "/api/v1/system/metrics/limits", Needs(Viewer)),
    r("PUT", "/api/v1/system/metrics/limits", Needs(Admin)),
    r("GET", "/api/v1/system/events", Needs(Viewer)),
    r("GET", "/api/v1/missions", Needs(Viewer)),
    r("POST", "/api/v1/missions", Needs(Operator)),
    r("GET", "/api/v1/missions/{id}", Needs(Viewer)),
    r("PATCH", "/api/v1/missions/{id}", Needs(Operator)),
    r("DELETE", "/api/v1/missions/{id}", Needs(Operator)),
    r("GET", "/api/v1/missions/{id}/progress", Needs(Viewer)),
    r("GET", "/api/v1/comments", Needs(Viewer)),
    r("POST", "/api/v1/comments", Needs(Operator)),
    r("GET", "/api/v1/comments/{id}", Needs(Viewer)),
    r("PATCH", "/api/v1/comments/{id}", Needs(Operator)),
    r("DELETE", "/api/v1/comments/{id}", Needs(Operator)),
    r("GET", "/api/v1/spacecraft", Needs(Viewer)),
    r("POST", "/api/v1/spacecraft", Needs(Admin)),
    r("GET", "/api/v1/spacecraft/{id}", Needs(Viewer)),
    r("GET", "/api/v1/spacecraft/{id}/config", Needs(Viewer)),
    r("PUT", "/api/v1/spacecraft/{id}/config", Needs(Admin)),
    r("GET", "/api/v1/telemetry", Needs(Viewer)),
    r("POST", "/api/v1/telemetry", Needs(Producer)),
    r("GET", "/api/v1/telemetry/latest", Needs(Viewer)),
    r("GET", "/api/v1/telemetry/rollups", Needs(Viewer)),
    r("GET", "/api/v1/telemetry/analyze", Needs(Viewer)),
    r("GET", "/api/v1/alarms", Needs(Viewer)),
    r("GET", "/api/v1/alarms/{id}", Needs(Viewer)),
    r("GET", "/api/v1/alarms/{id}/history", Needs(Viewer)),
    r("POST", "/api/v1/alarms/{id}/acknowledge", Needs(Operator)),
    r("POST", "/api/v1/alarms/{id}/clear", Needs(Operator)),
    r("POST", "/api/v1/alarms/{id}/shelve", Needs(Operator)),
    r("POST", "/api/v1/alarms/{id}/unshelve", Needs(Operator)),
    r("GET", "/api/v1/events", Needs(Viewer)),
    r("GET", "/api/v1/audit/verify", Needs(Viewer)),
    r("GET", "/api/v1/backups", Needs(Viewer)),
    r("POST", "/api/v1/backups", Needs(Admin)),
    r("GET", "/api/v1/backups/{id}", Needs(Viewer)),
    r("POST", "/api/v1/backups/{id}/verify", Needs(Admin)),
    r("POST", "/api/v1/backups/{id}/restore", Needs(Admin)),
    r("GET", "/api/v1/projections", Needs(Viewer)),
    r("POST", "/api/v1/projections/{name}/rebuild", Needs(Admin)),
    r("GET", "/api/v1/tokens", Needs(Admin)),
    r("POST", "/api/v1/tokens", Needs(Admin)),
    r("DELETE", "/api/v1/tokens/{id}", Needs(Admin)),
    r("GET", "/api/v1/tools", Needs(Viewer)),
    r("POST", "/api/v1/tools", Needs(Admin)),
    r("GET", "/api/v1/tools/{name}", Needs(Viewer)),
    r("GET", "/api/v1/tasks", Needs(Viewer)),
    r("POST", "/api/v1/tasks", Needs(Operator)),
    r("GET", "/api/v1/tasks/{id}", Needs(Viewer)),
    r("PUT", "/api/v1/tasks/{id}/budget", Needs(Operator)),
    r("PUT", "/api/v1/agents/{id}/budget", Needs(Operator)),
    r("GET", "/api/v1/task-runs", Needs(Viewer)),
    r("POST", "/api/v1/task-runs", Needs(Operator)),
    r("GET", "/api/v1/task-runs/{id}", Needs(Viewer)),
    r("GET", "/api/v1/task-runs/{id}/events", Needs(Viewer)),
    r("GET", "/api/v1/task-runs/{id}/events/stream", Needs(Viewer)),
    r("POST", "/api/v1/task-runs/{id}/llm-calls", Needs(Operator)),
    r("POST", "/api/v1/task-runs/{id}/tool-calls", Needs(Operator)),
    r(
        "POST",
        "/api/v1/task-runs/{id}/tool-calls/{call}/approve",
        Needs(Operator),
    ),
    r(
        "POST",
        "/api/v1/task-runs/{id}/tool-calls/{call}/deny",
        Needs(Operator),
    ),
    r(
        "POST",
        "/api/v1/task-runs/{id}/tool-calls/{call}/result",
        Needs(Operator),
    ),
    r("POST", "/api/v1/task-runs/{id}/logs", Needs(Operator)),
    r("POST", "/api/v1/task-runs/{id}/artifacts", Needs(Operator)),
    r("POST", "/api/v1/task-runs/{id}/complete", Needs(Operator)),
    r("POST", "/api/v1/task-runs/{id}/fail", Needs(Operator)),
    r("POST", "/api/v1/task-runs/{id}/cancel", Needs(Operator)),
    r(
        "POST",
        "/api/v1/task-runs/{id}/budget/approve",
        Needs(Operator),
    ),
    r("GET", "/api/v1/pricing", Needs(Viewer)),
    r("POST", "/api/v1/pricing", Needs(Admin)),
    r("GET", "/api/v1/usage/tokens", Needs(Viewer)),
    r("GET", "/api/v1/ws", Needs(Viewer)),
    r("GET", "/api/v1/stream", Needs(Viewer)),
];

const fn n(action: &'static str, role: Role) -> NatsRule {
    NatsRule { action, role }
}

/// Every NATS command action.
pub const NATS: &[NatsRule] = &[
    n("agent.register", Operator),
    n("agent.update", Operator),
    n("agent.change-status", Operator),
    n("agent.remove", Operator),
    n("agent.heartbeat", Operator),
    n("mission.create", Operator),
    n("mission.update", Operator),
    n("mission.change-status", Operator),
    n("mission.update-progress", Operator),
    n("mission.assign", Operator),
    n("mission.unassign", Operator),
    n("mission.delete", Operator),
    n("comment.post", Operator),
    n("comment.edit", Operator),
    n("comment.delete", Operator),
    n("alarm.acknowledge", Operator),
    n("alarm.clear", Operator),
    n("alarm.shelve", Operator),
    n("alarm.unshelve", Operator),
    n("tool.define", Admin),
    n("task.create", Operator),
    n("task-run.create", Operator),
    n("task-run.llm-call", Operator),
    n("task-run.tool-call", Operator),
    n("task-run.approve", Operator),
    n("task-run.deny", Operator),
    n("task-run.result", Operator),
    n("task-run.log", Operator),
    n("task-run.artifact", Operator),
    n("task-run.complete", Operator),
    n("task-run.fail", Operator),
    n("task-run.cancel", Operator),
    n("task-run.budget-approve", Operator),
];

/// The rule of an HTTP route (`HEAD` follows `GET`); `None` for a route with no rule.
pub fn http(method: &str, path: &str) -> Option<Access> {
    let method = if method == "HEAD" { "GET" } else { method };
    HTTP.iter()
        .find(|r| r.method == method && r.path == path)
        .map(|r| r.access)
}

/// The role a NATS command action needs; `None` for an unknown action.
pub fn nats(action: &str) -> Option<Role> {
    NATS.iter().find(|r| r.action == action).map(|r| r.role)
}

fn who(access: Access) -> String {
    match access {
        Open => "anyone (no token)".into(),
        Needs(role) => {
            let roles: Vec<&str> = Role::ALL
                .into_iter()
                .filter(|r| r.satisfies(role))
                .map(Role::as_str)
                .collect();
            format!("`{role}` ({})", roles.join(", "))
        }
    }
}

/// The table as Markdown (`docs/permissions.md`; `mission-control permissions` prints it).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Permissions\n\n\
         Generated from `crates/auth/src/table.rs` by `mission-control permissions`; a test \
         fails when this file and the table differ.\n\n\
         Roles, from least to most: `viewer` (reads), `producer` (telemetry ingest for its own \
         spacecraft only), `operator` (commands), `admin` (everything). A role includes the \
         ones below it, except `producer`, which is only for ingest; `admin` includes \
         `producer`.\n\n## HTTP\n\n| method | path | least role (roles allowed) |\n|---|---|---|\n",
    );
    for rule in HTTP {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            rule.method,
            rule.path,
            who(rule.access)
        );
    }
    out.push_str(
        "\n## NATS commands (`mc.cmd.<action>`, token in the `Authorization` header)\n\n\
         | action | least role (roles allowed) |\n|---|---|\n",
    );
    for rule in NATS {
        let _ = writeln!(out, "| `{}` | {} |", rule.action, who(Needs(rule.role)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_unique() {
        for (i, a) in HTTP.iter().enumerate() {
            assert!(
                !HTTP[i + 1..]
                    .iter()
                    .any(|b| a.method == b.method && a.path == b.path),
                "{} {} twice",
                a.method,
                a.path
            );
        }
        for (i, a) in NATS.iter().enumerate() {
            assert!(
                !NATS[i + 1..].iter().any(|b| a.action == b.action),
                "{}",
                a.action
            );
        }
    }

    #[test]
    fn only_the_orchestrator_probes_and_the_static_pages_are_open() {
        let open: Vec<&str> = HTTP
            .iter()
            .filter(|r| r.access == Open)
            .map(|r| r.path)
            .collect();
        // The pages and the API description carry no data: what they show needs a token.
        assert_eq!(
            open,
            [
                "/health/live",
                "/health/ready",
                "/docs",
                "/",
                "/ui/app.js",
                "/ui/style.css",
                "/openmct/",
                "/openmct/mission-control.js",
                "/openmct/lib/{*path}",
                "/api/v1/openapi.json"
            ]
        );
        assert_eq!(http("HEAD", "/api/v1/agents"), Some(Needs(Viewer)));
        assert_eq!(http("PUT", "/api/v1/agents"), None);
        assert_eq!(nats("mission.create"), Some(Operator));
        assert_eq!(nats("mission.explode"), None);
    }
}
