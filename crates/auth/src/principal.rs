//! Who is calling: a [`Principal`] with one role, and why a caller is refused ([`AuthError`]).

use mc_domain::token::Role;
use std::fmt;

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An API token issued by this system (`mc_<id>_<secret>`).
    Token,
    /// A JWT from the configured OIDC issuer.
    Jwt,
}

/// An authenticated caller. Carries no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    pub credential: Credential,
    /// The token id, or the JWT subject.
    pub id: String,
    /// The token's name, or the JWT subject.
    pub name: String,
    pub role: Role,
    /// Spacecraft a producer may publish for; `None` for every other role (no limit).
    pub spacecraft: Option<Vec<String>>,
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.actor(), self.role)
    }
}

impl Principal {
    /// The actor written into every event this principal causes: `token:<id>/<name>` or
    /// `jwt:<subject>`, at most 200 characters.
    pub fn actor(&self) -> String {
        let actor = match self.credential {
            Credential::Token => format!("token:{}/{}", self.id, self.name),
            Credential::Jwt => format!("jwt:{}", self.id),
        };
        actor
            .chars()
            .take(mc_domain::values::ACTOR_MAX_CHARS)
            .collect()
    }

    /// Whether this principal may do what needs `required`.
    pub fn may(&self, required: Role) -> Result<(), AuthError> {
        if self.role.satisfies(required) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                required,
                role: self.role,
            })
        }
    }

    /// Whether this principal may publish telemetry for `spacecraft`.
    pub fn may_publish_for(&self, spacecraft: &str) -> Result<(), AuthError> {
        self.may(Role::Producer)?;
        match &self.spacecraft {
            Some(allowed) if !allowed.iter().any(|s| s == spacecraft) => {
                Err(AuthError::SpacecraftForbidden {
                    spacecraft: spacecraft.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// Why a caller is refused. `Unauthenticated` variants answer 401 with `WWW-Authenticate:
/// Bearer`; `Forbidden` ones 403. Messages never repeat a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("credentials required: send Authorization: Bearer <token>")]
    Missing,
    #[error("malformed credentials: {0}")]
    Malformed(String),
    #[error("unknown token")]
    UnknownToken,
    #[error("token revoked")]
    Revoked,
    #[error("token expired")]
    Expired,
    #[error("invalid jwt: {0}")]
    Jwt(String),
    #[error("this needs the {required} role; the caller is {role}")]
    Forbidden { required: Role, role: Role },
    #[error("this token may not publish telemetry for spacecraft {spacecraft}")]
    SpacecraftForbidden { spacecraft: String },
    #[error("tokens are still loading; retry shortly")]
    NotReady,
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
}

impl AuthError {
    /// Whether the caller failed to prove who it is (401) rather than being refused (403).
    pub const fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            Self::Missing
                | Self::Malformed(_)
                | Self::UnknownToken
                | Self::Revoked
                | Self::Expired
                | Self::Jwt(_)
        )
    }

    /// HTTP status of the refusal.
    pub const fn status(&self) -> u16 {
        match self {
            Self::Forbidden { .. } | Self::SpacecraftForbidden { .. } => 403,
            Self::NotReady => 503,
            Self::RateLimited { .. } => 429,
            _ => 401,
        }
    }
}
