//! The pages rendered from hand-built events: structure, escaping, the failure first, the
//! timeline's marks, cut logs, and the size of a 25-scenario suite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::text::{esc, relative};
use super::*;
use crate::ocs::Reply;
use crate::runner::event::{Answer, Call, Outcome, StepFailure};
use crate::runtime::logs::{LogLine, Stream};
use crate::scenario::error::{Inner, ScenarioError};

const T0: f64 = 1_700_000_000.0;

const SOURCE: &str = "name: demo\nagents:\n  barebones1: {class: BarebonesAgent}\nsteps:\n  - start: barebones1.count\n    expect:\n      status: ok\n      message: \"<b>done</b>\"\n";

fn at(dt: f64, event: RunEvent) -> Stamped {
    Stamped { at: T0 + dt, event }
}

fn call() -> Call {
    Call {
        instance: "barebones1".into(),
        action: "start".into(),
        op: Some("count".into()),
        params: Some(json!({"n": 1})),
        polled: false,
    }
}

fn log(container: &str, dt: f64, text: &str) -> LogLine {
    LogLine {
        seq: 0,
        container: container.into(),
        received: UNIX_EPOCH + Duration::from_secs_f64(T0 + dt),
        stream: Stream::Stdout,
        text: text.into(),
        level: None,
        namespace: None,
    }
}

fn events(failed: bool) -> Vec<Stamped> {
    let reply = Reply::from_value(json!([0, "Started <count>", {
        "session_id": 0, "op_name": "count", "op_code": 3, "status": "running",
        "degraded": false, "success": null, "start_time": 1.0, "data": {},
        "messages": [],
    }]))
    .expect("a reply");
    let failure = failed.then(|| StepFailure {
        step: 1,
        line: 5,
        action: "start barebones1.count".into(),
        problems: vec![
            "message: expected \"<b>done</b>\", got \"Started <count>\"".into(),
            "messages: not the expected messages (- expected, + actual):\n    a\n  + b\n  - c\n- not a diff line".into(),
        ],
        last_reply: Some(json!({"status": "ok", "message": "Started <count>"})),
        log_tail: vec!["INFO <script>alert(1)</script>".into()],
        container: Some("barebones1".into()),
        at: Some(ScenarioError::new(Inner {
            file: PathBuf::from("scenarios/demo.yaml"),
            line: 8,
            column: 7,
            message: "step 1 (line 5): start barebones1.count failed".into(),
            label: "this expectation".into(),
            width: 7,
            source_line: "      message: \"<b>done</b>\"".into(),
            notes: vec![],
        })),
    });
    vec![
        at(
            0.0,
            RunEvent::RunStarted {
                scenario: "demo".into(),
                steps: 1,
            },
        ),
        at(
            4.0,
            RunEvent::StackReady {
                run_id: "r1".into(),
                stack: vec!["barebones1 (BarebonesAgent)".into(), "crossbar".into()],
                images: BTreeMap::from([
                    ("crossbar".into(), "ocs-harness/crossbar:x".into()),
                    ("barebones1".into(), "simonsobs/ocs:v0.11.3".into()),
                ]),
                built: vec![],
                after: Duration::from_secs(4),
                crossbar_boot: Duration::from_millis(1500),
                registration: BTreeMap::from([("barebones1".into(), Duration::from_secs(2))]),
                marks: crate::runtime::stack::Marks {
                    began: T0 + 0.2,
                    bridge_ready: T0 + 1.8,
                    agent_released: BTreeMap::from([("barebones1".into(), T0 + 1.9)]),
                    agent_ready: BTreeMap::from([("barebones1".into(), T0 + 3.9)]),
                },
            },
        ),
        at(
            4.1,
            RunEvent::StepStarted {
                step: 1,
                line: 5,
                action: "start barebones1.count".into(),
            },
        ),
        at(
            4.2,
            RunEvent::CallMade {
                step: 1,
                call: call(),
            },
        ),
        at(
            4.3,
            RunEvent::ReplyReceived {
                step: 1,
                call: call(),
                answer: Answer::Reply(reply.clone()),
            },
        ),
        at(
            4.3,
            RunEvent::SessionMessage {
                step: 1,
                instance: "barebones1".into(),
                op: "count".into(),
                session_id: 0,
                time: T0 + 4.25,
                text: "Operation \"count\" <started>".into(),
            },
        ),
        at(
            4.4,
            RunEvent::FaultInjected {
                step: 1,
                fault: "restart".into(),
                container: "barebones1".into(),
                at: T0 + 4.35,
            },
        ),
        at(
            4.5,
            RunEvent::StepFinished {
                step: 1,
                line: 5,
                action: "start barebones1.count".into(),
                duration: Duration::from_millis(400),
                passed: !failed,
                outcome: Outcome::Reply(reply),
                failure: failure.clone(),
                redact: vec![],
            },
        ),
        at(
            4.8,
            RunEvent::StepFinished {
                step: 2,
                line: 9,
                action: "fault restart barebones1".into(),
                duration: Duration::from_millis(300),
                passed: true,
                outcome: Outcome::Fault {
                    fault: "restart".into(),
                    container: "barebones1".into(),
                    ready_again: Some(true),
                },
                failure: None,
                redact: vec![],
            },
        ),
        at(
            6.0,
            RunEvent::RunFinished {
                scenario: "demo".into(),
                run_id: Some("r1".into()),
                passed: !failed,
                failed_step: failure.map(|f| f.step),
                error: None,
                elapsed: Duration::from_secs(6),
            },
        ),
    ]
}

