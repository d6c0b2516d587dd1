//! Commands over NATS request-reply on `mc.cmd.<aggregate>.<action>`: JSON in, JSON out,
//! through the same parsing, validation and command services as HTTP.
//!
//! Request: the action's fields, plus optional `id` (the aggregate), `expectedVersion`
//! (like `If-Match`) and `commandId`. Reply: `{"ok": true, "id", "version", "position"}` or
//! `{"ok": false, "error": <the problem document HTTP would answer>}`. The header
//! `Authorization: Bearer <token>` names the principal, checked against the same permission
//! table as HTTP; the principal is the actor of the events.

use crate::extract::{parse_value, MAX_BODY_BYTES};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::{agents, alarms, comments, missions};
use async_nats::Message;
use futures::FutureExt;
use futures::StreamExt;
use mc_commands::CommandContext;
use mc_domain::ids::{AgentId, CommentId, MissionId};
use mc_domain::values::{json_nesting_within, JSON_MAX_DEPTH};
use mc_domain::Check;
use serde_json::{json, Map, Value};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub const SUBJECT: &str = "mc.cmd.>";
pub const QUEUE: &str = "mc-commands";
/// Commands handled at once by one process.
const CONCURRENCY: usize = 256;

/// Every action, for the `unknown-command` error.
const ACTIONS: &[&str] = &[
    "alarm.acknowledge",
    "alarm.clear",
    "alarm.shelve",
    "alarm.unshelve",
    "agent.register",
    "agent.update",
    "agent.change-status",
    "agent.remove",
    "agent.heartbeat",
    "mission.create",
    "mission.update",
    "mission.change-status",
    "mission.update-progress",
    "mission.assign",
    "mission.unassign",
    "mission.delete",
    "comment.post",
    "comment.edit",
    "comment.delete",
    "tool.define",
    "task.create",
    "task-run.create",
    "task-run.llm-call",
    "task-run.tool-call",
    "task-run.approve",
    "task-run.deny",
    "task-run.result",
    "task-run.log",
    "task-run.artifact",
    "task-run.complete",
    "task-run.fail",
    "task-run.cancel",
    "task-run.budget-approve",
];

/// Subscribe to the command subjects (before `serve` reports ready, so no request meets
/// "no responders").
pub async fn subscribe(
    state: &AppState,
) -> Result<async_nats::Subscriber, async_nats::SubscribeError> {
    state.nats.queue_subscribe(SUBJECT, QUEUE.to_owned()).await
}

/// Serve commands until cancelled. Each message is handled in its own task; a bad one gets an
/// error reply and never stops the loop.
pub async fn serve(
    state: AppState,
    mut subscription: async_nats::Subscriber,
    cancel: CancellationToken,
) {
    tracing::info!(subject = SUBJECT, "nats command service started");
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let message = tokio::select! {
            () = cancel.cancelled() => break,
            m = subscription.next() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let state = state.clone();
        tokio::spawn(async move {
            handle(&state, message).await;
            drop(permit);
        });
    }
    // Let in-flight commands finish.
    let _ = permits.acquire_many(CONCURRENCY as u32).await;
    tracing::info!("nats command service stopped");
}

async fn handle(state: &AppState, message: Message) {
    let action = message
        .subject
        .as_str()
        .strip_prefix("mc.cmd.")
        .unwrap_or_default()
        .to_owned();
    // Nobody could learn the outcome of a command without a reply subject, and a
    // fire-and-forget write from an anonymous client is a risk: it is dead-lettered, never
    // executed (README, "Commands over NATS").
    let Some(inbox) = message.reply else {
        tracing::warn!(
            action,
            "nats command without reply subject dead-lettered, not executed"
        );
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Mc-Dlq-Reason", NO_REPLY_REASON);
        headers.insert("Mc-Dlq-Origin", message.subject.as_str());
        let _ = state
            .nats
            .publish_with_headers("mc.dlq.cmd", headers, message.payload)
            .await;
        return;
    };
    // A panic while handling one command answers it with a 500 problem; the service goes on.
    let authorization = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Authorization"))
        .map(|v| v.as_str().to_owned());
    let handled = AssertUnwindSafe(dispatch(
        state,
        &action,
        authorization.as_deref(),
        &message.payload,
    ))
    .catch_unwind()
    .await
    .unwrap_or_else(|panic| {
        let what = crate::edges::panic_message(panic.as_ref());
        tracing::error!(action, panic = %what, "nats command handler panicked");
        crate::edges::count_panic("nats");
        Err(ApiError::Internal(format!(
            "the command could not be handled: {what}"
        )))
    });
    let reply = match handled {
        Ok(ok) => ok,
        Err(e) => json!({"ok": false, "error": e.body()}),
    };
    let bytes = serde_json::to_vec(&reply).unwrap_or_default();
    if let Err(e) = state.nats.publish(inbox, bytes.into()).await {
        tracing::warn!(action, error = %e, "cannot reply to nats command");
    }
}

