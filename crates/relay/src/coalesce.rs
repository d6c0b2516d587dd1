//! Telemetry coalescing for a client that fell behind: the frames of one spacecraft merge into
//! the latest value (and its timestamp) per parameter, delivered as one frame at the position
//! of the newest message merged.

use crate::route::telemetry_text;
use crate::topic::Topic;
use crate::{Frame, StreamKind};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The pending, merged telemetry of one topic.
#[derive(Debug)]
pub(crate) struct Coalesced {
    pub topic: Topic,
    /// Newest position merged.
    pub position: u64,
    /// Parameter → (value, timestamp of the snapshot it came from, merge order).
    params: BTreeMap<String, (Value, Value, u64)>,
    /// The newest element that was not a snapshot with parameters (kept whole).
    other: Option<(Value, u64)>,
    order: u64,
}

impl Coalesced {
    pub fn new(topic: Topic) -> Self {
        Self {
            topic,
            position: 0,
            params: BTreeMap::new(),
            other: None,
            order: 0,
        }
    }

    /// Merge one message's data (a snapshot or an array of snapshots).
    pub fn merge(&mut self, position: u64, data: &Value) {
        self.position = self.position.max(position);
        let items = match data {
            Value::Array(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        for item in items {
            self.order += 1;
            match item.get("parameters").and_then(Value::as_object) {
                Some(params) => {
                    let ts = item.get("timestamp").cloned().unwrap_or(Value::Null);
                    for (name, value) in params {
                        self.params
                            .insert(name.clone(), (value.clone(), ts.clone(), self.order));
                    }
                }
                None => self.other = Some((item.clone(), self.order)),
            }
        }
    }

    /// The merged data: snapshots grouped by timestamp, oldest first.
    pub fn data(&self) -> Value {
        let sc = match &self.topic {
            Topic::Telemetry(sc) => Value::String(sc.clone()),
            _ => Value::Null,
        };
        // (timestamp, newest order, parameters)
        let mut groups: Vec<(Value, u64, Map<String, Value>)> = Vec::new();
        for (name, (value, ts, order)) in &self.params {
            let group = match groups.iter_mut().position(|g| &g.0 == ts) {
                Some(i) => &mut groups[i],
                None => {
                    groups.push((ts.clone(), 0, Map::new()));
                    let last = groups.len() - 1;
                    &mut groups[last]
                }
            };
            group.1 = group.1.max(*order);
            group.2.insert(name.clone(), value.clone());
        }
        let mut entries: Vec<(u64, Value)> = groups
            .into_iter()
            .map(|(ts, order, params)| {
                let mut snapshot = Map::new();
                snapshot.insert("spacecraftId".into(), sc.clone());
                snapshot.insert("timestamp".into(), ts);
                snapshot.insert("parameters".into(), Value::Object(params));
                (order, Value::Object(snapshot))
            })
            .collect();
        if let Some((other, order)) = &self.other {
            entries.push((*order, other.clone()));
        }
        entries.sort_by_key(|(order, _)| *order);
        Value::Array(entries.into_iter().map(|(_, v)| v).collect())
    }

    pub fn frame(&self) -> Frame {
        Frame {
            kind: "telemetry",
            stream: Some(StreamKind::Telemetry),
            position: self.position,
            text: telemetry_text(&self.topic, self.position, &self.data()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_latest_value_per_parameter() {
        let mut c = Coalesced::new(Topic::Telemetry("SC-1".into()));
        c.merge(
            3,
            &json!({"timestamp": 1, "parameters": {"temp": 1, "mode": "A"}}),
        );
        c.merge(5, &json!([{"timestamp": 2, "parameters": {"temp": 2}}]));
        c.merge(8, &json!({"timestamp": 3, "parameters": {"volt": 9}}));
        assert_eq!(c.position, 8);
        assert_eq!(
            c.data(),
            json!([
                {"spacecraftId": "SC-1", "timestamp": 1, "parameters": {"mode": "A"}},
                {"spacecraftId": "SC-1", "timestamp": 2, "parameters": {"temp": 2}},
                {"spacecraftId": "SC-1", "timestamp": 3, "parameters": {"volt": 9}},
            ])
        );
        let frame: Value = serde_json::from_str(&c.frame().text).unwrap();
        assert_eq!(frame["type"], "telemetry");
        assert_eq!(frame["topic"], "telemetry:SC-1");
        assert_eq!(frame["position"], 8);
    }

    #[test]
    fn data_without_parameters_is_kept_whole() {
        let mut c = Coalesced::new(Topic::Telemetry("SC-1".into()));
        c.merge(1, &json!({"raw": 1}));
        c.merge(2, &json!({"raw": 2}));
        assert_eq!(c.data(), json!([{"raw": 2}]));
    }
}
