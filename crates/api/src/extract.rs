//! Request parsing that names the field at fault: JSON bodies, query parameters, `If-Match`.

use crate::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use futures::StreamExt;
use mc_domain::{Check, FieldError};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A JSON body whose decoding errors name the field: 400 when it is not JSON, 422 when a
/// field has the wrong type, is missing or is unknown.
pub struct Body<T>(pub T);

/// The raw body of a route that accepts up to `LIMIT` bytes (telemetry: JSON or MessagePack).
pub struct RawBody<const LIMIT: usize>(pub Bytes);

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for RawBody<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        read_body(req, LIMIT).await.map(RawBody)
    }
}

/// Read a whole body of at most `limit` bytes: 413 `payload-too-large` past it (at once when
/// `Content-Length` says so), 408 `request-timeout` when it does not arrive within the body
/// timeout (see [`crate::edges`]).
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit: Some(limit) };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large);
    }
    let mut body = req.into_body().into_data_stream();
    let mut buf = bytes::BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            if crate::edges::is_body_timeout(&e) {
                ApiError::RequestTimeout
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}"))
            }
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        if !is_json {
            return Err(ApiError::BadHeader {
                header: "Content-Type",
                message: "must be application/json".into(),
            });
        }
        let bytes = read_body(req, MAX_BODY_BYTES).await?;
        parse_json(&bytes).map(Body)
    }
}

/// Decode JSON, turning serde's errors into field errors: 400 `malformed-json` whenever the
/// bytes are not JSON at all (even when the decoder met an unknown or mistyped field before
/// the syntax error), 422 `validation` only for well-formed JSON of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Bound the decoder's recursion before it starts: a body nested deeper than any request
    // needs (metadata is at most 16 levels) is refused without being decoded.
    let max = mc_domain::values::JSON_MAX_DEPTH;
    if !mc_domain::values::json_nesting_within(bytes, max) {
        return Err(ApiError::MalformedJson(format!(
            "nested more than {max} levels deep"
        )));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return ApiError::MalformedJson(syntax.to_string());
        }
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                // serde_path_to_error already ends the path with an unknown field; a missing
                // field is reported at its parent, so append its name.
                let missing = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next());
                let field = match (missing, path.as_str()) {
                    (Some(f), ".") => f.to_owned(),
                    (Some(f), parent) => format!("{parent}.{f}"),
                    (None, ".") => "body".to_owned(),
                    (None, p) => p.to_owned(),
                };
                ApiError::Validation(vec![FieldError::new(field, message)])
            }
            _ => ApiError::MalformedJson(inner.to_string()),
        }
    })
}

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 500;

/// Keyset pagination parameters of a list query.
pub struct Page {
    pub limit: u64,
    pub cursor: Option<uuid::Uuid>,
    pub min_position: Option<u64>,
}

impl Page {
    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit as i64 + 1
    }

    /// `{"items": [...], "nextCursor": …}` from the fetched rows.
    pub fn render<T: serde::Serialize>(
        &self,
        mut items: Vec<T>,
        cursor_of: impl Fn(&T) -> String,
    ) -> serde_json::Value {
        let next = if items.len() > self.limit as usize {
            items.truncate(self.limit as usize);
            items.last().map(cursor_of)
        } else {
            None
        };
        serde_json::json!({"items": items, "nextCursor": next})
    }
}

/// Decode an already parsed JSON value (a NATS command's fields), naming the field at fault.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    let bytes = serde_json::to_vec(&value).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    parse_json(&bytes)
}

/// Query parameters, parsed one by one with field errors collected.
pub struct QueryParams {
    params: HashMap<String, String>,
    pub errors: Vec<FieldError>,
}

impl QueryParams {
    pub fn new(params: HashMap<String, String>) -> Self {
        Self {
            params,
            errors: Vec::new(),
        }
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Parse with `parse`, recording its error under `name`.
    pub fn parse<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.str(name)?.to_owned();
        match parse(&raw) {
            Ok(v) => Some(v),
            Err(message) => {
                self.errors.push(FieldError::new(name, message));
                None
            }
        }
    }

