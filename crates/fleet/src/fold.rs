//! The metrics fold, without IO: the rows a batch touches go in, the log's commits are folded
//! in order, and the changed rows, minute buckets and metric-alarm transitions come out.
//!
//! Architecture Invariant: time is the log's, never the wall clock: a commit happens at
//! `max(clock, occurred_at)`, so the fold is a function of the commits in order and a replay
//! (any batch sizes) gives the same rows.

use crate::metrics::{health_score, AgentMetrics, SystemMetrics};
use mc_domain::agent::{AgentEvent, AgentStatus};
use mc_domain::alarm::{AlarmEvent, AlarmKind};
use mc_domain::comment::CommentEvent;
use mc_domain::fleet::{FleetEvent, FleetLimits};
use mc_domain::mission::{MissionEvent, MissionStatus};
use mc_domain::task::run::RunEvent;
use mc_domain::telemetry::{ParamState, SampleValue, Severity};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub use crate::rows::*;

#[cfg(test)]
mod tests;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
/// The success rate in the health score looks this far back.
pub const WINDOW_MINUTES: i64 = 60;
/// The alarm source of system metrics.
pub const SYSTEM_SOURCE: &str = "fleet";

/// The alarm source of an agent's metrics (and of its budget).
pub fn agent_source(agent: Uuid) -> String {
    format!("agent-{agent}")
}

/// The fold over one batch: rows in, rows and outputs out.
#[derive(Debug, Default)]
pub struct Fold {
    pub system: SystemRow,
    pub limits: FleetLimits,
    pub limits_changed: bool,
    pub agents: HashMap<Uuid, AgentRow>,
    pub work: HashMap<(WorkKind, Uuid), WorkRow>,
    pub alarms: HashMap<Uuid, AlarmSeen>,
    /// Evaluator state per (source, metric).
    pub params: HashMap<(String, String), ParamState>,
    /// Finished (completed, failed) per minute, for the success-rate window.
    pub recent: BTreeMap<i64, (i64, i64)>,
    pub agent_minutes: BTreeMap<(Uuid, i64), AgentBucket>,
    pub system_minutes: BTreeMap<i64, SystemBucket>,
    pub transitions: Vec<MetricAlarm>,
}

fn minute_of(t: i64) -> i64 {
    t - t.rem_euclid(MINUTE_MS)
}

