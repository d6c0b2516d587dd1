//! Live streams over the relay (`mc-relay`): `GET /ws` (WebSocket, the DESIGN.md protocol) and
//! `GET /stream?topics=` (SSE, resuming from `Last-Event-ID`). Glue only: the hub, topics,
//! backpressure and resume live in `mc-relay`; here are the wire, ping/idle, abuse limits and
//! token revocation.

use crate::auth::{Caller, Routes};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use mc_auth::{Credential, Principal};
use mc_relay::{Client, Outgoing, Since, StreamKind, Topic};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Largest frame a client may send.
pub const MAX_CLIENT_FRAME: usize = 16 * 1024;
/// Most bytes read from a socket at once. tungstenite zero-fills this much before every read
/// attempt, and the session attempts one each time it wakes to write: its 128 KiB default cost
/// a 128 KiB memset per client per frame fanned out, and 128 KiB of memory per connection.
/// Client messages are small (a larger one is read in several reads).
pub const READ_BUFFER: usize = 4 * 1024;
/// The server pings this often; a connection silent for `IDLE_TIMEOUT` is closed.
pub const PING_EVERY: Duration = Duration::from_secs(20);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Error frames a connection may cause before it is closed (1008).
pub const MAX_ERRORS: u32 = 100;
/// Most frames written to a socket with one flush (see [`write_batch`]).
pub const WRITE_BATCH: usize = 64;
/// Close code: the token was revoked or expired while connected.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;

pub fn routes(r: Routes) -> Routes {
    r.get("/ws", ws).get("/stream", sse)
}

async fn ws(
    State(state): State<AppState>,
    Caller(caller): Caller,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| session(state, caller, socket))
}

fn error_frame(message: impl Into<String>) -> String {
    json!({"type": "error", "message": message.into()}).to_string()
}

/// Largest number of active alarms an `alarms` snapshot carries.
const SNAPSHOT_ALARMS: i64 = 500;

/// The current state of each topic that has one (an entity, the active alarms, a spacecraft's
/// latest values), read once its read model has applied `live` (the position after which the
/// connection's frames are live): `{"type":"snapshot","topic","position","data"}`. Everything
/// up to `position` is in the snapshot; frames after it follow (some may already be reflected:
/// applying them again is harmless for state). `stale: true` when the read model did not reach
/// `live` within the read wait. Collections (`missions`, `agents`, `comments`, `system`) have no
/// snapshot: list them over HTTP with `minPosition`.
async fn snapshots(state: &AppState, topics: &[Topic], live: mc_relay::Positions) -> Vec<String> {
    let mut out = Vec::new();
    for topic in topics {
        let (projection, wanted) = match topic {
            Topic::Mission(_) => ("missions", live.events),
            Topic::Agent(_) => ("agents", live.events),
            Topic::Alarms => ("alarms", live.events),
            Topic::TaskRun(_) => (mc_projections::tasks::NAME, live.events),
            Topic::Telemetry(_) => (mc_telemetry::STORE, live.telemetry),
            _ => continue,
        };
        let Ok(fresh) = crate::read::wait(state, projection, Some(wanted)).await else {
            continue;
        };
        let data = match topic {
            Topic::Mission(id) => mc_projections::missions::get(&state.pool, *id)
                .await
                .map(|r| json!(r)),
            Topic::Agent(id) => mc_projections::agents::get(&state.pool, *id)
                .await
                .map(|r| json!(r)),
            Topic::Alarms => {
                let filter = mc_projections::alarms::AlarmFilter {
                    state: Some("ACTIVE".into()),
                    spacecraft_id: None,
                    parameter: None,
                    severity: None,
                    kind: None,
                };
                mc_projections::alarms::list(&state.pool, &filter, None, SNAPSHOT_ALARMS)
                    .await
                    .map(|r| json!(r))
            }
            Topic::Telemetry(sc) => mc_telemetry::read::latest(&state.pool, sc).await.map(|rows| {
                let parameters: serde_json::Map<String, Value> = rows
                    .into_iter()
                    .map(|r| (r.parameter, json!({"value": r.value, "timestamp": r.ts, "position": r.position})))
                    .collect();
                json!({"spacecraftId": sc, "parameters": parameters})
            }),
            Topic::TaskRun(id) => mc_projections::tasks::run_with_calls(&state.pool, *id).await,
            _ => continue,
        };
        let Ok(data) = data else { continue };
        let mut frame = json!({"type": "snapshot", "topic": topic.to_string(), "position": fresh.position, "data": data});
        if fresh.stale {
            frame["stale"] = json!(true);
        }
        out.push(frame.to_string());
    }
    out
}

