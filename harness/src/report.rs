//! Machine-readable results: JUnit XML (written with quick-junit), one testcase per scenario.
//! A `<failure>` is the scenario's own verdict (an expectation or a snapshot did not hold); an
//! `<error>` is everything that kept it from giving one (bad input found at run time, no
//! engine, an image that did not build, a stack that never became ready), as CI dashboards
//! expect. [`error_class`] is the one place that sorts a [`RunError`] into those classes.

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
        RunError::Scenario(_) => ErrorClass::BadInput,
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
            LaunchError::Image(_)
            | LaunchError::AgentImage(_)
            | LaunchError::Engine(_)
            | LaunchError::Stack(_) => ErrorClass::Infrastructure,
        },
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
}

impl Case {
    /// The case for a scenario run (or a run that could not start).
    pub fn from_run(name: &str, file: &Path, result: &Result<RunReport, RunError>) -> Self {
        let file = file.display().to_string();
        match result {
            Ok(report) => {
                let output = std::fs::read_to_string(&report.timeline).ok();
                let failure = into_result(report).err().map(|details| {
                    let step = report.failure.as_ref().expect("a failure");
                    Failure {
                        kind: FailureKind::Assertion,
                        message: step.headline(),
                        details,
                    }
                });
                Case {
                    name: name.into(),
                    file,
                    time: report.elapsed.as_secs_f64(),
                    failure,
                    output,
                }
            }
            Err(e) => Case {
                name: name.into(),
                file,
                time: 0.0,
                failure: Some(Failure {
                    kind: error_class(e).into(),
                    message: e.to_string().lines().next().unwrap_or("error").to_string(),
                    details: e.to_string(),
                }),
                output: None,
            },
        }
    }
}

/// A JUnit XML document with one `<testsuite>` named `suite`.
pub fn junit(suite: &str, cases: &[Case]) -> String {
    let mut ts = TestSuite::new(suite);
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

/// When `$OCS_HARNESS_JUNIT_DIR` is set, write `<dir>/<case name>.xml` (used by `cargo test`,
/// where each scenario is its own test). Returns the file written.
pub fn write_junit_from_env(case: &Case) -> std::io::Result<Option<std::path::PathBuf>> {
    let Some(dir) = std::env::var_os("OCS_HARNESS_JUNIT_DIR").filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
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
            },
            Case {
                name: "snapshot".into(),
                file: "scenarios/snapshot.yaml".into(),
                time: 1.0,
                failure: failure(FailureKind::Snapshot, "snapshot changed", "-a\n+b"),
                output: None,
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
            },
        ];
        let xml = junit("ocs-harness", &cases);
        assert!(xml.contains("<failure message=\"snapshot changed\" type=\"SnapshotMismatch\">"));
        assert!(xml.contains("<error message=\"cannot reach the Docker engine\""));
        insta::assert_snapshot!(xml);
    }
}
