//! The token table every instance keeps in memory, fed by the `token.*` events of
//! `MC_EVENTS` through an ordered consumer: an issued or revoked token takes effect on every
//! running instance as soon as its event is delivered (milliseconds), with no database read
//! on the request path.

use crate::principal::{AuthError, Credential, Principal};
use crate::tokens;
use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use futures::StreamExt;
use mc_domain::ids::TokenId;
use mc_domain::token::{Role, TokenData, TokenEvent};
use mc_eventlog::Commit;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The subjects of every token's history.
pub const SUBJECTS: &str = "mc.events.token.>";
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Entry {
    data: TokenData,
    digest: [u8; 32],
    revoked: bool,
}

/// What `tokens list` and `GET /tokens` show of a token (no hash, no secret).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spacecraft: Vec<String>,
    pub issued_at: String,
    pub expires_at: Option<String>,
    pub revoked: bool,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[derive(Default)]
struct Inner {
    tokens: RwLock<HashMap<TokenId, Entry>>,
    ready: AtomicBool,
    position: AtomicU64,
    /// Bumped on every revocation: live connections re-check their principal.
    revocations: watch::Sender<u64>,
}

/// The in-memory token table. Cheap to clone.
#[derive(Clone, Default)]
pub struct TokenRegistry(Arc<Inner>);

impl TokenRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the table has caught up with the log once (until then requests answer 503).
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    /// The stream position of the last token event applied.
    pub fn position(&self) -> u64 {
        self.0.position.load(Ordering::Acquire)
    }

    /// Changes whenever a token is revoked.
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.0.revocations.subscribe()
    }

    /// Fold one commit of a token's history. Applying a commit twice changes nothing.
    pub fn apply(&self, position: u64, commit: &Commit) -> Result<(), String> {
        let Ok(id) = TokenId::parse(&commit.aggregate_id, "id") else {
            return Err(format!("token id {:?} is not a uuid", commit.aggregate_id));
        };
        let events: Vec<TokenEvent> = commit.domain_events().map_err(|e| e.to_string())?;
        let Ok(mut tokens) = self.0.tokens.write() else {
            return Err("token table lock poisoned".into());
        };
        for event in events {
            match event {
                TokenEvent::Issued(data) => {
                    let mut digest = [0u8; 32];
                    hex::decode_to_slice(data.secret_hash.as_str(), &mut digest)
                        .map_err(|e| e.to_string())?;
                    tokens.entry(id).or_insert(Entry {
                        data,
                        digest,
                        revoked: false,
                    });
                }
                TokenEvent::Revoked { .. } => {
                    if let Some(e) = tokens.get_mut(&id) {
                        if !e.revoked {
                            e.revoked = true;
                            self.0.revocations.send_modify(|n| *n += 1);
                        }
                    }
                }
            }
        }
        self.0.position.fetch_max(position, Ordering::AcqRel);
        Ok(())
    }

    /// The principal of an API token, checked against its hash in constant time.
    pub fn authenticate(&self, token: &str, now_ms: i64) -> Result<Principal, AuthError> {
        let presented = tokens::parse(token)?;
        if !self.is_ready() {
            return Err(AuthError::NotReady);
        }
        let digest = presented.digest();
        let tokens = self.0.tokens.read().map_err(|_| AuthError::NotReady)?;
        let entry = tokens.get(&presented.id).ok_or(AuthError::UnknownToken)?;
        if !bool::from(entry.digest.ct_eq(&digest)) {
            return Err(AuthError::UnknownToken);
        }
        if entry.revoked {
            return Err(AuthError::Revoked);
        }
        if entry.data.expires_at_ms.is_some_and(|at| at <= now_ms) {
            return Err(AuthError::Expired);
        }
        Ok(Principal {
            credential: Credential::Token,
            id: entry.data.id.to_string(),
            name: entry.data.name.clone(),
            role: entry.data.role,
            spacecraft: (entry.data.role == Role::Producer).then(|| entry.data.spacecraft.clone()),
        })
    }

    /// Whether a principal authenticated earlier by token id is still valid (live streams
    /// re-check on every revocation).
    pub fn still_valid(&self, id: &str, now_ms: i64) -> bool {
        let Ok(id) = TokenId::parse(id, "id") else {
            return false;
        };
        self.0.tokens.read().is_ok_and(|t| {
            t.get(&id)
                .is_some_and(|e| !e.revoked && e.data.expires_at_ms.is_none_or(|at| at > now_ms))
        })
    }

    /// Every token, oldest first.
    pub fn list(&self) -> Vec<TokenInfo> {
        let Ok(tokens) = self.0.tokens.read() else {
            return Vec::new();
        };
        let mut all: Vec<TokenInfo> = tokens
            .values()
            .map(|e| TokenInfo {
                id: e.data.id.to_string(),
                name: e.data.name.clone(),
                role: e.data.role.as_str(),
                spacecraft: e.data.spacecraft.clone(),
                issued_at: rfc3339(e.data.issued_at_ms),
                expires_at: e.data.expires_at_ms.map(rfc3339),
                revoked: e.revoked,
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Read every token event up to the head of the log once (`tokens list`).
    pub async fn load(js: &jetstream::Context) -> Result<Self, String> {
        let registry = Self::new();
        let cancel = CancellationToken::new();
        let follower = registry.clone();
        let stop = cancel.clone();
        let ready = async {
            while !registry.is_ready() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            r = follower.follow_once(js, &stop) => r?,
            () = ready => {}
        }
        cancel.cancel();
        Ok(registry)
    }

    /// Follow the token events until cancelled, resubscribing with backoff after errors.
    pub async fn follow(self, js: jetstream::Context, cancel: CancellationToken) {
        let mut delay = Duration::from_millis(100);
        while !cancel.is_cancelled() {
            match self.follow_once(&js, &cancel).await {
                Ok(()) => delay = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "token table cannot follow the log");
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn follow_once(
        &self,
        js: &jetstream::Context,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let stream = js
            .get_stream(mc_eventlog::streams::EVENTS)
            .await
            .map_err(|e| e.to_string())?;
        let start = self.position() + 1;
        let mut consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: SUBJECTS.into(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let pending = consumer
            .info()
            .await
            .map_err(|e| e.to_string())?
            .num_pending;
        if pending == 0 {
            self.mark_ready();
        }
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        loop {
            let message = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                m = messages.next() => match m {
                    Some(m) => m.map_err(|e| e.to_string())?,
                    None => return Err("token consumer ended".into()),
                },
            };
            let info = message.info().map_err(|e| e.to_string())?;
            let (position, pending) = (info.stream_sequence, info.pending);
            match Commit::decode(&message.payload) {
                Ok(commit) => {
                    if let Err(e) = self.apply(position, &commit) {
                        tracing::error!(position, error = %e, "token event skipped");
                    }
                }
                Err(e) => tracing::error!(position, error = %e, "undecodable token commit skipped"),
            }
            if pending == 0 {
                self.mark_ready();
            }
        }
    }

    fn mark_ready(&self) {
        if !self.0.ready.swap(true, Ordering::AcqRel) {
            tracing::info!(tokens = self.len(), "token table loaded");
        }
    }

    fn len(&self) -> usize {
        self.0.tokens.read().map_or(0, |t| t.len())
    }
}
