//! How a step's result is judged: what a step handler returns ([`Checked`]: its outcome, its
//! problems, the container it was about), and the one place that turns problems into a
//! [`StepFailure`] with the last reply and the container's last log lines.

use super::event::{Outcome, StepFailure};
use super::stack_ops::StackOps;
use crate::scenario::Step;

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
}

impl Checked {
    /// An outcome, judged by `problems`, shown as the last reply when it fails.
    pub fn reply(outcome: Outcome, problems: Vec<String>, about: &str) -> Self {
        Self {
            outcome,
            problems,
            about: about.to_string(),
            show_reply: true,
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

/// The failure of `step` when `checked` has problems: the one place failures are built.
pub(crate) fn failure(
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
    })
}