fn run(failed: bool) -> ScenarioRun {
    ScenarioRun {
        name: "demo".into(),
        file: "scenarios/demo.yaml".into(),
        source: Some(SOURCE.into()),
        status: if failed {
            Status::Failed
        } else {
            Status::Passed
        },
        kind: failed.then(|| "assertion".into()),
        message: failed.then(|| "step 1 (line 5): start barebones1.count failed".into()),
        details: None,
        diff: None,
        events: events(failed),
        logs: vec![
            log("crossbar", 0.5, "crossbar started"),
            log("barebones1", 2.0, "agent up"),
            log("barebones1", 4.4, "ERROR Traceback <oops> & more"),
        ],
        run_dir: Some(PathBuf::from("/work/target/ocs-harness/runs/r1")),
        elapsed: 6.0,
        images: Some("images: crossbar ocs-harness/crossbar:x (local)".into()),
    }
}

/// Everything that would make the browser fetch something: there must be none.
fn assert_self_contained(html: &str) {
    assert!(html.contains(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
    )));
    for bad in [
        "<link", "src=", "url(", "@import", "https://", "<iframe", "<object",
    ] {
        assert!(!html.contains(bad), "the page has `{bad}`");
    }
    let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_ns.contains("http://"), "the page names a URL");
}

#[test]
fn a_failed_run_shows_the_failure_first_with_its_source_line() {
    let html = render_scenario(
        &run(true),
        Path::new("/work/target/report"),
        Some("index.html"),
    );
    assert_self_contained(&html);
    let failure = html.find("id=\"failure\"").expect("a failure box");
    let timeline = html.find("<svg").expect("a timeline");
    let steps = html.find("<h2>Steps</h2>").expect("the steps");
    assert!(
        failure < timeline && timeline < steps,
        "failure, timeline, steps"
    );
    // the expect line of the scenario file, marked, with its neighbours and a caret
    assert!(html.contains(
        "<div class=\"hit\"><span class=\"n\">8</span>      message: &quot;&lt;b&gt;done&lt;/b&gt;&quot;</div>"
    ));
    assert!(html.contains("<span class=\"n\">5</span>  - start: barebones1.count"));
    assert!(html.contains("<span class=\"caret\">      ^</span>"));
    assert!(html.contains("scenarios/demo.yaml:8:7"));
    // the problem, escaped; the log tail, escaped
    assert!(html.contains("got &quot;Started &lt;count&gt;&quot;"));
    assert!(html.contains("INFO &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains(
        "<span class=\"add\">  + b</span><span class=\"del\">  - c</span>- not a diff line\n"
    ));
    assert_eq!(
        html.matches("<script").count(),
        1,
        "no script came from the events"
    );
    assert!(!html.contains("<b>done</b>"));
    // the failed step is open, and the drawing links to it
    assert!(html.contains("<details class=\"step-bad\" id=\"step-1\" open>"));
    assert!(html.contains("<a href=\"#step-1\"><rect class=\"step bad\""));
    // the call and the reply of the step
    assert!(html.contains("→ start barebones1.count {&quot;n&quot;:1}"));
    assert!(html.contains("← OK"));
    // the stack and where the full logs are, relative to the report
    assert!(html.contains("<code>simonsobs/ocs:v0.11.3</code>"));
    assert!(html.contains("href=\"../ocs-harness/runs/r1/logs/barebones1.log\""));
    assert!(html.contains("href=\"../ocs-harness/runs/r1/timeline.log\""));
}

