//! `fetch: <container>`: copy a path out of a container (running or exited) into the run
//! directory and check what came out, fetching again until the checks hold or `timeout`
//! passes (an agent may still be writing) or the container has exited.

use std::time::Duration;

use super::{Checked, ExitWatch, StackOps};
use crate::runner::event::Outcome;
use crate::scenario::{FetchStep, Mismatch};
use crate::wait::{poll_until, Backoff, Probe};

/// Fetching is heavier than a status call: poll it gently.
const FETCH_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(1),
};

/// Run a `fetch` step.
pub(super) async fn run(stack: &impl StackOps, f: &FetchStep) -> Checked {
    let what = format!("`{}` in the container of {}", f.path, f.container);
    let failed = |e: String| Checked::plain(Outcome::Error(e.clone()), vec![e], &f.container);
    if f.timeout.is_zero() {
        return match look(stack, f, &what).await {
            Ok((outcome, problems)) => {
                let texts = problems.iter().map(|m| m.to_string()).collect();
                Checked::plain(outcome, texts, &f.container)
            }
            Err(e) => failed(e),
        };
    }
    let condition = format!("{what} to meet the step's `expect`");
    let last = std::sync::Mutex::new(None);
    // An exited container writes nothing more: a fetch that does not hold by then never will.
    let watch = ExitWatch::new(stack, &f.container);
    let waited = poll_until(condition, f.timeout, FETCH_BACKOFF, || async {
        match look(stack, f, &what).await {
            Err(e) => Probe::Failed(e),
            Ok((outcome, problems)) => {
                let pending = (!problems.is_empty()).then(|| joined(&problems));
                *last.lock().expect("not poisoned") = Some(outcome);
                match pending {
                    None => Probe::Ready(()),
                    Some(seen) => match watch.gone().await {
                        Some(reason) => Probe::Failed(format!("{reason}; {seen}")),
                        None => Probe::Pending(seen),
                    },
                }
            }
        }
    })
    .await;
    let last = last.into_inner().expect("not poisoned");
    match (waited, last) {
        (Ok(()), Some(outcome)) => Checked::plain(outcome, Vec::new(), &f.container),
        (Err(e), Some(outcome)) => Checked::plain(outcome, vec![e.to_string()], &f.container),
        (r, None) => failed(
            r.err()
                .map_or("nothing was fetched".into(), |e| e.to_string()),
        ),
    }
}

/// One fetch and its checks: the outcome and what did not hold.
async fn look(
    stack: &impl StackOps,
    f: &FetchStep,
    what: &str,
) -> Result<(Outcome, Vec<Mismatch>), String> {
    let got = stack
        .fetch(&f.container, &f.path, &f.into)
        .await
        .map_err(|e| crate::runtime::display_chain(&e))?;
    let problems = f.expect.check(got.as_ref().map(|(_, x)| x), what);
    Ok((outcome(f, &got), problems))
}

/// What the step fetched, as its outcome.
fn outcome(f: &FetchStep, got: &Option<(std::path::PathBuf, crate::scenario::Fetched)>) -> Outcome {
    Outcome::Fetched {
        path: f.path.clone(),
        into: got.as_ref().map(|(dir, _)| dir.display().to_string()),
        files: got
            .as_ref()
            .map(|(_, x)| x.files.clone())
            .unwrap_or_default(),
    }
}

fn joined(problems: &[Mismatch]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
