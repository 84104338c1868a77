//! The commands that are a call or two into the library: `images`, `bench`, `clean`,
//! `check`, `compare` and `run`, each with its exit class.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::imageset::ImageSet;
use crate::report::{error_class, Case};
use crate::runtime::engine::{docker, remove_run};
use crate::runtime::images::{cache_dir, ensure_base_images};
use crate::runtime::sweep::{sweep, Sweep};
use crate::runtime::LaunchOptions;
use crate::scenario::{check_file, Scenario, ScenarioErrors};
use clap::Args;

use super::exit::{Classify, CliError, Exit};
use super::output::Style;
use super::reporter::{Human, Verbosity};
use super::test::{run_reported, SharedReporter};

#[derive(Args)]
pub struct BenchArgs {
    /// Runs per measurement (medians are reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Stack sizes, in agents.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    agents: Vec<usize>,
    /// Bridge calls per latency measurement.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Scenarios run at once.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    parallel: Vec<usize>,
    /// Where to write the report as well.
    #[arg(long, default_value = "target/ocs-harness/bench.md")]
    report: PathBuf,
    /// Skip the usual-way comparison (docker compose + ocs's Python test helpers).
    #[arg(long)]
    no_usual_way: bool,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The image set file to compare against (e.g. images/ocs-0.11.3.yaml).
    #[arg(long)]
    baseline: PathBuf,
    /// The image set file under test (e.g. images/default.yaml).
    #[arg(long)]
    candidate: PathBuf,
    /// Scenario files (default: scenarios/*.yaml).
    files: Vec<PathBuf>,
    /// Where to write the Markdown summary.
    #[arg(long, default_value = "target/ocs-harness/compare.md")]
    summary: PathBuf,
    /// A latency change counts when above this fraction of the baseline (and 2 s).
    #[arg(long, default_value_t = 0.5)]
    latency_ratio: f64,
    /// Also fail on log lines that appeared or vanished and on latency changes.
    #[arg(long)]
    strict: bool,
}

#[derive(Args)]
pub struct RunArgs {
    /// Use this image set file instead of the default images (also $OCS_HARNESS_IMAGES).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Scenario files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write a JUnit XML report (one testcase per scenario) to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Print the normalised transcript (YAML) when the run ends.
    #[arg(long)]
    transcript: bool,
    /// Leave the stack running when a step fails, and print how to reach it.
    #[arg(long, env = "OCS_HARNESS_KEEP_ON_FAILURE")]
    keep_on_failure: bool,
}

pub async fn images() -> Result<Exit, CliError> {
    let docker = docker().await.infra()?;
    let set = ImageSet::default();
    let base = ensure_base_images(&docker, &set, &|line| eprintln!("ocs-harness: {line}"))
        .await
        .infra()?;
    for (image, took) in &base.built {
        println!("built   {image} in {:.1}s", took.as_secs_f64());
    }
    println!("ocs      {}", base.ocs);
    println!("crossbar {}", base.crossbar);
    println!(
        "(cache: {}; {:.2}s on images)",
        cache_dir().display(),
        base.elapsed.as_secs_f64()
    );
    for (from, to) in set.overrides().entries() {
        println!("override {from} -> {to}");
    }
    Ok(Exit::Passed)
}

pub async fn bench(b: BenchArgs) -> Result<Exit, CliError> {
    let options = crate::bench::BenchOptions {
        runs: b.runs,
        agents: b.agents,
        calls: b.calls,
        parallel: b.parallel,
        scenario: crate::bench::default_scenario().to_path_buf(),
        usual_way: !b.no_usual_way,
    };
    let (md, csv) = crate::bench::run(&options).await.infra()?;
    println!("{md}");
    if let Some(dir) = b.report.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let samples = b.report.with_file_name("bench-samples.csv");
    std::fs::write(&b.report, md)
        .and_then(|()| std::fs::write(&samples, csv))
        .infra()?;
    Ok(Exit::Passed)
}

pub async fn clean(run: Option<String>) -> Result<Exit, CliError> {
    let docker = docker().await.infra()?;
    let lines = match run {
        Some(run) => {
            let removed = remove_run(&docker, &run).await.infra()?;
            if removed.is_empty() {
                vec![]
            } else {
                vec![format!("removed run {run}: {}", removed.join(", "))]
            }
        }
        None => sweep(&docker, Sweep::AllButLive).await.infra()?,
    };
    if lines.is_empty() {
        println!("nothing to clean");
    }
    for line in lines {
        println!("{line}");
    }
    Ok(Exit::Passed)
}

pub fn check(files: &[PathBuf]) -> Result<Exit, CliError> {
    let mut bad = 0;
    for file in files {
        match check_file(file) {
            Ok(s) => println!(
                "ok: {} ({} steps, {} agents)",
                file.display(),
                s.steps.len(),
                s.stack.agents.len()
            ),
            Err(errors) => {
                bad += errors.len();
                eprintln!("{}", ScenarioErrors(errors));
            }
        }
    }
    if bad > 0 {
        return Err(CliError::new(
            Exit::BadInput,
            anyhow::anyhow!("{bad} problem(s) found"),
        ));
    }
    Ok(Exit::Passed)
}

