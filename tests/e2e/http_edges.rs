//! The HTTP edge against a real server: slow clients cut off by the header and body
//! timeouts (and graceful shutdown still finishing a request in flight), problem documents
//! for 404/405/413, one status for malformed bodies, 422 for bad cursors and filters, and
//! commands failing fast while NATS is down.

use crate::helpers::{config, wait_ready, TestApp};
use mc_api::{Application, HttpLimits};
use mc_test_support::{NatsServer, TestDb};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server with short read timeouts (the defaults are 10 s and 30 s).
struct Edge {
    nats: NatsServer,
    /// An admin token for raw requests.
    token: String,
    state: mc_api::AppState,
    _db: TestDb,
    addr: String,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

const LIMITS: HttpLimits = HttpLimits {
    header_timeout: Duration::from_millis(700),
    body_timeout: Duration::from_millis(700),
    max_connections: 4,
};

async fn edge() -> Edge {
    let nats = NatsServer::start().await;
    let token = crate::helpers::issue_token(&nats.url(), "test-admin", "admin", &[]).await;
    let db = TestDb::new().await;
    let cfg = config(
        nats.url(),
        db.url().to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    );
    let app = Application::build(cfg)
        .await
        .expect("build application")
        .with_http_limits(LIMITS);
    let addr = format!("127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    wait_ready(&reqwest::Client::new(), &format!("http://{addr}")).await;
    Edge {
        nats,
        token,
        state,
        _db: db,
        addr,
        shutdown,
        server,
    }
}

/// Everything the server sends until it closes the connection (at most `wait`).
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

/// The JSON body of a raw HTTP/1.1 answer.
fn body_of(raw: &str) -> Value {
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_slow_body_gets_408_and_the_connection_closes() {
    let edge = edge().await;
    let mut s = TcpStream::connect(&edge.addr).await.unwrap();
    let started = Instant::now();
    let head = format!(
        "POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nContent-Length: 100\r\n\r\n{{",
        edge.token
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let raw = read_until_closed(&mut s, Duration::from_secs(10))
        .await
        .expect("the server held a one-byte body for 10 s");
    let took = started.elapsed();
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("application/problem+json"),
        "{raw}"
    );
    assert_eq!(body_of(&raw)["code"], "request-timeout");
    assert!(took >= LIMITS.body_timeout, "cut off after {took:?}");
    assert!(took < Duration::from_secs(5), "cut off only after {took:?}");
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let edge = edge().await;
    let mut held = Vec::new();
    for _ in 0..LIMITS.max_connections {
        held.push(TcpStream::connect(&edge.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The kernel completes the handshake (backlog); the server does not take the connection.
    let mut fifth = TcpStream::connect(&edge.addr).await.unwrap();
    fifth
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), fifth.read(&mut byte)).await;
    assert!(early.is_err(), "a connection past the cap was served");
    drop(held);
    let raw = read_until_closed(&mut fifth, Duration::from_secs(5))
        .await
        .expect("never served once the others closed");
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let edge = edge().await;
    let mut s = TcpStream::connect(&edge.addr).await.unwrap();
    let started = Instant::now();
    s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    read_until_closed(&mut s, Duration::from_secs(10))
        .await
        .expect("the server held half a request head for 10 s");
    let took = started.elapsed();
    assert!(took >= LIMITS.header_timeout, "closed after {took:?}");
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
}

#[tokio::test]
async fn shutdown_finishes_a_request_in_flight() {
    let edge = edge().await;
    let mut s = TcpStream::connect(&edge.addr).await.unwrap();
    let body = br#"{"name": "in-flight"}"#;
    let head = format!(
        "POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        edge.token,
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    edge.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(&body[5..]).await.unwrap();
    let raw = read_until_closed(&mut s, Duration::from_secs(10))
        .await
        .expect("no answer after shutdown");
    assert!(raw.starts_with("HTTP/1.1 201"), "{raw}");
    tokio::time::timeout(Duration::from_secs(10), edge.server)
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn framework_errors_are_problem_documents() {
    let app = TestApp::spawn().await;
    let problem = |r: &reqwest::Response| {
        r.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned()
    };

    for path in ["/nope", "/api/v1/nope", "/api/v1/agents/x/y"] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(problem(&r), "application/problem+json", "{path}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "not-found");
    }

    let r = app.http.put(app.url("/agents")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(problem(&r), "application/problem+json");
    let allow = r.headers()[reqwest::header::ALLOW]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "method-not-allowed", "{body}");

    // 10 MB of telemetry (limit 8 MiB) and 300 KB of agent (limit 256 KiB): refused from the
    // declared length, before the body is read.
    let port = app.base.rsplit(':').next().unwrap();
    for (path, length, limit) in [
        ("/api/v1/telemetry", 10 * 1024 * 1024, 8 * 1024 * 1024),
        ("/api/v1/agents", 300 * 1024, 256 * 1024),
    ] {
        let mut s = TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {}\r\nContent-Length: {length}\r\n\r\n[{{",
            app.token
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let raw = read_until_closed(&mut s, Duration::from_secs(10))
            .await
            .expect("no answer to an oversized body");
        assert!(raw.starts_with("HTTP/1.1 413"), "{path}: {raw}");
        assert!(
            raw.to_ascii_lowercase()
                .contains("application/problem+json"),
            "{raw}"
        );
        let body = body_of(&raw);
        assert_eq!(body["code"], "payload-too-large", "{raw}");
        assert_eq!(body["limit"], limit, "{raw}");
    }
}

#[tokio::test]
async fn truncated_json_is_400_on_every_route() {
    let app = TestApp::spawn().await;
    let id = uuid::Uuid::now_v7();
    let routes = [
        ("POST", "/agents".to_owned()),
        ("PATCH", format!("/agents/{id}")),
        ("POST", "/missions".to_owned()),
        ("PATCH", format!("/missions/{id}")),
        ("POST", "/comments".to_owned()),
        ("PATCH", format!("/comments/{id}")),
        ("POST", "/spacecraft".to_owned()),
        ("PUT", "/spacecraft/SC-1/config".to_owned()),
        ("POST", "/telemetry".to_owned()),
        ("POST", format!("/alarms/{id}/acknowledge")),
        ("POST", format!("/alarms/{id}/clear")),
        ("POST", format!("/alarms/{id}/shelve")),
        ("POST", format!("/alarms/{id}/unshelve")),
    ];
    // Cut after a complete unknown key, inside a string, after a value of the wrong type.
    let truncated = [
        r#"{"bogus": 1, "na"#,
        r#"{"name": "abc"#,
        r#"{"name": 1, "#,
        "{",
    ];
    for (method, path) in &routes {
        for body in truncated {
            let r = app
                .http
                .request(method.parse().unwrap(), app.url(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let problem: Value = r.json().await.unwrap();
            assert_eq!(status, 400, "{method} {path} {body}: {problem}");
            assert_eq!(problem["code"], "malformed-json", "{method} {path} {body}");
        }
    }
    // Well-formed JSON with an unknown field stays a 422 naming it.
    let (status, body) = app.create_agent(json!({"name": "a", "bogus": 1})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "bogus");
}

#[tokio::test]
async fn bad_cursors_and_filter_values_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/agents?cursor=zzz", "cursor"),
        ("/agents?status=SLEEPY", "status"),
        ("/missions?cursor=1.2.3", "cursor"),
        ("/missions?status=DONE", "status"),
        ("/missions?priority=NOW", "priority"),
        ("/missions?agentId=x", "agentId"),
        ("/comments?cursor=zzz", "cursor"),
        ("/comments?type=SHOUT", "type"),
        ("/spacecraft?cursor=not%20an%20id", "cursor"),
        ("/spacecraft?cursor=..%2F", "cursor"),
        ("/telemetry?spacecraftId=SC-1&cursor=junk", "cursor"),
        ("/telemetry?spacecraftId=SC-1&cursor=1.2.3", "cursor"),
        (
            "/telemetry?spacecraftId=SC-1&cursor=1700000000000000.0.-1",
            "cursor",
        ),
        (
            "/telemetry/rollups?spacecraftId=SC-1&parameter=p&cursor=x",
            "cursor",
        ),
        ("/alarms?cursor=1.2", "cursor"),
        ("/alarms?state=ASLEEP", "state"),
        ("/alarms?severity=MILD", "severity"),
        ("/alarms?kind=ODD", "kind"),
    ];
    for (path, field) in cases {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{path}: {body}");
    }

    // The cursors the API hands out still work.
    let mut registered = 0;
    for id in ["SC-A", "SC-B"] {
        let r = app
            .http
            .post(app.url("/spacecraft"))
            .json(&json!({"id": id, "name": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        registered = r.json::<Value>().await.unwrap()["position"]
            .as_u64()
            .unwrap();
    }
    let r = app
        .http
        .post(app.url("/telemetry"))
        .json(&json!([
            {"spacecraftId": "SC-A", "timestamp": chrono::Utc::now().timestamp_millis() - 1000, "parameters": {"p": 1}},
            {"spacecraftId": "SC-A", "timestamp": chrono::Utc::now().timestamp_millis(), "parameters": {"p": 2}},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let position = r.json::<Value>().await.unwrap()["position"]
        .as_u64()
        .unwrap();
    let page = |path: String| {
        let http = app.http.clone();
        async move {
            let r = http.get(path).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let first = page(app.url(&format!("/spacecraft?limit=1&minPosition={registered}"))).await;
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second = page(app.url(&format!("/spacecraft?limit=1&cursor={cursor}"))).await;
    assert_eq!(second["items"][0]["id"], "SC-B", "{second}");
    let first = page(app.url(&format!(
        "/telemetry?spacecraftId=SC-A&limit=1&minPosition={position}"
    )))
    .await;
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second = page(app.url(&format!(
        "/telemetry?spacecraftId=SC-A&limit=1&cursor={cursor}"
    )))
    .await;
    assert_eq!(second["items"][0]["parameters"]["p"], 1, "{second}");
}

#[tokio::test]
async fn commands_fail_fast_while_nats_is_down() {
    let mut edge = edge().await;
    let http = crate::helpers::authorized(&edge.token);
    let url = |path: &str| format!("http://{}/api/v1{path}", edge.addr);
    edge.nats.kill();
    // Once the client knows the server is gone, a command must not wait for a publish timeout.
    let deadline = Instant::now() + Duration::from_secs(10);
    while edge.state.nats.connection_state() == async_nats::connection::State::Connected {
        assert!(
            Instant::now() < deadline,
            "the client never noticed NATS was gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let r = http
        .post(url("/agents"))
        .json(&json!({"name": "too-soon"}))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(took < Duration::from_secs(2), "503 only after {took:?}");
    // Queries read Postgres and go on answering.
    let r = http.get(url("/agents")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A TCP relay to Postgres that the test can cut: new connections are refused and open ones
/// dropped, as when the database host goes away.
struct CuttableRelay {
    addr: std::net::SocketAddr,
    cut: CancellationToken,
}

impl CuttableRelay {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = CancellationToken::new();
        let stop = cut.clone();
        tokio::spawn(async move {
            loop {
                let (mut client, _) = tokio::select! {
                    () = stop.cancelled() => return,
                    a = listener.accept() => a.unwrap(),
                };
                let target = target.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        () = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        Self { addr, cut }
    }
}

#[tokio::test]
async fn queries_fail_fast_while_postgres_is_down() {
    let nats = NatsServer::start().await;
    // Issued before the server starts (and provisions the streams its own way).
    let token = crate::helpers::issue_token(&nats.url(), "test-admin", "admin", &[]).await;
    let db = TestDb::new().await;
    // The database URL, pointed through the relay.
    let url = reqwest::Url::parse(db.url()).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let relay = CuttableRelay::start(target).await;
    let mut relayed = url.clone();
    relayed.set_port(Some(relay.addr.port())).unwrap();
    relayed.set_host(Some("127.0.0.1")).unwrap();
    let cfg = config(
        nats.url(),
        relayed.to_string(),
        "127.0.0.1:0".parse().unwrap(),
    );
    let app = Application::build(cfg).await.expect("build application");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let _server = tokio::spawn(app.run(shutdown.clone()));
    let http = crate::helpers::authorized(&token);
    wait_ready(&http, &base).await;
    let r = http
        .get(format!("{base}/api/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    relay.cut.cancel();
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.is_postgres_up() {
        assert!(
            Instant::now() < deadline,
            "the server never noticed Postgres was gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let r = http
        .get(format!("{base}/api/v1/agents"))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("postgres"),
        "{body}"
    );
    assert!(took < Duration::from_secs(1), "503 only after {took:?}");
    // Readiness and the projection list answer promptly too.
    for path in ["/health/ready", "/api/v1/projections"] {
        let started = Instant::now();
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 503, "{path}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{path} took {took:?}");
    }
    shutdown.cancel();
}
