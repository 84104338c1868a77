//! The checks made on the whole run once its steps passed: time budgets (each agent's
//! registration, and each step's duration against a baseline or its default budget),
//! `coverage: all`, the clean shutdown of the agents (`shutdown:`) and the log policy (every
//! container's log, by default at `errors`). A check that fails is reported as one more step, numbered after the last, so every reader shows it as
//! it shows a failed step; a check that passes emits nothing (the transcript stays as it
//! was).

use std::time::Duration;

use super::event::{Emitter, Outcome, RunEvent, StepFailure};
use crate::budget::{self, BudgetOptions, Defaults, Over, RunTimes};
use crate::coverage::Coverage;
use crate::logpolicy::{self, LogPolicy, Offence};
use crate::runtime::logs::LogLine;
use crate::runtime::shutdown::AgentStop;
use crate::scenario::{Scenario, SourcePos, StepKind};

/// Lines of one offending log event shown in a failure.
const SHOWN: usize = 12;

/// Where a scenario without `log-policy:` is pointed at.
const TOP: SourcePos = SourcePos {
    line: 1,
    column: 1,
    width: 1,
};

/// A run-wide check that did not hold.
struct Failed {
    /// What the check is, as a step's action (`coverage: all`).
    action: String,
    /// Where the scenario asks for it.
    pos: SourcePos,
    /// The caret's label there.
    label: &'static str,
    /// What did not hold.
    problems: Vec<String>,
    /// What to do about it.
    help: String,
}

/// What the run-wide checks look at besides the scenario.
pub(crate) struct RunFacts<'a> {
    /// The operations the run exercised.
    pub coverage: &'a Coverage,
    /// Every container's log lines.
    pub logs: &'a [LogLine],
    /// The suite's log allow-list.
    pub suite_allow: &'a [String],
    /// What the run's steps and agents took.
    pub times: &'a RunTimes,
    /// The baseline and growth rule.
    pub budgets: &'a BudgetOptions,
    /// How each agent stopped at the end (`None`: not stopped, `shutdown: kill` or a kept
    /// stack).
    pub stops: Option<&'a [AgentStop]>,
}

/// Run the run-wide checks of `scenario`; the first that fails, reported on `events`.
pub(crate) fn after_steps(
    scenario: &Scenario,
    facts: &RunFacts<'_>,
    events: &Emitter<'_>,
) -> Option<StepFailure> {
    let failed = time_budgets(scenario, facts.times, facts.budgets)
        .or_else(|| coverage_all(scenario, facts.coverage))
        .or_else(|| clean_shutdown(scenario, facts.stops?, facts.logs, facts.suite_allow))
        .or_else(|| log_policy(scenario, facts.logs, facts.stops, facts.suite_allow))?;
    Some(report(scenario, failed, events))
}

/// The log policy: the scenario's, with the built-in and the suite's allow-lists added. What
/// an agent logged after its stop signal is the clean-shutdown check's to judge (it knows what
/// stopping may log), not this one's.
fn log_policy(
    scenario: &Scenario,
    logs: &[LogLine],
    stops: Option<&[AgentStop]>,
    suite_allow: &[String],
) -> Option<Failed> {
    let mut policy: LogPolicy = scenario.checks.log_policy.clone();
    policy
        .allow
        .extend(logpolicy::parse_allow_list(logpolicy::BUILT_IN));
    policy.allow.extend(suite_allow.iter().cloned());
    let stopping: std::collections::BTreeSet<(&str, &str)> = stops
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s.log.iter().map(|(_, l)| (s.instance.as_str(), l.as_str())))
        .filter(|(_, l)| l.trim().len() > 1)
        .collect();
    let found = policy.check_levels(
        logs.iter()
            .filter(|l| !stopping.contains(&(l.container.as_str(), l.text.as_str())))
            .map(|l| (l.container.as_str(), l.level, l.text.as_str())),
    );
    if found.is_empty() {
        return None;
    }
    let (pos, label) = match scenario.checks.log_policy_at {
        Some(pos) => (pos, "this log policy"),
        None => (TOP, "the default log policy (`errors`) applies here"),
    };
    Some(Failed {
        action: "log policy".into(),
        pos,
        label,
        problems: found.iter().map(offence).collect(),
        help: "fix what logged it; if it is harmless, allow it by a substring of one of its \
               lines, as each item says, with a comment saying why"
            .into(),
    })
}

