//! Which spacecraft exist, for ingest: a cache over the `spacecraft` read model with the event
//! log as the authority on a miss, and the unknown-spacecraft policy (register or reject).

use mc_commands::{CommandContext, CommandError, SpacecraftService};
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::values::{Metadata, Name};
use mc_domain::DomainError;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What to do with telemetry from a spacecraft nobody registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSpacecraft {
    /// Register it (name = id, metadata `{"autoRegistered":true}`) and store the telemetry.
    Register,
    /// Send the telemetry to the dead-letter stream (NATS) or answer 422 (HTTP).
    Reject,
}

impl UnknownSpacecraft {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "register" => Ok(Self::Register),
            "reject" => Ok(Self::Reject),
            other => Err(format!("unknown policy {other:?}: use register or reject")),
        }
    }
}

/// A namespace for the deterministic command ids of auto-registrations.
const AUTO_REGISTER: Uuid = Uuid::from_u128(0x6d63_7465_6c65_6d65_7472_7972_6567_0001);

#[derive(Clone)]
pub struct Registry {
    pool: PgPool,
    spacecraft: SpacecraftService,
    policy: UnknownSpacecraft,
    known: HashSet<String>,
    /// Recently found unknown (under Reject), so a flood of them does not read the log each time.
    unknown: HashMap<String, Instant>,
}

/// How long an unknown spacecraft stays unknown before the log is asked again.
const UNKNOWN_TTL: Duration = Duration::from_secs(1);

impl Registry {
    pub fn new(pool: PgPool, spacecraft: SpacecraftService, policy: UnknownSpacecraft) -> Self {
        Self {
            pool,
            spacecraft,
            policy,
            known: HashSet::new(),
            unknown: HashMap::new(),
        }
    }

    pub fn policy(&self) -> UnknownSpacecraft {
        self.policy
    }

    /// Whether telemetry of `id` may be stored, registering it first under the Register
    /// policy. Errors are transient (NATS, Postgres) and retried by the caller.
    pub async fn admit(&mut self, id: &str) -> Result<bool, String> {
        if self.known.contains(id) {
            return Ok(true);
        }
        if self
            .unknown
            .get(id)
            .is_some_and(|at| at.elapsed() < UNKNOWN_TTL)
        {
            return Ok(false);
        }
        if self.exists(id).await? {
            self.unknown.remove(id);
            self.known.insert(id.to_owned());
            return Ok(true);
        }
        if self.policy == UnknownSpacecraft::Reject {
            if self.unknown.len() > 10_000 {
                self.unknown.clear();
            }
            self.unknown.insert(id.to_owned(), Instant::now());
            return Ok(false);
        }
        let parsed = SpacecraftId::parse(id, "spacecraftId").map_err(|e| e.message)?;
        let name = Name::parse(id, "name").map_err(|e| e.message)?;
        let mut metadata = serde_json::Map::new();
        metadata.insert("autoRegistered".into(), true.into());
        let metadata = Metadata::parse(serde_json::Value::Object(metadata), "metadata")
            .map_err(|e| e.to_string())?;
        let command_id = Uuid::new_v5(&AUTO_REGISTER, id.as_bytes());
        let ctx = CommandContext::new("telemetry-ingest", Some(command_id));
        match self.spacecraft.register(&ctx, parsed, name, metadata).await {
            Ok(_) | Err(CommandError::Domain(DomainError::AlreadyExists { .. })) => {
                tracing::info!(
                    spacecraft = id,
                    "registered a spacecraft on its first telemetry"
                );
                self.known.insert(id.to_owned());
                Ok(true)
            }
            Err(e) => Err(format!("cannot register spacecraft {id}: {e}")),
        }
    }

    /// Registered? The read model first; on a miss the event log decides (the read model may
    /// not have caught up with a registration yet).
    pub async fn exists(&self, id: &str) -> Result<bool, String> {
        let row: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM spacecraft WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| e.to_string())?;
        if row.is_some() {
            return Ok(true);
        }
        self.spacecraft.exists(id).await.map_err(|e| e.to_string())
    }
}
