//! `api: <instance>`: call `get_api` (with `timeout`: poll it until the expectation holds),
//! check it, and compare the agent process with the one the previous `api` step of the same
//! agent saw (`pid: same | changed`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{call_failed, exited, texts, Checked, StackOps};
use crate::ocs::AgentApi;
use crate::runner::event::{Answer, Call, Emitter, Outcome, RunEvent};
use crate::scenario::{ApiExpect, PidExpect};
use crate::wait::{poll_until, Backoff, Probe};

/// How often a polling `api` step calls `get_api`.
const POLL: Backoff = Backoff {
    initial: Duration::from_millis(50),
    max: Duration::from_millis(250),
};

/// An `api` step: which agent, what must hold, and how long to poll for it (if at all).
pub(super) struct ApiStep<'a> {
    pub instance: &'a str,
    pub expect: &'a ApiExpect,
    pub timeout: Option<Duration>,
}

/// Run an `api` step; `pids` holds each agent's identity at its last `api` step.
pub(super) async fn run(
    stack: &impl StackOps,
    step: usize,
    a: ApiStep<'_>,
    pids: &mut BTreeMap<String, String>,
    events: &Emitter<'_>,
) -> Checked {
    let call = Call {
        instance: a.instance.to_string(),
        action: "get_api".into(),
        op: None,
        params: None,
        polled: a.timeout.is_some(),
    };
    let (api, mut problems) = match a.timeout {
        None => match once(stack, step, &call, events).await {
            Ok(api) => {
                let problems = texts(&a.expect.check_api(&api));
                (api, problems)
            }
            Err(failed) => return failed,
        },
        Some(timeout) => match poll(stack, step, &call, a.expect, timeout, events).await {
            (Some(api), problems) => (api, problems),
            (None, problems) => {
                let outcome = Outcome::Error(problems.join("; "));
                return Checked::plain(outcome, problems, a.instance);
            }
        },
    };
    // instance_pid alone repeats across restarts (pid namespaces); the feeds' session_id is
    // the process's construction time, new on every restart.
    let identity = process_identity(&api);
    let before = pids.insert(a.instance.to_string(), identity.clone());
    problems.extend(pid_problem(a.expect.pid, before.as_deref(), &identity));
    Checked::reply(Outcome::Api(api), problems, a.instance)
}

/// One `get_api` call, recorded; the step's end when it fails.
async fn once(
    stack: &impl StackOps,
    step: usize,
    call: &Call,
    events: &Emitter<'_>,
) -> Result<AgentApi, Checked> {
    events.emit(RunEvent::CallMade {
        step,
        call: call.clone(),
    });
    match stack.get_api(&call.instance).await {
        Ok(api) => {
            events.reply(step, call, Answer::Api(api.clone()));
            Ok(api)
        }
        Err(e) => {
            events.reply(step, call, Answer::Error(e.to_string()));
            Err(call_failed(stack, &call.instance, &e).await)
        }
    }
}

/// Poll `get_api` until `expect` holds (its `pid` aside) or `timeout` passes: the last API
/// seen, and the problems when it never held.
async fn poll(
    stack: &impl StackOps,
    step: usize,
    call: &Call,
    expect: &ApiExpect,
    timeout: Duration,
    events: &Emitter<'_>,
) -> (Option<AgentApi>, Vec<String>) {
    let expect = ApiExpect {
        pid: None,
        ..expect.clone()
    };
    let last = Mutex::new(None::<AgentApi>);
    let condition = format!("{}'s get_api to match the expectation", call.instance);
    let waited = poll_until(condition, timeout, POLL, || async {
        events.emit(RunEvent::CallMade {
            step,
            call: call.clone(),
        });
        match stack.get_api(&call.instance).await {
            Ok(api) => {
                events.reply(step, call, Answer::Api(api.clone()));
                let mismatches = texts(&expect.check_api(&api));
                *last.lock().expect("api lock") = Some(api);
                match mismatches.is_empty() {
                    true => Probe::Ready(()),
                    false => Probe::Pending(mismatches.join("; ")),
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
    })
    .await;
    let last = last.into_inner().expect("api lock");
    match waited {
        Ok(()) => (last, Vec::new()),
        Err(e) => (last, vec![e.to_string()]),
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
