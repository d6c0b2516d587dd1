//! Bearer JWTs from the configured OIDC issuer: its keys (a JWKS from a file or a URL, swapped
//! atomically on refresh), the checks a token must pass, and the [`Principal`] it names.
//!
//! What a token must be (every refusal is [`AuthError::Jwt`] with a lowercase reason that never
//! repeats the token):
//! - signed with RS256, ES256 or EdDSA; `alg: none`, HS*, PS*, RS384… are refused before any
//!   key is looked at; a `crit` header is refused (no extension is understood);
//! - its header `kid` names a key of the JWKS, and the header `alg` equals that key's `alg`
//!   (a JWK without `alg` gets the one its type allows: RSA → RS256, EC P-256 → ES256,
//!   OKP Ed25519 → EdDSA); signature checked by `jsonwebtoken`;
//! - `iss` equal to the configured issuer, `aud` containing the configured audience, `exp`
//!   present and not past, `nbf` (when present) not in the future, both with
//!   [`JwtConfig::leeway`] (default [`DEFAULT_LEEWAY`], at most [`MAX_LEEWAY`]);
//! - `sub`: one line, no control characters, at most [`SUBJECT_MAX_CHARS`] characters, no
//!   surrounding blanks. It is both the principal's id and its name (the actor is `jwt:<sub>`,
//!   so it stays stable and unique even if a display name changes);
//! - the role claim ([`JwtConfig::role_claim`], default `mc_role`, top-level, exact name):
//!   a role name, or an array of strings where the highest known role wins
//!   (viewer < producer < operator < admin) and other strings are ignored; nothing known →
//!   refused;
//! - a producer needs the spacecraft claim ([`JwtConfig::spacecraft_claim`], default
//!   `mc_spacecraft`): an array of spacecraft ids (a single string is taken as one), not empty;
//!   other roles ignore it.
//!
//! A JWKS key is used only if it has a `kid`, is not marked for encryption, is of an accepted
//! type and `alg`, and (RSA) has at least 2048 bits; other keys are skipped with a warning. A
//! JWKS with no usable key is a load error. A JWKS URL must be https (plain http only for a
//! loopback host, as in tests); it is fetched without following redirects, with a timeout and
//! a size limit.

use crate::principal::{AuthError, Credential, Principal};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use jwks::{Jwks, KeySet};
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::token::{Role, SPACECRAFT_MAX};
use serde_json::{Map, Value};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod jwks;

pub const DEFAULT_ROLE_CLAIM: &str = "mc_role";
pub const DEFAULT_SPACECRAFT_CLAIM: &str = "mc_spacecraft";
/// Clock skew allowed on `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// How often [`JwtVerifier::spawn_refresh`] re-reads the JWKS.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// Longest subject: the actor `jwt:<sub>` then fits its 200 characters untruncated.
pub const SUBJECT_MAX_CHARS: usize = mc_domain::values::ACTOR_MAX_CHARS - "jwt:".len();
/// A longer bearer token is refused before it is parsed.
const TOKEN_MAX_BYTES: usize = 16 * 1024;
/// After a failed refresh, the next try comes this soon (or at the period, if shorter).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// The algorithms a token may be signed with.
const ACCEPTED: &str = "RS256, ES256 or EdDSA";

/// Where the issuer's public keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    /// `https://…` (plain `http://` only for a loopback host).
    Url(String),
}

/// How JWTs are checked. [`JwtConfig::new`] fills the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// The exact `iss` a token must carry.
    pub issuer: String,
    /// A value the token's `aud` must be or contain.
    pub audience: String,
    pub jwks: JwksSource,
    /// Top-level claim holding the role (string or array of strings).
    pub role_claim: String,
    /// Top-level claim holding a producer's spacecraft (array of strings).
    pub spacecraft_claim: String,
    /// Clock skew allowed on `exp` and `nbf`, at most [`MAX_LEEWAY`].
    pub leeway: Duration,
    /// Period of [`JwtVerifier::spawn_refresh`], at least one second.
    pub refresh: Duration,
}