/// What an agent may log while it stops, besides what the log policy allows: its connections
/// ending (twisted's frameless Failures for a lost or closed connection).
const STOPPING_ALLOW: &[&str] = &[
    "Traceback (failure with no frames): <class 'twisted.internet.error.ConnectionLost'>",
    "Traceback (failure with no frames): <class 'twisted.internet.error.ConnectionDone'>",
];

/// The agents' stop at the end: each exited with 0 within the budget, and logged nothing the
/// log policy refuses while stopping (a traceback).
fn clean_shutdown(
    scenario: &Scenario,
    stops: &[AgentStop],
    logs: &[LogLine],
    suite_allow: &[String],
) -> Option<Failed> {
    let shutdown = &scenario.checks.shutdown;
    let mut policy: LogPolicy = scenario.checks.log_policy.clone();
    policy
        .allow
        .extend(logpolicy::parse_allow_list(logpolicy::BUILT_IN));
    policy.allow.extend(suite_allow.iter().cloned());
    // Stopping ends the agent's connections: twisted reports a connection lost or closed while
    // the reactor stops as a Failure without frames, which is the stop itself, not a crash (an
    // exception with frames, or an exit code other than 0, still fails).
    policy
        .allow
        .extend(STOPPING_ALLOW.iter().map(|s| s.to_string()));
    let mut problems = Vec::new();
    for stop in stops {
        let mut text = match stop.problem(shutdown.within) {
            Some(p) => p,
            None => {
                let found = policy.check_levels(
                    stop.log
                        .iter()
                        .map(|(level, l)| (stop.instance.as_str(), *level, l.as_str())),
                );
                let Some(o) = found.first() else { continue };
                format!(
                    "agent {} logged {} while stopping ({} after {})",
                    stop.instance,
                    o.what,
                    crate::wait::fmt_duration(stop.took),
                    stop.signal
                )
            }
        };
        let tail = &stop.log[stop.log.len().saturating_sub(SHOWN)..];
        if tail.is_empty() {
            let before: Vec<&str> = logs
                .iter()
                .filter(|l| l.container == stop.instance)
                .map(|l| l.text.as_str())
                .collect();
            text.push_str(&format!(
                "\n  it logged nothing after {}; its last log lines before:",
                stop.signal
            ));
            for line in &before[before.len().saturating_sub(SHOWN)..] {
                text.push_str(&format!("\n  {line}"));
            }
        } else {
            text.push_str(&format!("\n  its last log lines after {}:", stop.signal));
            for (_, line) in tail {
                text.push_str(&format!("\n  {line}"));
            }
        }
        problems.push(text);
    }
    if problems.is_empty() {
        return None;
    }
    let (pos, label) = match shutdown.at {
        Some(pos) => (pos, "this shutdown"),
        None => (
            TOP,
            "the default shutdown (`graceful`, within 10s) applies here",
        ),
    };
    Some(Failed {
        action: "clean shutdown".into(),
        pos,
        label,
        problems,
        help: "an agent must exit by itself, with 0 and no traceback, when it is stopped as \
               `docker stop` stops it; fix its shutdown, give it the time it needs \
               (`shutdown: {within: 30s}`), or opt out with `shutdown: kill`"
            .into(),
    })
}

/// One offence, its lines and how to allow it.
fn offence(o: &Offence) -> String {
    let mut text = format!("{} logged {}:", o.container, o.what);
    for line in o.lines.iter().take(SHOWN) {
        text.push_str(&format!("\n  {line}"));
    }
    if o.lines.len() > SHOWN {
        text.push_str(&format!("\n  ... ({} more lines)", o.lines.len() - SHOWN));
    }
    let hint = o.allow_hint();
    text.push_str(&format!(
        "\nto allow it: `log-policy: {{allow: [{hint:?}]}}` in the scenario, or the line \
         {hint:?} in a `--log-allow` file"
    ));
    text
}

/// `failed` as the failure of one more step, emitted like a step's.
fn report(scenario: &Scenario, failed: Failed, events: &Emitter<'_>) -> StepFailure {
    let step = scenario.steps.len() + 1;
    let line = failed.pos.line;
    events.emit(RunEvent::StepStarted {
        step,
        line,
        action: failed.action.clone(),
    });
    let message = format!("step {step} (line {line}): {} failed", failed.action);
    let failure = StepFailure {
        step,
        line,
        action: failed.action.clone(),
        problems: failed.problems.clone(),
        last_reply: None,
        log_tail: Vec::new(),
        container: None,
        at: Some(scenario.error_at(failed.pos, message, failed.label, Some(failed.help))),
    };
    events.emit(RunEvent::StepFinished {
        step,
        line,
        action: failed.action,
        duration: Duration::ZERO,
        passed: false,
        outcome: Outcome::Error(failed.problems.join("\n")),
        failure: Some(failure.clone()),
        redact: Vec::new(),
    });
    failure
}

