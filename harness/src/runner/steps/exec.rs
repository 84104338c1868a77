//! `exec: {in: <container> | image: <image>, cmd: ..}`: run a command in a container of the
//! stack (or in a new one from an image) and check its exit code, output and duration.

use super::{texts, Checked, StackOps};
use crate::runner::event::Outcome;
use crate::runtime::exec::Command;
use crate::scenario::{ExecResult, ExecStep, ExecTarget};

/// Run the `exec` step number `n`.
pub(super) async fn run(
    stack: &impl StackOps,
    n: usize,
    step: &ExecStep,
    secrets: &crate::runner::redact::Secrets,
) -> Checked {
    let command = Command {
        hidden: secrets.values().to_vec(),
        cmd: step.cmd.clone(),
        user: step.user.clone(),
        env: step.env.clone(),
        timeout: step.timeout,
        label: format!("step-{n}"),
    };
    let (ran, about) = match &step.target {
        ExecTarget::In(container) => (stack.exec(container, &command).await, container.clone()),
        ExecTarget::Image { image, .. } => (
            stack.exec_in_image(image, &command).await,
            format!("exec-{}", command.label),
        ),
    };
    match ran {
        Ok(out) => {
            let result = ExecResult {
                exit: out.exit,
                stdout: out.stdout,
                stderr: out.stderr,
                duration: out.duration,
            };
            let problems = texts(&step.expect.check(&result));
            let outcome = Outcome::Exec {
                exit: result.exit,
                stdout: result.stdout,
                stderr: result.stderr,
                duration: result.duration,
            };
            Checked::reply(outcome, problems, &about)
        }
        Err(e) => {
            let text = crate::runtime::display_chain(&e);
            Checked::plain(Outcome::Error(text.clone()), vec![text], &about)
        }
    }
}
