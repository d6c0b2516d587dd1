//! Provider pricing and the cost of an LLM step. A [`PriceList`] holds one provider model's
//! prices, each in force from its `effectiveFrom` until the next one; a step is priced with the
//! price in force at its own time. Token counts follow the providers' reports: input includes
//! cached input, output includes reasoning, so each token is priced once at its own rate.
//!
//! Money is exact integers: rates in nano-dollars per million tokens, costs in nano-dollars
//! (rounded half up from the exact product).

use super::Usd;
use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldError};
use uuid::Uuid;

/// Highest rate accepted: a million dollars per million tokens.
pub const RATE_MAX_USD: f64 = 1_000_000.0;
/// Most tokens one step may report in any count.
pub const TOKENS_MAX: u64 = 100_000_000;
/// Longest latency a step may report: a day.
pub const LATENCY_MAX_MS: u64 = 86_400_000;
/// The model name that prices every model of a provider without a price of its own.
pub const ANY_MODEL: &str = "*";

/// Rates in nano-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    pub cached_input: u64,
    pub reasoning: u64,
}

fn rate(value: f64, field: &str) -> Result<u64, FieldError> {
    if !value.is_finite() || !(0.0..=RATE_MAX_USD).contains(&value) {
        return Err(FieldError::new(
            field,
            "must be a number of dollars per million tokens from 0 to 1000000",
        ));
    }
    Ok((value * 1e9).round() as u64)
}

impl Rates {
    /// Dollars per million tokens; cached input defaults to the input rate and reasoning to
    /// the output rate (what providers bill when they do not price them apart).
    pub fn parse(
        input: f64,
        output: f64,
        cached_input: Option<f64>,
        reasoning: Option<f64>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut take = |v: f64, f: &str| rate(v, f).map_err(|e| errors.push(e)).unwrap_or(0);
        let rates = Self {
            input: take(input, "inputPerMillion"),
            output: take(output, "outputPerMillion"),
            cached_input: take(cached_input.unwrap_or(input), "cachedInputPerMillion"),
            reasoning: take(reasoning.unwrap_or(output), "reasoningPerMillion"),
        };
        if errors.is_empty() {
            Ok(rates)
        } else {
            Err(errors)
        }
    }
}

/// The tokens of one LLM step as the provider reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    /// All input tokens, cached ones included.
    pub input: u64,
    /// All output tokens, reasoning ones included.
    pub output: u64,
    pub cached_input: u64,
    pub reasoning: u64,
}

impl Tokens {
    /// Counts from a client: whole, non-negative, at most [`TOKENS_MAX`], cached within
    /// input and reasoning within output.
    pub fn parse(
        input: i64,
        output: i64,
        cached: i64,
        reasoning: i64,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut count = |v: i64, f: &str| {
            if (0..=TOKENS_MAX as i64).contains(&v) {
                v as u64
            } else {
                errors.push(FieldError::new(
                    f,
                    format!("must be a whole number from 0 to {TOKENS_MAX}"),
                ));
                0
            }
        };
        let t = Self {
            input: count(input, "inputTokens"),
            output: count(output, "outputTokens"),
            cached_input: count(cached, "cachedInputTokens"),
            reasoning: count(reasoning, "reasoningTokens"),
        };
        if errors.is_empty() && t.cached_input > t.input {
            errors.push(FieldError::new(
                "cachedInputTokens",
                "must not exceed inputTokens (which include them)",
            ));
        }
        if errors.is_empty() && t.reasoning > t.output {
            errors.push(FieldError::new(
                "reasoningTokens",
                "must not exceed outputTokens (which include them)",
            ));
        }
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(errors)
        }
    }

    /// What these tokens cost at `rates`, each token once at its own rate.
    pub fn cost(&self, rates: &Rates) -> Usd {
        let femto = u128::from(self.input - self.cached_input) * u128::from(rates.input)
            + u128::from(self.cached_input) * u128::from(rates.cached_input)
            + u128::from(self.output - self.reasoning) * u128::from(rates.output)
            + u128::from(self.reasoning) * u128::from(rates.reasoning);
        // nano-dollars per million tokens × tokens = 1e-15 dollars; round half up to nano.
        Usd::from_nanos(((femto + 500_000) / 1_000_000) as u64)
    }
}

/// A provider or model name: 1..=100 of letters, digits and `. _ : / - @`, or `*` for a model.
pub fn parse_name(input: &str, field: &str) -> Result<String, FieldError> {
    let ok = !input.is_empty()
        && input.len() <= 100
        && input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-' | '@'));
    if ok || (field == "model" && input == ANY_MODEL) {
        Ok(input.to_owned())
    } else {
        Err(FieldError::new(
            field,
            "must be 1 to 100 letters, digits or . _ : / - @",
        ))
    }
}

/// Namespace of [`PriceList::id`].
const PRICE_NAMESPACE: Uuid = Uuid::from_u128(0x2b7e_1516_28ae_d2a6_abf7_1588_09cf_4f3c);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceEntry {
    pub from_ms: i64,
    pub rates: Rates,
}

/// One provider model's prices, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PriceList {
    pub entries: Vec<PriceEntry>,
}

impl PriceList {
    /// The aggregate id of `provider`/`model`: UUID v5 of `<provider>\n<model>`.
    pub fn id(provider: &str, model: &str) -> Uuid {
        Uuid::new_v5(&PRICE_NAMESPACE, format!("{provider}\n{model}").as_bytes())
    }

