//! The command line's readers of the suite's events ([`crate::suite::event`]): the console
//! ([`Human`], one line per finished step as it finishes, the scenario's name on every line
//! since scenarios run in parallel) and one JSON object per line ([`Json`]).

use std::io::Write;
use std::time::Duration;

use crate::runner::{RunEvent, StepFailure};
use crate::runtime::progress::AboveBars;

pub use crate::suite::event::{Event, Reporter, ScenarioEvent, Status};

use super::output::{Format, Style};

/// The counts of a growth report.
pub struct TimeBudgetCounts {
    /// Scenarios compared (those the baseline has).
    pub scenarios: usize,
    /// Scenarios the baseline does not have.
    pub new: usize,
    /// Durations compared.
    pub compared: usize,
    /// Durations over their budget.
    pub over: usize,
}

impl TimeBudgetCounts {
    /// Count `scenarios`' growth reports.
    pub fn of(scenarios: &[crate::budget::ScenarioGrowth]) -> Self {
        TimeBudgetCounts {
            scenarios: scenarios.iter().filter(|g| g.in_baseline).count(),
            new: scenarios.iter().filter(|g| !g.in_baseline).count(),
            compared: scenarios.iter().map(|g| g.compared.len()).sum(),
            over: scenarios
                .iter()
                .flat_map(|g| &g.compared)
                .filter(|c| c.over)
                .count(),
        }
    }
}

/// The reporter for `--format`.
pub fn reporter(format: Format, verbosity: Verbosity, style: Style) -> Box<dyn Reporter> {
    match format {
        Format::Human => Box::new(Human::new(
            verbosity,
            style,
            Box::new(AboveBars::new(std::io::stdout())),
        )),
        Format::Json => Box::new(Json {
            out: std::io::stdout(),
        }),
    }
}

/// `-q`, default, `-v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// One JSON object per line on stdout, written (and flushed) as each event happens.
pub struct Json<W: Write + Send> {
    pub out: W,
}

impl<W: Write + Send> Reporter for Json<W> {
    fn event(&mut self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }
}

/// Lines for people, written as things happen: each finished step (`-q`: failed ones only),
/// the stack when it is ready, each scenario's verdict, the summary; `-v` adds the calls,
/// replies, session messages, faults and selected log lines. A failed step shows where its
/// expectation is written (as a parse error does), its problems, the last reply and logs.
pub struct Human {
    verbosity: Verbosity,
    style: Style,
    out: Box<dyn Write + Send>,
}