/// `coverage: all`: the operations of the run's agents that nothing exercised.
fn coverage_all(scenario: &Scenario, coverage: &Coverage) -> Option<Failed> {
    let pos = scenario.checks.coverage_all?;
    let missing = coverage.missing();
    if missing.is_empty() {
        return None;
    }
    Some(Failed {
        action: "coverage: all".into(),
        pos,
        label: "every operation must be exercised",
        problems: missing
            .iter()
            .map(|op| format!("operation {op} was never started, stopped, aborted or refused"))
            .collect(),
        help: "add a step that starts (or stops, aborts, or starts with bad params) each \
               operation named, or remove `coverage: all`"
            .into(),
    })
}

/// A step that is one call the agent answers at once (no waiting in it): `start`, `status`,
/// `stop`, `abort`, `call`, and `api` without a `timeout`.
fn single_call(kind: &StepKind) -> bool {
    match kind {
        StepKind::Op { action, .. } => *action != crate::scenario::OpAction::Wait,
        StepKind::Api { timeout, .. } => timeout.is_none(),
        StepKind::Call(_) => true,
        _ => false,
    }
}

/// Every registration and step over its budget: an agent's `ready-within` (else the
/// stack's), else the baseline's registration by the growth rule, else the default derived
/// from crossbar's boot; a step without `within` (that one is checked as the step ends)
/// against the same step of the baseline, else, for a single call, the default derived from
/// the run's fastest call.
pub(crate) fn over_budget(
    scenario: &Scenario,
    times: &RunTimes,
    options: &BudgetOptions,
) -> Vec<(Over, SourcePos)> {
    let base = options
        .baseline
        .as_ref()
        .and_then(|b| b.get(&scenario.name));
    let rule = &options.rule;
    let mut out = Vec::new();
    for (agent, &took) in &times.registration {
        let entry = scenario.agent_sources.get(agent).map_or(TOP, |a| a.entry);
        let was = base.and_then(|b| b.registration.get(agent)).copied();
        let own = scenario.checks.ready_budget(agent);
        let (budget, why, pos) = match (own, was) {
            (Some(b), _) => (
                b.limit.as_secs_f64(),
                format!("`ready-within: {}`", crate::wait::fmt_duration(b.limit)),
                b.at,
            ),
            (None, Some(w)) => (rule.budget(w), budget::baseline_why(w, rule), entry),
            (None, None) => {
                let (budget, why) = Defaults::registration(times.crossbar_boot);
                (budget, why, entry)
            }
        };
        if took > budget {
            let over = Over {
                what: format!("agent {agent}'s registration"),
                step: None,
                agent: Some(agent.clone()),
                took,
                budget,
                why,
                was: was.filter(|_| own.is_none()),
            };
            out.push((over, pos));
        }
    }
    let fastest_call = times
        .steps
        .iter()
        .filter(|t| t.passed)
        .filter(|t| {
            scenario
                .steps
                .get(t.step.wrapping_sub(1))
                .is_some_and(|s| single_call(&s.kind))
        })
        .map(|t| t.duration)
        .reduce(f64::min);
    for t in times.steps.iter().filter(|t| t.passed) {
        let Some(step) = scenario.steps.get(t.step.wrapping_sub(1)) else {
            continue;
        };
        if step.within.is_some() {
            continue;
        }
        let was = base.and_then(|b| {
            b.steps
                .iter()
                .find(|s| s.step == t.step && s.action == t.action && s.passed)
        });
        let (budget, why) = match (was, fastest_call) {
            (Some(was), _) => (
                rule.budget(was.duration),
                budget::baseline_why(was.duration, rule),
            ),
            (None, Some(fastest)) if single_call(&step.kind) => Defaults::call(fastest),
            _ => continue,
        };
        if t.duration > budget {
            let over = Over {
                what: format!("step {} ({})", t.step, t.action),
                step: Some(t.step),
                agent: None,
                took: t.duration,
                budget,
                why,
                was: was.map(|w| w.duration),
            };
            out.push((over, step.target));
        }
    }
    out
}

