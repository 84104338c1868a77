//! How a step's result is judged: what a step handler returns ([`Checked`]: its outcome, its
//! problems, the container it was about), and the one place that turns problems into a
//! [`StepFailure`] with the last reply, the container's last log lines and where in the file
//! the failed expectation is written.

use super::event::{Outcome, StepFailure};
use super::stack_ops::StackOps;
use crate::scenario::{Scenario, ScenarioError, SourcePos, Step};

/// Log lines of the step's container shown with a failure.
const LOG_TAIL: usize = 25;

/// What a step handler found: the step's outcome and what did not match.
#[derive(Debug)]
pub(crate) struct Checked {
    /// What the step did.
    pub outcome: Outcome,
    /// One item per problem; empty when the step did what was expected.
    pub problems: Vec<String>,
    /// The container the step was about (its log tail goes with a failure).
    pub about: String,
    /// Whether a failure shows the outcome as the last reply.
    pub show_reply: bool,
    /// The step's `within` when it took longer: a failure points there, not at `expect:`.
    pub over_budget: Option<SourcePos>,
}

impl Checked {
    /// An outcome, judged by `problems`, shown as the last reply when it fails.
    pub fn reply(outcome: Outcome, problems: Vec<String>, about: &str) -> Self {
        Self {
            outcome,
            problems,
            about: about.to_string(),
            show_reply: true,
            over_budget: None,
        }
    }

    /// An outcome that is not a reply (a fault, an exit, a log window, an error).
    pub fn plain(outcome: Outcome, problems: Vec<String>, about: &str) -> Self {
        Self {
            show_reply: false,
            ..Self::reply(outcome, problems, about)
        }
    }
}

/// The failure of `step` (of `scenario`) when `checked` has problems: the one place failures
/// are built.
pub(crate) fn failure(
    scenario: &Scenario,
    step: &Step,
    action: &str,
    checked: &Checked,
    stack: &impl StackOps,
) -> Option<StepFailure> {
    if checked.problems.is_empty() {
        return None;
    }
    Some(StepFailure {
        step: step.index,
        line: step.line,
        action: action.to_string(),
        problems: checked.problems.clone(),
        last_reply: checked.show_reply.then(|| checked.outcome.normalised()),
        log_tail: stack.log_tail(&checked.about, LOG_TAIL),
        container: Some(checked.about.clone()),
        at: Some(match checked.over_budget {
            Some(pos) => scenario.error_at(
                pos,
                format!("step {} (line {}): {action} failed", step.index, step.line),
                "this budget was exceeded",
                Some(
                    "make the step faster, or give it the time it needs (a longer `within`)".into(),
                ),
            ),
            None => located(scenario, step, action),
        }),
    })
}

/// The step's `expect:` in the file (its target when it has none), rendered like a parse
/// error, headed by the line a failure has always started with.
pub(crate) fn located(scenario: &Scenario, step: &Step, action: &str) -> ScenarioError {
    let (pos, label) = match step.expect {
        Some(pos) => (pos, "this expectation did not hold"),
        None => (step.target, "this step failed"),
    };
    let message = format!("step {} (line {}): {action} failed", step.index, step.line);
    scenario.error_at(pos, message, label, None)
}
