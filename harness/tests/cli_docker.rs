//! The binary is the product: a Python-only project (a throwaway directory with the ocs
//! documentation's dockerized barebones agent, a scenario, no Cargo files) is tested with the
//! built binary alone, on real containers. `--accept` records the snapshot, byte-identical in
//! content to the one `cargo test` keeps for the same scenario; under `CI=true` the run is
//! green; a changed snapshot then fails with exit 1 and a diff, next to a failing expectation,
//! both in the JSON events and the JUnit report; `--accept` records the change back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ocs-harness");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn harness(project: &Path, ci: bool, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(project)
        .env("OCS_HARNESS_RUNS_DIR", project.join("runs"))
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .env_remove("TF_BUILD");
    if ci {
        c.env("CI", "true");
    }
    let out = c.output().expect("the binary runs");
    eprintln!(
        "$ ocs-harness {} (CI={ci}) -> {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `project/agent/` (Dockerfile and agent, as the ocs documentation has them),
/// `project/scenarios/barebones.yaml`, and a broken copy in `project/more/`.
fn python_project() -> PathBuf {
    let project = std::env::temp_dir().join(format!("ocsh-python-project-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&project);
    let agent = project.join("agent");
    std::fs::create_dir_all(&agent).unwrap();
    for f in ["Dockerfile", "barebones_agent.py"] {
        std::fs::copy(
            repo().join("fixtures/agents/barebones").join(f),
            agent.join(f),
        )
        .unwrap();
    }
    // A .dockerignore unique to this run, which excludes only itself: the image's files are
    // the documentation's, but its content hash is new, so step 1 really builds it.
    let ignore = format!("# run {}\n.dockerignore\n", std::process::id());
    std::fs::write(agent.join(".dockerignore"), ignore).unwrap();
    let text = std::fs::read_to_string(repo().join("scenarios/barebones.yaml")).unwrap();
    let text = text.replace("build: ../fixtures/agents/barebones", "build: ../agent");
    assert!(text.contains("build: ../agent"));
    std::fs::create_dir_all(project.join("scenarios")).unwrap();
    std::fs::write(project.join("scenarios/barebones.yaml"), &text).unwrap();
    let broken = text
        .replacen("name: barebones", "name: barebones-broken", 1)
        .replacen(
            "          - Acquisition exited cleanly.",
            "          - Acquisition exited badly.",
            1,
        );
    std::fs::create_dir_all(project.join("more")).unwrap();
    std::fs::write(project.join("more/broken.yaml"), broken).unwrap();
    assert!(!project.join("Cargo.toml").exists());
    project
}

/// What follows insta's `---` header: the content.
fn body(snap: &str) -> &str {
    let rest = snap.strip_prefix("---\n").expect("a header");
    &rest[rest.find("\n---\n").expect("the header ends") + 5..]
}

#[test]
fn a_python_project_is_tested_with_the_binary_alone() {
    let project = python_project();
    let snap = project.join("scenarios/snapshots/barebones.snap");

    // 1. Record the snapshot. Not a terminal, NO_COLOR: plain lines for the agent's build,
    // when it starts and when it is done, and no escape codes anywhere.
    let out = harness(&project, false, &["test", "--accept"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let agent_image = built_agent_image(&stderr);
    assert!(
        stderr.contains(&format!("building {agent_image} (from Dockerfile ")),
        "{stderr}"
    );
    for output in [&out.stdout, &out.stderr] {
        assert!(!output.contains(&0x1b), "an escape code in {stderr}");
    }
    let recorded = std::fs::read_to_string(&snap).expect("--accept records the snapshot");
    assert!(
        recorded.starts_with(
            "---\nsource: ocs-harness test\ninput_file: scenarios/barebones.yaml\n---\n"
        ),
        "{recorded}"
    );
    let cargo_test_snap =
        std::fs::read_to_string(repo().join("scenarios/snapshots/barebones.snap")).unwrap();
    assert_eq!(
        body(&recorded),
        body(&cargo_test_snap),
        "the binary and `cargo test` write the same content"
    );

    // 2. Green under CI, each step's result on its own line as it ends.
    let out = harness(&project, true, &["test"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 passed, 0 failed, 0 errors"), "{stdout}");
    let steps = recorded.matches("- step: ").count();
    let ok_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("     ok barebones step "))
        .collect();
    assert_eq!(ok_lines.len(), steps, "{stdout}");
    assert!(
        ok_lines[0].starts_with("     ok barebones step 1: api barebones1 [")
            && ok_lines[0].ends_with("s]"),
        "{stdout}"
    );
    assert!(stdout.contains("  READY barebones stack "), "{stdout}");
    assert!(
        stdout.contains(&format!("barebones1={agent_image} (built, FROM ")),
        "the images the run proved, under READY: {stdout}"
    );
    assert!(stdout.contains("   PASS ["), "{stdout}");

    // 3. A changed snapshot and a failing expectation, under CI: exit 1, both reported.
    let changed = recorded.replacen("  - crossbar\n", "  - crossbar-of-old\n", 1);
    assert_ne!(changed, recorded);
    std::fs::write(&snap, &changed).unwrap();
    let junit = project.join("junit.xml");
    let out = harness(
        &project,
        true,
        &[
            "test",
            "scenarios",
            "more/broken.yaml",
            "-j",
            "2",
            "--format",
            "json",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    let finished = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == "scenario_finished" && e["scenario"] == name)
            .unwrap_or_else(|| panic!("no scenario_finished for {name}"))
            .clone()
    };
    let snapshot_failure = finished("barebones");
    assert_eq!(snapshot_failure["status"], "failed");
    assert_eq!(snapshot_failure["kind"], "snapshot");
    let diff = snapshot_failure["diff"].as_str().expect("a diff");
    assert!(
        diff.contains("-  - crossbar-of-old\n+  - crossbar\n"),
        "{diff}"
    );
    let assertion = finished("barebones-broken");
    assert_eq!(assertion["kind"], "assertion");
    let failed_step = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["passed"] == false)
        .expect("a failed step event");
    assert_eq!(failed_step["scenario"], "barebones-broken");
    assert!(failed_step["duration"].as_f64().is_some(), "{failed_step}");
    let failure = &failed_step["failure"];
    assert!(
        failure["problems"]
            .to_string()
            .contains("Acquisition exited badly."),
        "{failed_step}"
    );
    assert_eq!(
        failure["at"],
        serde_json::json!({"file": "more/broken.yaml", "line": wait_expect_line(), "column": 5}),
        "the failure points at the wait step's `expect:`"
    );
    let ready = events
        .iter()
        .find(|e| e["event"] == "stack_ready" && e["scenario"] == "barebones")
        .expect("a stack_ready event");
    assert!(ready["images"]["crossbar"].is_string(), "{ready}");
    assert!(
        snapshot_failure["images"]["barebones1"].is_string(),
        "{snapshot_failure}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(
        (last["failed"].clone(), last["exit_code"].clone()),
        (2.into(), 1.into())
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("type=\"SnapshotMismatch\""), "{xml}");
    assert!(xml.contains("type=\"ScenarioFailure\""), "{xml}");
    assert!(!xml.contains("<error"), "{xml}");
    assert!(
        !project
            .join("scenarios/snapshots/barebones.snap.new")
            .exists(),
        "nothing is written under CI"
    );

    // 4. --accept records the change back.
    let out = harness(&project, false, &["test", "--accept", "-q"]);
    assert_eq!(out.status.code(), Some(0));
    let quiet = String::from_utf8_lossy(&out.stdout);
    assert!(
        quiet.starts_with("Summary: ok."),
        "-q: the summary only: {quiet}"
    );
    assert_eq!(std::fs::read_to_string(&snap).unwrap(), recorded);

    std::fs::remove_dir_all(&project).unwrap();
    let _ = Command::new("docker").args(["rmi", &agent_image]).output();
}

/// The agent image named by the `built IMAGE in N.Ns` line of `stderr`.
fn built_agent_image(stderr: &str) -> String {
    stderr
        .lines()
        .filter_map(|l| l.split("built ").nth(1)?.split(" in ").next())
        .find(|image| image.starts_with("ocs-harness/agent-agent:"))
        .unwrap_or_else(|| panic!("no `built ocs-harness/agent-agent:... in` line: {stderr}"))
        .to_string()
}

/// The line of the `expect:` that holds the wait step's messages in barebones.yaml (the broken
/// copy keeps the original's lines), so the test follows edits to the scenario.
fn wait_expect_line() -> usize {
    let text = std::fs::read_to_string(repo().join("scenarios/barebones.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let message = lines
        .iter()
        .position(|l| *l == "          - Acquisition exited cleanly.")
        .expect("barebones.yaml's wait step expects `Acquisition exited cleanly.`");
    let expect = lines[..message]
        .iter()
        .rposition(|l| l.trim() == "expect:")
        .expect("an `expect:` above the messages");
    expect + 1
}
