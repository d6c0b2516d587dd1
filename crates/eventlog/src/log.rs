//! Append to and read from `MC_EVENTS`.

use crate::envelope::{Commit, RecordedCommit};
use crate::{aggregate_subject, streams};
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, Context};
use futures::StreamExt;
use std::time::Duration;

/// How long a history load may take before it is reported as unavailable.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle on the event log. Cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    js: Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Stream sequence of the commit: its global position.
    pub position: u64,
    /// The command id was seen inside the duplicate window; nothing new was stored.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// `Nats-Expected-Last-Subject-Sequence` did not match: someone else appended first.
    #[error("concurrent append on {subject}: expected last sequence {expected}")]
    Conflict { subject: String, expected: u64 },
    #[error("event log unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    #[error("undecodable commit at position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
}

fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(e.to_string())
}

impl EventLog {
    pub fn new(client: async_nats::Client) -> Self {
        Self {
            js: jetstream::new(client),
        }
    }

    pub fn jetstream(&self) -> &Context {
        &self.js
    }

    /// Append one commit. `expected_last_seq` is the stream sequence of the last commit seen
    /// on the aggregate's subject (0 for a new aggregate).
    pub async fn append(
        &self,
        commit: &Commit,
        expected_last_seq: u64,
    ) -> Result<Appended, AppendError> {
        let subject = aggregate_subject(&commit.aggregate_type, &commit.aggregate_id);
        let message = PublishMessage::build()
            .payload(commit.encode().into())
            .message_id(commit.meta.command_id.to_string())
            .expected_last_subject_sequence(expected_last_seq);
        let ack = self
            .js
            .send_publish(subject.clone(), message)
            .await
            .map_err(|e| AppendError::Unavailable(e.to_string()))?
            .await;
        match ack {
            Ok(ack) => Ok(Appended {
                position: ack.sequence,
                duplicate: ack.duplicate,
            }),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                Err(AppendError::Conflict {
                    subject,
                    expected: expected_last_seq,
                })
            }
            Err(e) => Err(AppendError::Unavailable(e.to_string())),
        }
    }

    /// Every commit of one aggregate, in order.
    pub async fn load(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedCommit>, LogError> {
        tokio::time::timeout(LOAD_TIMEOUT, self.load_inner(aggregate_type, aggregate_id))
            .await
            .map_err(|_| LogError::Unavailable("timed out loading aggregate history".into()))?
    }

    async fn load_inner(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedCommit>, LogError> {
        let subject = aggregate_subject(aggregate_type, aggregate_id);
        let stream = self
            .js
            .get_stream_no_info(streams::EVENTS)
            .await
            .map_err(unavailable)?;
        let last = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => m,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(vec![]),
            Err(e) => return Err(unavailable(e)),
        };
        let last = decode(last.sequence, &last.payload)?;
        // Fast path: the last commit starts at version 1, so it is the whole history.
        if last
            .commit
            .events
            .first()
            .is_none_or(|e| e.aggregate_version == 1)
        {
            return Ok(vec![last]);
        }
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: subject,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        let mut out = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.map_err(unavailable)?;
            let seq = message.info().map_err(unavailable)?.stream_sequence;
            if seq >= last.position {
                break;
            }
            out.push(decode(seq, &message.payload)?);
        }
        out.push(last);
        Ok(out)
    }

    /// What identifies this `MC_EVENTS` among all that ever existed: its creation time.
    /// A stream recreated from nothing (a new NATS store) has another identity.
    pub async fn identity(&self) -> Result<String, LogError> {
        let mut stream = self
            .js
            .get_stream(streams::EVENTS)
            .await
            .map_err(unavailable)?;
        let created = stream.info().await.map_err(unavailable)?.created;
        Ok(format!("created:{}", created.unix_timestamp_nanos()))
    }

    /// The last stream sequence of `MC_EVENTS` (0 when empty).
    pub async fn head(&self) -> Result<u64, LogError> {
        let mut stream = self
            .js
            .get_stream(streams::EVENTS)
            .await
            .map_err(unavailable)?;
        Ok(stream
            .info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence)
    }
}

fn decode(position: u64, payload: &[u8]) -> Result<RecordedCommit, LogError> {
    Commit::decode(payload)
        .map(|commit| RecordedCommit { position, commit })
        .map_err(|e| LogError::Corrupt {
            position,
            reason: e.to_string(),
        })
}
