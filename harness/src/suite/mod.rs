//! The suite runner: scenarios run `jobs` at a time, each run's events passed to a
//! [`Reporter`](event::Reporter) as they happen, each passing run's transcript checked
//! against its snapshot, each run judged (its JUnit case, its page for the HTML report), and
//! the suite's coverage and time budgets reported; the outcome says what the suite found and
//! its exit class. `ocs-harness test`, `compare`, `bench` and [`crate::testing`] all run
//! scenarios through it; what they write (JUnit, HTML, summaries) is theirs.
//!
//! Nothing here reads the environment: the settings come in with the [`SuiteOptions`].

pub mod event;
mod exit;
mod schedule;
mod verdict;

mod coverage;

use std::path::PathBuf;
use std::time::Instant;

use crate::budget::{BudgetOptions, RunTimes};
use crate::config::Settings;
use crate::html;
use crate::report::Case;
use crate::runner::{RunError, RunReport};
use crate::scenario::Scenario;
use crate::snapshot::Mode;

pub use coverage::code_dir;
pub use event::{emit, silent, Event, SharedReporter};
pub use exit::Exit;
pub use schedule::{run_reported, Planned};
pub use verdict::{scenario_page, Checked};

/// What a suite is run with.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Runs at once (at least 1).
    pub jobs: usize,
    /// What to do with missing or changed snapshots; `None`: the snapshots are not checked.
    pub snapshots: Option<Mode>,
    /// The image set of every run (`--images`), unless a run has its own.
    pub images: Option<PathBuf>,
    /// The suite's log allow-list.
    pub log_allow: Vec<String>,
    /// The baseline and the growth rule of the time budgets.
    pub budgets: BudgetOptions,
    /// Where the baseline was read from, as the `time_budgets` event names it.
    pub baseline_path: Option<PathBuf>,
    /// Whether each run's page for the HTML report is made.
    pub pages: bool,
    /// `--coverage all`: an operation of a bundled agent class never exercised fails the suite.
    pub coverage_all: bool,
    /// Where the code coverage the runs collected is combined; `None`: it is not.
    pub code_coverage: Option<PathBuf>,
    /// `--crossbar shared`: each worker runs one crossbar and its runs take realms on it
    /// (see `runtime::hub`); a run that needs its own crossbar still gets one.
    pub shared_crossbar: bool,
    /// `--reuse`: the workers' crossbars are kept between invocations (see
    /// `runtime::hub::Hub::kept`); implies `shared_crossbar`.
    pub reuse_crossbar: bool,
    /// The harness's settings (read once by the caller).
    pub settings: Settings,
}

impl SuiteOptions {
    /// One run at a time, no snapshot check, no pages, nothing combined, with `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            jobs: 1,
            snapshots: None,
            images: None,
            log_allow: Vec::new(),
            budgets: BudgetOptions::default(),
            baseline_path: None,
            pages: false,
            coverage_all: false,
            code_coverage: None,
            shared_crossbar: false,
            reuse_crossbar: false,
            settings,
        }
    }
}

/// One finished run of a suite, as the runner left it and as the suite judged it.
#[derive(Debug)]
pub struct Finished {
    /// Its place in the suite's list of runs.
    pub index: usize,
    /// The scenario.
    pub scenario: Scenario,
    /// The runner's result.
    pub result: Result<RunReport, RunError>,
    /// The snapshot check, when it was made (snapshots checked and the steps passed).
    pub snapshot: Option<Checked>,
    /// Its JUnit case (failed by its snapshot too).
    pub case: Case,
    /// Its page for the HTML report, when pages are made.
    pub page: Option<html::ScenarioRun>,
}

/// What a suite found.
#[derive(Debug)]
pub struct SuiteOutcome {
    /// Every run, in the order given.
    pub runs: Vec<Finished>,
    /// The JUnit cases: the runs' and `code-coverage`'s by file, then `coverage`'s.
    pub cases: Vec<Case>,
    /// The operations the runs exercised.
    pub coverage: crate::coverage::Coverage,
    /// Why the `coverage` case failed, when it did.
    pub coverage_failure: Option<String>,
    /// When the suite started.
    pub started: Instant,
}

