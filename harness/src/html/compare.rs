//! The report of `compare --html`: an index of the scenarios with their verdicts, and per
//! scenario a page with what changed (transcript differences, failures, log lines that
//! appeared or vanished, latency, slower steps) above the two runs' steps drawn on one time
//! axis (counted from each stack being ready), each side's own page linked.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::page::{expected_actual, head};
use super::svg::{steps_span, timeline, View};
use super::text::{esc, href, secs};
use super::{page_name, render_scenario, ScenarioRun, Status};

/// One scenario compared.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The scenario's name.
    pub name: String,
    /// `same`, `different`, `fails on candidate only`, ...
    pub verdict: String,
    /// Whether anything changed (behaviour, failures, logs, latency, times).
    pub changed: bool,
    /// What changed, as text (empty when nothing did).
    pub changes: String,
    /// The baseline's run, when it got one.
    pub baseline: Option<ScenarioRun>,
    /// The candidate's run.
    pub candidate: Option<ScenarioRun>,
}

/// A comparison of two image sets.
#[derive(Debug, Clone, Default)]
pub struct CompareSuite {
    /// The baseline's image set.
    pub baseline: String,
    /// The candidate's image set.
    pub candidate: String,
    /// The scenarios.
    pub scenarios: Vec<Comparison>,
}

/// Write the comparison's index, one page per scenario and each side's own page into `dir`;
/// the index's path.
pub fn write_compare(dir: &Path, suite: &CompareSuite) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for (i, c) in suite.scenarios.iter().enumerate() {
        for (side, run) in [("baseline", &c.baseline), ("candidate", &c.candidate)] {
            if let Some(run) = run {
                let name = side_page(i, &c.name, side);
                std::fs::write(
                    dir.join(name),
                    render_scenario(run, dir, Some(&page_name(i, &c.name))),
                )?;
            }
        }
        std::fs::write(
            dir.join(page_name(i, &c.name)),
            render_comparison(i, c, suite),
        )?;
    }
    let index = dir.join("index.html");
    std::fs::write(&index, render_compare_index(suite))?;
    Ok(index)
}

fn side_page(i: usize, name: &str, side: &str) -> String {
    page_name(i, name).replace(".html", &format!("-{side}.html"))
}

fn badge(c: &Comparison) -> &'static str {
    match (c.verdict.as_str(), c.changed) {
        ("same", false) => "passed",
        ("same", true) => "error",
        _ => "failed",
    }
}

/// The index: each scenario's verdict, ready and run times on both sides.
pub fn render_compare_index(suite: &CompareSuite) -> String {
    let changed = suite.scenarios.iter().filter(|c| c.changed).count();
    let mut out = head(&format!(
        "ocs-harness compare: {changed} of {} changed",
        suite.scenarios.len()
    ));
    let _ = writeln!(
        out,
        "<header><h1><span class=\"badge {}\">{changed} of {} changed</span> ocs-harness compare</h1>\
         <div class=\"meta\"><span>baseline <code>{}</code></span><span>candidate <code>{}</code></span></div></header>",
        if changed == 0 { "passed" } else { "failed" },
        suite.scenarios.len(),
        esc(&suite.baseline),
        esc(&suite.candidate)
    );
    out.push_str(
        "<table><tr><th>scenario</th><th>result</th><th>baseline run</th><th>candidate run</th></tr>\n",
    );
    let took = |r: &Option<ScenarioRun>| {
        r.as_ref()
            .map(|r| format!("{} ({})", secs(r.elapsed), r.status.label()))
            .unwrap_or_default()
    };
    for (i, c) in suite.scenarios.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td><span class=\"badge {}\">{}</span></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            href(&page_name(i, &c.name)),
            esc(&c.name),
            badge(c),
            esc(&c.verdict),
            esc(&took(&c.baseline)),
            esc(&took(&c.candidate))
        );
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}

/// One scenario: what changed, then both sides' steps on one time axis.
fn render_comparison(i: usize, c: &Comparison, suite: &CompareSuite) -> String {
    let mut out = head(&format!("{} {} — ocs-harness compare", c.verdict, c.name));
    let _ = writeln!(
        out,
        "<header><a href=\"index.html\">← all scenarios</a><h1><span class=\"badge {}\">{}</span> {}</h1></header>",
        badge(c),
        esc(&c.verdict),
        esc(&c.name)
    );
    if c.changed {
        out.push_str(
            "<section class=\"failure\" id=\"failure\"><h2>What changed (baseline → candidate)</h2>\
             <pre class=\"diff scroll\">",
        );
        // The Markdown summary's text, without its heading and fences.
        let text: Vec<&str> = c
            .changes
            .trim()
            .lines()
            .filter(|l| !l.starts_with("### ") && !l.starts_with("```"))
            .collect();
        expected_actual(&mut out, &text.join("\n"));
        out.push_str("</pre></section>\n");
    }
    let span = [&c.baseline, &c.candidate]
        .iter()
        .filter_map(|r| r.as_ref().and_then(steps_span))
        .fold(0.0, f64::max);
    out.push_str(
        "<h2>The steps of both runs, on one time axis (from each stack being ready)</h2>\n",
    );
    for (side, set, run) in [
        ("baseline", &suite.baseline, &c.baseline),
        ("candidate", &suite.candidate, &c.candidate),
    ] {
        let _ = writeln!(
            out,
            "<h2>{side} <code>{}</code> {}</h2>",
            esc(set),
            match run {
                Some(r) => format!(
                    "<span class=\"badge {0}\">{0}</span> <a href=\"{1}\">its page</a>",
                    r.status.label(),
                    href(&side_page(i, &c.name, side))
                ),
                None => "<span class=\"note\">no run</span>".into(),
            }
        );
        let Some(run) = run else { continue };
        if let Some(images) = &run.images {
            let _ = writeln!(out, "<div class=\"note\">{}</div>", esc(images));
        }
        match timeline(run, View::StepsFor(span.max(0.1))) {
            Some(svg) => out.push_str(&svg),
            None => out.push_str("<p class=\"note\">nothing to draw</p>\n"),
        }
        if run.status != Status::Passed {
            if let Some(m) = &run.message {
                let _ = writeln!(out, "<pre>{}</pre>", esc(m));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}
