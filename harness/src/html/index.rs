//! The suite's page: how many passed, failed and gave no verdict, each scenario with its
//! status, duration and a link to its page (failures first), the images the run proved and
//! where each came from, and the operation coverage.

use std::fmt::Write as _;

use super::page::head;
use super::text::{cut, esc, href, secs};
use super::{page_name, Status, Suite};

/// `index.html`.
pub fn render_index(suite: &Suite) -> String {
    let count = |s: Status| suite.scenarios.iter().filter(|r| r.status == s).count();
    let coverage_failed = usize::from(suite.coverage_failure.is_some());
    let (passed, failed, errors) = (
        count(Status::Passed),
        count(Status::Failed) + coverage_failed,
        count(Status::Error),
    );
    let overall = match (failed, errors) {
        (0, 0) => Status::Passed,
        (0, _) => Status::Error,
        _ => Status::Failed,
    };
    let mut out = head(&format!(
        "{} — ocs-harness: {passed} passed, {failed} failed, {errors} errors",
        overall.label()
    ));
    let _ = writeln!(
        out,
        "<header><h1><span class=\"badge {0}\">{0}</span> ocs-harness run</h1>\
         <div class=\"meta\"><span>{1} scenarios</span><span>took {2}</span></div></header>",
        overall.label(),
        suite.scenarios.len(),
        secs(suite.elapsed)
    );
    let _ = writeln!(
        out,
        "<div class=\"counts\"><div class=\"passed\"><b>{passed}</b>passed</div>\
         <div class=\"failed\"><b>{failed}</b>failed</div>\
         <div class=\"error\"><b>{errors}</b>errors</div></div>"
    );
    out.push_str(
        "<h2>Scenarios</h2>\n<table><tr><th>status</th><th>scenario</th><th>file</th>\
         <th>duration</th><th>why it did not pass</th></tr>\n",
    );
    let mut rows: Vec<(usize, &super::ScenarioRun)> = suite.scenarios.iter().enumerate().collect();
    // failures first, then errors, then passes; file order within each
    rows.sort_by_key(|(i, r)| {
        let rank = match r.status {
            Status::Failed => 0,
            Status::Error => 1,
            Status::Passed => 2,
        };
        (rank, *i)
    });
    for (i, r) in rows {
        let _ = writeln!(
            out,
            "<tr><td><span class=\"badge {0}\">{0}</span></td><td><a href=\"{1}\">{2}</a></td>\
             <td><code>{3}</code></td><td class=\"num\">{4}</td><td>{5}</td></tr>",
            r.status.label(),
            href(&page_name(i, &r.name)),
            esc(&r.name),
            esc(&r.file),
            secs(r.elapsed),
            esc(&cut(r.message.as_deref().unwrap_or(""), 300))
        );
    }
    out.push_str("</table>\n");
    let mut proved: Vec<&str> = suite
        .scenarios
        .iter()
        .filter_map(|r| r.images.as_deref())
        .collect();
    proved.sort();
    proved.dedup();
    if !proved.is_empty() {
        out.push_str("<h2>Images</h2>\n<ul>\n");
        for line in proved {
            let _ = writeln!(out, "<li><code>{}</code></li>", esc(line));
        }
        out.push_str("</ul>\n");
    }
    if let Some(failure) = &suite.coverage_failure {
        let _ = writeln!(
            out,
            "<h2>Operation coverage</h2>\n<div class=\"failure\"><span class=\"badge failed\">\
             failed</span> <code>{}</code></div>",
            esc(failure)
        );
    }
    if let Some(coverage) = suite.coverage.as_deref().filter(|c| !c.is_empty()) {
        let _ = writeln!(
            out,
            "<h2>Operation coverage</h2>\n<pre>{}</pre>",
            esc(coverage)
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">ocs-harness {}</p>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    out
}
