//! Given/when/then for tools, tasks and task runs: the lifecycle for every pair of states, the
//! approval policy for every risk, and refusals that append nothing.

use super::run::*;
use super::*;
use crate::ids::{TaskId, ToolCallId};
use serde_json::json;
use uuid::Uuid;

fn tool(name: &str) -> ToolName {
    ToolName::parse(name, "tool").unwrap()
}

fn spec(safe_mutate: SafeMutate) -> RunSpec {
    RunSpec {
        task: TaskId::from_uuid(Uuid::from_u128(1)),
        agent: None,
        allowed_tools: vec![tool("read"), tool("write"), tool("drop")],
        safe_mutate,
        budget: None,
    }
}

fn given(events: &[RunEvent]) -> TaskRun {
    events.iter().fold(TaskRun::default(), TaskRun::evolve)
}

fn call(n: u128) -> ToolCallId {
    ToolCallId::from_uuid(Uuid::from_u128(n))
}

fn request(n: u128, name: &str, risk: Risk) -> RunCommand {
    RunCommand::RequestToolCall {
        call: call(n),
        tool: tool(name),
        arguments: json!({"path": "/tmp"}),
        risk,
    }
}

/// Decide and fold: the state after `command`, or the refusal.
fn then(state: &TaskRun, command: &RunCommand) -> Result<(TaskRun, Vec<RunEvent>), DomainError> {
    let events = state.decide(command)?;
    Ok((
        events.iter().fold(state.clone(), |s, e| s.evolve(e)),
        events,
    ))
}

fn state_of(run: &TaskRun) -> RunState {
    run.0.as_ref().unwrap().state
}

/// A run brought to `state` by legal steps.
fn run_in(state: RunState) -> TaskRun {
    let created = given(&[RunEvent::Created(spec(SafeMutate::Operator))]);
    let steps: &[RunCommand] = match state {
        RunState::Queued => &[],
        RunState::Running => &[RunCommand::Log {
            level: LogLevel::Info,
            message: "go".into(),
        }],
        RunState::AwaitingApproval => &[request(9, "drop", Risk::Destructive)],
        RunState::Succeeded => &[RunCommand::Complete {
            output: "done".into(),
        }],
        RunState::Failed => &[RunCommand::Fail {
            reason: "broke".into(),
        }],
        RunState::Cancelled => &[RunCommand::Cancel {
            reason: "stop".into(),
        }],
    };
    let run = steps.iter().fold(created, |s, c| then(&s, c).unwrap().0);
    assert_eq!(state_of(&run), state);
    run
}

/// Every command a runner or operator can send.
fn commands() -> Vec<RunCommand> {
    vec![
        request(1, "read", Risk::ReadOnly),
        request(2, "drop", Risk::Destructive),
        RunCommand::Approve {
            call: call(9),
            by: "op".into(),
            reason: "ok".into(),
        },
        RunCommand::Deny {
            call: call(9),
            by: "op".into(),
            reason: "no".into(),
        },
        RunCommand::RecordResult {
            call: call(9),
            outcome: Ok(json!(1)),
        },
        RunCommand::Log {
            level: LogLevel::Warn,
            message: "hm".into(),
        },
        RunCommand::AddArtifact(Artifact {
            name: "report".into(),
            uri: "s3://b/report.pdf".into(),
            content_type: "application/pdf".into(),
            sha256: "ab".repeat(32),
        }),
        RunCommand::RecordLlmCall(LlmCall {
            provider: "openai".into(),
            model: "gpt-4o".into(),
            tokens: super::pricing::Tokens::parse(10, 5, 0, 0).unwrap(),
            latency_ms: 900,
            finish_reason: "stop".into(),
            at_ms: 1,
            cost: Some(Usd::from_nanos(75)),
            price_from_ms: Some(0),
        }),
        RunCommand::BlockForBudget {
            reason: "task budget $1 passed".into(),
        },
        RunCommand::ApproveBudget {
            by: "op".into(),
            reason: "worth it".into(),
            waive: true,
        },
        RunCommand::Complete {
            output: "done".into(),
        },
        RunCommand::Fail {
            reason: "broke".into(),
        },
        RunCommand::Cancel {
            reason: "stop".into(),
        },
    ]
}

