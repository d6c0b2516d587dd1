//! The synthetic telemetry of `telemetry publish`: spacecraft ids, parameter names and shapes
//! built once, and frames serialized straight from them (JSON or MessagePack) without an
//! allocation per sample.

use super::{PublishArgs, WireFormat};
use anyhow::Context as _;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// Parameter p000 jumps to this on an anomalous frame (its nominal value is about 20).
const ANOMALY_VALUE: f64 = 1000.0;
/// The value of p000 around which it oscillates.
const P000_NOMINAL: f64 = 20.0;

/// The synthetic telemetry: ids, parameter names and the shape of every parameter, built once;
/// values are computed while serializing, so a frame allocates nothing per sample.
pub(super) struct Generator {
    pub(super) ids: Vec<String>,
    pub(super) names: Vec<String>,
    kinds: Vec<Kind>,
    start_ms: i64,
    step_ms: f64,
    anomaly_every: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    /// `nominal + amplitude * sin(2π t / period + phase) + noise`.
    Wave {
        nominal: f64,
        amplitude: f64,
        period: f64,
        phase: f64,
    },
    /// A mode string, NOMINAL most of the time.
    Mode,
    /// A flag, true most of the time.
    Flag,
}

/// One sample value.
#[derive(Clone, Copy)]
enum Sample {
    Number(f64),
    Text(&'static str),
    Bool(bool),
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Number(v) => s.serialize_f64(v),
            Self::Text(v) => s.serialize_str(v),
            Self::Bool(v) => s.serialize_bool(v),
        }
    }
}

/// splitmix64: a stateless, well-mixed hash for deterministic noise.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix(a ^ mix(b ^ mix(c)))
}

/// A hash as a number in [0, 1).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Generator {
    pub(super) fn new(args: &PublishArgs, start_ms: i64) -> Self {
        let ids = (1..=args.spacecraft)
            .map(|n| format!("{}-{n:03}", args.spacecraft_prefix))
            .collect();
        let names = (0..args.parameters).map(|i| format!("p{i:03}")).collect();
        let kinds = (0..u64::from(args.parameters))
            .map(|i| match i % 10 {
                9 if (i / 10) % 2 == 0 => Kind::Mode,
                9 => Kind::Flag,
                _ => {
                    let nominal = if i == 0 {
                        P000_NOMINAL
                    } else {
                        5.0 + (mix(i) % 1000) as f64 / 10.0
                    };
                    Kind::Wave {
                        nominal,
                        amplitude: nominal * 0.05 + 0.5,
                        period: 30.0 + (i % 17) as f64 * 10.0,
                        phase: i as f64 * 0.3,
                    }
                }
            })
            .collect();
        Self {
            ids,
            names,
            kinds,
            start_ms,
            step_ms: 1000.0 / args.rate,
            anomaly_every: args.anomaly_every,
        }
    }

    pub(super) fn timestamp(&self, frame: u64) -> i64 {
        self.start_ms + (frame as f64 * self.step_ms).round() as i64
    }

    fn anomalous(&self, frame: u64) -> bool {
        self.anomaly_every > 0 && (frame + 1).is_multiple_of(self.anomaly_every)
    }

    /// Anomalous frames among `first .. first + n` of one spacecraft.
    pub(super) fn anomalies(&self, first: u64, n: u64) -> u64 {
        match self.anomaly_every {
            0 => 0,
            k => (first + n) / k - first / k,
        }
    }

    fn value(&self, sc: usize, frame: u64, i: usize) -> Sample {
        if i == 0 && self.anomalous(frame) {
            return Sample::Number(ANOMALY_VALUE);
        }
        match self.kinds[i] {
            Kind::Wave {
                nominal,
                amplitude,
                period,
                phase,
            } => {
                let t = frame as f64 * self.step_ms / 1000.0;
                let angle = std::f64::consts::TAU * t / period + phase + sc as f64 * 0.7;
                let noise = (unit(hash3(sc as u64, i as u64, frame)) - 0.5) * 0.2 * amplitude;
                let v = nominal + amplitude * angle.sin() + noise;
                Sample::Number((v * 1000.0).round() / 1000.0)
            }
            // Modes and flags hold for stretches of 100 frames.
            Kind::Mode => Sample::Text(match hash3(sc as u64, i as u64, frame / 100) % 20 {
                0 => "SAFE",
                1 => "STANDBY",
                _ => "NOMINAL",
            }),
            Kind::Flag => Sample::Bool(!hash3(sc as u64, i as u64, frame / 100).is_multiple_of(50)),
        }
    }
}

/// Frames `first .. first + n` of spacecraft `sc`: one snapshot or an array.
pub(super) struct Frames<'g> {
    pub(super) gen: &'g Generator,
    pub(super) sc: usize,
    pub(super) first: u64,
    pub(super) n: u64,
    pub(super) array: bool,
}

struct Frame<'g> {
    gen: &'g Generator,
    sc: usize,
    frame: u64,
}

struct Parameters<'g>(&'g Frame<'g>);

impl Serialize for Frames<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let frame = |frame| Frame {
            gen: self.gen,
            sc: self.sc,
            frame,
        };
        if !self.array {
            return frame(self.first).serialize(s);
        }
        let mut seq = s.serialize_seq(Some(self.n as usize))?;
        for f in self.first..self.first + self.n {
            seq.serialize_element(&frame(f))?;
        }
        seq.end()
    }
}

