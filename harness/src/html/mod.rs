//! The HTML report: one self-contained page per scenario run and an `index.html` for the
//! suite, written into a directory (`test --html DIR`, `run --html DIR`). It is another reader
//! of the run's events, as the timeline, the transcript, JSON lines and JUnit are: a
//! [`Recorder`] keeps every [`RunEvent`] with the time it arrived, and the pages are rendered
//! from that list plus what the run left besides its events (its logs, already redacted, the
//! scenario's source text, the snapshot diff).
//!
//! The pages load nothing: CSS and the timeline drawing (SVG) are inline, and a
//! Content-Security-Policy forbids every request, so nothing can leave the file. Every text
//! from events and logs is escaped. Long logs are cut (with a note and a relative link to the
//! full files in the run directory) so a 25-scenario report stays small.
//!
//! Parts: this file (the data and writing the files), `page` (a scenario's page), `svg` (its
//! timeline drawing), `index` (the suite's page), `compare` (`compare --html`: two runs of each
//! scenario on one time axis), `text` (escaping, durations, paths).

mod compare;
mod index;
mod page;
mod svg;
mod text;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::runner::{RunEvent, RunObserver};
use crate::runtime::logs::LogLine;

pub use compare::{write_compare, CompareSuite, Comparison};
pub use index::render_index;
pub use page::render_scenario;

/// The CSP every page carries: no request of any kind, inline style and script only.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

/// One event and when it arrived (seconds since the epoch).
#[derive(Debug, Clone)]
pub struct Stamped {
    /// When the reader saw it.
    pub at: f64,
    /// The event (secrets already redacted by the runner).
    pub event: RunEvent,
}

/// The reader: every event of a run, stamped as it arrives.
#[derive(Debug, Default)]
pub struct Recorder {
    /// The events so far, in order.
    pub events: Vec<Stamped>,
}

impl RunObserver for Recorder {
    fn on_event(&mut self, event: &RunEvent) {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.events.push(Stamped {
            at,
            event: event.clone(),
        });
    }
}

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    /// Every step and check held.
    #[default]
    Passed,
    /// An expectation or the snapshot did not hold (a verdict).
    Failed,
    /// It gave no verdict (bad input, infrastructure).
    Error,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
        }
    }
}

/// One scenario's run, as its page shows it.
#[derive(Debug, Clone, Default)]
pub struct ScenarioRun {
    /// The scenario's name.
    pub name: String,
    /// Its file, as given.
    pub file: String,
    /// The file's text (for the excerpt around a failing step), when it could be read.
    pub source: Option<String>,
    /// How it ended.
    pub status: Status,
    /// `assertion`, `snapshot`, `bad_input`, `infrastructure` when it did not pass.
    pub kind: Option<String>,
    /// One line saying why it did not pass.
    pub message: Option<String>,
    /// The whole text of why (a run error's chain of causes).
    pub details: Option<String>,
    /// The snapshot diff, when the transcript differs from its snapshot.
    pub diff: Option<String>,
    /// The run's events, stamped.
    pub events: Vec<Stamped>,
    /// Every container's log lines (secrets redacted).
    pub logs: Vec<LogLine>,
    /// The run directory (full logs, timeline), when the run had one.
    pub run_dir: Option<PathBuf>,
    /// Wall time, seconds.
    pub elapsed: f64,
    /// Which images the run proved and where each came from.
    pub images: Option<String>,
}

/// The whole run, as the index shows it.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    /// The scenario runs, in the order to list them.
    pub scenarios: Vec<ScenarioRun>,
    /// The operation coverage table, when agents were described.
    pub coverage: Option<String>,
    /// `--coverage all`'s failure (the operations never exercised), counted as a failure.
    pub coverage_failure: Option<String>,
    /// Wall time of the whole run, seconds.
    pub elapsed: f64,
}

impl ScenarioRun {
    /// A finished run as its page shows it: passed, failed at a step, or an error (sorted as
    /// JUnit sorts it); no snapshot diff (the caller adds it).
    pub fn from_result(
        scenario: &crate::scenario::Scenario,
        result: &Result<crate::runner::RunReport, crate::runner::RunError>,
        events: Vec<Stamped>,
    ) -> Self {
        use crate::report::FailureKind;
        let mut run = ScenarioRun {
            name: scenario.name.clone(),
            file: scenario.path.display().to_string(),
            source: std::fs::read_to_string(&scenario.path).ok(),
            status: Status::Passed,
            kind: None,
            message: None,
            details: None,
            diff: None,
            events,
            logs: Vec::new(),
            run_dir: None,
            elapsed: 0.0,
            images: None,
        };
        match result {
            Ok(report) => {
                run.logs = report.logs.clone();
                run.run_dir = Some(report.run_dir.clone());
                run.elapsed = report.elapsed.as_secs_f64();
                run.images = crate::runtime::pull::proved_for_run(&report.run_id);
                if let Some(f) = &report.failure {
                    run.status = Status::Failed;
                    run.kind = Some("assertion".into());
                    run.message = Some(f.headline());
                }
            }
            Err(e) => {
                let kind = crate::report::failure_kind(e);
                run.status = match kind {
                    FailureKind::Assertion | FailureKind::Snapshot => Status::Failed,
                    FailureKind::BadInput | FailureKind::Infrastructure => Status::Error,
                };
                run.kind = Some(
                    match kind {
                        FailureKind::Assertion => "assertion",
                        FailureKind::Snapshot => "snapshot",
                        FailureKind::BadInput => "bad input",
                        FailureKind::Infrastructure => "infrastructure",
                    }
                    .into(),
                );
                let text = e.to_string();
                run.message = text.lines().next().map(String::from);
                run.details = Some(text);
                run.elapsed = run
                    .events
                    .last()
                    .zip(run.events.first())
                    .map_or(0.0, |(l, f)| l.at - f.at);
            }
        }
        run
    }
}

/// The file name of the `i`-th scenario's page: `01-barebones.html`.
pub fn page_name(i: usize, scenario: &str) -> String {
    let slug: String = scenario
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '-',
        })
        .take(80)
        .collect();
    format!("{:02}-{slug}.html", i + 1)
}

/// Write every scenario's page and `index.html` into `dir` (created); the index's path.
pub fn write(dir: &Path, suite: &Suite) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for (i, run) in suite.scenarios.iter().enumerate() {
        let html = render_scenario(run, dir, Some("index.html"));
        std::fs::write(dir.join(page_name(i, &run.name)), html)?;
    }
    let index = dir.join("index.html");
    std::fs::write(&index, render_index(suite))?;
    Ok(index)
}
