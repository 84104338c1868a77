//! Machine-readable results: JUnit XML (written with quick-junit), one testcase per scenario.
//! A `<failure>` is the scenario's own verdict (an expectation or a snapshot did not hold); an
//! `<error>` is everything that kept it from giving one (bad input found at run time, no
//! engine, an image that did not build, a stack that never became ready), as CI dashboards
//! expect. [`error_class`] is the one place that sorts a [`RunError`] into those classes;
//! [`failure_kind`] adds the errors that are verdicts (an agent that crashed at start-up, an
//! operation a step drives that its agent does not offer).

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::runner::{into_result, RunError, RunReport};
use crate::runtime::LaunchError;

/// Why a scenario gave no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The user's input is wrong (a scenario, an image set, a site config, a build context).
    BadInput,
    /// The machinery failed (no engine, image build or pull, a stack that never became ready,
    /// teardown).
    Infrastructure,
}

/// Sort a run error into bad input or infrastructure.
pub fn error_class(e: &RunError) -> ErrorClass {
    use crate::runtime::images::ImageError;
    match e {
        RunError::MissingOperation(_) => ErrorClass::BadInput,
        RunError::Teardown(_) => ErrorClass::Infrastructure,
        RunError::Launch { error, .. } => match error {
            LaunchError::Plan(_) | LaunchError::ImageSet(_) | LaunchError::Config(_) => {
                ErrorClass::BadInput
            }
            LaunchError::Image(ImageError::Context { .. } | ImageError::Config(_)) => {
                ErrorClass::BadInput
            }
            LaunchError::AgentImage(a) if matches!(a.error, ImageError::Context { .. }) => {
                ErrorClass::BadInput
            }
            // pip could not fetch a package: most often a version the index does not have
            LaunchError::AgentPackages(a) if matches!(a.error, ImageError::Tool { .. }) => {
                ErrorClass::BadInput
            }
            LaunchError::Image(_)
            | LaunchError::AgentImage(_)
            | LaunchError::AgentPackages(_)
            | LaunchError::Engine(_)
            | LaunchError::Stack(_) => ErrorClass::Infrastructure,
        },
    }
}

/// How a run that ended in an error counts. An agent whose container exited before it
/// registered crashed at start-up: that is the agent under test failing, a verdict
/// (`<failure>`, exit 1), not the machinery; so is an operation a step drives that the live
/// agent does not offer (a misspelt name looks the same: the message names the agent's
/// operations). Every other error is sorted by [`error_class`].
/// An agent still running at the readiness deadline stays infrastructure (a loaded machine
/// looks the same).
pub fn failure_kind(e: &RunError) -> FailureKind {
    use crate::runtime::stack::StackError;
    use crate::wait::WaitError;
    match e {
        RunError::Launch {
            error: LaunchError::Stack(StackError::NotReady { role, error, .. }),
            ..
        } if role.instance_id().is_some() && matches!(**error, WaitError::Failed { .. }) => {
            FailureKind::Assertion
        }
        RunError::MissingOperation(_) => FailureKind::Assertion,
        _ => error_class(e).into(),
    }
}

/// What kind of non-success a case is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An expectation did not hold (`<failure type="ScenarioFailure">`).
    Assertion,
    /// The transcript differs from its snapshot, or has none (`<failure type="SnapshotMismatch">`).
    Snapshot,
    /// Bad input found at run time (`<error type="BadInput">`).
    BadInput,
    /// Infrastructure (`<error type="Infrastructure">`).
    Infrastructure,
}

impl FailureKind {
    fn junit(self) -> (NonSuccessKind, &'static str) {
        match self {
            FailureKind::Assertion => (NonSuccessKind::Failure, "ScenarioFailure"),
            FailureKind::Snapshot => (NonSuccessKind::Failure, "SnapshotMismatch"),
            FailureKind::BadInput => (NonSuccessKind::Error, "BadInput"),
            FailureKind::Infrastructure => (NonSuccessKind::Error, "Infrastructure"),
        }
    }
}

impl From<ErrorClass> for FailureKind {
    fn from(c: ErrorClass) -> Self {
        match c {
            ErrorClass::BadInput => FailureKind::BadInput,
            ErrorClass::Infrastructure => FailureKind::Infrastructure,
        }
    }
}

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Failure (a verdict) or error (no verdict), and of what kind.
    pub kind: FailureKind,
    /// One line.
    pub message: String,
    /// The whole text.
    pub details: String,
}

