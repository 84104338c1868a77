//! The suite's coverage: the operations of each agent class its runs exercised (with
//! `--coverage all`, a failed case naming those never exercised) and the code coverage its
//! runs collected, combined per measured package set.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Settings;
use crate::coverage::Coverage;
use crate::report::{Case, Failure, FailureKind};
use crate::runtime::codecov::Collected;
use crate::runtime::LaunchOptions;

use super::event::{emit, Event, SharedReporter};

/// Emit the suite's coverage; with `all` (`--coverage all`), a failed case `coverage` naming
/// every operation never exercised.
pub fn operations(coverage: &Coverage, all: bool, reporter: &SharedReporter) -> Option<Case> {
    let missing = if all { coverage.missing() } else { Vec::new() };
    emit(
        reporter,
        Event::Coverage {
            classes: coverage.clone(),
            missing: missing.clone(),
        },
    );
    if missing.is_empty() {
        return None;
    }
    let message = format!("--coverage all: never exercised: {}", missing.join(", "));
    Some(Case {
        name: "coverage".into(),
        file: String::new(),
        time: 0.0,
        failure: Some(Failure {
            kind: FailureKind::Assertion,
            details: format!(
                "{message}\nadd steps that start, stop, abort or refuse these operations"
            ),
            message,
        }),
        output: Some(coverage.to_string()),
        images: None,
    })
}

/// Where the combined code coverage reports go: `dir` (`--code-coverage-dir`), or
/// `code-coverage/` next to the runs directory.
pub fn code_dir(dir: Option<&Path>, settings: &Settings) -> PathBuf {
    match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let runs = settings.config.runs_dir.clone();
            runs.parent()
                .map_or(runs.join("code-coverage"), |p| p.join("code-coverage"))
        }
    }
}

/// Combine the code coverage data the runs collected, per measured package set, into `dir`
/// and say so; a failed case `code-coverage` when the combining fails or an agent left no
/// data.
pub async fn code(collected: Vec<Collected>, dir: &Path, settings: &Settings) -> Option<Case> {
    let first = collected.first()?;
    let files: Vec<PathBuf> = collected.iter().flat_map(|c| c.files.clone()).collect();
    let mut problems: Vec<String> = collected.iter().flat_map(|c| c.problems.clone()).collect();
    let what = first.coverage.source.join(", ");
    let t = Instant::now();
    if files.is_empty() {
        if problems.is_empty() {
            problems.push("no run left coverage data to combine".into());
        }
    } else if let Err(e) = combine(&collected, &files, dir, settings, t).await {
        problems.push(e);
    }
    if problems.is_empty() {
        return None;
    }
    for p in &problems {
        crate::runtime::notice::info(&format!("code coverage: {p}"));
    }
    Some(incomplete(&what, &problems, t))
}

/// Combine `files` into `dir` and say what they cover.
async fn combine(
    collected: &[Collected],
    files: &[PathBuf],
    dir: &Path,
    settings: &Settings,
    t: Instant,
) -> Result<(), String> {
    let first = &collected[0];
    let what = first.coverage.source.join(", ");
    let _ = std::fs::create_dir_all(dir);
    let timeout = std::time::Duration::from_secs(300);
    let engine = LaunchOptions::with_settings("code-coverage", settings).engine;
    let done = crate::runtime::codecov::combine(
        &first.coverage,
        &first.image,
        files,
        dir,
        timeout,
        &engine,
    )
    .await
    .map_err(|e| crate::runtime::display_chain(&e))?;
    let totals = done.totals.map_or("(no totals)".to_string(), |t| {
        format!(
            "{} of {} lines covered ({:.1}%)",
            t.covered_lines,
            t.num_statements,
            t.percent()
        )
    });
    crate::runtime::notice::info(&format!(
        "code coverage of {what}: {totals}, from {} data files of {} runs, \
         combined in {:.1}s; reports in {} (coverage.xml, coverage.lcov, \
         summary.txt)",
        files.len(),
        collected.len(),
        t.elapsed().as_secs_f64(),
        done.dir.display()
    ));
    Ok(())
}

/// The failed case `code-coverage`, with its problems.
fn incomplete(what: &str, problems: &[String], t: Instant) -> Case {
    let message = format!(
        "code coverage of {what} is incomplete: {}",
        problems.join("; ")
    );
    Case {
        name: "code-coverage".into(),
        file: String::new(),
        time: t.elapsed().as_secs_f64(),
        failure: Some(Failure {
            kind: FailureKind::Assertion,
            details: format!(
                "{}\na run with `code-coverage:` must leave the data of every agent: each \
                 agent's image needs coverage.py, and each agent must stop cleanly",
                problems.join("\n")
            ),
            message,
        }),
        output: None,
        images: None,
    }
}