/// `run`: one scenario after another, each step's result as it ends, no snapshot check.
pub async fn run_all(args: RunArgs, verbosity: Verbosity, style: Style) -> Result<Exit, CliError> {
    let human = Human::new(verbosity, style, Box::new(std::io::stdout()));
    let reporter: SharedReporter = Arc::new(Mutex::new(Box::new(human)));
    let mut cases = Vec::new();
    let mut failed: Vec<CliError> = Vec::new();
    for file in &args.files {
        let (case, result) = run(file, &args, &reporter).await;
        if let Err(e) = result {
            if args.files.len() > 1 {
                eprintln!("{}", e.error);
            }
            failed.push(e);
        }
        cases.extend(case);
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, crate::report::junit("ocs-harness", &cases)).infra()?;
        eprintln!("ocs-harness: JUnit report in {}", path.display());
    }
    let worst = failed.iter().map(|e| e.exit).max();
    match (failed.len(), worst) {
        (0, _) | (_, None) => Ok(Exit::Passed),
        (1, Some(_)) if args.files.len() == 1 => Err(failed.remove(0)),
        (n, Some(exit)) => Err(CliError::new(
            exit,
            anyhow::anyhow!("{n} of {} scenarios failed", args.files.len()),
        )),
    }
}

/// Run one scenario, its steps reported as they end; its JUnit case (when it could be
/// parsed) and its result.
async fn run(
    file: &Path,
    args: &RunArgs,
    reporter: &SharedReporter,
) -> (Option<Case>, Result<(), CliError>) {
    let scenario = match Scenario::from_file(file) {
        Ok(s) => s,
        Err(e) => {
            return (
                None,
                Err(CliError::new(Exit::BadInput, anyhow::anyhow!("{e}"))),
            )
        }
    };
    let mut options = LaunchOptions::new(&scenario.name);
    options.keep_on_failure |= args.keep_on_failure;
    if let Some(images) = &args.images {
        options.images_file = Some(images.clone());
    }
    eprintln!(
        "ocs-harness: running {} ({} steps)",
        file.display(),
        scenario.steps.len()
    );
    let (result, _) = run_reported(&scenario, &options, reporter).await;
    let case = Case::from_run(&scenario.name, file, &result);
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let exit = error_class(&e).into();
            return (Some(case), Err(CliError::new(exit, e)));
        }
    };
    if args.transcript {
        match serde_saphyr::to_string(&report.transcript) {
            Ok(t) => println!("{t}"),
            Err(e) => eprintln!("ocs-harness: cannot print the transcript: {e}"),
        }
    }
    println!(
        "stack ready in {:.1}s, run took {:.1}s (run {}, files in {})",
        report.stack_ready.as_secs_f64(),
        report.elapsed.as_secs_f64(),
        report.run_id,
        report.run_dir.display()
    );
    let result = crate::runner::into_result(&report)
        .map_err(|e| CliError::new(Exit::Failed, anyhow::anyhow!(e)));
    (Some(case), result)
}

pub async fn compare(c: CompareArgs) -> Result<Exit, CliError> {
    use crate::compare::{self, CompareOptions, Verdict};
    for set in [&c.baseline, &c.candidate] {
        crate::imageset::load(set).bad_input()?;
    }
    // Without an engine every run fails on both sides alike: say so instead of "changed".
    docker().await.infra()?;
    let mut files = c.files;
    if files.is_empty() {
        let sel = super::select::select(&[], &[], Path::new("scenarios"))
            .map_err(anyhow::Error::msg)
            .bad_input()?;
        files = sel.files;
    }
    let mut scenarios = Vec::new();
    for f in &files {
        scenarios.push(
            Scenario::from_file(f)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .bad_input()?,
        );
    }
    let options = CompareOptions {
        latency_ratio: c.latency_ratio,
        ..CompareOptions::default()
    };
    let results = compare::compare(&c.baseline, &c.candidate, &scenarios, &options).await;
    let md = compare::markdown(&c.baseline, &c.candidate, &results);
    if let Some(dir) = c.summary.parent() {
        std::fs::create_dir_all(dir).infra()?;
    }
    std::fs::write(&c.summary, &md).infra()?;
    println!("{md}");
    eprintln!("ocs-harness: summary in {}", c.summary.display());
    let behaviour = results
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Same))
        .count();
    let other = results.iter().filter(|c| c.changed()).count();
    if behaviour > 0 || (c.strict && other > 0) {
        return Err(CliError::new(
            Exit::Failed,
            anyhow::anyhow!(
                "{} of {} scenarios changed behaviour{}",
                behaviour,
                results.len(),
                if c.strict {
                    format!(" ({other} changed in any way)")
                } else {
                    String::new()
                }
            ),
        ));
    }
    Ok(Exit::Passed)
}
