//! JWT verification with real keys (fixtures made once with openssl): accepted algorithms,
//! refusals (times, issuer, audience, unsigned, symmetric, foreign keys, roles), and the JWKS
//! from a file or from a tiny HTTP server, refreshed after a key rotation.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mc_auth::jwt::{looks_like_jwt, JwksSource, JwtConfig, JwtError, JwtVerifier};
use mc_auth::{AuthError, Credential, Role};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const ISS: &str = "https://idp.example.test/realms/mc";
const AUD: &str = "mission-control";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(role: Value) -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "iat": now(), "exp": now() + 600, "mc_role": role})
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

/// A token signed with the fixture key `pem` (rsa.pem, rsa2.pem, ec.pem, ed.pem).
fn sign(alg: Algorithm, kid: Option<&str>, pem: &str, claims: &Value) -> String {
    let bytes = std::fs::read(fixture(pem)).unwrap();
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::PS256 => EncodingKey::from_rsa_pem(&bytes),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&bytes),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&bytes),
        other => panic!("no fixture for {other:?}"),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", claims)
}

fn config(jwks: JwksSource) -> JwtConfig {
    JwtConfig::new(ISS, AUD, jwks)
}

async fn verifier() -> JwtVerifier {
    JwtVerifier::load(config(JwksSource::File(fixture("jwks.json"))))
        .await
        .unwrap()
}

