//! Runs a scenario against a live stack and reports what happens as [`RunEvent`]s: the stack
//! is brought up, each step runs (one handler per step kind, in `steps`), and the stack is
//! torn down (or kept after a failure), whatever happens. The timeline and the normalised
//! transcript are readers of the events; [`run_observed`] adds the caller's own.
//!
//! Parts: `event` (the events and what they carry, [`RunObserver`]), `steps` (one handler per
//! step kind, and the step loop), `checks` (what is checked of the whole run once its steps
//! passed), `failure` (the one place a [`StepFailure`] is built), `readers` (the timeline,
//! the transcript and the coverage as readers of the events), `stack_ops` (the small trait
//! over the stack the steps use, so their decisions are unit-tested with a fake).

mod checks;
pub(crate) mod event;
mod failure;
mod readers;
mod redact;
mod stack_ops;
mod steps;

use std::time::{Duration, Instant};

use crate::budget::RunTimes;
use crate::coverage::Coverage;
use crate::runtime::stack::Stack;
use crate::runtime::{launch, LaunchError, LaunchOptions, LaunchReport};
use crate::scenario::{Scenario, StepKind, UntilTarget};
use crate::timeline::{self, Timeline};
use crate::transcript::Transcript;

use event::Emitter;
pub use event::{RunEvent, RunObserver, StepFailure};
use stack_ops::StackOps;

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
    /// Which operations of each agent class the run exercised.
    pub coverage: Coverage,
    /// What its steps and agents took (also in `<run_dir>/times.json`).
    pub times: RunTimes,
    /// Every container's log lines, secrets redacted (as in the timeline file): for reports
    /// that show the logs (HTML).
    pub logs: Vec<crate::runtime::logs::LogLine>,
    /// The Python code coverage data collected from the agents' containers (with
    /// `code-coverage:`), for the suite to combine.
    pub code_coverage: Option<crate::runtime::codecov::Collected>,
}

/// Why a scenario could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The stack could not be built or brought up. `located` points into the scenario file
    /// when the error is about one of its agents. A `RunError` is the end of the chain: its
    /// message already holds every cause of `error`, once, so it exposes no `source()`.
    #[error(
        "{}{}",
        located.as_ref().map(|l| format!("{l}\n")).unwrap_or_default(),
        crate::runtime::display_chain(error)
    )]
    Launch {
        /// The error rendered at the agent's place in the scenario file.
        located: Option<Box<crate::scenario::ScenarioError>>,
        /// What went wrong (typed, with its causes as sources).
        error: LaunchError,
    },
    /// An operation a step drives is not in its agent's `get_api`, asked once the stack was
    /// up: a misspelt name in the scenario, or an agent that lost (renamed, removed) the
    /// operation. Either way the agent under test does not offer what the scenario drives,
    /// so it is a verdict (exit 1), as the call itself would have been refused.
    #[error("{0}")]
    MissingOperation(Box<crate::scenario::ScenarioError>),
    /// Tearing down failed (the run's resources are labelled; `ocs-harness clean` removes them).
    #[error("teardown failed: {0}")]
    Teardown(String),
}

