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
//! timeline drawing), `index` (the suite's page), `text` (escaping, durations, paths).

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every step and check held.
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
#[derive(Debug, Clone)]
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
    /// Wall time of the whole run, seconds.
    pub elapsed: f64,
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
