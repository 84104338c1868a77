//! The binary without Docker: exit codes for usage mistakes (2), broken scenario files (2,
//! naming file:line:column) and a missing engine (3, an `<error>` in JUnit, an `error`
//! in the JSON events and in the HTML report); partitions; `plan`; every command selecting
//! scenarios as `test` does; GitHub Actions annotations and job summary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ocs-harness");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ocsh-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The binary in the repository root, with an engine that is not there.
fn harness(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .env("OCS_HARNESS_RUNS_DIR", dir.join("runs"))
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn usage_mistakes_exit_2() {
    let out = harness(&["test", "--no-such-flag"], &repo());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = harness(&["test", "--partition", "3/2", "--list"], &repo());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = harness(&["test", "no/such/dir"], &repo());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn a_broken_scenario_exits_2_naming_file_line_and_column_and_runs_nothing() {
    let dir = temp_dir("broken");
    std::fs::write(
        dir.join("broken.yaml"),
        "name: broken\nstack:\n  agents:\n    - instance-id: a1\n      agent-class: X\n      \
         image: simonsobs/ocs:latest\nsteps:\n  - api: a1.acq\n",
    )
    .unwrap();
    let out = harness(&["test", "broken.yaml"], &dir);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--> broken.yaml:8:10"), "{err}");
    assert!(err.contains("nothing was run"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn partitions_are_disjoint_and_together_are_the_whole_selection() {
    let list = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["test", "--list"];
        args.extend(extra);
        let out = harness(&args, &repo());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout).lines().map(str::to_string).collect()
    };
    let all = list(&[]);
    assert!(all.len() >= 2, "{all:?}");
    assert!(all.iter().all(|l| !l.contains(".example")), "{all:?}");
    let one = list(&["--partition", "1/2"]);
    let two = list(&["--partition", "2/2"]);
    assert!(one.iter().all(|l| !two.contains(l)), "{one:?} {two:?}");
    let mut union = [one, two].concat();
    union.sort();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(union, sorted);
    // A word that names no file is a name filter.
    let bare = list(&["barebones"]);
    assert_eq!(bare, ["barebones\tscenarios/barebones.yaml"]);
}

#[test]
fn junit_merge_joins_the_reports_of_two_shards() {
    let dir = temp_dir("merge");
    let all = text(&harness(&["test", "--list"], &repo()).stdout)
        .lines()
        .count();
    let mut inputs = Vec::new();
    for k in ["1/2", "2/2"] {
        let junit = dir.join(format!("junit-{}.xml", &k[..1]));
        let args = ["test", "--partition", k, "--junit", junit.to_str().unwrap()];
        let out = harness(&args, &repo());
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        inputs.push(junit.to_str().unwrap().to_string());
    }
    let merged = dir.join("merged.xml");
    let summary = dir.join("summary.md");
    let mut args = vec!["junit-merge", merged.to_str().unwrap(), "--summary"];
    args.push(summary.to_str().unwrap());
    args.extend(inputs.iter().map(String::as_str));
    let out = harness(&args, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let xml = std::fs::read_to_string(&merged).unwrap();
    assert!(xml.contains(&format!("tests=\"{all}\"")), "{all}: {xml}");
    assert_eq!(xml.matches("<testcase ").count(), all, "{xml}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains(&format!("| **all** | {all} | 0 | 0 | {all} | 0 |")),
        "{md}"
    );
    assert_eq!(format!("{md}\n"), text(&out.stdout));
    // An input that is not JUnit is bad input, named.
    std::fs::write(dir.join("bad.xml"), "not xml").unwrap();
    let out = harness(&["junit-merge", "out.xml", "bad.xml"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bad.xml: not a JUnit report"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_modes_parse_and_fail_fast_without_what_they_measure() {
    let dir = temp_dir("bench");
    let bench = |args: &[&str]| {
        Command::new(BIN)
            .arg("bench")
            .args(args)
            .current_dir(repo())
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .env_remove("OCS_HARNESS_TEST_REGISTRY")
            .output()
            .expect("the binary runs")
    };
    let report = dir.join("bench.md");
    let report = report.to_str().unwrap();
    let out = bench(&["--what", "everything"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // images: the registry is named as missing before anything is touched.
    let out = bench(&["--what", "images", "--report", report]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("needs the loopback registry"));
    // compare: the timed command's failure (no engine) is an error naming it and its log.
    let args = [
        "--what",
        "compare",
        "--scenario",
        "scenarios/barebones.yaml",
    ];
    let out = bench(&[&args[..], &["--report", report]].concat());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("compare --baseline images/ocs-0.11.3.yaml"),
        "{err}"
    );
    assert!(err.contains("bench-compare/compare-warm-up.log"), "{err}");
    let out = harness(&["images", "--cache-key", "--build"], &repo());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_engine_exits_3_with_an_error_in_the_json_events_and_the_junit_report() {
    let dir = temp_dir("noengine");
    let scenario = repo().join("scenarios/barebones.yaml");
    let junit = dir.join("junit.xml");
    let report = dir.join("report");
    let out = harness(
        &[
            "test",
            scenario.to_str().unwrap(),
            "--format",
            "json",
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            report.to_str().unwrap(),
        ],
        &dir,
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON event"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "scenario_started",
            "scenario_finished",
            "coverage",
            "run_finished"
        ]
    );
    let finished = &events[2];
    assert_eq!(finished["status"], "error");
    assert_eq!(finished["kind"], "infrastructure");
    assert!(
        finished["message"]
            .as_str()
            .unwrap()
            .contains("Docker engine"),
        "{finished}"
    );
    let run_finished = events.last().unwrap();
    assert_eq!(run_finished["errors"], 1);
    assert_eq!(run_finished["exit_code"], 3);
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report is written");
    assert!(xml.contains("<error message="), "{xml}");
    assert!(xml.contains("type=\"Infrastructure\""), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    let index = std::fs::read_to_string(report.join("index.html")).expect("an HTML index");
    assert!(index.contains("<b>1</b>errors"), "{index}");
    let page = std::fs::read_to_string(report.join("01-barebones.html")).expect("its page");
    assert!(page.contains("<section class=\"failure error\" id=\"failure\">"));
    assert!(page.contains("Docker engine"), "{page}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plan_prints_the_stack_without_docker() {
    let out = harness(&["plan", "scenarios/barebones.yaml"], &repo());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for want in [
        "simonsobs/ocs-crossbar:latest, overridden by the image set default",
        "FROM simonsobs/ocs:latest -> ocs-harness/ocs:",
        "-barebones1",
        "INSTANCE_ID: barebones1",
        "/config/default.yaml",
        "wamp_realm: test_realm",
        "\"realms\"",
    ] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }
    let out = harness(&["plan", "no-such.yaml"], &repo());
    assert_eq!(out.status.code(), Some(2));
}

/// The binary with extra environment variables.
fn harness_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .env("OCS_HARNESS_RUNS_DIR", dir.join("runs"))
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

/// How many `*.yaml` and `*.yml` files `dir` holds.
fn scenario_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("readable")
        .flatten()
        .filter(|e| {
            let p = e.path();
            p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml")
        })
        .count()
}

#[test]
fn check_and_plan_take_directories_and_name_filters_like_test() {
    let count = scenario_count(&repo().join("scenarios"));
    let out = harness(&["check", "scenarios/"], &repo());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stdout.matches("ok: ").count(), count, "{stdout}");
    // No argument: scenarios/, as `test`.
    let out = harness(&["check"], &repo());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A name filter.
    let out = harness(&["check", "barebones"], &repo());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).matches("ok: ").count(), 1);

    let out = harness(&["plan", "scenarios/"], &repo());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stdout.matches("# ocs-harness plan: ").count(), count);
    assert_eq!(
        stdout.matches("\n---\n").count(),
        count - 1,
        "one YAML document each"
    );
    let out = harness(&["plan", "--filter", "fake-data"], &repo());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("scenario: fake-data\n"));
}

#[test]
fn selecting_no_scenario_exits_2_saying_what_was_given_and_what_to_do() {
    for command in ["check", "plan", "test", "run"] {
        let out = harness(&[command, "nothing-matches"], &repo());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("no scenario selected: the name filter `nothing-matches` matches none of")
                && err.contains("--list"),
            "{command}: {err}"
        );
    }
    let out = harness(
        &[
            "compare",
            "--baseline",
            "images/ocs-0.11.3.yaml",
            "--candidate",
            "images/default.yaml",
            "nothing-matches",
        ],
        &repo(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let dir = temp_dir("empty-selection");
    let out = harness(&["check", "."], &dir);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("holds no scenario file (*.yaml or *.yml)"),
        "{err}"
    );
}

#[test]
fn compare_takes_the_workflows_default_input_a_directory() {
    // plugin.yml passes `scenarios/`: the selection works and the run stops at the missing
    // engine (3), not at "Is a directory" (2).
    let out = harness(
        &[
            "compare",
            "--baseline",
            "images/ocs-0.11.3.yaml",
            "--candidate",
            "images/default.yaml",
            "scenarios/",
        ],
        &repo(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(!err.contains("Is a directory"), "{err}");
}

#[test]
fn a_directory_takes_yml_files_like_yaml_files() {
    let dir = temp_dir("yml");
    let text_of = |name: &str| {
        format!(
            "name: {name}\nstack:\n  agents:\n    - instance-id: a1\n      agent-class: X\n      \
             image: simonsobs/ocs:latest\nsteps:\n  - api: a1\n"
        )
    };
    std::fs::write(dir.join("one.yaml"), text_of("one")).unwrap();
    std::fs::write(dir.join("two.yml"), text_of("two")).unwrap();
    let out = harness(&["check", "."], &dir);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("one.yaml") && stdout.contains("two.yml"),
        "{stdout}"
    );
    let out = harness(&["test", "--list", "."], &dir);
    assert!(text(&out.stdout).contains("two\t"), "{}", text(&out.stdout));
}

#[test]
fn under_github_actions_bad_input_is_an_error_annotation_on_its_line_and_in_the_summary() {
    let dir = temp_dir("annotations");
    std::fs::write(
        dir.join("broken.yaml"),
        "name: broken\nstack:\n  agents:\n    - instance-id: a1\n      agent-class: X\n      \
         image: simonsobs/ocs:latest\nsteps:\n  - api: a1.acq\n",
    )
    .unwrap();
    let summary = dir.join("summary.md");
    let summary_path = summary.display().to_string();
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary_path.as_str()),
    ];
    let out = harness_env(&["test", "broken.yaml"], &dir, &env);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no annotation in:\n{err}"));
    assert!(
        line.starts_with(
            "::error file=broken.yaml,line=8,col=10,title=ocs-harness%3A bad scenario file::\
             `api` takes an agent, not an operation (`a1.acq`)%0Ahelp: "
        ),
        "{line}"
    );
    let md = std::fs::read_to_string(&summary).expect("the job summary was written");
    assert!(md.contains("bad input, nothing was run"), "{md}");
    assert!(md.contains("`broken.yaml:8:10`"), "{md}");
    // `check` annotates too; without GITHUB_ACTIONS nothing of the kind is printed.
    let out = harness_env(&["check", "broken.yaml"], &dir, &env[..1]);
    assert!(text(&out.stderr).contains("::error file=broken.yaml,line=8,col=10,"));
    let out = harness(&["check", "broken.yaml"], &dir);
    assert!(!text(&out.stderr).contains("::error"));
}

#[test]
fn under_github_actions_a_scenario_without_an_engine_is_annotated_and_summarised() {
    let dir = temp_dir("annotations-infra");
    let summary = dir.join("summary.md");
    let summary_path = summary.display().to_string();
    let scenario = repo().join("scenarios/barebones.yaml");
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary_path.as_str()),
    ];
    let out = harness_env(&["test", scenario.to_str().unwrap()], &dir, &env);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let file = scenario
        .display()
        .to_string()
        .replace(',', "%2C")
        .replace(':', "%3A");
    let want = format!("::error file={file},title=barebones%3A error (infrastructure)::");
    assert!(
        err.lines().any(|l| l.starts_with(&want)),
        "{want} not in:\n{err}"
    );
    let md = std::fs::read_to_string(&summary).expect("the job summary was written");
    assert!(
        md.starts_with("## ocs-harness test failed: 0 passed, 0 failed, 1 errors"),
        "{md}"
    );
    assert!(
        md.contains("| ⚠️ | barebones |") && md.contains("Docker engine"),
        "{md}"
    );
}
