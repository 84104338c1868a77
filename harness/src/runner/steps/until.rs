//! `until: <instance>.<op> | registry`: poll `status` until the expectation holds. The wait
//! gives up at once when it never can: the session ended without matching, or the agent's
//! container is gone.

use std::sync::Mutex;
use std::time::Duration;

use super::{exited, texts, Checked, StackOps};
use crate::ocs::{Reply, SessionStatus};
use crate::runner::event::{Answer, Call, Emitter, Outcome, RunEvent};
use crate::scenario::{OpAction, ReplyExpect, UntilTarget};
use crate::wait::{poll_until, Backoff, Probe};

/// How often `until` polls.
const POLL: Backoff = Backoff {
    initial: Duration::from_millis(50),
    max: Duration::from_millis(250),
};

/// What an `until` step polls, and how.
pub(super) struct Poll<'a> {
    pub target: &'a UntilTarget,
    pub timeout: Duration,
    pub expect: &'a ReplyExpect,
    pub password: Option<&'a str>,
}

/// Run an `until` step; its values are resolved.
pub(super) async fn run(
    stack: &impl StackOps,
    step: usize,
    p: Poll<'_>,
    events: &Emitter<'_>,
) -> Checked {
    let Poll {
        target,
        timeout,
        expect,
        password,
    } = p;
    let (instance, op) = match target {
        UntilTarget::Op { instance, op } => (instance.as_str(), op.as_str()),
        UntilTarget::Registry => ("registry", "main"),
    };
    let call = Call {
        instance: instance.to_string(),
        action: OpAction::Status.as_str().into(),
        op: Some(op.to_string()),
        params: None,
        polled: true,
    };
    let last = Mutex::new(None::<Reply>);
    let condition = format!("{instance}.{op} to match the expectation");
    let waited = poll_until(condition, timeout, POLL, || {
        probe(stack, step, (&call, password), expect, &last, events)
    })
    .await;
    let last = last.into_inner().expect("until lock");
    let problems = match waited {
        Ok(()) => Vec::new(),
        Err(e) => {
            let mut problems = vec![e.to_string()];
            if let Some(r) = &last {
                problems.extend(texts(&expect.check_reply(r)));
            }
            problems
        }
    };
    Checked::reply(Outcome::Polled(last), problems, instance)
}

/// One poll: ready when the reply matches; failed when the session is done without matching
/// or the container is not running.
async fn probe(
    stack: &impl StackOps,
    step: usize,
    (call, password): (&Call, Option<&str>),
    expect: &ReplyExpect,
    last: &Mutex<Option<Reply>>,
    events: &Emitter<'_>,
) -> Probe<()> {
    let op = call.op.as_deref().unwrap_or_default();
    events.emit(RunEvent::CallMade {
        step,
        call: call.clone(),
    });
    match stack
        .op(OpAction::Status, &call.instance, op, None, None, password)
        .await
    {
        Ok(reply) => {
            events.reply(step, call, Answer::Reply(reply.clone()));
            let mismatches = expect.check_reply(&reply);
            let done = reply
                .session
                .as_ref()
                .is_some_and(|s| s.status == SessionStatus::Done);
            let summary = reply.to_string();
            *last.lock().expect("until lock") = Some(reply);
            if mismatches.is_empty() {
                Probe::Ready(())
            } else if done {
                Probe::Failed(format!(
                    "the session ended ({summary}) and can no longer match: {}",
                    texts(&mismatches).join("; ")
                ))
            } else {
                Probe::Pending(summary)
            }
        }
        Err(e) => {
            events.reply(step, call, Answer::Error(e.to_string()));
            match exited(stack, &call.instance).await {
                Some(reason) => Probe::Failed(reason),
                None => Probe::Pending(e.to_string()),
            }
        }
    }
}
