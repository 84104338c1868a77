//! The commands that are a call or two into the library: `images`, `bench`, `clean`,
//! `check`, `compare` and `run`, each with its exit class.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::report::{failure_kind, Case};
use crate::runtime::engine::{docker, remove_run, EngineSettings};
use crate::runtime::progress::AboveBars;
use crate::runtime::sweep::{sweep, Sweep};
use crate::runtime::LaunchOptions;
use crate::scenario::{check_file, Scenario, ScenarioErrors};
use clap::Args;

use super::exit::{Classify, CliError, Exit};
use super::github::Github;
use super::output::Style;
use super::reporter::{Human, Verbosity};
use crate::suite::{run_reported, scenario_page, SharedReporter};

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure: stacks (readiness split, latency, parallel scenarios; the default),
    /// images (no images → barebones green: recipes vs a registry's published images; needs
    /// an empty engine), compare (-j 1 vs -j 2), shards (1 vs 2 side by side), suite
    /// (`test DIR` vs `cargo test --test scenarios` vs one by one), crossbar (crossbar's boot,
    /// baseline vs candidate set), shared (`--crossbar private` vs `shared`), reuse (a cold
    /// scenario vs `--reuse` on a kept crossbar).
    #[arg(long, value_enum, default_value = "stacks")]
    what: crate::bench::modes::What,
    /// images: the loopback registry with the published-style images (`.ci/registry.sh start`).
    #[arg(long, env = "OCS_HARNESS_TEST_REGISTRY", value_name = "HOST:PORT")]
    registry: Option<String>,
    /// compare: the baseline image set.
    #[arg(long, default_value = "images/ocs-0.11.3.yaml")]
    baseline: PathBuf,
    /// compare: the candidate image set.
    #[arg(long, default_value = "images/default.yaml")]
    candidate: PathBuf,
    /// compare, shards, suite, shared, reuse: scenario files or directories (default:
    /// barebones and fake-data for compare, barebones for reuse, scenarios/ otherwise).
    #[arg(long = "scenario", value_name = "PATH")]
    scenarios: Vec<PathBuf>,
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
    #[command(flatten)]
    select: super::Selected,
    /// Where to write the Markdown summary.
    #[arg(long, default_value = "target/ocs-harness/compare.md")]
    summary: PathBuf,
    /// Write an HTML report into this directory: per scenario what changed and both runs'
    /// steps on one time axis, and each run's own page.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// A latency change counts when above this fraction of the baseline (and 2 s).
    #[arg(long, default_value_t = 0.5)]
    latency_ratio: f64,
    /// A candidate step or agent registration that took more than this many times the
    /// baseline's ...
    #[arg(long, value_name = "RATIO", default_value_t = crate::budget::DEFAULT_RATIO,
          value_parser = super::budget_ratio)]
    budget_ratio: f64,
    /// ... and more than this much longer is reported as slower.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = super::budget_floor)]
    budget_floor: std::time::Duration,
    /// Also fail on log lines that appeared or vanished, on latency changes and on slower
    /// steps.
    #[arg(long)]
    strict: bool,
    /// Scenario runs at once, both sides together (default: the machine's cores, at most 4).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
}

#[derive(Args)]
pub struct RunArgs {
    /// Use this image set file instead of the default images (also $OCS_HARNESS_IMAGES).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Scenario files or directories (a directory means its *.yaml and *.yml files), or name
    /// filters, as `test` takes them (but no default: name what to debug). Several scenarios
    /// run one after another, each to its end.
    #[arg(required_unless_present = "filters")]
    paths: Vec<String>,
    /// Only scenarios whose name contains this (repeatable; any matches).
    #[arg(long = "filter", value_name = "PATTERN")]
    filters: Vec<String>,
    /// Write a JUnit XML report (one testcase per scenario) to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write an HTML report into this directory (index.html and one page per scenario).
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// Print the normalised transcript (YAML) when the run ends.
    #[arg(long)]
    transcript: bool,
    /// Leave the stack running when a step fails, and print how to reach it.
    #[arg(long, env = "OCS_HARNESS_KEEP_ON_FAILURE")]
    keep_on_failure: bool,
}

#[derive(Args)]
pub struct JunitMergeArgs {
    /// The merged JUnit report to write.
    out: PathBuf,
    /// The JUnit reports to merge (e.g. `ocs-harness test --junit` of each shard).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Also write the Markdown summary to this file (e.g. "$GITHUB_STEP_SUMMARY").
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
}