/// The indentation of what follows a mark and a name.
const UNDER: &str = "          ";

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `12ms` under a second, `1.2s` above.
pub fn took(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Human {
    pub fn new(verbosity: Verbosity, style: Style, out: Box<dyn Write + Send>) -> Self {
        Self {
            verbosity,
            style,
            out,
        }
    }

    fn line(&mut self, text: String) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// A line under `mark` (right-aligned in 7 columns) about `scenario`.
    fn marked(&mut self, mark: String, scenario: &str, text: &str) {
        self.line(format!("{mark:>7} {scenario} {text}"));
    }

    fn verbose(&self) -> bool {
        self.verbosity >= Verbosity::Verbose
    }

    fn step_finished(
        &mut self,
        scenario: &str,
        (step, action, duration): (usize, &str, Duration),
        failure: Option<&StepFailure>,
    ) {
        let s = self.style;
        let took = took(duration);
        match failure {
            None if self.verbosity >= Verbosity::Normal => self.marked(
                s.green("ok"),
                scenario,
                &format!("step {step}: {action} [{took}]"),
            ),
            None => {}
            Some(f) => {
                self.marked(
                    s.red("FAIL"),
                    scenario,
                    &format!("step {step} (line {}): {action} [{took}]", f.line),
                );
                // The rendering's first line says again what the step line said.
                let text = f.to_string();
                let rest = text.split_once('\n').map_or("", |(_, rest)| rest);
                self.line(indent(rest, "        "));
            }
        }
    }

    /// A runner event: finished steps and the ready stack; with `-v` the calls and the rest.
    fn run_event(&mut self, scenario: &str, event: &RunEvent) {
        let s = self.style;
        let normal = self.verbosity >= Verbosity::Normal;
        let verbose = self.verbose();
        match event {
            RunEvent::StepFinished {
                step,
                action,
                duration,
                failure,
                ..
            } => self.step_finished(scenario, (*step, action, *duration), failure.as_ref()),
            RunEvent::StackReady {
                run_id,
                built,
                after,
                ..
            } if normal => {
                let text = format!("stack {run_id} ready [{}]", took(*after));
                self.marked(s.bold("READY"), scenario, &text);
                if let Some(line) = crate::runtime::pull::proved_for_run(run_id) {
                    self.line(format!("{UNDER}{line}"));
                }
                for (image, secs) in built {
                    self.line(format!("{UNDER}built {image} in {secs:.1}s"));
                }
            }
            RunEvent::CallMade { call, .. } if verbose && !call.polled => {
                self.marked("->".into(), scenario, &call.to_string())
            }
            RunEvent::ReplyReceived { call, answer, .. } if verbose && !call.polled => {
                self.marked("<-".into(), scenario, &answer.to_string())
            }
            RunEvent::SessionMessage {
                instance, op, text, ..
            } if verbose => {
                self.marked("msg".into(), scenario, &format!("{instance}.{op}: {text}"))
            }
            RunEvent::FaultInjected {
                fault, container, ..
            } if verbose => self.marked("fault".into(), scenario, &format!("{fault} {container}")),
            RunEvent::LogLineSelected {
                container, text, ..
            } if verbose => self.marked("log".into(), scenario, &format!("{container}: {text}")),
            _ => {}
        }
    }

    /// The coverage table (`-q`: only what `--coverage all` found missing).
    fn coverage(&mut self, classes: &crate::coverage::Coverage, missing: &[String]) {
        let s = self.style;
        if self.verbosity >= Verbosity::Normal && !classes.is_empty() {
            self.line(format!(
                "{} (operations of each agent class exercised by the suite):",
                s.bold("Coverage")
            ));
            self.line(indent(classes.to_string().trim_end(), "  "));
        }
        if !missing.is_empty() {
            self.line(format!(
                "{} --coverage all: never exercised: {}",
                s.red("FAIL"),
                missing.join(", ")
            ));
        }
    }

    fn scenario_finished(&mut self, e: &Event) {
        let Event::ScenarioFinished {
            scenario,
            status,
            message,
            details,
            snapshot,
            diff,
            elapsed,
            ..
        } = e
        else {
            return;
        };
        let s = self.style;
        let normal = self.verbosity >= Verbosity::Normal;
        if *status == Status::Passed && !normal {
            return;
        }
        let mark = match status {
            Status::Passed => s.green("PASS"),
            Status::Failed => s.red("FAIL"),
            Status::Error => s.red("ERROR"),
        };
        self.line(format!("{mark:>7} [{elapsed:>6.1}s] {scenario}"));
        if let Some(snap) = snapshot.as_ref().filter(|s| *s != "snapshot matched") {
            self.line(format!("{UNDER}{snap}"));
        }
        if let Some(d) = diff {
            self.line(indent(&s.diff(d), UNDER));
        }
        match (details, message) {
            (Some(d), _) => self.line(indent(d, UNDER)),
            (None, Some(m)) if Some(m) != snapshot.as_ref() => self.line(format!("{UNDER}{m}")),
            _ => {}
        }
    }
}

impl Reporter for Human {
    fn event(&mut self, event: &Event) {
        let s = self.style;
        let normal = self.verbosity >= Verbosity::Normal;
        match event {
            Event::RunStarted { scenarios, jobs } if normal => self.line(format!(
                "{} {scenarios} scenario{} ({jobs} at a time)",
                s.bold("Running"),
                if *scenarios == 1 { "" } else { "s" }
            )),
            Event::ScenarioStarted {
                scenario,
                file,
                steps,
            } if normal => {
                let text = format!(
                    "({file}, {steps} step{})",
                    if *steps == 1 { "" } else { "s" }
                );
                self.marked(s.bold("START"), scenario, &text)
            }
            Event::Run(ScenarioEvent { event, scenario }) => self.run_event(scenario, event),
            Event::ScenarioFinished { .. } => self.scenario_finished(event),
            Event::Coverage { classes, missing } => self.coverage(classes, missing),
            Event::TimeBudgets {
                baseline,
                scenarios,
                ..
            } if normal => {
                let t = TimeBudgetCounts::of(scenarios);
                let mut text = format!(
                    "{} against {baseline}: {} durations of {} scenarios compared, {} over \
                     budget",
                    s.bold("Time budgets"),
                    t.compared,
                    t.scenarios,
                    t.over
                );
                if t.new > 0 {
                    text.push_str(&format!("; {} not in the baseline", t.new));
                }
                self.line(text);
            }
            Event::RunFinished {
                passed,
                failed,
                errors,
                elapsed,
                ..
            } => {
                let verdict = if failed + errors == 0 {
                    s.green("ok")
                } else {
                    s.red("FAILED")
                };
                self.line(format!(
                    "{}: {verdict}. {passed} passed, {failed} failed, {errors} errors; {elapsed:.1}s",
                    s.bold("Summary")
                ));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use crate::suite::event::Built;
    use std::path::Path;

    use crate::ocs::Reply;
    use crate::runner::event::{Answer, Call, Outcome};
    use crate::scenario::Scenario;
    use serde_json::{json, Value};

    use super::*;

    /// A `Write` the test can read back.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    const SCENARIO: &str = "\
name: s
stack:
  agents:
    - {instance-id: a1, agent-class: X, image: simonsobs/ocs:latest}
steps:
  - api: a1
  - wait: a1.acq
    timeout: 5s
    expect:
      session: {status: done}
";

    /// The failure of step 2 of [`SCENARIO`], pointing at its `expect:`.
    fn failure() -> StepFailure {
        let scenario =
            Scenario::from_str(SCENARIO, Path::new("s.yaml"), &Default::default()).unwrap();
        let step = &scenario.steps[1];
        let action = step.kind.to_string();
        let message = format!("step 2 (line {}): {action} failed", step.line);
        StepFailure {
            step: 2,
            line: step.line,
            action,
            problems: vec!["session.status differs:\n  + running\n  - done".into()],
            last_reply: None,
            log_tail: vec!["acq started".into()],
            container: Some("a1".into()),
            at: Some(scenario.error_at(
                step.expect.unwrap(),
                message,
                "this expectation did not hold",
                None,
            )),
        }
    }

    fn run(event: RunEvent) -> Event {
        Event::run("s", &event).expect("passed on")
    }

    fn call(action: &str, op: Option<&str>) -> Call {
        Call {
            instance: "a1".into(),
            action: action.into(),
            op: op.map(str::to_string),
            params: None,
            polled: false,
        }
    }

    /// A run of [`SCENARIO`]: step 1 passes, step 2 fails.
    pub(in crate::cli) fn events() -> Vec<Event> {
        let reply = Reply::from_value(json!([0, "Session active.", {}])).unwrap();
        vec![
            Event::RunStarted {
                scenarios: 1,
                jobs: 2,
            },
            Event::ScenarioStarted {
                scenario: "s".into(),
                file: "s.yaml".into(),
                steps: 2,
            },
            run(RunEvent::StackReady {
                run_id: "r1".into(),
                stack: vec!["a1 (X)".into(), "crossbar".into()],
                images: [("a1", "ocs:1"), ("crossbar", "cb:1")]
                    .into_iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                built: vec![("ocs:1".into(), 41.25)],
                after: Duration::from_millis(43_210),
                crossbar_boot: Duration::from_millis(6_500),
                registration: BTreeMap::from([("a1".into(), Duration::from_millis(3_250))]),
                marks: Default::default(),
            }),
            run(RunEvent::StepStarted {
                step: 1,
                line: 6,
                action: "api a1".into(),
            }),
            run(RunEvent::CallMade {
                step: 1,
                call: call("get_api", None),
            }),
            run(RunEvent::StepFinished {
                step: 1,
                line: 6,
                action: "api a1".into(),
                duration: Duration::from_millis(12),
                passed: true,
                outcome: Outcome::Error("not looked at".into()),
                failure: None,
                redact: Vec::new(),
            }),
            run(RunEvent::CallMade {
                step: 2,
                call: call("wait", Some("acq")),
            }),
            run(RunEvent::ReplyReceived {
                step: 2,
                call: call("wait", Some("acq")),
                answer: Answer::Reply(reply.clone()),
            }),
            run(RunEvent::StepFinished {
                step: 2,
                line: 7,
                action: "wait a1.acq (timeout 5s)".into(),
                duration: Duration::from_millis(1250),
                passed: false,
                outcome: Outcome::Reply(reply),
                failure: Some(failure()),
                redact: Vec::new(),
            }),
            Event::ScenarioFinished {
                scenario: "s".into(),
                file: "s.yaml".into(),
                status: Status::Failed,
                kind: Some("assertion"),
                message: Some("step 2 (line 7): wait a1.acq (timeout 5s) failed".into()),
                details: Some("run r1, files in runs/r1".into()),
                snapshot: None,
                diff: None,
                stack_ready: Some(43.2),
                elapsed: 45.0,
                run_id: Some("r1".into()),
                images: BTreeMap::from([("a1".into(), "ocs:1".into())]),
                built: vec![Built {
                    image: "ocs:1".into(),
                    seconds: 41.25,
                }],
            },
            Event::RunFinished {
                passed: 0,
                failed: 1,
                errors: 0,
                elapsed: 45.5,
                exit_code: 1,
            },
        ]
    }

    fn human(verbosity: Verbosity, events: &[Event]) -> String {
        let buf = Shared::default();
        let mut r = Human::new(verbosity, Style { color: false }, Box::new(buf.clone()));
        for e in events {
            r.event(e);
        }
        buf.text()
    }

    #[test]
    fn json_lines_are_the_runner_events_tagged_with_the_scenario_between_the_run_events() {
        let mut r = Json { out: Vec::new() };
        for e in events() {
            r.event(&e);
        }
        let text = String::from_utf8(r.out).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one object per line"))
            .collect();
        let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "run_started",
                "scenario_started",
                "stack_ready",
                "step_started",
                "call_made",
                "step_finished",
                "call_made",
                "reply_received",
                "step_finished",
                "scenario_finished",
                "run_finished"
            ]
        );
        assert!(lines[2..9].iter().all(|l| l["scenario"] == "s"), "{text}");
        assert_eq!(lines[2]["images"]["crossbar"], "cb:1");
        assert_eq!(lines[2]["built"], json!([["ocs:1", 41.25]]));
        assert_eq!(lines[2]["crossbar_boot"], 6.5);
        assert_eq!(lines[2]["registration"], json!({"a1": 3.25}));
        assert_eq!(lines[5]["duration"], 0.012);
        assert_eq!(lines[5]["passed"], true);
        let failed = &lines[8];
        assert_eq!(failed["passed"], false);
        assert_eq!(
            failed["failure"]["at"],
            json!({"file": "s.yaml", "line": 9, "column": 5})
        );
        assert_eq!(
            failed["failure"]["problems"][0],
            "session.status differs:\n  + running\n  - done"
        );
        assert_eq!(lines[9]["images"], json!({"a1": "ocs:1"}));
        assert_eq!(
            lines[9]["built"],
            json!([{"image": "ocs:1", "seconds": 41.25}])
        );
        assert_eq!(lines[10]["exit_code"], 1);
        // The scenario key is written once, after the runner's own keys.
        assert_eq!(
            text.lines().nth(3).unwrap(),
            r#"{"event":"step_started","step":1,"line":6,"action":"api a1","scenario":"s"}"#
        );
    }

    #[test]
    fn human_lines_show_each_step_as_it_ends_and_a_failure_at_its_expect_line() {
        assert_eq!(
            human(Verbosity::Normal, &events()),
            "Running 1 scenario (2 at a time)\n\
             \x20 START s (s.yaml, 2 steps)\n\
             \x20 READY s stack r1 ready [43.2s]\n\
             \x20         built ocs:1 in 41.2s\n\
             \x20    ok s step 1: api a1 [12ms]\n\
             \x20  FAIL s step 2 (line 7): wait a1.acq (timeout 5s) [1.2s]\n\
             \x20        --> s.yaml:9:5\n\
             \x20         |\n\
             \x20       9 |     expect:\n\
             \x20         |     ^^^^^^ this expectation did not hold\n\
             \x20         - session.status differs:\n\
             \x20             + running\n\
             \x20             - done\n\
             \x20         last log lines of a1:\n\
             \x20           acq started\n\
             \x20  FAIL [  45.0s] s\n\
             \x20         run r1, files in runs/r1\n\
             Summary: FAILED. 0 passed, 1 failed, 0 errors; 45.5s\n"
        );
    }

    #[test]
    fn quiet_shows_failures_and_the_summary_and_verbose_the_calls() {
        let quiet = human(Verbosity::Quiet, &events());
        assert!(quiet.starts_with("   FAIL s step 2 (line 7)"), "{quiet}");
        assert!(!quiet.contains(" ok "), "{quiet}");
        assert!(!quiet.contains("READY"), "{quiet}");
        assert!(quiet.ends_with("Summary: FAILED. 0 passed, 1 failed, 0 errors; 45.5s\n"));
        let verbose = human(Verbosity::Verbose, &events());
        for want in [
            "     -> s a1 get_api\n     ok s step 1: api a1 [12ms]\n",
            "     -> s wait a1.acq\n     <- s OK \"Session active.\"\n   FAIL s step 2",
        ] {
            assert!(verbose.contains(want), "{want:?} in:\n{verbose}");
        }
    }

    #[test]
    fn a_changed_snapshot_shows_its_diff_once() {
        let summary = "snapshot snapshots/s.snap changed; run with --accept to record it";
        let text = human(
            Verbosity::Normal,
            &[Event::ScenarioFinished {
                scenario: "s".into(),
                file: "s.yaml".into(),
                status: Status::Failed,
                kind: Some("snapshot"),
                message: Some(summary.into()),
                details: None,
                snapshot: Some(summary.into()),
                diff: Some("--- old snapshot\n+++ new result\n-a\n+b\n".into()),
                stack_ready: None,
                elapsed: 3.0,
                run_id: None,
                images: BTreeMap::new(),
                built: vec![],
            }],
        );
        assert_eq!(
            text,
            "   FAIL [   3.0s] s\n\
             \x20         snapshot snapshots/s.snap changed; run with --accept to record it\n\
             \x20         --- old snapshot\n\
             \x20         +++ new result\n\
             \x20         -a\n\
             \x20         +b\n"
        );
    }
}
