//! The Token aggregate: an API token issued to a principal with one [`Role`], revocable.
//!
//! Only a hash of the secret is ever decided on or stored; the secret itself is made and
//! shown once by the caller (`mc-auth`). Time comes in the command (`now_ms`), never from a
//! clock here.

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldError};
use crate::ids::TokenId;
use crate::spacecraft::SpacecraftId;
use crate::values::Name;
use std::fmt;
use std::str::FromStr;

#[cfg(test)]
mod tests;

/// Spacecraft a producer token may name at most.
pub const SPACECRAFT_MAX: usize = 1_000;

/// What a principal may do. A role includes the ones below it, except `producer`, which is
/// only for ingest; `admin` includes every other role, `producer` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads and live streams.
    Viewer,
    /// Telemetry ingest for the spacecraft it is allowed.
    Producer,
    /// Commands on missions, agents, comments, alarms; task-run steps and approvals.
    Operator,
    /// Spacecraft limits, rebuilds, backups and restores, tokens.
    Admin,
}

impl Role {
    pub const ALL: [Self; 4] = [Self::Viewer, Self::Producer, Self::Operator, Self::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Producer => "producer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Whether a principal with this role may do what needs `required`.
    pub const fn satisfies(self, required: Role) -> bool {
        matches!(
            (self, required),
            (Self::Admin, _)
                | (Self::Operator, Self::Operator | Self::Viewer)
                | (Self::Viewer, Self::Viewer)
                | (Self::Producer, Self::Producer)
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::mission::one_of(Self::ALL.map(Self::as_str)))
    }
}

/// A SHA-256 digest of a token secret, 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(input.to_owned()))
        } else {
            Err(FieldError::new(field, "must be 64 lowercase hex digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An issued token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenData {
    pub id: TokenId,
    pub name: String,
    pub role: Role,
    /// The spacecraft a producer token may publish for (empty for other roles).
    pub spacecraft: Vec<String>,
    pub expires_at_ms: Option<i64>,
    pub secret_hash: SecretHash,
    pub issued_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Token {
    #[default]
    Absent,
    Active(TokenData),
    Revoked(TokenData),
}

#[derive(Debug, Clone, PartialEq)]
pub struct IssueToken {
    pub id: TokenId,
    pub name: Name,
    pub role: Role,
    pub spacecraft: Vec<SpacecraftId>,
    pub expires_at_ms: Option<i64>,
    pub secret_hash: SecretHash,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenCommand {
    Issue(IssueToken),
    /// Revoking a revoked token changes nothing.
    Revoke {
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenEvent {
    Issued(TokenData),
    Revoked { reason: Option<String> },
}

const TOKEN: &str = "token";

impl Aggregate for Token {
    const TYPE: &'static str = TOKEN;
    type Command = TokenCommand;
    type Event = TokenEvent;

    fn decide(&self, command: &TokenCommand) -> Result<Vec<TokenEvent>, DomainError> {
        match (self, command) {
            (Self::Absent, TokenCommand::Issue(i)) => issue(i),
            (_, TokenCommand::Issue(_)) => Err(DomainError::AlreadyExists { aggregate: TOKEN }),
            (Self::Absent, TokenCommand::Revoke { .. }) => {
                Err(DomainError::NotFound { aggregate: TOKEN })
            }
            (Self::Revoked(_), TokenCommand::Revoke { .. }) => Ok(vec![]),
            (Self::Active(_), TokenCommand::Revoke { reason }) => Ok(vec![TokenEvent::Revoked {
                reason: reason.clone(),
            }]),
        }
    }

    fn evolve(self, event: &TokenEvent) -> Self {
        match (self, event) {
            (Self::Absent, TokenEvent::Issued(data)) => Self::Active(data.clone()),
            (Self::Active(data), TokenEvent::Revoked { .. }) => Self::Revoked(data),
            // Events that do not fit the state leave it unchanged; decide never emits them.
            (state, _) => state,
        }
    }
}

fn issue(i: &IssueToken) -> Result<Vec<TokenEvent>, DomainError> {
    let mut errors = Vec::new();
    match (i.role, i.spacecraft.is_empty()) {
        (Role::Producer, true) => errors.push(FieldError::new(
            "spacecraft",
            "a producer token must name the spacecraft it may publish for",
        )),
        (Role::Producer, false) => {}
        (_, false) => errors.push(FieldError::new(
            "spacecraft",
            "only producer tokens are limited to spacecraft",
        )),
        (_, true) => {}
    }
    if i.spacecraft.len() > SPACECRAFT_MAX {
        errors.push(FieldError::new(
            "spacecraft",
            format!("at most {SPACECRAFT_MAX} spacecraft"),
        ));
    }
    if i.expires_at_ms.is_some_and(|at| at <= i.now_ms) {
        errors.push(FieldError::new("expires", "must be in the future"));
    }
    if !errors.is_empty() {
        return Err(DomainError::Validation(errors));
    }
    let mut spacecraft: Vec<String> = i.spacecraft.iter().map(|s| s.as_str().to_owned()).collect();
    spacecraft.sort();
    spacecraft.dedup();
    Ok(vec![TokenEvent::Issued(TokenData {
        id: i.id,
        name: i.name.as_str().to_owned(),
        role: i.role,
        spacecraft,
        expires_at_ms: i.expires_at_ms,
        secret_hash: i.secret_hash.clone(),
        issued_at_ms: i.now_ms,
    })])
}
