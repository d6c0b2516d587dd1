//! The Backup aggregate: the record of one backup of the event log, kept in the log itself, so
//! every backup is audited (who or what started it, when, which positions) and comes back with
//! a restore. Files and hashes are the backup crate's; this only decides what is recorded.

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldError};

/// A completed backup as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub id: String,
    pub first: u64,
    pub last: u64,
    pub messages: u64,
    pub compressed_bytes: u64,
    /// SHA-256 of the backup's manifest (hex): which bytes this record vouches for.
    pub manifest_sha256: String,
    /// Started by the schedule (else by a principal, the event's actor).
    pub scheduled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Backup {
    #[default]
    Absent,
    Completed(BackupSummary),
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupCommand {
    Complete(BackupSummary),
    Fail { reason: String, scheduled: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupEvent {
    Completed(BackupSummary),
    Failed { reason: String, scheduled: bool },
}

const BACKUP: &str = "backup";
/// Longest failure reason kept (longer ones are cut).
pub const REASON_MAX: usize = 1_000;

/// A backup id as the backup crate makes them: letters, digits, `-`, `_`; at most 64.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Aggregate for Backup {
    const TYPE: &'static str = BACKUP;
    type Command = BackupCommand;
    type Event = BackupEvent;

    fn decide(&self, command: &BackupCommand) -> Result<Vec<BackupEvent>, DomainError> {
        match (self, command) {
            (Self::Absent, BackupCommand::Complete(s)) => {
                let mut errors = Vec::new();
                if !valid_id(&s.id) {
                    errors.push(FieldError::new("id", "must be a backup id"));
                }
                if s.messages > 0 && (s.first == 0 || s.last < s.first) {
                    errors.push(FieldError::new("last", "must not be below first"));
                }
                let hex = s.manifest_sha256.len() == 64
                    && s.manifest_sha256
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if !hex {
                    errors.push(FieldError::new(
                        "manifestSha256",
                        "must be 64 lowercase hex digits",
                    ));
                }
                if errors.is_empty() {
                    Ok(vec![BackupEvent::Completed(s.clone())])
                } else {
                    Err(DomainError::Validation(errors))
                }
            }
            (Self::Absent, BackupCommand::Fail { reason, scheduled }) => {
                Ok(vec![BackupEvent::Failed {
                    reason: reason.chars().take(REASON_MAX).collect(),
                    scheduled: *scheduled,
                }])
            }
            // Recording the same outcome again (a retried command) changes nothing.
            (Self::Completed(done), BackupCommand::Complete(s)) if done == s => Ok(vec![]),
            (Self::Failed { .. }, BackupCommand::Fail { .. }) => Ok(vec![]),
            _ => Err(DomainError::AlreadyExists { aggregate: BACKUP }),
        }
    }

    fn evolve(self, event: &BackupEvent) -> Self {
        match (self, event) {
            (Self::Absent, BackupEvent::Completed(s)) => Self::Completed(s.clone()),
            (Self::Absent, BackupEvent::Failed { reason, .. }) => Self::Failed {
                reason: reason.clone(),
            },
            (state, _) => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> BackupSummary {
        BackupSummary {
            id: "20261203T000000Z-0a1b2c3d".into(),
            first: 1,
            last: 10,
            messages: 10,
            compressed_bytes: 100,
            manifest_sha256: "ab".repeat(32),
            scheduled: true,
        }
    }

    fn given(events: &[BackupEvent]) -> Backup {
        events.iter().fold(Backup::default(), Backup::evolve)
    }

    #[test]
    fn a_backup_is_recorded_once_and_a_retry_changes_nothing() {
        let s = summary();
        let done = Backup::default()
            .decide(&BackupCommand::Complete(s.clone()))
            .unwrap();
        assert_eq!(done, [BackupEvent::Completed(s.clone())]);
        let state = given(&done);
        assert_eq!(
            state.decide(&BackupCommand::Complete(s.clone())).unwrap(),
            []
        );
        let other = BackupSummary {
            last: 11,
            messages: 11,
            ..s
        };
        assert!(state.decide(&BackupCommand::Complete(other)).is_err());
        assert!(state
            .decide(&BackupCommand::Fail {
                reason: "x".into(),
                scheduled: false
            })
            .is_err());
    }

    #[test]
    fn a_failure_is_recorded_with_its_reason_cut_to_size() {
        let failed = Backup::default()
            .decide(&BackupCommand::Fail {
                reason: "x".repeat(5_000),
                scheduled: true,
            })
            .unwrap();
        let BackupEvent::Failed { reason, scheduled } = &failed[0] else {
            panic!()
        };
        assert_eq!((reason.len(), *scheduled), (REASON_MAX, true));
        assert_eq!(
            given(&failed)
                .decide(&BackupCommand::Fail {
                    reason: "y".into(),
                    scheduled: true
                })
                .unwrap(),
            []
        );
    }

    #[test]
    fn bad_summaries_name_their_field() {
        for (s, field) in [
            (
                BackupSummary {
                    id: "../x".into(),
                    ..summary()
                },
                "id",
            ),
            (
                BackupSummary {
                    first: 5,
                    last: 4,
                    ..summary()
                },
                "last",
            ),
            (
                BackupSummary {
                    manifest_sha256: "nope".into(),
                    ..summary()
                },
                "manifestSha256",
            ),
        ] {
            match Backup::default().decide(&BackupCommand::Complete(s)) {
                Err(DomainError::Validation(e)) => assert_eq!(e[0].field, field),
                other => panic!("{other:?}"),
            }
        }
    }
}
