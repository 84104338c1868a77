//! `exits: <container>`: wait until a container exits, and check its exit code.

use std::time::Duration;

use super::{Checked, StackOps};
use crate::runner::event::Outcome;
use crate::wait::{poll_until, Backoff, Probe};

/// Run an `exits` step.
pub(super) async fn run(
    stack: &impl StackOps,
    container: &str,
    code: Option<i64>,
    timeout: Duration,
) -> Checked {
    let waited = poll_until(
        format!("the container of {container} to exit"),
        timeout,
        Backoff::default(),
        || async {
            match stack.container_state(container).await {
                Ok((false, code)) => Probe::Ready(code.unwrap_or(-1)),
                Ok((true, _)) => Probe::Pending("still running".into()),
                Err(e) => Probe::Failed(crate::runtime::display_chain(&e)),
            }
        },
    )
    .await;
    match waited {
        Ok(got) => {
            let problems = code
                .filter(|want| *want != got)
                .map(|want| vec![format!("expected exit code {want}, got {got}")])
                .unwrap_or_default();
            Checked::plain(Outcome::Exited { code: got }, problems, container)
        }
        Err(e) => Checked::plain(
            Outcome::Error(e.to_string()),
            vec![e.to_string()],
            container,
        ),
    }
}
