//! `ocs-harness test`: select scenario files, check them all before anything starts, run
//! them in parallel (each run is isolated: its own network and names), pass each run's
//! events to the reporter as they happen, check each passing run's transcript against its
//! snapshot, report the operation coverage of them all, write one JUnit report (and with
//! `--html` the HTML report), and exit with the worst class of outcome.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::coverage::Coverage;
use crate::html;
use crate::report::{Case, Failure, FailureKind};
use crate::runner::{self, RunError, RunEvent, RunReport};
use crate::runtime::LaunchOptions;
use crate::scenario::{Scenario, ScenarioError};

use super::exit::{Classify, CliError, Exit};
use super::github::Github;
use super::reporter::{Built, Event, Reporter, Status};
use super::select::{self, Partition};
use crate::snapshot::{self, Mode};

/// What `test` was asked to do.
#[derive(Debug, Clone)]
pub struct TestArgs {
    /// Files, directories and name filters, as given.
    pub paths: Vec<String>,
    /// `--filter` values.
    pub filters: Vec<String>,
    /// `-j`.
    pub jobs: Option<usize>,
    /// `--partition`.
    pub partition: Option<Partition>,
    /// What to do with missing or changed snapshots.
    pub snapshots: Mode,
    /// `--junit`.
    pub junit: Option<PathBuf>,
    /// `--html`: the directory of the HTML report.
    pub html: Option<PathBuf>,
    /// `--images`.
    pub images: Option<PathBuf>,
    /// `--code-coverage-dir`: where the combined code coverage reports go.
    pub code_coverage_dir: Option<PathBuf>,
    /// `--list`: print the selection and run nothing.
    pub list: bool,
    /// `--coverage all`: an operation of a bundled agent class never exercised fails the run.
    pub coverage_all: bool,
    /// `--log-allow`: the suite's log allow-list file.
    pub log_allow: Option<PathBuf>,
    /// `--baseline-run`: an earlier run whose times this one is held to.
    pub baseline_run: Option<PathBuf>,
    /// `--budget-ratio`, `--budget-floor`.
    pub budget_rule: crate::budget::GrowthRule,
    /// Annotations and the job summary under GitHub Actions (from the environment, read by
    /// the CLI).
    pub github: Github,
}

/// The reporter, shared by the runs.
pub type SharedReporter = Arc<Mutex<Box<dyn Reporter>>>;

fn emit(reporter: &SharedReporter, event: Event) {
    if let Ok(mut r) = reporter.lock() {
        r.event(&event);
    }
}

/// What the stack of a run was made of, from its `StackReady` event.
#[derive(Debug, Default)]
pub struct Images {
    /// The image of each container, by role.
    pub used: BTreeMap<String, String>,
    /// The images the run built.
    pub built: Vec<Built>,
}

/// Run `scenario`, passing its events to `reporter` as they happen; the stack's images and
/// every event, stamped (for the HTML report).
pub async fn run_reported(
    scenario: &Scenario,
    options: &LaunchOptions,
    reporter: &SharedReporter,
) -> (Result<RunReport, RunError>, Images, Vec<html::Stamped>) {
    let mut images = Images::default();
    let mut recorder = html::Recorder::default();
    let mut observer = |e: &RunEvent| {
        crate::runner::RunObserver::on_event(&mut recorder, e);
        if let RunEvent::StackReady {
            images: used,
            built,
            ..
        } = e
        {
            images.used = used.clone();
            images.built = built
                .iter()
                .map(|(image, seconds)| Built {
                    image: image.clone(),
                    seconds: *seconds,
                })
                .collect();
        }
        if let Some(event) = Event::run(&scenario.name, e) {
            emit(reporter, event);
        }
    };
    let result = runner::run_observed(scenario, options, &mut observer).await;
    (result, images, recorder.events)
}

/// A finished run as the HTML report shows it: its page, with the verdict of its JUnit case
/// (which also holds the snapshot check) and the snapshot's diff.
pub fn scenario_page(
    scenario: &Scenario,
    result: &Result<RunReport, RunError>,
    case: &Case,
    diff: Option<String>,
    events: Vec<html::Stamped>,
) -> html::ScenarioRun {
    let mut run = html::ScenarioRun::from_result(scenario, result, events);
    if let Some(f) = &case.failure {
        if f.kind == FailureKind::Snapshot {
            run.status = html::Status::Failed;
            run.kind = Some("snapshot".into());
            run.message = Some(f.message.clone());
        }
    }
    run.elapsed = case.time.max(run.elapsed);
    run.diff = diff;
    run
}