/// `junit-merge`: an unreadable input is bad input (2); the merged counts decide nothing.
pub fn junit_merge(m: &JunitMergeArgs) -> Result<Exit, CliError> {
    let mut inputs = Vec::new();
    for path in &m.inputs {
        let xml = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
            .bad_input()?;
        inputs.push((path.display().to_string(), xml));
    }
    let merged = crate::report::merge_junit(&inputs)
        .map_err(anyhow::Error::msg)
        .bad_input()?;
    std::fs::write(&m.out, &merged.xml).infra()?;
    if let Some(summary) = &m.summary {
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(summary)
            .and_then(|mut f| f.write_all(merged.summary.as_bytes()))
            .infra()?;
    }
    println!("{}", merged.summary);
    eprintln!("ocs-harness: merged JUnit report in {}", m.out.display());
    Ok(Exit::Passed)
}

pub async fn images(set: Option<PathBuf>, prepare: bool) -> Result<Exit, CliError> {
    let mut options = LaunchOptions::from_settings("images", super::settings()).bad_input()?;
    if set.is_some() {
        options.images_file = set;
    }
    let (name, policy, images) = crate::runtime::resolve_image_set(&options, prepare)
        .await
        .map_err(|e| {
            let exit = match e {
                crate::runtime::LaunchError::ImageSet(_) => Exit::BadInput,
                _ => Exit::Infrastructure,
            };
            CliError::new(exit, anyhow::anyhow!(crate::runtime::display_chain(&e)))
        })?;
    println!("image set {name} (pull policy {policy})");
    for i in &images {
        println!(
            "{:<9}{}  {}  ({})",
            i.what,
            i.image,
            i.digest.as_deref().unwrap_or("-"),
            i.origin
        );
    }
    println!("(cache: {})", super::settings().cache_dir().display());
    Ok(Exit::Passed)
}

/// `images --cache-key`: the key and the images a CI cache of recipe-built images keeps.
pub async fn cache_key(set: Option<PathBuf>) -> Result<Exit, CliError> {
    let mut options = LaunchOptions::from_settings("images", super::settings()).bad_input()?;
    if set.is_some() {
        options.images_file = set;
    }
    let (set, _) = crate::runtime::chosen_image_set(&options)
        .await
        .map_err(|e| {
            let exit = match e {
                crate::runtime::LaunchError::ImageSet(_)
                | crate::runtime::LaunchError::Config(_) => Exit::BadInput,
                _ => Exit::Infrastructure,
            };
            CliError::new(exit, anyhow::anyhow!(crate::runtime::display_chain(&e)))
        })?;
    let images: Vec<String> = set.recipe_images().iter().map(|i| i.to_string()).collect();
    println!("key={}", set.cache_key().unwrap_or_default());
    println!("images={}", images.join(" "));
    Ok(Exit::Passed)
}

