//! Identity and permissions end to end: every route of the router's own table against every
//! role, the actor written into events, revocation across instances, NATS command auth, producer
//! limits, JWTs from a JWKS, write limits, and malformed credentials.

use crate::helpers::{authorized, bearer_headers, config, issue_token, wait_ready, TestApp};
use mc_api::Application;
use mc_auth::table::{self, Access};
use mc_auth::Role;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A token per role (the producer may publish for SC-1 only).
async fn role_tokens(app: &TestApp) -> Vec<(Role, String)> {
    let mut out = Vec::new();
    for role in Role::ALL {
        let spacecraft: &[&str] = if role == Role::Producer {
            &["SC-1"]
        } else {
            &[]
        };
        let token = issue_token(&app.nats.url(), role.as_str(), role.as_str(), spacecraft).await;
        crate::helpers::wait_accepted(&authorized(&token), &app.url("/agents")).await;
        out.push((role, token));
    }
    out
}

/// A concrete URL for a route path (`{id}` → a fresh uuid, `{name}` → a projection).
fn concrete(app: &TestApp, path: &str) -> String {
    let path = path
        .replace("{id}", &uuid::Uuid::now_v7().to_string())
        .replace("{name}", "comments")
        .replace("{*path}", "openmct.js");
    format!("{}{path}", app.base)
}