/// Write the HTML report of `suite` into `dir`; says where.
pub fn write_html(dir: &Path, suite: &html::Suite) -> Result<(), CliError> {
    let index = html::write(dir, suite)
        .map_err(|e| anyhow::anyhow!("writing the HTML report into {}: {e}", dir.display()))
        .infra()?;
    eprintln!("ocs-harness: HTML report in {}", index.display());
    Ok(())
}

/// Parse every selected file; every problem of every file is printed (and annotated under
/// GitHub Actions) before giving up; with the problems, for a job summary.
fn load(
    files: &[PathBuf],
    github: &Github,
) -> Result<Vec<Scenario>, (CliError, Vec<ScenarioError>)> {
    let mut scenarios = Vec::new();
    let mut bad = 0;
    let mut all = Vec::new();
    for file in files {
        match crate::scenario::check_file(file, &super::settings().env) {
            Ok(s) => scenarios.push(s),
            Err(errors) => {
                bad += 1;
                eprintln!("{}", crate::scenario::ScenarioErrors(errors.clone()));
                github.scenario_errors(&errors);
                all.extend(errors);
            }
        }
    }
    if bad > 0 {
        let e = CliError::new(
            Exit::BadInput,
            anyhow::anyhow!(
                "{bad} of {} scenario files have problems; nothing was run",
                files.len()
            ),
        );
        return Err((e, all));
    }
    Ok(scenarios)
}

/// What the paths and name filters of any command select (`test`'s discovery: files,
/// directories of `*.yaml`/`*.yml`, name filters, default `scenarios/`), parsed, in file
/// order. Selecting nothing is bad input, saying what was given and what to do.
pub fn scenarios(
    paths: &[String],
    filters: &[String],
    github: &Github,
) -> Result<Vec<Scenario>, CliError> {
    selected(paths, filters, github).map_err(|(e, _)| e)
}

fn selected(
    paths: &[String],
    filters: &[String],
    github: &Github,
) -> Result<Vec<Scenario>, (CliError, Vec<ScenarioError>)> {
    let sel = select::select(paths, filters, Path::new("scenarios"))
        .map_err(anyhow::Error::msg)
        .bad_input()
        .map_err(|e| (e, Vec::new()))?;
    let all = load(&sel.files, github)?;
    let count = all.len();
    let scenarios: Vec<Scenario> = all
        .into_iter()
        .filter(|s| select::matches(&sel.filters, &s.name))
        .collect();
    if scenarios.is_empty() {
        let e = CliError::new(
            Exit::BadInput,
            anyhow::anyhow!(select::none_selected(&sel, count)),
        );
        return Err((e, Vec::new()));
    }
    Ok(scenarios)
}

/// The scenarios this run takes, in file order: [`scenarios`], then this shard's (a shard
/// may be empty: more shards than files is a CI matrix, not a mistake).
pub fn selection(args: &TestArgs) -> Result<Vec<Scenario>, CliError> {
    let scenarios = match selected(&args.paths, &args.filters, &args.github) {
        Ok(s) => s,
        Err((e, errors)) => {
            if !args.list {
                args.github
                    .bad_input_summary(&errors, &format!("{:#}", e.error));
            }
            return Err(e);
        }
    };
    Ok(match args.partition {
        Some(p) => p.apply(scenarios),
        None => scenarios,
    })
}

