//! The command line: arguments (clap), the exit-code classes, and one module per command that
//! is more than a call into the library. The binary stays thin: everything that touches
//! Docker is the library's.

mod commands;
mod exit;
mod github;
mod init;
mod output;
mod plan;
mod reporter;
mod select;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::{Args, Parser, Subcommand};

use crate::config::Settings;

use exit::{CliError, Exit};
use output::{ColorChoice, Format, Style};
use reporter::Verbosity;

#[derive(Parser)]
#[command(
    name = "ocs-harness",
    version,
    about = "Integration tests for dockerized OCS agent stacks",
    after_help = "Exit codes: 0 passed; 1 a scenario failed or `compare` found changed behaviour; \
                  2 bad input (usage, scenario, image-set file); 3 infrastructure (no engine, \
                  image build or pull, a stack that never became ready)."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Only failures and the summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Every step; -v also shows the harness's debug log (RUST_LOG overrides), -vv trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Colour: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    color: ColorChoice,
    /// Pull policy for published images: missing (the default; bare --pull), never, always
    /// (also $OCS_HARNESS_PULL; an image set's `pull:` otherwise).
    #[arg(long, global = true, value_name = "POLICY", num_args = 0..=1,
          default_missing_value = "missing",
          value_parser = ["missing", "never", "always"])]
    pull: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios as tests, in parallel, checking each transcript against its snapshot
    /// (`<scenario dir>/snapshots/<name>.snap`, the files `cargo test` checks).
    Test(TestCmd),
    /// Print what a run of a scenario would start, without Docker: images after overrides and
    /// where each comes from, containers, environment, mounts, site config, crossbar config.
    /// Several scenarios: one plan each, as YAML documents separated by `---`.
    Plan {
        #[command(flatten)]
        select: Selected,
        /// Use this image set file instead of the default images (also $OCS_HARNESS_IMAGES).
        #[arg(long)]
        images: Option<PathBuf>,
    },
    /// Print what an image set resolves to (name, digest, origin); with --pull or --build,
    /// make its images present first (a CI warm-up step).
    Images {
        /// upstream, local, auto (default) or an image set file (also $OCS_HARNESS_IMAGES).
        #[arg(long)]
        images: Option<PathBuf>,
        /// Build the recipe images the set refers to (and pull or load the others).
        #[arg(long)]
        build: bool,
        /// Print only `key=<cache key>` and `images=<recipe-built images>` (both empty for
        /// a set of published images), for a CI cache of the built images (`$GITHUB_OUTPUT`).
        #[arg(long, conflicts_with = "build")]
        cache_key: bool,
    },
    /// Measure where a run's time goes (readiness split, floor, overhead, bridge latency,
    /// parallel scenarios, peak memory); prints a Markdown report.
    Bench(commands::BenchArgs),
    /// Remove what earlier runs left (killed harness processes, kept stacks), and say what.
    /// Runs owned by a live harness process are left alone.
    Clean {
        /// Remove only this run (its id is in every container name: ocsh-<run>-...).
        #[arg(long)]
        run: Option<String>,
        /// Also remove the images the harness built that no container uses: agent images,
        /// images with `packages:`, untagged leftovers (not the recipe base images, which the
        /// next run needs; add --recipes for those too).
        #[arg(long)]
        images: bool,
        /// With --images: only images built longer ago than this (e.g. 7d, 12h; default: any).
        #[arg(long, value_parser = humantime::parse_duration, requires = "images")]
        older_than: Option<std::time::Duration>,
        /// With --images: the recipe base images (os, ocs, crossbar, ...) too.
        #[arg(long, requires = "images")]
        recipes: bool,
    },
    /// Validate scenario files without Docker; every mistake with file:line:column.
    Check {
        #[command(flatten)]
        select: Selected,
    },
    /// Run scenarios on two image sets and report what changed; exits 1 when the behaviour
    /// changed (with --strict also on log or latency changes).
    Compare(commands::CompareArgs),
    /// Debug one scenario (or a few, one after another): no snapshot check, can keep the
    /// stack on failure, can print the transcript. `test` is the command for CI.
    Run(commands::RunArgs),
    /// Write starter scenarios, the snapshot directory and a CI workflow for a plugin.
    Init(init::InitArgs),
    /// Merge JUnit reports (e.g. one per CI shard) into one, and print a Markdown summary
    /// (a table per report, then every case that did not pass) for the job summary.
    JunitMerge(commands::JunitMergeArgs),
}

