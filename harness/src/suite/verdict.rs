//! One finished run judged: its snapshot checked (when its steps passed), its JUnit case, its
//! `scenario_finished` event and, for the HTML report, its page.

use std::collections::BTreeMap;

use crate::html;
use crate::report::{Case, Failure, FailureKind};
use crate::runner::{RunError, RunReport};
use crate::scenario::Scenario;
use crate::snapshot::{self, Mode};

use super::event::{emit, Built, Event, SharedReporter, Status};

/// What the stack of a run was made of, from its `StackReady` event.
#[derive(Debug, Default)]
pub struct Images {
    /// The image of each container, by role.
    pub used: BTreeMap<String, String>,
    /// The images the run built.
    pub built: Vec<Built>,
}

/// The snapshot check of a run: its outcome, or why it could not be made.
pub type Checked = Result<snapshot::Outcome, String>;

/// One finished run: its snapshot check (when `mode` is given and its steps passed), its
/// `scenario_finished`, its JUnit case (failed by the snapshot too) and the snapshot's diff
/// when it changed.
pub fn finish(
    scenario: &Scenario,
    result: &Result<RunReport, RunError>,
    images: Images,
    mode: Option<Mode>,
    reporter: &SharedReporter,
) -> (Case, Option<Checked>, Option<String>) {
    let mut case = Case::from_run(&scenario.name, &scenario.path, result);
    let checked = match (result, mode) {
        (Ok(report), Some(mode)) if report.failure.is_none() => {
            Some(check_snapshot(scenario, report, mode))
        }
        _ => None,
    };
    let (snapshot, diff) = match &checked {
        Some(checked) => judge(checked, &mut case),
        None => (None, None),
    };
    emit(
        reporter,
        finished_event(scenario, result, &case, images, (snapshot, diff.clone())),
    );
    (case, checked, diff)
}

/// The `scenario_finished` of a run whose verdict is `case`, with the snapshot check's
/// summary and diff.
fn finished_event(
    scenario: &Scenario,
    result: &Result<RunReport, RunError>,
    case: &Case,
    images: Images,
    (snapshot, diff): (Option<String>, Option<String>),
) -> Event {
    let (status, kind) = match case.failure.as_ref().map(|f| f.kind) {
        None => (Status::Passed, None),
        Some(FailureKind::Assertion) => (Status::Failed, Some("assertion")),
        Some(FailureKind::Snapshot) => (Status::Failed, Some("snapshot")),
        Some(FailureKind::BadInput) => (Status::Error, Some("bad_input")),
        Some(FailureKind::Infrastructure) => (Status::Error, Some("infrastructure")),
    };
    let report = result.as_ref().ok();
    let details = match (&case.failure, result) {
        // The step's failure went out with its step; the run's files and timeline follow.
        (Some(f), Ok(report)) if f.kind == FailureKind::Assertion => Some(run_files(report)),
        (Some(f), Err(_)) => Some(f.details.clone()),
        _ => None,
    };
    Event::ScenarioFinished {
        scenario: scenario.name.clone(),
        file: scenario.path.display().to_string(),
        status,
        kind,
        message: case.failure.as_ref().map(|f| f.message.clone()),
        details,
        snapshot,
        diff,
        stack_ready: report.map(|r| r.stack_ready.as_secs_f64()),
        elapsed: report.map_or(case.time, |r| r.elapsed.as_secs_f64()),
        run_id: report.map(|r| r.run_id.clone()),
        images: images.used,
        built: images.built,
    }
}

/// Check a passing run's transcript against its snapshot.
fn check_snapshot(scenario: &Scenario, report: &RunReport, mode: Mode) -> Checked {
    snapshot::check(&scenario.path, &scenario.name, &report.transcript, mode)
        .map_err(|e| e.to_string())
}

/// A failed check fails `case`. The check's summary and the diff of a changed snapshot.
fn judge(checked: &Checked, case: &mut Case) -> (Option<String>, Option<String>) {
    let outcome = match checked {
        Ok(outcome) => outcome,
        Err(e) => {
            case.failure = Some(Failure {
                kind: FailureKind::Infrastructure,
                message: format!("the snapshot could not be checked: {e}"),
                details: e.clone(),
            });
            return (None, None);
        }
    };
    let diff = match outcome {
        snapshot::Outcome::Changed { diff, .. } => Some(diff.clone()),
        _ => None,
    };
    if outcome.failed() {
        case.failure = Some(Failure {
            kind: FailureKind::Snapshot,
            message: outcome.summary(),
            details: match &diff {
                Some(d) => format!("{}\n{d}", outcome.summary()),
                None => outcome.summary(),
            },
        });
    }
    (Some(outcome.summary()), diff)
}

/// Where a failed run's files are, the tail of its timeline, and the kept stack if any.
fn run_files(report: &RunReport) -> String {
    let mut text = format!(
        "run {}, files in {}\n--- timeline (last {} lines; all of it in {}) ---\n{}",
        report.run_id,
        report.run_dir.display(),
        report.timeline_tail.len(),
        report.timeline.display(),
        report.timeline_tail.join("\n")
    );
    if let Some(k) = &report.kept {
        text.push_str(&format!("\n{k}"));
    }
    text
}

/// A finished run as the HTML report shows it: its page, with the verdict of its JUnit case
/// (which also holds the snapshot check) and the snapshot's diff.
pub fn scenario_page(
    scenario: &Scenario,
    result: &Result<RunReport, RunError>,
    case: &Case,
    diff: Option<String>,
    events: Vec<html::Stamped>,
) -> html::ScenarioRun {
    let mut run = html::ScenarioRun::from_result(scenario, result, events);
    if let Some(f) = &case.failure {
        if f.kind == FailureKind::Snapshot {
            run.status = html::Status::Failed;
            run.kind = Some("snapshot".into());
            run.message = Some(f.message.clone());
        }
    }
    run.elapsed = case.time.max(run.elapsed);
    run.diff = diff;
    run
}
