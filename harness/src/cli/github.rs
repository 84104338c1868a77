//! GitHub Actions output, where a reviewer looks: `::error` workflow commands that put a
//! failure on the scenario line (of a failing step, or of bad input) in the pull request's
//! diff, and the job summary (`$GITHUB_STEP_SUMMARY`) of a `test` run. Whether to write them
//! is read from the environment once, by the CLI ([`Github::of`]); the reporter here is
//! one more reader of the run's events.
//!
//! The commands follow GitHub's "Workflow commands for GitHub Actions": `::error
//! file={name},line={line},col={col},title={title}::{message}`, with `%`, `\r` and `\n`
//! escaped as `%25`, `%0D` and `%0A` in the message, and also `:` and `,` (`%3A`, `%2C`) in
//! the properties. They go to stderr: the runner reads commands from both streams, and stdout
//! stays the reporter's (one JSON object a line with `--format json`).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::scenario::ScenarioError;

use super::reporter::{Event, Reporter, Status};

/// What the GitHub Actions environment asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Github {
    /// `GITHUB_ACTIONS=true`: print `::error` commands.
    pub annotations: bool,
    /// `GITHUB_STEP_SUMMARY`: the file `test` appends its Markdown summary to.
    pub step_summary: Option<PathBuf>,
}

impl Github {
    /// `GITHUB_ACTIONS` and `GITHUB_STEP_SUMMARY` of the environment read once by the CLI
    /// (nothing below reads them).
    pub fn of(env: &crate::config::Env) -> Self {
        Github {
            annotations: env.var("GITHUB_ACTIONS").is_some_and(|v| v == "true"),
            step_summary: env.non_empty("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        }
    }

    /// The same, without the job summary (for commands other than `test`).
    pub fn annotations_only(&self) -> Self {
        Github {
            annotations: self.annotations,
            step_summary: None,
        }
    }

    /// Print an `::error` for each problem of a scenario file (bad input).
    pub fn scenario_errors(&self, errors: &[ScenarioError]) {
        if !self.annotations {
            return;
        }
        let mut err = std::io::stderr().lock();
        for e in errors {
            let _ = writeln!(err, "{}", scenario_error(e));
        }
    }

    /// Print an `::error` for a scenario whose run failed before or beside its steps
    /// (`kind`: infrastructure, bad input), at its file.
    pub fn run_error(&self, file: &Path, scenario: &str, kind: &str, message: &str) {
        if self.annotations {
            let title = format!("{scenario}: error ({kind})");
            eprintln!("{}", error_command(file, 0, 0, &title, message));
        }
    }

    /// Append the summary of a `test` that ran nothing because of bad input.
    pub fn bad_input_summary(&self, errors: &[ScenarioError], message: &str) {
        if let Some(path) = &self.step_summary {
            let mut md =
                format!("## ocs-harness test: bad input, nothing was run\n\n{message}\n\n");
            for e in errors {
                md.push_str(&format!(
                    "- `{}`: {}\n",
                    position(e.file(), e.line(), e.column()),
                    e.message()
                ));
            }
            append(path, &md);
        }
    }

    /// `inner` and, when GitHub asks for them, the annotations and the summary of its events.
    pub fn wrap(&self, inner: Box<dyn Reporter>) -> Box<dyn Reporter> {
        if !self.annotations && self.step_summary.is_none() {
            return inner;
        }
        Box::new(GithubReporter {
            inner,
            out: Box::new(std::io::stderr()),
            github: self.clone(),
            files: HashMap::new(),
            annotated: HashMap::new(),
            failures: Vec::new(),
            time_budgets: None,
        })
    }
}

/// Escape a command's message (GitHub's `escapeData`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a command's property value (GitHub's `escapeProperty`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::error file=..,line=..,col=..,title=..::message`; a `line` or `col` of 0 is left out,
/// and so are all three with an empty `file`.
pub fn error_command(file: &Path, line: usize, col: usize, title: &str, message: &str) -> String {
    let mut props = format!("file={}", escape_property(&file.display().to_string()));
    if file.as_os_str().is_empty() {
        props.clear();
    } else if line > 0 {
        props.push_str(&format!(",line={line}"));
        if col > 0 {
            props.push_str(&format!(",col={col}"));
        }
    }
    if !props.is_empty() {
        props.push(',');
    }
    props.push_str(&format!("title={}", escape_property(title)));
    format!("::error {props}::{}", escape_data(message))
}

/// The command for one problem of a scenario file.
pub fn scenario_error(e: &ScenarioError) -> String {
    let mut message = e.message().to_string();
    for note in e.notes() {
        message.push('\n');
        message.push_str(note);
    }
    error_command(
        e.file(),
        e.line(),
        e.column(),
        "ocs-harness: bad scenario file",
        &message,
    )
}

fn position(file: &Path, line: usize, col: usize) -> String {
    match (line, col) {
        (0, _) => file.display().to_string(),
        (l, 0) => format!("{}:{l}", file.display()),
        (l, c) => format!("{}:{l}:{c}", file.display()),
    }
}

fn append(path: &Path, text: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "ocs-harness: cannot append the job summary to {} (GITHUB_STEP_SUMMARY): {e}",
            path.display()
        );
    }
}

