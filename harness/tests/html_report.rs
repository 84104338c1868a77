//! The HTML report in a real browser: the binary runs a failing copy of
//! `scenarios/barebones.yaml` (one `expect` changed) and the passing original, one at a time,
//! with `--html`; headless Chromium (Debian's `chromium`) then opens the index and both pages.
//! Each page loads with no console message (a blocked request, a CSP violation or a script
//! error would show as one), the failing step, its `expect:` line and the diff are in the
//! rendered DOM, each page opens in under 2 s, and the screenshots are kept under
//! `target/ocs-harness/browser/` with the report and the runs it links to (CI keeps them as
//! artifacts). A machine without chromium
//! fails this test, saying how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_ocs-harness");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository")
}

/// The browser, or a failure saying how to get it.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("OCS_HARNESS_CHROMIUM") {
        return PathBuf::from(p);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        for name in ["chromium", "chromium-browser"] {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!(
        "chromium is not installed: this test renders the HTML report in headless Chromium. \
         Install Debian's package (`apt-get install -y chromium`; .ci/run does), or point \
         OCS_HARNESS_CHROMIUM at a Chromium binary."
    );
}

/// What the browser made of a page: the DOM after load, its console lines, the wall time.
struct Loaded {
    dom: String,
    console: Vec<String>,
    load_ms: f64,
    wall: f64,
}

fn browser(chromium: &Path) -> Command {
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        // No request could go anywhere even if one were attempted.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--window-size=1400,2000",
    ]);
    c.env("HOME", std::env::temp_dir());
    c
}

fn load(chromium: &Path, page: &Path) -> Loaded {
    let started = Instant::now();
    let out = browser(chromium)
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let wall = started.elapsed().as_secs_f64();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chromium failed on {}: {stderr}",
        page.display()
    );
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    let load_ms = dom
        .split("data-load-ms=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{} never fired its load event:\n{dom}", page.display()));
    Loaded {
        dom,
        console,
        load_ms,
        wall,
    }
}

fn screenshot(chromium: &Path, page: &Path, png: &Path) {
    let out = browser(chromium)
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success() && png.metadata().map(|m| m.len() > 10_000).unwrap_or(false),
        "no screenshot of {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The detector sees what it must: a page under the same policy that tries to load an image
/// from elsewhere shows a console line (so "no console line" means something).
#[test]
fn a_blocked_request_shows_in_the_console() {
    let chromium = chromium();
    let dir = std::env::temp_dir().join(format!("ocsh-csp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("control.html");
    std::fs::write(
        &page,
        format!(
            "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" \
             content=\"{}\"><script>addEventListener('load',function(){{document.\
             documentElement.setAttribute('data-load-ms','1')}})</script></head><body>\
             <img src=\"https://example.invalid/x.png\"></body></html>",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
        ),
    )
    .unwrap();
    let loaded = load(&chromium, &page);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        loaded
            .console
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "{:?}",
        loaded.console
    );
}

#[test]
fn the_report_of_a_failed_and_a_passed_run_renders_in_chromium() {
    let chromium = chromium();
    let repo = repo();
    let work = std::env::temp_dir().join(format!("ocsh-html-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("scenarios")).unwrap();
    let text = std::fs::read_to_string(repo.join("scenarios/barebones.yaml")).unwrap();
    let failing = text
        .replacen("name: barebones", "name: barebones-failing", 1)
        .replacen(
            "build: ../fixtures/agents/barebones",
            &format!(
                "build: {}",
                repo.join("fixtures/agents/barebones").display()
            ),
            1,
        )
        .replacen(
            "          - Acquisition exited cleanly.",
            "          - Acquisition exited badly.",
            1,
        );
    assert!(failing.contains("exited badly") && failing.contains("barebones-failing"));
    let failing_file = work.join("scenarios/barebones-failing.yaml");
    std::fs::write(&failing_file, &failing).unwrap();
    let expect_line = failing
        .lines()
        .position(|l| l.contains("Acquisition exited badly."))
        .unwrap();
    // The report and the runs it links to (full logs, timelines), kept together for CI.
    let shots = repo.join("target/ocs-harness/browser");
    let report = shots.join("report");
    let _ = std::fs::remove_dir_all(&shots);
    let out = Command::new(BIN)
        .current_dir(&repo)
        .env("NO_COLOR", "1")
        .env("OCS_HARNESS_RUNS_DIR", shots.join("runs"))
        .args(["test", "-j", "1", "--html"])
        .arg(&report)
        .arg(&failing_file)
        .arg("scenarios/barebones.yaml")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "one scenario fails");
    assert!(stderr.contains("HTML report in"), "it says where");

    let pages = [
        ("index", report.join("index.html")),
        ("failed", report.join("01-barebones-failing.html")),
        ("passed", report.join("02-barebones.html")),
    ];
    let mut doms = std::collections::BTreeMap::new();
    for (name, page) in &pages {
        let size = page.metadata().expect("the page is written").len();
        let loaded = load(&chromium, page);
        eprintln!(
            "{name}: {size} bytes, load event after {:.0} ms (chromium's whole run {:.2} s)",
            loaded.load_ms, loaded.wall
        );
        assert!(
            loaded.console.is_empty(),
            "{name}: console messages (a blocked request or a script error):\n{}",
            loaded.console.join("\n")
        );
        assert!(
            loaded.load_ms < 2000.0,
            "{name} took {} ms to load",
            loaded.load_ms
        );
        screenshot(&chromium, page, &shots.join(format!("{name}.png")));
        // every link leads to a file next to the report (other pages, the runs' logs)
        let html = std::fs::read_to_string(page).unwrap();
        for link in html.split("href=\"").skip(1) {
            let target = &link[..link.find('"').unwrap()];
            if !target.starts_with('#') {
                assert!(
                    report.join(target).exists(),
                    "{name} links to {target}, which is not there"
                );
            }
        }
        doms.insert(*name, loaded.dom);
    }

    let index = &doms["index"];
    assert!(index.contains("<b>1</b>passed") && index.contains("<b>1</b>failed"));
    assert!(index.contains("href=\"01-barebones-failing.html\""));
    assert!(index.contains("href=\"02-barebones.html\""));
    assert!(index.contains("Operation coverage"));

    let failed = &doms["failed"];
    let failure = failed.find("id=\"failure\"").expect("a failure box");
    assert!(
        failure < failed.find("<svg").expect("a timeline"),
        "failure first"
    );
    assert!(failed.contains("wait barebones1.count (timeout 20s) failed"));
    // the step's `expect:` line, marked, and the expected message a few lines below it
    assert!(failed.contains("class=\"hit\""));
    assert!(failed.contains(&format!(
        "<span class=\"n\">{}</span>          - Acquisition exited badly.",
        expect_line + 1
    )));
    assert!(failed.contains("<span class=\"del\">  - Acquisition exited badly.</span>"));
    assert!(failed.contains("<span class=\"add\">  + Acquisition exited cleanly.</span>"));
    assert!(failed.contains("<details class=\"step-bad\" id=\"step-6\" open=\"\">"));
    assert!(failed.contains("barebones1 registration"));

    let passed = &doms["passed"];
    assert!(!passed.contains("id=\"failure\""));
    assert!(passed.contains("id=\"step-11\""));
    assert!(passed.contains("Starting the count!"), "the agent's log");
    let _ = std::fs::remove_dir_all(&work);
}