/// The time budgets of the run, as one check.
fn time_budgets(scenario: &Scenario, times: &RunTimes, options: &BudgetOptions) -> Option<Failed> {
    let over = over_budget(scenario, times, options);
    let (_, pos) = over.first()?;
    let label = match &over[0].0.agent {
        Some(_) => "this agent's registration took too long",
        None => "this step took too long",
    };
    Some(Failed {
        action: "time budgets".into(),
        pos: *pos,
        label,
        problems: over.iter().map(|(o, _)| o.to_string()).collect(),
        help: "find what made it slower (the run's timeline has every step, call and log line \
               with its time); if the new time is right, give the budget it needs: \
               `ready-within` on the agent (or the stack), `within` on the step, or a newer \
               baseline"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::{clean_shutdown, log_policy};
    use crate::levels::Level;
    use crate::runtime::shutdown::{AgentStop, StopOutcome};
    use crate::scenario::Scenario;

    /// A scenario of one aggregator agent.
    fn aggregator_scenario() -> Scenario {
        let text = "stack:\n  agents:\n    - instance-id: aggregator\n      \
                    agent-class: AggregatorAgent\n      image: simonsobs/ocs:latest\n\
                    steps:\n  - api: aggregator\n";
        Scenario::parse_all(text, Path::new("s.yaml"), &|_| None).unwrap()
    }

    /// A line the aggregator logged (no level: checked as plain output).
    fn aggregator_logged(text: &str) -> crate::runtime::logs::LogLine {
        crate::runtime::logs::LogLine {
            seq: 0,
            container: "aggregator".into(),
            received: std::time::SystemTime::UNIX_EPOCH,
            stream: crate::runtime::logs::Stream::Stdout,
            text: text.into(),
            level: None,
            namespace: None,
        }
    }

    fn stop(log: &[&str]) -> AgentStop {
        AgentStop {
            instance: "aggregator".into(),
            signal: "SIGTERM".into(),
            outcome: StopOutcome::Exited { code: 0 },
            took: Duration::from_millis(3200),
            log: log
                .iter()
                .map(|l| (Some(Level::Info), l.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_connection_lost_while_stopping_is_the_stop_a_traceback_is_not() {
        let scenario = aggregator_scenario();
        // what ocs's aggregator logged in a CI run when its connection dropped as it stopped
        let lost = stop(&[
            "2026-12-07T07:07:12+0000 _connectionLost: [Failure instance: Traceback (failure with \
             no frames): <class 'twisted.internet.error.ConnectionLost'>: Connection to the \
             other side was lost in a non-clean fashion: Connection lost.",
            "]",
            "2026-12-07T07:07:12+0000 Main loop terminated.",
        ]);
        assert!(clean_shutdown(&scenario, &[lost], &[], &[]).is_none());
        let crashed = stop(&[
            "2026-12-07T07:07:12+0000 Traceback (most recent call last):",
            "  File \"agent.py\", line 3, in stop",
            "ValueError: boom",
        ]);
        assert!(clean_shutdown(&scenario, &[crashed], &[], &[]).is_some());
    }

    #[test]
    fn the_whole_log_policy_leaves_the_stop_to_the_shutdown_check() {
        let scenario = aggregator_scenario();
        let failure = "2026-12-07T07:07:12+0000 _connectionLost: [Failure instance: Traceback \
                       (failure with no frames): <class 'twisted.internet.error.ConnectionLost'>: \
                       Connection lost.";
        let logs = vec![
            aggregator_logged("2026-12-07T07:07:10+0000 stopping reactor"),
            aggregator_logged(failure),
            aggregator_logged("]"),
        ];
        // logged during the run, the frameless failure counts
        assert!(log_policy(&scenario, &logs, None, &[]).is_some());
        // logged after the stop signal, it is the shutdown check's
        let stops = [stop(&[failure, "]"])];
        assert!(log_policy(&scenario, &logs, Some(&stops), &[]).is_none());
    }

    #[test]
    fn an_agent_reconnecting_while_crossbar_mounts_its_paths_is_allowed() {
        let scenario = aggregator_scenario();
        // what ocs's aggregator logged in a round of bench/repeat.sh on 8 December, after a
        // crossbar restart: its WebSocket upgrade answered 404 before crossbar mounted `/ws`
        let logs = vec![
            aggregator_logged(
                "2026-12-08T01:44:40+0000 dropping connection to peer tcp4:192.168.48.2:8001 \
                  with abort=True: WebSocket connection upgrade failed [404]: Not Found",
            ),
            aggregator_logged(
                "2026-12-08T01:44:40+0000 _connectionLost: [Failure instance: Traceback \
                  (failure with no frames): <class 'twisted.internet.error.ConnectionAborted'>: \
                  Connection was aborted locally using ITCPTransport.abortConnection.",
            ),
            aggregator_logged("]"),
        ];
        assert!(log_policy(&scenario, &logs, None, &[]).is_none());
    }
}