/// One scenario that did not pass, for the summary.
#[derive(Debug, Clone, PartialEq)]
struct Failed {
    scenario: String,
    /// `file:line:col` of the failing step, else the file.
    at: String,
    status: Status,
    /// The failure's first line.
    headline: String,
    /// Its next lines (problems, or the error's cause).
    lines: Vec<String>,
}

/// Passes every event on to `inner`; prints an `::error` for each failed step (at its
/// expectation or its line) and each scenario that failed otherwise (snapshot,
/// infrastructure, at its file), and appends the summary when the run finishes.
struct GithubReporter {
    inner: Box<dyn Reporter>,
    /// Where the commands go (stderr).
    out: Box<dyn std::io::Write + Send>,
    github: Github,
    /// Scenario name -> file.
    files: HashMap<String, String>,
    /// Scenario name -> its failed step, once annotated.
    annotated: HashMap<String, Failed>,
    failures: Vec<Failed>,
    /// The growth report's Markdown (with `--baseline-run`).
    time_budgets: Option<String>,
}

/// How many lines of a failure the summary shows.
const SUMMARY_LINES: usize = 8;

impl GithubReporter {
    fn annotate(&mut self, command: String) {
        if self.github.annotations {
            let _ = writeln!(self.out, "{command}");
        }
    }
}

