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

pub const REASON_MAX_CHARS: usize = 1_000;
pub const ACTOR_MAX_CHARS: usize = 200;
/// Nesting of a JSON body (HTTP request, NATS command) from outside: the body, a metadata
/// object in it (at most [`METADATA_MAX_DEPTH`]) and room to spare.
pub const JSON_MAX_DEPTH: usize = 32;
/// Nesting of a metadata value, the object itself being level 1.
pub const METADATA_MAX_DEPTH: usize = 16;

/// Whether `c` is a Unicode format character (general category Cf: zero-width space and
/// joiners, bidi embeddings, overrides and isolates, the BOM, tags…), Unicode 15.1.
pub fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x2064
        | 0x2066..=0x206F
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F)
}

/// The one check of free text from outside (reasons, comments, descriptions, telemetry
/// strings…): at most `max` characters, no NUL (PostgreSQL `text` and `jsonb` cannot hold
/// it, so an event carrying one could never be archived), and no control character other
/// than line breaks and tabs. It may be empty; it is not trimmed.
pub fn check_text(input: &str, field: &str, max: usize) -> Result<(), FieldError> {
    // Bytes bound characters from above: skip the count for short inputs.
    if input.len() > max && input.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    for c in input.chars() {
        if c == '\0' {
            return Err(FieldError::new(field, "must not contain NUL characters"));
        }
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
            return Err(FieldError::new(
                field,
                "must not contain control characters other than line breaks and tabs",
            ));
        }
    }
    Ok(())
}

