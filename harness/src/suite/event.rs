//! The suite's events: the suite runner's own (run started, scenario started, scenario
//! finished with its timings and images, the time budgets, the coverage, run finished with
//! the totals) and, in between, each scenario's [`RunEvent`]s as the runner emits them,
//! tagged with the scenario ([`Event::Run`]). Readers are [`Reporter`]s: the command line's
//! console and JSON-lines reporters, the GitHub annotations, or [`Silent`] for a caller that
//! reads the suite's outcome instead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::runner::RunEvent;
use serde::Serialize;

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its steps and its snapshot held.
    Passed,
    /// An expectation or its snapshot did not hold.
    Failed,
    /// No verdict: bad input or infrastructure (see `kind`).
    Error,
}

/// An image a run built, and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Built {
    /// The image's name.
    pub image: String,
    /// Seconds.
    pub seconds: f64,
}

/// One event of a suite.
// A few hundred bytes, made once per event and passed by reference: no box needed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The suite starts: how many scenarios, how many at a time.
    RunStarted { scenarios: usize, jobs: usize },
    /// A scenario's run starts (it got its turn).
    ScenarioStarted {
        scenario: String,
        file: String,
        /// How many steps it has.
        steps: usize,
    },
    /// A scenario's run ended and its snapshot was checked: its verdict.
    ScenarioFinished {
        scenario: String,
        file: String,
        status: Status,
        /// `assertion`, `snapshot`, `bad_input` or `infrastructure` when it did not pass.
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// The error; for a failed step, the run's files and the timeline's tail (the step's
        /// failure is in its `step_finished`).
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
        /// The image of each container (after overrides), by role, once the stack was ready.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        images: BTreeMap<String, String>,
        /// The images this scenario's run built.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        built: Vec<Built>,
    },
    /// With `--baseline-run`, before `run_finished`: each run's durations against the
    /// baseline's (its registrations and steps that both have), and which grew beyond the
    /// rule (those also failed their scenario's `time budgets` check).
    TimeBudgets {
        /// The `--baseline-run` given.
        baseline: String,
        /// The growth rule: `× 2 or + 2.00s, whichever is larger`.
        rule: String,
        scenarios: Vec<crate::budget::ScenarioGrowth>,
    },
    /// The suite ended: the totals and the exit code.
    RunFinished {
        passed: usize,
        failed: usize,
        errors: usize,
        elapsed: f64,
        exit_code: u8,
    },
    /// The operations of each agent class the suite exercised, and how; `missing` lists
    /// those never exercised when `--coverage all` asked for every one.
    Coverage {
        classes: crate::coverage::Coverage,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        missing: Vec<String>,
    },
    /// One of a scenario's runner events, as it happened: the runner's object (tagged by
    /// `event`: `stack_ready`, `step_started`, `call_made`, `reply_received`,
    /// `session_message`, `log_line_selected`, `fault_injected`, `step_finished`) with
    /// `scenario` added.
    #[serde(untagged)]
    Run(ScenarioEvent),
}

/// A runner event of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioEvent {
    /// The runner's event.
    #[serde(flatten)]
    pub event: Box<RunEvent>,
    /// The scenario it is of.
    pub scenario: String,
}

impl Event {
    /// `event` of `scenario`, when reporters take it: the runner's `run_started` and
    /// `run_finished` are not passed on (`scenario_started` and `scenario_finished` say more).
    pub fn run(scenario: &str, event: &RunEvent) -> Option<Event> {
        match event {
            RunEvent::RunStarted { .. } | RunEvent::RunFinished { .. } => None,
            _ => Some(Event::Run(ScenarioEvent {
                event: Box::new(event.clone()),
                scenario: scenario.to_string(),
            })),
        }
    }
}

/// A reader of events.
pub trait Reporter: Send {
    /// Take one event, as it happens.
    fn event(&mut self, event: &Event);
}

/// The reporter, shared by the runs of a suite.
pub type SharedReporter = Arc<Mutex<Box<dyn Reporter>>>;

/// Pass `event` to `reporter`.
pub fn emit(reporter: &SharedReporter, event: Event) {
    if let Ok(mut r) = reporter.lock() {
        r.event(&event);
    }
}

/// A reporter that reads nothing: for callers that take the suite's outcome (`compare`,
/// `bench`, [`crate::testing`]).
pub struct Silent;

impl Reporter for Silent {
    fn event(&mut self, _: &Event) {}
}

/// A [`Silent`] reporter, shared.
pub fn silent() -> SharedReporter {
    Arc::new(Mutex::new(Box::new(Silent)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_runner_s_own_start_and_finish_are_not_passed_on() {
        let started = RunEvent::RunStarted {
            scenario: "s".into(),
            steps: 2,
        };
        assert!(Event::run("s", &started).is_none());
        let finished = RunEvent::RunFinished {
            scenario: "s".into(),
            run_id: None,
            passed: true,
            failed_step: None,
            error: None,
            elapsed: Duration::ZERO,
        };
        assert!(Event::run("s", &finished).is_none());
    }
}
