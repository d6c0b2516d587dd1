//! Token commands: issue and revoke API tokens (the secret is made by `mc-auth`; only its
//! hash reaches the log).

use crate::error::CommandError;
use crate::handler::{CommandContext, Executed, Handler};
use mc_domain::ids::TokenId;
use mc_domain::token::{IssueToken, Token, TokenCommand};
use mc_domain::Check;

#[derive(Clone)]
pub struct TokenService {
    handler: Handler,
}

impl TokenService {
    pub fn new(handler: Handler) -> Self {
        Self { handler }
    }

    pub async fn issue(
        &self,
        ctx: &CommandContext,
        issue: IssueToken,
    ) -> Result<Executed<Token>, CommandError> {
        let id = issue.id.to_string();
        self.handler
            .execute::<Token>(ctx, &id, Check::MustBe(0), &TokenCommand::Issue(issue))
            .await
            .map_err(|e| match e {
                CommandError::Precondition(_) => {
                    mc_domain::DomainError::AlreadyExists { aggregate: "token" }.into()
                }
                e => e,
            })
    }

    pub async fn revoke(
        &self,
        ctx: &CommandContext,
        id: TokenId,
        reason: Option<String>,
    ) -> Result<Executed<Token>, CommandError> {
        self.handler
            .execute::<Token>(
                ctx,
                &id.to_string(),
                Check::Any,
                &TokenCommand::Revoke { reason },
            )
            .await
    }
}
