//! The telemetry wire format: one snapshot or an array of snapshots, JSON or MessagePack,
//! decoded without copying names or strings out of the payload, then validated snapshot by
//! snapshot so one bad snapshot does not reject its neighbours.

use mc_domain::telemetry::SampleValue;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

#[cfg(test)]
mod tests;

/// Timestamps before this (2000-01-01T00:00:00Z) are refused as implausible.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// Snapshots in one message or request, at most.
pub const SNAPSHOTS_MAX: usize = 10_000;
/// Parameters in one snapshot, at most.
pub const PARAMETERS_MAX: usize = 10_000;
pub const PARAMETER_NAME_MAX: usize = 64;
/// Characters in a string value, at most.
pub const STRING_MAX: usize = 256;
/// Nesting of arrays and maps a payload may have. A snapshot needs three (array of
/// snapshots, snapshot, parameters); the rest is room for a value the validation refuses by
/// name. The decoders recurse per level, so this bounds their stack use whatever the input.
pub const MAX_DEPTH: usize = 16;

/// How a payload is encoded (`Content-Type: application/msgpack`, else JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    MsgPack,
}

impl Format {
    pub fn from_content_type(content_type: Option<&str>) -> Self {
        match content_type {
            Some(ct)
                if ct
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with("application/msgpack") =>
            {
                Self::MsgPack
            }
            Some(ct)
                if ct
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with("application/x-msgpack") =>
            {
                Self::MsgPack
            }
            _ => Self::Json,
        }
    }
}

/// A value as it came off the wire; `Other` is anything that is not a number, string or
/// boolean (null, arrays, maps), kept so the error can say which parameter it was.
#[derive(Debug, Clone, PartialEq)]
pub enum WireValue<'a> {
    Number(f64),
    Bool(bool),
    Text(Cow<'a, str>),
    Other(&'static str),
}

/// A timestamp as it came off the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum WireTime<'a> {
    Millis(i64),
    Text(Cow<'a, str>),
    Other(&'static str),
}

/// One snapshot before validation.
#[derive(Debug, Deserialize)]
pub struct WireSnapshot<'a> {
    #[serde(rename = "spacecraftId", borrow, default)]
    pub spacecraft_id: Option<WireValue<'a>>,
    #[serde(borrow, default)]
    pub timestamp: Option<WireTime<'a>>,
    #[serde(borrow, default)]
    pub parameters: Option<Params<'a>>,
}

/// Parameters in the order sent.
#[derive(Debug, Default)]
pub struct Params<'a>(pub Vec<(Cow<'a, str>, WireValue<'a>)>);

/// One snapshot or an array of them.
#[derive(Debug)]
pub struct Snapshots<'a> {
    pub items: Vec<WireSnapshot<'a>>,
    /// Sent as an array (field names in errors are then prefixed `[i].`).
    pub array: bool,
}

impl Snapshots<'_> {
    /// The prefix of field names of snapshot `i` in errors.
    pub fn prefix(&self, i: usize) -> String {
        if self.array {
            format!("[{i}].")
        } else {
            String::new()
        }
    }
}

/// Decode a payload into snapshots. An error here rejects the whole payload (it is not
/// telemetry at all); per-snapshot faults are found by [`validate`]. Nesting is bounded by
/// [`MAX_DEPTH`], and a panic inside the decoder is caught and returned as an error, so no
/// payload can take the process down.
pub fn decode(format: Format, payload: &[u8]) -> Result<Snapshots<'_>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_unguarded(format, payload)
    }))
    .unwrap_or_else(|_| Err("the decoder failed on this payload (a bug, caught)".into()))
}

