//! Judging telemetry against limits: the one evaluator of the anomaly processor (live) and of
//! telemetry replays (investigations, new limits over old data). Pure: no IO; what changed and
//! what alarm transitions follow are handed back to the caller.

use crate::wire::{self, Context as WireContext, Format};
use crate::Message;
use mc_domain::telemetry::{LimitsHistory, ParamState, SampleValue, Transition};
use std::collections::HashMap;

/// One alarm transition to send (live) or to report (replay), in order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub spacecraft: String,
    pub parameter: String,
    #[serde(serialize_with = "transition_name")]
    pub transition: Transition,
    pub value: serde_json::Value,
    pub sample_time_ms: i64,
    pub ordinal: u64,
}

fn transition_name<S: serde::Serializer>(t: &Transition, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&match t {
        Transition::Raise(sev) => format!("raise {}", sev.as_str()),
        Transition::Escalate(sev) => format!("escalate {}", sev.as_str()),
        Transition::ReturnToNormal => "return to normal".to_owned(),
    })
}

/// The position of a sample in the telemetry stream: sequence and index in the message.
pub fn ordinal(position: u64, index: usize) -> u64 {
    (position << 16) | (index as u64 & 0xffff)
}

/// The limits in force and every parameter's evaluator state.
pub struct Judge {
    /// Spacecraft → its limits history.
    pub limits: HashMap<String, LimitsHistory>,
    /// Spacecraft → parameter → evaluator state.
    pub state: HashMap<String, HashMap<String, ParamState>>,
    max_future_ms: i64,
}

impl Judge {
    pub fn new(max_future_ms: i64) -> Self {
        Self {
            limits: HashMap::new(),
            state: HashMap::new(),
            max_future_ms,
        }
    }

    /// Judge every sample of one message: evaluator states that changed go to `dirty`, alarm
    /// transitions to `pending`, in sample order. A message that does not decode is skipped
    /// (the store consumer dead-letters it).
    pub fn judge(
        &mut self,
        m: &Message,
        dirty: &mut Vec<(String, String, ParamState)>,
        pending: &mut Vec<Pending>,
    ) {
        let Some(spacecraft) = crate::subject_spacecraft(&m.subject) else {
            return;
        };
        let Ok(snapshots) = wire::decode(
            Format::from_content_type(m.content_type.as_deref()),
            &m.payload,
        ) else {
            return;
        };
        let history = self.limits.get(spacecraft);
        let cx = WireContext {
            subject_spacecraft: Some(spacecraft),
            received_ms: m.received_ms,
            max_future_ms: self.max_future_ms,
        };
        let mut names = Vec::new();
        for (i, snapshot) in snapshots.items.iter().enumerate() {
            let Ok((_, s)) = wire::validate(snapshot, "", &cx, &mut names) else {
                continue;
            };
            let config = history.and_then(|h| h.at(s.timestamp_ms));
            let states = self.state.get_mut(spacecraft);
            if config.is_none() && states.is_none() {
                continue;
            }
            let states = match states {
                Some(s) => s,
                None => self.state.entry(spacecraft.to_owned()).or_default(),
            };
            for (name, value) in &s.samples {
                let limits = config.and_then(|c| c.parameters().get(*name));
                if limits.is_none() && !states.contains_key(*name) {
                    continue;
                }
                let state = states.entry((*name).to_owned()).or_default();
                let before = *state;
                let transition = state.step(limits, *value);
                if *state != before {
                    dirty.push((spacecraft.to_owned(), (*name).to_owned(), *state));
                }
                if let Some(transition) = transition {
                    pending.push(Pending {
                        spacecraft: spacecraft.to_owned(),
                        parameter: (*name).to_owned(),
                        transition,
                        value: json_value(*value),
                        sample_time_ms: s.timestamp_ms,
                        ordinal: ordinal(m.position, i),
                    });
                }
            }
        }
    }
}

fn json_value(v: SampleValue<'_>) -> serde_json::Value {
    match v {
        SampleValue::Number(n) => {
            serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into)
        }
        SampleValue::Bool(b) => b.into(),
        SampleValue::Text(s) => s.into(),
    }
}
