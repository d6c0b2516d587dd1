//! Stored schema of the provider pricing events (`price.set`, `price.corrected`).

use super::{payload, to_value, EventSchema, SchemaError};
use mc_domain::task::pricing::{PriceEntry, PriceEvent, Rates};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SET: &str = "price.set";
pub const CORRECTED: &str = "price.corrected";

pub(super) const VERSIONS: &[(&str, u32)] = &[(SET, 1), (CORRECTED, 1)];
pub(super) const UPCASTERS: &[super::Upcaster] = &[];

/// Nano-dollars per million tokens.
#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RatesV1 {
    input_nanos: u64,
    output_nanos: u64,
    cached_input_nanos: u64,
    reasoning_nanos: u64,
}

impl From<Rates> for RatesV1 {
    fn from(r: Rates) -> Self {
        Self {
            input_nanos: r.input,
            output_nanos: r.output,
            cached_input_nanos: r.cached_input,
            reasoning_nanos: r.reasoning,
        }
    }
}

impl From<RatesV1> for Rates {
    fn from(r: RatesV1) -> Self {
        Self {
            input: r.input_nanos,
            output: r.output_nanos,
            cached_input: r.cached_input_nanos,
            reasoning: r.reasoning_nanos,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PriceV1 {
    provider: String,
    model: String,
    effective_from_ms: i64,
    rates: RatesV1,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<RatesV1>,
}

impl EventSchema for PriceEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        let (t, provider, model, entry, previous) = match self {
            Self::Set {
                provider,
                model,
                entry,
            } => (SET, provider, model, entry, None),
            Self::Corrected {
                provider,
                model,
                previous,
                entry,
            } => (CORRECTED, provider, model, entry, Some((*previous).into())),
        };
        (
            t,
            1,
            to_value(&PriceV1 {
                provider: provider.clone(),
                model: model.clone(),
                effective_from_ms: entry.from_ms,
                rates: entry.rates.into(),
                previous,
            }),
        )
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        if event_type != SET && event_type != CORRECTED {
            return Err(SchemaError::UnknownType {
                event_type: event_type.to_owned(),
            });
        }
        let p: PriceV1 = payload(event_type, value)?;
        let entry = PriceEntry {
            from_ms: p.effective_from_ms,
            rates: p.rates.into(),
        };
        Ok(match (event_type, p.previous) {
            (SET, _) => Self::Set {
                provider: p.provider,
                model: p.model,
                entry,
            },
            (_, Some(previous)) => Self::Corrected {
                provider: p.provider,
                model: p.model,
                previous: previous.into(),
                entry,
            },
            (_, None) => {
                return Err(SchemaError::BadPayload {
                    event_type: event_type.to_owned(),
                    reason: "a correction without the rates it replaced".into(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_form_is_stable() {
        let rates = Rates {
            input: 1,
            output: 2,
            cached_input: 3,
            reasoning: 4,
        };
        let stored =
            json!({"inputNanos": 1, "outputNanos": 2, "cachedInputNanos": 3, "reasoningNanos": 4});
        let entry = PriceEntry { from_ms: 5, rates };
        let cases = [
            (
                PriceEvent::Set {
                    provider: "openai".into(),
                    model: "gpt-4o".into(),
                    entry,
                },
                json!({"type": "price.set", "v": 1, "payload": {"provider": "openai", "model": "gpt-4o",
                    "effectiveFromMs": 5, "rates": stored}}),
            ),
            (
                PriceEvent::Corrected {
                    provider: "openai".into(),
                    model: "gpt-4o".into(),
                    previous: rates,
                    entry,
                },
                json!({"type": "price.corrected", "v": 1, "payload": {"provider": "openai", "model": "gpt-4o",
                    "effectiveFromMs": 5, "rates": stored, "previous": stored}}),
            ),
        ];
        for (event, expected) in cases {
            super::super::assert_round_trip(event, expected);
        }
    }
}
