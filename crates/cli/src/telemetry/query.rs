//! `telemetry list` and `telemetry analyze`: read telemetry back through the HTTP API and print
//! it as a table (or the JSON answer with `--json`).

use super::{AnalyzeArgs, ListArgs};
use crate::api_client::{cell, get, print_table};
use serde_json::Value;

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