fn decode_unguarded(format: Format, payload: &[u8]) -> Result<Snapshots<'_>, String> {
    let snapshots = match format {
        Format::Json => {
            if !mc_domain::values::json_nesting_within(payload, MAX_DEPTH) {
                return Err(format!(
                    "undecodable json: nested more than {MAX_DEPTH} levels deep"
                ));
            }
            let mut de = serde_json::Deserializer::from_slice(payload);
            let s =
                Snapshots::deserialize(&mut de).map_err(|e| format!("undecodable json: {e}"))?;
            de.end().map_err(|e| format!("undecodable json: {e}"))?;
            s
        }
        Format::MsgPack => {
            let mut de = rmp_serde::Deserializer::from_read_ref(payload);
            // rmp counts down and fails on reaching zero: N allows N - 1 levels.
            de.set_max_depth(MAX_DEPTH + 1);
            let s = Snapshots::deserialize(&mut de).map_err(|e| match e {
                rmp_serde::decode::Error::DepthLimitExceeded => {
                    format!("undecodable msgpack: nested more than {MAX_DEPTH} levels deep")
                }
                e => format!("undecodable msgpack: {e}"),
            })?;
            s
        }
    };
    if snapshots.items.is_empty() {
        return Err("an empty array holds no snapshot".into());
    }
    if snapshots.items.len() > SNAPSHOTS_MAX {
        return Err(format!(
            "more than {SNAPSHOTS_MAX} snapshots in one payload"
        ));
    }
    Ok(snapshots)
}

/// A valid snapshot, borrowing from the payload.
#[derive(Debug)]
pub struct Snapshot<'s> {
    pub timestamp_ms: i64,
    pub samples: Vec<(&'s str, SampleValue<'s>)>,
}

/// A snapshot that failed validation: the field at fault (`[2].parameters.temp`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Where a snapshot is validated: the subject's spacecraft (NATS) if any, and the receive time
/// that bounds how far in the future a timestamp may be.
#[derive(Debug, Clone, Copy)]
pub struct Context<'c> {
    pub subject_spacecraft: Option<&'c str>,
    pub received_ms: i64,
    pub max_future_ms: i64,
}

/// Validate one snapshot; `at` prefixes field names for arrays (`[3].`). The spacecraft of
/// the snapshot is returned with it (the subject's on NATS). A panic inside is caught and
/// makes the snapshot invalid.
pub fn validate<'s, 'a>(
    snapshot: &'s WireSnapshot<'a>,
    at: &str,
    cx: &Context<'s>,
    names: &mut Vec<&'s str>,
) -> Result<(&'s str, Snapshot<'s>), Invalid> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        validate_unguarded(snapshot, at, cx, names)
    }))
    .unwrap_or_else(|_| {
        Err(Invalid {
            field: format!("{at}parameters"),
            message: "validation failed on this snapshot (a bug, caught)".into(),
        })
    })
}

fn validate_unguarded<'s, 'a>(
    snapshot: &'s WireSnapshot<'a>,
    at: &str,
    cx: &Context<'s>,
    names: &mut Vec<&'s str>,
) -> Result<(&'s str, Snapshot<'s>), Invalid> {
    let bad = |field: &str, message: String| Invalid {
        field: format!("{at}{field}"),
        message,
    };
    let body_id = match &snapshot.spacecraft_id {
        None => None,
        Some(WireValue::Text(s)) => Some(s.as_ref()),
        Some(_) => return Err(bad("spacecraftId", "must be a string".into())),
    };
    let spacecraft = match (cx.subject_spacecraft, body_id) {
        (Some(subject), Some(body)) if subject != body => {
            return Err(bad(
                "spacecraftId",
                format!("{body} does not match the subject's spacecraft {subject}"),
            ))
        }
        (Some(subject), _) => subject,
        (None, Some(body)) => body,
        (None, None) => return Err(bad("spacecraftId", "is required".into())),
    };
    if let Err(e) = mc_domain::spacecraft::SpacecraftId::parse(spacecraft, "spacecraftId") {
        return Err(bad("spacecraftId", e.message));
    }
    let timestamp_ms = match &snapshot.timestamp {
        None => return Err(bad("timestamp", "is required".into())),
        Some(t) => parse_time(t).map_err(|m| bad("timestamp", m))?,
    };
    if timestamp_ms < EARLIEST_MS {
        return Err(bad(
            "timestamp",
            "is before 2000-01-01, which is not plausible".into(),
        ));
    }
    if timestamp_ms > cx.received_ms + cx.max_future_ms {
        return Err(bad(
            "timestamp",
            format!(
                "is {} s in the future (at most {} s allowed)",
                (timestamp_ms - cx.received_ms) / 1000,
                cx.max_future_ms / 1000
            ),
        ));
    }
    let params = match &snapshot.parameters {
        None => return Err(bad("parameters", "is required".into())),
        Some(p) if p.0.is_empty() => return Err(bad("parameters", "must not be empty".into())),
        Some(p) if p.0.len() > PARAMETERS_MAX => {
            return Err(bad(
                "parameters",
                format!("must have at most {PARAMETERS_MAX} entries"),
            ))
        }
        Some(p) => p,
    };
    let mut samples = Vec::with_capacity(params.0.len());
    for (name, value) in &params.0 {
        let name: &str = name;
        if !valid_name(name) {
            return Err(bad(
                &format!("parameters.{}", shown_name(name)),
                format!("parameter names are 1 to {PARAMETER_NAME_MAX} of A-Z a-z 0-9 _ - . :"),
            ));
        }
        let value = match value {
            WireValue::Number(n) if n.is_finite() => SampleValue::Number(*n),
            WireValue::Number(_) => {
                return Err(bad(
                    &format!("parameters.{name}"),
                    "must be a finite number".into(),
                ))
            }
            WireValue::Bool(b) => SampleValue::Bool(*b),
            WireValue::Text(s) => match mc_domain::values::check_text(s, "", STRING_MAX) {
                Ok(()) => SampleValue::Text(s),
                Err(e) => return Err(bad(&format!("parameters.{name}"), e.message)),
            },
            WireValue::Other(kind) => {
                return Err(bad(
                    &format!("parameters.{name}"),
                    format!("must be a number, string or boolean, not {kind}"),
                ))
            }
        };
        samples.push((name, value));
    }
    names.clear();
    names.extend(samples.iter().map(|(n, _)| *n));
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(&format!("parameters.{}", w[0]), "appears twice".into()));
    }
    Ok((
        spacecraft,
        Snapshot {
            timestamp_ms,
            samples,
        },
    ))
}

