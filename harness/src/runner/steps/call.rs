//! `call: <instance>.<procedure>`: call a procedure an agent registered besides its operations
//! (an OCS *special access point*, e.g. the Access Director's `request_exclusive`), then check
//! its return value, or its error when the scenario expects one.

use serde_json::{json, Map, Value};

use super::{exited, texts, Checked, StackOps};
use crate::runner::event::{Answer, Call, Emitter, Outcome, RunEvent};
use crate::scenario::CallStep;

/// The call as events record it: the arguments given, as `{args, kwargs}`.
fn recorded(c: &CallStep) -> Call {
    let mut given = Map::new();
    if !c.args.is_empty() {
        given.insert("args".into(), json!(c.args));
    }
    if !c.kwargs.is_empty() {
        given.insert("kwargs".into(), Value::Object(c.kwargs.clone()));
    }
    Call {
        instance: c.instance.clone(),
        action: "call".into(),
        op: Some(c.procedure.clone()),
        params: (!given.is_empty()).then_some(Value::Object(given)),
        polled: false,
    }
}

/// Run a `call` step.
pub(super) async fn run(
    stack: &impl StackOps,
    step: usize,
    p: &CallStep,
    events: &Emitter<'_>,
) -> Checked {
    let (call, expect) = (recorded(p), &p.expect);
    events.emit(RunEvent::CallMade {
        step,
        call: call.clone(),
    });
    let result = stack
        .call(&p.instance, &p.procedure, p.args.clone(), p.kwargs.clone())
        .await;
    match result {
        Ok(value) => {
            events.reply(step, &call, Answer::Value(value.clone()));
            let problems = texts(&expect.check(Ok(&value)));
            Checked::reply(Outcome::Value(value), problems, &p.instance)
        }
        Err(e) => {
            let text = e.to_string();
            events.reply(step, &call, Answer::Error(text.clone()));
            let mut problems = texts(&expect.check(Err(&text)));
            if !problems.is_empty() {
                problems.extend(exited(stack, &p.instance).await);
            }
            Checked::plain(Outcome::Error(text), problems, &p.instance)
        }
    }
}
