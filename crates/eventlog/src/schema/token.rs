//! Stored schema of the Token events. The secret is never stored, only its SHA-256.

use super::{payload, to_value, EventSchema, SchemaError};
use mc_domain::ids::TokenId;
use mc_domain::token::{Role, SecretHash, TokenData, TokenEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ISSUED: &str = "token.issued";
pub const REVOKED: &str = "token.revoked";

pub(super) const VERSIONS: &[(&str, u32)] = &[(ISSUED, 1), (REVOKED, 1)];
pub(super) const UPCASTERS: &[super::Upcaster] = &[];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssuedV1 {
    id: Uuid,
    name: String,
    role: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    spacecraft: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<i64>,
    secret_sha256: String,
    issued_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct RevokedV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn bad(event_type: &str, reason: impl Into<String>) -> SchemaError {
    SchemaError::BadPayload {
        event_type: event_type.to_owned(),
        reason: reason.into(),
    }
}

impl EventSchema for TokenEvent {
    fn to_stored(&self) -> (&'static str, u32, serde_json::Value) {
        match self {
            Self::Issued(d) => (
                ISSUED,
                1,
                to_value(&IssuedV1 {
                    id: d.id.as_uuid(),
                    name: d.name.clone(),
                    role: d.role.as_str().to_owned(),
                    spacecraft: d.spacecraft.clone(),
                    expires_at_ms: d.expires_at_ms,
                    secret_sha256: d.secret_hash.as_str().to_owned(),
                    issued_at_ms: d.issued_at_ms,
                }),
            ),
            Self::Revoked { reason } => (
                REVOKED,
                1,
                to_value(&RevokedV1 {
                    reason: reason.clone(),
                }),
            ),
        }
    }

    fn from_current(event_type: &str, value: serde_json::Value) -> Result<Self, SchemaError> {
        Ok(match event_type {
            ISSUED => {
                let p: IssuedV1 = payload(event_type, value)?;
                Self::Issued(TokenData {
                    id: TokenId::from_uuid(p.id),
                    name: p.name,
                    role: p.role.parse::<Role>().map_err(|e| bad(event_type, e))?,
                    spacecraft: p.spacecraft,
                    expires_at_ms: p.expires_at_ms,
                    secret_hash: SecretHash::parse(&p.secret_sha256, "secretSha256")
                        .map_err(|e| bad(event_type, e.to_string()))?,
                    issued_at_ms: p.issued_at_ms,
                })
            }
            REVOKED => {
                let p: RevokedV1 = payload(event_type, value)?;
                Self::Revoked { reason: p.reason }
            }
            other => {
                return Err(SchemaError::UnknownType {
                    event_type: other.to_owned(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Snapshot of the stored form: renaming a variant or field must not change these.
    #[test]
    fn stored_form_is_stable() {
        let issued = TokenEvent::Issued(TokenData {
            id: TokenId::from_uuid(Uuid::from_u128(1)),
            name: "ingest".into(),
            role: Role::Producer,
            spacecraft: vec!["SC-1".into()],
            expires_at_ms: Some(2),
            secret_hash: SecretHash::parse(&"0a".repeat(32), "h").unwrap(),
            issued_at_ms: 1,
        });
        let cases = [
            (
                issued,
                json!({"type": "token.issued", "v": 1, "payload": {
                    "id": "00000000-0000-0000-0000-000000000001", "name": "ingest",
                    "role": "producer", "spacecraft": ["SC-1"], "expiresAtMs": 2,
                    "secretSha256": "0a".repeat(32), "issuedAtMs": 1}}),
            ),
            (
                TokenEvent::Revoked { reason: None },
                json!({"type": "token.revoked", "v": 1, "payload": {}}),
            ),
        ];
        for (event, expected) in cases {
            let (t, v, p) = event.to_stored();
            assert_eq!(json!({"type": t, "v": v, "payload": p}), expected);
            assert_eq!(super::super::current_version(t), Some(v));
            assert_eq!(TokenEvent::from_stored(t, v, p).unwrap(), event);
        }
    }

    #[test]
    fn an_unknown_role_or_a_bad_hash_is_a_bad_payload() {
        let mut p = json!({"id": "00000000-0000-0000-0000-000000000001", "name": "x",
            "role": "root", "secretSha256": "0a".repeat(32), "issuedAtMs": 1});
        assert!(matches!(
            TokenEvent::from_stored(ISSUED, 1, p.clone()),
            Err(SchemaError::BadPayload { .. })
        ));
        p["role"] = json!("viewer");
        p["secretSha256"] = json!("secret");
        assert!(matches!(
            TokenEvent::from_stored(ISSUED, 1, p),
            Err(SchemaError::BadPayload { .. })
        ));
    }
}