impl Reporter for GithubReporter {
    fn event(&mut self, event: &Event) {
        self.inner.event(event);
        match event {
            Event::ScenarioStarted { scenario, file, .. } => {
                self.files.insert(scenario.clone(), file.clone());
            }
            Event::Run(run) => {
                if let crate::runner::RunEvent::StepFinished {
                    failure: Some(f), ..
                } = run.event.as_ref()
                {
                    let file = self.files.get(&run.scenario).cloned().unwrap_or_default();
                    let (file, line, col) = match &f.at {
                        Some(at) => (at.file().to_path_buf(), at.line(), at.column()),
                        None => (PathBuf::from(file), f.line, 0),
                    };
                    let title = format!("{}: {}", run.scenario, f.headline());
                    // The annotation says why (the problems); the reply and the log tail
                    // are in the job's log and the summary.
                    let why = f.problems.join("\n");
                    self.annotate(error_command(&file, line, col, &title, &why));
                    let body = f.body();
                    self.annotated.insert(
                        run.scenario.clone(),
                        Failed {
                            scenario: run.scenario.clone(),
                            at: position(&file, line, col),
                            status: Status::Failed,
                            headline: f.headline(),
                            lines: body.lines().map(|l| l.trim_end().to_string()).collect(),
                        },
                    );
                }
            }
            Event::ScenarioFinished {
                scenario,
                file,
                status,
                kind,
                message,
                details,
                ..
            } if *status != Status::Passed => {
                let step = self.annotated.remove(scenario);
                let failed = match (step, *kind) {
                    // The step's failure is what failed the scenario: annotated already.
                    (Some(step), Some("assertion")) => step,
                    _ => {
                        let headline = message.clone().unwrap_or_else(|| "failed".into());
                        let title = format!(
                            "{scenario}: {} ({})",
                            if *status == Status::Failed {
                                "failed"
                            } else {
                                "error"
                            },
                            kind.unwrap_or("failure")
                        );
                        let text = details.as_deref().unwrap_or(&headline);
                        self.annotate(error_command(Path::new(file), 0, 0, &title, text));
                        Failed {
                            scenario: scenario.clone(),
                            at: file.clone(),
                            status: *status,
                            lines: text
                                .lines()
                                .skip_while(|l| l.trim() == headline.trim())
                                .map(str::to_string)
                                .collect(),
                            headline,
                        }
                    }
                };
                self.failures.push(failed);
            }
            Event::TimeBudgets {
                baseline,
                rule,
                scenarios,
            } => self.time_budgets = Some(time_budgets(baseline, rule, scenarios)),
            Event::RunFinished {
                passed,
                failed,
                errors,
                elapsed,
                ..
            } => {
                if let Some(path) = &self.github.step_summary {
                    let mut md = summary(*passed, *failed, *errors, *elapsed, &self.failures);
                    if let Some(budgets) = &self.time_budgets {
                        md.push_str(budgets);
                    }
                    append(path, &md);
                }
            }
            _ => {}
        }
    }
}

/// How many rows of durations the growth report shows (every one over budget, then the
/// largest growths).
const GROWTH_ROWS: usize = 10;

