//! The `serve` settings of authentication: the JWT issuer (optional) and the per-principal
//! write limit.

use clap::Args;
use mc_auth::jwt::{JwksSource, JwtConfig};
use mc_auth::limits::RateLimit;
use mc_auth::AuthConfig;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Clone)]
pub struct AuthArgs {
    /// Accept JWTs from this OIDC issuer (the `iss` claim); needs a JWKS and an audience.
    #[arg(long, env = "MC_JWT_ISSUER", requires = "jwt_audience")]
    pub jwt_issuer: Option<String>,
    /// The audience (`aud`) a JWT must name.
    #[arg(long, env = "MC_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The issuer's signing keys: a JWKS file.
    #[arg(long, env = "MC_JWT_JWKS_FILE", conflicts_with = "jwt_jwks_url")]
    pub jwt_jwks_file: Option<PathBuf>,
    /// The issuer's signing keys: a JWKS URL (refreshed every `--jwt-jwks-refresh-seconds`).
    #[arg(long, env = "MC_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,
    /// How often the JWKS is read again.
    #[arg(long, env = "MC_JWT_JWKS_REFRESH_SECONDS", default_value_t = 300)]
    pub jwt_jwks_refresh_seconds: u64,
    /// The claim holding the role (a string, or an array where the highest role wins).
    #[arg(long, env = "MC_JWT_ROLE_CLAIM", default_value = "mc_role")]
    pub jwt_role_claim: String,
    /// The claim listing a producer's spacecraft.
    #[arg(long, env = "MC_JWT_SPACECRAFT_CLAIM", default_value = "mc_spacecraft")]
    pub jwt_spacecraft_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[arg(long, env = "MC_JWT_LEEWAY_SECONDS", default_value_t = 30)]
    pub jwt_leeway_seconds: u64,
    /// Writes (POST, PUT, PATCH, DELETE and NATS commands) per second per principal; 0 turns
    /// the limit off. Past it: 429 with Retry-After.
    #[arg(long, env = "MC_WRITE_RATE", default_value_t = 100.0)]
    pub write_rate: f64,
    /// Writes a principal may burst above the rate.
    #[arg(long, env = "MC_WRITE_BURST", default_value_t = 200)]
    pub write_burst: u32,
}

impl AuthArgs {
    pub fn config(&self) -> anyhow::Result<AuthConfig> {
        let source = match (&self.jwt_jwks_file, &self.jwt_jwks_url) {
            (Some(f), _) => Some(JwksSource::File(f.clone())),
            (None, Some(u)) => Some(JwksSource::Url(u.clone())),
            (None, None) => None,
        };
        let jwt = match (&self.jwt_issuer, source) {
            (None, None) => None,
            (None, Some(_)) => anyhow::bail!("a JWKS is configured but MC_JWT_ISSUER is not"),
            (Some(_), None) => {
                anyhow::bail!("MC_JWT_ISSUER needs MC_JWT_JWKS_FILE or MC_JWT_JWKS_URL")
            }
            (Some(issuer), Some(jwks)) => Some(JwtConfig {
                issuer: issuer.clone(),
                audience: self.jwt_audience.clone().unwrap_or_default(),
                jwks,
                role_claim: self.jwt_role_claim.clone(),
                spacecraft_claim: self.jwt_spacecraft_claim.clone(),
                leeway: Duration::from_secs(self.jwt_leeway_seconds),
                refresh: Duration::from_secs(self.jwt_jwks_refresh_seconds.max(1)),
            }),
        };
        if !(self.write_rate.is_finite() && self.write_rate >= 0.0) {
            anyhow::bail!("MC_WRITE_RATE must be a number of writes per second, 0 or more");
        }
        Ok(AuthConfig {
            jwt,
            writes: RateLimit {
                rate: self.write_rate,
                burst: self.write_burst,
            },
        })
    }
}
