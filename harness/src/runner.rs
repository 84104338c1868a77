//! Runs a scenario's steps against a live stack: each step's call, its expectations, state-
//! machine-aware waits (an op that ends, or a container that exits, fails the wait at once),
//! and the normalised transcript. The stack is always torn down, whatever happens.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ocs::{ClientError, HttpBridge, OcsClient, Reply, SessionStatus};
use crate::runtime::stack::Stack;
use crate::runtime::{launch, LaunchError, LaunchOptions};
use crate::scenario::{
    Fault, FaultAction, LogWindow, OpAction, PidExpect, Scenario, Step, StepKind, UntilTarget,
};
use crate::timeline::{self, Timeline};
use crate::transcript::{self, Entry, Transcript};
use crate::wait::{fmt_duration, poll_until, Backoff, Probe};

/// A step that did not do what the scenario expected.
#[derive(Debug, Clone)]
pub struct StepFailure {
    /// 1-based step number.
    pub step: usize,
    /// Line of the step in the scenario file.
    pub line: usize,
    /// What the step did.
    pub action: String,
    /// What went wrong, one item per problem (expectation diffs, errors, timeouts).
    pub problems: Vec<String>,
    /// The last reply seen, normalised.
    pub last_reply: Option<Value>,
    /// The last log lines of the container the step was about.
    pub log_tail: Vec<String>,
    /// The container the step was about.
    pub container: Option<String>,
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "step {} (line {}): {} failed",
            self.step, self.line, self.action
        )?;
        for p in &self.problems {
            for (i, line) in p.lines().enumerate() {
                if i == 0 {
                    writeln!(f, "  - {line}")?;
                } else {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        if let Some(r) = &self.last_reply {
            writeln!(f, "  last reply:")?;
            let text = serde_saphyr::to_string(r).unwrap_or_else(|_| r.to_string());
            for line in text.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        if let Some(c) = &self.container {
            if self.log_tail.is_empty() {
                writeln!(f, "  {c}: no log output")?;
            } else {
                writeln!(f, "  last log lines of {c}:")?;
                for line in &self.log_tail {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        Ok(())
    }
}

/// The result of running a scenario.
#[derive(Debug)]
pub struct RunReport {
    /// The normalised transcript (what snapshots hold).
    pub transcript: Transcript,
    /// The first failing step, if any.
    pub failure: Option<StepFailure>,
    /// The run id.
    pub run_id: String,
    /// Where the run's files are (SCF, logs).
    pub run_dir: std::path::PathBuf,
    /// Time to a ready stack, image checks and builds included.
    pub stack_ready: Duration,
    /// Time the stack itself took to come up (network, containers, readiness), no images.
    pub stack_up: Duration,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Part of it spent checking and building images.
    pub images: Duration,
    /// The merged timeline file (`<run_dir>/timeline.log`).
    pub timeline: std::path::PathBuf,
    /// Its last lines, for the console.
    pub timeline_tail: Vec<String>,
    /// How to reach the stack when it was kept after a failure.
    pub kept: Option<String>,
}

/// Why a scenario could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The stack could not be built or brought up. `located` points into the scenario file
    /// when the error is about one of its agents.
    #[error("{}{source}", located.as_ref().map(|l| format!("{l}\n")).unwrap_or_default())]
    Launch {
        /// The error rendered at the agent's place in the scenario file.
        located: Option<Box<crate::scenario::ScenarioError>>,
        /// What went wrong.
        #[source]
        source: LaunchError,
    },
    /// A mistake in the scenario found once the stack was up (e.g. an unknown operation).
    #[error("{0}")]
    Scenario(Box<crate::scenario::ScenarioError>),
    /// Tearing down failed (the run's resources are labelled; `ocs-harness clean` removes them).
    #[error("teardown failed: {0}")]
    Teardown(String),
}

/// The launch error at the place in the scenario that caused it.
fn locate(scenario: &Scenario, e: &LaunchError) -> Option<crate::scenario::ScenarioError> {
    let agent = e.agent()?;
    let src = scenario.agent_sources.get(agent)?;
    let (pos, message, label) = match e {
        LaunchError::AgentImage { .. } => (
            src.image,
            format!("the image of agent `{agent}` could not be built"),
            "this build",
        ),
        LaunchError::Stack(crate::runtime::stack::StackError::ImageMissing { .. }) => (
            src.image,
            format!("the image of agent `{agent}` is not available"),
            "this image",
        ),
        _ => (
            src.entry,
            format!("agent `{agent}` did not start"),
            "this agent",
        ),
    };
    Some(scenario.error_at(pos, message, label, None))
}

/// Every operation a step names must exist on its agent, unless the step expects an error
/// reply (a deliberate probe of an unknown operation).
async fn check_operations(
    stack: &Stack,
    scenario: &Scenario,
) -> Option<crate::scenario::ScenarioError> {
    let mut apis = std::collections::BTreeMap::new();
    for step in &scenario.steps {
        let (instance, op, expect) = match &step.kind {
            StepKind::Op {
                instance,
                op,
                expect,
                ..
            } => (instance, op, expect),
            StepKind::Until {
                target: UntilTarget::Op { instance, op },
                expect,
                ..
            } => (instance, op, expect),
            _ => continue,
        };
        if expect.status == Some(crate::ocs::ResponseCode::Error) {
            continue;
        }
        if !apis.contains_key(instance) {
            let api = stack.client().agent(instance).get_api().await.ok()?;
            apis.insert(instance.clone(), api);
        }
        let api = &apis[instance];
        if api.op(op).is_none() {
            let names = |ops: &[crate::ocs::OpInfo]| {
                ops.iter()
                    .map(|o| format!("`{}`", o.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Some(scenario.error_at(
                step.target,
                format!("agent `{instance}` has no operation `{op}`"),
                "unknown operation",
                Some(format!(
                    "its tasks are {} and its processes are {}; to probe an unknown operation on \
                     purpose, expect `status: error`",
                    names(&api.tasks),
                    names(&api.processes)
                )),
            ));
        }
    }
    None
}

/// Bring the scenario's stack up, run its steps, tear it down.
pub async fn run(scenario: &Scenario, options: &LaunchOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let spec = scenario.stack_spec();
    let (stack, launch_report) = match launch(&spec, options).await {
        Ok(up) => up,
        Err(source) => {
            return Err(RunError::Launch {
                located: locate(scenario, &source).map(Box::new),
                source,
            })
        }
    };
    let stack_ready = started.elapsed();
    let stack_up = stack.timings().total;
    if let Some(e) = check_operations(&stack, scenario).await {
        stack
            .teardown()
            .await
            .map_err(|e| RunError::Teardown(e.to_string()))?;
        return Err(RunError::Scenario(Box::new(e)));
    }
    let mut transcript = Transcript {
        scenario: scenario.name.clone(),
        stack: stack
            .plan()
            .agents
            .iter()
            .map(|a| format!("{} ({})", a.instance_id, a.agent_class))
            .chain(std::iter::once("crossbar".to_string()))
            .collect(),
        steps: Vec::new(),
    };
    let tl = Timeline::new();
    tl.record("harness", format!("stack {} ready", stack.run_id()));
    let mut stack = stack;
    let failure = run_steps(&mut stack, scenario, &mut transcript, &tl).await;
    let run_id = stack.run_id().to_string();
    let run_dir = options.runs_dir.join(&run_id);
    let text = timeline::render(&tl.merged(&stack.logs().lines()));
    let timeline = run_dir.join("timeline.log");
    let _ = std::fs::create_dir_all(&run_dir);
    if let Err(e) = std::fs::write(&timeline, &text) {
        eprintln!("ocs-harness: cannot write {}: {e}", timeline.display());
    }
    let lines: Vec<&str> = text.lines().collect();
    let timeline_tail = lines[lines.len().saturating_sub(40)..]
        .iter()
        .map(|l| l.to_string())
        .collect();
    let kept = if failure.is_some() && options.keep_on_failure {
        Some(
            stack
                .keep()
                .await
                .map_err(|e| RunError::Teardown(e.to_string()))?,
        )
    } else {
        stack
            .teardown()
            .await
            .map_err(|e| RunError::Teardown(e.to_string()))?;
        None
    };
    Ok(RunReport {
        transcript,
        failure,
        run_id,
        run_dir,
        stack_ready,
        stack_up,
        elapsed: started.elapsed(),
        images: launch_report.images,
        timeline,
        timeline_tail,
        kept,
    })
}

async fn run_steps(
    stack: &mut Stack,
    scenario: &Scenario,
    transcript: &mut Transcript,
    tl: &Timeline,
) -> Option<StepFailure> {
    let mut previous_mark = 0;
    let mut ctx = StepContext::default();
    for step in &scenario.steps {
        let mark = stack.logs().len();
        tl.record(
            "harness",
            format!(
                "step {} (line {}): {}",
                step.index,
                step.line,
                action_text(step)
            ),
        );
        let (entry, failure) = match &step.kind {
            StepKind::Fault(fault) => run_fault(stack, step, fault, &mut ctx).await,
            _ => run_step(stack, step, previous_mark, tl, &mut ctx).await,
        };
        transcript.steps.push(entry);
        if let Some(f) = failure {
            tl.record(
                "harness",
                format!("step {} FAILED:\n{}", step.index, f.problems.join("\n")),
            );
            return Some(f);
        }
        tl.record("harness", format!("step {} ok", step.index));
        previous_mark = mark;
    }
    None
}

/// What steps carry forward: the time of the last fault, each agent's last seen pid.
#[derive(Debug, Default)]
struct StepContext {
    last_fault: Option<f64>,
    pids: std::collections::BTreeMap<String, String>,
}

/// `<instance_pid>/<feed session_id>`: what identifies one run of an agent process.
fn process_identity(api: &crate::ocs::AgentApi) -> String {
    let session = api
        .feeds
        .iter()
        .find_map(|(_, f)| f.get("session_id").and_then(|v| v.as_str()))
        .unwrap_or("?");
    format!("{}/{session}", api.instance_pid)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Inject a fault; the steps after it see the stack ready again where the fault restarts
/// something (crossbar on its new port, its agents registered again).
async fn run_fault(
    stack: &mut Stack,
    step: &Step,
    fault: &Fault,
    ctx: &mut StepContext,
) -> (Entry, Option<StepFailure>) {
    let action = action_text(step);
    let role = fault.container.as_str();
    ctx.last_fault = Some(unix_now());
    let t = Instant::now();
    let result = match fault.action {
        FaultAction::Restart => stack.restart(role, fault.timeout).await,
        FaultAction::Stop => stack.stop(role).await,
        FaultAction::Start => stack.start(role, fault.timeout).await,
        FaultAction::Kill => stack.kill(role, &fault.signal).await,
        FaultAction::Pause => stack.pause(role).await,
        FaultAction::Unpause => stack.unpause(role, fault.timeout).await,
        FaultAction::Disconnect => match fault.duration {
            Some(d) => stack.disconnect_for(role, d).await,
            None => stack.disconnect(role).await,
        },
        FaultAction::Connect => stack.connect(role, fault.timeout).await,
    };
    let mut outcome = json!({"fault": fault.action.as_str(), "container": role});
    if matches!(
        fault.action,
        FaultAction::Restart | FaultAction::Start | FaultAction::Unpause | FaultAction::Connect
    ) {
        outcome["ready_again"] = json!(result.is_ok());
    }
    let entry = Entry {
        step: step.index,
        action: action.clone(),
        outcome,
    };
    let failure = result.err().map(|e| StepFailure {
        step: step.index,
        line: step.line,
        action,
        problems: vec![format!("{e} (after {})", fmt_duration(t.elapsed()))],
        last_reply: None,
        log_tail: stack.logs().tail(role, 25),
        container: Some(role.to_string()),
    });
    (entry, failure)
}

fn action_text(step: &Step) -> String {
    match &step.kind {
        StepKind::Api { instance, .. } => format!("api {instance}"),
        StepKind::Op {
            action,
            instance,
            op,
            timeout,
            ..
        } => match timeout {
            Some(t) => format!(
                "{} {instance}.{op} (timeout {})",
                action.as_str(),
                fmt_duration(*t)
            ),
            None => format!("{} {instance}.{op}", action.as_str()),
        },
        StepKind::Until {
            target, timeout, ..
        } => match target {
            UntilTarget::Op { instance, op } => {
                format!("until {instance}.{op} (timeout {})", fmt_duration(*timeout))
            }
            UntilTarget::Registry => format!("until registry (timeout {})", fmt_duration(*timeout)),
        },
        StepKind::Logs(check) => format!("logs {}", check.container),
        StepKind::Fault(f) => match (f.action, &f.duration) {
            (FaultAction::Kill, _) => format!("fault kill {} ({})", f.container, f.signal),
            (FaultAction::Disconnect, Some(d)) => {
                format!(
                    "fault disconnect {} (for {})",
                    f.container,
                    fmt_duration(*d)
                )
            }
            (a, _) => format!("fault {} {}", a.as_str(), f.container),
        },
        StepKind::Exits {
            container, timeout, ..
        } => format!("exits {container} (timeout {})", fmt_duration(*timeout)),
    }
}

/// Run one step: its transcript entry, and a failure if it did not do what was expected.
async fn run_step(
    stack: &Stack,
    step: &Step,
    previous_mark: usize,
    tl: &Timeline,
    ctx: &mut StepContext,
) -> (Entry, Option<StepFailure>) {
    let action = action_text(step);
    let mut entry = Entry {
        step: step.index,
        action: action.clone(),
        outcome: Value::Null,
    };
    let fail =
        |problems: Vec<String>, last_reply: Option<Value>, container: Option<&str>| StepFailure {
            step: step.index,
            line: step.line,
            action: action.clone(),
            problems,
            last_reply,
            log_tail: container
                .map(|c| stack.logs().tail(c, 25))
                .unwrap_or_default(),
            container: container.map(str::to_string),
        };
    let client = stack.client();
    let resolve = |e: &crate::scenario::ReplyExpect| match ctx.last_fault {
        Some(t) => e.with_fault_time(t),
        None => e.clone(),
    };
    match &step.kind {
        StepKind::Fault(_) => (
            entry,
            Some(fail(
                vec!["internal: fault steps are run by run_fault".into()],
                None,
                None,
            )),
        ),
        StepKind::Exits {
            container,
            code,
            timeout,
        } => match stack.wait_exit(container, *timeout).await {
            Ok(got) => {
                entry.outcome = json!({"exited": true, "code": got});
                let failure = code.filter(|want| *want != got).map(|want| {
                    fail(
                        vec![format!("expected exit code {want}, got {got}")],
                        None,
                        Some(container),
                    )
                });
                (entry, failure)
            }
            Err(e) => {
                entry.outcome = json!({"error": e.to_string()});
                (
                    entry,
                    Some(fail(vec![e.to_string()], None, Some(container))),
                )
            }
        },
        StepKind::Api { instance, expect } => {
            tl.record("bridge", format!("-> {instance} get_api"));
            let result = client.agent(instance).get_api().await;
            let checked = match result {
                Ok(api) => {
                    tl.record(
                        "bridge",
                        format!("<- {instance} get_api: {}", transcript::api(&api)),
                    );
                    let mut problems: Vec<String> = expect
                        .check_api(&api)
                        .iter()
                        .map(|m| m.to_string())
                        .collect();
                    // instance_pid alone repeats across restarts (pid namespaces); the feeds'
                    // session_id is the process's construction time, new on every restart.
                    let identity = process_identity(&api);
                    let before = ctx.pids.insert(instance.clone(), identity.clone());
                    match (expect.pid, before) {
                        (Some(PidExpect::Same), Some(b)) if b != identity => {
                            problems.push(format!(
                                "pid: expected the same agent process, but it changed from \
                                 {b} to {identity} (pid/feed session) (the agent restarted)"
                            ))
                        }
                        (Some(PidExpect::Changed), Some(b)) if b == identity => problems.push(
                            format!("pid: expected a new agent process, but it is still {b}"),
                        ),
                        (Some(_), None) => problems.push(
                            "pid: there is no earlier `api` step of this agent to compare with; \
                             add one before the fault"
                                .into(),
                        ),
                        _ => {}
                    }
                    Ok((transcript::api(&api), problems))
                }
                Err(e) => Err(e),
            };
            conclude(stack, instance, entry, checked, &fail).await
        }
        StepKind::Op {
            action: op_action,
            instance,
            op,
            params,
            timeout,
            expect,
        } => {
            let expect = resolve(expect);
            let expect = &expect;
            let agent = client.agent(instance);
            tl.record(
                "bridge",
                match params {
                    Some(p) => format!("-> {} {instance}.{op} {p}", op_action.as_str()),
                    None => format!("-> {} {instance}.{op}", op_action.as_str()),
                },
            );
            let result = match op_action {
                OpAction::Start => agent.start(op, params.clone()).await,
                OpAction::Status => agent.status(op).await,
                OpAction::Wait => agent.wait(op, *timeout).await,
                OpAction::Stop => agent.stop(op).await,
                OpAction::Abort => agent.abort(op).await,
            };
            match &result {
                Ok(reply) => {
                    tl.record("bridge", format!("<- {reply}"));
                    if let Some(session) = &reply.session {
                        tl.session(instance, session);
                    }
                }
                Err(e) => tl.record("bridge", format!("<- error: {e}")),
            }
            let checked = result.map(|reply| {
                let problems = expect
                    .check_reply(&reply)
                    .iter()
                    .map(|m| m.to_string())
                    .collect();
                (transcript::reply(&reply), problems)
            });
            conclude(stack, instance, entry, checked, &fail).await
        }
        StepKind::Until {
            target,
            timeout,
            expect,
        } => {
            let expect = resolve(expect);
            let expect = &expect;
            let (instance, op) = match target {
                UntilTarget::Op { instance, op } => (instance.as_str(), op.as_str()),
                UntilTarget::Registry => ("registry", "main"),
            };
            let last = std::sync::Mutex::new(None::<Reply>);
            let condition = format!("{instance}.{op} to match the expectation");
            let waited = poll_until(
                condition,
                *timeout,
                Backoff {
                    initial: Duration::from_millis(50),
                    max: Duration::from_millis(250),
                },
                || until_probe(stack, client, instance, op, expect, &last, tl),
            )
            .await;
            let last = last.into_inner().expect("until lock");
            entry.outcome = last.as_ref().map(transcript::reply).unwrap_or(Value::Null);
            match waited {
                Ok(()) => (entry, None),
                Err(e) => {
                    let mut problems = vec![e.to_string()];
                    if let Some(r) = &last {
                        problems.extend(expect.check_reply(r).iter().map(|m| m.to_string()));
                    }
                    (
                        entry.clone(),
                        Some(fail(problems, Some(entry.outcome), Some(instance))),
                    )
                }
            }
        }
        StepKind::Logs(check) => {
            let step_window = check.window == LogWindow::Step;
            let since = if step_window { previous_mark } else { 0 };
            let container = check.container.clone();
            let condition = format!("{container}'s log to satisfy the step's checks");
            let waited = poll_until(condition, check.timeout, Backoff::default(), || {
                let lines = stack.logs().lines_of(&container, since);
                let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
                let problems = check.check(&texts);
                let selected: Vec<String> = check
                    .selected(&texts)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                let outcome = (problems.is_empty(), selected, problems);
                async move {
                    let (ok, selected, problems) = outcome;
                    if ok {
                        Probe::Ready(selected)
                    } else if problems.iter().any(|p| p.path == "absent") {
                        Probe::Failed(
                            problems
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join("; "),
                        )
                    } else {
                        Probe::Pending(
                            problems
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join("; "),
                        )
                    }
                }
            })
            .await;
            match waited {
                Ok(selected) => {
                    entry.outcome = json!({
                        "window": if step_window { "step" } else { "run" },
                        "lines": selected.iter().map(|l| transcript::log_line(l)).collect::<Vec<_>>(),
                    });
                    (entry, None)
                }
                Err(e) => {
                    entry.outcome = json!({"error": e.to_string()});
                    (
                        entry,
                        Some(fail(vec![e.to_string()], None, Some(&container))),
                    )
                }
            }
        }
    }
}

/// The end of a step that made one call: its outcome and problems, or the call's failure
/// (with the container's state when it is gone).
async fn conclude(
    stack: &Stack,
    instance: &str,
    mut entry: Entry,
    checked: Result<(Value, Vec<String>), ClientError>,
    fail: &impl Fn(Vec<String>, Option<Value>, Option<&str>) -> StepFailure,
) -> (Entry, Option<StepFailure>) {
    match checked {
        Ok((outcome, problems)) => {
            entry.outcome = outcome;
            let failure = (!problems.is_empty())
                .then(|| fail(problems, Some(entry.outcome.clone()), Some(instance)));
            (entry, failure)
        }
        Err(e) => {
            let problems = call_problems(stack, instance, &e).await;
            entry.outcome = json!({"error": e.to_string()});
            (entry, Some(fail(problems, None, Some(instance))))
        }
    }
}

async fn until_probe(
    stack: &Stack,
    client: &OcsClient<HttpBridge>,
    instance: &str,
    op: &str,
    expect: &crate::scenario::ReplyExpect,
    last: &std::sync::Mutex<Option<Reply>>,
    tl: &Timeline,
) -> Probe<()> {
    let reply = client.agent(instance).status(op).await;
    match reply {
        Ok(reply) => {
            tl.record("bridge", format!("<- status {instance}.{op}: {reply}"));
            if let Some(session) = &reply.session {
                tl.session(instance, session);
            }
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
                    mismatches
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            } else {
                Probe::Pending(summary)
            }
        }
        Err(e) => match exited(stack, instance).await {
            Some(reason) => Probe::Failed(reason),
            None => Probe::Pending(e.to_string()),
        },
    }
}

/// `Some(reason)` when the container of `role` is not running.
async fn exited(stack: &Stack, role: &str) -> Option<String> {
    match stack.container_state(role).await {
        Ok((true, _)) => None,
        Ok((false, Some(code))) => Some(format!("the container of {role} exited with code {code}")),
        Ok((false, None)) => Some(format!("the container of {role} is not running")),
        Err(e) => Some(e.to_string()),
    }
}

async fn call_problems(stack: &Stack, instance: &str, e: &ClientError) -> Vec<String> {
    let mut problems = vec![format!("the call failed: {e}")];
    if let Some(reason) = exited(stack, instance).await {
        problems.push(reason);
    }
    problems
}

/// `Err` carrying a readable failure when the run failed.
pub fn into_result(report: &RunReport) -> Result<(), String> {
    match &report.failure {
        None => Ok(()),
        Some(f) => Err(format!(
            "scenario {} failed (run {}, files in {}):\n{f}\n--- timeline (last {} lines; all of it in {}) ---\n{}",
            report.transcript.scenario,
            report.run_id,
            report.run_dir.display(),
            report.timeline_tail.len(),
            report.timeline.display(),
            report.timeline_tail.join("\n")
        ) + &report
            .kept
            .as_ref()
            .map(|k| format!("\n{k}"))
            .unwrap_or_default()),
    }
}
