//! HTTP ingest: validate a whole payload (nothing is published unless every snapshot is
//! valid), then publish it to `mc.telemetry.<spacecraftId>`, one message per spacecraft, and
//! wait for the stream's acknowledgement.

use crate::copy::{write_params, write_str};
use crate::registry::{Registry, UnknownSpacecraft};
use crate::wire::{self, Context as WireContext, Format, Invalid};
use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Undecodable(String),
    #[error("invalid snapshots")]
    Invalid(Vec<Invalid>),
    #[error("spacecraft {0} is not registered")]
    UnknownSpacecraft(String),
    /// The publisher may not publish for this spacecraft; nothing was published.
    #[error("not allowed to publish for spacecraft {0}")]
    Forbidden(String),
    #[error("telemetry stream unavailable: {0}")]
    Unavailable(String),
}

/// Who publishes: the request's idempotency key and the spacecraft the publisher may publish
/// for (`None`: any).
#[derive(Debug, Clone, Copy, Default)]
pub struct Publisher<'a> {
    pub idempotency_key: Option<&'a str>,
    pub allowed: Option<&'a [String]>,
}

/// What was accepted: counts and the stream position of each spacecraft's message.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub snapshots: usize,
    pub samples: usize,
    pub positions: Vec<(String, u64)>,
}

pub async fn ingest(
    js: &Context,
    registry: &Registry,
    format: Format,
    payload: &[u8],
    now_ms: i64,
    max_future_ms: i64,
    publisher: Publisher<'_>,
) -> Result<Accepted, IngestError> {
    let Publisher {
        idempotency_key,
        allowed,
    } = publisher;
    let snapshots = wire::decode(format, payload).map_err(IngestError::Undecodable)?;
    let cx = WireContext {
        subject_spacecraft: None,
        received_ms: now_ms,
        max_future_ms,
    };
    let mut errors = Vec::new();
    // Spacecraft → its snapshots as one JSON array, in the order sent.
    let mut groups: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut names = Vec::new();
    let mut samples = 0;
    for (i, snapshot) in snapshots.items.iter().enumerate() {
        match wire::validate(snapshot, &snapshots.prefix(i), &cx, &mut names) {
            Ok((sc, s)) => {
                samples += s.samples.len();
                let out = groups.entry(sc.to_owned()).or_insert_with(|| vec![b'[']);
                if out.len() > 1 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"spacecraftId\":");
                write_str(out, sc);
                out.extend_from_slice(
                    format!(",\"timestamp\":{},\"parameters\":", s.timestamp_ms).as_bytes(),
                );
                write_params(out, &s.samples);
                out.push(b'}');
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(IngestError::Invalid(errors));
    }
    // All or nothing: one snapshot for a spacecraft the publisher may not publish for
    // refuses the whole request.
    if let Some(allowed) = allowed {
        if let Some(sc) = groups.keys().find(|sc| !allowed.contains(sc)) {
            return Err(IngestError::Forbidden(sc.clone()));
        }
    }
    if registry.policy() == UnknownSpacecraft::Reject {
        for sc in groups.keys() {
            if !registry
                .exists(sc)
                .await
                .map_err(IngestError::Unavailable)?
            {
                return Err(IngestError::UnknownSpacecraft(sc.clone()));
            }
        }
    }
    let mut acks = Vec::with_capacity(groups.len());
    for (sc, mut body) in groups {
        body.push(b']');
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", "application/json");
        if let Some(key) = idempotency_key {
            headers.insert("Nats-Msg-Id", format!("http:{key}:{sc}").as_str());
        }
        let ack = js
            .publish_with_headers(format!("mc.telemetry.{sc}"), headers, body.into())
            .await
            .map_err(|e| IngestError::Unavailable(e.to_string()))?;
        acks.push((sc, ack));
    }
    let mut positions = Vec::with_capacity(acks.len());
    for (sc, ack) in acks {
        let ack = ack
            .await
            .map_err(|e| IngestError::Unavailable(e.to_string()))?;
        positions.push((sc, ack.sequence));
    }
    Ok(Accepted {
        snapshots: snapshots.items.len(),
        samples,
        positions,
    })
}