impl JwtConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, jwks: JwksSource) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks,
            role_claim: DEFAULT_ROLE_CLAIM.to_owned(),
            spacecraft_claim: DEFAULT_SPACECRAFT_CLAIM.to_owned(),
            leeway: DEFAULT_LEEWAY,
            refresh: DEFAULT_REFRESH,
        }
    }

    fn check(&self) -> Result<(), JwtError> {
        let bad = |m: &str| Err(JwtError::Config(m.to_owned()));
        if self.issuer.trim().is_empty() {
            return bad("the issuer must not be empty");
        }
        if self.audience.trim().is_empty() {
            return bad("the audience must not be empty");
        }
        if self.role_claim.is_empty() || self.spacecraft_claim.is_empty() {
            return bad("the role and spacecraft claim names must not be empty");
        }
        if self.leeway > MAX_LEEWAY {
            return bad("the leeway must be at most 300 s");
        }
        if self.refresh < Duration::from_secs(1) {
            return bad("the jwks refresh period must be at least 1 s");
        }
        Ok(())
    }
}

/// Why the JWKS could not be loaded, or the configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("invalid jwt configuration: {0}")]
    Config(String),
    #[error("jwks from {origin}: {reason}")]
    Jwks { origin: String, reason: String },
}

/// Checks bearer JWTs against the issuer's current keys. Cheap to clone (shared keys).
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: JwtConfig,
    jwks: Jwks,
    keys: RwLock<Arc<KeySet>>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.inner.config.issuer)
            .field("jwks", &self.inner.jwks.origin)
            .field("kids", &self.key_ids())
            .finish()
    }
}

impl JwtVerifier {
    /// Check the configuration and read or fetch the JWKS; an unreadable JWKS or one without
    /// a usable key is an error naming the source.
    pub async fn load(config: JwtConfig) -> Result<Self, JwtError> {
        config.check()?;
        let jwks = Jwks::new(&config.jwks)?;
        let keys = jwks.read().await?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                jwks,
                keys: RwLock::new(Arc::new(keys)),
            }),
        })
    }

    /// The key ids in use, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.current().keys().cloned().collect();
        kids.sort();
        kids
    }

    /// Re-read the JWKS and swap the keys in one step; on failure the old keys stay.
    pub async fn refresh(&self) -> Result<(), JwtError> {
        let keys = self.inner.jwks.read().await?;
        let before = self.key_ids();
        *self.inner.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        let after = self.key_ids();
        if before != after {
            tracing::info!(jwks = %self.inner.jwks.origin, kids = ?after, "jwks keys changed");
        }
        Ok(())
    }

    /// Refresh the keys every [`JwtConfig::refresh`] until `cancel`; a failure is logged, the
    /// old keys stay and the next try comes within 30 s.
    pub fn spawn_refresh(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let period = this.inner.config.refresh;
            let mut wait = period;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
                let result = tokio::select! {
                    () = cancel.cancelled() => break,
                    r = this.refresh() => r,
                };
                wait = match result {
                    Ok(()) => period,
                    Err(e) => {
                        tracing::warn!(error = %e, "jwks refresh failed; keeping the keys loaded before");
                        period.min(RETRY_AFTER_FAILURE)
                    }
                };
            }
        })
    }

    /// Check `token` (signature, issuer, audience, times) and name its principal. No IO.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_inner(token).map_err(AuthError::Jwt)
    }

    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.inner.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn verify_inner(&self, token: &str) -> Result<Principal, String> {
        if token.len() > TOKEN_MAX_BYTES {
            return Err(format!("longer than {TOKEN_MAX_BYTES} bytes"));
        }
        let header = token
            .split('.')
            .next()
            .filter(|_| token.split('.').count() == 3)
            .ok_or("not a jwt: expected three dot-separated parts")?;
        let header = parse_header(header)?;
        let alg = accepted_alg(&header.alg)?;
        if header.crit.is_some() {
            return Err("critical header extensions (crit) are not supported".into());
        }
        let kid = header.kid.ok_or("the header names no key (kid)")?;
        let keys = self.current();
        let key = keys
            .get(&kid)
            .ok_or_else(|| format!("no key with kid {} in the issuer's jwks", printable(&kid)))?;
        if key.alg != alg {
            return Err(format!(
                "the header's algorithm {alg:?} does not match the key's {:?}",
                key.alg
            ));
        }
        let config = &self.inner.config;
        let mut validation = Validation::new(key.alg);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| describe(e.kind()))?;
        principal(&data.claims, config)
    }
}

#[derive(serde::Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