/// The launch error at the place in the scenario that caused it.
fn locate(scenario: &Scenario, e: &LaunchError) -> Option<crate::scenario::ScenarioError> {
    if let LaunchError::Stack(crate::runtime::stack::StackError::ImageMissing {
        image,
        role: crate::runtime::role::Role::Exec(_),
        ..
    }) = e
    {
        return locate_exec_image(scenario, image);
    }
    let agent = e.agent()?;
    let src = scenario.agent_sources.get(agent)?;
    let (pos, message, label) = match e {
        LaunchError::AgentImage { .. } => (
            src.image,
            format!("the image of agent `{agent}` could not be built"),
            "this build",
        ),
        LaunchError::AgentPackages { .. } => (
            src.packages,
            format!("the packages of agent `{agent}` could not be added to its image"),
            "these packages",
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

/// A missing image of `exec` steps at the first step that names it (as written, or after the
/// image overrides: then the first `exec` step with an image).
fn locate_exec_image(scenario: &Scenario, missing: &str) -> Option<crate::scenario::ScenarioError> {
    let images = scenario.steps.iter().filter_map(|s| match &s.kind {
        StepKind::Exec(e) => match &e.target {
            crate::scenario::ExecTarget::Image { image, at } => Some((image, *at)),
            crate::scenario::ExecTarget::In(_) => None,
        },
        _ => None,
    });
    let images: Vec<_> = images.collect();
    let (image, at) = images
        .iter()
        .find(|(i, _)| i.to_string() == missing)
        .or(images.first())?;
    Some(scenario.error_at(
        *at,
        format!("the image of this `exec` step ({image}) is not available"),
        "this image",
        None,
    ))
}

/// Every operation a step names must exist on its agent, unless the step expects an error
/// reply (a deliberate probe of an unknown operation).
async fn check_operations(
    stack: &impl StackOps,
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
            // An agent that does not answer yet (a HostManager starts it later) is not
            // checked: the steps about it will say what is wrong.
            let api = stack.get_api(instance).await.ok();
            apis.insert(instance.clone(), api);
        }
        let Some(api) = &apis[instance] else {
            continue;
        };
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
                    "its tasks are {} and its processes are {}; if the name is misspelt, fix \
                     it; if the agent lost the operation, that is the regression; to probe an \
                     unknown operation on purpose, expect `status: error`",
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
    run_observed(scenario, options, &mut |_: &RunEvent| {}).await
}

/// [`run`], with `observer` seeing every [`RunEvent`] as it happens (besides the timeline and
/// the transcript), from [`RunEvent::RunStarted`] to [`RunEvent::RunFinished`] (sent whether
/// the run passed, failed, or could not run).
pub async fn run_observed(
    scenario: &Scenario,
    options: &LaunchOptions,
    observer: &mut dyn RunObserver,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let mut timeline = Timeline::new();
    let mut transcript = Transcript::default();
    let mut coverage = Coverage::default();
    let mut times = RunTimes::default();
    let (ran, secrets) = {
        let events = Emitter::new(vec![
            &mut timeline,
            &mut transcript,
            &mut coverage,
            &mut times,
            &mut *observer,
        ]);
        // The passwords the file writes are secrets from the start: a launch error's log tail
        // may hold one.
        for secret in steps::written_secrets(scenario) {
            events.add_secret(&secret);
        }
        events.emit(RunEvent::RunStarted {
            scenario: scenario.name.clone(),
            steps: scenario.steps.len(),
        });
        let ran = drive(scenario, options, &events, started).await;
        // The steps are over: the suite's worker may bring its next stack up meanwhile.
        options.slot.release();
        (ran, events.secrets())
    };
    let ran = match ran {
        Ok(mut ran) => {
            ran.stops = stop_agents(scenario, options, &ran).await;
            if ran.stops.is_some() {
                ran.code_coverage = ran.stack.collect_code_coverage().await;
            }
            Ok(ran)
        }
        Err(e) => Err(e),
    };
    let ran = ran.map(|mut ran| {
        if ran.failure.is_none() {
            let checked_times = times.clone();
            let events = Emitter::new(vec![
                &mut timeline,
                &mut transcript,
                &mut times,
                &mut *observer,
            ]);
            let facts = checks::RunFacts {
                coverage: &coverage,
                logs: &ran.stack.logs().lines(),
                suite_allow: &options.log_allow,
                times: &checked_times,
                budgets: &options.budgets,
                stops: ran.stops.as_deref(),
            };
            ran.failure = checks::after_steps(scenario, &facts, &events);
        }
        ran
    });
    let result = match ran {
        Ok(ran) => {
            times.passed = ran.failure.is_none();
            write_times(&options.runs_dir.join(ran.stack.run_id()), &times);
            finish(ran, &timeline, transcript, options, started)
                .await
                .map(|report| RunReport {
                    coverage,
                    times,
                    ..report
                })
        }
        Err(e) => Err(e),
    };
    // The last event reaches the observer directly (the emitter is gone): redacted the same way.
    let elapsed = own_time(started, options);
    observer.on_event(&secrets.event(&run_finished(scenario, &result, elapsed)));
    result
}

/// A stack that ran the steps, and what is known of its run so far.
struct Ran {
    stack: Stack,
    launch: LaunchReport,
    stack_ready: Duration,
    stack_up: Duration,
    failure: Option<StepFailure>,
    /// What the timeline file must not hold in clear.
    secrets: redact::Secrets,
    /// How the agents stopped at the end (`None` until they are, or when they are not).
    stops: Option<Vec<crate::runtime::shutdown::AgentStop>>,
    /// The code coverage data collected once they stopped.
    code_coverage: Option<crate::runtime::codecov::Collected>,
}

/// Stop the agents cleanly at the end of the run, all at once (`shutdown:`), unless the
/// scenario opts out or the stack is to be kept after a failure. How each stopped.
async fn stop_agents(
    scenario: &Scenario,
    options: &LaunchOptions,
    ran: &Ran,
) -> Option<Vec<crate::runtime::shutdown::AgentStop>> {
    let shutdown = &scenario.checks.shutdown;
    if !shutdown.graceful || (ran.failure.is_some() && options.keep_on_failure) {
        return None;
    }
    let t = Instant::now();
    let stops = ran
        .stack
        .stop_agents(shutdown.signal.as_deref(), shutdown.within)
        .await;
    tracing::debug!(run = %ran.stack.run_id(), took = ?t.elapsed(), "agents stopped");
    Some(stops)
}

/// Bring the stack up, check the operations the steps name, run the steps.
async fn drive(
    scenario: &Scenario,
    options: &LaunchOptions,
    events: &Emitter<'_>,
    started: Instant,
) -> Result<Ran, RunError> {
    let spec = scenario.stack_spec();
    let (mut stack, launch) = launch(&spec, options)
        .await
        .map_err(|error| RunError::Launch {
            located: locate(scenario, &error).map(Box::new),
            error,
        })?;
    // Every stack is up on the run's turn (taken by the launch): the time to a ready stack is
    // the worker's wait, from its turn (what came before it was prepared ahead).
    options.turn.take().await;
    let stack_ready = options.turn.held_since(started).elapsed();
    let stack_up = stack.timings().total;
    if let Some(e) = check_operations(&stack, scenario).await {
        stack
            .teardown()
            .await
            .map_err(|e| RunError::Teardown(crate::runtime::display_chain(&e)))?;
        return Err(RunError::MissingOperation(Box::new(e)));
    }
    if let Err(error) = start_feed_tap(&mut stack, scenario).await {
        let _ = stack.teardown().await;
        return Err(RunError::Launch {
            located: None,
            error: LaunchError::Stack(error),
        });
    }
    events.emit(stack_ready_event(&stack, &launch, stack_ready));
    describe_agents(&stack, events).await;
    let failure = steps::run_steps(&mut stack, scenario, events).await;
    Ok(Ran {
        stack,
        launch,
        stack_ready,
        stack_up,
        failure,
        secrets: events.secrets(),
        stops: None,
        code_coverage: None,
    })
}

/// Start the feed tap when a step observes a feed: subscribed to every feed the steps name,
/// before the first step runs.
async fn start_feed_tap(
    stack: &mut Stack,
    scenario: &Scenario,
) -> Result<(), crate::runtime::stack::StackError> {
    let mut feeds: Vec<(String, String)> = Vec::new();
    for (agent, feed) in scenario.steps.iter().filter_map(|s| s.kind.observed_feed()) {
        let pair = (agent.to_string(), feed.to_string());
        if !feeds.contains(&pair) {
            feeds.push(pair);
        }
    }
    if feeds.is_empty() {
        return Ok(());
    }
    stack.start_feed_tap(&feeds).await
}

/// The stack is ready: what it is, and where its images came from.
fn stack_ready_event(stack: &Stack, launch: &LaunchReport, after: Duration) -> RunEvent {
    let plan = stack.plan();
    RunEvent::StackReady {
        run_id: stack.run_id().to_string(),
        stack: plan
            .agents
            .iter()
            .map(|a| format!("{} ({})", a.instance_id, a.agent_class))
            .chain(std::iter::once(crate::plan::CROSSBAR.to_string()))
            .chain(
                plan.services
                    .iter()
                    .map(|s| format!("{} (service)", s.name)),
            )
            .collect(),
        images: plan
            .agents
            .iter()
            .map(|a| &a.container)
            .chain(std::iter::once(&plan.crossbar))
            .chain(plan.services.iter().map(|s| &s.container))
            .map(|c| (c.role.to_string(), c.image.clone()))
            .collect(),
        built: launch
            .built
            .iter()
            .map(|(image, took)| (image.clone(), took.as_secs_f64()))
            .collect(),
        after,
        crossbar_boot: stack.timings().crossbar_boot,
        registration: stack.timings().agent_registration.clone(),
        marks: stack.timings().marks.clone(),
    }
}

/// One [`RunEvent::AgentDescribed`] per agent that answers `get_api` (one that does not is
/// left out: the steps about it will say why).
async fn describe_agents(stack: &Stack, events: &Emitter<'_>) {
    for agent in &stack.plan().agents {
        let Ok(api) = stack.get_api(&agent.instance_id).await else {
            continue;
        };
        let agent_class = match (&agent.agent_class, &api.agent_class) {
            (planned, Some(told)) if planned.is_empty() => told.clone(),
            (planned, _) => planned.clone(),
        };
        events.emit(RunEvent::AgentDescribed {
            instance: agent.instance_id.clone(),
            agent_class,
            api,
        });
    }
}

/// Write the timeline, keep the stack (after a failure, when asked) or tear it down.
async fn finish(
    ran: Ran,
    tl: &Timeline,
    transcript: Transcript,
    options: &LaunchOptions,
    started: Instant,
) -> Result<RunReport, RunError> {
    let Ran {
        stack,
        launch,
        stack_ready,
        stack_up,
        failure,
        secrets,
        stops: _,
        code_coverage,
    } = ran;
    let run_id = stack.run_id().to_string();
    let run_dir = options.runs_dir.join(&run_id);
    let logs: Vec<crate::runtime::logs::LogLine> = stack
        .logs()
        .lines()
        .into_iter()
        .map(|l| crate::runtime::logs::LogLine {
            text: secrets.text(&l.text),
            ..l
        })
        .collect();
    let text = secrets.text(&timeline::render(&tl.merged(&logs)));
    let timeline = run_dir.join("timeline.log");
    let _ = std::fs::create_dir_all(&run_dir);
    if let Err(e) = std::fs::write(&timeline, &text) {
        tracing::warn!("cannot write {}: {e}", timeline.display());
    }
    let lines: Vec<&str> = text.lines().collect();
    let timeline_tail = lines[lines.len().saturating_sub(40)..]
        .iter()
        .map(|l| l.to_string())
        .collect();
    let teardown = |e: crate::runtime::stack::StackError| {
        RunError::Teardown(crate::runtime::display_chain(&e))
    };
    let kept = if failure.is_some() && options.keep_on_failure {
        Some(stack.keep().await.map_err(teardown)?)
    } else {
        stack.teardown().await.map_err(teardown)?;
        None
    };
    Ok(RunReport {
        transcript,
        failure,
        run_id,
        run_dir,
        stack_ready,
        stack_up,
        elapsed: own_time(started, options),
        images: launch.images,
        timeline,
        timeline_tail,
        kept,
        coverage: Coverage::default(),
        times: RunTimes::default(),
        logs,
        code_coverage,
    })
}

/// Write the run's times to `<run dir>/times.json` (what `--baseline-run` reads back).
fn write_times(run_dir: &std::path::Path, times: &RunTimes) {
    let path = run_dir.join(crate::budget::TIMES_FILE);
    let _ = std::fs::create_dir_all(run_dir);
    let written = serde_json::to_string_pretty(times)
        .map_err(std::io::Error::other)
        .and_then(|text| std::fs::write(&path, text));
    if let Err(e) = written {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

/// A run's own time since `started`: without its wait for a suite's worker.
fn own_time(started: Instant, options: &LaunchOptions) -> Duration {
    started.elapsed().saturating_sub(options.turn.waited())
}

/// The last event of a run (that took `elapsed`, when it could not run).
fn run_finished(
    scenario: &Scenario,
    result: &Result<RunReport, RunError>,
    elapsed: Duration,
) -> RunEvent {
    match result {
        Ok(report) => RunEvent::RunFinished {
            scenario: scenario.name.clone(),
            run_id: Some(report.run_id.clone()),
            passed: report.failure.is_none(),
            failed_step: report.failure.as_ref().map(|f| f.step),
            error: None,
            elapsed: report.elapsed,
        },
        Err(e) => RunEvent::RunFinished {
            scenario: scenario.name.clone(),
            run_id: None,
            passed: false,
            failed_step: None,
            error: Some(e.to_string()),
            elapsed,
        },
    }
}

/// A scenario that ran and failed: its first failing step and where to look. Shown as the
/// failure, the run's files and the end of its timeline (and how to reach a kept stack).
#[derive(Debug, Clone)]
pub struct ScenarioFailed {
    /// The scenario.
    pub scenario: String,
    /// The run id.
    pub run_id: String,
    /// The run's files.
    pub run_dir: std::path::PathBuf,
    /// The first failing step.
    pub failure: StepFailure,
    /// The run's timeline file.
    pub timeline: std::path::PathBuf,
    /// The timeline's last lines.
    pub timeline_tail: Vec<String>,
    /// How to reach the stack when it was kept after the failure.
    pub kept: Option<String>,
}

impl std::fmt::Display for ScenarioFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scenario {} failed (run {}, files in {}):\n{}\n--- timeline (last {} lines; all of it in {}) ---\n{}",
            self.scenario,
            self.run_id,
            self.run_dir.display(),
            self.failure,
            self.timeline_tail.len(),
            self.timeline.display(),
            self.timeline_tail.join("\n")
        )?;
        match &self.kept {
            Some(k) => write!(f, "\n{k}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ScenarioFailed {}

/// `Err` carrying the failure when the run failed.
pub fn into_result(report: &RunReport) -> Result<(), Box<ScenarioFailed>> {
    match &report.failure {
        None => Ok(()),
        Some(f) => Err(Box::new(ScenarioFailed {
            scenario: report.transcript.scenario.clone(),
            run_id: report.run_id.clone(),
            run_dir: report.run_dir.clone(),
            failure: f.clone(),
            timeline: report.timeline.clone(),
            timeline_tail: report.timeline_tail.clone(),
            kept: report.kept.clone(),
        })),
    }
}

#[cfg(test)]
mod tests;