/// Run `test`.
pub async fn test(args: &TestArgs, reporter: SharedReporter) -> Result<Exit, CliError> {
    let scenarios = selection(args)?;
    if args.list {
        for s in &scenarios {
            println!("{}\t{}", s.name, s.path.display());
        }
        return Ok(Exit::Passed);
    }
    if let Some(images) = &args.images {
        crate::imageset::load(images).bad_input()?;
    }
    let log_allow = log_allow(args)?;
    let budgets = crate::budget::BudgetOptions {
        baseline: match &args.baseline_run {
            Some(path) => Some(Arc::new(
                crate::budget::load_baseline(path)
                    .map_err(anyhow::Error::msg)
                    .bad_input()?,
            )),
            None => None,
        },
        rule: args.budget_rule,
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let started = Instant::now();
    emit(
        &reporter,
        Event::RunStarted {
            scenarios: scenarios.len(),
            jobs,
        },
    );
    let shared = Shared { log_allow, budgets };
    let (mut cases, coverage, mut pages, mut times, collected) =
        run_all(scenarios, jobs, args, &shared, &reporter).await?;
    if let Some(baseline) = &shared.budgets.baseline {
        times.sort_by(|a, b| a.scenario.cmp(&b.scenario));
        let rule = &shared.budgets.rule;
        emit(
            &reporter,
            Event::TimeBudgets {
                baseline: args
                    .baseline_run
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                rule: format!(
                    "× {} or + {}, whichever is larger",
                    rule.ratio,
                    crate::budget::secs(rule.floor.as_secs_f64())
                ),
                scenarios: times
                    .iter()
                    .map(|t| crate::budget::ScenarioGrowth::of(baseline, t, rule))
                    .collect(),
            },
        );
    }
    if let Some(case) = code_coverage(collected, args).await {
        cases.push(case);
    }
    cases.sort_by(|a, b| a.file.cmp(&b.file));
    let coverage_case = suite_coverage(&coverage, args.coverage_all, &reporter);
    if let Some(dir) = &args.html {
        pages.sort_by(|a, b| a.file.cmp(&b.file));
        let suite = html::Suite {
            scenarios: pages,
            coverage: (!coverage.is_empty()).then(|| coverage.to_string()),
            coverage_failure: coverage_case
                .as_ref()
                .and_then(|c| c.failure.as_ref())
                .map(|f| f.message.clone()),
            elapsed: started.elapsed().as_secs_f64(),
        };
        write_html(dir, &suite)?;
    }
    cases.extend(coverage_case);
    if let Some(path) = &args.junit {
        write_junit(path, &cases, &coverage.properties())
            .map_err(|e| anyhow::anyhow!("writing the JUnit report {}: {e}", path.display()))
            .infra()?;
    }
    let exit = cases
        .iter()
        .filter_map(|c| c.failure.as_ref())
        .map(|f| Exit::from(f.kind))
        .max()
        .unwrap_or(Exit::Passed);
    let count = |k: Option<Exit>| {
        cases
            .iter()
            .filter(|c| c.failure.as_ref().map(|f| Exit::from(f.kind)) == k)
            .count()
    };
    emit(
        &reporter,
        Event::RunFinished {
            passed: count(None),
            failed: count(Some(Exit::Failed)),
            errors: cases.len() - count(None) - count(Some(Exit::Failed)),
            elapsed: started.elapsed().as_secs_f64(),
            exit_code: exit.code(),
        },
    );
    Ok(exit)
}

/// Emit the suite's coverage; with `--coverage all`, a failed case `coverage` naming every
/// operation never exercised.
fn suite_coverage(coverage: &Coverage, all: bool, reporter: &SharedReporter) -> Option<Case> {
    let missing = if all { coverage.missing() } else { Vec::new() };
    emit(
        reporter,
        Event::Coverage {
            classes: coverage.clone(),
            missing: missing.clone(),
        },
    );
    if missing.is_empty() {
        return None;
    }
    let message = format!("--coverage all: never exercised: {}", missing.join(", "));
    Some(Case {
        name: "coverage".into(),
        file: String::new(),
        time: 0.0,
        failure: Some(Failure {
            kind: FailureKind::Assertion,
            details: format!(
                "{message}\nadd steps that start, stop, abort or refuse these operations"
            ),
            message,
        }),
        output: Some(coverage.to_string()),
        images: None,
    })
}

/// The suite's log allow-list (`--log-allow`), read before anything runs.
fn log_allow(args: &TestArgs) -> Result<Vec<String>, CliError> {
    match &args.log_allow {
        Some(path) => crate::logpolicy::read_allow_list(path)
            .map_err(anyhow::Error::msg)
            .bad_input(),
        None => Ok(Vec::new()),
    }
}

/// What every run of the suite shares besides the arguments.
struct Shared {
    /// The suite's log allow-list.
    log_allow: Vec<String>,
    /// The baseline and the growth rule.
    budgets: crate::budget::BudgetOptions,
}

/// Combine the code coverage data the runs collected, per measured package set, into
/// `--code-coverage-dir` (default `code-coverage/` next to the runs directory) and say so; a
/// failed case `code-coverage` when the combining fails or an agent left no data.
async fn code_coverage(
    collected: Vec<crate::runtime::codecov::Collected>,
    args: &TestArgs,
) -> Option<Case> {
    let first = collected.first()?;
    let dir = match &args.code_coverage_dir {
        Some(d) => d.clone(),
        None => {
            let runs = super::settings().config.runs_dir.clone();
            runs.parent()
                .map_or(runs.join("code-coverage"), |p| p.join("code-coverage"))
        }
    };
    let files: Vec<PathBuf> = collected.iter().flat_map(|c| c.files.clone()).collect();
    let mut problems: Vec<String> = collected.iter().flat_map(|c| c.problems.clone()).collect();
    let what = first.coverage.source.join(", ");
    let t = Instant::now();
    if files.is_empty() {
        if problems.is_empty() {
            problems.push("no run left coverage data to combine".into());
        }
    } else {
        let _ = std::fs::create_dir_all(&dir);
        let timeout = std::time::Duration::from_secs(300);
        match crate::runtime::codecov::combine(
            &first.coverage,
            &first.image,
            &files,
            &dir,
            timeout,
            &LaunchOptions::with_settings("code-coverage", super::settings()).engine,
        )
        .await
        {
            Ok(done) => {
                let totals = done.totals.map_or("(no totals)".to_string(), |t| {
                    format!(
                        "{} of {} lines covered ({:.1}%)",
                        t.covered_lines,
                        t.num_statements,
                        t.percent()
                    )
                });
                crate::runtime::notice::info(&format!(
                    "code coverage of {what}: {totals}, from {} data files of {} runs, \
                     combined in {:.1}s; reports in {} (coverage.xml, coverage.lcov, \
                     summary.txt)",
                    files.len(),
                    collected.len(),
                    t.elapsed().as_secs_f64(),
                    done.dir.display()
                ));
            }
            Err(e) => problems.push(crate::runtime::display_chain(&e)),
        }
    }
    if problems.is_empty() {
        return None;
    }
    for p in &problems {
        crate::runtime::notice::info(&format!("code coverage: {p}"));
    }
    let message = format!(
        "code coverage of {what} is incomplete: {}",
        problems.join("; ")
    );
    Some(Case {
        name: "code-coverage".into(),
        file: String::new(),
        time: t.elapsed().as_secs_f64(),
        failure: Some(Failure {
            kind: FailureKind::Assertion,
            details: format!(
                "{}\na run with `code-coverage:` must leave the data of every agent: each \
                 agent's image needs coverage.py, and each agent must stop cleanly",
                problems.join("\n")
            ),
            message,
        }),
        output: None,
        images: None,
    })
}

/// Run the scenarios, `jobs` at a time; each one's case as it finishes, the coverage of
/// them all, (with `--html`) each one's page, and the times of each run that got a stack.
async fn run_all(
    scenarios: Vec<Scenario>,
    jobs: usize,
    args: &TestArgs,
    shared: &Shared,
    reporter: &SharedReporter,
) -> Result<
    (
        Vec<Case>,
        Coverage,
        Vec<html::ScenarioRun>,
        Vec<crate::budget::RunTimes>,
        Vec<crate::runtime::codecov::Collected>,
    ),
    CliError,
> {
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut tasks = tokio::task::JoinSet::new();
    for scenario in scenarios {
        let permits = permits.clone();
        let reporter = reporter.clone();
        let images = args.images.clone();
        let log_allow = shared.log_allow.clone();
        let budgets = shared.budgets.clone();
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore stays open");
            emit(
                &reporter,
                Event::ScenarioStarted {
                    scenario: scenario.name.clone(),
                    file: scenario.path.display().to_string(),
                    steps: scenario.steps.len(),
                },
            );
            let mut options = LaunchOptions::with_settings(&scenario.name, super::settings());
            if images.is_some() {
                options.images_file = images;
            }
            options.log_allow = log_allow;
            options.budgets = budgets;
            let (result, images, events) = run_reported(&scenario, &options, &reporter).await;
            (scenario, result, images, events)
        });
    }
    let mut cases = Vec::new();
    let mut coverage = Coverage::default();
    let mut pages = Vec::new();
    let mut times = Vec::new();
    let mut collected = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (scenario, result, images, events) = joined
            .map_err(|e| anyhow::anyhow!("a scenario run panicked: {e}"))
            .infra()?;
        if let Ok(report) = &result {
            coverage.merge(&report.coverage);
            let mut t = report.times.clone();
            t.scenario.clone_from(&scenario.name);
            times.push(t);
            collected.extend(report.code_coverage.clone());
        }
        let (case, diff) = finish(&scenario, &result, images, args.snapshots, reporter);
        if args.html.is_some() {
            pages.push(scenario_page(&scenario, &result, &case, diff, events));
        }
        cases.push(case);
    }
    Ok((cases, coverage, pages, times, collected))
}