    pub fn u64(&mut self, name: &str, min: u64, max: u64) -> Option<u64> {
        self.parse(name, |s| {
            s.parse::<u64>()
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| format!("must be an integer from {min} to {max}"))
        })
    }

    /// `limit` (1..=500, default 50), `cursor` and `minPosition`, shared by every list.
    pub fn page(&mut self) -> Page {
        Page {
            limit: self.u64("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT),
            cursor: self.uuid("cursor", "is not a cursor returned by this API"),
            min_position: self.min_position(),
        }
    }

    /// A time: RFC 3339 or epoch milliseconds.
    pub fn time(&mut self, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        self.parse(name, |s| {
            let v = s.parse::<i64>().map_or_else(
                |_| serde_json::Value::String(s.to_owned()),
                serde_json::Value::from,
            );
            crate::spacecraft::parse_time(&v, name).map_err(|e| e.message)
        })
    }

    pub fn min_position(&mut self) -> Option<u64> {
        self.u64("minPosition", 0, i64::MAX as u64)
    }

    pub fn uuid(&mut self, name: &str, message: &str) -> Option<uuid::Uuid> {
        self.parse(name, |s| {
            uuid::Uuid::parse_str(s).map_err(|_| message.to_owned())
        })
    }

    /// Parse an enum's client spelling.
    pub fn enum_value<T: std::str::FromStr<Err = String>>(&mut self, name: &str) -> Option<T> {
        self.parse(name, |s| s.parse::<T>())
    }

    /// Fail with every recorded error.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// Collects field errors while parsing a body into domain values.
#[derive(Default)]
pub struct Fields(pub Vec<FieldError>);

impl Fields {
    pub fn take<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    /// Like `take` for parsers that report several errors.
    pub fn take_all<T>(&mut self, r: Result<T, Vec<FieldError>>) -> Option<T> {
        r.map_err(|e| self.0.extend(e)).ok()
    }

    /// `value()` when no error was recorded, else every error.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        match (self.0.is_empty(), value()) {
            (true, Some(v)) => Ok(v),
            _ => Err(ApiError::Validation(self.0)),
        }
    }
}

/// Parse an enum's client spelling, naming `field` in the error.
pub fn parse_enum<T: std::str::FromStr<Err = String>>(
    s: &str,
    field: &str,
) -> Result<T, FieldError> {
    s.parse().map_err(|m: String| FieldError::new(field, m))
}

/// `If-Match: "3"` → `Check::MustBe(3)`; absent or `*` → `Check::Any`.
pub fn if_match(headers: &HeaderMap) -> Result<Check, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(Check::Any);
    };
    let bad = || ApiError::BadHeader {
        header: "If-Match",
        message: "must be an ETag of this API (a quoted version number) or *".into(),
    };
    let s = value.to_str().map_err(|_| bad())?.trim();
    if s == "*" {
        return Ok(Check::Any);
    }
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse::<u64>().map(Check::MustBe).map_err(|_| bad())
}

/// `ETag` of an aggregate version.
pub fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        name: String,
        tags: Option<Vec<String>>,
    }

    fn field_of(body: &str) -> String {
        match parse_json::<T>(body.as_bytes()) {
            Err(ApiError::Validation(e)) => e[0].field.clone(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_nesting_bomb_is_malformed_before_it_is_decoded() {
        let bomb = format!(
            r#"{{"name": "a", "tags": {}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(
            matches!(parse_json::<serde_json::Value>(bomb.as_bytes()), Err(ApiError::MalformedJson(m)) if m.contains("levels deep"))
        );
        // Brackets inside strings do not count.
        let text = format!(r#"{{"name": "{}"}}"#, "[".repeat(10_000));
        assert!(parse_json::<T>(text.as_bytes()).is_ok());
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field_of(r#"{"name": 1}"#), "name");
        assert_eq!(field_of(r#"{"name": "a", "bogus": 1}"#), "bogus");
        assert_eq!(field_of(r#"{}"#), "name");
        assert_eq!(field_of(r#"{"name": "a", "tags": [1]}"#), "tags[0]");
        assert!(matches!(
            parse_json::<T>(b"{nope"),
            Err(ApiError::MalformedJson(_))
        ));
        // An unknown or mistyped field before the syntax error is still malformed JSON.
        for truncated in [
            r#"{"bogus": 1, "na"#,
            r#"{"name": 1, "#,
            r#"{"name": "a", "x""#,
        ] {
            assert!(
                matches!(
                    parse_json::<T>(truncated.as_bytes()),
                    Err(ApiError::MalformedJson(_))
                ),
                "{truncated}"
            );
        }
    }

    #[test]
    fn if_match_parses_etags() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), Check::Any);
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"4\""));
        assert_eq!(if_match(&h).unwrap(), Check::MustBe(4));
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"5\""));
        assert_eq!(if_match(&h).unwrap(), Check::MustBe(5));
        h.insert(header::IF_MATCH, HeaderValue::from_static("abc"));
        assert!(if_match(&h).is_err());
    }
}
