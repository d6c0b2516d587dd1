//! Test harness: spawn the application on port 0 with its own NATS and database.

use mc_api::{Application, Config};
use mc_test_support::{NatsServer, TestDb};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Events the harness appends before a test starts: the admin token's `token.issued`.
pub const SETUP_EVENTS: u64 = 1;

pub struct TestApp {
    pub nats: NatsServer,
    pub db: TestDb,
    pub base: String,
    /// Sends the admin token on every request (`anonymous()` sends none).
    pub http: reqwest::Client,
    /// An admin API token, issued before the first start.
    pub token: String,
    shutdown: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
    tweak: fn(&mut Config),
}

pub fn config(nats_url: String, database_url: String, http_addr: SocketAddr) -> Config {
    Config {
        nats_url,
        nats_auth: Default::default(),
        // No write limit: tests burst as they need; the limit has its own test.
        auth: mc_auth::AuthConfig {
            jwt: None,
            writes: mc_auth::limits::RateLimit {
                rate: 0.0,
                burst: 0,
            },
        },
        backups: mc_api::BackupSettings {
            dir: std::env::temp_dir().join(format!("mc-e2e-backups-{}", uuid::Uuid::now_v7())),
            ..Default::default()
        },
        sweepers: true,
        // Agents in a test are silent for its whole length: only the liveness test shortens this.
        liveness: mc_fleet::LivenessConfig {
            offline_after: Duration::from_secs(3600),
            ..Default::default()
        },
        openmct_dir: None,
        database_url,
        migrator_database_url: None,
        http_addr,
        http_limits: mc_api::HttpLimits::default(),
        stream_replicas: 1,
        telemetry_max_age: Duration::from_secs(3600),
        read_wait: Duration::from_secs(5),
        run_projectors: true,
        serve_nats_commands: true,
        migrate_on_start: true,
        skip_poison: Vec::new(),
        ready_max_lag: None,
        ready_stall: Duration::from_secs(60),
        // A short store window: tests wait for each batch (the binary tests keep the default).
        telemetry: mc_telemetry::TelemetryConfig {
            store_window: std::time::Duration::from_millis(20),
            ..mc_telemetry::TelemetryConfig::default()
        },
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawn with a configuration tweak (kept for restarts).
    pub async fn spawn_with(tweak: fn(&mut Config)) -> Self {
        let nats = NatsServer::start().await;
        let token = issue_token(&nats.url(), "test-admin", "admin", &[]).await;
        let mut test_app = Self {
            tweak,
            nats,
            db: TestDb::new().await,
            base: String::new(),
            http: authorized(&token),
            token,
            shutdown: CancellationToken::new(),
            server: None,
        };
        test_app.start().await;
        test_app
    }

    /// Start a new server process-equivalent on the same NATS and database.
    pub async fn start(&mut self) {
        self.start_on("127.0.0.1:0".parse().unwrap()).await;
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    /// Start on `addr` (the same port again after a stop: clients reconnect to it).
    pub async fn start_on(&mut self, addr: SocketAddr) {
        // Served as production serves: an `mc_app` login, DDL through the migrator's.
        let mut cfg = config(self.nats.url(), self.db.app_url().to_owned(), addr);
        cfg.migrator_database_url = Some(self.db.url().to_owned());
        (self.tweak)(&mut cfg);
        let app = Application::build(cfg).await.expect("build application");
        self.base = format!("http://127.0.0.1:{}", app.port());
        self.shutdown = CancellationToken::new();
        self.server = Some(tokio::spawn(app.run(self.shutdown.clone())));
        wait_ready(&self.http, &self.base).await;
    }

    /// NATS headers carrying the admin token (`Authorization: Bearer …`).
    pub fn nats_headers(&self) -> async_nats::HeaderMap {
        bearer_headers(&self.token)
    }

    /// Run `mission-control <args>` off the async runtime against this server (its NATS, API
    /// and admin token; `env` on top).
    pub async fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mission-control"));
        command
            .args(args)
            .env("MC_NATS_URL", self.nats.url())
            .env("MC_API_URL", &self.base)
            .env("MC_TOKEN", &self.token)
            .env("MC_LOG", "warn")
            .envs(env.iter().copied());
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// POST an agent; returns (status, body).
    pub async fn create_agent(&self, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/agents"))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Wait until projection `name` has applied `position` (10 s at most).
    pub async fn wait_projection(&self, name: &str, position: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if mc_projection::load_checkpoint(&self.db.pool, name)
                .await
                .unwrap()
                >= position
            {
                return;
            }
            assert!(Instant::now() < deadline, "{name} never reached {position}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Issue an API token straight into the log (as `mission-control tokens create` does),
/// provisioning the streams if needed; returns the secret.
pub async fn issue_token(nats_url: &str, name: &str, role: &str, spacecraft: &[&str]) -> String {
    let client = async_nats::connect(nats_url).await.unwrap();
    issue_token_on(client, name, role, spacecraft).await
}

/// [`issue_token`] over a given connection (a server that requires a login).
pub async fn issue_token_on(
    client: async_nats::Client,
    name: &str,
    role: &str,
    spacecraft: &[&str],
) -> String {
    let log = mc_eventlog::EventLog::new(client);
    if log.jetstream().get_stream("MC_EVENTS").await.is_err() {
        // A server starting at the same time may provision its own way first: fine, as long
        // as MC_EVENTS exists afterwards.
        if let Err(e) = mc_eventlog::streams::provision(log.jetstream(), &Default::default()).await
        {
            assert!(
                log.jetstream().get_stream("MC_EVENTS").await.is_ok(),
                "cannot provision the streams: {e}"
            );
        }
    }
    let service = mc_commands::TokenService::new(mc_commands::Handler::new(log));
    let new = mc_auth::tokens::NewToken {
        name: name.into(),
        role: role.into(),
        spacecraft: spacecraft.iter().map(|s| (*s).to_owned()).collect(),
        expires_at: None,
    };
    let ctx = mc_commands::CommandContext::new("test:setup", None);
    let (secret, _) = mc_auth::tokens::issue(&service, &ctx, new).await.unwrap();
    secret.expose().to_owned()
}

/// An HTTP client that sends `token` on every request.
pub fn authorized(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// NATS headers carrying `token`.
pub fn bearer_headers(token: &str) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Authorization", format!("Bearer {token}").as_str());
    headers
}

/// Poll GET `url` until the server knows the client's token (not 401; 5 s at most): a token
/// issued while the server runs reaches its token table within milliseconds.
pub async fn wait_accepted(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = http.get(url).send().await.unwrap().status();
        if status != reqwest::StatusCode::UNAUTHORIZED {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: the token never became known"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll `/health/ready` until 200 (20 s at most).
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{base}/health/ready")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "server at {base} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `mission-control serve` binary as a child process.
pub fn spawn_binary(nats_url: &str, database_url: &str, http_addr: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mission-control"))
        .arg("serve")
        .env("MC_NATS_URL", nats_url)
        .env("MC_DATABASE_URL", database_url)
        .env("MC_HTTP_ADDR", http_addr)
        // Bursts are the point of these tests; the write limit has its own test.
        .env("MC_WRITE_RATE", "0")
        .env("MC_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mission-control")
}

/// A child process killed (SIGKILL) when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A one-event commit written straight to the log, bypassing the domain (for poison tests):
/// a new aggregate id, version 1, actor `test:poison`.
pub fn raw_commit(
    aggregate_type: &str,
    event_type: &str,
    payload: serde_json::Value,
) -> mc_eventlog::Commit {
    mc_eventlog::Commit {
        aggregate_type: aggregate_type.into(),
        aggregate_id: uuid::Uuid::now_v7().to_string(),
        meta: mc_eventlog::CommitMeta {
            command_id: uuid::Uuid::now_v7(),
            correlation_id: uuid::Uuid::now_v7(),
            causation_id: None,
            actor: "test:poison".into(),
            occurred_at: chrono::Utc::now(),
        },
        events: vec![mc_eventlog::StoredEvent {
            event_id: uuid::Uuid::now_v7(),
            aggregate_version: 1,
            event_type: event_type.into(),
            schema_version: 1,
            payload,
        }],
    }
}