async fn call(http: &reqwest::Client, method: &str, url: &str) -> reqwest::Response {
    http.request(method.parse().unwrap(), url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_anonymous_and_lesser_roles_and_admits_its_role() {
    let app = TestApp::spawn().await;
    let tokens = role_tokens(&app).await;
    let routes = mc_api::route_table();
    // The table and the router agree both ways: no route without a rule, no stale rule.
    for rule in table::HTTP {
        assert!(
            routes
                .iter()
                .any(|r| r.method == rule.method && r.path == rule.path),
            "rule {} {} names no route",
            rule.method,
            rule.path
        );
    }
    let anonymous = reqwest::Client::new();
    for route in &routes {
        let method = route.method.as_str();
        let access = table::http(method, &route.path)
            .unwrap_or_else(|| panic!("{method} {} has no rule", route.path));
        let url = concrete(&app, &route.path);
        let what = format!("{method} {}", route.path);
        let r = call(&anonymous, method, &url).await;
        let Access::Needs(required) = access else {
            // Open: no credentials asked (Open MCT's files answer 404 when it is not installed).
            let status = r.status().as_u16();
            assert!(
                status < 400 || (status == 404 && route.path.contains("{*path}")),
                "{what} is open: {status}"
            );
            continue;
        };
        assert_eq!(r.status(), 401, "{what} anonymous");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        for (role, token) in &tokens {
            let r = call(&authorized(token), method, &url).await;
            let status = r.status().as_u16();
            if role.satisfies(required) {
                assert!(
                    ![401, 403, 429, 500].contains(&status),
                    "{what} as {role}: {status} {}",
                    r.text().await.unwrap()
                );
            } else {
                let body: Value = r.json().await.unwrap();
                assert_eq!(status, 403, "{what} as {role}: {body}");
                assert_eq!(body["requiredRole"], required.as_str(), "{what}: {body}");
                assert!(body["detail"].as_str().unwrap().contains(required.as_str()));
            }
        }
    }
}

#[tokio::test]
async fn events_carry_the_authenticated_principal_not_a_claimed_actor() {
    let app = TestApp::spawn().await;
    let token = issue_token(&app.nats.url(), "alice-ops", "operator", &[]).await;
    let http = authorized(&token);
    crate::helpers::wait_accepted(&http, &app.url("/agents")).await;
    let r: Value = http
        .post(app.url("/agents"))
        .header("X-Actor", "mallory")
        .json(&json!({"name": "rover"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let position = r["position"].as_u64().unwrap();
    // Over NATS, the same principal; an `actor` field is refused.
    let client = app.nats.client().await;
    let reply = client
        .request_with_headers(
            "mc.cmd.agent.change-status",
            bearer_headers(&token),
            json!({"id": r["id"], "status": "BUSY", "actor": "mallory"})
                .to_string()
                .into(),
        )
        .await
        .unwrap();
    let refused: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(refused["error"]["errors"][0]["field"], "actor", "{refused}");
    let reply = client
        .request_with_headers(
            "mc.cmd.agent.change-status",
            bearer_headers(&token),
            json!({"id": r["id"], "status": "BUSY"}).to_string().into(),
        )
        .await
        .unwrap();
    let done: Value = serde_json::from_slice(&reply.payload).unwrap();
    let last = done["position"].as_u64().unwrap();
    app.wait_projection("archive", last).await;
    let token_id = mc_auth::tokens::parse(&token).unwrap().id;
    let actors: Vec<(String,)> = sqlx::query_as(
        "SELECT metadata->>'actor' FROM events WHERE position IN ($1, $2) ORDER BY position",
    )
    .bind(position as i64)
    .bind(last as i64)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let expected = format!("token:{token_id}/alice-ops");
    assert_eq!(actors, [(expected.clone(),), (expected,)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_working_on_a_second_instance_within_a_second() {
    let app = TestApp::spawn().await;
    // A second API instance on the same NATS and database (projectors run in the first).
    let mut cfg = config(
        app.nats.url(),
        app.db.url().to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    );
    cfg.run_projectors = false;
    let second = Application::build(cfg).await.unwrap();
    let other = format!("http://127.0.0.1:{}/api/v1", second.port());
    let shutdown = CancellationToken::new();
    let _server = tokio::spawn(second.run(shutdown.clone()));
    wait_ready(&app.http, &other.replace("/api/v1", "")).await;
    // Issued over HTTP on the first instance; the secret is in the answer once.
    let (status, issued) = app
        .post("/tokens", json!({"name": "temp", "role": "viewer"}))
        .await;
    assert_eq!(status, 201, "{issued}");
    let holder = authorized(issued["token"].as_str().unwrap());
    crate::helpers::wait_accepted(&holder, &format!("{other}/agents")).await;
    let listed = app.get_json("/tokens").await.1;
    let row = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == issued["id"])
        .unwrap()
        .clone();
    assert_eq!(
        (row["role"].as_str(), row["revoked"].as_bool()),
        (Some("viewer"), Some(false))
    );
    assert!(!listed
        .to_string()
        .contains(issued["token"].as_str().unwrap()));
    let r = app
        .http
        .delete(app.url(&format!("/tokens/{}", issued["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let revoked_at = Instant::now();
    loop {
        let r = holder.get(format!("{other}/agents")).send().await.unwrap();
        if r.status() == 401 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["detail"], "token revoked", "{body}");
            eprintln!(
                "revocation refused on the second instance after {:?}",
                revoked_at.elapsed()
            );
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "the second instance still accepts a token revoked {:?} ago",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
}

#[tokio::test]
async fn nats_commands_need_a_valid_token_with_the_role() {
    let app = TestApp::spawn().await;
    let viewer = issue_token(&app.nats.url(), "watcher", "viewer", &[]).await;
    let client = app.nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let head = || async {
        js.get_stream("MC_EVENTS")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .last_sequence
    };
    let before = head().await;
    let body = json!({"name": "sneaky"}).to_string();
    let ask = |headers: async_nats::HeaderMap| {
        let client = client.clone();
        let body = body.clone();
        async move {
            let reply = client
                .request_with_headers("mc.cmd.agent.register", headers, body.into())
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&reply.payload).unwrap()
        }
    };
    let mut garbage = async_nats::HeaderMap::new();
    garbage.insert("Authorization", "Basic dXNlcjpwYXNz");
    for (headers, status) in [
        (async_nats::HeaderMap::new(), 401),
        (garbage, 401),
        (
            bearer_headers(&format!("mc_{}_{}", "a".repeat(32), "b".repeat(64))),
            401,
        ),
        (bearer_headers(&viewer), 403),
    ] {
        let r = ask(headers).await;
        assert_eq!(
            (r["ok"].as_bool(), r["error"]["status"].as_u64()),
            (Some(false), Some(status)),
            "{r}"
        );
    }
    assert_eq!(head().await, before, "a refused command appends nothing");
    let r = ask(app.nats_headers()).await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test]
async fn a_producer_publishes_only_for_its_own_spacecraft() {
    let app = TestApp::spawn().await;
    let token = issue_token(&app.nats.url(), "sc1-feed", "producer", &["SC-1"]).await;
    let producer = authorized(&token);
    crate::helpers::wait_accepted(&producer, &app.url("/agents")).await;
    let sample = |sc: &str| json!({"spacecraftId": sc, "timestamp": 1_700_000_000_000i64, "parameters": {"t": 1}});
    let r = producer
        .post(app.url("/telemetry"))
        .json(&sample("SC-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // One foreign snapshot refuses the whole batch.
    let r = producer
        .post(app.url("/telemetry"))
        .json(&json!([sample("SC-1"), sample("SC-2")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("SC-2"), "{body}");
    // Ingest only: no reads, no commands.
    for (method, path) in [("GET", "/agents"), ("POST", "/missions")] {
        let r = call(&producer, method, &app.url(path)).await;
        assert_eq!(r.status(), 403, "{method} {path}");
    }
    let js = async_nats::jetstream::new(app.nats.client().await);
    let stored = js
        .get_stream("MC_TELEMETRY")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    assert_eq!(stored, 1, "only the allowed snapshot was published");
}

#[tokio::test]
async fn malformed_unknown_and_expired_credentials_get_401_with_a_reason() {
    let app = TestApp::spawn().await;
    let good = app.token.clone();
    let mut wrong_secret = good.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == '0' { '1' } else { '0' });
    let cases = [
        ("Basic dXNlcjpwYXNz".to_owned(), "malformed"),
        ("Bearer".to_owned(), "malformed"),
        ("Bearer ".to_owned() + &"x".repeat(10_000), "too long"),
        ("Bearer mc_nothex_00".to_owned(), "mc_<id>_<secret>"),
        (
            "Bearer eyJhbGciOiJub25lIn0.e30.".to_owned(),
            "no jwt issuer",
        ),
        (format!("Bearer {wrong_secret}"), "unknown token"),
    ];
    for (header, reason) in cases {
        let r = reqwest::Client::new()
            .get(app.url("/agents"))
            .header("Authorization", &header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header:.40}");
        let body = r.text().await.unwrap();
        assert!(body.contains(reason), "{header:.40}: {body}");
        assert!(
            !body.contains(&good[36..]),
            "a problem document repeats a secret"
        );
    }
    // Expiry: issued for one second.
    let (status, issued) = app
        .post(
            "/tokens",
            json!({"name": "brief", "role": "viewer",
                   "expiresAt": (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let brief = authorized(issued["token"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = brief.get(app.url("/agents")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("expired"));
    // Bad requests to issue tokens change nothing.
    let (status, problem) = app
        .post(
            "/tokens",
            json!({"name": "x", "role": "root", "spacecraft": ["bad id!"]}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["role", "spacecraft[0]"]);
}

#[tokio::test]
async fn writes_past_the_principal_limit_get_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.auth.writes = mc_auth::limits::RateLimit {
            rate: 0.5,
            burst: 2,
        };
    })
    .await;
    for i in 0..2 {
        let (s, _) = app.create_agent(json!({"name": format!("a{i}")})).await;
        assert_eq!(s, 201);
    }
    let r = app
        .http
        .post(app.url("/agents"))
        .json(&json!({"name": "a2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // Reads are not limited.
    let r = app.http.get(app.url("/agents")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The JWT fixtures of `mc-auth`'s tests (test-only keys).
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../auth/tests/fixtures")
        .join(name)
}

#[tokio::test]
async fn jwts_of_the_configured_issuer_name_the_principal_and_its_role() {
    let app = TestApp::spawn_with(|c| {
        let mut jwt = mc_auth::jwt::JwtConfig::new(
            "https://idp.test",
            "mission-control",
            mc_auth::jwt::JwksSource::File(fixture("jwks.json")),
        );
        jwt.leeway = Duration::from_secs(0);
        c.auth.jwt = Some(jwt);
    })
    .await;
    let pem = std::fs::read(fixture("rsa.pem")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
    let sign = |claims: Value| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("rsa-1".into());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    let claims = |role: &str, iss: &str, exp: i64| json!({"iss": iss, "aud": "mission-control", "sub": "carol@example.org", "mc_role": role, "exp": exp, "iat": now});
    let operator = authorized(&sign(claims("operator", "https://idp.test", now + 300)));
    let r: Value = operator
        .post(app.url("/missions"))
        .json(&json!({"title": "by jwt"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let position = r["position"].as_u64().expect("created");
    app.wait_projection("archive", position).await;
    let (actor,): (String,) =
        sqlx::query_as("SELECT metadata->>'actor' FROM events WHERE position = $1")
            .bind(position as i64)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(actor, "jwt:carol@example.org");
    // A viewer may read, not write.
    let viewer = authorized(&sign(claims("viewer", "https://idp.test", now + 300)));
    assert_eq!(
        viewer
            .get(app.url("/missions"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        call(&viewer, "POST", &app.url("/missions")).await.status(),
        403
    );
    // Expired, another issuer: 401 naming the reason.
    for (token, reason) in [
        (
            sign(claims("admin", "https://idp.test", now - 60)),
            "expired",
        ),
        (
            sign(claims("admin", "https://evil.test", now + 300)),
            "issuer",
        ),
    ] {
        let r = authorized(&token)
            .get(app.url("/missions"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let body = r.text().await.unwrap();
        assert!(body.contains(reason), "{body}");
    }
}
