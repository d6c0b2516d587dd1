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
    /// Returns the number of names reserved.
    pub async fn restore_names(&self) -> Result<u64, CommandError> {
        use futures::TryStreamExt;
        let js = self.handler.log().jetstream();
        let stream = js
            .get_stream(mc_eventlog::streams::EVENTS)
            .await
            .map_err(|e| CommandError::Unavailable(format!("event stream: {e}")))?;
        let prefix = format!("mc.events.{SCOPE}.");
        let subjects: Vec<(String, usize)> = stream
            .info_with_subjects(format!("{prefix}>"))
            .await
            .map_err(|e| CommandError::Unavailable(format!("event stream subjects: {e}")))?
            .try_collect()
            .await
            .map_err(|e| CommandError::Unavailable(format!("event stream subjects: {e}")))?;
        let mut reserved = 0;
        for (subject, _) in subjects {
            let Some(id) = subject.strip_prefix(&prefix) else {
                continue;
            };
            let (root, _) = self.handler.load::<Agent>(id, true).await?;
            if let Agent::Active(a) = root.state() {
                self.names.claim(SCOPE, &a.name, id).await?;
                reserved += 1;
            }
        }
        Ok(reserved)
    }
}
