//! What a `test` run tells the outside, as events: run started, scenario started, step
//! finished, scenario finished, run finished. Readers are reporters: the console (`human`)
//! and one JSON object per line (`json`). Steps are fed from each finished run's report for
//! now; the runner's live event stream can feed the same `Event::Step` as each step ends.

use std::io::Write;

use serde::Serialize;

use super::output::{Format, Style};

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    /// An expectation or its snapshot did not hold.
    Failed,
    /// No verdict: bad input or infrastructure (see `kind`).
    Error,
}

/// One event of a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        scenarios: usize,
        jobs: usize,
    },
    ScenarioStarted {
        scenario: String,
        file: String,
    },
    Step {
        scenario: String,
        step: usize,
        action: String,
        passed: bool,
        /// Line of the step in the scenario file, when it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
        /// What went wrong (expectation diffs, errors, timeouts).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        problems: Vec<String>,
        /// Seconds, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        duration: Option<f64>,
    },
    ScenarioFinished {
        scenario: String,
        file: String,
        status: Status,
        /// `assertion`, `snapshot`, `bad_input` or `infrastructure` when it did not pass.
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        details: Option<String>,
        /// The snapshot check's result, when it ran.
        #[serde(skip_serializing_if = "Option::is_none")]
        snapshot: Option<String>,
        /// The snapshot diff, when it changed.
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
        /// Seconds to a ready stack (images included).
        #[serde(skip_serializing_if = "Option::is_none")]
        stack_ready: Option<f64>,
        /// Seconds, the whole scenario.
        elapsed: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    RunFinished {
        passed: usize,
        failed: usize,
        errors: usize,
        elapsed: f64,
        exit_code: u8,
    },
}

/// A reader of events.
pub trait Reporter: Send {
    fn event(&mut self, event: &Event);
}

/// The reporter for `--format`.
pub fn reporter(format: Format, verbosity: Verbosity, style: Style) -> Box<dyn Reporter> {
    match format {
        Format::Human => Box::new(Human {
            verbosity,
            style,
            out: Box::new(std::io::stdout()),
        }),
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

/// One JSON object per line on stdout.
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

/// Lines for people on stdout: failures always, passes unless `-q`, every step with `-v`
/// (a failing step always).
pub struct Human {
    pub verbosity: Verbosity,
    pub style: Style,
    pub out: Box<dyn Write + Send>,
}

impl Human {
    fn line(&mut self, text: String) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Human {
    fn step(&mut self, e: &Event) {
        let Event::Step {
            scenario,
            step,
            action,
            passed,
            line,
            problems,
            duration,
        } = e
        else {
            return;
        };
        if *passed && self.verbosity < Verbosity::Verbose {
            return;
        }
        let s = self.style;
        let mark = if *passed {
            s.green("ok")
        } else {
            s.red("FAIL")
        };
        let took = duration.map(|d| format!(" [{d:.1}s]")).unwrap_or_default();
        let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
        self.line(format!(
            "{mark:>7} {scenario} step {step}{at}: {action}{took}"
        ));
        for p in problems {
            let text = indent(p, "            ");
            self.line(format!("          - {}", text.trim_start()));
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
            self.line(format!("          {snap}"));
        }
        if let Some(d) = diff {
            self.line(indent(&s.diff(d), "          "));
        }
        match (details, message) {
            (Some(d), _) => self.line(indent(d, "          ")),
            (None, Some(m)) if Some(m) != snapshot.as_ref() => self.line(format!("          {m}")),
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
            Event::ScenarioStarted { scenario, file } if normal => {
                self.line(format!("{:>7} {scenario} ({file})", s.bold("START")))
            }
            Event::Step { .. } => self.step(event),
            Event::ScenarioFinished { .. } => self.scenario_finished(event),
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
mod tests {
    use super::*;

    #[test]
    fn json_events_are_one_object_per_line_tagged_by_event() {
        let mut r = Json { out: Vec::new() };
        r.event(&Event::RunStarted {
            scenarios: 2,
            jobs: 2,
        });
        r.event(&Event::Step {
            scenario: "s".into(),
            step: 3,
            action: "wait a.b".into(),
            passed: false,
            line: Some(12),
            problems: vec!["- expected x\n+ got y".into()],
            duration: None,
        });
        let text = String::from_utf8(r.out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["event"], "run_started");
        assert_eq!(lines[1]["event"], "step");
        assert_eq!(lines[1]["passed"], false);
        assert_eq!(lines[1]["problems"][0], "- expected x\n+ got y");
        assert!(lines[1].get("duration").is_none());
    }

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

    #[test]
    fn a_changed_snapshot_shows_its_diff_once_and_a_failed_step_its_problems() {
        let buf = Shared::default();
        let mut r = Human {
            verbosity: Verbosity::Normal,
            style: Style { color: false },
            out: Box::new(buf.clone()),
        };
        r.event(&Event::Step {
            scenario: "s".into(),
            step: 1,
            action: "api a".into(),
            passed: true,
            line: None,
            problems: vec![],
            duration: None,
        });
        r.event(&Event::Step {
            scenario: "s".into(),
            step: 2,
            action: "wait a.b".into(),
            passed: false,
            line: Some(9),
            problems: vec!["messages differ:\n  + x\n  - y".into()],
            duration: Some(1.25),
        });
        let summary = "snapshot snapshots/s.snap changed; run with --accept to record it";
        r.event(&Event::ScenarioFinished {
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
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "   FAIL s step 2 (line 9): wait a.b [1.2s]\n\
             \x20         - messages differ:\n\
             \x20             + x\n\
             \x20             - y\n\
             \x20  FAIL [   3.0s] s\n\
             \x20         snapshot snapshots/s.snap changed; run with --accept to record it\n\
             \x20         --- old snapshot\n\
             \x20         +++ new result\n\
             \x20         -a\n\
             \x20         +b\n"
        );
    }
}
