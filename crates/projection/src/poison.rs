//! What a failed batch means: retry it (the fault is elsewhere and passes), or isolate the
//! message that will fail every time. Classified by error kind and PostgreSQL SQLSTATE class,
//! never by matching message text.

/// Why a sink could not apply a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The fault is outside the batch (connection lost, serialization failure, NATS away,
    /// missing privileges or tables): the same batch is retried with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// The batch will fail again whenever it is applied (bad data, a broken constraint, a
    /// panic). `position` names the offending message when the sink knows it; otherwise the
    /// runtime splits the batch until the offender is alone.
    #[error("{reason}")]
    Poison {
        position: Option<u64>,
        reason: String,
    },
    /// The message at `position` is not input at all (it cannot be decoded): every consumer
    /// records it and goes past it, whatever its poison policy.
    #[error("rejected position {position}: {reason}")]
    Reject { position: u64, reason: String },
}

impl SinkError {
    pub fn poison_at(position: u64, reason: impl Into<String>) -> Self {
        Self::Poison {
            position: Some(position),
            reason: reason.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// SQLSTATE classes whose errors come from the data being written: the same rows fail again.
/// 22 data exception (U+0000 in text or jsonb, out-of-range numbers, bad encodings),
/// 23 integrity constraint violation (unique, check, foreign key, not null).
const DATA_CLASSES: [&str; 2] = ["22", "23"];

/// Classify a Postgres error: data errors are poison, everything else is retried.
pub fn classify(error: &sqlx::Error) -> SinkError {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let text = format!("postgres {code}: {}", db.message());
            if DATA_CLASSES.iter().any(|class| code.starts_with(class)) {
                SinkError::Poison {
                    position: None,
                    reason: text,
                }
            } else {
                SinkError::Transient(text)
            }
        }
        // Rows that cannot be read back as the code expects: retrying reads them again.
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::Encode(_) => {
            SinkError::Poison {
                position: None,
                reason: error.to_string(),
            }
        }
        other => SinkError::Transient(other.to_string()),
    }
}

impl From<sqlx::Error> for SinkError {
    fn from(error: sqlx::Error) -> Self {
        classify(&error)
    }
}

/// What a consumer does with a message that fails whenever it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonPolicy {
    /// Record it and stop (state `failed`, readiness fails): for read models that must not
    /// silently miss an event.
    Stop,
    /// Record it (and dead-letter it, if the sink does) and go on past it.
    Skip,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Db(&'static str);

    impl std::fmt::Display for Db {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "db error {}", self.0)
        }
    }

    impl std::error::Error for Db {}

    impl sqlx::error::DatabaseError for Db {
        fn message(&self) -> &str {
            "boom"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn class(code: &'static str) -> SinkError {
        classify(&sqlx::Error::Database(Box::new(Db(code))))
    }

    #[test]
    fn data_errors_are_poison() {
        // untranslatable character (U+0000 in jsonb), unique violation, check violation
        for code in ["22P05", "22021", "23505", "23514", "22003"] {
            assert!(
                matches!(class(code), SinkError::Poison { position: None, .. }),
                "{code}"
            );
        }
    }

    #[test]
    fn faults_elsewhere_are_transient() {
        // serialization failure, deadlock, admin shutdown, undefined table, no privilege
        for code in [
            "40001", "40P01", "57P01", "42P01", "42501", "08006", "53300",
        ] {
            assert!(class(code).is_transient(), "{code}");
        }
        assert!(classify(&sqlx::Error::PoolTimedOut).is_transient());
        assert!(classify(&sqlx::Error::Io(std::io::ErrorKind::BrokenPipe.into())).is_transient());
    }
}
