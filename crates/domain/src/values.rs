//! Value newtypes that parse client input into something the domain can trust.
//!
//! Limits are part of the API contract (README, "Limits").

use crate::error::FieldError;
use serde_json::{Map, Value};

pub const NAME_MAX_CHARS: usize = 100;
pub const DESCRIPTION_MAX_CHARS: usize = 2_000;
pub const CAPABILITIES_MAX: usize = 50;
pub const CAPABILITY_MAX_CHARS: usize = 64;
pub const METADATA_MAX_BYTES: usize = 16 * 1024;
pub const TITLE_MAX_CHARS: usize = 200;
pub const MISSION_DESCRIPTION_MAX_CHARS: usize = 10_000;
pub const CONTENT_MAX_CHARS: usize = 10_000;
pub const PROGRESS_MAX: u8 = 100;

/// Trimmed single-line text of 1..=`max` characters without control characters.
fn single_line(input: &str, field: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Multi-line text of at most `max` characters: line breaks and tabs are allowed, other
/// control characters are not (a NUL cannot be stored in the Postgres `jsonb` archive).
fn multi_line(input: &str, field: &str, max: usize) -> Result<String, FieldError> {
    if input.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if input
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(input.to_owned())
}

/// A display name: trimmed, 1..=100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        single_line(input, field, NAME_MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Free text of bounded length (may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        if input.chars().count() > DESCRIPTION_MAX_CHARS {
            return Err(FieldError::new(
                field,
                format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
            ));
        }
        if input.contains('\0') {
            return Err(FieldError::new(field, "must not contain NUL characters"));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A set of capability tags: each 1..=64 characters without whitespace; duplicates dropped,
/// order kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities(Vec<String>);

impl Capabilities {
    pub fn parse(input: &[String], field: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if input.len() > CAPABILITIES_MAX {
            errors.push(FieldError::new(
                field,
                format!("must have at most {CAPABILITIES_MAX} entries"),
            ));
            return Err(errors);
        }
        let mut out: Vec<String> = Vec::with_capacity(input.len());
        for (i, cap) in input.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let n = cap.chars().count();
            if n == 0 || n > CAPABILITY_MAX_CHARS {
                errors.push(FieldError::new(
                    at,
                    format!("must be 1 to {CAPABILITY_MAX_CHARS} characters"),
                ));
            } else if cap.chars().any(|c| c.is_whitespace() || c.is_control()) {
                errors.push(FieldError::new(at, "must not contain whitespace"));
            } else if !out.contains(cap) {
                out.push(cap.clone());
            }
        }
        if errors.is_empty() {
            Ok(Self(out))
        } else {
            Err(errors)
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// A JSON object of at most 16 KiB serialized.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata(Map<String, Value>);

/// Whether a JSON value holds a NUL character in any string or key.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

impl Metadata {
    pub fn parse(input: Value, field: &str) -> Result<Self, FieldError> {
        match input {
            Value::Object(map) => {
                // PostgreSQL jsonb cannot store NUL; refuse it here rather than in a projector.
                if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
                    return Err(FieldError::new(field, "must not contain NUL characters"));
                }
                let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
                if size > METADATA_MAX_BYTES {
                    Err(FieldError::new(
                        field,
                        format!("must be at most {METADATA_MAX_BYTES} bytes serialized"),
                    ))
                } else {
                    Ok(Self(map))
                }
            }
            Value::Null => Ok(Self::default()),
            _ => Err(FieldError::new(field, "must be a JSON object")),
        }
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// A mission title: trimmed, 1..=200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        single_line(input, field, TITLE_MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A mission description: at most 10,000 characters (may be empty), line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MissionDescription(String);

impl MissionDescription {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        multi_line(input, field, MISSION_DESCRIPTION_MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The text of a comment: trimmed, 1..=10,000 characters, line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        multi_line(trimmed, field, CONTENT_MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Completion in percent, 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Progress(u8);

impl Progress {
    pub const ZERO: Self = Self(0);
    pub const FULL: Self = Self(PROGRESS_MAX);

    /// Parse client input; `field` names the input in the error.
    pub fn parse(input: i64, field: &str) -> Result<Self, FieldError> {
        u8::try_from(input)
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| FieldError::new(field, "must be from 0 to 100"))
    }

    /// `None` above 100.
    pub const fn new(percent: u8) -> Option<Self> {
        if percent <= PROGRESS_MAX {
            Some(Self(percent))
        } else {
            None
        }
    }

    pub const fn get(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_is_trimmed_and_bounded() {
        assert_eq!(Name::parse("  probe ", "name").unwrap().as_str(), "probe");
        assert_eq!(Name::parse("   ", "name").unwrap_err().field, "name");
        assert!(Name::parse(&"x".repeat(101), "name").is_err());
        assert!(Name::parse(&"é".repeat(100), "name").is_ok());
        assert!(Name::parse("a\u{0}b", "name").is_err());
    }

    #[test]
    fn capabilities_name_the_bad_entry() {
        let errs = Capabilities::parse(&["ok".into(), "".into(), "a b".into()], "capabilities")
            .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["capabilities[1]", "capabilities[2]"]);
        let caps = Capabilities::parse(&["a".into(), "a".into()], "c").unwrap();
        assert_eq!(caps.into_vec(), ["a"]);
    }

    #[test]
    fn nul_characters_are_refused_before_they_reach_postgres() {
        assert!(Description::parse("a\0b", "description").is_err());
        assert!(Metadata::parse(json!({"k": "a\u{0}b"}), "metadata").is_err());
        assert!(Metadata::parse(json!({"a\u{0}": 1}), "metadata").is_err());
        assert!(Metadata::parse(json!({"deep": [{"x": "\u{0}"}]}), "metadata").is_err());
        assert!(Metadata::parse(json!({"k": "\\u0000 is text"}), "metadata").is_ok());
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(Metadata::parse(json!({"a": 1}), "metadata").is_ok());
        assert!(Metadata::parse(json!([1]), "metadata").is_err());
        let big = json!({"a": "x".repeat(METADATA_MAX_BYTES)});
        assert!(Metadata::parse(big, "metadata").is_err());
    }

    #[test]
    fn title_is_trimmed_single_line_and_bounded() {
        assert_eq!(
            Title::parse(" Survey ", "title").unwrap().as_str(),
            "Survey"
        );
        assert_eq!(Title::parse(" ", "title").unwrap_err().field, "title");
        assert!(Title::parse(&"é".repeat(200), "title").is_ok());
        assert!(Title::parse(&"x".repeat(201), "title").is_err());
        assert!(Title::parse("a\nb", "title").is_err());
    }

    #[test]
    fn long_texts_allow_line_breaks_but_no_nul() {
        let max = MISSION_DESCRIPTION_MAX_CHARS;
        assert!(MissionDescription::parse("", "description").is_ok());
        assert!(MissionDescription::parse("a\r\n\tb", "description").is_ok());
        assert!(MissionDescription::parse(&"é".repeat(max), "description").is_ok());
        assert!(MissionDescription::parse(&"x".repeat(max + 1), "description").is_err());
        assert!(MissionDescription::parse("a\u{0}b", "description").is_err());
        assert_eq!(Content::parse("  hi\n ", "content").unwrap().as_str(), "hi");
        assert_eq!(
            Content::parse(" \n ", "content").unwrap_err().field,
            "content"
        );
        assert!(Content::parse(&"x".repeat(CONTENT_MAX_CHARS + 1), "content").is_err());
        assert!(Content::parse("a\u{1b}b", "content").is_err());
    }

    #[test]
    fn progress_is_a_percentage() {
        assert_eq!(Progress::parse(0, "progress"), Ok(Progress::ZERO));
        assert_eq!(Progress::parse(100, "progress"), Ok(Progress::FULL));
        assert_eq!(Progress::parse(42, "progress").unwrap().get(), 42);
        for bad in [-1, 101, 256, i64::MIN, i64::MAX] {
            let err = Progress::parse(bad, "progress").unwrap_err();
            assert_eq!(err, FieldError::new("progress", "must be from 0 to 100"));
        }
        assert_eq!(Progress::new(101), None);
    }
}
