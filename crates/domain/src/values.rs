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

/// A display name: trimmed, 1..=100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if trimmed.chars().count() > NAME_MAX_CHARS {
            return Err(FieldError::new(
                field,
                format!("must be at most {NAME_MAX_CHARS} characters"),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
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

impl Metadata {
    pub fn parse(input: Value, field: &str) -> Result<Self, FieldError> {
        match input {
            Value::Object(map) => {
                let size = serde_json::to_vec(&map)
                    .map(|v| v.len())
                    .unwrap_or(usize::MAX);
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
    fn metadata_must_be_a_small_object() {
        assert!(Metadata::parse(json!({"a": 1}), "metadata").is_ok());
        assert!(Metadata::parse(json!([1]), "metadata").is_err());
        let big = json!({"a": "x".repeat(METADATA_MAX_BYTES)});
        assert!(Metadata::parse(big, "metadata").is_err());
    }
}
