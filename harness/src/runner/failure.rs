//! How a step's result is judged: what a step handler returns ([`Checked`]: its outcome, its
//! problems, the container it was about), and the one place that turns problems into a
//! [`StepFailure`] with the last reply and the container's last log lines.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::event::Outcome;
use super::stack_ops::StackOps;
use crate::scenario::Step;

/// Log lines of the step's container shown with a failure.
const LOG_TAIL: usize = 25;

/// A step that did not do what the scenario expected.
#[derive(Debug, Clone, Serialize)]
pub struct StepFailure {
    /// 1-based step number.
    pub step: usize,
    /// Line of the step in the scenario file.
    pub line: usize,
    /// What the step did.
    pub action: String,
    /// What went wrong, one item per problem (expectation diffs, errors, timeouts).
    pub problems: Vec<String>,
    /// The last reply seen, normalised.
    pub last_reply: Option<Value>,
    /// The last log lines of the container the step was about.
    pub log_tail: Vec<String>,
    /// The container the step was about.
    pub container: Option<String>,
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "step {} (line {}): {} failed",
            self.step, self.line, self.action
        )?;
        for p in &self.problems {
            for (i, line) in p.lines().enumerate() {
                if i == 0 {
                    writeln!(f, "  - {line}")?;
                } else {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        if let Some(r) = &self.last_reply {
            writeln!(f, "  last reply:")?;
            let text = serde_saphyr::to_string(r).unwrap_or_else(|_| r.to_string());
            for line in text.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        if let Some(c) = &self.container {
            if self.log_tail.is_empty() {
                writeln!(f, "  {c}: no log output")?;
            } else {
                writeln!(f, "  last log lines of {c}:")?;
                for line in &self.log_tail {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        Ok(())
    }
}

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
        last_reply: checked
            .show_reply
            .then(|| crate::transcript::outcome(&checked.outcome)),
        log_tail: stack.log_tail(&checked.about, LOG_TAIL),
        container: Some(checked.about.clone()),
    })
}
