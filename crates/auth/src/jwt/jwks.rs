//! The issuer's JWKS: read from a file or fetched over https, and sorted into the keys a JWT
//! may be checked with (one algorithm per key, looked up by `kid`).

use super::{printable, JwksSource, JwtError, ACCEPTED};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const JWKS_MAX_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const RSA_MIN_BITS: usize = 2048;

/// A key of the JWKS and the one algorithm it checks.
pub(super) struct VerifyKey {
    pub(super) alg: Algorithm,
    pub(super) key: DecodingKey,
}

/// Usable keys by `kid`.
pub(super) type KeySet = HashMap<String, VerifyKey>;

/// Where the keys come from, and how to get them.
pub(super) struct Jwks {
    source: JwksSource,
    /// The source as logs and errors show it (a URL without credentials or query).
    pub(super) origin: String,
    http: Option<reqwest::Client>,
}

impl Jwks {
    pub(super) fn new(source: &JwksSource) -> Result<Self, JwtError> {
        let (origin, http) = match source {
            JwksSource::File(path) => (format!("file {}", path.display()), None),
            JwksSource::Url(url) => {
                check_url(url)?;
                let client = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| {
                        JwtError::Config(format!("cannot build the http client: {}", chain(&e)))
                    })?;
                (format!("url {}", display_url(url)), Some(client))
            }
        };
        Ok(Self {
            source: source.clone(),
            origin,
            http,
        })
    }

    /// Read or fetch the document; no usable key is an error.
    pub(super) async fn read(&self) -> Result<KeySet, JwtError> {
        let err = |reason: String| JwtError::Jwks {
            origin: self.origin.clone(),
            reason,
        };
        let bytes = match (&self.source, &self.http) {
            (JwksSource::File(path), _) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| err(format!("cannot read: {e}")))?;
                if bytes.len() > JWKS_MAX_BYTES {
                    return Err(err(format!("larger than {JWKS_MAX_BYTES} bytes")));
                }
                bytes
            }
            (JwksSource::Url(url), Some(http)) => fetch(http, url).await.map_err(err)?,
            (JwksSource::Url(_), None) => return Err(err("no http client".into())),
        };
        let keys = parse(&bytes, &self.origin).map_err(err)?;
        if keys.is_empty() {
            return Err(err(format!(
                "no usable key (each needs a kid and {ACCEPTED}; rsa at least {RSA_MIN_BITS} bits)"
            )));
        }
        Ok(keys)
    }
}

/// https, or plain http for a loopback host only (keys over plain http could be swapped).
fn check_url(raw: &str) -> Result<(), JwtError> {
    let url = reqwest::Url::parse(raw)
        .map_err(|e| JwtError::Config(format!("the jwks url does not parse: {e}")))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(JwtError::Config(
            "the jwks url must be https (plain http only for a loopback host)".into(),
        ))
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("cannot fetch: {}", chain(&e.without_url())))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("http status {status}"));
    }
    if response
        .content_length()
        .is_some_and(|n| n > JWKS_MAX_BYTES as u64)
    {
        return Err(format!("larger than {JWKS_MAX_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("cannot read the body: {}", chain(&e.without_url())))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > JWKS_MAX_BYTES {
            return Err(format!("larger than {JWKS_MAX_BYTES} bytes"));
        }
    }
    Ok(body)
}

/// An error and its causes, `a: b: c` (reqwest's own message alone says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A URL without user, password, query or fragment (they may hold secrets).
fn display_url(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "(unparsable url)".to_owned(),
    }
}

/// The usable keys of a JWKS document; unusable ones are logged and skipped.
fn parse(bytes: &[u8], origin: &str) -> Result<KeySet, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<Value>,
    }
    let doc: Document = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a jwks json document ({{\"keys\": [...]}}): {e}"))?;
    let mut keys = KeySet::new();
    for (i, raw) in doc.keys.into_iter().enumerate() {
        let label = raw
            .get("kid")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{i}"), printable);
        match usable_key(raw) {
            Ok((kid, _)) if keys.contains_key(&kid) => {
                tracing::warn!(
                    jwks = origin,
                    kid = label,
                    "jwks key skipped: kid used twice; the first stays"
                );
            }
            Ok((kid, key)) => {
                keys.insert(kid, key);
            }
            Err(reason) => tracing::warn!(jwks = origin, kid = label, reason, "jwks key skipped"),
        }
    }
    Ok(keys)
}

fn usable_key(raw: Value) -> Result<(String, VerifyKey), String> {
    let jwk: Jwk = serde_json::from_value(raw).map_err(|e| format!("not a jwk: {e}"))?;
    let kid = jwk
        .common
        .key_id
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or("no kid")?;
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err("not a signature key (use)".into()),
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return Err("key_ops lacks verify".into());
        }
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let bits = rsa_bits(&rsa.n)?;
            if bits < RSA_MIN_BITS {
                return Err(format!("rsa key of {bits} bits (at least {RSA_MIN_BITS})"));
            }
            Algorithm::RS256
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are not accepted".into()),
        _ => {
            return Err(format!(
                "unsupported key type or curve (accepted: {ACCEPTED})"
            ))
        }
    };
    // A declared alg must be the one the key type allows; none declared means that one.
    if let Some(declared) = jwk.common.key_algorithm {
        let same = matches!(
            (declared, alg),
            (KeyAlgorithm::RS256, Algorithm::RS256)
                | (KeyAlgorithm::ES256, Algorithm::ES256)
                | (KeyAlgorithm::EdDSA, Algorithm::EdDSA)
        );
        if !same {
            return Err(format!(
                "alg {declared:?} is not accepted for this key (accepted: {ACCEPTED})"
            ));
        }
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("bad key material: {e}"))?;
    Ok((kid, VerifyKey { alg, key }))
}

/// Bits of an RSA modulus (base64url, big-endian).
fn rsa_bits(n: &str) -> Result<usize, String> {
    let n = URL_SAFE_NO_PAD
        .decode(n.trim_end_matches('='))
        .map_err(|_| "the rsa modulus is not base64url")?;
    let n = &n[n.iter().position(|b| *b != 0).unwrap_or(n.len())..];
    Ok(n.first()
        .map_or(0, |b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize)))
}