/// An invalid parameter name as errors show it: escaped, and cut after 64 characters.
fn shown_name(name: &str) -> String {
    let mut shown: String = name.chars().take(PARAMETER_NAME_MAX).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    shown.escape_debug().to_string()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= PARAMETER_NAME_MAX
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':'))
}

fn parse_time(t: &WireTime<'_>) -> Result<i64, String> {
    match t {
        WireTime::Millis(ms) => Ok(*ms),
        WireTime::Text(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| "must be RFC 3339 (2025-01-01T00:00:00Z) or epoch milliseconds".into()),
        WireTime::Other(kind) => Err(format!(
            "must be RFC 3339 or integer epoch milliseconds, not {kind}"
        )),
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Snapshots<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Snapshots<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a snapshot object or an array of snapshot objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(SNAPSHOTS_MAX));
                while let Some(s) = seq.next_element::<WireSnapshot<'a>>()? {
                    if out.len() == SNAPSHOTS_MAX {
                        return Err(de::Error::custom(format!(
                            "more than {SNAPSHOTS_MAX} snapshots in one payload"
                        )));
                    }
                    out.push(s);
                }
                Ok(Snapshots {
                    items: out,
                    array: true,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let one = WireSnapshot::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Snapshots {
                    items: vec![one],
                    array: false,
                })
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Params<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Params<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of parameter name to value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16).min(PARAMETERS_MAX));
                while let Some(key) = map.next_key::<Cow<'a, str>>()? {
                    if out.len() == PARAMETERS_MAX {
                        return Err(de::Error::custom(format!(
                            "more than {PARAMETERS_MAX} parameters in one snapshot"
                        )));
                    }
                    out.push((key, map.next_value::<WireValue<'a>>()?));
                }
                Ok(Params(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

struct ValueVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
    type Value = WireValue<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, string or boolean")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(WireValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(WireValue::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(WireValue::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(WireValue::Number(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(WireValue::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(WireValue::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(WireValue::Text(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(WireValue::Other("null"))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(WireValue::Other("null"))
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<Self::Value, E> {
        Ok(WireValue::Other("binary"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(WireValue::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(WireValue::Other("an object"))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireTime<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match WireValue::deserialize(d)? {
            WireValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
                WireTime::Millis(n as i64)
            }
            WireValue::Number(_) => WireTime::Other("a fractional or huge number"),
            WireValue::Text(s) => WireTime::Text(s),
            WireValue::Bool(_) => WireTime::Other("a boolean"),
            WireValue::Other(kind) => WireTime::Other(kind),
        })
    }
}
