//! One test per scenario file under `scenarios/`: a new file is a new test, named after it.
//! Each brings its stack up on real containers, runs the steps, tears the stack down, then
//! compares the normalised transcript with `scenarios/snapshots/<name>.snap` (insta; accept
//! changes with `cargo insta review`).

use std::path::PathBuf;

use ocs_harness::runner;
use ocs_harness::runtime::LaunchOptions;
use ocs_harness::scenario::Scenario;
use rstest::rstest;

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario(#[files("../scenarios/*.yaml")] path: PathBuf) {
    let scenario = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let result = runner::run(&scenario, &LaunchOptions::new(&scenario.name)).await;
    // With OCS_HARNESS_JUNIT_DIR set, each scenario leaves a JUnit file for CI reporting.
    let case = ocs_harness::report::Case::from_run(&scenario.name, &path, &result);
    ocs_harness::report::write_junit_from_env(&case).expect("the JUnit report is written");
    let report = result.unwrap_or_else(|e| panic!("{e}"));
    if let Err(failure) = runner::into_result(&report) {
        panic!("{failure}");
    }
    let snapshots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/snapshots");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshots);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(&path);
    settings.bind(|| insta::assert_yaml_snapshot!(scenario.name.clone(), report.transcript));
}

/// A deliberately broken copy of the barebones scenario (one expected message changed) must
/// fail at that step, with a diff of expected and actual messages, and leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_copy_fails_with_a_readable_diff() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/barebones.yaml");
    let text = std::fs::read_to_string(&path).expect("barebones.yaml is readable");
    let broken = text.replacen(
        "          - Acquisition exited cleanly.",
        "          - Acquisition exited badly.",
        1,
    );
    assert_ne!(broken, text, "the edit applies");
    let scenario = Scenario::from_str(&broken, &path).unwrap_or_else(|e| panic!("{e}"));
    let report = runner::run(&scenario, &LaunchOptions::new("barebones-broken"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let failure = runner::into_result(&report).expect_err("the broken copy must fail");
    eprintln!("{failure}");
    let step = report.failure.as_ref().expect("a failing step");
    assert_eq!(step.action, "wait barebones1.count (timeout 20s)");
    assert!(failure.contains("Acquisition exited badly."), "{failure}");
    assert!(failure.contains("Acquisition exited cleanly."), "{failure}");
    assert!(
        failure.contains("last log lines of barebones1"),
        "{failure}"
    );
    assert_eq!(
        report.transcript.steps.len(),
        step.step,
        "the run stops at the failing step"
    );
}
