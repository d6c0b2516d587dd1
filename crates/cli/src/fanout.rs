//! `mission-control bench fanout`: many WebSocket clients on one topic against a running
//! server; commands published at a fixed rate; reports delivered frames/s, latency from the
//! command's commit (`occurredAt`) to receipt, and the server's memory. Bounded in count and
//! time; loopback only by intent (see scripts/bench/fanout.sh).

use anyhow::{bail, Context as _};
use clap::Args;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

#[derive(Args)]
pub struct FanoutArgs {
    /// Base URL of the HTTP API.
    #[arg(long, env = "MC_API_URL", default_value = "http://127.0.0.1:8080")]
    api_url: String,
    /// An admin or operator token (never printed).
    #[arg(long, env = "MC_TOKEN", hide_env_values = true)]
    token: String,
    /// WebSocket clients, all on the `missions` topic.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    clients: u32,
    /// Missions created (one event each).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    events: u32,
    /// Missions created per second.
    #[arg(long, default_value_t = 100)]
    rate: u32,
}

#[derive(Default)]
struct Received {
    latencies_us: Vec<u64>,
    /// Per event (in publish order): the earliest and the latest receipt over the clients
    /// that got it, as latency in µs. Splits the latency into the path to the first socket
    /// and the spread of the fan-out.
    first_us: Vec<u64>,
    last_us: Vec<u64>,
    complete: u32,
    closed: u32,
    lagged: u32,
    last_at: Option<Instant>,
}

