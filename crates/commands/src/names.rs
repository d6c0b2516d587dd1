//! Unique names across aggregates, reserved in the NATS KV bucket `mc_names` with
//! create-if-absent. See ARCHITECTURE.md, "Unique names".

use crate::error::CommandError;
use async_nats::jetstream::kv::{CreateErrorKind, Operation, Store};
use async_nats::jetstream::Context;
use chrono::{DateTime, Utc};
use mc_eventlog::streams::NAMES_BUCKET;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::time::Duration;

/// A reservation whose owner never appeared in the log may be taken over after this long
/// (longer than any command can take: its owner crashed between reserve and append).
pub const ORPHAN_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
struct Reservation {
    owner: String,
    at: DateTime<Utc>,
}

/// What the caller knows about a reservation's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner holds this name in the log.
    Holds,
    /// The owner was removed or renamed: the reservation is stale.
    Released,
    /// The owner has no events (yet, or ever).
    Missing,
}

#[derive(Clone)]
pub struct NameRegistry {
    js: Context,
    /// The bucket handle, looked up once (a lookup is a JetStream round trip).
    store: std::sync::Arc<tokio::sync::OnceCell<Store>>,
}

/// Case-insensitive key: `<scope>.<hex of the lowercased name>` (KV keys allow few characters).
fn key(scope: &str, name: &str) -> String {
    let mut k = String::with_capacity(scope.len() + 1 + name.len() * 2);
    k.push_str(scope);
    k.push('.');
    for b in name.to_lowercase().as_bytes() {
        let _ = write!(k, "{b:02x}");
    }
    k
}

fn unavailable(e: impl std::fmt::Display) -> CommandError {
    CommandError::Unavailable(format!("name registry: {e}"))
}

impl NameRegistry {
    pub fn new(js: Context) -> Self {
        Self {
            js,
            store: std::sync::Arc::default(),
        }
    }

    async fn store(&self) -> Result<Store, CommandError> {
        self.store
            .get_or_try_init(|| async {
                self.js
                    .get_key_value(NAMES_BUCKET)
                    .await
                    .map_err(unavailable)
            })
            .await
            .cloned()
    }

    /// Reserve `name` for `owner`. `owner_state` tells whether an existing reservation's owner
    /// still holds the name. Of concurrent reservations of one name exactly one succeeds.
    pub async fn reserve<F, Fut>(
        &self,
        scope: &str,
        name: &str,
        owner: &str,
        owner_state: F,
    ) -> Result<(), CommandError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<OwnerState, CommandError>>,
    {
        let store = self.store().await?;
        let key = key(scope, name);
        let value = serde_json::to_vec(&Reservation {
            owner: owner.to_owned(),
            at: Utc::now(),
        })
        .map_err(unavailable)?;
        for _ in 0..3 {
            match store.create(&key, value.clone().into()).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(unavailable(e)),
            }
            let Some(entry) = store.entry(&key).await.map_err(unavailable)? else {
                continue;
            };
            if entry.operation != Operation::Put {
                continue;
            }
            let held: Reservation = match serde_json::from_slice(&entry.value) {
                Ok(r) => r,
                Err(_) => Reservation {
                    owner: String::new(),
                    at: DateTime::<Utc>::MIN_UTC,
                },
            };
            if held.owner == owner {
                return Ok(());
            }
            let stale = match owner_state(held.owner.clone()).await? {
                OwnerState::Holds => false,
                OwnerState::Released => true,
                OwnerState::Missing => {
                    Utc::now()
                        .signed_duration_since(held.at)
                        .to_std()
                        .unwrap_or_default()
                        > ORPHAN_AFTER
                }
            };
            if !stale {
                return Err(CommandError::NameTaken {
                    name: name.to_owned(),
                });
            }
            match store
                .update(&key, value.clone().into(), entry.revision)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => tracing::debug!(error = %e, "name takeover raced, retrying"),
            }
        }
        Err(CommandError::NameTaken {
            name: name.to_owned(),
        })
    }

    /// Make `owner` hold `name` whatever the bucket held (restoring reservations from the log;
    /// see `AgentService::restore_names`).
    pub async fn claim(&self, scope: &str, name: &str, owner: &str) -> Result<(), CommandError> {
        let store = self.store().await?;
        let value = serde_json::to_vec(&Reservation {
            owner: owner.to_owned(),
            at: Utc::now(),
        })
        .map_err(unavailable)?;
        store
            .put(key(scope, name), value.into())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Release `name` if `owner` holds it. Best effort: a leftover reservation is stale and
    /// will be taken over by the next claimant.
    pub async fn release(&self, scope: &str, name: &str, owner: &str) {
        let result = async {
            let store = self.store().await?;
            let key = key(scope, name);
            if let Some(entry) = store.entry(&key).await.map_err(unavailable)? {
                let held: Option<Reservation> = serde_json::from_slice(&entry.value).ok();
                if entry.operation == Operation::Put && held.is_some_and(|r| r.owner == owner) {
                    store
                        .delete_expect_revision(&key, Some(entry.revision))
                        .await
                        .map_err(unavailable)?;
                }
            }
            Ok::<_, CommandError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(scope, name, owner, error = %e, "name release failed; it will be taken over when stale");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn keys_are_case_insensitive_and_kv_safe() {
        assert_eq!(key("agent", "Probe"), key("agent", "probe"));
        let k = key("agent", "a b.*>/é");
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
    }
}
