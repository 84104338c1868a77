//! Published images for real, from a loopback registry (`.ci/registry.sh start` pushes the
//! recipe images there as `<registry>/simonsobs/ocs:v0.12.1`, `.../ocs-crossbar:latest` and
//! `:v0.12.1`, and removes the local copies): a set naming registry images pulls them, a
//! Dockerfile `FROM <registry>/...` pulls its base, `--pull never` fails at once, an archive
//! set loads, a corrupt archive and a stopped registry are clear errors within seconds.
//!
//! `OCS_HARNESS_TEST_REGISTRY` (host:port) must be set; these tests fail without it, never
//! skip. They run one at a time (they pull and remove the same names) and remove only the
//! names they create.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn registry() -> String {
    std::env::var("OCS_HARNESS_TEST_REGISTRY")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "OCS_HARNESS_TEST_REGISTRY is not set: start the loopback registry with \
                 `.ci/registry.sh start` and export the address it prints (`.ci/run` does \
                 both). These tests never skip."
            )
        })
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("registry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocs-harness"))
        .current_dir(root())
        .env_remove("OCS_HARNESS_IMAGES")
        .env_remove("OCS_HARNESS_PULL")
        .args(args)
        .output()
        .expect("ocs-harness runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

/// Remove local names this test created (an image other names share stays).
fn forget(names: &[&str]) {
    for n in names {
        let _ = docker(&["rmi", n]);
    }
}

/// The barebones scenario with its agent built from `context`.
fn barebones_scenario(dir: &Path, context: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("scenarios/barebones.yaml")).unwrap();
    let text = text.replace(
        "build: ../fixtures/agents/barebones",
        &format!("build: {}", context.display()),
    );
    let path = dir.join("barebones.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The barebones agent's build context with its `FROM` line replaced.
fn barebones_context(dir: &Path, from: &str) -> PathBuf {
    let ctx = dir.join(format!("regtest{}", std::process::id()));
    std::fs::create_dir_all(&ctx).unwrap();
    let src = root().join("fixtures/agents/barebones");
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, ctx.join(p.file_name().unwrap())).unwrap();
    }
    let df = std::fs::read_to_string(ctx.join("Dockerfile")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        df.replace("FROM simonsobs/ocs:latest", &format!("FROM {from}")),
    )
    .unwrap();
    ctx
}

#[test]
fn a_set_of_registry_images_and_a_from_line_pull_and_pass() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reg = registry();
    let ocs = format!("{reg}/simonsobs/ocs:v0.12.1");
    let crossbar = format!("{reg}/simonsobs/ocs-crossbar:latest");
    forget(&[&ocs, &crossbar]);
    let dir = scratch("pull");
    let set = dir.join("set.yaml");
    std::fs::write(
        &set,
        format!("name: registry\nocs: {{image: {ocs}}}\ncrossbar: {{image: {crossbar}}}\n"),
    )
    .unwrap();
    let ctx = barebones_context(&dir, &ocs);
    let scenario = barebones_scenario(&dir, &ctx);
    let out = harness(&[
        "run",
        scenario.to_str().unwrap(),
        "--images",
        set.to_str().unwrap(),
    ]);
    let agent = format!("ocs-harness/agent-regtest{}", std::process::id());
    let built = docker(&["images", "-q", &agent]);
    for id in String::from_utf8_lossy(&built.stdout).split_whitespace() {
        let _ = docker(&["rmi", id]);
    }
    forget(&[&ocs, &crossbar]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("crossbar={crossbar} (pulled)")),
        "{shown}"
    );
    assert!(shown.contains(&format!("FROM {ocs} (pulled)")), "{shown}");
}

