//! `ocs-harness test`: select scenario files, check them all before anything starts, run
//! them as one suite (`crate::suite`: in parallel, each run's events to the reporter as
//! they happen, each passing run's transcript against its snapshot, the operation coverage
//! of them all), write one JUnit report (and with `--html` the HTML report), and exit with
//! the worst class of outcome.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::html;
use crate::report::Case;
use crate::scenario::{Scenario, ScenarioError};
use crate::suite::{self, Planned, SuiteOptions};

use super::exit::{Classify, CliError, Exit};
use super::github::Github;
use super::select::{self, Partition};
use crate::snapshot::Mode;

pub use crate::suite::SharedReporter;

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
    /// `--crossbar shared`: one crossbar per worker.
    pub shared_crossbar: bool,
    /// `--reuse`: the workers' crossbars kept between invocations.
    pub reuse_crossbar: bool,
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
    let options = suite_options(args)?;
    let planned = scenarios.into_iter().map(Planned::new).collect();
    let mut outcome = suite::run(planned, &options, &reporter).await.infra()?;
    if let Some(dir) = &args.html {
        let suite = html::Suite {
            scenarios: outcome.take_pages(),
            coverage: (!outcome.coverage.is_empty()).then(|| outcome.coverage.to_string()),
            coverage_failure: outcome.coverage_failure.clone(),
            elapsed: outcome.started.elapsed().as_secs_f64(),
        };
        write_html(dir, &suite)?;
    }
    if let Some(path) = &args.junit {
        write_junit(path, &outcome.cases, &outcome.coverage.properties())
            .map_err(|e| anyhow::anyhow!("writing the JUnit report {}: {e}", path.display()))
            .infra()?;
    }
    outcome.finished(&reporter);
    Ok(outcome.exit())
}

/// The suite's options from the arguments and the settings; the image set, the log
/// allow-list and the baseline are read before anything runs.
fn suite_options(args: &TestArgs) -> Result<SuiteOptions, CliError> {
    if let Some(images) = &args.images {
        crate::imageset::load(images).bad_input()?;
    }
    let settings = super::settings();
    let mut options = SuiteOptions::new(settings.clone());
    options.log_allow = log_allow(args)?;
    options.budgets = crate::budget::BudgetOptions {
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
    options.baseline_path.clone_from(&args.baseline_run);
    options.jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    options.snapshots = Some(args.snapshots);
    options.images.clone_from(&args.images);
    options.pages = args.html.is_some();
    options.coverage_all = args.coverage_all;
    options.shared_crossbar = args.shared_crossbar;
    options.reuse_crossbar = args.reuse_crossbar;
    options.code_coverage = Some(suite::code_dir(args.code_coverage_dir.as_deref(), settings));
    Ok(options)
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
