//! The rows the fold reads and writes, and a commit's events as the fold takes them.

use crate::metrics::SystemMetrics;
use mc_domain::agent::{AgentEvent, AgentStatus};
use mc_domain::alarm::AlarmEvent;
use mc_domain::comment::CommentEvent;
use mc_domain::fleet::FleetEvent;
use mc_domain::mission::MissionEvent;
use mc_domain::task::run::{RunEvent, RunSpec};
use mc_domain::telemetry::{Severity, Transition};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Finished and unfinished work of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub completed: i64,
    pub failed: i64,
    pub in_progress: i64,
}

/// What the read model keeps of one agent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentRow {
    pub name: String,
    pub status: AgentStatus,
    pub status_since: i64,
    pub registered_at: i64,
    pub removed: bool,
    /// The last event of the agent's own work (its missions, runs, comments, status).
    pub last_activity: i64,
    pub missions: Tally,
    pub runs: Tally,
    /// Finished work with a known start, and its summed duration.
    pub timed: i64,
    pub duration_ms: i64,
    pub work_ms: i64,
    pub idle_ms: i64,
    pub comments: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkKind {
    Mission,
    Run,
}

impl WorkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mission => "mission",
            Self::Run => "run",
        }
    }
}

/// Where a mission or run is: waiting (PENDING), active (in progress), or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    #[default]
    Waiting,
    Active,
    Done,
}

/// A mission or run: its agent and stage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkRow {
    pub agent: Option<Uuid>,
    pub stage: Stage,
    /// When it became active.
    pub since: Option<i64>,
}

/// An alarm as the health score counts it: active with a severity, and whether it counts
/// (alarms on fleet metrics themselves do not, or the score would feed on itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlarmSeen {
    pub active: Option<Severity>,
    pub counted: bool,
}

/// System-wide counts and the log clock.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemRow {
    pub clock: i64,
    pub events: i64,
    /// Registered agents by status (not removed).
    pub agents: BTreeMap<&'static str, i64>,
    pub missions: Tally,
    pub runs: Tally,
    pub runs_cancelled: i64,
    pub alarms_critical: i64,
    pub alarms_warning: i64,
}

/// One agent's work in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentBucket {
    pub completed: i64,
    pub failed: i64,
    pub comments: i64,
    pub work_ms: i64,
    pub idle_ms: i64,
    pub events: i64,
}

/// The system in one minute: counters, and the gauges as the minute's last commit left them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemBucket {
    pub events: i64,
    pub completed: i64,
    pub failed: i64,
    pub gauges: SystemMetrics,
    /// The lowest health score any commit of the minute left.
    pub health_min: Option<i64>,
}

/// A metric crossing its limits: an alarm command to send.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAlarm {
    pub source: String,
    pub metric: &'static str,
    pub transition: Transition,
    pub value: f64,
    pub at_ms: i64,
    pub ordinal: u64,
}

/// A commit's events, decoded for the fold.
#[derive(Debug, Clone)]
pub enum Decoded {
    Agent(Uuid, Vec<AgentEvent>),
    Mission(Uuid, Vec<MissionEvent>),
    Comment(Vec<CommentEvent>),
    Run(Uuid, Vec<RunEvent>),
    Alarm(Uuid, Vec<AlarmEvent>),
    Fleet(Vec<FleetEvent>),
    /// Any other aggregate: only counted.
    Other(usize),
}

impl Decoded {
    pub fn len(&self) -> usize {
        match self {
            Self::Agent(_, e) => e.len(),
            Self::Mission(_, e) => e.len(),
            Self::Comment(e) => e.len(),
            Self::Run(_, e) => e.len(),
            Self::Alarm(_, e) => e.len(),
            Self::Fleet(e) => e.len(),
            Self::Other(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mission or run this commit is about.
    pub fn work(&self) -> Option<(WorkKind, Uuid)> {
        match self {
            Self::Mission(id, _) => Some((WorkKind::Mission, *id)),
            Self::Run(id, _) => Some((WorkKind::Run, *id)),
            _ => None,
        }
    }

    /// Agents named in the events themselves (the work's agent is found through its row).
    pub fn named_agents(&self) -> Vec<Uuid> {
        let mut out = Vec::new();
        match self {
            Self::Agent(id, _) => out.push(*id),
            Self::Mission(_, events) => {
                for e in events {
                    match e {
                        MissionEvent::Created {
                            agent_id: Some(a), ..
                        } => out.push(a.as_uuid()),
                        MissionEvent::Assigned { agent_id, previous } => {
                            out.push(agent_id.as_uuid());
                            out.extend(previous.map(|p| p.as_uuid()));
                        }
                        MissionEvent::Unassigned { agent_id } => out.push(agent_id.as_uuid()),
                        _ => {}
                    }
                }
            }
            Self::Comment(events) => out.extend(events.iter().filter_map(|e| match e {
                CommentEvent::Posted {
                    agent_id: Some(a), ..
                } => Some(a.as_uuid()),
                _ => None,
            })),
            Self::Run(_, events) => out.extend(events.iter().filter_map(|e| match e {
                RunEvent::Created(RunSpec { agent: Some(a), .. }) => Some(a.as_uuid()),
                _ => None,
            })),
            _ => {}
        }
        out
    }
}
