//! Comment commands: fetch the referenced agent and mission, then decide and append.

use crate::error::CommandError;
use crate::handler::{CommandContext, Executed, Handler};
use crate::refs::{agent_ref, mission_ref};
use mc_domain::comment::{Comment, CommentCommand, CommentType, PostComment};
use mc_domain::ids::{AgentId, CommentId, MissionId};
use mc_domain::values::{Content, Metadata};
use mc_domain::Check;

#[derive(Debug, Clone)]
pub struct NewComment {
    pub id: CommentId,
    pub content: Content,
    pub comment_type: CommentType,
    pub agent_id: Option<AgentId>,
    pub mission_id: Option<MissionId>,
    pub metadata: Metadata,
}

#[derive(Clone)]
pub struct CommentService {
    handler: Handler,
}

impl CommentService {
    pub fn new(handler: Handler) -> Self {
        Self { handler }
    }

    pub async fn post(
        &self,
        ctx: &CommandContext,
        c: NewComment,
    ) -> Result<Executed<Comment>, CommandError> {
        let agent = match c.agent_id {
            Some(id) => Some(agent_ref(&self.handler, id).await?),
            None => None,
        };
        let mission = match c.mission_id {
            Some(id) => Some(mission_ref(&self.handler, id).await?),
            None => None,
        };
        let cmd = CommentCommand::Post(PostComment {
            id: c.id,
            content: c.content,
            comment_type: c.comment_type,
            agent,
            mission,
            metadata: c.metadata,
        });
        self.handler
            .execute::<Comment>(ctx, &c.id.to_string(), Check::MustBe(0), &cmd)
            .await
            .map_err(|e| match e {
                CommandError::Precondition(_) => mc_domain::DomainError::AlreadyExists {
                    aggregate: "comment",
                }
                .into(),
                e => e,
            })
    }

    pub async fn edit(
        &self,
        ctx: &CommandContext,
        id: CommentId,
        check: Check,
        content: Option<Content>,
        comment_type: Option<CommentType>,
        metadata: Option<Metadata>,
    ) -> Result<Executed<Comment>, CommandError> {
        let cmd = CommentCommand::Edit {
            content,
            comment_type,
            metadata,
        };
        self.handler
            .execute::<Comment>(ctx, &id.to_string(), check, &cmd)
            .await
    }

    pub async fn delete(
        &self,
        ctx: &CommandContext,
        id: CommentId,
        check: Check,
    ) -> Result<Executed<Comment>, CommandError> {
        self.handler
            .execute::<Comment>(ctx, &id.to_string(), check, &CommentCommand::Delete)
            .await
    }
}
