//! The replay of one subscribe with `since`: an ordered consumer filtered to the topics'
//! subjects, from `since + 1`, pushed into the client's queue as fast as the client reads,
//! until it meets the live frames held meanwhile; then the client goes live.

use crate::client::ClientShared;
use crate::hub::HubInner;
use crate::route::{self, Skip};
use crate::{StreamKind, CLOSE_TRY_AGAIN_LATER};
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use futures::StreamExt;
use std::sync::Arc;

/// Run the replay, then hand over to live (or close the client if JetStream fails).
pub(crate) async fn run(
    hub: Arc<HubInner>,
    shared: Arc<ClientShared>,
    stream: StreamKind,
    subjects: Vec<String>,
    since: u64,
) {
    let cancel = shared.tasks.clone();
    let result = tokio::select! {
        _ = cancel.cancelled() => return,
        r = replay(&hub, &shared, stream, subjects, since) => r,
    };
    match result {
        Ok(()) => {
            for pushed in shared.finish_replay(stream) {
                hub.note(pushed);
            }
        }
        Err(e) => {
            tracing::warn!(stream = stream.as_str(), since, error = %e, "relay replay failed");
            let mut reason = format!("replay failed: {e}");
            // A WebSocket close reason holds at most 123 bytes.
            while reason.len() > 120 {
                reason.pop();
            }
            shared.close(CLOSE_TRY_AGAIN_LATER, reason);
        }
    }
}

async fn replay(
    hub: &HubInner,
    shared: &ClientShared,
    stream: StreamKind,
    subjects: Vec<String>,
    since: u64,
) -> Result<(), String> {
    let js_stream = hub
        .js
        .get_stream_no_info(stream.stream_name())
        .await
        .map_err(|e| e.to_string())?;
    let mut config = OrderedConfig {
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: since + 1,
        },
        ..Default::default()
    };
    match <[String; 1]>::try_from(subjects) {
        Ok([one]) => config.filter_subject = one,
        Err(many) => config.filter_subjects = many,
    }
    let consumer = js_stream
        .create_consumer(config)
        .await
        .map_err(|e| e.to_string())?;
    // Nothing after `since` yet: every later message arrives live.
    if consumer.cached_info().num_pending == 0 {
        return Ok(());
    }
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| e.to_string())?;
        let info = message.info().map_err(|e| e.to_string())?;
        let (position, pending) = (info.stream_sequence, info.pending);
        let content_type = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Content-Type"))
            .map(|v| v.as_str());
        match route::route(
            stream,
            message.subject.as_str(),
            position,
            content_type,
            &message.payload,
        ) {
            Ok(frames) => {
                for r in frames {
                    if !shared.wait_room().await {
                        return Ok(());
                    }
                    shared.push_replay(&r);
                }
            }
            Err(Skip::NotRelayed) => {}
            Err(Skip::Garbage(reason)) => hub.skipped(stream, position, &reason),
        }
        // Caught up with the stream (whose head was past the hub's position when the client
        // registered), or reached the live frames held meanwhile: hand over.
        if pending == 0 || shared.first_buffered(stream).is_some_and(|f| position >= f) {
            return Ok(());
        }
    }
    Err("replay consumer ended".into())
}