/// Whether JSON text nests arrays and objects at most `max` levels deep. A byte scan, run
/// before a recursive decoder so that the decoder's stack use never depends on the input;
/// it does not validate the JSON (the decoder does).
pub fn json_nesting_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Free text of at most `max` characters that passed [`check_text`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(String);

impl Text {
    pub fn parse(input: &str, field: &str, max: usize) -> Result<Self, FieldError> {
        check_text(input, field, max).map(|()| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Why a status changes: free text of at most 1,000 characters.
pub fn parse_reason(input: &str, field: &str) -> Result<String, FieldError> {
    Text::parse(input, field, REASON_MAX_CHARS).map(Text::into_string)
}

/// An actor name (NATS `actor`, `X-Actor`): a single line of 1..=200 characters.
pub fn parse_actor(input: &str, field: &str) -> Result<String, FieldError> {
    single_line(input, field, ACTOR_MAX_CHARS)
}

/// Trimmed single-line text of 1..=`max` characters without control characters, and not
/// blank once format characters (zero-width, bidi overrides) are set aside.
fn single_line(input: &str, field: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = input.trim();
    check_text(trimmed, field, max)?;
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    if trimmed
        .chars()
        .all(|c| c.is_whitespace() || is_format_char(c))
    {
        return Err(FieldError::new(field, "must not be empty"));
    }
    Ok(trimmed.to_owned())
}

/// Multi-line text of at most `max` characters: line breaks and tabs are allowed, other
/// control characters are not (a NUL cannot be stored in the Postgres `jsonb` archive).
fn multi_line(input: &str, field: &str, max: usize) -> Result<String, FieldError> {
    check_text(input, field, max).map(|()| input.to_owned())
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
        multi_line(input, field, DESCRIPTION_MAX_CHARS).map(Self)
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

/// The first fault of a JSON value: a NUL in a string or key anywhere (PostgreSQL `jsonb`
/// cannot store it), or nesting deeper than `depth_left` levels.
fn json_fault(value: &Value, depth_left: usize) -> Option<String> {
    let nested = matches!(value, Value::Array(_) | Value::Object(_));
    if nested && depth_left == 0 {
        return Some(format!(
            "must not be nested more than {METADATA_MAX_DEPTH} levels deep"
        ));
    }
    let nul = || Some("must not contain NUL characters".to_owned());
    match value {
        Value::String(s) if s.contains('\0') => nul(),
        Value::Array(items) => items.iter().find_map(|v| json_fault(v, depth_left - 1)),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                nul()
            } else {
                json_fault(v, depth_left - 1)
            }
        }),
        _ => None,
    }
}

impl Metadata {
    /// A JSON object (or null for none) of at most 16 KiB serialized and 16 levels deep,
    /// with no NUL in any key or string.
    pub fn parse(input: Value, field: &str) -> Result<Self, FieldError> {
        match input {
            Value::Object(map) => {
                let value = Value::Object(map);
                if let Some(message) = json_fault(&value, METADATA_MAX_DEPTH) {
                    return Err(FieldError::new(field, message));
                }
                let size = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
                if size > METADATA_MAX_BYTES {
                    return Err(FieldError::new(
                        field,
                        format!("must be at most {METADATA_MAX_BYTES} bytes serialized"),
                    ));
                }
                let Value::Object(map) = value else {
                    return Err(FieldError::new(field, "must be a JSON object"));
                };
                Ok(Self(map))
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
        if trimmed
            .chars()
            .all(|c| c.is_whitespace() || is_format_char(c))
        {
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
    fn free_text_refuses_nul_and_control_and_is_bounded() {
        assert!(check_text("", "reason", 10).is_ok());
        assert!(check_text("line\nnext\ttab\r\n", "reason", 100).is_ok());
        assert!(check_text(&"é".repeat(10), "reason", 10).is_ok());
        let long = check_text(&"é".repeat(11), "reason", 10).unwrap_err();
        assert_eq!(
            long,
            FieldError::new("reason", "must be at most 10 characters")
        );
        let nul = check_text("a\u{0}b", "reason", 10).unwrap_err();
        assert_eq!(
            nul,
            FieldError::new("reason", "must not contain NUL characters")
        );
        assert_eq!(check_text("a\u{1b}", "x", 10).unwrap_err().field, "x");
        assert!(check_text("a\u{85}", "x", 10).is_err(), "C1 controls too");
        assert_eq!(Text::parse("ok", "x", 2).unwrap().as_str(), "ok");
    }

    #[test]
    fn reasons_and_actors_go_through_the_text_parse() {
        assert_eq!(parse_reason("because\n", "reason").unwrap(), "because\n");
        assert_eq!(parse_reason("a\0", "reason").unwrap_err().field, "reason");
        let big = "x".repeat(200 * 1024);
        assert_eq!(parse_reason(&big, "reason").unwrap_err().field, "reason");
        assert!(parse_reason(&"x".repeat(REASON_MAX_CHARS), "reason").is_ok());
        assert_eq!(parse_actor(" ops ", "actor").unwrap(), "ops");
        assert!(parse_actor("o\0ps", "actor").is_err());
        assert!(parse_actor("\u{200b}", "actor").is_err());
        assert!(parse_actor(&"x".repeat(ACTOR_MAX_CHARS + 1), "actor").is_err());
    }

    #[test]
    fn names_that_are_only_format_characters_are_empty() {
        for blank in [
            "\u{200b}",
            " \u{200b}\u{200c}\u{200d} ",
            "\u{202e}",
            "\u{2066}\u{2069}",
            "\u{feff}",
            "\u{e0041}",
        ] {
            let err = Name::parse(blank, "name").unwrap_err();
            assert_eq!(
                err,
                FieldError::new("name", "must not be empty"),
                "{blank:?}"
            );
            assert!(Title::parse(blank, "title").is_err());
            assert!(Content::parse(blank, "content").is_err());
        }
        // A joiner inside a real name (emoji sequences, Persian) is kept.
        assert_eq!(
            Name::parse("a\u{200d}b", "name").unwrap().as_str(),
            "a\u{200d}b"
        );
        assert!(is_format_char('\u{200b}') && is_format_char('\u{202e}'));
        assert!(!is_format_char('a') && !is_format_char(' ') && !is_format_char('\u{0}'));
    }

    #[test]
    fn metadata_depth_is_bounded() {
        let mut deep = json!("leaf");
        for _ in 0..METADATA_MAX_DEPTH {
            deep = json!({ "k": deep });
        }
        assert!(Metadata::parse(deep.clone(), "metadata").is_ok());
        let err = Metadata::parse(json!({ "k": deep }), "metadata").unwrap_err();
        assert_eq!(err.field, "metadata");
        assert!(err.message.contains("levels"), "{}", err.message);
        let mut arrays = json!([]);
        for _ in 0..METADATA_MAX_DEPTH {
            arrays = json!([arrays]);
        }
        assert!(Metadata::parse(json!({ "a": arrays }), "metadata").is_err());
    }

    #[test]
    fn descriptions_refuse_control_characters_but_keep_line_breaks() {
        assert!(Description::parse("a\nb\tc", "description").is_ok());
        assert!(Description::parse("a\u{7}b", "description").is_err());
        assert!(Description::parse(&"x".repeat(DESCRIPTION_MAX_CHARS + 1), "description").is_err());
    }

    #[test]
    fn json_nesting_is_counted_outside_strings() {
        assert!(json_nesting_within(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(!json_nesting_within(br#"{"a": [1, {"b": 2}]}"#, 2));
        assert!(json_nesting_within(br#"{"a": "[[[[\"{{{{"}"#, 1));
        assert!(json_nesting_within(br#"[[]][[]][[]]"#, 2));
        let bomb = "[".repeat(1_000);
        assert!(!json_nesting_within(bomb.as_bytes(), 128));
        assert!(json_nesting_within(b"", 0) && json_nesting_within(b"1", 0));
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