fn write_junit(
    path: &Path,
    cases: &[Case],
    properties: &[(String, String)],
) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        path,
        crate::report::junit_with("ocs-harness", cases, properties),
    )?;
    tracing::info!("JUnit report in {}", path.display());
    Ok(())
}

/// One finished run: its snapshot (when its steps passed), its `scenario_finished`, its
/// JUnit case and the snapshot's diff when it changed.
pub fn finish(
    scenario: &Scenario,
    result: &Result<RunReport, RunError>,
    images: Images,
    mode: Mode,
    reporter: &SharedReporter,
) -> (Case, Option<String>) {
    let mut case = Case::from_run(&scenario.name, &scenario.path, result);
    let (snapshot, diff) = match result {
        Ok(report) if report.failure.is_none() => check_snapshot(scenario, report, mode, &mut case),
        _ => (None, None),
    };
    let (status, kind) = match case.failure.as_ref().map(|f| f.kind) {
        None => (Status::Passed, None),
        Some(FailureKind::Assertion) => (Status::Failed, Some("assertion")),
        Some(FailureKind::Snapshot) => (Status::Failed, Some("snapshot")),
        Some(FailureKind::BadInput) => (Status::Error, Some("bad_input")),
        Some(FailureKind::Infrastructure) => (Status::Error, Some("infrastructure")),
    };
    let report = result.as_ref().ok();
    let details = match (&case.failure, result) {
        // The step's failure went out with its step; the run's files and timeline follow.
        (Some(f), Ok(report)) if f.kind == FailureKind::Assertion => Some(run_files(report)),
        (Some(f), Err(_)) => Some(f.details.clone()),
        _ => None,
    };
    emit(
        reporter,
        Event::ScenarioFinished {
            scenario: scenario.name.clone(),
            file: scenario.path.display().to_string(),
            status,
            kind,
            message: case.failure.as_ref().map(|f| f.message.clone()),
            details,
            snapshot,
            diff: diff.clone(),
            stack_ready: report.map(|r| r.stack_ready.as_secs_f64()),
            elapsed: report.map_or(case.time, |r| r.elapsed.as_secs_f64()),
            run_id: report.map(|r| r.run_id.clone()),
            images: images.used,
            built: images.built,
        },
    );
    (case, diff)
}