/// One scenario's result, as JUnit sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Scenario name.
    pub name: String,
    /// The scenario file.
    pub file: String,
    /// Seconds.
    pub time: f64,
    /// Set when it did not pass.
    pub failure: Option<Failure>,
    /// The timeline, for `<system-out>`.
    pub output: Option<String>,
    /// Which images the run proved and where each came from (a JUnit property `images`).
    pub images: Option<String>,
}

impl Case {
    /// The case for a scenario run (or a run that could not start).
    pub fn from_run(name: &str, file: &Path, result: &Result<RunReport, RunError>) -> Self {
        let file = file.display().to_string();
        match result {
            Ok(report) => {
                let output = std::fs::read_to_string(&report.timeline).ok();
                let failure = into_result(report).err().map(|failed| {
                    let step = report.failure.as_ref().expect("a failure");
                    Failure {
                        kind: FailureKind::Assertion,
                        message: step.headline(),
                        details: failed.to_string(),
                    }
                });
                Case {
                    name: name.into(),
                    file,
                    time: report.elapsed.as_secs_f64(),
                    failure,
                    output,
                    images: crate::runtime::pull::proved_for_run(&report.run_id),
                }
            }
            Err(e) => Case {
                name: name.into(),
                file,
                time: 0.0,
                failure: Some(Failure {
                    kind: failure_kind(e),
                    message: e.to_string().lines().next().unwrap_or("error").to_string(),
                    details: e.to_string(),
                }),
                output: None,
                images: None,
            },
        }
    }
}

/// A JUnit XML document with one `<testsuite>` named `suite`.
pub fn junit(suite: &str, cases: &[Case]) -> String {
    junit_with(suite, cases, &[])
}

/// [`junit`], with `properties` on the `<testsuite>` (the suite's operation coverage).
pub fn junit_with(suite: &str, cases: &[Case], properties: &[(String, String)]) -> String {
    let mut ts = TestSuite::new(suite);
    for (name, value) in properties {
        ts.add_property((name.as_str(), value.as_str()));
    }
    let mut total = 0.0;
    for c in cases {
        let status = match &c.failure {
            None => TestCaseStatus::success(),
            Some(f) => {
                let (kind, ty) = f.kind.junit();
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(f.message.as_str())
                    .set_type(ty)
                    .set_description(f.details.as_str());
                s
            }
        };
        let mut tc = TestCase::new(c.name.as_str(), status);
        tc.set_classname(suite)
            .set_time(Duration::from_secs_f64(c.time.max(0.0)));
        tc.add_property(("file", c.file.as_str()));
        if let Some(images) = &c.images {
            tc.add_property(("images", images.as_str()));
        }
        if let Some(out) = &c.output {
            tc.set_system_out(out.as_str());
        }
        total += c.time.max(0.0);
        ts.add_test_case(tc);
    }
    ts.set_time(Duration::from_secs_f64(total));
    let mut report = Report::new(suite);
    report
        .set_time(Duration::from_secs_f64(total))
        .add_test_suite(ts);
    report
        .to_string()
        .expect("a JUnit report serialises to a string")
}

/// JUnit reports merged into one (`ocs-harness junit-merge`), with a Markdown summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The merged JUnit XML.
    pub xml: String,
    /// A table per input report and the total, then every case that did not pass.
    pub summary: String,
}

/// Merge JUnit reports `(label, xml)` (e.g. one per CI shard, read with quick-junit's
/// reader): suites of the same name become one suite holding every case in input order;
/// counts and times add up. An unreadable report is an error naming its label.
pub fn merge_junit(inputs: &[(String, String)]) -> Result<Merged, String> {
    let mut suites: Vec<TestSuite> = Vec::new();
    let mut rows = String::new();
    let mut total = Duration::ZERO;
    for (label, xml) in inputs {
        let report = Report::deserialize_from_str(xml)
            .map_err(|e| format!("{label}: not a JUnit report: {e}"))?;
        let time = report.time.unwrap_or_default();
        total += time;
        rows.push_str(&summary_row(label, &report, time));
        for suite in report.test_suites {
            merge_suite(&mut suites, suite);
        }
    }
    let mut merged = Report::new("ocs-harness");
    merged.set_time(total).add_test_suites(suites);
    let summary = merge_summary(inputs.len(), &rows, &merged, total);
    let xml = merged
        .to_string()
        .map_err(|e| format!("cannot write the merged report: {e}"))?;
    Ok(Merged { xml, summary })
}

