//! Loading the data a decision needs about other aggregates (DESIGN decision 4).

use crate::error::CommandError;
use crate::handler::Handler;
use mc_domain::agent::Agent;
use mc_domain::comment::MissionRef;
use mc_domain::ids::{AgentId, MissionId};
use mc_domain::mission::{AgentAvailability, AgentRef, Mission};

/// The referenced agent as the log knows it now.
pub async fn agent_ref(handler: &Handler, id: AgentId) -> Result<AgentRef, CommandError> {
    let (root, _) = handler.load::<Agent>(&id.to_string(), false).await?;
    let state = match root.state() {
        Agent::Active(a) => AgentAvailability::Available(a.status),
        Agent::Removed(_) => AgentAvailability::Removed,
        Agent::Unregistered => AgentAvailability::Missing,
    };
    Ok(AgentRef { id, state })
}

/// Whether the referenced mission exists (created and not deleted).
pub async fn mission_ref(handler: &Handler, id: MissionId) -> Result<MissionRef, CommandError> {
    let (root, _) = handler.load::<Mission>(&id.to_string(), false).await?;
    Ok(MissionRef {
        id,
        exists: root.state().data().is_some(),
    })
}
