//! The steps, one handler per step kind (each in its own module, each returning a
//! [`Checked`] outcome), the loop that runs them in order until one fails, and what steps
//! carry forward ([`StepContext`]).

mod api;
mod call;
mod credentials;
mod device;
mod exec;
mod exits;
mod fault;
mod feed;
mod fetch;
mod logs;
mod op;
mod until;

use std::collections::BTreeMap;
use std::time::Instant;

use super::event::{Emitter, Outcome, RunEvent, StepFailure};
use super::failure::{failure, Checked};
use super::stack_ops::StackOps;
use crate::ocs::ClientError;
use crate::scenario::capture::{Bindings, CaptureFrom};
use crate::scenario::{Scenario, Step, StepKind};

/// The passwords `scenario` writes (see [`credentials::written_secrets`]).
pub(crate) fn written_secrets(scenario: &Scenario) -> Vec<String> {
    credentials::written_secrets(scenario)
}

/// What steps carry forward.
#[derive(Debug, Default)]
pub(crate) struct StepContext {
    /// Captured values and fault times, which the next steps' values are resolved against.
    bindings: Bindings,
    /// Each agent's process identity at its last `api` step.
    pids: BTreeMap<String, String>,
    /// The log position when the previous step began (`window: step` starts there).
    previous_mark: usize,
    /// By emulated device, how many of the messages it received `device` checks matched.
    device_received: BTreeMap<String, usize>,
}

/// Save the values `step` captures from what it got back (`outcome`); a problem for each one
/// that is not there.
fn capture(step: &Step, outcome: &Outcome, bindings: &mut Bindings) -> Vec<String> {
    if step.captures.is_empty() {
        return Vec::new();
    }
    let root = outcome.capture_root();
    let mut problems = Vec::new();
    for c in &step.captures {
        let found = match &c.from {
            CaptureFrom::Path(p) => root.as_ref().and_then(|r| p.get(r)).cloned(),
            CaptureFrom::Time(t) => bindings.time(t).map(|x| serde_json::json!(x)),
        };
        match found {
            Some(v) => {
                bindings.captured.insert(c.name.clone(), v);
            }
            None => problems.push(match &c.from {
                CaptureFrom::Path(p) => format!(
                    "capture `{}`: there is no `{p}` in what the step got back",
                    c.name
                ),
                CaptureFrom::Time(t) => format!(
                    "capture `{}`: the time {t} has no number to start from",
                    c.name
                ),
            }),
        }
    }
    problems
}

/// Run `steps` in order; the first failure ends the run.
pub(crate) async fn run_steps<S: StackOps>(
    stack: &mut S,
    scenario: &Scenario,
    events: &Emitter<'_>,
) -> Option<StepFailure> {
    let mut ctx = StepContext::default();
    for secret in credentials::written_secrets(scenario) {
        events.add_secret(&secret);
    }
    let secret_names = credentials::secret_names(scenario);
    for step in &scenario.steps {
        let mark = stack.log_mark();
        let action = step.kind.to_string();
        events.emit(RunEvent::StepStarted {
            step: step.index,
            line: step.line,
            action: action.clone(),
        });
        events.secret_paths(credentials::secret_paths(step, &secret_names));
        let started = Instant::now();
        ctx.bindings.now = Some(crate::clock::unix_now());
        let mut checked = run_step(stack, scenario, step, &mut ctx, events).await;
        if checked.problems.is_empty() {
            let problems = capture(step, &checked.outcome, &mut ctx.bindings);
            checked.problems = problems;
        }
        let took = started.elapsed();
        within_budget(step, took, &mut checked);
        let failed =
            failure(scenario, step, &action, &checked, stack).map(|f| events.secrets().failure(f));
        events.emit(RunEvent::StepFinished {
            step: step.index,
            line: step.line,
            action,
            duration: took,
            passed: failed.is_none(),
            outcome: checked.outcome,
            failure: failed.clone(),
            redact: step.redact.clone(),
        });
        if failed.is_some() {
            return failed;
        }
        ctx.previous_mark = mark;
    }
    None
}

/// A step that did what was expected but took longer than its `within` fails for it.
fn within_budget(step: &Step, took: std::time::Duration, checked: &mut Checked) {
    let Some(budget) = step.within.filter(|b| took > b.limit) else {
        return;
    };
    if !checked.problems.is_empty() {
        return;
    }
    checked.problems.push(format!(
        "the step took {}, over its budget `within: {}`",
        crate::budget::secs(took.as_secs_f64()),
        crate::wait::fmt_duration(budget.limit)
    ));
    checked.over_budget = Some(budget.at);
}