/// The refusal of `token`: a 401 whose message repeats no part of the token's payload or
/// signature.
fn refused(v: &JwtVerifier, token: &str) -> String {
    let err = v.verify(token).expect_err("the token must be refused");
    assert!(matches!(err, AuthError::Jwt(_)), "{err:?}");
    assert_eq!(err.status(), 401);
    let msg = err.to_string();
    for part in token.split('.').skip(1).filter(|p| p.len() > 8) {
        assert!(!msg.contains(part), "the message repeats the token: {msg}");
    }
    assert!(msg.starts_with("invalid jwt: "), "{msg}");
    msg
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_name_their_principal() {
    let v = verifier().await;
    assert_eq!(v.key_ids(), ["ec-1", "ed-1", "rsa-1"]);
    let cases = [
        (rs256(&claims(json!("admin"))), Role::Admin),
        (
            sign(
                Algorithm::ES256,
                Some("ec-1"),
                "ec.pem",
                &claims(json!("operator")),
            ),
            Role::Operator,
        ),
        (
            sign(
                Algorithm::EdDSA,
                Some("ed-1"),
                "ed.pem",
                &claims(json!("viewer")),
            ),
            Role::Viewer,
        ),
    ];
    for (token, role) in cases {
        assert!(looks_like_jwt(&token));
        let p = v.verify(&token).unwrap();
        assert_eq!(p.credential, Credential::Jwt);
        assert_eq!((p.id.as_str(), p.name.as_str()), ("alice", "alice"));
        assert_eq!(p.role, role);
        assert_eq!(p.spacecraft, None);
        assert_eq!(p.actor(), "jwt:alice");
    }
    // An audience array that contains ours is accepted.
    let token = rs256(&with(claims(json!("viewer")), "aud", json!(["other", AUD])));
    assert_eq!(v.verify(&token).unwrap().role, Role::Viewer);
}

#[tokio::test]
async fn expiry_and_not_before_are_checked_with_a_leeway() {
    let v = verifier().await;
    let expired = rs256(&with(claims(json!("viewer")), "exp", json!(now() - 120)));
    assert!(refused(&v, &expired).contains("expired"));
    let just_expired = rs256(&with(claims(json!("viewer")), "exp", json!(now() - 10)));
    assert!(v.verify(&just_expired).is_ok(), "within the 30 s leeway");
    let no_exp = rs256(&without(claims(json!("viewer")), "exp"));
    assert!(refused(&v, &no_exp).contains("missing claim exp"));

    let early = rs256(&with(claims(json!("viewer")), "nbf", json!(now() + 120)));
    assert!(refused(&v, &early).contains("not valid yet"));
    let almost = rs256(&with(claims(json!("viewer")), "nbf", json!(now() + 10)));
    assert!(v.verify(&almost).is_ok(), "within the 30 s leeway");
}

#[tokio::test]
async fn issuer_and_audience_must_match() {
    let v = verifier().await;
    let wrong_iss = rs256(&with(
        claims(json!("admin")),
        "iss",
        json!("https://evil.test"),
    ));
    assert!(refused(&v, &wrong_iss).contains("wrong issuer"));
    let no_iss = rs256(&without(claims(json!("admin")), "iss"));
    assert!(refused(&v, &no_iss).contains("missing claim iss"));
    let wrong_aud = rs256(&with(claims(json!("admin")), "aud", json!("another-api")));
    assert!(refused(&v, &wrong_aud).contains("wrong audience"));
    let no_aud = rs256(&without(claims(json!("admin")), "aud"));
    assert!(refused(&v, &no_aud).contains("missing claim aud"));
}

#[tokio::test]
async fn unsigned_and_symmetric_tokens_are_refused() {
    let v = verifier().await;
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let payload = b64(&claims(json!("admin")));
    for alg in ["none", "None", "NONE"] {
        let header = b64(&json!({"alg": alg, "typ": "JWT", "kid": "rsa-1"}));
        let unsigned = format!("{header}.{payload}.");
        assert!(looks_like_jwt(&unsigned));
        assert!(refused(&v, &unsigned).contains("alg none"), "{alg}");
        // A signature borrowed from a real token does not help either.
        let real = rs256(&claims(json!("admin")));
        let borrowed = format!("{header}.{payload}.{}", real.rsplit('.').next().unwrap());
        assert!(refused(&v, &borrowed).contains("alg none"));
    }

    // HS256 keyed with the RSA public modulus (the classic confusion) or any secret.
    let jwks: Value =
        serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap();
    let modulus = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    for secret in [modulus.as_bytes(), b"a shared secret".as_slice()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let token = jsonwebtoken::encode(
            &header,
            &claims(json!("admin")),
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        let msg = refused(&v, &token);
        assert!(
            msg.contains("symmetric algorithm HS256 is not accepted"),
            "{msg}"
        );
    }

    let ps256 = sign(
        Algorithm::PS256,
        Some("rsa-1"),
        "rsa.pem",
        &claims(json!("admin")),
    );
    assert!(refused(&v, &ps256).contains("algorithm PS256 is not accepted"));
    let garbage = "eyJhbGciOi.eyJzdWIi.AAAA";
    assert!(refused(&v, garbage).contains("malformed header"));
    assert!(refused(&v, "only.two").contains("not a jwt"));
}

#[tokio::test]
async fn a_key_outside_the_jwks_or_of_another_algorithm_is_refused() {
    let v = verifier().await;
    let c = claims(json!("admin"));
    // Same kid, another key: the signature does not verify.
    let forged = sign(Algorithm::RS256, Some("rsa-1"), "rsa2.pem", &c);
    assert!(refused(&v, &forged).contains("bad signature"));
    let unknown = sign(Algorithm::RS256, Some("rsa-2"), "rsa2.pem", &c);
    assert!(refused(&v, &unknown).contains("no key with kid rsa-2"));
    let no_kid = sign(Algorithm::RS256, None, "rsa.pem", &c);
    assert!(refused(&v, &no_kid).contains("names no key (kid)"));

    // The header says ES256 but names the RSA key (and the other way round).
    let mismatch = sign(Algorithm::ES256, Some("rsa-1"), "ec.pem", &c);
    assert!(refused(&v, &mismatch).contains("does not match the key's RS256"));
    let mismatch = sign(Algorithm::RS256, Some("ed-1"), "rsa.pem", &c);
    assert!(refused(&v, &mismatch).contains("does not match the key's EdDSA"));

    // A tampered payload breaks the signature.
    let token = rs256(&claims(json!("viewer")));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(json!("admin"))).unwrap());
    assert!(refused(&v, &parts.join(".")).contains("bad signature"));
}

