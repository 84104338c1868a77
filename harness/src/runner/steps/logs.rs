//! `logs: <container>`: check a container's log lines, in the window the step names (since
//! the previous step began, or the whole run), waiting for expected lines to arrive while the
//! container runs.

use super::{Checked, ExitWatch, StackOps};
use crate::runner::event::{Emitter, Outcome, RunEvent};
use crate::scenario::{LogWindow, LogsCheck, Mismatch};
use crate::wait::{poll_until, Backoff, Probe};

/// Run a `logs` step; `previous_mark` is the log position when the previous step began.
pub(super) async fn run(
    stack: &impl StackOps,
    step: usize,
    check: &LogsCheck,
    previous_mark: usize,
    events: &Emitter<'_>,
) -> Checked {
    let (since, window) = match check.window {
        LogWindow::Step => (previous_mark, "step"),
        LogWindow::Run => (0, "run"),
    };
    let container = check.container.as_str();
    let condition = format!("{container}'s log to satisfy the step's checks");
    // Lines stop coming when the container has exited: the wait ends then, not at its timeout.
    let watch = ExitWatch::new(stack, container);
    let waited = poll_until(condition, check.timeout, Backoff::default(), || async {
        match look(check, &stack.log_lines(container, since)) {
            Probe::Pending(seen) => match watch.gone().await {
                Some(reason) => Probe::Failed(format!("{reason}; {seen}")),
                None => Probe::Pending(seen),
            },
            other => other,
        }
    })
    .await;
    match waited {
        Ok(lines) => {
            for text in &lines {
                events.emit(RunEvent::LogLineSelected {
                    step,
                    container: container.to_string(),
                    text: text.clone(),
                });
            }
            let outcome = Outcome::Logs {
                window: window.into(),
                lines,
            };
            Checked::plain(outcome, Vec::new(), container)
        }
        Err(e) => Checked::plain(
            Outcome::Error(e.to_string()),
            vec![e.to_string()],
            container,
        ),
    }
}

/// One look at the window: the selected lines when every check holds; a failure at once when
/// an `absent` line is there (more lines cannot remove it).
fn look(check: &LogsCheck, lines: &[crate::runtime::logs::LogLine]) -> Probe<Vec<String>> {
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let problems = check.check(&texts);
    let joined = |ps: &[Mismatch]| {
        ps.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if problems.is_empty() {
        Probe::Ready(
            check
                .selected(&texts)
                .into_iter()
                .map(str::to_string)
                .collect(),
        )
    } else if problems.iter().any(|p| p.path == "absent") {
        Probe::Failed(joined(&problems))
    } else {
        Probe::Pending(joined(&problems))
    }
}
