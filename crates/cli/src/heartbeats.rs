//! `mission-control bench heartbeats`: register a fleet of agents (straight to the log), wait
//! until the server's `fleet` read model knows them, then send `mc.cmd.agent.heartbeat` for
//! them round-robin as fast as the server answers for a bounded time. Reports heartbeats/s,
//! reply latency and how many events the heartbeats appended (a live agent's heartbeat must
//! append none). scripts/bench/heartbeats.sh runs it against a fresh server.

use anyhow::{bail, Context as _};
use clap::Args;
use futures::StreamExt;
use mc_domain::agent::{AgentEvent, AgentStatus};
use mc_domain::ids::AgentId;
use mc_eventlog::{Commit, CommitMeta, EventLog};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Args)]
pub struct HeartbeatArgs {
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    /// Base URL of the HTTP API (to see when the server has caught up).
    #[arg(long, env = "MC_API_URL", default_value = "http://127.0.0.1:8080")]
    api_url: String,
    /// An operator or admin token (never printed).
    #[arg(long, env = "MC_TOKEN", hide_env_values = true)]
    token: String,
    /// Agents in the fleet.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    agents: u32,
    /// How long heartbeats are sent.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    in_flight: u32,
}

/// Register `n` agents by appending their registrations; their ids.
async fn register(log: &EventLog, n: u32) -> anyhow::Result<Vec<AgentId>> {
    let ids: Vec<AgentId> = (0..n).map(|_| AgentId::from_uuid(Uuid::now_v7())).collect();
    let mut appends = futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let log = log.clone();
            async move {
                let event = AgentEvent::Registered {
                    id: *id,
                    name: format!("beat-{i}"),
                    description: "synthetic agent for the heartbeat benchmark".into(),
                    capabilities: Vec::new(),
                    metadata: Map::new(),
                    status: AgentStatus::Idle,
                };
                let meta = CommitMeta {
                    command_id: Uuid::now_v7(),
                    correlation_id: Uuid::now_v7(),
                    causation_id: None,
                    actor: "bench:heartbeats".into(),
                    occurred_at: chrono::Utc::now(),
                };
                log.append(&Commit::new("agent", &id.to_string(), 0, meta, &[event]), 0)
                    .await
            }
        })
        .buffer_unordered(512);
    while let Some(r) = appends.next().await {
        r?;
    }
    drop(appends);
    Ok(ids)
}

/// Wait until the server's `fleet` projection has reached `head` (2 minutes at most).
async fn caught_up(http: &reqwest::Client, base: &str, head: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body: Value = http
            .get(format!("{base}/api/v1/projections"))
            .send()
            .await?
            .json()
            .await?;
        let at = body["projections"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "fleet")
            .and_then(|p| p["position"].as_u64())
            .unwrap_or(0);
        if at >= head {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the fleet projection is at {at}, not {head}, after 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub async fn run(args: HeartbeatArgs) -> anyhow::Result<()> {
    let nats = args
        .nats
        .connect("mission-control bench heartbeats")
        .await?;
    let log = EventLog::new(nats.clone());
    let base = args.api_url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", args.token).parse()?,
            )]
            .into_iter()
            .collect(),
        )
        .build()?;
    eprintln!("registering {} agents", args.agents);
    let ids = register(&log, args.agents).await?;
    let head = log.head().await?;
    caught_up(&http, &base, head)
        .await
        .context("waiting for the server")?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Authorization", format!("Bearer {}", args.token).as_str());
    eprintln!(
        "sending heartbeats for {} s, {} in flight",
        args.seconds, args.in_flight
    );
    let before = log.head().await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let requests = ids
        .iter()
        .cycle()
        .take_while(|_| Instant::now() < deadline)
        .map(|id| {
            let (nats, headers) = (nats.clone(), headers.clone());
            let body = json!({"id": id.to_string()}).to_string();
            async move {
                let sent = Instant::now();
                let reply = nats
                    .request_with_headers("mc.cmd.agent.heartbeat", headers, body.into())
                    .await;
                let ok = reply.is_ok_and(|r| {
                    serde_json::from_slice::<Value>(&r.payload).is_ok_and(|v| v["ok"] == true)
                });
                (ok, sent.elapsed().as_micros() as u64)
            }
        });
    let mut replies = futures::stream::iter(requests).buffer_unordered(args.in_flight as usize);
    let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
    while let Some((good, us)) = replies.next().await {
        if good {
            ok += 1;
        } else {
            failed += 1;
        }
        latencies.push(us);
    }
    let secs = started.elapsed().as_secs_f64();
    // The server writes heartbeat times once a second; give it that second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = log.head().await?;
    latencies.sort_unstable();
    let rate = ok as f64 / secs;
    println!(
        "{ok} heartbeats for {} agents in {secs:.1} s: {rate:.0} heartbeats/s ({failed} failed); \
         reply p50 {:.1} ms, p99 {:.1} ms; events appended meanwhile: {}",
        args.agents,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        after - before
    );
    let needed = f64::from(args.agents) / 10.0;
    println!(
        "{} agents beating every 10 s need {needed:.0} heartbeats/s: {:.1}x headroom",
        args.agents,
        rate / needed
    );
    Ok(())
}
