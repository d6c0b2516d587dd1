//! API tokens: the `mc_<id>_<secret>` format, secrets made from the OS's randomness, their
//! SHA-256 (the only form stored), and issuing/revoking through the Token aggregate.

use crate::principal::AuthError;
use chrono::{DateTime, Utc};
use mc_commands::{CommandContext, CommandError, Executed, TokenService};
use mc_domain::ids::TokenId;
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::token::{IssueToken, Role, SecretHash, Token};
use mc_domain::values::Name;
use mc_domain::{DomainError, FieldError};
use sha2::{Digest, Sha256};
use std::fmt;

const PREFIX: &str = "mc_";
/// Random bytes in a secret (256 bits).
const SECRET_BYTES: usize = 32;

/// A token as a client sends it, split into its id and secret.
pub struct Presented<'a> {
    pub id: TokenId,
    secret: &'a str,
}

impl Presented<'_> {
    /// SHA-256 of the secret.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.secret.as_bytes()).into()
    }
}

/// Split `mc_<32 hex id>_<64 hex secret>`; anything else is malformed.
pub fn parse(token: &str) -> Result<Presented<'_>, AuthError> {
    let malformed = || AuthError::Malformed("an api token has the form mc_<id>_<secret>".into());
    let rest = token.strip_prefix(PREFIX).ok_or_else(malformed)?;
    let (id, secret) = rest.split_once('_').ok_or_else(malformed)?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(id, 32) || !hex(secret, SECRET_BYTES * 2) {
        return Err(malformed());
    }
    let id = uuid::Uuid::try_parse(id).map_err(|_| malformed())?;
    Ok(Presented {
        id: TokenId::from_uuid(id),
        secret,
    })
}

/// Whether `token` has the shape of an API token (as opposed to a JWT).
pub fn looks_like_api_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// A newly made token: shown once, never stored. Its `Debug` hides the secret.
pub struct Secret {
    pub id: TokenId,
    token: String,
    hash: SecretHash,
}

impl Secret {
    /// Make a token with a fresh id and 256 random bits.
    pub fn generate() -> Result<Self, String> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the os: {e}"))?;
        let secret = hex::encode(bytes);
        let id = TokenId::from_uuid(uuid::Uuid::now_v7());
        let hash = hex::encode(Sha256::digest(secret.as_bytes()));
        let hash = SecretHash::parse(&hash, "secret").map_err(|e| e.to_string())?;
        Ok(Self {
            token: format!("{PREFIX}{}_{secret}", id.as_uuid().simple()),
            id,
            hash,
        })
    }

    /// The whole token, to show the user once.
    pub fn expose(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, <redacted>)", self.id)
    }
}

/// What `tokens create` asks for, unparsed.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: String,
    pub spacecraft: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Issue a token: parse the request, make a secret, append `token.issued` (with the hash
/// only). Returns the secret to show once.
pub async fn issue(
    service: &TokenService,
    ctx: &CommandContext,
    new: NewToken,
) -> Result<(Secret, Executed<Token>), CommandError> {
    let mut errors = Vec::new();
    let name = Name::parse(&new.name, "name")
        .map_err(|e| errors.push(e))
        .ok();
    let role = new
        .role
        .parse::<Role>()
        .map_err(|m| errors.push(FieldError::new("role", m)))
        .ok();
    let spacecraft: Vec<SpacecraftId> = new
        .spacecraft
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            SpacecraftId::parse(s.trim(), &format!("spacecraft[{i}]"))
                .map_err(|e| errors.push(e))
                .ok()
        })
        .collect();
    let (Some(name), Some(role), true) = (name, role, errors.is_empty()) else {
        return Err(DomainError::Validation(errors).into());
    };
    let secret = Secret::generate().map_err(CommandError::Unavailable)?;
    let issue = IssueToken {
        id: secret.id,
        name,
        role,
        spacecraft,
        expires_at_ms: new.expires_at.map(|t| t.timestamp_millis()),
        secret_hash: secret.hash.clone(),
        now_ms: Utc::now().timestamp_millis(),
    };
    let executed = service.issue(ctx, issue).await?;
    Ok((secret, executed))
}

/// Parse a token id as `tokens revoke` and the API accept it: the uuid, or a whole token.
pub fn parse_id(input: &str) -> Result<TokenId, FieldError> {
    let input = input.trim();
    if let Ok(p) = parse(input) {
        return Ok(p.id);
    }
    TokenId::parse(input, "id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_back_to_its_id_and_hash() {
        let s = Secret::generate().unwrap();
        let p = parse(s.expose()).unwrap();
        assert_eq!(p.id, s.id);
        assert_eq!(hex::encode(p.digest()), s.hash.as_str());
        assert_eq!(s.expose().len(), 3 + 32 + 1 + 64);
        assert!(!format!("{s:?}").contains(&s.expose()[36..]));
        assert_ne!(Secret::generate().unwrap().expose(), s.expose());
    }

    #[test]
    fn malformed_tokens_are_refused_without_echoing_them() {
        let good = Secret::generate().unwrap().expose().to_owned();
        let cases = [
            String::new(),
            "mc_".into(),
            good.replacen("mc_", "xx_", 1),
            good[..good.len() - 1].into(),
            format!("{good}0"),
            good.replace('_', "-"),
            format!("{}\0", &good[..good.len() - 1]),
            "mc_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz_".to_owned() + &"0".repeat(64),
        ];
        for case in cases {
            let Err(AuthError::Malformed(m)) = parse(&case) else {
                panic!("{case:?} accepted")
            };
            assert!(!m.contains(&good[36..]));
        }
        assert_eq!(parse_id(&good).unwrap(), parse(&good).unwrap().id);
    }
}