/// `Mc-Dlq-Reason` of a command that came without a reply subject.
pub const NO_REPLY_REASON: &str = "command without a reply subject: not executed";

/// Decode a command payload into a JSON object: at most [`MAX_BODY_BYTES`] and
/// [`JSON_MAX_DEPTH`] levels of nesting, checked before the (recursive) decoder runs.
pub fn decode_payload(payload: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if payload.len() > MAX_BODY_BYTES {
        return Err(ApiError::field(
            "body",
            format!("must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    if !json_nesting_within(payload, JSON_MAX_DEPTH) {
        return Err(ApiError::MalformedJson(format!(
            "nested more than {JSON_MAX_DEPTH} levels deep"
        )));
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::field("body", "must be a JSON object")),
    }
}

/// Parse a command as [`dispatch`] would, up to the domain command, without executing it:
/// the entry of the command decoder's fuzz target (`fuzz/`).
pub fn parse(action: &str, payload: &[u8]) -> Result<(), ApiError> {
    if !ACTIONS.contains(&action) {
        return Err(ApiError::UnknownCommand {
            action: action.to_owned(),
            known: ACTIONS,
        });
    }
    let Envelope { rest, .. } = envelope(payload, String::new())?;
    match action {
        a if a.starts_with("task-run.") => crate::task_run_steps::parse_nats(a, rest)?,
        "tool.define" => drop(crate::tasks::parse_tool(rest)?),
        "task.create" => drop(crate::tasks::parse_task(rest)?),
        "alarm.shelve" => drop(alarms::shelve_command(parse_value(rest)?, 0)?),
        "alarm.acknowledge" | "alarm.clear" | "alarm.unshelve" => {
            let action = action.strip_prefix("alarm.").unwrap_or_default();
            drop(alarms::action_command(action, parse_value(rest)?, 0)?);
        }
        "agent.register" => drop(agents::parse_register(parse_value(rest)?)?),
        "agent.update" | "agent.change-status" => drop(agents::parse_update(parse_value(rest)?)?),
        "mission.create" => drop(missions::parse_create(parse_value(rest)?)?),
        "comment.post" => drop(comments::parse_create(parse_value(rest)?)?),
        "comment.edit" => drop(comments::parse_edit(parse_value(rest)?)?),
        "agent.remove" | "agent.heartbeat" | "mission.delete" | "comment.delete" => {
            only(&rest, &[])?;
        }
        _ => drop(missions::parse_change(parse_value(rest)?)?),
    }
    Ok(())
}

/// Every action, for the fuzz target.
pub const fn actions() -> &'static [&'static str] {
    ACTIONS
}

/// The envelope fields every action accepts.
struct Envelope {
    id: Option<String>,
    check: Check,
    ctx: CommandContext,
    rest: Value,
    /// The client gave a `commandId`: a retry may find its earlier outcome.
    replayable: bool,
}

fn envelope(payload: &[u8], actor: String) -> Result<Envelope, ApiError> {
    let mut map = decode_payload(payload)?;
    let id = match map.remove("id") {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => None,
        Some(_) => return Err(ApiError::field("id", "must be a string")),
    };
    let check =
        match map.remove("expectedVersion") {
            Some(Value::Number(n)) => Check::MustBe(n.as_u64().ok_or_else(|| {
                ApiError::field("expectedVersion", "must be a non-negative integer")
            })?),
            None | Some(Value::Null) => Check::Any,
            Some(_) => {
                return Err(ApiError::field(
                    "expectedVersion",
                    "must be a non-negative integer",
                ))
            }
        };
    let command_id = match map.remove("commandId") {
        Some(Value::String(s)) => Some(
            uuid::Uuid::parse_str(&s)
                .map_err(|_| ApiError::field("commandId", "must be a uuid"))?,
        ),
        None | Some(Value::Null) => None,
        Some(_) => return Err(ApiError::field("commandId", "must be a uuid")),
    };
    if map.contains_key("actor") {
        return Err(ApiError::field(
            "actor",
            "is not accepted: the actor is the principal of the Authorization header",
        ));
    }
    Ok(Envelope {
        id,
        check,
        replayable: command_id.is_some(),
        ctx: CommandContext::new(actor, command_id),
        rest: Value::Object(map),
    })
}

/// Only `allowed` keys may be present (the rest of the action's DTO stays absent).
fn only(rest: &Value, allowed: &[&str]) -> Result<(), ApiError> {
    let keys = rest.as_object().map(Map::keys).into_iter().flatten();
    let unknown: Vec<_> = keys
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| {
            mc_domain::FieldError::new(
                k.clone(),
                format!(
                    "unknown field for this command, expected one of {}",
                    allowed.join(", ")
                ),
            )
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(unknown))
    }
}

