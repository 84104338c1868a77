//! One test per scenario file under `scenarios/` and `scenarios/upstream/`: a new file is a new
//! test, named after it. Each brings its stack up on real containers, runs the steps, tears the
//! stack down, then compares the normalised transcript with `<its directory>/snapshots/<name>.snap`
//! (insta; accept changes with `cargo insta review`).

use std::path::PathBuf;

use ocs_harness::{into_result, run, LaunchOptions, Scenario};
use rstest::rstest;

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario(#[files("../scenarios/*.yaml")] path: PathBuf) {
    ocs_harness::testing::scenario_test(path).await;
}

/// The port of ocs's own integration suite (`scenarios/upstream/`, see its README).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream(#[files("../scenarios/upstream/*.yaml")] path: PathBuf) {
    ocs_harness::testing::scenario_test(path).await;
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
    let scenario = Scenario::from_str(&broken, &path, &ocs_harness::testing::settings().env)
        .unwrap_or_else(|e| panic!("{e}"));
    let report = run(&scenario, &LaunchOptions::new("barebones-broken"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let failure = into_result(&report)
        .expect_err("the broken copy must fail")
        .to_string();
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
