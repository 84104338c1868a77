//! Scenario files as `cargo test` tests in a plugin's own crate: one `harness = false` test
//! target whose `main` calls [`main`]. The scenario files are found when the test runs (no
//! build script, no copied test file: a new file is a new test), each runs as one test
//! (libtest-mimic: name filters, `--exact`, `--list`, `--test-threads` as with the built-in
//! harness), and its transcript is checked against `<dir>/snapshots/<name>.snap` with insta,
//! exactly as the harness's own tests and `ocs-harness test` check it. With
//! `OCS_HARNESS_JUNIT_DIR` set, each scenario also leaves a JUnit file.
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

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::runner;
use crate::runtime::LaunchOptions;
use crate::scenario::Scenario;

/// Run every `*.yaml` scenario file in `dir` (relative to the package being tested) as a test,
/// with the command line of a test binary; the process's exit code.
pub fn main(dir: impl AsRef<Path>) -> ExitCode {
    let args = Arguments::from_args();
    let trials = match trials(&package_dir().join(dir.as_ref())) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    libtest_mimic::run(&args, trials).exit_code()
}

/// The package directory: `CARGO_MANIFEST_DIR` (cargo sets it for test binaries), else the
/// current directory.
fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// The scenario files of `dir` (`*.yaml`, sorted), one test each, named after the file.
pub fn trials(dir: &Path) -> std::io::Result<Vec<Trial>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && p.is_file())
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            Trial::test(name, move || run_scenario(&path).map_err(Failed::from))
        })
        .collect())
}

/// Run one scenario file and check its transcript against its snapshot.
pub fn run_scenario(path: &Path) -> Result<(), String> {
    let scenario = Scenario::from_file(path).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start an async runtime: {e}"))?;
    let result = rt.block_on(runner::run(&scenario, &LaunchOptions::new(&scenario.name)));
    let case = crate::report::Case::from_run(&scenario.name, path, &result);
    crate::report::write_junit_from_env(&case)
        .map_err(|e| format!("cannot write the JUnit report: {e}"))?;
    let report = result.map_err(|e| e.to_string())?;
    runner::into_result(&report)?;
    // insta takes a relative snapshot path as relative to this source file.
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let snapshots = abs.parent().unwrap_or(Path::new(".")).join("snapshots");
    let check = std::panic::catch_unwind(|| {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(snapshots);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_input_file(path);
        settings.bind(|| insta::assert_yaml_snapshot!(scenario.name.clone(), report.transcript));
    });
    check.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the transcript does not match its snapshot".into())
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
