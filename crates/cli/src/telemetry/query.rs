//! `telemetry list` and `telemetry analyze`: read telemetry back through the HTTP API and print
//! it as a table (or the JSON answer with `--json`).

use super::{AnalyzeArgs, ApiArgs, ListArgs};
use anyhow::Context as _;
use serde_json::Value;
use std::time::Duration;

/// GET `path` from the API; a problem answer is printed (its `detail`) and exits 1.
async fn get(api: &ApiArgs, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
    let base = api.api_url.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("build the http client")?;
    let mut request = client.get(format!("{base}{path}")).query(query);
    if let Some(token) = &api.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.with_context(|| {
        format!("cannot reach the API at {base} (is `mission-control serve` running?)")
    })?;
    let status = response.status();
    let body = response.bytes().await.context("read the API's answer")?;
    if !status.is_success() {
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
    serde_json::from_slice(&body).context("the API's answer is not JSON")
}

/// A JSON value as a table cell: strings without quotes.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn print_table(header: &[String], rows: &[Vec<String>]) {
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

pub(super) async fn list(args: ListArgs) -> anyhow::Result<()> {
    let mut query = vec![
        ("spacecraftId", args.spacecraft_id.clone()),
        ("limit", args.limit.to_string()),
    ];
    for (name, v) in [
        ("parameter", &args.parameter),
        ("from", &args.from),
        ("to", &args.to),
        ("cursor", &args.cursor),
    ] {
        if let Some(v) = v {
            query.push((name, v.clone()));
        }
    }
    let answer = get(&args.api, "/api/v1/telemetry", &query).await?;
    if args.api.json {
        println!("{answer}");
        return Ok(());
    }
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        println!("no telemetry for {}", args.spacecraft_id);
        return Ok(());
    }
    let mut header = vec!["timestamp".to_owned(), "position".to_owned()];
    let rows: Vec<Vec<String>> = match &args.parameter {
        Some(p) => {
            header.push(p.clone());
            items
                .iter()
                .map(|i| {
                    vec![
                        cell(&i["timestamp"]),
                        cell(&i["position"]),
                        cell(&i["value"]),
                    ]
                })
                .collect()
        }
        None => {
            // Columns: every parameter any row has, in the order first seen.
            let mut names: Vec<String> = Vec::new();
            for i in &items {
                if let Some(params) = i["parameters"].as_object() {
                    for name in params.keys() {
                        if !names.contains(name) {
                            names.push(name.clone());
                        }
                    }
                }
            }
            header.extend(names.iter().cloned());
            items
                .iter()
                .map(|i| {
                    let mut row = vec![cell(&i["timestamp"]), cell(&i["position"])];
                    row.extend(names.iter().map(|n| cell(&i["parameters"][n.as_str()])));
                    row
                })
                .collect()
        }
    };
    print_table(&header, &rows);
    match answer.get("nextCursor").and_then(Value::as_str) {
        Some(next) => println!("{} rows; more with --cursor {next}", rows.len()),
        None => println!("{} rows", rows.len()),
    }
    Ok(())
}

pub(super) async fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    let query = [
        ("spacecraftId", args.spacecraft_id.clone()),
        ("limit", args.limit.to_string()),
    ];
    let answer = get(&args.api, "/api/v1/telemetry/analyze", &query).await?;
    if args.api.json {
        println!("{answer}");
        return Ok(());
    }
    let violations = answer
        .get("violations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let snapshots = answer.get("snapshots").and_then(Value::as_u64).unwrap_or(0);
    if !violations.is_empty() {
        const COLUMNS: [&str; 6] = [
            "timestamp",
            "parameter",
            "value",
            "severity",
            "limit",
            "threshold",
        ];
        let header: Vec<String> = COLUMNS.map(str::to_owned).to_vec();
        let rows: Vec<Vec<String>> = violations
            .iter()
            .map(|v| COLUMNS.iter().map(|k| cell(&v[*k])).collect())
            .collect();
        print_table(&header, &rows);
    }
    println!(
        "{} violations in the last {snapshots} snapshots of {}",
        violations.len(),
        args.spacecraft_id
    );
    Ok(())
}
