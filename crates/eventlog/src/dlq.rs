//! The dead-letter path: inputs that cannot be decoded or validated are published to
//! `mc.dlq.<origin>` with the reason in `Mc-Dlq-Reason`, counted, and the consumer goes on.

use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use bytes::Bytes;

const REJECTED: &str = "mc_dead_letters_total";
const REJECTED_HELP: &str =
    "Inputs sent to the dead-letter stream MC_DLQ, by origin (telemetry, events) and reason.";
const REASON_MAX: usize = 1_000;

/// One rejected input.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The subject it came on (`mc.telemetry.SC-001`, `mc.events.agent.<id>`).
    pub origin_subject: String,
    /// Its sequence in the stream it came from.
    pub position: u64,
    /// The snapshot index inside an array, or `None` when the whole message is rejected.
    pub index: Option<usize>,
    /// A short class for the metric label (`undecodable`, `invalid`, `unknown-spacecraft`).
    pub class: &'static str,
    pub reason: String,
    pub content_type: Option<String>,
    pub payload: Bytes,
}

/// Publish and await every dead letter. `Nats-Msg-Id` makes a re-publish after a crash a
/// duplicate the stream drops (inside its duplicate window).
pub async fn publish(js: &Context, origin: &str, letters: &[DeadLetter]) -> Result<(), String> {
    let mut acks = Vec::with_capacity(letters.len());
    for letter in letters {
        let mut headers = HeaderMap::new();
        headers.insert("Mc-Dlq-Reason", one_line(&letter.reason).as_str());
        headers.insert("Mc-Dlq-Origin", letter.origin_subject.as_str());
        headers.insert("Mc-Dlq-Position", letter.position.to_string().as_str());
        let index = letter
            .index
            .map_or_else(|| "all".to_owned(), |i| i.to_string());
        if letter.index.is_some() {
            headers.insert("Mc-Dlq-Index", index.as_str());
        }
        if let Some(ct) = &letter.content_type {
            headers.insert("Content-Type", ct.as_str());
        }
        let id = format!("{origin}:{}:{index}", letter.position);
        headers.insert("Nats-Msg-Id", id.as_str());
        let ack = js
            .publish_with_headers(format!("mc.dlq.{origin}"), headers, letter.payload.clone())
            .await
            .map_err(|e| format!("cannot publish to the dead-letter stream: {e}"))?;
        acks.push(ack);
    }
    for (ack, letter) in acks.into_iter().zip(letters) {
        let ack = ack
            .await
            .map_err(|e| format!("dead-letter stream did not acknowledge: {e}"))?;
        // A re-publish after a crash, or a second consumer's copy of the same letter, is a
        // duplicate the stream dropped: counted once.
        if !ack.duplicate {
            mc_metrics::count(
                REJECTED,
                REJECTED_HELP,
                &[("origin", origin), ("reason", letter.class)],
                1,
            );
        }
    }
    Ok(())
}

/// Header values are one line of printable text.
fn one_line(reason: &str) -> String {
    let mut s: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(REASON_MAX)
        .collect();
    if s.is_empty() {
        s.push_str("rejected");
    }
    s
}