#[test]
fn pull_never_with_an_absent_image_fails_at_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reg = registry();
    let crossbar = format!("{reg}/simonsobs/ocs-crossbar:v0.12.1");
    forget(&[&crossbar]);
    let dir = scratch("never");
    let set = dir.join("set.yaml");
    std::fs::write(&set, format!("crossbar: {{image: {crossbar}}}\n")).unwrap();
    let t = Instant::now();
    let out = harness(&[
        "run",
        "scenarios/barebones.yaml",
        "--images",
        set.to_str().unwrap(),
        "--pull",
        "never",
    ]);
    let took = t.elapsed();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(3), "{shown}");
    for s in [
        format!("image {crossbar} (for crossbar) is not present locally"),
        "nothing was started".to_string(),
        format!("docker pull {crossbar}"),
        "{archive: FILE.tar}".to_string(),
        "--images local".to_string(),
    ] {
        assert!(shown.contains(&s), "missing {s:?} in\n{shown}");
    }
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn an_archive_set_loads_and_a_corrupt_archive_is_clear() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("archive");
    let local = harness(&["images", "--images", "local"]);
    let listing = String::from_utf8_lossy(&local.stdout).into_owned();
    let recipe_crossbar = listing
        .lines()
        .find_map(|l| {
            l.strip_prefix("crossbar")
                .map(|r| r.split_whitespace().next())
        })
        .flatten()
        .unwrap_or_else(|| panic!("no crossbar line in {}", text(&local)))
        .to_string();
    let name = format!("ocsh-regtest/crossbar-archive:{}", std::process::id());
    let archive = dir.join("crossbar.tar");
    assert!(docker(&["tag", &recipe_crossbar, &name]).status.success());
    let saved = docker(&["save", "-o", archive.to_str().unwrap(), &name]);
    forget(&[&name]);
    assert!(saved.status.success(), "{}", text(&saved));
    let set = dir.join("set.yaml");
    std::fs::write(&set, "crossbar: {archive: crossbar.tar}\n").unwrap();
    let out = harness(&["images", "--images", set.to_str().unwrap(), "--pull"]);
    let present = docker(&["image", "inspect", &name]).status.success();
    forget(&[&name]);
    let _ = std::fs::remove_file(&archive);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(name.as_str()) && shown.contains("(loaded)"),
        "{shown}"
    );
    assert!(present, "the archive's image was not loaded");

    std::fs::write(&archive, "this is not a tar file").unwrap();
    let out = harness(&["images", "--images", set.to_str().unwrap(), "--pull"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("is not a `docker save` file"), "{shown}");
}

#[test]
fn a_stopped_registry_is_a_clear_error_within_seconds() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    registry();
    // A loopback port nothing listens on: a registry that is not running.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let image = format!("127.0.0.1:{port}/simonsobs/ocs:v0.12.1");
    let dir = scratch("stopped");
    let set = dir.join("set.yaml");
    std::fs::write(&set, format!("ocs: {{image: {image}}}\n")).unwrap();
    let t = Instant::now();
    let out = harness(&["images", "--images", set.to_str().unwrap(), "--pull"]);
    let took = t.elapsed();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(3), "{shown}");
    assert!(
        shown.contains(&format!("pulling {image} failed")),
        "{shown}"
    );
    assert!(shown.contains("--images local"), "{shown}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// The scenario/result rows of a compare summary's table.
fn verdicts(summary: &str) -> Vec<String> {
    summary
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| scenario") && !l.starts_with("| ---"))
        .map(|l| l.split('|').take(3).collect::<Vec<_>>().join("|"))
        .collect()
}

#[test]
fn compare_of_two_registry_sets_gives_the_recipe_comparisons_verdicts() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reg = registry();
    let old = format!("{reg}/simonsobs/ocs:v0.11.3");
    let new = format!("{reg}/simonsobs/ocs:v0.12.1");
    let crossbar = format!("{reg}/simonsobs/ocs-crossbar:latest");
    forget(&[&old, &new, &crossbar]);
    let dir = scratch("compare");
    let set = |name: &str, ocs: &str| {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!("name: {name}\nocs: {{image: {ocs}}}\ncrossbar: {{image: {crossbar}}}\n"),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };
    let (base, cand) = (set("registry-0.11.3", &old), set("registry-0.12.1", &new));
    let compare = |baseline: &str, candidate: &str, name: &str| {
        let summary = dir.join(format!("{name}.md"));
        let out = harness(&[
            "compare",
            "--baseline",
            baseline,
            "--candidate",
            candidate,
            "--summary",
            summary.to_str().unwrap(),
            "scenarios/fake-data.yaml",
        ]);
        let md = std::fs::read_to_string(&summary)
            .unwrap_or_else(|e| panic!("no summary ({e}): {}", text(&out)));
        (out, md)
    };
    let (out, registry_md) = compare(&base, &cand, "registry");
    forget(&[&old, &new, &crossbar]);
    let (_, recipe_md) = compare("images/ocs-0.11.3.yaml", "images/default.yaml", "recipe");
    assert!(
        registry_md.contains(&format!("FROM {old} (pulled)"))
            || registry_md.contains(&format!("={old} (pulled)")),
        "the baseline did not prove the pulled 0.11.3 image:\n{registry_md}\n{}",
        text(&out)
    );
    assert_eq!(
        verdicts(&registry_md),
        verdicts(&recipe_md),
        "registry:\n{registry_md}\nrecipe:\n{recipe_md}"
    );
}
