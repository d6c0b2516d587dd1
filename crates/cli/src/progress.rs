//! The one progress bar of long commands (rebuilds, backups, restores), on stderr: redrawn in
//! place on a terminal, one line per 10 % otherwise (logs stay readable).

use std::io::IsTerminal;
use std::time::Instant;

pub struct Bar {
    label: String,
    unit: &'static str,
    tty: bool,
    last_decile: Option<u32>,
    started: Instant,
    /// `done` at the first update: the rate counts this run's work only (a resumed job).
    baseline: Option<u64>,
}

impl Bar {
    pub fn new(label: impl Into<String>, unit: &'static str) -> Self {
        Self {
            label: label.into(),
            unit,
            tty: std::io::stderr().is_terminal(),
            last_decile: None,
            started: Instant::now(),
            baseline: None,
        }
    }

    /// Show `done` of `total`; the rate and ETA come from this run's progress.
    pub fn show(&mut self, done: u64, total: u64) {
        let base = *self.baseline.get_or_insert(done);
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            done.saturating_sub(base) as f64 / secs
        } else {
            0.0
        };
        let eta = (rate > 0.0).then(|| total.saturating_sub(done) as f64 / rate);
        self.show_with(done, total, rate, eta);
    }

    /// Show `done` of `total` with a rate and ETA the caller measured.
    pub fn show_with(&mut self, done: u64, total: u64, rate: f64, eta_seconds: Option<f64>) {
        let percent = if total == 0 {
            100.0
        } else {
            (done as f64 * 100.0 / total as f64).min(100.0)
        };
        let decile = (percent / 10.0) as u32;
        if !self.tty && self.last_decile == Some(decile) {
            return;
        }
        self.last_decile = Some(decile);
        let eta = eta_seconds.map_or("?".to_owned(), |s| format!("{s:.0}s"));
        let line = format!(
            "{} [{:<20}] {:>5.1}% {}/{} {}, {:.0} {}/s, ETA {}",
            self.label,
            "#".repeat(((percent / 5.0) as usize).min(20)),
            percent,
            done,
            total,
            self.unit,
            rate,
            self.unit,
            eta
        );
        if self.tty {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
    }

    /// End the bar's line (on a terminal, if it was drawn).
    pub fn finish(&self) {
        if self.tty && self.last_decile.is_some() {
            eprintln!();
        }
    }
}