#[test]
fn every_command_in_every_state_makes_only_legal_transitions() {
    let mut seen = std::collections::HashSet::new();
    for from in RunState::ALL {
        for command in commands() {
            match then(&run_in(from), &command) {
                Ok((after, events)) => {
                    let to = state_of(&after);
                    assert!(!events.is_empty(), "{from} {command:?}");
                    // A started run passes through running on its way.
                    let via_running = from == RunState::Queued
                        && events.first() == Some(&RunEvent::Started)
                        && (to == RunState::Running || RunState::Running.may_become(to));
                    assert!(
                        to == from || from.may_become(to) || via_running,
                        "{from} -> {to} by {command:?}"
                    );
                    seen.insert((from, to));
                }
                Err(e) => assert!(
                    matches!(
                        e,
                        DomainError::InvalidTransition { .. } | DomainError::NotFound { .. }
                    ),
                    "{from} {command:?}: {e:?}"
                ),
            }
        }
        // Nothing leaves a terminal state.
        if from.is_terminal() {
            assert!(commands().iter().all(|c| run_in(from).decide(c).is_err()));
        }
    }
    // Every legal transition is reachable by some command.
    for from in RunState::ALL {
        for to in RunState::ALL {
            if from.may_become(to) && !(from == RunState::Queued && to == RunState::Running) {
                assert!(seen.contains(&(from, to)), "{from} -> {to} never happened");
            }
        }
    }
    assert!(seen.contains(&(RunState::Queued, RunState::Running)));
}

#[test]
fn the_policy_approves_reads_and_waits_for_an_operator_on_destructive_calls() {
    for (safe_mutate, risk, automatic) in [
        (SafeMutate::Operator, Risk::ReadOnly, true),
        (SafeMutate::Auto, Risk::SafeMutate, true),
        (SafeMutate::Operator, Risk::SafeMutate, false),
        (SafeMutate::Auto, Risk::Destructive, false),
        (SafeMutate::Operator, Risk::Destructive, false),
    ] {
        let run = given(&[RunEvent::Created(spec(safe_mutate))]);
        let (after, events) = then(&run, &request(1, "write", risk)).unwrap();
        assert_eq!(events[0], RunEvent::Started);
        let approved_by_policy = events
            .iter()
            .any(|e| matches!(e, RunEvent::ToolCallApproved { by, .. } if by == POLICY));
        assert_eq!(approved_by_policy, automatic, "{safe_mutate:?} {risk}");
        let expected = if automatic {
            RunState::Running
        } else {
            RunState::AwaitingApproval
        };
        assert_eq!(state_of(&after), expected);
    }
}

#[test]
fn a_pending_call_blocks_the_run_until_an_operator_decides() {
    let waiting = run_in(RunState::AwaitingApproval);
    for blocked in [
        request(1, "read", Risk::ReadOnly),
        RunCommand::Complete { output: "x".into() },
        RunCommand::RecordResult {
            call: call(9),
            outcome: Ok(json!(null)),
        },
    ] {
        assert!(waiting.decide(&blocked).is_err(), "{blocked:?}");
    }
    // A log line is fine while waiting.
    assert!(waiting
        .decide(&RunCommand::Log {
            level: LogLevel::Info,
            message: "waiting".into()
        })
        .is_ok());

    // Approved: the runner goes on and reports the result.
    let (approved, events) = then(
        &waiting,
        &RunCommand::Approve {
            call: call(9),
            by: "token:1/alice".into(),
            reason: "checked".into(),
        },
    )
    .unwrap();
    assert_eq!(
        events,
        [RunEvent::ToolCallApproved {
            call: call(9),
            by: "token:1/alice".into(),
            reason: "checked".into()
        }]
    );
    assert_eq!(state_of(&approved), RunState::Running);
    let (done, _) = then(
        &approved,
        &RunCommand::RecordResult {
            call: call(9),
            outcome: Err("disk busy".into()),
        },
    )
    .unwrap();
    let c = done.0.as_ref().unwrap().call(call(9)).unwrap();
    assert_eq!(c.status, CallStatus::Failed);
    // A call decided once is not decided again.
    assert!(done
        .decide(&RunCommand::Approve {
            call: call(9),
            by: "x".into(),
            reason: String::new()
        })
        .is_err());

    // Denied: the run fails, saying who denied what and why.
    let (denied, events) = then(
        &waiting,
        &RunCommand::Deny {
            call: call(9),
            by: "token:2/bob".into(),
            reason: "not in production".into(),
        },
    )
    .unwrap();
    assert_eq!(state_of(&denied), RunState::Failed);
    let RunEvent::Failed { reason } = &events[1] else {
        panic!("{events:?}")
    };
    assert!(
        reason.contains("denied by token:2/bob: not in production"),
        "{reason}"
    );
}