/// The scenarios a command takes, as `test` takes them.
#[derive(Args)]
pub struct Selected {
    /// Scenario files or directories (a directory means its *.yaml and *.yml files); default
    /// scenarios/. An argument that names no file or directory (and has no `/`, `.yaml` or
    /// `.yml`) is a name filter, like `cargo test NAME`. Selecting nothing is an error (2).
    paths: Vec<String>,
    /// Only scenarios whose name contains this (repeatable; any matches).
    #[arg(long = "filter", value_name = "PATTERN")]
    filters: Vec<String>,
}

#[derive(Args)]
struct TestCmd {
    /// Scenario files or directories (a directory means its *.yaml and *.yml files); default
    /// scenarios/. An argument that names no file or directory (and has no `/`, `.yaml` or
    /// `.yml`) is a name filter, like `cargo test NAME`. Selecting nothing is an error (2).
    paths: Vec<String>,
    /// Run only scenarios whose name contains this (repeatable; any matches).
    #[arg(long = "filter", value_name = "PATTERN")]
    filters: Vec<String>,
    /// Scenarios run at once (default: the machine's cores).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// Run only shard k of N, by file (sorted selected files; file i goes to shard i % N + 1).
    #[arg(long, value_name = "k/N")]
    partition: Option<select::Partition>,
    /// A missing or changed snapshot is a failure and nothing is written (also CI=true).
    #[arg(long)]
    ci: bool,
    /// Write new and changed snapshots to their .snap files (and pass).
    #[arg(long, conflicts_with = "ci")]
    accept: bool,
    /// Write one JUnit XML report for the whole run to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write an HTML report into this directory: index.html for the suite and one
    /// self-contained page per scenario (timeline drawing, failure, steps, logs).
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// Use this image set file instead of the default images (also $OCS_HARNESS_IMAGES).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Where the combined Python code coverage reports of the runs with `code-coverage:` go
    /// (coverage.xml, coverage.lcov, summary.txt); default: `code-coverage/`
    /// next to the runs directory.
    #[arg(long, value_name = "DIR")]
    code_coverage_dir: Option<PathBuf>,
    /// Output: human lines, or one JSON event per line.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Print the selected scenarios (name, file) and run nothing.
    #[arg(long)]
    list: bool,
    /// `all`: fail when an operation of an agent class in the suite was never exercised
    /// (started, stopped, aborted or refused); the coverage table is printed either way.
    #[arg(long, value_name = "all", value_parser = ["all"])]
    coverage: Option<String>,
    /// A log allow-list file (one allowed substring per line, `#` comments), added to the
    /// built-in one for every scenario's log policy.
    #[arg(long, value_name = "FILE")]
    log_allow: Option<PathBuf>,
    /// An earlier run to hold this one to: a run directory (target/ocs-harness/runs/<id>), a
    /// directory of runs (each scenario's newest passing one), a times.json, or the output of
    /// `test --format json`. A step or an agent's registration that grew beyond the budget
    /// ratio fails its scenario.
    #[arg(long, value_name = "PATH")]
    baseline_run: Option<PathBuf>,
    /// With --baseline-run: a duration may take this many times its baseline ...
    #[arg(long, value_name = "RATIO", default_value_t = crate::budget::DEFAULT_RATIO,
          value_parser = budget_ratio)]
    budget_ratio: f64,
    /// ... or this much longer, whichever is more (so 10ms -> 30ms is noise).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = budget_floor)]
    budget_floor: std::time::Duration,
    /// `private`: each scenario boots a crossbar of its own. `shared`: each worker (see -j)
    /// boots one crossbar and its scenarios take WAMP realms on it in turn, each realm
    /// isolated; a scenario that touches crossbar's container (its logs, a fault, exec),
    /// another crossbar image or address root, or a kept failure still gets its own.
    #[arg(long, value_enum, default_value = "private")]
    crossbar: CrossbarMode,
    /// Keep each worker's crossbar running after the run, and use the one a previous
    /// `--reuse` run kept (implies `--crossbar shared`): re-running a scenario then costs its
    /// agents and steps, not crossbar's boot. `ocs-harness clean` removes kept crossbars; a
    /// later run removes them once older than OCS_HARNESS_KEEP_MAX_AGE.
    #[arg(long)]
    reuse: bool,
}

/// Where a suite's scenarios get their crossbar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CrossbarMode {
    /// One per scenario.
    Private,
    /// One per worker, a realm per scenario.
    Shared,
}

/// `--budget-ratio`: a number of at least 1.
fn budget_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 1.0 => Ok(r),
        _ => Err(format!(
            "`{s}` is not a ratio of at least 1 (e.g. 2 for twice the baseline, 1.5)"
        )),
    }
}