pub async fn bench(b: BenchArgs) -> Result<Exit, CliError> {
    if b.what != crate::bench::modes::What::Stacks {
        return bench_mode(b).await;
    }
    let options = crate::bench::BenchOptions {
        runs: b.runs,
        agents: b.agents,
        calls: b.calls,
        parallel: b.parallel,
        scenario: crate::bench::default_scenario().to_path_buf(),
        usual_way: !b.no_usual_way,
        settings: super::settings().clone(),
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

/// `bench --what images|compare|shards|suite|crossbar|shared|reuse`: the report printed and written to
/// `<report dir>/bench-<what>.md`, each command's output under `<report dir>/bench-<what>/`.
async fn bench_mode(b: BenchArgs) -> Result<Exit, CliError> {
    use clap::ValueEnum as _;
    let name = b
        .what
        .to_possible_value()
        .map_or_else(|| "mode".to_string(), |v| v.get_name().to_string());
    let dir = b.report.parent().unwrap_or(Path::new(".")).to_path_buf();
    let options = crate::bench::modes::ModeOptions {
        registry: b.registry,
        baseline: b.baseline,
        candidate: b.candidate,
        scenarios: b.scenarios,
        logs: dir.join(format!("bench-{name}")),
        runs: b.runs,
        settings: super::settings().clone(),
    };
    let md = crate::bench::modes::run(b.what, &options).await.infra()?;
    println!("{md}");
    let report = dir.join(format!("bench-{name}.md"));
    std::fs::write(&report, md).infra()?;
    eprintln!("ocs-harness: report in {}", report.display());
    Ok(Exit::Passed)
}

pub async fn clean(
    run: Option<String>,
    images: Option<crate::runtime::prune::ImageRule>,
) -> Result<Exit, CliError> {
    let settings = super::settings();
    let docker = docker(&EngineSettings::of(settings)).await.infra()?;
    let lines = match run {
        Some(run) => {
            let removed = remove_run(&docker, &run).await.infra()?;
            if removed.is_empty() {
                vec![]
            } else {
                vec![format!("removed run {run}: {}", removed.join(", "))]
            }
        }
        None => sweep(&docker, Sweep::AllButLive, settings).await.infra()?,
    };
    let mut lines = lines;
    if let Some(rule) = images {
        let pruned = crate::runtime::prune::remove_built_images(&docker, rule)
            .await
            .infra()?;
        for (name, _) in &pruned.removed {
            lines.push(format!("removed image {name}"));
        }
        lines.push(format!(
            "images: removed {}, {:.1} GB freed (layers shared with kept images stay); kept {} \
             harness image(s)",
            pruned.removed.len(),
            pruned.bytes() as f64 / 1e9,
            pruned.kept.len()
        ));
    }
    if lines.is_empty() {
        println!("nothing to clean");
    }
    for line in lines {
        println!("{line}");
    }
    Ok(Exit::Passed)
}

/// `check`: every selected file parsed and validated; each one's problems, or `ok`. A broken
/// file is reported whatever the name filters (its name is not known); selecting nothing is
/// bad input.
pub fn check(paths: &[String], filters: &[String], github: &Github) -> Result<Exit, CliError> {
    let sel = super::select::select(paths, filters, Path::new("scenarios"))
        .map_err(anyhow::Error::msg)
        .bad_input()?;
    let mut bad = 0;
    let (mut parsed, mut checked) = (0, 0);
    for file in &sel.files {
        match check_file(file, &super::settings().env) {
            Ok(s) => {
                parsed += 1;
                if !super::select::matches(&sel.filters, &s.name) {
                    continue;
                }
                checked += 1;
                println!(
                    "ok: {} ({} steps, {} agents)",
                    file.display(),
                    s.steps.len(),
                    s.stack.agents.len()
                );
            }
            Err(errors) => {
                bad += errors.len();
                eprintln!("{}", ScenarioErrors(errors.clone()));
                github.scenario_errors(&errors);
            }
        }
    }
    if bad > 0 {
        return Err(CliError::new(
            Exit::BadInput,
            anyhow::anyhow!("{bad} problem(s) found"),
        ));
    }
    if checked == 0 {
        return Err(CliError::new(
            Exit::BadInput,
            anyhow::anyhow!(super::select::none_selected(&sel, parsed)),
        ));
    }
    Ok(Exit::Passed)
}

/// `run`: one scenario after another, each step's result as it ends, no snapshot check.
///
/// It keeps its own loop rather than the suite runner's: each run's own lines (its transcript
/// with `--transcript`, where its files are, a failed run's error) are printed between runs,
/// with `--keep-on-failure` per run, and it reports no suite (no `run_started`, coverage or
/// `run_finished`); it shares the runner's pieces ([`run_reported`], [`scenario_page`]).
pub async fn run_all(
    args: RunArgs,
    verbosity: Verbosity,
    style: Style,
    github: &Github,
) -> Result<Exit, CliError> {
    let scenarios = super::test::scenarios(&args.paths, &args.filters, github)?;
    let human = Human::new(
        verbosity,
        style,
        Box::new(AboveBars::new(std::io::stdout())),
    );
    let reporter: SharedReporter = Arc::new(Mutex::new(github.wrap(Box::new(human))));
    let mut cases = Vec::new();
    let mut pages = Vec::new();
    let started = std::time::Instant::now();
    let mut failed: Vec<CliError> = Vec::new();
    for scenario in &scenarios {
        let (case, result, page) = run(scenario, &args, &reporter, github).await;
        pages.extend(page);
        if let Err(e) = result {
            if scenarios.len() > 1 {
                eprintln!("{}", e.error);
            }
            failed.push(e);
        }
        cases.push(case);
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, crate::report::junit("ocs-harness", &cases)).infra()?;
        eprintln!("ocs-harness: JUnit report in {}", path.display());
    }
    if let Some(dir) = &args.html {
        let suite = crate::html::Suite {
            scenarios: pages,
            coverage: None,
            coverage_failure: None,
            elapsed: started.elapsed().as_secs_f64(),
        };
        super::test::write_html(dir, &suite)?;
    }
    let worst = failed.iter().map(|e| e.exit).max();
    match (failed.len(), worst) {
        (0, _) | (_, None) => Ok(Exit::Passed),
        (1, Some(_)) if scenarios.len() == 1 => Err(failed.remove(0)),
        (n, Some(exit)) => Err(CliError::new(
            exit,
            anyhow::anyhow!("{n} of {} scenarios failed", scenarios.len()),
        )),
    }
}

/// Run one scenario, its steps reported as they end (the reporter's `scenario_started` and
/// `scenario_finished` too); its JUnit case, its result and (with `--html`) its page.
async fn run(
    scenario: &Scenario,
    args: &RunArgs,
    reporter: &SharedReporter,
    github: &Github,
) -> (Case, Result<(), CliError>, Option<crate::html::ScenarioRun>) {
    let file = &scenario.path;
    let mut options = LaunchOptions::with_settings(&scenario.name, super::settings());
    options.keep_on_failure |= args.keep_on_failure;
    if let Some(images) = &args.images {
        options.images_file = Some(images.clone());
    }
    eprintln!(
        "ocs-harness: running {} ({} steps)",
        file.display(),
        scenario.steps.len()
    );
    let (result, _, events) = run_reported(scenario, &options, reporter).await;
    let case = Case::from_run(&scenario.name, file, &result);
    let page = args
        .html
        .as_ref()
        .map(|_| scenario_page(scenario, &result, &case, None, events));
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let exit: Exit = failure_kind(&e).into();
            let kind = match exit {
                Exit::BadInput => "bad input",
                _ => "infrastructure",
            };
            github.run_error(file, &scenario.name, kind, &e.to_string());
            return (case, Err(CliError::new(exit, e)), page);
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
    if let Some(line) = crate::runtime::pull::proved_for_run(&report.run_id) {
        println!("{line}");
    }
    let result = crate::runner::into_result(&report)
        .map_err(|e| CliError::new(Exit::Failed, anyhow::anyhow!(e)));
    (case, result, page)
}

/// `compare`: the selected scenarios (as `test` selects them) on both image sets.
pub async fn compare(c: CompareArgs, github: &Github) -> Result<Exit, CliError> {
    use crate::compare::{self, CompareOptions, Verdict};
    let scenarios = super::test::scenarios(&c.select.paths, &c.select.filters, github)?;
    for set in [&c.baseline, &c.candidate] {
        crate::imageset::load(set).bad_input()?;
    }
    // Without an engine every run fails on both sides alike: say so instead of "changed".
    docker(&EngineSettings::of(super::settings()))
        .await
        .infra()?;
    let defaults = CompareOptions {
        settings: super::settings().clone(),
        ..CompareOptions::default()
    };
    let options = CompareOptions {
        latency_ratio: c.latency_ratio,
        budget: crate::budget::GrowthRule {
            ratio: c.budget_ratio,
            floor: c.budget_floor,
        },
        jobs: c.jobs.unwrap_or(defaults.jobs).max(1),
        ..defaults
    };
    let results = compare::compare(&c.baseline, &c.candidate, &scenarios, &options)
        .await
        .infra()?;
    let md = compare::markdown(&c.baseline, &c.candidate, &results);
    if let Some(dir) = c.summary.parent() {
        std::fs::create_dir_all(dir).infra()?;
    }
    std::fs::write(&c.summary, &md).infra()?;
    println!("{md}");
    eprintln!("ocs-harness: summary in {}", c.summary.display());
    if let Some(dir) = &c.html {
        let suite = crate::html::CompareSuite {
            baseline: c.baseline.display().to_string(),
            candidate: c.candidate.display().to_string(),
            scenarios: results
                .iter()
                .map(|r| crate::html::Comparison {
                    name: r.name.clone(),
                    verdict: compare::verdict_word(r).into(),
                    changed: r.changed(),
                    changes: compare::changes(r),
                    baseline: Some(r.baseline.page.clone()),
                    candidate: Some(r.candidate.page.clone()),
                })
                .collect(),
        };
        let index = crate::html::write_compare(dir, &suite)
            .map_err(|e| anyhow::anyhow!("writing the HTML report into {}: {e}", dir.display()))
            .infra()?;
        eprintln!("ocs-harness: HTML report in {}", index.display());
    }
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