#[test]
fn the_timeline_has_a_lane_per_container_and_marks_with_tooltips() {
    let html = render_scenario(&run(true), Path::new("/tmp/r"), None);
    // the steps (from the stack being ready) first, then the whole run
    assert_eq!(html.matches("<svg").count(), 2);
    let zoomed = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert!(zoomed.contains("<circle class=\"session\""));
    assert!(!zoomed.contains("registration"), "the bring-up is left out");
    assert!(zoomed.contains(">4.0s</text>") && !zoomed.contains(">3.5s</text>"));
    let svg = &html[html.rfind("<svg").unwrap()..html.rfind("</svg>").unwrap()];
    for lane in [">steps</text>", ">barebones1</text>", ">crossbar</text>"] {
        assert!(svg.contains(lane), "lane {lane}");
    }
    assert!(svg.contains("<circle class=\"session\""));
    assert!(svg.contains("barebones1.count:0 Operation &quot;count&quot; &lt;started&gt;"));
    assert!(svg.contains("<path class=\"fault\""));
    assert!(svg.contains("fault restart on barebones1 (step 1)"));
    assert!(svg.contains("barebones1 answered again after the restart (step 2)"));
    assert!(svg.contains("barebones1 registration: running to its first get_api answer: 2.0 s"));
    assert!(svg.contains("crossbar boot: running to its bridge answering: 1.5 s"));
    assert!(svg.contains("<rect class=\"notable\""));
    assert!(svg.contains("ERROR Traceback &lt;oops&gt; &amp; more"));
    assert!(svg.contains("<line class=\"ready\""));
    assert!(svg.contains("step 1 (line 5): start barebones1.count — 0.400 s (FAILED)"));
    // axis ticks every half second over the 6 s run
    assert!(svg.contains(">0.0s</text>") && svg.contains(">6.0s</text>"));
}

#[test]
fn a_passed_run_has_no_failure_box_and_shows_a_snapshot_diff() {
    let mut r = run(false);
    r.diff = Some("@@ -1 +1 @@\n-message: old <a>\n+message: new <a>\n".into());
    let html = render_scenario(&r, Path::new("/tmp/r"), None);
    assert_self_contained(&html);
    assert!(!html.contains("id=\"failure\""));
    assert!(html.contains("<span class=\"badge passed\">passed</span>"));
    assert!(html.contains("<span class=\"del\">-message: old &lt;a&gt;</span>"));
    assert!(html.contains("<span class=\"add\">+message: new &lt;a&gt;</span>"));
    assert!(html.contains("<details class=\"step-ok\" id=\"step-1\">"));
}

#[test]
fn a_run_that_could_not_start_shows_its_error() {
    let mut r = run(false);
    r.status = Status::Error;
    r.kind = Some("infrastructure".into());
    r.message = Some("the stack did not become ready".into());
    r.events = vec![
        at(
            0.0,
            RunEvent::RunStarted {
                scenario: "demo".into(),
                steps: 1,
            },
        ),
        at(
            9.0,
            RunEvent::RunFinished {
                scenario: "demo".into(),
                run_id: None,
                passed: false,
                failed_step: None,
                error: Some("crossbar: <never answered> within 60s".into()),
                elapsed: Duration::from_secs(9),
            },
        ),
    ];
    r.logs.clear();
    r.run_dir = None;
    let html = render_scenario(&r, Path::new("/tmp/r"), None);
    assert_self_contained(&html);
    assert!(html.contains("<section class=\"failure error\" id=\"failure\">"));
    assert!(html.contains("crossbar: &lt;never answered&gt; within 60s"));
    assert!(!html.contains("<h2>Steps</h2>"));
}

#[test]
fn the_index_counts_links_and_lists_images_and_coverage() {
    let mut error = run(false);
    error.name = "broken stack".into();
    error.status = Status::Error;
    error.message = Some("no <engine>".into());
    let suite = Suite {
        scenarios: vec![run(false), run(true), error],
        coverage_failure: None,
        coverage: Some("BarebonesAgent: 1/3 operations exercised\n  count  task  started\n".into()),
        elapsed: 12.0,
    };
    let html = render_index(&suite);
    assert_self_contained(&html);
    assert!(html.contains("<b>1</b>passed"));
    assert!(html.contains("<b>1</b>failed"));
    assert!(html.contains("<b>1</b>errors"));
    assert!(html.contains("<a href=\"02-demo.html\">demo</a>"));
    assert!(html.contains("<a href=\"03-broken-stack.html\">broken stack</a>"));
    assert!(html.contains("no &lt;engine&gt;"));
    // failures first
    assert!(html.find("02-demo.html").unwrap() < html.find("01-demo.html").unwrap());
    assert!(html.contains("images: crossbar ocs-harness/crossbar:x (local)"));
    assert!(html.contains("BarebonesAgent: 1/3 operations exercised"));
}

