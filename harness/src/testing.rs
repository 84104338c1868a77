//! Running scenario files as tests, from Rust: [`scenario_test`] is what `ocs-harness test`
//! does for one file (a suite of one: run, snapshot, JUnit), shaped for a `#[test]`;
//! [`scenario_files`] finds the files; [`main`] is a whole `harness = false` test target for a plugin's crate (every
//! scenario file of a directory, found when the test runs, one test each, with libtest's
//! command line: name filters, `--exact`, `--list`, `--test-threads`):
//!
//! ```toml
//! [[test]]
//! name = "scenarios"
//! harness = false
//! ```
//!
//! ```no_run
//! // tests/scenarios.rs
//! fn main() -> std::process::ExitCode {
//!     ocs_harness::testing::main("scenarios")
//! }
//! ```
//! The engine helpers let a test check that nothing was left behind.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

pub use crate::config::{Env, Settings};
use crate::report::{write_junit_in, Case};
use crate::runner::into_result;
use crate::runtime::engine::EngineSettings;
use crate::scenario::Scenario;
use crate::snapshot::Mode;
use crate::suite::{silent, Planned, SuiteOptions};

pub use crate::plan::{
    LABEL_BOOT, LABEL_HOST, LABEL_MANAGED, LABEL_OWNER, LABEL_PID, LABEL_PID_NS, LABEL_ROLE,
    LABEL_RUN, LABEL_SCENARIO,
};
pub use crate::runtime::engine::list_labelled;

/// The settings of this process's environment, for a test: what the CLI reads once in its
/// `main` ([`Settings::from_env`]).
pub fn settings() -> Settings {
    Settings::from_env()
}

/// The engine's client by this process's environment (see [`settings`]), or a clear error.
pub async fn docker() -> Result<testcontainers::bollard::Docker, crate::runtime::engine::EngineError>
{
    crate::runtime::engine::docker(&EngineSettings::of(&settings())).await
}

/// Why [`build_context_image`] failed. Its message holds every cause, once (so it exposes no
/// `source()`).
#[derive(Debug, thiserror::Error)]
pub enum BuildContextError {
    /// No engine answers.
    #[error("{}", crate::runtime::notice::display_chain(.0))]
    Engine(crate::runtime::engine::EngineError),
    /// The build failed.
    #[error("{}", crate::runtime::notice::display_chain(.0))]
    Image(crate::runtime::images::ImageError),
}

/// Build the image of an agent build context as a run builds it (Docker's `.dockerignore`
/// rules, the context tar, the classic builder) and return its tag: for tests that compare
/// the harness's context with `docker build`'s.
pub async fn build_context_image(context: &Path) -> Result<String, BuildContextError> {
    let docker = docker().await.map_err(BuildContextError::Engine)?;
    let overrides = crate::overrides::ImageOverrides::default();
    let no_args = std::collections::HashMap::new();
    crate::runtime::images::build_agent_image(&docker, context, None, &no_args, &overrides, None)
        .await
        .map(|built| built.image.to_string())
        .map_err(BuildContextError::Image)
}

