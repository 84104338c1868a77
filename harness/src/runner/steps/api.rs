//! `api: <instance>`: call `get_api`, check it, and compare the agent process with the one
//! the previous `api` step of the same agent saw (`pid: same | changed`).

use std::collections::BTreeMap;

use super::{call_failed, texts, Checked, StackOps};
use crate::ocs::AgentApi;
use crate::runner::event::{Answer, Call, Emitter, Outcome, RunEvent};
use crate::scenario::{ApiExpect, PidExpect};

/// Run an `api` step; `pids` holds each agent's identity at its last `api` step.
pub(super) async fn run(
    stack: &impl StackOps,
    step: usize,
    instance: &str,
    expect: &ApiExpect,
    pids: &mut BTreeMap<String, String>,
    events: &Emitter<'_>,
) -> Checked {
    let call = Call {
        instance: instance.to_string(),
        action: "get_api".into(),
        op: None,
        params: None,
        polled: false,
    };
    events.emit(RunEvent::CallMade {
        step,
        call: call.clone(),
    });
    match stack.get_api(instance).await {
        Ok(api) => {
            events.reply(step, &call, Answer::Api(api.clone()));
            let mut problems = texts(&expect.check_api(&api));
            // instance_pid alone repeats across restarts (pid namespaces); the feeds'
            // session_id is the process's construction time, new on every restart.
            let identity = process_identity(&api);
            let before = pids.insert(instance.to_string(), identity.clone());
            problems.extend(pid_problem(expect.pid, before.as_deref(), &identity));
            Checked::reply(Outcome::Api(api), problems, instance)
        }
        Err(e) => {
            events.reply(step, &call, Answer::Error(e.to_string()));
            call_failed(stack, instance, &e).await
        }
    }
}

/// `<instance_pid>/<feed session_id>`: what identifies one run of an agent process.
fn process_identity(api: &AgentApi) -> String {
    let session = api
        .feeds
        .iter()
        .find_map(|(_, f)| f.get("session_id").and_then(|v| v.as_str()))
        .unwrap_or("?");
    format!("{}/{session}", api.instance_pid)
}

/// What is wrong with the process identity `now`, given the one seen `before`.
fn pid_problem(expect: Option<PidExpect>, before: Option<&str>, now: &str) -> Option<String> {
    match (expect?, before) {
        (PidExpect::Same, Some(b)) if b != now => Some(format!(
            "pid: expected the same agent process, but it changed from {b} to {now} \
             (pid/feed session) (the agent restarted)"
        )),
        (PidExpect::Changed, Some(b)) if b == now => Some(format!(
            "pid: expected a new agent process, but it is still {b}"
        )),
        (_, None) => Some(
            "pid: there is no earlier `api` step of this agent to compare with; add one \
             before the fault"
                .into(),
        ),
        _ => None,
    }
}
