//! Talking to the HTTP API from the command line: the base URL and token arguments, GET with
//! problem documents turned into an error message, and plain-text tables.

use anyhow::Context as _;
use clap::Args;
use serde_json::Value;
use std::time::Duration;

#[derive(Args)]
pub struct ApiArgs {
    /// Base URL of the HTTP API.
    #[arg(long, env = "MC_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// An API token (viewer or above), sent as `Authorization: Bearer`. (Never printed.)
    #[arg(long, env = "MC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON answer as is.
    #[arg(long)]
    pub json: bool,
}

/// GET `path` from the API; a problem answer is printed (its `detail`) and exits 1.
pub async fn get(api: &ApiArgs, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
    let response = send(api, path, query, Some(Duration::from_secs(30))).await?;
    let body = response.bytes().await.context("read the API's answer")?;
    serde_json::from_slice(&body).context("the API's answer is not JSON")
}

/// GET `path` and copy the body to stdout as it arrives (an export of any length: no overall
/// timeout); a problem answer is printed and exits 1. Returns the bytes written.
pub async fn download(api: &ApiArgs, path: &str, query: &[(&str, String)]) -> anyhow::Result<u64> {
    use std::io::Write as _;
    let mut response = send(api, path, query, None).await?;
    let mut out = std::io::stdout().lock();
    let mut written = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .context("the API cut the export off (see the server's log); what came is above")?
    {
        out.write_all(&chunk).context("write to stdout")?;
        written += chunk.len() as u64;
    }
    out.flush().context("write to stdout")?;
    Ok(written)
}

/// Send a GET with the token; a non-success answer is printed (a problem's `detail`) and
/// exits 1.
async fn send(
    api: &ApiArgs,
    path: &str,
    query: &[(&str, String)],
    timeout: Option<Duration>,
) -> anyhow::Result<reqwest::Response> {
    let base = api.api_url.trim_end_matches('/');
    let mut client = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
    if let Some(t) = timeout {
        client = client.timeout(t);
    }
    let client = client.build().context("build the http client")?;
    let mut request = client.get(format!("{base}{path}")).query(query);
    if let Some(token) = &api.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.with_context(|| {
        format!("cannot reach the API at {base} (is `mission-control serve` running?)")
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.context("read the API's answer")?;
    let problem: Option<Value> = serde_json::from_slice(&body).ok();
    let detail = problem
        .as_ref()
        .and_then(|p| p.get("detail").or_else(|| p.get("title")))
        .and_then(Value::as_str)
        .map_or_else(
            || String::from_utf8_lossy(&body).into_owned(),
            str::to_owned,
        );
    eprintln!("error: {status}: {detail}");
    std::process::exit(1);
}

/// A JSON value as a table cell: strings without quotes.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn print_table(header: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header);
    for row in rows {
        line(row);
    }
}