/// `--budget-floor`: a duration (`2s`, `500ms`).
fn budget_floor(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 2s or 500ms"))
}

/// The settings the command runs with: the environment and the global flags, read once by
/// [`main`] before anything else. The commands take what they need from here and pass it down
/// as values ([`LaunchOptions::with_settings`](crate::runtime::LaunchOptions::with_settings),
/// [`Scenario::from_file`](crate::scenario::Scenario::from_file)); nothing below reads it.
fn settings() -> &'static Settings {
    SETTINGS.get_or_init(Settings::default)
}

static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();

/// Parse the command line (usage errors exit 2, as clap does), run, map to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = Settings::from_env();
    if let Some(policy) = &cli.global.pull {
        // The flag wins over $OCS_HARNESS_PULL.
        settings = settings.with_var(crate::config::PULL, policy);
    }
    let settings = SETTINGS.get_or_init(|| settings);
    let prepare = cli.global.pull.is_some();
    let stderr_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let g = &cli.global;
    let env = &settings.env;
    output::init_tracing(
        g.verbose,
        g.quiet,
        output::use_color(g.color, stderr_terminal, env),
        env,
    );
    crate::runtime::progress::set_live(output::live_progress(
        g.color,
        g.quiet,
        stderr_terminal,
        env,
    ));
    let style = Style {
        color: output::use_color(g.color, output::stdout_is_terminal(), env),
    };
    let verbosity = match (g.quiet, g.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        _ => Verbosity::Verbose,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(CliError::new(Exit::Infrastructure, e)),
    };
    let github = github::Github::of(env);
    let result = runtime.block_on(dispatch(cli.command, verbosity, style, prepare, github));
    match result {
        Ok(exit) => exit.into(),
        Err(e) => report(e),
    }
}

fn report(e: CliError) -> ExitCode {
    // Every cause once (`{:#}` walks the chain); scenario errors carry their own `error:` prefix.
    let text = format!("{:#}", e.error);
    if text.starts_with("error:") {
        eprintln!("{text}");
    } else {
        eprintln!("error: {text}");
    }
    e.exit.into()
}

async fn dispatch(
    command: Command,
    verbosity: Verbosity,
    style: Style,
    pull: bool,
    github: github::Github,
) -> Result<Exit, CliError> {
    match command {
        Command::Test(t) => {
            let args = test::TestArgs {
                paths: t.paths,
                filters: t.filters,
                jobs: t.jobs,
                partition: t.partition,
                snapshots: crate::snapshot::Mode::from_flags(t.accept, t.ci || settings().in_ci()),
                junit: t.junit,
                html: t.html,
                images: t.images,
                code_coverage_dir: t.code_coverage_dir,
                list: t.list,
                coverage_all: t.coverage.is_some(),
                log_allow: t.log_allow,
                baseline_run: t.baseline_run,
                budget_rule: crate::budget::GrowthRule {
                    ratio: t.budget_ratio,
                    floor: t.budget_floor,
                },
                github: github.clone(),
                shared_crossbar: t.crossbar == CrossbarMode::Shared || t.reuse,
                reuse_crossbar: t.reuse,
            };
            let reporter = github.wrap(reporter::reporter(t.format, verbosity, style));
            let reporter = Arc::new(Mutex::new(reporter));
            test::test(&args, reporter).await
        }
        Command::Plan { select, images } => {
            let github = github.annotations_only();
            let scenarios = test::scenarios(&select.paths, &select.filters, &github)?;
            for (i, scenario) in scenarios.iter().enumerate() {
                if i > 0 {
                    println!("---");
                }
                print!("{}", plan::plan(scenario, images.clone())?);
            }
            Ok(Exit::Passed)
        }
        Command::Images {
            images,
            cache_key: true,
            ..
        } => commands::cache_key(images).await,
        Command::Images { images, build, .. } => commands::images(images, pull || build).await,
        Command::Bench(b) => commands::bench(b).await,
        Command::Clean {
            run,
            images,
            older_than,
            recipes,
        } => {
            let rule = images.then(|| crate::runtime::prune::ImageRule {
                older_than: older_than.unwrap_or_default(),
                recipes,
            });
            commands::clean(run, rule).await
        }
        Command::Check { select } => {
            commands::check(&select.paths, &select.filters, &github.annotations_only())
        }
        Command::Compare(c) => commands::compare(c, &github.annotations_only()).await,
        Command::Run(r) => commands::run_all(r, verbosity, style, &github.annotations_only()).await,
        Command::Init(i) => init::init(&i, verbosity, style).await,
        Command::JunitMerge(m) => commands::junit_merge(&m),
    }
}
