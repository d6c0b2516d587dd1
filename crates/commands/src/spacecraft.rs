//! Spacecraft commands: register, configure limits.

use crate::error::CommandError;
use crate::handler::{CommandContext, Executed, Handler};
use mc_domain::spacecraft::{LimitsConfig, Spacecraft, SpacecraftCommand, SpacecraftId};
use mc_domain::values::{Metadata, Name};
use mc_domain::{Check, DomainError};

#[derive(Clone)]
pub struct SpacecraftService {
    handler: Handler,
}

impl SpacecraftService {
    pub fn new(handler: Handler) -> Self {
        Self { handler }
    }

    pub async fn register(
        &self,
        ctx: &CommandContext,
        id: SpacecraftId,
        name: Name,
        metadata: Metadata,
    ) -> Result<Executed<Spacecraft>, CommandError> {
        let key = id.as_str().to_owned();
        let cmd = SpacecraftCommand::Register { id, name, metadata };
        self.handler
            .execute::<Spacecraft>(ctx, &key, Check::MustBe(0), &cmd)
            .await
            .map_err(|e| match e {
                CommandError::Precondition(_) => DomainError::AlreadyExists {
                    aggregate: "spacecraft",
                }
                .into(),
                e => e,
            })
    }

    /// Whether the event log holds a registration of `id` (authoritative; the read model may
    /// lag behind it).
    pub async fn exists(&self, id: &str) -> Result<bool, CommandError> {
        let (root, _) = self.handler.load::<Spacecraft>(id, true).await?;
        Ok(root.state().data().is_some())
    }

    /// Replace the limits, in force from `effective_at` (epoch ms).
    pub async fn configure(
        &self,
        ctx: &CommandContext,
        id: &SpacecraftId,
        check: Check,
        limits: LimitsConfig,
        effective_at: i64,
    ) -> Result<Executed<Spacecraft>, CommandError> {
        let cmd = SpacecraftCommand::ConfigureLimits {
            limits,
            effective_at,
        };
        self.handler
            .execute::<Spacecraft>(ctx, id.as_str(), check, &cmd)
            .await
    }
}
