//! Machine-readable results: JUnit XML, one testcase per scenario, a failure carrying the
//! failing step and the merged timeline, for CI test reporting.

use std::fmt::Write as _;
use std::path::Path;

use crate::runner::{into_result, RunError, RunReport};

/// One scenario's result, as JUnit sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Scenario name.
    pub name: String,
    /// The scenario file.
    pub file: String,
    /// Seconds.
    pub time: f64,
    /// `(message, details)` when it failed.
    pub failure: Option<(String, String)>,
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
                    (
                        format!(
                            "step {} (line {}): {} failed",
                            step.step, step.line, step.action
                        ),
                        details,
                    )
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
                failure: Some((
                    e.to_string().lines().next().unwrap_or("error").to_string(),
                    e.to_string(),
                )),
                output: None,
            },
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// A JUnit XML document with one `<testsuite>` named `suite`.
pub fn junit(suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let time: f64 = cases.iter().map(|c| c.time).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{s}\" tests=\"{n}\" failures=\"{failures}\" time=\"{time:.3}\">",
        s = escape(suite),
        n = cases.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{s}\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">",
        s = escape(suite),
        n = cases.len()
    );
    for c in cases {
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" time=\"{:.3}\"",
            escape(&c.name),
            escape(suite),
            escape(&c.file),
            c.time
        );
        if c.failure.is_none() && c.output.is_none() {
            x.push_str("/>\n");
            continue;
        }
        x.push_str(">\n");
        if let Some((message, details)) = &c.failure {
            let _ = writeln!(
                x,
                "      <failure message=\"{}\" type=\"ScenarioFailure\">{}</failure>",
                escape(message),
                escape(details)
            );
        }
        if let Some(out) = &c.output {
            let _ = writeln!(x, "      <system-out>{}</system-out>", escape(out));
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
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
                failure: Some((
                    "step 5 (line 35): wait a.b failed".into(),
                    "- expected \"x\" <y> & z\u{1b}[0m".into(),
                )),
                output: Some("12:00:00.000 [harness] step 1".into()),
            },
        ];
        insta::assert_snapshot!(junit("ocs-harness", &cases));
    }
}