    /// The price in force at `t_ms`.
    pub fn at(&self, t_ms: i64) -> Option<PriceEntry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.from_ms <= t_ms)
            .copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPrice {
    pub provider: String,
    pub model: String,
    pub from_ms: i64,
    pub rates: Rates,
    /// Replace the rates of the entry starting at `from_ms` (history is repriced).
    pub correction: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceEvent {
    Set {
        provider: String,
        model: String,
        entry: PriceEntry,
    },
    Corrected {
        provider: String,
        model: String,
        previous: Rates,
        entry: PriceEntry,
    },
}

impl Aggregate for PriceList {
    const TYPE: &'static str = "price";
    type Command = SetPrice;
    type Event = PriceEvent;

    fn decide(&self, c: &SetPrice) -> Result<Vec<PriceEvent>, DomainError> {
        let entry = PriceEntry {
            from_ms: c.from_ms,
            rates: c.rates,
        };
        let (provider, model) = (c.provider.clone(), c.model.clone());
        match self.entries.iter().find(|e| e.from_ms == c.from_ms) {
            Some(e) if e.rates == c.rates => Ok(vec![]),
            Some(e) if c.correction => Ok(vec![PriceEvent::Corrected { provider, model, previous: e.rates, entry }]),
            Some(_) => Err(DomainError::field(
                "effectiveFrom",
                "a price of this model already starts then (overlapping ranges); send it with \"correction\": true to reprice history",
            )),
            None if c.correction => Err(DomainError::field(
                "effectiveFrom",
                "no price of this model starts then: a correction replaces an existing price",
            )),
            None => Ok(vec![PriceEvent::Set { provider, model, entry }]),
        }
    }

    fn evolve(mut self, event: &PriceEvent) -> Self {
        let (PriceEvent::Set { entry, .. } | PriceEvent::Corrected { entry, .. }) = event;
        self.entries.retain(|e| e.from_ms != entry.from_ms);
        self.entries.push(*entry);
        self.entries.sort_by_key(|e| e.from_ms);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(i: f64, o: f64, c: f64, r: f64) -> Rates {
        Rates::parse(i, o, Some(c), Some(r)).unwrap()
    }

    #[test]
    fn each_token_is_priced_once_at_its_own_rate() {
        // 10,000 input of which 4,000 cached; 3,000 output of which 1,000 reasoning.
        let t = Tokens::parse(10_000, 3_000, 4_000, 1_000).unwrap();
        let r = rates(2.5, 10.0, 1.25, 12.0);
        // 6,000 × 2.5 + 4,000 × 1.25 + 2,000 × 10 + 1,000 × 12 = 52,000 $/M = $0.052
        assert_eq!(t.cost(&r), Usd::from_nanos(52_000_000));
        // Fractions of a nano-dollar round half up: 1 token at $0.0005 per million.
        let tiny = Tokens::parse(1, 0, 0, 0).unwrap();
        assert_eq!(tiny.cost(&rates(0.0005, 0.0, 0.0, 0.0)), Usd::from_nanos(1));
        assert_eq!(tiny.cost(&rates(0.0004, 0.0, 0.0, 0.0)), Usd::from_nanos(0));
        // Defaults: cached at the input rate, reasoning at the output rate.
        let d = Rates::parse(3.0, 15.0, None, None).unwrap();
        assert_eq!((d.cached_input, d.reasoning), (d.input, d.output));
    }

    #[test]
    fn absurd_counts_and_rates_are_refused_by_field() {
        for ((i, o, c, r), field) in [
            ((-1, 0, 0, 0), "inputTokens"),
            ((0, TOKENS_MAX as i64 + 1, 0, 0), "outputTokens"),
            ((10, 0, 11, 0), "cachedInputTokens"),
            ((0, 10, 0, 11), "reasoningTokens"),
        ] {
            let e = Tokens::parse(i, o, c, r).unwrap_err();
            assert_eq!(e[0].field, field);
        }
        let e = Rates::parse(-1.0, f64::NAN, Some(2e6), None).unwrap_err();
        let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "inputPerMillion",
                "outputPerMillion",
                "cachedInputPerMillion",
                "reasoningPerMillion"
            ]
        );
        assert!(parse_name("gpt-4.1", "model").is_ok());
        assert!(parse_name("*", "model").is_ok());
        assert!(parse_name("*", "provider").is_err());
        assert!(parse_name("a b", "provider").is_err());
    }

    #[test]
    fn the_price_in_force_is_the_last_one_started_and_overlaps_need_a_correction() {
        let set = |from_ms, r: Rates, correction| SetPrice {
            provider: "openai".into(),
            model: "gpt-4o".into(),
            from_ms,
            rates: r,
            correction,
        };
        let (a, b) = (rates(2.5, 10.0, 1.25, 10.0), rates(2.0, 8.0, 0.5, 8.0));
        let list = [set(1_000, a, false), set(5_000, b, false)].iter().fold(
            PriceList::default(),
            |l, c| {
                let events = l.decide(c).unwrap();
                events.iter().fold(l, |l, e| l.evolve(e))
            },
        );
        assert_eq!(list.at(999), None);
        assert_eq!(list.at(1_000).unwrap().rates, a);
        assert_eq!(list.at(4_999).unwrap().rates, a);
        assert_eq!(list.at(5_000).unwrap().rates, b);
        // The same price again: nothing; another price at the same start: refused unless a
        // correction, which records what it replaced.
        assert!(list.decide(&set(1_000, a, false)).unwrap().is_empty());
        assert!(list.decide(&set(1_000, b, false)).is_err());
        assert!(list.decide(&set(2_000, b, true)).is_err());
        let corrected = list.decide(&set(1_000, b, true)).unwrap();
        assert!(matches!(&corrected[0], PriceEvent::Corrected { previous, .. } if *previous == a));
        let list = list.evolve(&corrected[0]);
        assert_eq!(list.at(1_500).unwrap().rates, b);
        assert_eq!(list.entries.len(), 2);
    }
}
