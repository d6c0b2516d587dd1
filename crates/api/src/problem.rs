//! One error type for the HTTP API and its table of codes, statuses and titles; rendered as
//! `application/problem+json` (RFC 9457).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mc_commands::CommandError;
use mc_domain::{DomainError, FieldError};
use serde_json::{json, Value};

#[derive(Debug)]
pub enum ApiError {
    /// The body is not JSON at all.
    MalformedJson(String),
    /// Fields that do not parse or validate.
    Validation(Vec<FieldError>),
    /// A header that does not parse (`If-Match`).
    BadHeader {
        header: &'static str,
        message: String,
    },
    NotFound {
        what: &'static str,
    },
    AlreadyExists {
        what: &'static str,
    },
    InvalidTransition {
        what: &'static str,
        from: String,
        to: String,
    },
    /// `If-Match` is stale.
    PreconditionFailed {
        expected: u64,
        actual: u64,
    },
    /// Concurrent writers won every retry.
    Conflict {
        expected: u64,
        actual: u64,
    },
    NameTaken {
        name: String,
    },
    /// A NATS command subject naming no known action.
    UnknownCommand {
        action: String,
        known: &'static [&'static str],
    },
    Unavailable(String),
    Internal(String),
    /// A request the HTTP layer refused before any handler saw it (a query string or path
    /// that does not parse).
    BadRequest(String),
    /// The route exists, the method does not (the router adds the `Allow` header).
    MethodNotAllowed,
    /// The body is larger than the route accepts.
    PayloadTooLarge {
        limit: Option<usize>,
    },
    /// The body did not arrive within `MC_HTTP_BODY_TIMEOUT_MS`.
    RequestTimeout,
    /// No valid credentials (401), not allowed (403), too many writes (429), or the token
    /// table still loading (503).
    Auth(mc_auth::AuthError),
    /// A backup that is unknown, damaged, from a newer version, or a backup or restore refused.
    Backup(mc_backup::BackupError),
    /// A route the permission table has no rule for: a bug, refused rather than left open.
    NoRule {
        method: String,
        path: String,
    },
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The table: stable code, HTTP status, title.
    fn code(&self) -> (&'static str, StatusCode, &'static str) {
        match self {
            Self::MalformedJson(_) => (
                "malformed-json",
                StatusCode::BAD_REQUEST,
                "request body is not valid JSON",
            ),
            Self::Validation(_) => (
                "validation",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid input",
            ),
            Self::BadHeader { .. } => ("bad-header", StatusCode::BAD_REQUEST, "invalid header"),
            Self::NotFound { .. } => ("not-found", StatusCode::NOT_FOUND, "not found"),
            Self::AlreadyExists { .. } => {
                ("already-exists", StatusCode::CONFLICT, "already exists")
            }
            Self::InvalidTransition { .. } => (
                "invalid-transition",
                StatusCode::CONFLICT,
                "illegal state transition",
            ),
            Self::PreconditionFailed { .. } => (
                "precondition-failed",
                StatusCode::PRECONDITION_FAILED,
                "version does not match If-Match",
            ),
            Self::Conflict { .. } => ("conflict", StatusCode::CONFLICT, "concurrent modification"),
            Self::NameTaken { .. } => ("name-taken", StatusCode::CONFLICT, "name already taken"),
            Self::UnknownCommand { .. } => {
                ("unknown-command", StatusCode::NOT_FOUND, "unknown command")
            }
            Self::Unavailable(_) => (
                "unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "dependency unavailable",
            ),
            Self::Internal(_) => (
                "internal",
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            ),
            Self::BadRequest(_) => ("bad-request", StatusCode::BAD_REQUEST, "bad request"),
            Self::MethodNotAllowed => (
                "method-not-allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
            ),
            Self::PayloadTooLarge { .. } => (
                "payload-too-large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ),
            Self::RequestTimeout => (
                "request-timeout",
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            ),
            Self::Auth(e) => match e.status() {
                403 => ("forbidden", StatusCode::FORBIDDEN, "not allowed"),
                429 => (
                    "rate-limited",
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests",
                ),
                503 => (
                    "unavailable",
                    StatusCode::SERVICE_UNAVAILABLE,
                    "dependency unavailable",
                ),
                _ => (
                    "unauthenticated",
                    StatusCode::UNAUTHORIZED,
                    "valid credentials required",
                ),
            },
            Self::Backup(e) => {
                use mc_backup::BackupError as B;
                match e {
                    B::UnknownBackup(_) => ("not-found", StatusCode::NOT_FOUND, "not found"),
                    B::Incomplete(_) => (
                        "backup-incomplete",
                        StatusCode::CONFLICT,
                        "backup never finished",
                    ),
                    B::Corrupt(_) => (
                        "backup-corrupt",
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "backup is damaged",
                    ),
                    B::Newer(_) => (
                        "backup-newer",
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "backup comes from a newer version",
                    ),
                    B::Refused(_) => ("refused", StatusCode::CONFLICT, "refused"),
                    B::Nats(_) => (
                        "unavailable",
                        StatusCode::SERVICE_UNAVAILABLE,
                        "dependency unavailable",
                    ),
                    B::Io(_) => (
                        "internal",
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal error",
                    ),
                }
            }
            Self::NoRule { .. } => (
                "no-permission-rule",
                StatusCode::INTERNAL_SERVER_ERROR,
                "route has no permission rule",
            ),
        }
    }

    pub(crate) fn body(&self) -> Value {
        let (code, status, title) = self.code();
        let mut body = json!({
            "type": format!("/problems/{code}"),
            "title": title,
            "status": status.as_u16(),
            "code": code,
        });
        let extra = match self {
            Self::MalformedJson(detail) => json!({"detail": detail}),
            Self::Validation(errors) => json!({
                "detail": errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                "errors": errors.iter().map(|e| json!({"field": e.field, "message": e.message})).collect::<Vec<_>>(),
            }),
            Self::BadHeader { header, message } => json!({
                "detail": format!("{header}: {message}"),
                "errors": [{"field": header, "message": message}],
            }),
            Self::NotFound { what } => json!({"detail": format!("{what} not found")}),
            Self::AlreadyExists { what } => json!({"detail": format!("{what} already exists")}),
            Self::InvalidTransition { what, from, to } => json!({
                "detail": format!("{what} cannot go from {from} to {to}"),
                "currentState": from,
            }),
            Self::PreconditionFailed { expected, actual } | Self::Conflict { expected, actual } => {
                json!({
                    "detail": format!("expected version {expected}, actual {actual}"),
                    "expectedVersion": expected,
                    "actualVersion": actual,
                })
            }
            Self::NameTaken { name } => json!({
                "detail": format!("name {name:?} is already taken"),
                "errors": [{"field": "name", "message": "is already taken"}],
            }),
            Self::UnknownCommand { action, known } => json!({
                "detail": format!("no command {action:?}; known: {}", known.join(", ")),
            }),
            Self::Unavailable(detail) | Self::Internal(detail) | Self::BadRequest(detail) => {
                json!({"detail": detail})
            }
            Self::MethodNotAllowed => json!({
                "detail": "this resource does not accept this method; Allow lists those it does",
            }),
            Self::PayloadTooLarge { limit: Some(limit) } => json!({
                "detail": format!("the body of this route is limited to {limit} bytes"),
                "limit": limit,
            }),
            Self::PayloadTooLarge { limit: None } => json!({"detail": "length limit exceeded"}),
            Self::RequestTimeout => json!({
                "detail": "the request body did not arrive in time; the connection is closed",
            }),
            Self::Auth(mc_auth::AuthError::Forbidden { required, role }) => json!({
                "detail": format!("this needs the {required} role; the caller is {role}"),
                "requiredRole": required.as_str(),
            }),
            Self::Auth(e @ mc_auth::AuthError::RateLimited { retry_after_secs }) => json!({
                "detail": e.to_string(),
                "retryAfter": retry_after_secs,
            }),
            Self::Auth(e) => json!({"detail": e.to_string()}),
            Self::Backup(e) => json!({"detail": e.to_string()}),
            Self::NoRule { method, path } => json!({
                "detail": format!("{method} {path} has no rule in the permission table"),
            }),
        };
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status, _) = self.code();
        if status.is_server_error() {
            tracing::warn!(code, error = ?self, "request failed");
        }
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            Self::Unavailable(_) | Self::Auth(mc_auth::AuthError::NotReady) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Auth(mc_auth::AuthError::RateLimited { retry_after_secs }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Auth(e) if e.is_unauthenticated() => {
                let challenge = match e {
                    mc_auth::AuthError::Missing => "Bearer realm=\"mission-control\"",
                    _ => "Bearer realm=\"mission-control\", error=\"invalid_token\"",
                };
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            // The rest of the body is still on the wire: this connection cannot carry another
            // request.
            Self::RequestTimeout | Self::PayloadTooLarge { .. } => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(d) => d.into(),
            CommandError::Precondition(c) => Self::PreconditionFailed {
                expected: c.expected,
                actual: c.actual,
            },
            CommandError::Concurrency { expected, actual } => Self::Conflict { expected, actual },
            CommandError::NameTaken { name } => Self::NameTaken { name },
            CommandError::Unavailable(e) => Self::Unavailable(e),
            CommandError::Corrupt(e) => Self::Internal(e),
        }
    }
}

impl From<mc_backup::BackupError> for ApiError {
    fn from(e: mc_backup::BackupError) -> Self {
        Self::Backup(e)
    }
}

impl From<mc_auth::AuthError> for ApiError {
    fn from(e: mc_auth::AuthError) -> Self {
        Self::Auth(e)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Validation(errors) => Self::Validation(errors),
            DomainError::NotFound { aggregate } => Self::NotFound { what: aggregate },
            DomainError::AlreadyExists { aggregate } => Self::AlreadyExists { what: aggregate },
            DomainError::InvalidTransition {
                aggregate,
                from,
                to,
            } => Self::InvalidTransition {
                what: aggregate,
                from,
                to,
            },
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(format!("postgres: {e}"))
            }
            e => Self::Internal(format!("postgres: {e}")),
        }
    }
}