#[test]
fn bad_steps_are_refused_and_name_their_field() {
    let running = run_in(RunState::Running);
    let not_allowed = running.decide(&request(1, "format-disk", Risk::ReadOnly));
    assert!(matches!(not_allowed, Err(DomainError::Validation(ref e)) if e[0].field == "tool"));
    let (with_call, _) = then(&running, &request(1, "read", Risk::ReadOnly)).unwrap();
    assert!(matches!(
        with_call.decide(&request(1, "read", Risk::ReadOnly)),
        Err(DomainError::AlreadyExists { .. })
    ));
    for (command, field) in [
        (
            RunCommand::Log {
                level: LogLevel::Info,
                message: "a\0b".into(),
            },
            "message",
        ),
        (
            RunCommand::Fail {
                reason: "x".repeat(1_001),
            },
            "reason",
        ),
        (
            RunCommand::AddArtifact(Artifact {
                name: "r".into(),
                uri: "s3://b/r".into(),
                content_type: "text/plain".into(),
                sha256: "AB".repeat(32),
            }),
            "sha256",
        ),
        (
            RunCommand::AddArtifact(Artifact {
                name: " ".into(),
                uri: "s3://b/r".into(),
                content_type: "text/plain".into(),
                sha256: "ab".repeat(32),
            }),
            "name",
        ),
    ] {
        match running.decide(&command) {
            Err(DomainError::Validation(e)) => assert_eq!(e[0].field, field, "{command:?}"),
            other => panic!("{command:?}: {other:?}"),
        }
    }
    assert!(matches!(
        TaskRun::default().decide(&RunCommand::Complete {
            output: String::new()
        }),
        Err(DomainError::NotFound { .. })
    ));
}

#[test]
fn tools_and_tasks_parse_what_clients_send() {
    assert!(ToolName::parse("fs_read_file-2", "name").is_ok());
    for bad in [
        "",
        "2fast",
        "a b",
        "a/b",
        "a.b",
        "a>",
        &"a".repeat(65),
        "naïve",
    ] {
        assert!(ToolName::parse(bad, "name").is_err(), "{bad:?}");
    }
    let def = ToolDef::parse("reads a file", "READ_ONLY", json!({"type": "object"})).unwrap();
    assert_eq!(def.risk, Risk::ReadOnly);
    let Err(DomainError::Validation(e)) = ToolDef::parse("x\0", "SCARY", json!(3)) else {
        panic!()
    };
    let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["description", "risk", "schema"]);
    // Redefining the same tool changes nothing; a new risk is a new version.
    let tool = Tool::default().evolve(&ToolEvent::Defined(def.clone()));
    assert!(tool
        .decide(&ToolCommand::Define(def.clone()))
        .unwrap()
        .is_empty());
    let riskier = ToolDef {
        risk: Risk::Destructive,
        ..def
    };
    assert_eq!(tool.decide(&ToolCommand::Define(riskier)).unwrap().len(), 1);

    let task = TaskDef::parse(
        " Rotate keys ",
        "do it",
        &["read".into(), "read".into()],
        Some("operator"),
        Some(2.5),
    )
    .unwrap();
    assert_eq!(task.title, "Rotate keys");
    assert_eq!(
        task.allowed_tools,
        [super::ToolName::parse("read", "t").unwrap()]
    );
    assert_eq!(task.budget, Some(Usd::from_nanos(2_500_000_000)));
    let Err(DomainError::Validation(e)) =
        TaskDef::parse(" ", "p", &["bad tool".into()], Some("maybe"), Some(-1.0))
    else {
        panic!()
    };
    let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "title",
            "allowedTools[0]",
            "safeMutateApproval",
            "budgetUsd"
        ]
    );
    for bad in [f64::NAN, f64::INFINITY, -0.01, 2e9] {
        assert!(Usd::parse(bad, "b").is_err(), "{bad}");
    }
    assert_eq!(Usd::parse(0.000000001, "b").unwrap().nanos(), 1);
}

#[test]
fn a_run_past_its_budget_waits_for_an_operator_and_is_not_blocked_again() {
    let running = run_in(RunState::Running);
    let (blocked, _) = then(
        &running,
        &RunCommand::BlockForBudget {
            reason: "task budget passed".into(),
        },
    )
    .unwrap();
    assert_eq!(state_of(&blocked), RunState::AwaitingApproval);
    let llm = commands()
        .into_iter()
        .find(|c| matches!(c, RunCommand::RecordLlmCall(_)))
        .unwrap();
    for refused in [
        llm.clone(),
        request(1, "read", Risk::ReadOnly),
        RunCommand::Complete {
            output: String::new(),
        },
    ] {
        assert!(blocked.decide(&refused).is_err(), "{refused:?}");
    }
    let approve = RunCommand::ApproveBudget {
        by: "token:1/alice".into(),
        reason: "worth it".into(),
        waive: true,
    };
    assert!(running.decide(&approve).is_err(), "nothing to approve");
    let (approved, _) = then(&blocked, &approve).unwrap();
    assert_eq!(state_of(&approved), RunState::Running);
    let (after, _) = then(&approved, &llm).unwrap();
    // Waived: the run goes on past its budget without another stop.
    let again = RunCommand::BlockForBudget {
        reason: "again".into(),
    };
    assert!(after.decide(&again).is_err());
    // Resumed because a budget was raised: the next crossing stops it again.
    let raised = RunCommand::ApproveBudget {
        by: "token:1/alice".into(),
        reason: "the task budget was raised".into(),
        waive: false,
    };
    let (resumed, _) = then(&blocked, &raised).unwrap();
    let (after, _) = then(&resumed, &llm).unwrap();
    assert!(after.decide(&again).is_ok());
}