/// Run the scenario file at `path` as a test: bring its stack up, run its steps, tear it down,
/// write a JUnit file when `OCS_HARNESS_JUNIT_DIR` is set (and the scenario's HTML page,
/// `<name>.html`, when `OCS_HARNESS_HTML_DIR` is), and check the transcript against
/// `<scenario dir>/snapshots/<name>.snap` with insta's rules (the same files and content as
/// `ocs-harness test`: under `CI` a missing or changed snapshot fails and nothing is written;
/// otherwise the new content is left as `<name>.snap.new` for `cargo insta review`;
/// `INSTA_UPDATE=always` accepts it). Panics with a readable message on any failure.
pub async fn scenario_test(path: impl AsRef<Path>) {
    let path = path.as_ref();
    let settings = Settings::from_env();
    let scenario = Scenario::from_file(path, &settings.env).unwrap_or_else(|e| panic!("{e}"));
    let html_dir = settings.html_dir();
    let mut options = SuiteOptions::new(settings.clone());
    options.budgets.baseline = baseline_of(&settings).map(std::sync::Arc::new);
    options.snapshots = Some(Mode::from_flags(settings.insta_accept(), settings.in_ci()));
    options.pages = html_dir.is_some();
    let outcome = crate::suite::run(vec![Planned::new(scenario)], &options, &silent())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let run = outcome.runs.into_iter().next().expect("one run");
    // The JUnit case holds the run's verdict; the snapshot's is the test's own (its panic).
    let case = Case::from_run(&run.scenario.name, path, &run.result);
    if let Err(e) = write_junit_in(settings.junit_dir().as_deref(), &case) {
        panic!("the JUnit report could not be written: {e}");
    }
    // The page is written once the verdict is known (the snapshot's included).
    if let (Some(dir), Some(page)) = (&html_dir, &run.page) {
        write_page(dir, &run.scenario.name, page);
    }
    let report = run.result.unwrap_or_else(|e| panic!("{e}"));
    if let Err(failure) = into_result(&report) {
        panic!("{failure}");
    }
    match run.snapshot {
        Some(Ok(outcome)) if outcome.failed() => panic!("{}", outcome.summary()),
        Some(Ok(_)) | None => {}
        Some(Err(e)) => panic!(
            "the snapshot of {} could not be checked: {e}",
            path.display()
        ),
    }
}

/// Write a scenario's HTML page, `<dir>/<name>.html`; panics naming it when it cannot.
fn write_page(dir: &Path, name: &str, page: &crate::html::ScenarioRun) {
    let file = dir.join(format!("{name}.html"));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&file, crate::html::render_scenario(page, dir, None)));
    if let Err(e) = written {
        panic!("the HTML page {} could not be written: {e}", file.display());
    }
}

/// `OCS_HARNESS_BASELINE_RUN`: the baseline a run's times are held to (as `test
/// --baseline-run`, with the default growth rule); unset or empty: none. Panics naming the
/// variable when it cannot be read.
fn baseline_of(settings: &Settings) -> Option<crate::budget::Baseline> {
    let path = settings.baseline_run()?;
    match crate::budget::load_baseline(&path) {
        Ok(baseline) => Some(baseline),
        Err(e) => panic!("{}: {e}", crate::config::BASELINE_RUN),
    }
}

/// The scenario files in `dir` (`*.yaml` and `*.yml`, as compose takes both; not
/// `*.yaml.example`), sorted. `ocs-harness test DIR` takes the same files.
pub fn scenario_files(dir: impl AsRef<Path>) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// A `harness = false` test target: every scenario file in `dir` (relative to the package
/// being tested) as one test named after the file, run by [`scenario_test`]; the process's
/// exit code.
pub fn main(dir: impl AsRef<Path>) -> ExitCode {
    let args = Arguments::from_args();
    let dir = package_dir(&Settings::from_env()).join(dir.as_ref());
    match trials(&dir) {
        Ok(trials) => libtest_mimic::run(&args, trials).exit_code(),
        Err(e) => {
            eprintln!(
                "error: cannot list the scenario files in {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// The package directory: `CARGO_MANIFEST_DIR` (cargo sets it for test binaries), else the
/// current directory.
fn package_dir(settings: &Settings) -> PathBuf {
    settings
        .env
        .var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// The scenario files of `dir`, one trial each, named after the file.
pub fn trials(dir: &Path) -> std::io::Result<Vec<Trial>> {
    Ok(scenario_files(dir)?
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            Trial::test(name, move || run_trial(&path))
        })
        .collect())
}

/// One trial: [`scenario_test`] on its own runtime, its panic as the failure.
fn run_trial(path: &Path) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("cannot start an async runtime: {e}")))?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(scenario_test(path))
    }))
    .map_err(|p| {
        let text = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the scenario failed".into());
        Failed::from(text)
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn every_scenario_file_is_a_trial_named_after_it() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let trials = super::trials(&dir).expect("scenarios/ is readable");
        let names: Vec<&str> = trials.iter().map(|t| t.name()).collect();
        assert!(names.contains(&"barebones"), "{names:?}");
        assert!(names.contains(&"plugin-compose"), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("reference")), "{names:?}");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(super::trials(&dir.join("missing")).is_err());
    }
}
