//! `feed: {agent, feed, within}`: check what the agent published on the feed, as the run's
//! feed tap printed it, waiting up to `within` for expected messages to arrive. A message
//! already wrong (a field missing or of the wrong type, a timestamp going back), or an agent
//! whose container has exited, fails at once.

use std::sync::Mutex;

use serde_json::Value;

use super::{texts, Checked, ExitWatch, StackOps};
use crate::runner::event::Outcome;
use crate::runtime::tap::TAP;
use crate::scenario::{FeedCheck, FeedMessage, LogWindow};
use crate::wait::{poll_until, Backoff, Probe};

/// Run a `feed` step; `previous_mark` is the log position when the previous step began.
pub(super) async fn run(stack: &impl StackOps, check: &FeedCheck, previous_mark: usize) -> Checked {
    let since = match check.window {
        LogWindow::Step => previous_mark,
        LogWindow::Run => 0,
    };
    let name = format!("{}.{}", check.agent, check.feed);
    let seen = Mutex::new(Vec::new());
    let condition = format!("feed {name} to satisfy the step's checks");
    // An agent whose container has exited publishes nothing more: the wait ends then.
    let watch = ExitWatch::new(stack, &check.agent);
    let waited = poll_until(condition, check.within, Backoff::default(), || async {
        let messages = messages(&stack.log_lines(TAP, since), check);
        let verdict = check.check(&messages);
        let probe = if !verdict.fail.is_empty() {
            Probe::Failed(texts(&verdict.fail).join("; "))
        } else if verdict.holds() {
            Probe::Ready(())
        } else {
            Probe::Pending(format!(
                "{} message(s) so far; {}",
                messages.len(),
                texts(&verdict.wait).join("; ")
            ))
        };
        *seen.lock().expect("feed lock") = messages;
        match probe {
            Probe::Pending(so_far) => match watch.gone().await {
                Some(reason) => Probe::Failed(format!("{reason}; {so_far}")),
                None => Probe::Pending(so_far),
            },
            other => other,
        }
    })
    .await;
    let messages = seen.into_inner().expect("feed lock");
    let (blocks, fields) = FeedCheck::shape(&messages);
    let outcome = Outcome::Feed {
        feed: name,
        messages: messages.len(),
        blocks,
        fields,
    };
    let problems = match waited {
        Ok(()) => Vec::new(),
        Err(e) => vec![e.to_string()],
    };
    Checked::plain(outcome, problems, &check.agent)
}

/// The messages of `check`'s feed among the tap's lines.
fn messages(lines: &[crate::runtime::logs::LogLine], check: &FeedCheck) -> Vec<FeedMessage> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l.text).ok())
        .filter(|v| {
            v["tap"] == "message" && v["agent"] == check.agent.as_str() && v["feed"] == check.feed
        })
        .map(|v| FeedMessage::decode(&v["message"]))
        .collect()
}