impl SuiteOutcome {
    /// The worst class among the cases.
    pub fn exit(&self) -> Exit {
        self.cases
            .iter()
            .filter_map(|c| c.failure.as_ref())
            .map(|f| Exit::from(f.kind))
            .max()
            .unwrap_or(Exit::Passed)
    }

    /// The runs' pages (taken: each once), by file.
    pub fn take_pages(&mut self) -> Vec<html::ScenarioRun> {
        let mut pages: Vec<html::ScenarioRun> =
            self.runs.iter_mut().filter_map(|r| r.page.take()).collect();
        pages.sort_by(|a, b| a.file.cmp(&b.file));
        pages
    }

    /// Emit `run_finished`: the totals, the time since the start and the exit code.
    pub fn finished(&self, reporter: &SharedReporter) {
        let count = |k: Option<Exit>| {
            self.cases
                .iter()
                .filter(|c| c.failure.as_ref().map(|f| Exit::from(f.kind)) == k)
                .count()
        };
        let (passed, failed) = (count(None), count(Some(Exit::Failed)));
        emit(
            reporter,
            Event::RunFinished {
                passed,
                failed,
                errors: self.cases.len() - passed - failed,
                elapsed: self.started.elapsed().as_secs_f64(),
                exit_code: self.exit().code(),
            },
        );
    }
}

/// Run `planned` as one suite with `options`, its events to `reporter`: `run_started`, each
/// run's events, the time budgets (with a baseline), the code coverage (when asked) and the
/// operations' coverage. `run_finished` is the caller's ([`SuiteOutcome::finished`]), once it
/// has written its reports. An error only when a run's task panicked.
pub async fn run(
    planned: Vec<Planned>,
    options: &SuiteOptions,
    reporter: &SharedReporter,
) -> anyhow::Result<SuiteOutcome> {
    let started = Instant::now();
    emit(
        reporter,
        Event::RunStarted {
            scenarios: planned.len(),
            jobs: options.jobs,
        },
    );
    let mut runs = schedule::run_all(planned, options, reporter).await?;
    let (coverage, mut times, collected) = gather(&runs);
    time_budgets(&mut times, options, reporter);
    let mut cases: Vec<Case> = runs.iter().map(|r| r.case.clone()).collect();
    if let Some(dir) = &options.code_coverage {
        cases.extend(coverage::code(collected, dir, &options.settings).await);
    }
    cases.sort_by(|a, b| a.file.cmp(&b.file));
    let coverage_case = coverage::operations(&coverage, options.coverage_all, reporter);
    let coverage_failure = coverage_case
        .as_ref()
        .and_then(|c| c.failure.as_ref())
        .map(|f| f.message.clone());
    cases.extend(coverage_case);
    runs.sort_by_key(|r| r.index);
    Ok(SuiteOutcome {
        runs,
        cases,
        coverage,
        coverage_failure,
        started,
    })
}

/// The coverage of the runs that got a stack, their times and the code coverage data they
/// collected, in the order they finished.
fn gather(
    runs: &[Finished],
) -> (
    crate::coverage::Coverage,
    Vec<RunTimes>,
    Vec<crate::runtime::codecov::Collected>,
) {
    let mut coverage = crate::coverage::Coverage::default();
    let mut times = Vec::new();
    let mut collected = Vec::new();
    for (run, report) in runs
        .iter()
        .filter_map(|r| r.result.as_ref().ok().map(|report| (r, report)))
    {
        coverage.merge(&report.coverage);
        let mut t = report.times.clone();
        t.scenario.clone_from(&run.scenario.name);
        times.push(t);
        collected.extend(report.code_coverage.clone());
    }
    (coverage, times, collected)
}

/// With a baseline: each run's durations against the baseline's (`time_budgets`), the times
/// sorted by scenario.
fn time_budgets(times: &mut [RunTimes], options: &SuiteOptions, reporter: &SharedReporter) {
    let Some(baseline) = &options.budgets.baseline else {
        return;
    };
    times.sort_by(|a, b| a.scenario.cmp(&b.scenario));
    let rule = &options.budgets.rule;
    emit(
        reporter,
        Event::TimeBudgets {
            baseline: options
                .baseline_path
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

#[cfg(test)]
mod tests;