/// Check a passing run's transcript against its snapshot; a failed check fails `case`. The
/// check's summary and the diff of a changed snapshot.
fn check_snapshot(
    scenario: &Scenario,
    report: &RunReport,
    mode: Mode,
    case: &mut Case,
) -> (Option<String>, Option<String>) {
    let outcome = match snapshot::check(&scenario.path, &scenario.name, &report.transcript, mode) {
        Ok(outcome) => outcome,
        Err(e) => {
            case.failure = Some(Failure {
                kind: FailureKind::Infrastructure,
                message: format!("the snapshot could not be checked: {e}"),
                details: e.to_string(),
            });
            return (None, None);
        }
    };
    let diff = match &outcome {
        snapshot::Outcome::Changed { diff, .. } => Some(diff.clone()),
        _ => None,
    };
    if outcome.failed() {
        case.failure = Some(Failure {
            kind: FailureKind::Snapshot,
            message: outcome.summary(),
            details: match &diff {
                Some(d) => format!("{}\n{d}", outcome.summary()),
                None => outcome.summary(),
            },
        });
    }
    (Some(outcome.summary()), diff)
}

/// Where a failed run's files are, the tail of its timeline, and the kept stack if any.
fn run_files(report: &RunReport) -> String {
    let mut text = format!(
        "run {}, files in {}\n--- timeline (last {} lines; all of it in {}) ---\n{}",
        report.run_id,
        report.run_dir.display(),
        report.timeline_tail.len(),
        report.timeline.display(),
        report.timeline_tail.join("\n")
    );
    if let Some(k) = &report.kept {
        text.push_str(&format!("\n{k}"));
    }
    text
}
