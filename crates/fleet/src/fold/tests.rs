//! Given a scripted history of commits, then these metrics.

use super::*;
use crate::metrics::AgentMetrics;
use mc_domain::alarm::AlarmKey;
use mc_domain::ids::{AgentId, MissionId, TaskId};
use mc_domain::spacecraft::{RawLimits, SpacecraftId};
use mc_domain::task::run::RunSpec;
use mc_domain::task::SafeMutate;
use mc_domain::telemetry::Transition;
use serde_json::{Map, Value};

const T0: i64 = 1_750_000_000_000 - 1_750_000_000_000 % HOUR_MS;
const MIN: i64 = MINUTE_MS;

fn agent(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn registered(id: Uuid) -> Decoded {
    Decoded::Agent(
        id,
        vec![AgentEvent::Registered {
            id: AgentId::from_uuid(id),
            name: format!("agent-{id}"),
            description: String::new(),
            capabilities: Vec::new(),
            metadata: Map::new(),
            status: AgentStatus::Idle,
        }],
    )
}

fn status(id: Uuid, from: AgentStatus, to: AgentStatus) -> Decoded {
    Decoded::Agent(
        id,
        vec![AgentEvent::StatusChanged {
            from,
            to,
            reason: None,
        }],
    )
}

fn mission_created(m: Uuid, agent: Option<Uuid>) -> Decoded {
    Decoded::Mission(
        m,
        vec![MissionEvent::Created {
            id: MissionId::from_uuid(m),
            title: "m".into(),
            description: String::new(),
            status: MissionStatus::Pending,
            priority: Default::default(),
            progress: 0,
            metadata: Map::new(),
            agent_id: agent.map(AgentId::from_uuid),
        }],
    )
}

fn mission_to(m: Uuid, from: MissionStatus, to: MissionStatus) -> Decoded {
    Decoded::Mission(
        m,
        vec![MissionEvent::StatusChanged {
            from,
            to,
            reason: None,
        }],
    )
}

fn run_created(r: Uuid, agent: Uuid) -> Decoded {
    Decoded::Run(
        r,
        vec![RunEvent::Created(RunSpec {
            task: TaskId::from_uuid(Uuid::from_u128(900)),
            agent: Some(AgentId::from_uuid(agent)),
            allowed_tools: Vec::new(),
            safe_mutate: SafeMutate::default(),
            budget: None,
        })],
    )
}

fn comment(agent: Uuid) -> Decoded {
    Decoded::Comment(vec![CommentEvent::Posted {
        id: mc_domain::ids::CommentId::from_uuid(Uuid::now_v7()),
        content: "hi".into(),
        comment_type: Default::default(),
        agent_id: Some(AgentId::from_uuid(agent)),
        mission_id: None,
        metadata: Map::new(),
    }])
}

/// Fold `history` (time, commit) from an empty read model, one commit per position.
fn given(history: &[(i64, Decoded)]) -> Fold {
    let mut fold = Fold::default();
    for (i, (t, d)) in history.iter().enumerate() {
        fold.commit(i as u64 + 1, *t, d);
    }
    fold
}

#[test]
fn missions_and_runs_count_for_their_agent_with_durations_and_rates() {
    let (a, m1, m2, r1, r2) = (agent(1), agent(11), agent(12), agent(21), agent(22));
    use MissionStatus::*;
    let fold = given(&[
        (T0, registered(a)),
        (T0, mission_created(m1, Some(a))),
        (T0 + MIN, mission_to(m1, Pending, InProgress)),
        (T0 + 3 * MIN, mission_to(m1, InProgress, Completed)),
        (T0 + 3 * MIN, mission_created(m2, Some(a))),
        (T0 + 4 * MIN, mission_to(m2, Pending, InProgress)),
        (T0 + 4 * MIN, run_created(r1, a)),
        (
            T0 + 5 * MIN,
            Decoded::Run(r1, vec![RunEvent::Failed { reason: "x".into() }]),
        ),
        (T0 + 5 * MIN, run_created(r2, a)),
        (
            T0 + 6 * MIN,
            Decoded::Run(
                r2,
                vec![RunEvent::Succeeded {
                    output: String::new(),
                }],
            ),
        ),
    ]);
    let row = &fold.agents[&a];
    assert_eq!(
        row.missions,
        Tally {
            completed: 1,
            failed: 0,
            in_progress: 1
        }
    );
    assert_eq!(
        row.runs,
        Tally {
            completed: 1,
            failed: 1,
            in_progress: 0
        }
    );
    let m = AgentMetrics::of(row);
    assert_eq!(m.success_rate, Some(2.0 / 3.0));
    assert_eq!(m.error_rate, Some(1.0 / 3.0));
    // 2 min (mission) + 1 min (failed run) + 1 min (run) over 3 timed = 80 s.
    assert_eq!(m.avg_duration_seconds, Some(80.0));
    assert_eq!(m.missions_in_progress, 1);
    assert_eq!(
        fold.system.runs,
        Tally {
            completed: 1,
            failed: 1,
            in_progress: 0
        }
    );
    assert_eq!(fold.system.missions.in_progress, 1);
    assert_eq!(row.last_activity, T0 + 6 * MIN);
}

#[test]
fn work_and_idle_time_come_from_status_transitions() {
    let a = agent(1);
    use AgentStatus::*;
    let fold = given(&[
        (T0, registered(a)),
        (T0 + 2 * MIN, status(a, Idle, Busy)),
        (T0 + 7 * MIN, status(a, Busy, Idle)),
        (T0 + 8 * MIN, status(a, Idle, Busy)),
        (T0 + 9 * MIN, status(a, Busy, Offline)),
    ]);
    let row = &fold.agents[&a];
    assert_eq!(row.work_ms, 6 * MIN);
    assert_eq!(row.idle_ms, 3 * MIN);
    assert_eq!(row.status, Offline);
    // Going OFFLINE is not activity; the last activity is the return to work.
    assert_eq!(row.last_activity, T0 + 8 * MIN);
    // The stretch is booked in the minute it closed.
    assert_eq!(fold.agent_minutes[&(a, T0 + 7 * MIN)].work_ms, 5 * MIN);
    assert_eq!(fold.system.agents["OFFLINE"], 1);
    assert_eq!(fold.system.agents["IDLE"], 0);
}

#[test]
fn comments_events_per_minute_and_system_gauges() {
    let (a, b) = (agent(1), agent(2));
    let fold = given(&[
        (T0, registered(a)),
        (T0 + 10, registered(b)),
        (T0 + 20, comment(a)),
        (T0 + MIN, comment(a)),
        (
            T0 + MIN + 5,
            status(b, AgentStatus::Idle, AgentStatus::Busy),
        ),
        (T0 + MIN + 6, Decoded::Other(3)),
    ]);
    assert_eq!(fold.agents[&a].comments, 2);
    assert_eq!(fold.system_minutes[&T0].events, 3);
    assert_eq!(fold.system_minutes[&(T0 + MIN)].events, 5);
    let g = &fold.system_minutes[&(T0 + MIN)].gauges;
    assert_eq!((g.agents_total, g.agents_active, g.agents_idle), (2, 1, 1));
    assert_eq!(g.health_score, 100);
    assert_eq!(fold.system.events, 8);
}

#[test]
fn time_never_runs_backwards_and_the_success_window_slides() {
    let a = agent(1);
    let (r1, r2) = (agent(21), agent(22));
    let fold = given(&[
        (T0, registered(a)),
        (T0, run_created(r1, a)),
        (
            T0 + MIN,
            Decoded::Run(r1, vec![RunEvent::Failed { reason: "x".into() }]),
        ),
        // An earlier timestamp after a later one happens at the clock.
        (T0 + 30_000, run_created(r2, a)),
        (
            T0 + 90 * MIN,
            Decoded::Run(
                r2,
                vec![RunEvent::Succeeded {
                    output: String::new(),
                }],
            ),
        ),
    ]);
    assert_eq!(fold.system.clock, T0 + 90 * MIN);
    assert_eq!(fold.agents[&a].duration_ms, MIN + (90 * MIN - MIN));
    // The failure is older than the window: the system's success rate is 1.
    assert_eq!(fold.system_metrics().success_rate, Some(1.0));
    assert_eq!(AgentMetrics::of(&fold.agents[&a]).success_rate, Some(0.5));
}

#[test]
fn alarms_count_against_health_except_alarms_on_fleet_metrics() {
    let raised = |source: &str, severity| {
        Decoded::Alarm(
            Uuid::new_v5(&Uuid::NAMESPACE_OID, source.as_bytes()),
            vec![AlarmEvent::Raised {
                key: AlarmKey {
                    spacecraft: SpacecraftId::parse(source, "s").unwrap(),
                    parameter: "p".into(),
                    kind: AlarmKind::Limit,
                },
                occurrence: 1,
                severity,
                value: Value::Null,
                sample_time_ms: T0,
                ordinal: 1,
            }],
        )
    };
    let fold = given(&[
        (T0, raised("SC-1", Severity::Critical)),
        (T0, raised("SC-2", Severity::Warning)),
        (T0, raised(SYSTEM_SOURCE, Severity::Critical)),
        (T0, raised("agent-x", Severity::Critical)),
    ]);
    assert_eq!(
        (fold.system.alarms_critical, fold.system.alarms_warning),
        (1, 1)
    );
    // 0.4 + 0.3 + 0.3 × 0.7 = 0.91
    assert_eq!(fold.system_metrics().health_score, 91);
    let back = Decoded::Alarm(
        Uuid::new_v5(&Uuid::NAMESPACE_OID, b"SC-1"),
        vec![AlarmEvent::ReturnedToNormal {
            value: Value::Null,
            sample_time_ms: T0,
            ordinal: 2,
        }],
    );
    let mut fold = fold;
    fold.commit(5, T0, &back);
    assert_eq!(fold.system.alarms_critical, 0);
}

#[test]
fn a_success_rate_below_its_limit_raises_and_a_recovery_returns_to_normal() {
    let a = agent(1);
    let limits = FleetLimits::parse(
        [(
            "successRate".to_owned(),
            RawLimits {
                warn_low: Some(0.6),
                crit_low: Some(0.3),
                ..RawLimits::default()
            },
        )]
        .into(),
        Default::default(),
    )
    .unwrap();
    let run = |n: u128, ok: bool, t: i64| {
        let id = agent(100 + n);
        let end = if ok {
            RunEvent::Succeeded {
                output: String::new(),
            }
        } else {
            RunEvent::Failed { reason: "x".into() }
        };
        [(t, run_created(id, a)), (t, Decoded::Run(id, vec![end]))]
    };
    let mut history = vec![
        (
            T0,
            Decoded::Fleet(vec![FleetEvent::LimitsConfigured(limits)]),
        ),
        (T0, registered(a)),
    ];
    history.extend(run(1, true, T0 + MIN)); // 1.0
    history.extend(run(2, false, T0 + 2 * MIN)); // 0.5 → WARNING
    history.extend(run(3, false, T0 + 3 * MIN)); // 0.33 (still WARNING)
    history.extend(run(4, false, T0 + 4 * MIN)); // 0.25 → CRITICAL
    for n in 5..=9 {
        history.extend(run(n, true, T0 + n as i64 * MIN)); // 5 of 8 = 0.625 → normal
    }
    let fold = given(&history);
    let seen: Vec<_> = fold
        .transitions
        .iter()
        .map(|t| (t.transition, t.value))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Transition::Raise(Severity::Warning), 0.5),
            (Transition::Escalate(Severity::Critical), 0.25),
            (Transition::ReturnToNormal, 5.0 / 8.0),
        ]
    );
    assert!(fold.transitions.iter().all(|t| t.source == agent_source(a)));
    // Ordinals are log positions, increasing.
    assert!(fold
        .transitions
        .windows(2)
        .all(|w| w[0].ordinal < w[1].ordinal));
}

#[test]
fn any_split_into_batches_gives_the_same_rows() {
    let a = agent(1);
    let m = agent(11);
    use MissionStatus::*;
    let history = vec![
        (T0, registered(a)),
        (T0 + 5, mission_created(m, Some(a))),
        (T0 + MIN, mission_to(m, Pending, InProgress)),
        (T0 + MIN, status(a, AgentStatus::Idle, AgentStatus::Busy)),
        (T0 + 3 * MIN, comment(a)),
        (T0 + 4 * MIN, mission_to(m, InProgress, Failed)),
        (
            T0 + 4 * MIN,
            status(a, AgentStatus::Busy, AgentStatus::Idle),
        ),
    ];
    let whole = given(&history);
    // Fold in two batches, carrying only what a store/load would carry.
    let mut first = given(&history[..3]);
    first.agent_minutes.clear();
    first.system_minutes.clear();
    first.transitions.clear();
    for (i, (t, d)) in history.iter().enumerate().skip(3) {
        first.commit(i as u64 + 1, *t, d);
    }
    assert_eq!(first.agents, whole.agents);
    assert_eq!(first.system, whole.system);
    assert_eq!(first.work, whole.work);
}
