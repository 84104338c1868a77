//! The checks made on the whole run once its steps passed: `coverage: all` and the log
//! policy (every container's log, by default at `errors`). A check that fails is reported as one more step, numbered after the last, so every reader shows it as
//! it shows a failed step; a check that passes emits nothing (the transcript stays as it
//! was).

use std::time::Duration;

use super::event::{Emitter, Outcome, RunEvent, StepFailure};
use crate::coverage::Coverage;
use crate::logpolicy::{self, LogPolicy, Offence};
use crate::runtime::logs::LogLine;
use crate::scenario::{Scenario, SourcePos};

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
}

/// Run the run-wide checks of `scenario`; the first that fails, reported on `events`.
pub(crate) fn after_steps(
    scenario: &Scenario,
    facts: &RunFacts<'_>,
    events: &Emitter<'_>,
) -> Option<StepFailure> {
    let failed = coverage_all(scenario, facts.coverage)
        .or_else(|| log_policy(scenario, facts.logs, facts.suite_allow))?;
    Some(report(scenario, failed, events))
}

/// The log policy: the scenario's, with the built-in and the suite's allow-lists added.
fn log_policy(scenario: &Scenario, logs: &[LogLine], suite_allow: &[String]) -> Option<Failed> {
    let mut policy: LogPolicy = scenario.checks.log_policy.clone();
    policy
        .allow
        .extend(logpolicy::parse_allow_list(logpolicy::BUILT_IN));
    policy.allow.extend(suite_allow.iter().cloned());
    let found = policy.check(logs.iter().map(|l| (l.container.as_str(), l.text.as_str())));
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
