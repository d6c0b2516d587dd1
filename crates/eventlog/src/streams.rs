//! Provisioning of the JetStream streams and KV buckets from the definitions under
//! `nats/streams/`, idempotent at every start (create, or update to the definition).

use async_nats::jetstream::{kv, stream, Context};
use std::time::Duration;

pub const EVENTS: &str = "MC_EVENTS";
pub const TELEMETRY: &str = "MC_TELEMETRY";
pub const DLQ: &str = "MC_DLQ";
/// KV bucket holding unique-name reservations (`agent.<hex name>` → agent id).
pub const NAMES_BUCKET: &str = "mc_names";

const DEFINITIONS: [(&str, &str); 3] = [
    (EVENTS, include_str!("../../../nats/streams/MC_EVENTS.json")),
    (
        TELEMETRY,
        include_str!("../../../nats/streams/MC_TELEMETRY.json"),
    ),
    (DLQ, include_str!("../../../nats/streams/MC_DLQ.json")),
];

/// Deployment-specific overrides of the checked-in definitions.
#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    /// 1 for a single node, 3 for the clustered deployment.
    pub replicas: usize,
    pub telemetry_max_age: Duration,
}

impl Default for ProvisionOptions {
    fn default() -> Self {
        Self {
            replicas: 1,
            telemetry_max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("stream definition {name} is invalid: {reason}")]
    Definition { name: &'static str, reason: String },
    #[error("provisioning {name} failed: {reason}")]
    Server { name: String, reason: String },
}

/// The stream configurations as they will be applied.
pub fn definitions(options: &ProvisionOptions) -> Result<Vec<stream::Config>, ProvisionError> {
    DEFINITIONS
        .iter()
        .map(|(name, json)| {
            let mut config: stream::Config =
                serde_json::from_str(json).map_err(|e| ProvisionError::Definition {
                    name,
                    reason: e.to_string(),
                })?;
            config.num_replicas = options.replicas;
            if *name == TELEMETRY {
                config.max_age = options.telemetry_max_age;
            }
            Ok(config)
        })
        .collect()
}

/// Create or update every stream and bucket. Safe to run at every start, from many processes.
pub async fn provision(js: &Context, options: &ProvisionOptions) -> Result<(), ProvisionError> {
    for config in definitions(options)? {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|e| ProvisionError::Server {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        tracing::debug!(stream = %name, "stream provisioned");
    }
    js.create_or_update_key_value(kv::Config {
        bucket: NAMES_BUCKET.to_owned(),
        description: "unique-name reservations".to_owned(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: options.replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| ProvisionError::Server {
        name: NAMES_BUCKET.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(())
}

/// True when every stream exists (readiness).
pub async fn provisioned(js: &Context) -> bool {
    for (name, _) in DEFINITIONS {
        if js.get_stream_no_info(name).await.is_err() || js.get_stream(name).await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_definitions_parse_and_keep_their_guarantees() {
        let defs = definitions(&ProvisionOptions {
            replicas: 3,
            telemetry_max_age: Duration::from_secs(60),
        })
        .unwrap();
        let events = defs.iter().find(|c| c.name == EVENTS).unwrap();
        assert!(events.deny_delete && events.deny_purge);
        assert_eq!(events.max_age, Duration::ZERO);
        assert_eq!(events.num_replicas, 3);
        assert_eq!(events.subjects, ["mc.events.>"]);
        let telemetry = defs.iter().find(|c| c.name == TELEMETRY).unwrap();
        assert_eq!(telemetry.max_age, Duration::from_secs(60));
    }
}