/// Add `suite`'s cases to the suite of the same name (created when there is none).
fn merge_suite(suites: &mut Vec<TestSuite>, suite: TestSuite) {
    let index = match suites.iter().position(|s| s.name == suite.name) {
        Some(i) => i,
        None => {
            let mut fresh = TestSuite::new(suite.name.clone());
            fresh.add_properties(suite.properties.iter().cloned());
            suites.push(fresh);
            suites.len() - 1
        }
    };
    let target = &mut suites[index];
    let time = target.time.unwrap_or_default() + suite.time.unwrap_or_default();
    target.set_time(time).add_test_cases(suite.test_cases);
}

/// `| label | tests | passed | failures | errors | skipped | seconds |`
fn summary_row(label: &str, r: &Report, time: Duration) -> String {
    let passed = r.tests - r.failures - r.errors - r.skipped;
    format!(
        "| {label} | {} | {passed} | {} | {} | {} | {:.1} |\n",
        r.tests,
        r.failures,
        r.errors,
        r.skipped,
        time.as_secs_f64()
    )
}

/// The merged report's Markdown summary: the table, then each case that did not pass.
fn merge_summary(reports: usize, rows: &str, merged: &Report, total: Duration) -> String {
    let mut md = format!(
        "## ocs-harness: {reports} JUnit report(s) merged\n\n\
         | report | tests | passed | failures | errors | skipped | seconds |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n{rows}"
    );
    md.push_str(&summary_row("**all**", merged, total));
    let mut bad = String::new();
    for case in merged.test_suites.iter().flat_map(|s| &s.test_cases) {
        if let TestCaseStatus::NonSuccess {
            kind, message, ty, ..
        } = &case.status
        {
            let what = match kind {
                NonSuccessKind::Failure => "failure",
                NonSuccessKind::Error => "error",
            };
            let file = case
                .properties
                .iter()
                .find(|p| p.name.as_str() == "file")
                .map(|p| format!(" ({})", p.value.as_str()))
                .unwrap_or_default();
            let ty = ty
                .as_ref()
                .map(|t| format!(" {}", t.as_str()))
                .unwrap_or_default();
            let message = message.as_ref().map(|m| m.as_str()).unwrap_or("");
            bad.push_str(&format!(
                "- `{}`{file}: {what}{ty}: {message}\n",
                case.name.as_str()
            ));
        }
    }
    if !bad.is_empty() {
        md.push_str("\nNot passed:\n\n");
        md.push_str(&bad);
    }
    md
}