impl Serialize for Frame<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("spacecraftId", &self.gen.ids[self.sc])?;
        map.serialize_entry("timestamp", &self.gen.timestamp(self.frame))?;
        map.serialize_entry("parameters", &Parameters(self))?;
        map.end()
    }
}

impl Serialize for Parameters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut map = s.serialize_map(Some(f.gen.names.len()))?;
        for (i, name) in f.gen.names.iter().enumerate() {
            map.serialize_entry(name, &f.gen.value(f.sc, f.frame, i))?;
        }
        map.end()
    }
}

pub(super) fn encode(
    buf: &mut Vec<u8>,
    format: WireFormat,
    frames: &Frames<'_>,
) -> anyhow::Result<()> {
    buf.clear();
    match format {
        WireFormat::Json => serde_json::to_writer(&mut *buf, frames).context("encode json")?,
        WireFormat::Msgpack => {
            rmp_serde::encode::write_named(buf, frames).context("encode msgpack")?
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TelemetryCommand;
    use clap::Parser;
    use serde_json::Value;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        command: TelemetryCommand,
    }

    fn publish_args(extra: &[&str]) -> PublishArgs {
        let mut argv = vec!["t", "publish"];
        argv.extend_from_slice(extra);
        match T::try_parse_from(argv).unwrap().command {
            TelemetryCommand::Publish(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn frames_are_deterministic_and_encode_as_snapshots() {
        let args = publish_args(&["--parameters", "20", "--rate", "4", "--anomaly-every", "3"]);
        let gen = Generator::new(&args, 1_700_000_000_000);
        let frames = Frames {
            gen: &gen,
            sc: 0,
            first: 0,
            n: 3,
            array: true,
        };
        let mut json = Vec::new();
        encode(&mut json, WireFormat::Json, &frames).unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        let items = v.as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["spacecraftId"], "SC-001");
        assert_eq!(items[0]["timestamp"], 1_700_000_000_000i64);
        assert_eq!(items[2]["timestamp"], 1_700_000_000_500i64);
        let p = items[0]["parameters"].as_object().unwrap();
        assert_eq!(p.len(), 20);
        assert!((p["p000"].as_f64().unwrap() - P000_NOMINAL).abs() < 3.0);
        assert!(p["p009"].is_string());
        assert!(p["p019"].is_boolean());
        // The third frame is anomalous.
        assert_eq!(items[2]["parameters"]["p000"], ANOMALY_VALUE);
        assert_eq!(gen.anomalies(0, 3), 1);
        assert_eq!(gen.anomalies(3, 3), 1);
        assert_eq!(gen.anomalies(0, 2), 0);

        // MessagePack: a map with string keys and an integer timestamp, same content.
        let mut mp = Vec::new();
        encode(&mut mp, WireFormat::Msgpack, &frames).unwrap();
        let back: Value = rmp_serde::from_slice(&mp).unwrap();
        assert_eq!(back, v);

        // The same again: deterministic.
        let mut again = Vec::new();
        encode(&mut again, WireFormat::Json, &frames).unwrap();
        assert_eq!(again, json);
    }

    #[test]
    fn single_snapshots_are_not_arrays() {
        let args = publish_args(&["--spacecraft", "12", "--spacecraft-prefix", "X"]);
        let gen = Generator::new(&args, 1_700_000_000_000);
        assert_eq!(gen.ids[11], "X-012");
        let mut json = Vec::new();
        let frames = Frames {
            gen: &gen,
            sc: 11,
            first: 5,
            n: 1,
            array: false,
        };
        encode(&mut json, WireFormat::Json, &frames).unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["spacecraftId"], "X-012");
        assert_eq!(v["timestamp"], 1_700_000_005_000i64);
    }

    #[test]
    fn the_server_decoder_accepts_both_formats() {
        use mc_telemetry::wire::{self, Format};
        let args = publish_args(&["--parameters", "30", "--anomaly-every", "2"]);
        let gen = Generator::new(&args, 1_700_000_000_000);
        for (format, wire_format) in [
            (WireFormat::Json, Format::Json),
            (
                WireFormat::Msgpack,
                Format::from_content_type(Some("application/msgpack")),
            ),
        ] {
            for array in [false, true] {
                let frames = Frames {
                    gen: &gen,
                    sc: 0,
                    first: 0,
                    n: if array { 4 } else { 1 },
                    array,
                };
                let mut buf = Vec::new();
                encode(&mut buf, format, &frames).unwrap();
                let decoded = wire::decode(wire_format, &buf).unwrap();
                assert_eq!(decoded.array, array);
                assert_eq!(decoded.items.len(), frames.n as usize);
                let cx = wire::Context {
                    subject_spacecraft: Some("SC-001"),
                    received_ms: 1_800_000_000_000,
                    max_future_ms: 0,
                };
                for (i, item) in decoded.items.iter().enumerate() {
                    let mut names = Vec::new();
                    let (sc, snapshot) =
                        wire::validate(item, &decoded.prefix(i), &cx, &mut names).unwrap();
                    assert_eq!(sc, "SC-001");
                    assert_eq!(snapshot.timestamp_ms, gen.timestamp(i as u64));
                    assert_eq!(snapshot.samples.len(), 30);
                    assert_eq!(snapshot.samples[0].0, "p000");
                }
            }
        }
    }

    #[test]
    fn duration_and_count_exclude_each_other() {
        assert!(T::try_parse_from(["t", "publish", "--duration", "1", "--count", "2"]).is_err());
    }
}
