//! `events query`: the audit trail from the command line, with the filters of
//! `GET /api/v1/events`; a table or JSON page, or a streamed NDJSON/CSV export.

use crate::api_client::{cell, download, get, print_table, ApiArgs};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Archived events matching the filters, oldest first: who did what, when, why.
    Query(QueryArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One page as a table.
    Table,
    /// One page as the API's JSON.
    Json,
    /// Every match, one JSON object per line (streamed).
    Ndjson,
    /// Every match as CSV with a header (streamed).
    Csv,
}

#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Aggregate type: agent, mission, comment, spacecraft, alarm, token.
    #[arg(long)]
    aggregate: Option<String>,
    /// Aggregate id (with --aggregate: one aggregate's whole history).
    #[arg(long)]
    id: Option<String>,
    /// Actor exactly as recorded, e.g. `token:<id>/<name>` or `jwt:<subject>`.
    #[arg(long)]
    actor: Option<String>,
    /// Event type, e.g. mission.created.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Events that occurred at or after this time (RFC 3339 or epoch milliseconds).
    #[arg(long)]
    from: Option<String>,
    /// Events that occurred before this time (RFC 3339 or epoch milliseconds).
    #[arg(long)]
    to: Option<String>,
    /// From this stream position on (inclusive).
    #[arg(long)]
    from_position: Option<u64>,
    /// Up to this stream position (inclusive).
    #[arg(long)]
    to_position: Option<u64>,
    /// Rows per page (table, json: 1..=500, default 50) or in all (ndjson, csv: default all).
    #[arg(long)]
    limit: Option<u64>,
    /// Continue after this cursor (printed under a table, `nextCursor` in JSON).
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
}

pub async fn run(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::Query(args) => query(args).await,
    }
}

async fn query(args: QueryArgs) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = Vec::new();
    for (name, v) in [
        ("aggregate", &args.aggregate),
        ("id", &args.id),
        ("actor", &args.actor),
        ("type", &args.event_type),
        ("from", &args.from),
        ("to", &args.to),
        ("cursor", &args.cursor),
    ] {
        if let Some(v) = v {
            query.push((name, v.clone()));
        }
    }
    for (name, v) in [
        ("fromPosition", args.from_position),
        ("toPosition", args.to_position),
        ("limit", args.limit),
    ] {
        if let Some(v) = v {
            query.push((name, v.to_string()));
        }
    }
    let export = match args.format {
        Output::Ndjson => Some("ndjson"),
        Output::Csv => Some("csv"),
        Output::Table | Output::Json => None,
    };
    if let Some(format) = export {
        query.push(("format", format.to_owned()));
        let bytes = download(&args.api, "/api/v1/events", &query).await?;
        eprintln!("exported {bytes} bytes");
        return Ok(());
    }
    let answer = get(&args.api, "/api/v1/events", &query).await?;
    if args.format == Output::Json || args.api.json {
        println!("{answer}");
        return Ok(());
    }
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    const COLUMNS: [&str; 7] = [
        "position",
        "occurredAt",
        "actor",
        "aggregateType",
        "aggregateId",
        "aggregateVersion",
        "type",
    ];
    let header: Vec<String> = COLUMNS.map(str::to_owned).to_vec();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|e: &Value| COLUMNS.iter().map(|k| cell(&e[*k])).collect())
        .collect();
    if rows.is_empty() {
        println!("no events match");
        return Ok(());
    }
    print_table(&header, &rows);
    match answer["nextCursor"].as_str() {
        Some(next) => println!("{} events; more with --cursor {next}", rows.len()),
        None => println!("{} events", rows.len()),
    }
    Ok(())
}