/// One step, by its kind, its values resolved (and the passwords it sends made secret).
async fn run_step<S: StackOps>(
    stack: &mut S,
    scenario: &Scenario,
    step: &Step,
    ctx: &mut StepContext,
    events: &Emitter<'_>,
) -> Checked {
    let n = step.index;
    let kind = step.kind.resolve(&ctx.bindings);
    let password = credentials::password_for(scenario, step, &ctx.bindings);
    let sent = password.as_deref().into_iter();
    for secret in sent.chain(credentials::sent_in_kwargs(&kind)) {
        events.add_secret(secret);
    }
    match &kind {
        StepKind::Api {
            instance,
            expect,
            timeout,
        } => {
            let a = api::ApiStep {
                instance,
                expect,
                timeout: *timeout,
            };
            api::run(&*stack, n, a, &mut ctx.pids, events).await
        }
        StepKind::Op { .. } | StepKind::Until { .. } => {
            ops_step(&*stack, n, &kind, password.as_deref(), events).await
        }
        StepKind::Logs(check) => logs::run(&*stack, n, check, ctx.previous_mark, events).await,
        StepKind::Fault(f) => fault::run(stack, n, f, &mut ctx.bindings, events).await,
        StepKind::Exits {
            container,
            code,
            timeout,
        } => exits::run(&*stack, container, *code, *timeout).await,
        StepKind::Fetch(f) => fetch::run(&*stack, f).await,
        StepKind::Exec(e) => exec::run(&*stack, n, e, &events.secrets()).await,
        StepKind::Call(c) => call::run(&*stack, n, c, events).await,
        StepKind::Feed(check) => feed::run(&*stack, check, ctx.previous_mark).await,
        StepKind::Device(d) => device::run(&*stack, n, d, &mut ctx.device_received).await,
    }
}

/// A step of `.ops` calls (`start`...`abort`, `until`), sending `password`.
async fn ops_step(
    stack: &impl StackOps,
    n: usize,
    kind: &StepKind,
    password: Option<&str>,
    events: &Emitter<'_>,
) -> Checked {
    match kind {
        StepKind::Op {
            action,
            instance,
            op,
            params,
            timeout,
            expect,
        } => {
            let call = op::OpCall {
                action: *action,
                instance,
                op,
                params: params.as_ref(),
                timeout: *timeout,
                password,
            };
            op::run(stack, n, call, expect, events).await
        }
        StepKind::Until {
            target,
            timeout,
            expect,
        } => {
            let p = until::Poll {
                target,
                timeout: *timeout,
                expect,
                password,
            };
            until::run(stack, n, p, events).await
        }
        _ => unreachable!("only .ops steps come here"),
    }
}

/// The end of a step whose call failed: the error, and the container's state when it is gone.
async fn call_failed(stack: &impl StackOps, instance: &str, e: &ClientError) -> Checked {
    let mut problems = vec![format!("the call failed: {e}")];
    if let Some(reason) = exited(stack, instance).await {
        problems.push(reason);
    }
    Checked::plain(
        super::event::Outcome::Error(e.to_string()),
        problems,
        instance,
    )
}

/// `Some(reason)` when the container of `role` is not running (an agent a HostManager runs
/// has no container of its own: its calls say what is wrong).
async fn exited(stack: &impl StackOps, role: &str) -> Option<String> {
    match stack.container_state(role).await {
        Ok((true, _)) | Err(crate::runtime::stack::StackError::NoSuchContainer(_)) => None,
        Ok((false, code)) => Some(exit_reason(role, code)),
        Err(e) => Some(crate::runtime::display_chain(&e)),
    }
}

/// How a step says that the container of `role` is not running (`code`: its exit code).
fn exit_reason(role: &str, code: Option<i64>) -> String {
    match code {
        Some(code) => format!("the container of {role} exited with code {code}"),
        None => format!("the container of {role} is not running"),
    }
}

/// How long a container's last log lines get to arrive after it is seen exited, before a wait
/// on it gives up (the engine reports the exit before the log stream has drained).
const DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

/// How often a wait asks the engine whether its container is still there.
const STATE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The container a wait watches (a `logs` or `feed` step's): once it has exited, what the wait
/// waits for can no longer come, and the wait ends at once rather than at its timeout.
struct ExitWatch<'a, S> {
    stack: &'a S,
    role: &'a str,
    /// When the engine was last asked.
    asked: std::sync::Mutex<Option<Instant>>,
    /// When the container was first seen exited, and why.
    seen: std::sync::Mutex<Option<(Instant, String)>>,
}

impl<'a, S: StackOps> ExitWatch<'a, S> {
    fn new(stack: &'a S, role: &'a str) -> Self {
        Self {
            stack,
            role,
            asked: Default::default(),
            seen: Default::default(),
        }
    }

    /// `Some(reason)` once the container has exited and its last lines had [`DRAIN`] to
    /// arrive; the engine is asked at most every [`STATE_EVERY`].
    async fn gone(&self) -> Option<String> {
        if let Some((at, reason)) = self.seen.lock().expect("exit watch lock").clone() {
            return (at.elapsed() >= DRAIN).then_some(reason);
        }
        {
            let mut asked = self.asked.lock().expect("exit watch lock");
            if asked.is_some_and(|t| t.elapsed() < STATE_EVERY) {
                return None;
            }
            *asked = Some(Instant::now());
        }
        // Only an exit ends the wait: an engine that cannot answer this once is asked again.
        let reason = match self.stack.container_state(self.role).await {
            Ok((false, code)) => exit_reason(self.role, code),
            _ => return None,
        };
        *self.seen.lock().expect("exit watch lock") = Some((Instant::now(), reason));
        None
    }
}

/// Mismatches as the problems of a step.
fn texts(mismatches: &[crate::scenario::Mismatch]) -> Vec<String> {
    mismatches.iter().map(|m| m.to_string()).collect()
}