#[test]
fn coverage_all_failing_counts_as_a_failure_on_the_index() {
    let suite = Suite {
        scenarios: vec![run(false)],
        coverage_failure: Some("--coverage all: never exercised: BarebonesAgent.print".into()),
        coverage: Some("BarebonesAgent: 1/2 operations exercised\n".into()),
        elapsed: 3.0,
    };
    let html = render_index(&suite);
    assert_self_contained(&html);
    assert!(html.contains("<b>1</b>failed"), "{html}");
    assert!(html.contains("<span class=\"badge failed\">failed</span> ocs-harness run"));
    assert!(html.contains("never exercised: BarebonesAgent.print"));
}

#[test]
fn long_logs_are_cut_and_a_25_scenario_suite_stays_under_5_mb() {
    let mut scenarios = Vec::new();
    for i in 0..25 {
        let mut r = run(i % 5 == 0);
        r.name = format!("scenario-{i}");
        r.logs = (0..30_000)
            .map(|n| {
                let c = ["crossbar", "barebones1", "fake-data1"][n % 3];
                log(
                    c,
                    n as f64 / 5000.0,
                    &format!("line {n}: {}", "x".repeat(120)),
                )
            })
            .collect();
        scenarios.push(r);
    }
    let suite = Suite {
        scenarios,
        coverage_failure: None,
        coverage: None,
        elapsed: 600.0,
    };
    let dir = std::env::temp_dir().join(format!("ocsh-html-size-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let index = write(&dir, &suite).expect("written");
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        total += entry.unwrap().metadata().unwrap().len();
    }
    let page = std::fs::read_to_string(dir.join(page_name(0, "scenario-0"))).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(index.ends_with("index.html"));
    eprintln!("25 scenarios, 30000 log lines each: {total} bytes");
    assert!(total < 5_000_000, "{total} bytes");
    assert!(page.contains("lines cut from this report; the full log is in the run directory"));
    assert!(page.contains("line 0: "), "the head of the log is kept");
    assert!(page.contains("line 29999: "), "its end too");
}

#[test]
fn escaping_and_relative_paths() {
    assert_eq!(
        esc("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(esc("\u{1b}[31mred"), "\\u{1b}[31mred");
    assert_eq!(
        relative(Path::new("/a/b/report"), Path::new("/a/b/runs/r1")),
        "../runs/r1"
    );
    assert_eq!(relative(Path::new("/a"), Path::new("/a")), ".");
    assert_eq!(page_name(0, "a b/c"), "01-a-b-c.html");
}

#[test]
fn a_comparison_draws_both_runs_on_one_axis_and_links_their_pages() {
    let mut slow = run(true);
    for s in &mut slow.events {
        if s.at > T0 + 4.0 {
            s.at += 3.0;
        }
    }
    let suite = CompareSuite {
        baseline: "images/ocs-0.11.3.yaml".into(),
        candidate: "images/<new>.yaml".into(),
        scenarios: vec![Comparison {
            name: "demo".into(),
            verdict: "fails on candidate only".into(),
            changed: true,
            changes: "### demo\n\nFailure on the candidate:\n<message>\n```text\n- a\n```".into(),
            baseline: Some(run(false)),
            candidate: Some(slow),
        }],
    };
    let dir = std::env::temp_dir().join(format!("ocsh-html-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_compare(&dir, &suite).expect("written");
    let page = std::fs::read_to_string(dir.join("01-demo.html")).unwrap();
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let candidate = std::fs::read_to_string(dir.join("01-demo-candidate.html")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    for html in [&page, &index, &candidate] {
        assert_self_contained(html);
    }
    assert!(index.contains("<a href=\"01-demo.html\">demo</a>"));
    assert!(index.contains("1 of 1 changed"));
    assert!(page.contains("Failure on the candidate:\n&lt;message&gt;"));
    assert!(!page.contains("```"), "the Markdown fences are left out");
    assert!(page.contains("images/&lt;new&gt;.yaml"));
    assert!(page.contains("href=\"01-demo-baseline.html\""));
    // one axis: both drawings span the slower run's 5 s from its stack being ready
    let svgs: Vec<&str> = page.split("<svg").skip(1).collect();
    assert_eq!(svgs.len(), 2);
    for svg in &svgs {
        assert!(
            svg.contains(">0.0s</text>") && svg.contains(">5.0s</text>"),
            "{svg}"
        );
    }
    assert!(candidate.contains("<a href=\"01-demo.html\">← all scenarios</a>"));
}
