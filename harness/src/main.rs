//! The `ocs-harness` command line: build the offline images, run a scenario, clean up.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ocs_harness::recipes::ImageSet;
use ocs_harness::report::Case;
use ocs_harness::runtime::images::{cache_dir, ensure_base_images};
use ocs_harness::runtime::stack::{docker, remove_run};
use ocs_harness::runtime::sweep::{sweep, Sweep};
use ocs_harness::runtime::LaunchOptions;
use ocs_harness::scenario::{check_file, Scenario, ScenarioErrors};

#[derive(Parser)]
#[command(
    name = "ocs-harness",
    version,
    about = "Integration tests for dockerized OCS agent stacks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the local ocs and crossbar base images if they are missing, and print their tags.
    Images,
    /// Measure where a run's time goes (readiness split, floor, overhead, bridge latency,
    /// parallel scenarios, peak memory); prints a Markdown report.
    Bench {
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
    },
    /// Remove what earlier runs left (killed harness processes, kept stacks), and say what.
    /// Runs owned by a live harness process are left alone.
    Clean {
        /// Remove only this run (its id is in every container name: ocsh-<run>-...).
        #[arg(long)]
        run: Option<String>,
    },
    /// Validate scenario files without Docker; every mistake with file:line:column.
    Check {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run scenarios on two image sets and report what changed; exits non-zero when the
    /// behaviour changed (with --strict also on log or latency changes).
    Compare {
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
    },
    /// Run scenarios end to end, one after another: build, start, drive, check, tear down.
    Run {
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
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Images => images().await,
        Command::Bench {
            runs,
            agents,
            calls,
            parallel,
            report,
            no_usual_way,
        } => {
            let options = ocs_harness::bench::BenchOptions {
                runs,
                agents,
                calls,
                parallel,
                scenario: ocs_harness::bench::default_scenario().to_path_buf(),
                usual_way: !no_usual_way,
            };
            match ocs_harness::bench::run(&options).await {
                Ok((md, csv)) => {
                    println!("{md}");
                    if let Some(dir) = report.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let samples = report.with_file_name("bench-samples.csv");
                    std::fs::write(&report, md)
                        .and_then(|()| std::fs::write(&samples, csv))
                        .map_err(anyhow::Error::from)
                }
                Err(e) => Err(e),
            }
        }
        Command::Clean { run } => clean(run).await,
        Command::Check { files } => check(&files),
        Command::Run {
            images,
            files,
            junit,
            transcript,
            keep_on_failure,
        } => {
            let opts = RunFlags {
                images,
                show_transcript: transcript,
                keep_on_failure,
            };
            run_all(&files, junit.as_deref(), &opts).await
        }
        Command::Compare {
            baseline,
            candidate,
            files,
            summary,
            latency_ratio,
            strict,
        } => {
            compare(
                &baseline,
                &candidate,
                files,
                &summary,
                latency_ratio,
                strict,
            )
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages include their causes already; scenario errors carry their own prefix.
            let text = e.to_string();
            if text.starts_with("error:") {
                eprintln!("{text}");
            } else {
                eprintln!("error: {text}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn images() -> anyhow::Result<()> {
    let docker = docker().await?;
    let set = ImageSet::default();
    let base = ensure_base_images(&docker, &set, &|line| eprintln!("ocs-harness: {line}")).await?;
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
    Ok(())
}

async fn clean(run: Option<String>) -> anyhow::Result<()> {
    let docker = docker().await?;
    let lines = match run {
        Some(run) => {
            let removed = remove_run(&docker, &run).await?;
            if removed.is_empty() {
                vec![]
            } else {
                vec![format!("removed run {run}: {}", removed.join(", "))]
            }
        }
        None => sweep(&docker, Sweep::AllButLive).await?,
    };
    if lines.is_empty() {
        println!("nothing to clean");
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

fn check(files: &[PathBuf]) -> anyhow::Result<()> {
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
        anyhow::bail!("{bad} problem(s) found");
    }
    Ok(())
}

/// How `run` runs each scenario.
struct RunFlags {
    images: Option<PathBuf>,
    show_transcript: bool,
    keep_on_failure: bool,
}

async fn run_all(files: &[PathBuf], junit: Option<&Path>, flags: &RunFlags) -> anyhow::Result<()> {
    let mut cases = Vec::new();
    let mut failed = Vec::new();
    for file in files {
        let (name, result) = run(file, flags).await;
        if let Err(e) = &result {
            let text = e.to_string();
            if files.len() > 1 {
                eprintln!("{text}");
            }
            failed.push(text);
        }
        if let Some(case) = name {
            cases.push(case);
        }
    }
    if let Some(path) = junit {
        std::fs::write(path, ocs_harness::report::junit("ocs-harness", &cases))?;
        eprintln!("ocs-harness: JUnit report in {}", path.display());
    }
    match failed.len() {
        0 => Ok(()),
        1 if files.len() == 1 => Err(anyhow::anyhow!(failed.remove(0))),
        n => anyhow::bail!("{n} of {} scenarios failed", files.len()),
    }
}

/// Run one scenario; its JUnit case (when it could be parsed) and its result.
async fn run(file: &Path, flags: &RunFlags) -> (Option<Case>, anyhow::Result<()>) {
    let scenario = match Scenario::from_file(file) {
        Ok(s) => s,
        Err(e) => return (None, Err(anyhow::anyhow!("{e}"))),
    };
    let mut options = LaunchOptions::new(&scenario.name);
    options.keep_on_failure |= flags.keep_on_failure;
    if let Some(images) = &flags.images {
        options.images_file = Some(images.clone());
    }
    eprintln!(
        "ocs-harness: running {} ({} steps)",
        file.display(),
        scenario.steps.len()
    );
    let result = ocs_harness::runner::run(&scenario, &options).await;
    let case = Case::from_run(&scenario.name, file, &result);
    let report = match result {
        Ok(r) => r,
        Err(e) => return (Some(case), Err(e.into())),
    };
    for entry in &report.transcript.steps {
        let mark = match &report.failure {
            Some(f) if f.step == entry.step => "FAIL",
            _ => "ok",
        };
        println!("{mark:>4}  step {:>2}: {}", entry.step, entry.action);
    }
    if flags.show_transcript {
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
    let result = ocs_harness::runner::into_result(&report).map_err(|e| anyhow::anyhow!(e));
    (Some(case), result)
}

async fn compare(
    baseline: &Path,
    candidate: &Path,
    mut files: Vec<PathBuf>,
    summary: &Path,
    latency_ratio: f64,
    strict: bool,
) -> anyhow::Result<()> {
    use ocs_harness::compare::{self, CompareOptions, Verdict};
    for set in [baseline, candidate] {
        ocs_harness::imageset::load(set)?;
    }
    if files.is_empty() {
        let mut found: Vec<PathBuf> = std::fs::read_dir("scenarios")
            .map_err(|e| {
                anyhow::anyhow!("no scenario files given and scenarios/ cannot be read: {e}")
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        found.sort();
        files = found;
    }
    let mut scenarios = Vec::new();
    for f in &files {
        scenarios.push(Scenario::from_file(f).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let options = CompareOptions {
        latency_ratio,
        ..CompareOptions::default()
    };
    let results = compare::compare(baseline, candidate, &scenarios, &options).await;
    let md = compare::markdown(baseline, candidate, &results);
    if let Some(dir) = summary.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(summary, &md)?;
    println!("{md}");
    eprintln!("ocs-harness: summary in {}", summary.display());
    let behaviour = results
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Same))
        .count();
    let other = results.iter().filter(|c| c.changed()).count();
    if behaviour > 0 || (strict && other > 0) {
        anyhow::bail!(
            "{} of {} scenarios changed behaviour{}",
            behaviour,
            results.len(),
            if strict {
                format!(" ({other} changed in any way)")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