#[tokio::test]
async fn the_role_comes_from_its_claim() {
    let v = verifier().await;
    let missing = rs256(&without(claims(json!("x")), "mc_role"));
    assert!(refused(&v, &missing).contains("missing claim mc_role"));
    let unknown = rs256(&claims(json!("superuser")));
    assert!(refused(&v, &unknown).contains("unknown role superuser in claim mc_role"));
    let wrong_case = rs256(&claims(json!("Admin")));
    assert!(refused(&v, &wrong_case).contains("unknown role"));
    let number = rs256(&claims(json!(3)));
    assert!(refused(&v, &number).contains("must be a string or an array of strings"));
    let none_known = rs256(&claims(json!(["staff", "superuser", 7])));
    assert!(refused(&v, &none_known).contains("no known role in claim mc_role"));

    let highest = rs256(&claims(json!(["viewer", "staff", "operator", "producer"])));
    assert_eq!(v.verify(&highest).unwrap().role, Role::Operator);
    let admin = rs256(&claims(json!(["admin", "viewer"])));
    assert_eq!(v.verify(&admin).unwrap().role, Role::Admin);
}

#[tokio::test]
async fn a_producer_is_limited_to_the_spacecraft_of_its_claim() {
    let v = verifier().await;
    let bare = rs256(&claims(json!("producer")));
    assert!(refused(&v, &bare).contains("a producer needs the claim mc_spacecraft"));
    let empty = rs256(&with(claims(json!("producer")), "mc_spacecraft", json!([])));
    assert!(refused(&v, &empty).contains("names no spacecraft"));
    let bad = rs256(&with(
        claims(json!("producer")),
        "mc_spacecraft",
        json!(["sc-1", "no spaces!"]),
    ));
    assert!(refused(&v, &bad).contains("mc_spacecraft[1]"));

    let ok = rs256(&with(
        claims(json!("producer")),
        "mc_spacecraft",
        json!(["sc-2", "sc-1", "sc-2"]),
    ));
    let p = v.verify(&ok).unwrap();
    assert_eq!(p.role, Role::Producer);
    assert_eq!(
        p.spacecraft.as_deref(),
        Some(["sc-1".to_owned(), "sc-2".to_owned()].as_slice())
    );
    assert!(p.may_publish_for("sc-1").is_ok());
    assert!(p.may_publish_for("sc-3").is_err());
    let one = rs256(&with(
        claims(json!("producer")),
        "mc_spacecraft",
        json!("sc-9"),
    ));
    assert_eq!(
        v.verify(&one).unwrap().spacecraft,
        Some(vec!["sc-9".to_owned()])
    );

    // Other roles carry no spacecraft limit even when the claim is there.
    let op = rs256(&with(
        claims(json!("operator")),
        "mc_spacecraft",
        json!(["sc-1"]),
    ));
    assert_eq!(v.verify(&op).unwrap().spacecraft, None);
}

#[tokio::test]
async fn claim_names_are_configurable() {
    let mut cfg = config(JwksSource::File(fixture("jwks.json")));
    cfg.role_claim = "https://mc.example/roles".into();
    cfg.spacecraft_claim = "https://mc.example/spacecraft".into();
    let v = JwtVerifier::load(cfg).await.unwrap();
    let c = without(claims(json!("x")), "mc_role");
    let c = with(c, "https://mc.example/roles", json!(["producer"]));
    let c = with(c, "https://mc.example/spacecraft", json!(["sc-1"]));
    let p = v.verify(&rs256(&c)).unwrap();
    assert_eq!(
        (p.role, p.spacecraft),
        (Role::Producer, Some(vec!["sc-1".to_owned()]))
    );
    let default_name = rs256(&claims(json!("admin")));
    assert!(refused(&v, &default_name).contains("missing claim https://mc.example/roles"));
}