fn parse_header(encoded: &str) -> Result<RawHeader, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| "malformed header: not base64url")?;
    serde_json::from_slice(&bytes)
        .map_err(|_| "malformed header: not a json object with alg".into())
}

fn accepted_alg(alg: &str) -> Result<Algorithm, String> {
    match alg {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        a if a.eq_ignore_ascii_case("none") => {
            Err("unsigned tokens (alg none) are not accepted".into())
        }
        a if a.starts_with("HS") => Err(format!(
            "symmetric algorithm {} is not accepted; the issuer must sign with {ACCEPTED}",
            printable(a)
        )),
        a => Err(format!(
            "algorithm {} is not accepted; the issuer must sign with {ACCEPTED}",
            printable(a)
        )),
    }
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::ExpiredSignature => "expired (exp)".into(),
        ErrorKind::ImmatureSignature => "not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".into(),
        ErrorKind::InvalidAudience => "wrong audience (aud)".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("missing claim {c}"),
        ErrorKind::InvalidClaimFormat(c) => format!("claim {c} has the wrong type"),
        ErrorKind::InvalidAlgorithm => "the algorithm does not match the key".into(),
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => "the key cannot check this signature".into(),
        ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::InvalidToken => "malformed token".into(),
        _ => "invalid token".into(),
    }
}

/// The principal a verified token's claims name.
fn principal(claims: &Map<String, Value>, config: &JwtConfig) -> Result<Principal, String> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or("missing claim sub")?;
    check_subject(sub)?;
    let role = role(claims, &config.role_claim)?;
    let spacecraft = if role == Role::Producer {
        Some(spacecraft(claims, &config.spacecraft_claim)?)
    } else {
        None
    };
    Ok(Principal {
        credential: Credential::Jwt,
        id: sub.to_owned(),
        name: sub.to_owned(),
        role,
        spacecraft,
    })
}

fn check_subject(sub: &str) -> Result<(), String> {
    if sub.chars().count() > SUBJECT_MAX_CHARS {
        return Err(format!("sub longer than {SUBJECT_MAX_CHARS} characters"));
    }
    let clean = mc_domain::values::parse_actor(sub, "sub").map_err(|e| e.to_string())?;
    if clean != sub {
        return Err("sub: must not start or end with blanks".into());
    }
    Ok(())
}

fn role(claims: &Map<String, Value>, claim: &str) -> Result<Role, String> {
    let expected = "expected viewer, producer, operator or admin";
    match claims.get(claim) {
        None | Some(Value::Null) => Err(format!("missing claim {claim} (the role)")),
        Some(Value::String(s)) => s
            .parse::<Role>()
            .map_err(|_| format!("unknown role {} in claim {claim}; {expected}", printable(s))),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str()?.parse::<Role>().ok())
            .max()
            .ok_or_else(|| format!("no known role in claim {claim}; {expected}")),
        Some(_) => Err(format!(
            "claim {claim} must be a string or an array of strings"
        )),
    }
}

fn spacecraft(claims: &Map<String, Value>, claim: &str) -> Result<Vec<String>, String> {
    let items: Vec<&Value> = match claims.get(claim) {
        None | Some(Value::Null) => {
            return Err(format!(
                "a producer needs the claim {claim} (the spacecraft it may publish for)"
            ))
        }
        Some(one @ Value::String(_)) => vec![one],
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => return Err(format!("claim {claim} must be an array of spacecraft ids")),
    };
    if items.is_empty() {
        return Err(format!("claim {claim} names no spacecraft"));
    }
    if items.len() > SPACECRAFT_MAX {
        return Err(format!(
            "claim {claim} names more than {SPACECRAFT_MAX} spacecraft"
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("{claim}[{i}]");
        let id = item
            .as_str()
            .ok_or_else(|| format!("{field}: must be a string"))?;
        out.push(
            SpacecraftId::parse(id, &field)
                .map_err(|e| e.to_string())?
                .to_string(),
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// At most 64 characters of attacker-supplied text, control characters replaced, for a
/// refusal reason or a log line.
fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Whether `token` has the shape of a JWT (three base64url segments, the last one empty for
/// an unsigned token) rather than of an API token (`mc_<id>_<secret>`).
pub fn looks_like_jwt(token: &str) -> bool {
    let b64 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => {
            !h.is_empty() && !p.is_empty() && b64(h) && b64(p) && b64(s)
        }
        _ => false,
    }
}
