//! `ocs-harness compare` reports a seeded behavioural difference and exits non-zero: the
//! candidate image set changes one message of FakeDataAgent (images/seeded-difference.yaml).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn compare_reports_a_seeded_difference_and_exits_non_zero() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let summary = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("compare-{}.md", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_ocs-harness"))
        .current_dir(&root)
        .args([
            "compare",
            "--baseline",
            "images/default.yaml",
            "--candidate",
            "images/seeded-difference.yaml",
            "--summary",
        ])
        .arg(&summary)
        .arg("scenarios/fake-data.yaml")
        .output()
        .expect("ocs-harness runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "must fail; stderr:\n{stderr}");
    assert!(
        stderr.contains("1 of 1 scenarios changed behaviour"),
        "{stderr}"
    );
    let md = std::fs::read_to_string(&summary).expect("summary written");
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
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let summary = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("compare-same-{}.md", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_ocs-harness"))
        .current_dir(&root)
        .args([
            "compare",
            "--baseline",
            "images/default.yaml",
            "--candidate",
            "images/default.yaml",
            "--summary",
        ])
        .arg(&summary)
        .arg("scenarios/param-errors.yaml")
        .output()
        .expect("ocs-harness runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let md = std::fs::read_to_string(&summary).expect("summary written");
    // Same behaviour; log lines may differ at the edges (a line still in flight at teardown).
    assert!(md.contains("| param-errors | same"), "{md}");
}
