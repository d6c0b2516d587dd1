//! The metrics derived from the fold's rows, and the health score.
//!
//! Health score (0–100), from the log alone so a replay gives the same score:
//!
//! ```text
//! S = success rate of missions and task runs finished in the last 60 minutes (1 if none)
//! A = share of registered agents neither OFFLINE nor ERROR (1 if there are none)
//! L = 1 − min(1, (2 × critical + warning) / 10) over active alarms, not counting alarms
//!     raised on fleet metrics themselves
//! health = round(100 × (0.4 S + 0.3 A + 0.3 L))
//! ```

use crate::fold::AgentRow;
use serde::Serialize;

/// One agent's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentMetrics {
    pub success_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub avg_duration_seconds: Option<f64>,
    pub missions_in_progress: i64,
    pub runs_in_progress: i64,
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl AgentMetrics {
    pub fn of(row: &AgentRow) -> Self {
        let completed = row.missions.completed + row.runs.completed;
        let failed = row.missions.failed + row.runs.failed;
        Self {
            success_rate: ratio(completed, completed + failed),
            error_rate: ratio(failed, completed + failed),
            avg_duration_seconds: (row.timed > 0)
                .then(|| row.duration_ms as f64 / row.timed as f64 / 1000.0),
            missions_in_progress: row.missions.in_progress,
            runs_in_progress: row.runs.in_progress,
        }
    }

    /// The metrics limits may watch, by name.
    pub fn values(&self) -> [(&'static str, Option<f64>); 5] {
        [
            ("successRate", self.success_rate),
            ("errorRate", self.error_rate),
            ("avgDurationSeconds", self.avg_duration_seconds),
            ("missionsInProgress", Some(self.missions_in_progress as f64)),
            ("runsInProgress", Some(self.runs_in_progress as f64)),
        ]
    }

    /// `(metric, before, after)` for every metric that changed from `self` to `after`.
    pub fn changes(&self, after: &Self) -> Vec<(&'static str, Option<f64>, Option<f64>)> {
        changed(self.values(), after.values())
    }
}

fn changed<const N: usize>(
    before: [(&'static str, Option<f64>); N],
    after: [(&'static str, Option<f64>); N],
) -> Vec<(&'static str, Option<f64>, Option<f64>)> {
    before
        .into_iter()
        .zip(after)
        .filter(|((_, b), (_, a))| b != a)
        .map(|((name, b), (_, a))| (name, b, a))
        .collect()
}

/// The system's metrics at one point of the log.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemMetrics {
    pub agents_total: i64,
    pub agents_active: i64,
    pub agents_idle: i64,
    pub agents_offline: i64,
    pub agents_error: i64,
    pub tasks_completed: i64,
    pub tasks_failed: i64,
    pub tasks_pending: i64,
    pub missions_completed: i64,
    pub missions_failed: i64,
    pub missions_in_progress: i64,
    pub alarms_critical: i64,
    pub alarms_warning: i64,
    /// Of the work finished in the last 60 minutes; `None` when none finished.
    pub success_rate: Option<f64>,
    pub health_score: i64,
}

impl SystemMetrics {
    /// The metrics limits may watch, by name.
    pub fn values(&self) -> [(&'static str, Option<f64>); 6] {
        [
            ("healthScore", Some(self.health_score as f64)),
            ("successRate", self.success_rate),
            ("agentsOffline", Some(self.agents_offline as f64)),
            ("agentsActive", Some(self.agents_active as f64)),
            ("tasksPending", Some(self.tasks_pending as f64)),
            ("tasksFailed", Some(self.tasks_failed as f64)),
        ]
    }

    pub fn changes(&self, after: &Self) -> Vec<(&'static str, Option<f64>, Option<f64>)> {
        changed(self.values(), after.values())
    }
}

/// The health score of `m` (see the module documentation).
pub fn health_score(m: &SystemMetrics) -> i64 {
    let s = m.success_rate.unwrap_or(1.0);
    let a = if m.agents_total > 0 {
        (m.agents_total - m.agents_offline - m.agents_error) as f64 / m.agents_total as f64
    } else {
        1.0
    };
    let weight = (2 * m.alarms_critical + m.alarms_warning).max(0) as f64;
    let l = 1.0 - (weight / 10.0).min(1.0);
    (100.0 * (0.4 * s + 0.3 * a + 0.3 * l)).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_score_follows_its_documented_formula() {
        let all_well = SystemMetrics::default();
        assert_eq!(health_score(&all_well), 100);
        let m = SystemMetrics {
            success_rate: Some(0.5),
            agents_total: 4,
            agents_offline: 1,
            alarms_critical: 1,
            alarms_warning: 1,
            ..SystemMetrics::default()
        };
        // 100 × (0.4 × 0.5 + 0.3 × 0.75 + 0.3 × 0.7) = 63.5 → 64
        assert_eq!(health_score(&m), 64);
        let storm = SystemMetrics {
            alarms_critical: 50,
            ..SystemMetrics::default()
        };
        assert_eq!(health_score(&storm), 70);
    }
}
