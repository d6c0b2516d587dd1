//! Agent commands: the handler plus the unique-name reservation around it.

use crate::error::CommandError;
use crate::handler::{CommandContext, Executed, Handler};
use crate::names::{NameRegistry, OwnerState};
use mc_domain::agent::{Agent, AgentCommand, RegisterAgent, UpdateAgent};
use mc_domain::ids::AgentId;
use mc_domain::Check;

const SCOPE: &str = "agent";

#[derive(Clone)]
pub struct AgentService {
    handler: Handler,
    names: NameRegistry,
}

impl AgentService {
    pub fn new(handler: Handler, names: NameRegistry) -> Self {
        Self { handler, names }
    }

    pub fn handler(&self) -> &Handler {
        &self.handler
    }

    /// Does agent `owner` hold `name` in the log?
    async fn owner_state(&self, owner: String, name: &str) -> Result<OwnerState, CommandError> {
        let (root, _) = self.handler.load::<Agent>(&owner, true).await?;
        Ok(match root.state() {
            Agent::Unregistered => OwnerState::Missing,
            Agent::Removed(_) => OwnerState::Released,
            Agent::Active(a) if a.name.to_lowercase() == name.to_lowercase() => OwnerState::Holds,
            Agent::Active(_) => OwnerState::Released,
        })
    }

    async fn reserve(&self, name: &str, owner: AgentId) -> Result<(), CommandError> {
        self.names
            .reserve(SCOPE, name, &owner.to_string(), |o| {
                self.owner_state(o, name)
            })
            .await
    }

    pub async fn register(
        &self,
        ctx: &CommandContext,
        cmd: RegisterAgent,
    ) -> Result<Executed<Agent>, CommandError> {
        let id = cmd.id;
        let name = cmd.name.as_str().to_owned();
        self.reserve(&name, id).await?;
        let result = self
            .handler
            .execute::<Agent>(
                ctx,
                &id.to_string(),
                Check::MustBe(0),
                &AgentCommand::Register(cmd),
            )
            .await;
        if let Err(e) = &result {
            if e.is_definite() {
                self.names.release(SCOPE, &name, &id.to_string()).await;
            }
        }
        result.map_err(|e| match e {
            // Register expects a new aggregate: an existing id is a conflict, not a stale ETag.
            CommandError::Precondition(_) => {
                mc_domain::DomainError::AlreadyExists { aggregate: "agent" }.into()
            }
            e => e,
        })
    }

    /// Update fields and/or status; a rename moves the name reservation.
    pub async fn update(
        &self,
        ctx: &CommandContext,
        id: AgentId,
        check: Check,
        cmd: UpdateAgent,
    ) -> Result<Executed<Agent>, CommandError> {
        let key = id.to_string();
        let (root, _) = self.handler.load::<Agent>(&key, false).await?;
        let old_name = root.state().data().map(|a| a.name.clone());
        let new_name = cmd
            .name
            .as_ref()
            .map(|n| n.as_str().to_owned())
            .filter(|n| {
                old_name
                    .as_ref()
                    .is_some_and(|o| o.to_lowercase() != n.to_lowercase())
            });
        if let Some(n) = &new_name {
            self.reserve(n, id).await?;
        }
        let result = self
            .handler
            .execute::<Agent>(ctx, &key, check, &AgentCommand::Update(cmd))
            .await;
        match (&result, &new_name) {
            (Ok(done), Some(_)) => {
                // Release the old name unless the agent still carries it (the rename lost a race).
                if let (Some(old), Some(now)) = (&old_name, done.state.data()) {
                    if old.to_lowercase() != now.name.to_lowercase() {
                        self.names.release(SCOPE, old, &key).await;
                    }
                }
            }
            (Err(e), Some(n)) if e.is_definite() => self.names.release(SCOPE, n, &key).await,
            _ => {}
        }
        result
    }

