//! A headless Chromium driven over the W3C WebDriver protocol (Debian's `chromium` and
//! `chromium-driver`, which `scripts/dev.sh test` installs): start a chromedriver on a free
//! port, open a session, navigate, run scripts, click. Stopped on drop.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    /// A fresh profile per browser, removed on drop.
    _profile: tempfile::TempDir,
    http: reqwest::Client,
    session: String,
}

fn binary(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} not found: install Debian's chromium and chromium-driver (scripts/dev.sh test does), \
         or set {var}"
    );
    path
}

impl Browser {
    pub async fn start() -> Self {
        let driver_bin = binary("MC_CHROMEDRIVER_BIN", "/usr/bin/chromedriver");
        let chromium = binary("MC_CHROMIUM_BIN", "/usr/bin/chromium");
        let port = mc_test_support::free_port();
        // Its own process group: dropping the browser kills chromedriver and every Chromium
        // process it started, even when the session could not be ended.
        let driver = Command::new(driver_bin)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        // No background traffic: this machine has no network but its registries.
        let profile = tempfile::tempdir().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1100", "--no-first-run", "--disable-quic",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.path().display())]},
            "goog:loggingPrefs": {"browser": "ALL"}}}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no webdriver session: {r}"))
            .to_owned();
        Self {
            driver,
            _profile: profile,
            http,
            session: format!("{base}/session/{session}"),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if !body.is_null() {
            request = request.json(&body);
        }
        let r: Value = request.send().await.unwrap().json().await.unwrap();
        if r["value"]["error"].is_string() {
            panic!("webdriver {path}: {}", r["value"]);
        }
        r["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    /// Run `script` (a function body; `arguments[i]` are `args`) and return its value.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Poll `script` until it returns true; the time it took. Panics after `within`.
    pub async fn wait_for(
        &self,
        what: &str,
        script: &str,
        args: Value,
        within: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            if self.eval(script, args.clone()).await == Value::Bool(true) {
                return started.elapsed();
            }
            if started.elapsed() >= within {
                let text = self
                    .eval(
                        "return document.body ? document.body.innerText.slice(0, 600) : ''",
                        json!([]),
                    )
                    .await;
                if let Ok(path) = std::env::var("MC_BROWSER_FAILURE_SCREENSHOT") {
                    let _ = std::fs::write(path, self.screenshot().await);
                }
                let log = self.console().await;
                panic!("{what}: not within {within:?}; the page says: {text}; console: {log}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The browser console so far (Chromium's log endpoint); `null` if it cannot be read.
    pub async fn console(&self) -> Value {
        let sent = self
            .http
            .post(format!("{}/se/log", self.session))
            .json(&json!({"type": "browser"}))
            .send()
            .await;
        match sent {
            Ok(r) => r.json::<Value>().await.unwrap_or_default()["value"].clone(),
            Err(_) => Value::Null,
        }
    }

    pub async fn click(&self, css: &str) {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned();
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    /// A PNG of the page.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let data = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap()
    }
}

/// `DELETE` the WebDriver session (chromedriver then quits Chromium), with std only: `Drop`
/// cannot await.
fn end_session(url: &str) -> std::io::Result<()> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    Ok(())
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = end_session(&self.session);
        // Then the whole group (chromedriver and any Chromium process left).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
