//! The suite's pieces without an engine (nothing here runs a stack): the launch options of
//! a run, the verdict of a run that failed before its stack, and the outcome's totals.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::{Env, Settings};
use crate::report::FailureKind;
use crate::runner::RunError;
use crate::scenario::Scenario;

use super::event::{Event, Reporter, SharedReporter, Status};
use super::{Exit, Finished, Planned, SuiteOptions, SuiteOutcome};

/// A reporter that keeps every event.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<Event>>>);

impl Reporter for Kept {
    fn event(&mut self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Kept {
    fn shared(&self) -> SharedReporter {
        Arc::new(Mutex::new(Box::new(self.clone())))
    }
}

fn scenario(name: &str) -> Scenario {
    let text = format!(
        "name: {name}\nstack:\n  agents:\n    - {{instance-id: a1, agent-class: X, image: \
         simonsobs/ocs:latest}}\nsteps:\n  - api: a1\n"
    );
    let path = PathBuf::from(format!("{name}.yaml"));
    Scenario::from_str(&text, &path, &Default::default()).unwrap()
}

fn options() -> SuiteOptions {
    SuiteOptions::new(Settings::from_vars(Env::from_vars(
        Vec::<(String, String)>::new(),
        None,
    )))
}

#[test]
fn a_run_may_have_its_own_image_set() {
    let mut options = options();
    options.images = Some("suite.yaml".into());
    options.log_allow = vec!["allowed".into()];
    let mut own = Planned::new(scenario("a"));
    own.images = Some("own.yaml".into());
    let launch = |run: &Planned| super::schedule::launch_options(run, &options);
    assert_eq!(launch(&own).images_file, Some("own.yaml".into()));
    let plain = launch(&Planned::new(scenario("b")));
    assert_eq!(plain.images_file, Some("suite.yaml".into()));
    assert_eq!(plain.log_allow, ["allowed"]);
    assert_eq!(plain.scenario, "b");
}

/// `name`'s run, failed before its stack, judged as the suite judges it.
fn failed(index: usize, name: &str, reporter: &SharedReporter) -> Finished {
    let scenario = scenario(name);
    let result = Err(RunError::Teardown("the engine went away".into()));
    let mode = Some(crate::snapshot::Mode::Ci);
    let images = Default::default();
    let (case, snapshot, diff) = super::verdict::finish(&scenario, &result, images, mode, reporter);
    let page = Some(super::scenario_page(
        &scenario,
        &result,
        &case,
        diff,
        Vec::new(),
    ));
    Finished {
        index,
        scenario,
        result,
        snapshot,
        case,
        page,
    }
}

#[test]
fn a_run_that_failed_before_its_stack_is_an_error_with_no_snapshot_check() {
    let kept = Kept::default();
    let run = failed(0, "a", &kept.shared());
    assert!(run.snapshot.is_none());
    let failure = run.case.failure.as_ref().expect("failed");
    assert_eq!(failure.kind, FailureKind::Infrastructure);
    let events = kept.0.lock().unwrap().clone();
    let [Event::ScenarioFinished {
        scenario,
        status,
        kind,
        details,
        snapshot,
        ..
    }] = &events[..]
    else {
        panic!("one scenario_finished: {events:?}");
    };
    assert_eq!(scenario, "a");
    assert_eq!(*status, Status::Error);
    assert_eq!(*kind, Some("infrastructure"));
    assert_eq!(details.as_deref(), Some(failure.details.as_str()));
    assert!(snapshot.is_none());
}

#[test]
fn the_outcome_counts_its_cases_and_gives_the_pages_by_file() {
    let kept = Kept::default();
    let reporter = kept.shared();
    let runs: Vec<Finished> = ["c", "a", "b"]
        .iter()
        .enumerate()
        .map(|(i, n)| failed(i, n, &reporter))
        .collect();
    let mut outcome = SuiteOutcome {
        cases: runs.iter().map(|r| r.case.clone()).collect(),
        runs,
        coverage: Default::default(),
        coverage_failure: None,
        started: Instant::now(),
    };
    assert_eq!(outcome.exit(), Exit::Infrastructure);
    let pages: Vec<String> = outcome.take_pages().into_iter().map(|p| p.file).collect();
    assert_eq!(pages, ["a.yaml", "b.yaml", "c.yaml"]);
    assert!(outcome.take_pages().is_empty(), "each page once");
    outcome.finished(&reporter);
    let events = kept.0.lock().unwrap().clone();
    assert!(matches!(
        events.last(),
        Some(Event::RunFinished {
            passed: 0,
            failed: 0,
            errors: 3,
            exit_code: 3,
            ..
        })
    ));
}
