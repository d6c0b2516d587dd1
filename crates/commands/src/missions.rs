//! Mission commands: fetch the referenced agent, then decide and append.

use crate::error::CommandError;
use crate::handler::{CommandContext, Executed, Handler};
use crate::refs::agent_ref;
use mc_domain::ids::{AgentId, MissionId};
use mc_domain::mission::{CreateMission, Mission, MissionCommand, MissionStatus, UpdateMission};
use mc_domain::values::{Metadata, MissionDescription, Progress, Title};
use mc_domain::{mission::Priority, Check};

/// A new mission as the client asks for it (the agent is an id, not yet a reference).
#[derive(Debug, Clone)]
pub struct NewMission {
    pub id: MissionId,
    pub title: Title,
    pub description: MissionDescription,
    pub priority: Priority,
    pub metadata: Metadata,
    pub agent_id: Option<AgentId>,
}

/// Everything a PATCH may change, applied as one commit in this order: fields, assignment,
/// progress, status.
#[derive(Debug, Clone, Default)]
pub struct MissionChanges {
    pub update: UpdateMission,
    /// `Some(None)` unassigns.
    pub agent: Option<Option<AgentId>>,
    pub progress: Option<Progress>,
    pub status: Option<(MissionStatus, Option<String>)>,
}

#[derive(Clone)]
pub struct MissionService {
    handler: Handler,
}

impl MissionService {
    pub fn new(handler: Handler) -> Self {
        Self { handler }
    }

    pub async fn create(
        &self,
        ctx: &CommandContext,
        m: NewMission,
    ) -> Result<Executed<Mission>, CommandError> {
        let agent = match m.agent_id {
            Some(id) => Some(agent_ref(&self.handler, id).await?),
            None => None,
        };
        let cmd = MissionCommand::Create(CreateMission {
            id: m.id,
            title: m.title,
            description: m.description,
            priority: m.priority,
            metadata: m.metadata,
            agent,
        });
        self.handler
            .execute::<Mission>(ctx, &m.id.to_string(), Check::MustBe(0), &cmd)
            .await
            .map_err(|e| match e {
                CommandError::Precondition(_) => mc_domain::DomainError::AlreadyExists {
                    aggregate: "mission",
                }
                .into(),
                e => e,
            })
    }

    pub async fn change(
        &self,
        ctx: &CommandContext,
        id: MissionId,
        check: Check,
        changes: MissionChanges,
    ) -> Result<Executed<Mission>, CommandError> {
        let mut commands = Vec::with_capacity(4);
        let u = &changes.update;
        if u.title.is_some()
            || u.description.is_some()
            || u.priority.is_some()
            || u.metadata.is_some()
        {
            commands.push(MissionCommand::Update(changes.update));
        }
        match changes.agent {
            Some(Some(agent_id)) => commands.push(MissionCommand::Assign {
                agent: agent_ref(&self.handler, agent_id).await?,
            }),
            Some(None) => commands.push(MissionCommand::Unassign),
            None => {}
        }
        if let Some(progress) = changes.progress {
            commands.push(MissionCommand::UpdateProgress { progress });
        }
        if let Some((to, reason)) = changes.status {
            commands.push(MissionCommand::ChangeStatus { to, reason });
        }
        if commands.is_empty() {
            // Nothing to change: still answer 404 for an unknown mission, and the version.
            let (root, _) = self.handler.load::<Mission>(&id.to_string(), false).await?;
            root.check(check).map_err(CommandError::Precondition)?;
            if root.state().data().is_none() {
                return Err(mc_domain::DomainError::NotFound {
                    aggregate: "mission",
                }
                .into());
            }
            return Ok(Executed {
                state: root.state().clone(),
                version: root.version(),
                position: None,
            });
        }
        self.handler
            .execute_all::<Mission>(ctx, &id.to_string(), check, &commands)
            .await
    }

    pub async fn delete(
        &self,
        ctx: &CommandContext,
        id: MissionId,
        check: Check,
    ) -> Result<Executed<Mission>, CommandError> {
        self.handler
            .execute::<Mission>(ctx, &id.to_string(), check, &MissionCommand::Delete)
            .await
    }
}