/// With a directory (`$OCS_HARNESS_JUNIT_DIR`, [`Settings::junit_dir`](crate::config::Settings::junit_dir)),
/// write `<dir>/<case name>.xml` (used by `cargo test`, where each scenario is its own test).
/// Returns the file written.
pub fn write_junit_in(
    dir: Option<&std::path::Path>,
    case: &Case,
) -> std::io::Result<Option<std::path::PathBuf>> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.xml", case.name));
    std::fs::write(&path, junit("ocs-harness", std::slice::from_ref(case)))?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_has_one_testcase_per_scenario_and_escapes() {
        let failure = |kind, message: &str, details: &str| {
            Some(Failure {
                kind,
                message: message.into(),
                details: details.into(),
            })
        };
        let cases = vec![
            Case {
                name: "barebones".into(),
                file: "scenarios/barebones.yaml".into(),
                time: 10.5,
                failure: None,
                output: None,
                images: None,
            },
            Case {
                name: "broken".into(),
                file: "scenarios/broken.yaml".into(),
                time: 3.25,
                failure: failure(
                    FailureKind::Assertion,
                    "step 5 (line 35): wait a.b failed",
                    "- expected \"x\" <y> & z\u{1b}[0m",
                ),
                output: Some("12:00:00.000 [harness] step 1".into()),
                images: None,
            },
            Case {
                name: "snapshot".into(),
                file: "scenarios/snapshot.yaml".into(),
                time: 1.0,
                failure: failure(FailureKind::Snapshot, "snapshot changed", "-a\n+b"),
                output: None,
                images: None,
            },
            Case {
                name: "no-engine".into(),
                file: "scenarios/no-engine.yaml".into(),
                time: 0.0,
                failure: failure(
                    FailureKind::Infrastructure,
                    "cannot reach the Docker engine",
                    "cannot reach the Docker engine (x)",
                ),
                output: None,
                images: None,
            },
        ];
        let xml = junit("ocs-harness", &cases);
        assert!(xml.contains("<failure message=\"snapshot changed\" type=\"SnapshotMismatch\">"));
        assert!(xml.contains("<error message=\"cannot reach the Docker engine\""));
        insta::assert_snapshot!(xml);
    }
    #[test]
    fn junit_reports_of_two_shards_merge_into_one_with_a_summary() {
        let case = |name: &str, failure: Option<Failure>| Case {
            name: name.into(),
            file: format!("scenarios/{name}.yaml"),
            time: 2.0,
            failure,
            output: Some(format!("timeline of {name}")),
            images: Some("ocs: x (recipe-built)".into()),
        };
        let fail = Failure {
            kind: FailureKind::Assertion,
            message: "step 2 (line 9): wait a.b failed".into(),
            details: "- expected".into(),
        };
        let error = Failure {
            kind: FailureKind::Infrastructure,
            message: "cannot reach the Docker engine".into(),
            details: "cannot reach the Docker engine (x)".into(),
        };
        let one = junit("ocs-harness", &[case("a", None), case("b", Some(fail))]);
        let two = junit("ocs-harness", &[case("c", Some(error))]);
        let merged = merge_junit(&[("shard 1".into(), one), ("shard 2".into(), two)]).unwrap();
        let report = Report::deserialize_from_str(&merged.xml).unwrap();
        assert_eq!(report.test_suites.len(), 1);
        assert_eq!((report.tests, report.failures, report.errors), (3, 1, 1));
        let suite = &report.test_suites[0];
        let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(suite.time, Some(Duration::from_secs(6)));
        assert!(merged.xml.contains("timeline of c"), "{}", merged.xml);
        assert!(merged.xml.contains("name=\"images\""), "{}", merged.xml);
        let md = &merged.summary;
        assert!(md.contains("| shard 1 | 2 | 1 | 1 | 0 | 0 | 4.0 |"), "{md}");
        assert!(md.contains("| shard 2 | 1 | 0 | 0 | 1 | 0 | 2.0 |"), "{md}");
        assert!(md.contains("| **all** | 3 | 1 | 1 | 1 | 0 | 6.0 |"), "{md}");
        assert!(
            md.contains("- `b` (scenarios/b.yaml): failure ScenarioFailure: step 2"),
            "{md}"
        );
        assert!(md.contains("- `c` (scenarios/c.yaml): error Infrastructure: cannot"));
        let bad = merge_junit(&[("x.xml".into(), "<nope".into())]).unwrap_err();
        assert!(bad.starts_with("x.xml: not a JUnit report"), "{bad}");
    }

    #[test]
    fn an_agent_that_exits_before_it_registers_is_a_failure_not_infrastructure() {
        use crate::runtime::role::Role;
        use crate::runtime::stack::StackError;
        use crate::wait::WaitError;
        let not_ready = |role: Role, error: WaitError| RunError::Launch {
            located: None,
            error: LaunchError::Stack(StackError::NotReady {
                role,
                error: Box::new(error),
                log_tail: Vec::new(),
            }),
        };
        let exited = || WaitError::Failed {
            condition: "agent fake1 to register".into(),
            reason: "the container exited with code 1".into(),
            after: Duration::from_secs(2),
        };
        let timed_out = || WaitError::Timeout {
            condition: "agent fake1 to register".into(),
            timeout: Duration::from_secs(120),
            last_seen: "not registered yet".into(),
        };
        let crashed = not_ready(Role::agent("fake1"), exited());
        assert_eq!(failure_kind(&crashed), FailureKind::Assertion);
        assert_eq!(
            failure_kind(&not_ready(Role::registry(), exited())),
            FailureKind::Assertion
        );
        let slow = not_ready(Role::agent("fake1"), timed_out());
        assert_eq!(failure_kind(&slow), FailureKind::Infrastructure);
        let crossbar = not_ready(Role::Crossbar, exited());
        assert_eq!(failure_kind(&crossbar), FailureKind::Infrastructure);
        let service = not_ready(Role::Service("web".into()), exited());
        assert_eq!(failure_kind(&service), FailureKind::Infrastructure);
    }
}
