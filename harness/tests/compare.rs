//! `ocs-harness compare` reports a seeded behavioural difference and exits non-zero: the
//! candidate image set changes one message of FakeDataAgent (images/seeded-difference.yaml).

use std::path::PathBuf;
use std::process::{Command, Output};

/// Run `ocs-harness compare` from the workspace root; its output and Markdown summary.
fn compare(name: &str, baseline: &str, candidate: &str, scenario: &str) -> (Output, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let summary = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}.md", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_ocs-harness"))
        .current_dir(&root)
        .args([
            "compare",
            "--baseline",
            baseline,
            "--candidate",
            candidate,
            "--summary",
        ])
        .arg(&summary)
        .arg(scenario)
        .output()
        .expect("ocs-harness runs");
    let md = std::fs::read_to_string(&summary).unwrap_or_else(|e| {
        panic!(
            "no summary ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, md)
}

#[test]
fn compare_reports_a_seeded_difference_and_exits_non_zero() {
    let (out, md) = compare(
        "compare",
        "images/default.yaml",
        "images/seeded-difference.yaml",
        "scenarios/fake-data.yaml",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "must fail; stderr:\n{stderr}");
    assert!(
        stderr.contains("1 of 1 scenarios changed behaviour"),
        "{stderr}"
    );
    assert!(md.contains("**1 of 1 scenarios changed**"), "{md}");
    assert!(
        md.contains("| fake-data | fails on candidate only |"),
        "{md}"
    );
    assert!(md.contains("+ Finished after 0.5 seconds"), "{md}");
    assert!(md.contains("- Exited after 0.5 seconds"), "{md}");
}

#[test]
fn compare_of_a_set_with_itself_finds_nothing() {
    let (out, md) = compare(
        "compare-same",
        "images/default.yaml",
        "images/default.yaml",
        "scenarios/param-errors.yaml",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    // Same behaviour; log lines may differ at the edges (a line still in flight at teardown).
    assert!(md.contains("| param-errors | same"), "{md}");
}