#[tokio::test]
async fn the_subject_is_required_and_clean() {
    let v = verifier().await;
    let missing = rs256(&without(claims(json!("admin")), "sub"));
    assert!(refused(&v, &missing).contains("missing claim sub"));
    let number = rs256(&with(claims(json!("admin")), "sub", json!(42)));
    assert!(refused(&v, &number).contains("missing claim sub"));
    let control = rs256(&with(claims(json!("admin")), "sub", json!("alice\nadmin")));
    assert!(refused(&v, &control).contains("control characters"));
    let blank = rs256(&with(claims(json!("admin")), "sub", json!(" alice")));
    assert!(refused(&v, &blank).contains("blanks"));
    let long = rs256(&with(claims(json!("admin")), "sub", json!("a".repeat(197))));
    assert!(refused(&v, &long).contains("sub longer than 196 characters"));
    let longest = rs256(&with(claims(json!("admin")), "sub", json!("a".repeat(196))));
    let p = v.verify(&longest).unwrap();
    assert_eq!(p.actor(), format!("jwt:{}", "a".repeat(196)));
}

#[test]
fn jwts_are_told_from_api_tokens() {
    let api = format!("mc_{}_{}", "a".repeat(32), "b".repeat(64));
    assert!(!looks_like_jwt(&api));
    assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
    for not in [
        "", "a.b", "a.b.c.d", "..", ".b.c", "a b.c.d", "a.b+/.c", "a.b.c=",
    ] {
        assert!(!looks_like_jwt(not), "{not:?}");
    }
}