    pub async fn change_status(
        &self,
        ctx: &CommandContext,
        id: AgentId,
        check: Check,
        status: mc_domain::agent::AgentStatus,
        reason: Option<String>,
    ) -> Result<Executed<Agent>, CommandError> {
        self.handler
            .execute::<Agent>(
                ctx,
                &id.to_string(),
                check,
                &AgentCommand::ChangeStatus { status, reason },
            )
            .await
    }

    pub async fn remove(
        &self,
        ctx: &CommandContext,
        id: AgentId,
        check: Check,
    ) -> Result<Executed<Agent>, CommandError> {
        let key = id.to_string();
        let (root, _) = self.handler.load::<Agent>(&key, false).await?;
        let name = root.state().data().map(|a| a.name.clone());
        let result = self
            .handler
            .execute::<Agent>(ctx, &key, check, &AgentCommand::Remove)
            .await;
        if let (Ok(_), Some(name)) = (&result, name) {
            self.names.release(SCOPE, &name, &key).await;
        }
        result
    }

    /// Re-create the name reservation of every agent that holds a name in the log. The log is
    /// the truth and `mc_names` is derived from it: a restored deployment (whose bucket starts
    /// empty) runs this before it serves, or a rename there could take a restored agent's name.
    /// One pass over the agents' commits, then the reservations, 256 at a time. Returns the
    /// number of names reserved.
    pub async fn restore_names(&self) -> Result<u64, CommandError> {
        use async_nats::jetstream::consumer::pull::OrderedConfig;
        use futures::{StreamExt, TryStreamExt};
        use mc_domain::agent::AgentEvent;
        let unavailable =
            |e: &dyn std::fmt::Display| CommandError::Unavailable(format!("event stream: {e}"));
        let js = self.handler.log().jetstream();
        let stream = js
            .get_stream(mc_eventlog::streams::EVENTS)
            .await
            .map_err(|e| unavailable(&e))?;
        let filter = format!("mc.events.{SCOPE}.>");
        let total: usize = stream
            .info_with_subjects(&filter)
            .await
            .map_err(|e| unavailable(&e))?
            .map_ok(|(_, count)| count)
            .try_fold(0, |sum, n| async move { Ok(sum + n) })
            .await
            .map_err(|e| unavailable(&e))?;
        // Agent id → its name while it holds one.
        let mut names: std::collections::HashMap<String, String> = Default::default();
        if total > 0 {
            let consumer = stream
                .create_consumer(OrderedConfig {
                    filter_subject: filter,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable(&e))?;
            let mut messages = consumer
                .messages()
                .await
                .map_err(|e| unavailable(&e))?
                .take(total);
            while let Some(message) = messages.next().await {
                let message = message.map_err(|e| unavailable(&e))?;
                // A message that is not a readable agent commit is skipped, as the projections
                // skip it (it changed no agent).
                let decoded = mc_eventlog::Commit::decode(&message.payload)
                    .map_err(|e| e.to_string())
                    .and_then(|c| {
                        let events: Vec<AgentEvent> =
                            c.domain_events().map_err(|e| e.to_string())?;
                        Ok((c, events))
                    });
                let (commit, events) = match decoded {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(subject = %message.subject, error = %e, "skipping an unreadable agent commit");
                        continue;
                    }
                };
                for event in events {
                    match event {
                        AgentEvent::Registered { name, .. }
                        | AgentEvent::Updated {
                            name: Some(name), ..
                        } => {
                            names.insert(commit.aggregate_id.clone(), name);
                        }
                        AgentEvent::Removed { .. } => {
                            names.remove(&commit.aggregate_id);
                        }
                        _ => {}
                    }
                }
            }
        }
        let reserved = names.len() as u64;
        futures::stream::iter(names)
            .map(|(id, name)| async move { self.names.claim(SCOPE, &name, &id).await })
            .buffer_unordered(256)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(reserved)
    }
}
