//! Running scenario files as tests, from Rust: [`scenario_test`] is what `ocs-harness test`
//! does for one file (run, JUnit, snapshot), shaped for a `#[test]`; [`scenario_files`] finds
//! the files. The engine helpers let a test check that nothing was left behind.

use std::path::{Path, PathBuf};

use crate::report::{write_junit_from_env, Case};
use crate::runner::{into_result, run};
use crate::runtime::LaunchOptions;
use crate::scenario::Scenario;
use crate::snapshot::{self, Mode};

pub use crate::runtime::engine::{docker, list_labelled};
pub use crate::runtime::engine::{LABEL_MANAGED, LABEL_PID, LABEL_ROLE, LABEL_RUN, LABEL_SCENARIO};

/// Run the scenario file at `path` as a test: bring its stack up, run its steps, tear it down,
/// write a JUnit file when `OCS_HARNESS_JUNIT_DIR` is set, and check the transcript against
/// `<scenario dir>/snapshots/<name>.snap` with insta's rules (the same files and content as
/// `ocs-harness test`: under `CI` a missing or changed snapshot fails and nothing is written;
/// otherwise the new content is left as `<name>.snap.new` for `cargo insta review`;
/// `INSTA_UPDATE=always` accepts it). Panics with a readable message on any failure.
pub async fn scenario_test(path: impl AsRef<Path>) {
    let path = path.as_ref();
    let scenario = Scenario::from_file(path).unwrap_or_else(|e| panic!("{e}"));
    let result = run(&scenario, &LaunchOptions::new(&scenario.name)).await;
    let case = Case::from_run(&scenario.name, path, &result);
    if let Err(e) = write_junit_from_env(&case) {
        panic!("the JUnit report could not be written: {e}");
    }
    let report = result.unwrap_or_else(|e| panic!("{e}"));
    if let Err(failure) = into_result(&report) {
        panic!("{failure}");
    }
    let accept = std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always");
    let mode = Mode::from_flags(accept, false);
    match snapshot::check(&scenario.path, &scenario.name, &report.transcript, mode) {
        Ok(outcome) if outcome.failed() => panic!("{}", outcome.summary()),
        Ok(_) => {}
        Err(e) => panic!(
            "the snapshot of {} could not be checked: {e}",
            path.display()
        ),
    }
}

/// The scenario files in `dir` (`*.yaml`, not `*.yaml.example`), sorted.
pub fn scenario_files(dir: impl AsRef<Path>) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}
