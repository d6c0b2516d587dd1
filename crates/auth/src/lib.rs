//! Identity and permissions: who a caller is ([`Principal`]), what each route and NATS
//! command needs ([`table`]), API tokens ([`tokens`]), JWTs from an OIDC issuer ([`jwt`]) and
//! per-principal rate limits ([`limits`]).
//!
//! Architecture Invariant: every HTTP route and NATS command action has exactly one rule in
//! [`table`]; the API refuses to build a route without one.

pub mod authenticator;
pub mod jwt;
pub mod limits;
pub mod principal;
pub mod registry;
pub mod table;
pub mod tokens;

pub use authenticator::Authenticator;
pub use mc_domain::token::Role;
pub use principal::{AuthError, Credential, Principal};

/// How `serve` authenticates: an optional JWT issuer and the per-principal write limit.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub jwt: Option<jwt::JwtConfig>,
    pub writes: limits::RateLimit,
}