/// The growth report of a run with `--baseline-run`, as Markdown: the counts, then the
/// durations over budget and the largest growths, then the scenarios the baseline lacks.
fn time_budgets(baseline: &str, rule: &str, scenarios: &[crate::budget::ScenarioGrowth]) -> String {
    use crate::budget::secs;
    let counts = super::reporter::TimeBudgetCounts::of(scenarios);
    let mut md = format!(
        "\n### Time budgets against the baseline\n\nBaseline `{}`: a duration may take {rule}. \
         {} durations of {} scenarios compared, **{} over budget**.\n",
        cell(baseline),
        counts.compared,
        counts.scenarios,
        counts.over
    );
    let mut rows: Vec<(&str, &crate::budget::Compared)> = scenarios
        .iter()
        .flat_map(|g| g.compared.iter().map(move |c| (g.scenario.as_str(), c)))
        .collect();
    // over budget first, then by growth
    rows.sort_by(|a, b| {
        b.1.over
            .cmp(&a.1.over)
            .then(b.1.ratio().total_cmp(&a.1.ratio()))
    });
    let shown = rows.iter().filter(|r| r.1.over).count().max(GROWTH_ROWS);
    if !rows.is_empty() {
        md.push_str(
            "\n| | scenario | what | baseline | now | growth | budget |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for (scenario, c) in rows.iter().take(shown) {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | ×{:.2} | {} |\n",
                if c.over { "❌" } else { "" },
                cell(scenario),
                cell(&c.what),
                secs(c.was),
                secs(c.now),
                c.ratio(),
                secs(c.budget)
            ));
        }
        if rows.len() > shown {
            md.push_str(&format!(
                "\n({} more durations within budget, each scenario's in its run's times.json)\n",
                rows.len() - shown
            ));
        }
    }
    let new: Vec<&str> = scenarios
        .iter()
        .filter(|g| !g.in_baseline)
        .map(|g| g.scenario.as_str())
        .collect();
    if !new.is_empty() {
        md.push_str(&format!(
            "\nNot in the baseline (no times compared): {}\n",
            new.iter()
                .map(|n| format!("`{}`", cell(n)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    md
}

/// A table cell: no `|` or line break.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The Markdown job summary of a `test` run: the counts, then each scenario that did not
/// pass with where and the first lines of why.
fn summary(
    passed: usize,
    failed: usize,
    errors: usize,
    elapsed: f64,
    failures: &[Failed],
) -> String {
    let verdict = if failed + errors == 0 {
        "passed"
    } else {
        "failed"
    };
    let mut md = format!(
        "## ocs-harness test {verdict}: {passed} passed, {failed} failed, {errors} errors \
         ({elapsed:.1} s)\n"
    );
    if failures.is_empty() {
        return md;
    }
    md.push_str("\n| | scenario | where | what |\n|---|---|---|---|\n");
    let mut sorted: Vec<&Failed> = failures.iter().collect();
    sorted.sort_by(|a, b| a.scenario.cmp(&b.scenario));
    for f in &sorted {
        let mark = if f.status == Status::Failed {
            "❌"
        } else {
            "⚠️"
        };
        md.push_str(&format!(
            "| {mark} | {} | `{}` | {} |\n",
            cell(&f.scenario),
            cell(&f.at),
            cell(&f.headline)
        ));
    }
    for f in sorted.iter().filter(|f| !f.lines.is_empty()) {
        md.push_str(&format!(
            "\n**{}** (`{}`): {}\n\n```text\n",
            f.scenario, f.at, f.headline
        ));
        for l in f.lines.iter().take(SUMMARY_LINES) {
            md.push_str(&l.replace("```", "`\u{200b}``"));
            md.push('\n');
        }
        if f.lines.len() > SUMMARY_LINES {
            md.push_str(&format!(
                "... ({} more lines in the log)\n",
                f.lines.len() - SUMMARY_LINES
            ));
        }
        md.push_str("```\n");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer whose text the test reads afterwards.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Nothing;
    impl Reporter for Nothing {
        fn event(&mut self, _: &Event) {}
    }

    #[test]
    fn a_failed_step_is_annotated_at_its_expectation_and_summarised() {
        let dir = std::env::temp_dir().join(format!("ocsh-github-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let summary_file = dir.join("summary.md");
        let _ = std::fs::remove_file(&summary_file);
        let out = Buf::default();
        let mut r = GithubReporter {
            inner: Box::new(Nothing),
            out: Box::new(out.clone()),
            github: Github {
                annotations: true,
                step_summary: Some(summary_file.clone()),
            },
            files: HashMap::new(),
            annotated: HashMap::new(),
            failures: Vec::new(),
            time_budgets: None,
        };
        for e in crate::cli::reporter::tests::events() {
            r.event(&e);
        }
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "one annotation, for the step:\n{text}");
        assert!(
            lines[0].starts_with("::error file=s.yaml,line=") && lines[0].contains(",col="),
            "{text}"
        );
        assert!(
            lines[0].contains("title=s%3A step 2 (line 7)%3A wait a1.acq"),
            "{text}"
        );
        assert!(
            lines[0].ends_with("::session.status differs:%0A  + running%0A  - done"),
            "{text}"
        );
        let md = std::fs::read_to_string(&summary_file).unwrap();
        assert!(
            md.starts_with("## ocs-harness test failed: 0 passed, 1 failed, 0 errors"),
            "{md}"
        );
        assert!(md.contains("| ❌ | s | `s.yaml:"), "{md}");
        assert!(md.contains("  - session.status differs:"), "{md}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_growth_report_shows_what_grew_first_and_the_scenarios_without_a_baseline() {
        use crate::budget::{Compared, ScenarioGrowth};
        let row = |what: &str, was: f64, now: f64, over: bool| Compared {
            what: what.into(),
            was,
            now,
            budget: (was * 2.0).max(was + 2.0),
            over,
        };
        let scenarios = vec![
            ScenarioGrowth {
                scenario: "slow".into(),
                in_baseline: true,
                compared: vec![
                    row("step 1 (api fake)", 0.02, 0.03, false),
                    row(
                        "step 3 (wait fake.delay_task (timeout 30s))",
                        2.0,
                        6.1,
                        true,
                    ),
                ],
            },
            ScenarioGrowth {
                scenario: "new one".into(),
                in_baseline: false,
                compared: Vec::new(),
            },
        ];
        let md = time_budgets("/b", "× 2 or + 2.00s, whichever is larger", &scenarios);
        assert!(
            md.contains("2 durations of 1 scenarios compared, **1 over budget**"),
            "{md}"
        );
        let over = md
            .find("| ❌ | slow | step 3 (wait fake.delay_task (timeout 30s)) | 2.00s | 6.10s | ×3.05 | 4.00s |")
            .expect("the grown step's row");
        let within = md
            .find("|  | slow | step 1 (api fake) | 20ms | 30ms | ×1.50 | 2.02s |")
            .expect("the other row");
        assert!(over < within, "{md}");
        assert!(
            md.contains("Not in the baseline (no times compared): `new one`"),
            "{md}"
        );
    }

    #[test]
    fn messages_and_properties_are_escaped_as_github_documents() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a: b, c%"), "a%3A b%2C c%25");
        assert_eq!(
            escape_data("a: b, c"),
            "a: b, c",
            "the message keeps : and ,"
        );
    }

    #[test]
    fn an_error_command_points_at_file_line_and_column() {
        let c = error_command(
            Path::new("scenarios/x.yaml"),
            8,
            10,
            "x: step 2 (line 8): wait a.b failed",
            "  - expected: 1\n  - got: 2",
        );
        assert_eq!(
            c,
            "::error file=scenarios/x.yaml,line=8,col=10,\
             title=x%3A step 2 (line 8)%3A wait a.b failed::  - expected: 1%0A  - got: 2"
        );
        assert_eq!(
            error_command(Path::new("a,b.yaml"), 0, 5, "t", "m"),
            "::error file=a%2Cb.yaml,title=t::m",
            "no line: no column either"
        );
        assert_eq!(
            error_command(Path::new("a.yaml"), 3, 0, "t", "m"),
            "::error file=a.yaml,line=3,title=t::m"
        );
        assert_eq!(
            error_command(Path::new(""), 3, 1, "t", "m"),
            "::error title=t::m"
        );
    }

    #[test]
    fn the_summary_has_the_counts_and_each_failure_with_its_first_lines() {
        let many: Vec<String> = (1..=12).map(|i| format!("line {i}")).collect();
        let failures = vec![
            Failed {
                scenario: "b".into(),
                at: "scenarios/b.yaml".into(),
                status: Status::Error,
                headline: "no engine | none".into(),
                lines: Vec::new(),
            },
            Failed {
                scenario: "a".into(),
                at: "scenarios/a.yaml:8:10".into(),
                status: Status::Failed,
                headline: "step 2 (line 8): wait a.b failed".into(),
                lines: many,
            },
        ];
        let md = summary(3, 1, 1, 12.34, &failures);
        assert!(
            md.starts_with("## ocs-harness test failed: 3 passed, 1 failed, 1 errors (12.3 s)\n")
        );
        let a = md
            .find("| ❌ | a | `scenarios/a.yaml:8:10` |")
            .expect("a's row");
        let b = md
            .find("| ⚠️ | b | `scenarios/b.yaml` | no engine \\| none |")
            .expect("b's row");
        assert!(a < b, "sorted by scenario:\n{md}");
        assert!(
            md.contains("line 8\n... (4 more lines in the log)\n```"),
            "{md}"
        );
        assert!(!md.contains("line 9\n"));
        assert_eq!(
            summary(2, 0, 0, 1.0, &[]),
            "## ocs-harness test passed: 2 passed, 0 failed, 0 errors (1.0 s)\n"
        );
    }
}