/// The `occurredAt` of an event frame (`"occurredAt":"<RFC 3339>"`), found without parsing the
/// frame.
fn occurred_at(frame: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if !frame.contains("\"type\":\"event\"") {
        return None;
    }
    let rest = &frame[frame.find("\"occurredAt\":\"")? + 14..];
    let value = &rest[..rest.find('"')?];
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

async fn rss(http: &reqwest::Client, base: &str) -> Option<u64> {
    let body: Value = http
        .get(format!("{base}/health/detailed"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["memory"]["rssBytes"].as_u64()
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    if args.rate == 0 {
        bail!("--rate must be at least 1");
    }
    let base = args.api_url.trim_end_matches('/').to_owned();
    let ws_url = format!(
        "{}/api/v1/ws?access_token={}",
        base.replacen("http", "ws", 1),
        args.token
    );
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
    let rss_idle = rss(&http, &base).await;
    let received = Arc::new(Mutex::new(Received::default()));
    let expected = args.events as usize;
    // Connect and subscribe every client before the first command.
    let started = Instant::now();
    let sockets: Vec<_> = futures::stream::iter(0..args.clients)
        .map(|_| {
            let url = ws_url.clone();
            async move {
                // A small read buffer: tungstenite zero-fills all of it before every read.
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .read_buffer_size(8 * 1024);
                let (mut ws, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
                ws.send(Message::Text(
                    json!({"op": "subscribe", "topics": ["missions"]})
                        .to_string()
                        .into(),
                ))
                .await?;
                while let Some(m) = ws.next().await {
                    if let Message::Text(t) = m? {
                        if t.contains("\"subscribed\"") {
                            return Ok::<_, anyhow::Error>(ws);
                        }
                    }
                }
                bail!("closed before subscribing")
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .context("connect the websocket clients")?;
    eprintln!(
        "{} clients subscribed in {:.1} s",
        sockets.len(),
        started.elapsed().as_secs_f64()
    );
    let rss_connected = rss(&http, &base).await;
    let deadline = Duration::from_secs_f64(f64::from(args.events) / f64::from(args.rate))
        + Duration::from_secs(30);
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let received = received.clone();
            tokio::spawn(async move {
                let mut mine = Vec::with_capacity(expected);
                let mut closed = false;
                let mut lagged = false;
                let read = async {
                    while mine.len() < expected {
                        match ws.next().await {
                            Some(Ok(Message::Text(t))) => {
                                // Only what the measurement needs, without decoding the whole
                                // frame: the load generator shares the machine with the server.
                                let t = t.as_str();
                                if t.starts_with("{\"type\":\"lagged\"")
                                    || t.contains("\"type\":\"lagged\"")
                                {
                                    lagged = true;
                                } else if let Some(at) = occurred_at(t) {
                                    let now = chrono::Utc::now();
                                    mine.push(
                                        (now - at).num_microseconds().unwrap_or(0).max(0) as u64
                                    );
                                }
                            }
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                                closed = true;
                                break;
                            }
                            Some(Ok(_)) => {}
                        }
                    }
                };
                let _ = tokio::time::timeout(deadline, read).await;
                let mut r = received.lock().await;
                r.complete += u32::from(mine.len() == expected);
                r.closed += u32::from(closed);
                r.lagged += u32::from(lagged);
                for (i, &l) in mine.iter().enumerate() {
                    if r.first_us.len() <= i {
                        r.first_us.push(l);
                        r.last_us.push(l);
                    } else {
                        r.first_us[i] = r.first_us[i].min(l);
                        r.last_us[i] = r.last_us[i].max(l);
                    }
                }
                r.latencies_us.extend(mine);
                r.last_at = Some(Instant::now());
            })
        })
        .collect();
    let publish_started = Instant::now();
    let failed = publish(&http, &base, args.events, args.rate).await;
    let published = publish_started.elapsed();
    for r in readers {
        let _ = r.await;
    }
    let rss_after = rss(&http, &base).await;
    let mut r = received.lock().await;
    let delivered = r.latencies_us.len();
    let span = r.last_at.map_or(published, |t| t - publish_started);
    let mut spread: Vec<u64> = r
        .first_us
        .iter()
        .zip(&r.last_us)
        .map(|(f, l)| l - f)
        .collect();
    r.latencies_us.sort_unstable();
    r.first_us.sort_unstable();
    spread.sort_unstable();
    let pct_of = |l: &[u64], p: f64| -> f64 {
        if l.is_empty() {
            return 0.0;
        }
        l[((l.len() - 1) as f64 * p) as usize] as f64 / 1000.0
    };
    let pct = |p: f64| pct_of(&r.latencies_us, p);
    let summary = json!({
        "clients": args.clients,
        "events": args.events,
        "ratePerSecond": args.rate,
        "publishFailed": failed,
        "framesDelivered": delivered,
        "framesExpected": args.clients as usize * expected,
        "deliveredPerSecond": (delivered as f64 / span.as_secs_f64()).round(),
        "latencyMs": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        // Per event: latency to its first client, and from its first to its last client.
        "firstClientMs": {"p50": pct_of(&r.first_us, 0.5), "p99": pct_of(&r.first_us, 0.99)},
        "spreadMs": {"p50": pct_of(&spread, 0.5), "p99": pct_of(&spread, 0.99)},
        "clientsComplete": r.complete,
        "clientsClosed": r.closed,
        "clientsLagged": r.lagged,
        "serverRssBytes": {"idle": rss_idle, "connected": rss_connected, "after": rss_after},
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// Create `count` missions at `rate` per second, each request on its own task
/// (at most 32 in flight), so every one is sent at its tick; returns how many failed.
async fn publish(http: &reqwest::Client, base: &str, count: u32, rate: u32) -> u32 {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut failed = 0u32;
    let mut inflight = tokio::task::JoinSet::new();
    let mut settle = |r: Option<Result<bool, tokio::task::JoinError>>| {
        if !matches!(r, Some(Ok(true))) {
            failed += 1;
        }
    };
    for i in 0..count {
        tick.tick().await;
        let http = http.clone();
        let url = format!("{base}/api/v1/missions");
        inflight.spawn(async move {
            http.post(url)
                .json(&json!({"title": format!("fanout-{i}")}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        });
        while inflight.len() > 32 {
            settle(inflight.join_next().await);
        }
        // Collect the finished ones without waiting.
        while let Some(r) = inflight.try_join_next() {
            settle(Some(r));
        }
    }
    while let Some(r) = inflight.join_next().await {
        settle(Some(r));
    }
    failed
}

#[cfg(test)]
mod tests {
    #[test]
    fn occurred_at_is_found_in_an_event_frame_only() {
        let frame =
            r#"{"type":"event","topic":"missions","data":{"occurredAt":"2026-12-02T10:00:00.5Z"}}"#;
        assert_eq!(
            super::occurred_at(frame).unwrap().to_rfc3339(),
            "2026-12-02T10:00:00.500+00:00"
        );
        assert!(super::occurred_at(r#"{"type":"pong"}"#).is_none());
    }
}