/// One client message: the replies to send.
async fn handle(state: &AppState, client: &Client, text: &str) -> Result<Vec<String>, String> {
    if !mc_domain::values::json_nesting_within(text.as_bytes(), 8) {
        return Err("message nested too deeply".into());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed json: {e}"))?;
    let op = value
        .get("op")
        .and_then(Value::as_str)
        .ok_or("missing op")?;
    let topics = || -> Result<Vec<Topic>, String> {
        let list = value
            .get("topics")
            .and_then(Value::as_array)
            .ok_or("topics must be an array of strings")?;
        let names: Vec<&str> = list
            .iter()
            .map(|t| t.as_str().ok_or("topics must be an array of strings"))
            .collect::<Result<_, _>>()?;
        Topic::parse_all(&names).map_err(|e| e.0)
    };
    match op {
        "ping" => Ok(vec![json!({"type": "pong"}).to_string()]),
        "subscribe" => {
            let topics = topics()?;
            let since: Option<Since> =
                match value.get("since") {
                    None | Some(Value::Null) => None,
                    Some(s) => Some(serde_json::from_value(s.clone()).map_err(|_| {
                        "since must be a position or {\"events\":n,\"telemetry\":m}"
                    })?),
                };
            let resumed = since.is_some();
            let positions = client
                .subscribe(&topics, since)
                .await
                .map_err(|e| e.to_string())?;
            let mut replies = vec![json!({"type": "subscribed",
                   "topics": topics.iter().map(ToString::to_string).collect::<Vec<_>>(),
                   "positions": {"events": positions.events, "telemetry": positions.telemetry}})
            .to_string()];
            // A resuming client has its state; a new one gets a snapshot, then the deltas.
            if !resumed {
                replies.extend(snapshots(state, &topics, positions).await);
            }
            Ok(replies)
        }
        "unsubscribe" => {
            let topics = topics()?;
            client.unsubscribe(&topics);
            Ok(vec![json!({"type": "unsubscribed",
                   "topics": topics.iter().map(ToString::to_string).collect::<Vec<_>>()})
            .to_string()])
        }
        other => Err(format!(
            "unknown op {:?}: expected subscribe, unsubscribe or ping",
            other.chars().take(32).collect::<String>()
        )),
    }
}

/// Whether a principal authenticated at connect time still may (a revoked or expired token).
fn still_valid(state: &AppState, caller: &Principal) -> bool {
    caller.credential != Credential::Token
        || state
            .auth
            .tokens()
            .still_valid(&caller.id, chrono::Utc::now().timestamp_millis())
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(120).collect::<String>().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Write a batch from [`Client::next_batch`] with one flush (one write on the socket for what
/// fits its buffer). False when the connection is over: closed by the relay, gone, or the batch
/// was empty (the client finished).
async fn write_batch(socket: &mut WebSocket, batch: Vec<Outgoing>) -> bool {
    if batch.is_empty() {
        return false;
    }
    for out in batch {
        match out {
            Outgoing::Frame(frame) => {
                let text = Message::Text(frame.text.as_ref().into());
                if socket.feed(text).await.is_err() {
                    return false;
                }
            }
            Outgoing::Close { code, reason } => {
                let _ = socket.flush().await;
                close(socket, code, &reason).await;
                return false;
            }
        }
    }
    socket.flush().await.is_ok()
}

async fn session(state: AppState, caller: Principal, mut socket: WebSocket) {
    let client = state.relay.connect();
    let mut revocations = state.auth.tokens().revocations();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut heard = Instant::now();
    let mut errors = 0u32;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => { heard = Instant::now(); continue }
                    Some(Ok(Message::Binary(_))) => {
                        heard = Instant::now();
                        errors += 1;
                        let _ = socket.send(Message::Text(error_frame("binary frames are not accepted: send JSON text").into())).await;
                        if errors > MAX_ERRORS { close(&mut socket, 1008, "too many bad messages").await; break }
                        continue
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        // An oversized frame ends here too: the connection is closed with the reason.
                        tracing::debug!(error = %e, "websocket read failed");
                        close(&mut socket, 1009, "frame too large or malformed").await;
                        break
                    }
                };
                heard = Instant::now();
                let replies = match handle(&state, &client, text.as_str()).await {
                    Ok(replies) => replies,
                    Err(message) => {
                        errors += 1;
                        vec![error_frame(message)]
                    }
                };
                let mut gone = false;
                for reply in replies {
                    if socket.send(Message::Text(reply.into())).await.is_err() { gone = true; break }
                }
                if gone { break }
                if errors > MAX_ERRORS { close(&mut socket, 1008, "too many bad messages").await; break }
            }
            batch = client.next_batch(WRITE_BATCH) => {
                if !write_batch(&mut socket, batch).await { break }
            }
            _ = ping.tick() => {
                if heard.elapsed() > IDLE_TIMEOUT { close(&mut socket, 1001, "idle timeout").await; break }
                if socket.send(Message::Ping(Default::default())).await.is_err() { break }
            }
            changed = revocations.changed() => {
                if changed.is_err() || !still_valid(&state, &caller) {
                    close(&mut socket, CLOSE_UNAUTHORIZED, "token revoked").await;
                    break
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct StreamQuery {
    pub(crate) topics: Option<String>,
    #[serde(rename = "lastEventId")]
    pub(crate) last_event_id: Option<String>,
}

/// SSE ids are `<events position>-<telemetry position>`: what the client has seen of each.
fn parse_event_id(id: &str) -> Result<Since, ApiError> {
    let bad = || ApiError::BadHeader {
        header: "Last-Event-ID",
        message: "must be <events position>-<telemetry position>, as sent in `id:`".into(),
    };
    let (e, t) = id.trim().split_once('-').ok_or_else(bad)?;
    Ok(Since::PerStream {
        events: Some(e.parse().map_err(|_| bad())?),
        telemetry: Some(t.parse().map_err(|_| bad())?),
    })
}

pub(crate) async fn sse(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let names: Vec<&str> = q
        .topics
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if names.is_empty() {
        return Err(ApiError::field(
            "topics",
            "name at least one topic, comma-separated",
        ));
    }
    let topics = Topic::parse_all(&names).map_err(|e| ApiError::field("topics", e.0))?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.last_event_id);
    let since = last.as_deref().map(parse_event_id).transpose()?;
    // Only the streams of the topics asked for may be resumed.
    let since = since.map(|s| match s {
        Since::PerStream { events, telemetry } => Since::PerStream {
            events: events.filter(|_| topics.iter().any(|t| t.stream() == StreamKind::Events)),
            telemetry: telemetry
                .filter(|_| topics.iter().any(|t| t.stream() == StreamKind::Telemetry)),
        },
        one => one,
    });
    let client = state.relay.connect();
    let positions = client
        .subscribe(&topics, since)
        .await
        .map_err(|e| ApiError::field("Last-Event-ID", e.to_string()))?;
    let seen: HashMap<StreamKind, u64> = [
        (StreamKind::Events, positions.events),
        (StreamKind::Telemetry, positions.telemetry),
    ]
    .into();
    let revocations = state.auth.tokens().revocations();
    let stream = futures::stream::unfold(
        (client, seen, revocations, state, caller, false),
        |(client, mut seen, mut revocations, state, caller, done)| async move {
            if done {
                return None;
            }
            loop {
                tokio::select! {
                    out = client.next() => {
                        return match out {
                            Some(Outgoing::Frame(frame)) => {
                                if let Some(stream) = frame.stream {
                                    seen.insert(stream, frame.position);
                                }
                                let id = format!("{}-{}", seen[&StreamKind::Events], seen[&StreamKind::Telemetry]);
                                // The frame's `type`, known from its stream without decoding it.
                                let event = Event::default().id(id).event(frame.kind).data(frame.text.as_ref());
                                Some((Ok::<_, std::convert::Infallible>(event), (client, seen, revocations, state, caller, false)))
                            }
                            Some(Outgoing::Close { code, reason }) => {
                                let event = Event::default().event("close").data(json!({"code": code, "reason": reason}).to_string());
                                Some((Ok(event), (client, seen, revocations, state, caller, true)))
                            }
                            None => None,
                        };
                    }
                    changed = revocations.changed() => {
                        if changed.is_err() || !still_valid(&state, &caller) {
                            let event = Event::default().event("close").data(json!({"code": CLOSE_UNAUTHORIZED, "reason": "token revoked"}).to_string());
                            return Some((Ok(event), (client, seen, revocations, state, caller, true)));
                        }
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
