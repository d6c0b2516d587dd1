//! [`Authenticator`]: the one place a bearer credential becomes a [`Principal`] and a
//! principal is checked against the permission table, for HTTP and NATS alike.

use crate::jwt::JwtVerifier;
use crate::limits::{RateLimit, RateLimiter};
use crate::principal::{AuthError, Principal};
use crate::registry::TokenRegistry;
use crate::table::{self, Access};
use crate::tokens;

/// Longest credential accepted (a JWT with many claims fits easily).
const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// Tokens, the optional JWT issuer and the write limits. Cheap to share behind an `Arc`.
pub struct Authenticator {
    tokens: TokenRegistry,
    jwt: Option<JwtVerifier>,
    writes: RateLimiter,
}

impl Authenticator {
    pub fn new(tokens: TokenRegistry, jwt: Option<JwtVerifier>, writes: RateLimit) -> Self {
        Self {
            tokens,
            jwt,
            writes: RateLimiter::new(writes),
        }
    }

    pub fn tokens(&self) -> &TokenRegistry {
        &self.tokens
    }

    /// Refresh the JWKS of the JWT issuer periodically, if one is configured.
    pub fn spawn_refresh(
        &self,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.jwt.as_ref().map(|j| j.spawn_refresh(cancel))
    }

    /// The principal behind an `Authorization` header value (`Bearer <credential>`).
    pub fn from_header(&self, value: Option<&[u8]>) -> Result<Principal, AuthError> {
        let value = value.ok_or(AuthError::Missing)?;
        if value.len() > MAX_CREDENTIAL_BYTES {
            return Err(AuthError::Malformed("the credential is too long".into()));
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| AuthError::Malformed("the Authorization header is not text".into()))?;
        let (scheme, credential) = value
            .trim()
            .split_once(' ')
            .ok_or_else(|| AuthError::Malformed("expected Authorization: Bearer <token>".into()))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed(
                "only the Bearer scheme is accepted".into(),
            ));
        }
        self.authenticate(credential.trim())
    }

    /// The principal of a bearer credential: an API token or a JWT of the configured issuer.
    pub fn authenticate(&self, credential: &str) -> Result<Principal, AuthError> {
        if credential.is_empty() {
            return Err(AuthError::Missing);
        }
        if credential.len() > MAX_CREDENTIAL_BYTES {
            return Err(AuthError::Malformed("the credential is too long".into()));
        }
        if tokens::looks_like_api_token(credential) {
            return self
                .tokens
                .authenticate(credential, chrono::Utc::now().timestamp_millis());
        }
        match &self.jwt {
            Some(jwt) if crate::jwt::looks_like_jwt(credential) => jwt.verify(credential),
            Some(_) => Err(AuthError::Malformed(
                "expected an api token (mc_<id>_<secret>) or a jwt".into(),
            )),
            None => Err(AuthError::Malformed(
                "expected an api token (mc_<id>_<secret>); no jwt issuer is configured".into(),
            )),
        }
    }

    /// Check an authenticated request against `access`; writes also take from the
    /// principal's rate limit.
    pub fn admit(
        &self,
        principal: &Principal,
        access: Access,
        write: bool,
    ) -> Result<(), AuthError> {
        if let Access::Needs(role) = access {
            principal.may(role)?;
        }
        if write {
            self.writes.take(&principal.actor())?;
        }
        Ok(())
    }

    /// Authenticate and authorize a NATS command (`mc.cmd.<action>`) by its `Authorization`
    /// header. `None` when the action is unknown (the caller answers `unknown-command`).
    pub fn nats(&self, action: &str, header: Option<&str>) -> Option<Result<Principal, AuthError>> {
        let role = table::nats(action)?;
        Some(
            self.from_header(header.map(str::as_bytes))
                .and_then(|p| self.admit(&p, Access::Needs(role), true).map(|()| p)),
        )
    }
}