fn need_id(id: Option<String>) -> Result<String, ApiError> {
    id.ok_or_else(|| ApiError::field("id", "is required"))
}

fn done(id: impl ToString, version: u64, position: Option<u64>) -> Value {
    json!({"ok": true, "id": id.to_string(), "version": version, "position": position})
}

async fn dispatch(
    state: &AppState,
    action: &str,
    authorization: Option<&str>,
    payload: &[u8],
) -> Result<Value, ApiError> {
    // The same tokens and permission table as HTTP; the rule also names the known actions.
    let Some(caller) = state.auth.nats(action, authorization) else {
        return Err(ApiError::UnknownCommand {
            action: action.to_owned(),
            known: ACTIONS,
        });
    };
    let caller = caller?;
    let Envelope {
        id,
        check,
        ctx,
        rest,
        replayable,
    } = envelope(payload, caller.actor())?;
    if replayable {
        if let Some(prev) = crate::idempotency::previous(state, ctx.command_id).await? {
            let mut body = prev.body();
            body["ok"] = json!(true);
            return Ok(body);
        }
    }
    match action {
        a if a.starts_with("task-run.") => {
            let by = caller.actor();
            crate::task_run_steps::nats(state, action, id, check, &ctx, by, rest).await
        }
        "tool.define" => {
            let (name, def) = crate::tasks::parse_tool(rest)?;
            let r = state.tasks.define_tool(&ctx, &name, def).await?;
            Ok(done(name, r.version, r.position))
        }
        "task.create" => {
            let def = crate::tasks::parse_task(rest)?;
            let id = mc_domain::ids::TaskId::from_uuid(uuid::Uuid::now_v7());
            let r = state.tasks.create_task(&ctx, id, def).await?;
            Ok(done(id, r.version, r.position))
        }
        "alarm.acknowledge" | "alarm.clear" | "alarm.unshelve" | "alarm.shelve" => {
            let id = alarms::parse_id(&need_id(id)?)?;
            let now_ms = chrono::Utc::now().timestamp_millis();
            let command = match action.strip_prefix("alarm.").unwrap_or_default() {
                "shelve" => alarms::shelve_command(parse_value(rest)?, now_ms)?,
                other => alarms::action_command(other, parse_value(rest)?, now_ms)?,
            };
            let r = state.alarms.execute(&ctx, id, check, command).await?;
            Ok(done(id, r.version, r.position))
        }
        "agent.register" => {
            let cmd = agents::parse_register(parse_value(rest)?)?;
            let id = cmd.id;
            let r = state.agents.register(&ctx, cmd).await?;
            Ok(done(id, r.version, r.position))
        }
        "agent.update" | "agent.change-status" => {
            if action == "agent.change-status" {
                only(&rest, &["status", "reason"])?;
            }
            let id =
                AgentId::parse(&need_id(id)?, "id").map_err(|e| ApiError::Validation(vec![e]))?;
            let (update, reason) = agents::parse_update(parse_value(rest)?)?;
            let r = match (action, update.status) {
                ("agent.change-status", Some(status)) => {
                    state
                        .agents
                        .change_status(&ctx, id, check, status, reason)
                        .await?
                }
                ("agent.change-status", None) => {
                    return Err(ApiError::field("status", "is required"))
                }
                _ => state.agents.update(&ctx, id, check, update).await?,
            };
            Ok(done(id, r.version, r.position))
        }
        "agent.heartbeat" => {
            only(&rest, &[])?;
            let id =
                AgentId::parse(&need_id(id)?, "id").map_err(|e| ApiError::Validation(vec![e]))?;
            let mut body = crate::fleet::beat(state, &ctx.actor, id).await?;
            body["ok"] = json!(true);
            Ok(body)
        }
        "agent.remove" => {
            only(&rest, &[])?;
            let id =
                AgentId::parse(&need_id(id)?, "id").map_err(|e| ApiError::Validation(vec![e]))?;
            let r = state.agents.remove(&ctx, id, check).await?;
            Ok(done(id, r.version, r.position))
        }
        "mission.create" => {
            let m = missions::parse_create(parse_value(rest)?)?;
            let id = m.id;
            let r = state.missions.create(&ctx, m).await?;
            Ok(done(id, r.version, r.position))
        }
        "mission.update"
        | "mission.change-status"
        | "mission.update-progress"
        | "mission.assign"
        | "mission.unassign" => {
            match action {
                "mission.change-status" => only(&rest, &["status", "reason"])?,
                "mission.update-progress" => only(&rest, &["progress"])?,
                "mission.assign" => only(&rest, &["agentId"])?,
                "mission.unassign" => only(&rest, &[])?,
                _ => {}
            }
            let required = match action {
                "mission.change-status" => Some("status"),
                "mission.update-progress" => Some("progress"),
                "mission.assign" => Some("agentId"),
                _ => None,
            };
            if let Some(field) = required {
                if rest.get(field).is_none_or(Value::is_null) {
                    return Err(ApiError::field(field, "is required"));
                }
            }
            let id =
                MissionId::parse(&need_id(id)?, "id").map_err(|e| ApiError::Validation(vec![e]))?;
            let mut body: missions::ChangeBody = parse_value(rest)?;
            if action == "mission.unassign" {
                body.agent_id = Some(None);
            }
            let r = state
                .missions
                .change(&ctx, id, check, missions::parse_change(body)?)
                .await?;
            Ok(done(id, r.version, r.position))
        }
        "mission.delete" => {
            only(&rest, &[])?;
            let id =
                MissionId::parse(&need_id(id)?, "id").map_err(|e| ApiError::Validation(vec![e]))?;
            let r = state.missions.delete(&ctx, id, check).await?;
            Ok(done(id, r.version, r.position))
        }
        "comment.post" => {
            let c = comments::parse_create(parse_value(rest)?)?;
            let id = c.id;
            let r = state.comments.post(&ctx, c).await?;
            Ok(done(id, r.version, r.position))
        }
        "comment.edit" => {
            let id =
                CommentId::parse(&need_id(id)?, "id").map_err(|e| ApiError::Validation(vec![e]))?;
            let e = comments::parse_edit(parse_value(rest)?)?;
            let r = state
                .comments
                .edit(&ctx, id, check, e.content, e.comment_type, e.metadata)
                .await?;
            Ok(done(id, r.version, r.position))
        }
        _ => {
            only(&rest, &[])?;
            let id =
                CommentId::parse(&need_id(id)?, "id").map_err(|e| ApiError::Validation(vec![e]))?;
            let r = state.comments.delete(&ctx, id, check).await?;
            Ok(done(id, r.version, r.position))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_action_has_exactly_one_permission_rule() {
        let mut actions: Vec<&str> = super::ACTIONS.to_vec();
        let mut rules: Vec<&str> = mc_auth::table::NATS.iter().map(|r| r.action).collect();
        actions.sort_unstable();
        rules.sort_unstable();
        assert_eq!(actions, rules);
    }
}
