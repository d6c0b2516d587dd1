//! Process-wide metrics: counters, gauges and latency histograms keyed by name and labels,
//! rendered in the Prometheus text exposition format. Deliberately small: a mutex-guarded map
//! is plenty at the rates one process records (thousands per second), and it has no
//! dependencies.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Registry {
    help: BTreeMap<&'static str, (Kind, &'static str)>,
    values: BTreeMap<(&'static str, String), f64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

/// `a="x",b="y"` from label pairs (values escaped).
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s
}

fn with(f: impl FnOnce(&mut Registry)) {
    if let Ok(mut r) = registry().lock() {
        f(&mut r);
    }
}

/// Add `by` to a counter.
pub fn count(name: &'static str, help: &'static str, pairs: &[(&str, &str)], by: u64) {
    with(|r| {
        r.help.entry(name).or_insert((Kind::Counter, help));
        *r.values.entry((name, labels(pairs))).or_default() += by as f64;
    });
}

/// Set a gauge.
pub fn gauge(name: &'static str, help: &'static str, pairs: &[(&str, &str)], value: f64) {
    with(|r| {
        r.help.entry(name).or_insert((Kind::Gauge, help));
        r.values.insert((name, labels(pairs)), value);
    });
}

/// Record one duration in a histogram (seconds).
pub fn observe(name: &'static str, help: &'static str, pairs: &[(&str, &str)], elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    with(|r| {
        r.help.entry(name).or_insert((Kind::Histogram, help));
        let h = r.histograms.entry((name, labels(pairs))).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    });
}

/// A histogram summed over its labels: how many, their mean, and the bucket bounds under
/// which 50 % and 99 % of them fall (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
}

/// The [`Summary`] of histogram `name` so far; `None` before its first observation.
pub fn summary(name: &str) -> Option<Summary> {
    let r = registry().lock().ok()?;
    let mut total = Histogram::default();
    for ((n, _), h) in &r.histograms {
        if *n == name {
            total.count += h.count;
            total.sum += h.sum;
            for (t, c) in total.counts.iter_mut().zip(h.counts) {
                *t += c;
            }
        }
    }
    if total.count == 0 {
        return None;
    }
    // Bucket counts are cumulative; past the last bound, say the last bound.
    let bound = |q: f64| {
        let needed = (q * total.count as f64).ceil() as u64;
        BUCKETS
            .iter()
            .zip(total.counts)
            .find(|(_, c)| *c >= needed)
            .map_or(BUCKETS[BUCKETS.len() - 1], |(b, _)| *b)
    };
    Some(Summary {
        count: total.count,
        mean: total.sum / total.count as f64,
        p50: bound(0.5),
        p99: bound(0.99),
    })
}

/// Everything recorded so far, in the Prometheus text format.
pub fn render() -> String {
    let mut out = String::new();
    let Ok(r) = registry().lock() else {
        return out;
    };
    for (name, (kind, help)) in &r.help {
        let kind_name = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind_name}");
        if *kind == Kind::Histogram {
            for ((n, l), h) in r.histograms.range((*name, String::new())..) {
                if n != name {
                    break;
                }
                let sep = if l.is_empty() { "" } else { "," };
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{l}{sep}le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{l}}} {}", h.count);
            }
        } else {
            for ((n, l), v) in r.values.range((*name, String::new())..) {
                if n != name {
                    break;
                }
                let _ = writeln!(out, "{name}{{{l}}} {v}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        count("t_total", "things", &[("kind", "a\"b")], 2);
        count("t_total", "things", &[("kind", "a\"b")], 1);
        gauge("t_gauge", "level", &[], 7.5);
        observe(
            "t_seconds",
            "latency",
            &[("op", "x")],
            Duration::from_millis(3),
        );
        let text = render();
        assert!(
            text.contains("# TYPE t_total counter\nt_total{kind=\"a\\\"b\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("t_gauge{} 7.5"), "{text}");
        assert!(
            text.contains("t_seconds_bucket{op=\"x\",le=\"0.0025\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{op=\"x\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("t_seconds_count{op=\"x\"} 1"), "{text}");
    }
}
