//! Stored schema of the Backup events.

use super::{payload, to_value, EventSchema, SchemaError};
use mc_domain::backup::{BackupEvent, BackupSummary};
use serde::{Deserialize, Serialize};

pub const COMPLETED: &str = "backup.completed";
pub const FAILED: &str = "backup.failed";

pub(super) const VERSIONS: &[(&str, u32)] = &[(COMPLETED, 1), (FAILED, 1)];
pub(super) const UPCASTERS: &[super::Upcaster] = &[];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompletedV1 {
    id: String,
    first: u64,
    last: u64,
    messages: u64,
    compressed_bytes: u64,
    manifest_sha256: String,
    scheduled: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailedV1 {
    reason: String,
    scheduled: bool,
}

impl EventSchema for BackupEvent {
    fn to_stored(&self) -> (&'static str, u32, serde_json::Value) {
        match self {
            Self::Completed(s) => (
                COMPLETED,
                1,
                to_value(&CompletedV1 {
                    id: s.id.clone(),
                    first: s.first,
                    last: s.last,
                    messages: s.messages,
                    compressed_bytes: s.compressed_bytes,
                    manifest_sha256: s.manifest_sha256.clone(),
                    scheduled: s.scheduled,
                }),
            ),
            Self::Failed { reason, scheduled } => (
                FAILED,
                1,
                to_value(&FailedV1 {
                    reason: reason.clone(),
                    scheduled: *scheduled,
                }),
            ),
        }
    }

    fn from_current(event_type: &str, value: serde_json::Value) -> Result<Self, SchemaError> {
        Ok(match event_type {
            COMPLETED => {
                let p: CompletedV1 = payload(event_type, value)?;
                Self::Completed(BackupSummary {
                    id: p.id,
                    first: p.first,
                    last: p.last,
                    messages: p.messages,
                    compressed_bytes: p.compressed_bytes,
                    manifest_sha256: p.manifest_sha256,
                    scheduled: p.scheduled,
                })
            }
            FAILED => {
                let p: FailedV1 = payload(event_type, value)?;
                Self::Failed {
                    reason: p.reason,
                    scheduled: p.scheduled,
                }
            }
            other => {
                return Err(SchemaError::UnknownType {
                    event_type: other.to_owned(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Snapshot of the stored form: renaming a variant or field must not change these.
    #[test]
    fn stored_form_is_stable() {
        let cases = [
            (
                BackupEvent::Completed(BackupSummary {
                    id: "b1".into(),
                    first: 1,
                    last: 2,
                    messages: 2,
                    compressed_bytes: 3,
                    manifest_sha256: "ab".repeat(32),
                    scheduled: false,
                }),
                json!({"type": "backup.completed", "v": 1, "payload": {"id": "b1", "first": 1,
                    "last": 2, "messages": 2, "compressedBytes": 3,
                    "manifestSha256": "ab".repeat(32), "scheduled": false}}),
            ),
            (
                BackupEvent::Failed {
                    reason: "disk full".into(),
                    scheduled: true,
                },
                json!({"type": "backup.failed", "v": 1,
                    "payload": {"reason": "disk full", "scheduled": true}}),
            ),
        ];
        for (event, expected) in cases {
            let (t, v, p) = event.to_stored();
            assert_eq!(json!({"type": t, "v": v, "payload": p}), expected);
            assert_eq!(super::super::current_version(t), Some(v));
            assert_eq!(BackupEvent::from_stored(t, v, p).unwrap(), event);
        }
    }
}