impl Fold {
    /// The agents a commit touches: named ones and the agent of its mission or run.
    pub fn agents_of(&self, decoded: &Decoded) -> Vec<Uuid> {
        let mut out = decoded.named_agents();
        if let Some(agent) = decoded
            .work()
            .and_then(|k| self.work.get(&k))
            .and_then(|w| w.agent)
        {
            out.push(agent);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Fold one commit at its position and time.
    pub fn commit(&mut self, position: u64, occurred_ms: i64, decoded: &Decoded) {
        let t = self.system.clock.max(occurred_ms);
        self.system.clock = t;
        let minute = minute_of(t);
        let touched = self.agents_of(decoded);
        let before: Vec<(Uuid, AgentMetrics)> = touched
            .iter()
            .filter_map(|a| self.agents.get(a).map(|r| (*a, AgentMetrics::of(r))))
            .collect();
        let system_before = self.system_metrics();
        let n = decoded.len() as i64;
        self.system.events += n;
        match decoded {
            Decoded::Agent(id, events) => events.iter().for_each(|e| self.agent(*id, e, t)),
            Decoded::Mission(id, events) => events.iter().for_each(|e| self.mission(*id, e, t)),
            Decoded::Run(id, events) => events.iter().for_each(|e| self.run(*id, e, t)),
            Decoded::Comment(events) => {
                for e in events {
                    if let CommentEvent::Posted {
                        agent_id: Some(a), ..
                    } = e
                    {
                        if let Some(row) = self.live_agent(a.as_uuid()) {
                            row.comments += 1;
                            row.last_activity = t;
                        }
                        self.agent_bucket(a.as_uuid(), t).comments += 1;
                    }
                }
            }
            Decoded::Alarm(id, events) => events.iter().for_each(|e| self.alarm(*id, e)),
            Decoded::Fleet(events) => {
                for FleetEvent::LimitsConfigured(limits) in events {
                    self.limits = limits.clone();
                    self.limits_changed = true;
                }
            }
            Decoded::Other(_) => {}
        }
        for a in &touched {
            if self.agents.contains_key(a) {
                self.agent_bucket(*a, t).events += n;
            }
        }
        self.prune_window(minute);
        let gauges = self.system_metrics();
        let bucket = self.system_minutes.entry(minute).or_default();
        bucket.events += n;
        bucket.health_min = Some(
            bucket
                .health_min
                .map_or(gauges.health_score, |h| h.min(gauges.health_score)),
        );
        bucket.gauges = gauges.clone();
        for (agent, was) in before {
            let Some(now) = self.agents.get(&agent).map(AgentMetrics::of) else {
                continue;
            };
            let limits = self.limits.agent.clone();
            let source = agent_source(agent);
            for (metric, old, new) in was.changes(&now) {
                self.judge(&source, &limits, metric, old, new, t, position);
            }
        }
        let limits = self.limits.system.clone();
        for (metric, old, new) in system_before.changes(&gauges) {
            self.judge(SYSTEM_SOURCE, &limits, metric, old, new, t, position);
        }
    }

    /// Step the evaluator of a metric whose value changed (a sample is a change: limits set
    /// later judge a metric from its next change on).
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &mut self,
        source: &str,
        limits: &mc_domain::spacecraft::LimitsConfig,
        metric: &'static str,
        old: Option<f64>,
        new: Option<f64>,
        at_ms: i64,
        ordinal: u64,
    ) {
        let (Some(value), Some(l)) = (new, limits.parameters().get(metric)) else {
            return;
        };
        if old == new {
            return;
        }
        let state = self
            .params
            .entry((source.to_owned(), metric.to_owned()))
            .or_default();
        if let Some(transition) = state.step(Some(l), SampleValue::Number(value)) {
            self.transitions.push(MetricAlarm {
                source: source.to_owned(),
                metric,
                transition,
                value,
                at_ms,
                ordinal,
            });
        }
    }

    fn live_agent(&mut self, id: Uuid) -> Option<&mut AgentRow> {
        self.agents.get_mut(&id).filter(|r| !r.removed)
    }

    fn agent_bucket(&mut self, id: Uuid, t: i64) -> &mut AgentBucket {
        self.agent_minutes.entry((id, minute_of(t))).or_default()
    }

    fn count_status(&mut self, status: AgentStatus, delta: i64) {
        *self.system.agents.entry(status.as_str()).or_default() += delta;
    }

    fn agent(&mut self, id: Uuid, event: &AgentEvent, t: i64) {
        match event {
            AgentEvent::Registered { name, status, .. } => {
                self.agents.insert(
                    id,
                    AgentRow {
                        name: name.clone(),
                        status: *status,
                        status_since: t,
                        registered_at: t,
                        last_activity: t,
                        ..AgentRow::default()
                    },
                );
                self.count_status(*status, 1);
            }
            AgentEvent::Updated { name: Some(n), .. } => {
                if let Some(row) = self.live_agent(id) {
                    row.name.clone_from(n);
                }
            }
            AgentEvent::Updated { .. } => {}
            AgentEvent::StatusChanged { to, .. } => {
                let Some(row) = self.live_agent(id) else {
                    return;
                };
                let (from, stretch) = (row.status, (t - row.status_since).max(0));
                let (mut work, mut idle) = (0, 0);
                match from {
                    AgentStatus::Busy => work = stretch,
                    AgentStatus::Idle => idle = stretch,
                    _ => {}
                }
                row.work_ms += work;
                row.idle_ms += idle;
                row.status = *to;
                row.status_since = t;
                if *to != AgentStatus::Offline {
                    row.last_activity = t;
                }
                let bucket = self.agent_bucket(id, t);
                bucket.work_ms += work;
                bucket.idle_ms += idle;
                self.count_status(from, -1);
                self.count_status(*to, 1);
            }
            AgentEvent::Removed { .. } => {
                if let Some(row) = self.live_agent(id) {
                    row.removed = true;
                    let status = row.status;
                    self.count_status(status, -1);
                }
            }
        }
    }

    /// Move a mission or run to `stage`, counting it for its agent and the system.
    /// `outcome`: `Some(true)` completed, `Some(false)` failed, `None` neither.
    fn stage(&mut self, key: (WorkKind, Uuid), stage: Stage, outcome: Option<bool>, t: i64) {
        let row = self.work.entry(key).or_default();
        let (from, agent, since) = (row.stage, row.agent, row.since);
        row.stage = stage;
        if stage == Stage::Active && from != Stage::Active {
            row.since = Some(t);
        }
        fn tally(s: &mut SystemRow, kind: WorkKind) -> &mut Tally {
            match kind {
                WorkKind::Mission => &mut s.missions,
                WorkKind::Run => &mut s.runs,
            }
        }
        let delta = i64::from(stage == Stage::Active) - i64::from(from == Stage::Active);
        tally(&mut self.system, key.0).in_progress += delta;
        let finished = (stage == Stage::Done && from != Stage::Done)
            .then_some(outcome)
            .flatten();
        match finished {
            Some(true) => tally(&mut self.system, key.0).completed += 1,
            Some(false) => tally(&mut self.system, key.0).failed += 1,
            None => {}
        }
        if let Some(ok) = finished {
            let entry = self.recent.entry(minute_of(t)).or_default();
            if ok {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
            let bucket = self.system_minutes.entry(minute_of(t)).or_default();
            if ok {
                bucket.completed += 1;
            } else {
                bucket.failed += 1;
            }
        }
        let Some(agent) = agent else {
            return;
        };
        if let Some(row) = self.live_agent(agent) {
            let tally = match key.0 {
                WorkKind::Mission => &mut row.missions,
                WorkKind::Run => &mut row.runs,
            };
            tally.in_progress += delta;
            match finished {
                Some(true) => tally.completed += 1,
                Some(false) => tally.failed += 1,
                None => {}
            }
            if let (Some(_), Some(since)) = (finished, since.filter(|_| from == Stage::Active)) {
                row.timed += 1;
                row.duration_ms += (t - since).max(0);
            }
            row.last_activity = t;
        }
        if let Some(ok) = finished {
            let bucket = self.agent_bucket(agent, t);
            if ok {
                bucket.completed += 1;
            } else {
                bucket.failed += 1;
            }
        }
    }

    /// Hand an active mission over to another agent (or to none).
    fn reassign(&mut self, key: (WorkKind, Uuid), to: Option<Uuid>, t: i64) {
        let row = self.work.entry(key).or_default();
        let (from, active) = (row.agent, row.stage == Stage::Active);
        row.agent = to;
        if from == to || !active {
            return;
        }
        if let Some(row) = from.and_then(|a| self.live_agent(a)) {
            row.missions.in_progress -= 1;
        }
        if let Some(row) = to.and_then(|a| self.live_agent(a)) {
            row.missions.in_progress += 1;
            row.last_activity = t;
        }
    }

    fn mission(&mut self, id: Uuid, event: &MissionEvent, t: i64) {
        let key = (WorkKind::Mission, id);
        match event {
            MissionEvent::Created {
                status, agent_id, ..
            } => {
                self.work.insert(
                    key,
                    WorkRow {
                        agent: agent_id.map(|a| a.as_uuid()),
                        ..WorkRow::default()
                    },
                );
                if *status != MissionStatus::Pending {
                    self.mission_status(key, *status, t);
                }
            }
            MissionEvent::StatusChanged { to, .. } => self.mission_status(key, *to, t),
            MissionEvent::Assigned { agent_id, .. } => {
                self.reassign(key, Some(agent_id.as_uuid()), t);
            }
            MissionEvent::Unassigned { .. } => self.reassign(key, None, t),
            MissionEvent::Deleted => {
                self.stage(key, Stage::Done, None, t);
            }
            MissionEvent::ProgressUpdated { .. } => self.touch(key, t),
            MissionEvent::Updated { .. } => {}
        }
    }

    fn mission_status(&mut self, key: (WorkKind, Uuid), status: MissionStatus, t: i64) {
        let (stage, outcome) = match status {
            MissionStatus::Pending => (Stage::Waiting, None),
            MissionStatus::InProgress => (Stage::Active, None),
            MissionStatus::Completed => (Stage::Done, Some(true)),
            MissionStatus::Failed => (Stage::Done, Some(false)),
            MissionStatus::Cancelled => (Stage::Done, None),
        };
        self.stage(key, stage, outcome, t);
    }

    /// Work reported on a mission or run: life from its agent.
    fn touch(&mut self, key: (WorkKind, Uuid), t: i64) {
        let agent = self.work.get(&key).and_then(|w| w.agent);
        if let Some(row) = agent.and_then(|a| self.live_agent(a)) {
            row.last_activity = t;
        }
    }

    fn run(&mut self, id: Uuid, event: &RunEvent, t: i64) {
        let key = (WorkKind::Run, id);
        match event {
            RunEvent::Created(spec) => {
                self.work.insert(
                    key,
                    WorkRow {
                        agent: spec.agent.map(|a| a.as_uuid()),
                        ..WorkRow::default()
                    },
                );
                self.stage(key, Stage::Active, None, t);
            }
            RunEvent::Succeeded { .. } => self.stage(key, Stage::Done, Some(true), t),
            RunEvent::Failed { .. } => self.stage(key, Stage::Done, Some(false), t),
            RunEvent::Cancelled { .. } => {
                if self.work.get(&key).is_some_and(|w| w.stage != Stage::Done) {
                    self.system.runs_cancelled += 1;
                }
                self.stage(key, Stage::Done, None, t);
            }
            // Decisions of operators are not the agent's work.
            RunEvent::ToolCallApproved { .. }
            | RunEvent::ToolCallDenied { .. }
            | RunEvent::BudgetApproved { .. }
            | RunEvent::BudgetExceeded { .. } => {}
            _ => self.touch(key, t),
        }
    }

    fn alarm(&mut self, id: Uuid, event: &AlarmEvent) {
        let seen = self.alarms.get(&id).copied().unwrap_or_default();
        let next = match event {
            AlarmEvent::Raised { key, severity, .. } => AlarmSeen {
                active: Some(*severity),
                counted: !(key.kind == AlarmKind::Limit
                    && (key.spacecraft.as_str() == SYSTEM_SOURCE
                        || key.spacecraft.as_str().starts_with("agent-"))),
            },
            AlarmEvent::Escalated { severity, .. } => AlarmSeen {
                active: Some(*severity),
                ..seen
            },
            AlarmEvent::ReturnedToNormal { .. } => AlarmSeen {
                active: None,
                ..seen
            },
            _ => seen,
        };
        let count = |s: &AlarmSeen, sys: &mut SystemRow, d: i64| match s.active {
            Some(Severity::Critical) if s.counted => sys.alarms_critical += d,
            Some(Severity::Warning) if s.counted => sys.alarms_warning += d,
            _ => {}
        };
        count(&seen, &mut self.system, -1);
        count(&next, &mut self.system, 1);
        self.alarms.insert(id, next);
    }

    fn prune_window(&mut self, minute: i64) {
        let oldest = minute - (WINDOW_MINUTES - 1) * MINUTE_MS;
        self.recent = self.recent.split_off(&oldest);
    }

    /// The system's metrics now.
    pub fn system_metrics(&self) -> SystemMetrics {
        let agents = |s: AgentStatus| self.system.agents.get(s.as_str()).copied().unwrap_or(0);
        let (completed, failed) = self
            .recent
            .values()
            .fold((0, 0), |(c, f), (dc, df)| (c + dc, f + df));
        let finished = completed + failed;
        let success_rate = (finished > 0).then(|| completed as f64 / finished as f64);
        let mut m = SystemMetrics {
            agents_total: AgentStatus::ALL.iter().map(|s| agents(*s)).sum(),
            agents_active: agents(AgentStatus::Busy),
            agents_idle: agents(AgentStatus::Idle),
            agents_offline: agents(AgentStatus::Offline),
            agents_error: agents(AgentStatus::Error),
            tasks_completed: self.system.runs.completed,
            tasks_failed: self.system.runs.failed,
            tasks_pending: self.system.runs.in_progress,
            missions_completed: self.system.missions.completed,
            missions_failed: self.system.missions.failed,
            missions_in_progress: self.system.missions.in_progress,
            alarms_critical: self.system.alarms_critical,
            alarms_warning: self.system.alarms_warning,
            success_rate,
            health_score: 0,
        };
        m.health_score = health_score(&m);
        m
    }
}
