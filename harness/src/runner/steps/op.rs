//! `start|status|wait|stop|abort: <instance>.<op>`: one `.ops` call, then check the reply.

use std::time::Duration;

use serde_json::Value;

use super::{call_failed, texts, Checked, StackOps};
use crate::runner::event::{Answer, Call, Emitter, Outcome, RunEvent};
use crate::scenario::{OpAction, ReplyExpect};

/// The call an op step makes.
pub(super) struct OpCall<'a> {
    pub action: OpAction,
    pub instance: &'a str,
    pub op: &'a str,
    pub params: Option<&'a Value>,
    pub timeout: Option<Duration>,
    pub password: Option<&'a str>,
}

/// Run an op step; `expect` has `after-last-fault` resolved.
pub(super) async fn run(
    stack: &impl StackOps,
    step: usize,
    c: OpCall<'_>,
    expect: &ReplyExpect,
    events: &Emitter<'_>,
) -> Checked {
    let call = Call {
        instance: c.instance.to_string(),
        action: c.action.as_str().into(),
        op: Some(c.op.to_string()),
        params: c.params.cloned(),
        polled: false,
    };
    events.emit(RunEvent::CallMade {
        step,
        call: call.clone(),
    });
    match stack
        .op(c.action, c.instance, c.op, c.params, c.timeout, c.password)
        .await
    {
        Ok(reply) => {
            events.reply(step, &call, Answer::Reply(reply.clone()));
            let problems = texts(&expect.check_reply(&reply));
            Checked::reply(Outcome::Reply(reply), problems, c.instance)
        }
        Err(e) => {
            events.reply(step, &call, Answer::Error(e.to_string()));
            call_failed(stack, c.instance, &e).await
        }
    }
}