#[tokio::test]
async fn a_jwks_without_usable_keys_or_unreadable_is_a_load_error() {
    let missing = fixture("no-such-jwks.json");
    let err = JwtVerifier::load(config(JwksSource::File(missing.clone())))
        .await
        .unwrap_err();
    assert!(matches!(err, JwtError::Jwks { .. }));
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("cannot read"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let not_json = write("bad.json", "{\"keys\": [");
    let err = JwtVerifier::load(config(JwksSource::File(not_json)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not a jwks json document"),
        "{err}"
    );

    let jwks: Value =
        serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap();
    let rsa = jwks["keys"][0].clone();
    let unusable = json!({"keys": [
        {"kty": "oct", "kid": "hs", "alg": "HS256", "k": "c2VjcmV0"},
        with(rsa.clone(), "alg", json!("RS384")),
        with(rsa.clone(), "use", json!("enc")),
        without(rsa.clone(), "kid"),
        with(with(rsa.clone(), "n", json!(URL_SAFE_NO_PAD.encode([0xc5u8; 128]))), "kid", json!("short")),
        {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AAAA", "y": "AAAA"},
    ]});
    let path = write("unusable.json", &unusable.to_string());
    let err = JwtVerifier::load(config(JwksSource::File(path)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no usable key"), "{err}");

    // A JWK without alg gets the one its type allows.
    let no_alg = json!({"keys": [without(jwks["keys"][1].clone(), "alg"), without(rsa, "alg")]});
    let path = write("no-alg.json", &no_alg.to_string());
    let v = JwtVerifier::load(config(JwksSource::File(path)))
        .await
        .unwrap();
    let token = sign(
        Algorithm::ES256,
        Some("ec-1"),
        "ec.pem",
        &claims(json!("viewer")),
    );
    assert_eq!(v.verify(&token).unwrap().role, Role::Viewer);
    assert!(v.verify(&rs256(&claims(json!("viewer")))).is_ok());
}

#[tokio::test]
async fn bad_configurations_are_refused() {
    let file = || JwksSource::File(fixture("jwks.json"));
    let mut cfgs = vec![
        config(JwksSource::Url("http://idp.example.test/jwks".into())),
        config(JwksSource::Url("ftp://127.0.0.1/jwks".into())),
        config(JwksSource::Url("not a url".into())),
        JwtConfig::new("", AUD, file()),
        JwtConfig::new(ISS, " ", file()),
    ];
    let mut long_leeway = config(file());
    long_leeway.leeway = Duration::from_secs(3600);
    cfgs.push(long_leeway);
    for cfg in cfgs {
        let err = JwtVerifier::load(cfg.clone()).await.unwrap_err();
        assert!(matches!(err, JwtError::Config(_)), "{cfg:?}: {err}");
    }
}

/// A one-route HTTP/1.1 server answering every request with the current status and body.
struct JwksServer {
    url: String,
    reply: Arc<Mutex<(u16, String)>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(body: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://user:pass@{}/realms/mc/certs?secret=1",
            listener.local_addr().unwrap()
        );
        let reply = Arc::new(Mutex::new((200, body)));
        let hits = Arc::new(AtomicUsize::new(0));
        let (reply2, hits2) = (Arc::clone(&reply), Arc::clone(&hits));
        let task = tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let (status, body) = reply2.lock().unwrap().clone();
                hits2.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(body.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Self {
            url,
            reply,
            hits,
            task,
        }
    }

    fn set(&self, status: u16, body: String) {
        *self.reply.lock().unwrap() = (status, body);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

#[tokio::test]
async fn a_jwks_url_is_fetched_and_refresh_picks_up_a_rotated_key() {
    let server = JwksServer::start(fixture_text("jwks.json")).await;
    let v = JwtVerifier::load(config(JwksSource::Url(server.url.clone())))
        .await
        .unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    let old = rs256(&claims(json!("admin")));
    let new = sign(
        Algorithm::RS256,
        Some("rsa-2"),
        "rsa2.pem",
        &claims(json!("admin")),
    );
    assert!(v.verify(&old).is_ok());
    assert!(refused(&v, &new).contains("no key with kid rsa-2"));

    // A failed refresh keeps the old keys, and its error names the url without credentials.
    server.set(500, "oops".into());
    let err = v.refresh().await.unwrap_err().to_string();
    assert!(err.contains("http status 500"), "{err}");
    assert!(
        err.contains("/realms/mc/certs") && !err.contains("pass") && !err.contains("secret"),
        "{err}"
    );
    server.set(200, "{\"keys\": []}".into());
    assert!(v
        .refresh()
        .await
        .unwrap_err()
        .to_string()
        .contains("no usable key"));
    assert!(v.verify(&old).is_ok());

    server.set(200, fixture_text("jwks-rotated.json"));
    v.refresh().await.unwrap();
    assert_eq!(v.key_ids(), ["ec-1", "rsa-2"]);
    assert!(v.verify(&new).is_ok());
    assert!(refused(&v, &old).contains("no key with kid rsa-1"));
    // Clones share the keys.
    assert!(v.clone().verify(&new).is_ok());
}

#[tokio::test]
async fn the_refresh_task_rotates_keys_until_cancelled() {
    let server = JwksServer::start(fixture_text("jwks.json")).await;
    let mut cfg = config(JwksSource::Url(server.url.clone()));
    cfg.refresh = Duration::from_secs(1);
    let v = JwtVerifier::load(cfg).await.unwrap();
    let new = sign(
        Algorithm::RS256,
        Some("rsa-2"),
        "rsa2.pem",
        &claims(json!("operator")),
    );
    let cancel = CancellationToken::new();
    let task = v.spawn_refresh(cancel.clone());
    server.set(200, fixture_text("jwks-rotated.json"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while v.verify(&new).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated key never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(v.verify(&new).unwrap().role, Role::Operator);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let hits = server.hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        hits,
        "no fetch after cancel"
    );
}
