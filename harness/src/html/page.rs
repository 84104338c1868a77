//! A scenario's page: the failure first (the step, the `expect:` lines around it in the
//! scenario file, the problems, the last reply, the container's last log lines), the snapshot
//! diff, the timeline drawing, each step's calls and replies, then every container's log,
//! collapsed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::text::{cut, esc, href, relative, secs};
use super::{ScenarioRun, Status, CSP};
use crate::runner::event::StepFailure;
use crate::runner::RunEvent;

/// Characters of one call's reply or one outcome shown (the rest is in the run directory).
const VALUE_CHARS: usize = 20_000;
/// Characters of log text per page, shared by its containers (the head and the end of each
/// container's log are kept; the full logs are in the run directory).
const LOG_CHARS: usize = 120_000;
/// Lines of the block under a failing `expect:` shown.
const BLOCK: usize = 15;
/// Characters of one log line.
const LINE_CHARS: usize = 2_000;

pub(crate) const STYLE: &str = r#"
:root{--ok:#2f8f46;--bad:#c93c3c;--err:#b7791f;--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;color:var(--ink);margin:0;padding:0 28px 40px;max-width:1320px}
header{padding:18px 0 10px;border-bottom:1px solid var(--line);margin-bottom:16px}
header h1{font-size:22px;margin:4px 0 6px;display:flex;align-items:center;gap:10px}
header .meta{color:var(--muted);font-size:13px}
header .meta span{margin-right:16px}
a{color:#0969da}
h2{font-size:17px;margin:22px 0 8px}
code,pre,.mono{font-family:ui-monospace,"DejaVu Sans Mono","Liberation Mono",Menlo,monospace;font-size:12.5px}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 10px;overflow:auto;margin:6px 0;white-space:pre-wrap;word-break:break-word}
.badge{display:inline-block;border-radius:12px;padding:1px 10px;font-size:13px;font-weight:600;color:#fff}
.badge.passed{background:var(--ok)}.badge.failed{background:var(--bad)}.badge.error{background:var(--err)}
.failure{border:2px solid var(--bad);border-radius:8px;padding:4px 18px 12px;background:#fff5f5;margin:8px 0 18px}
.failure.error{border-color:var(--err);background:#fffaf0}
.failure h2{color:var(--bad);margin-top:12px}
.failure.error h2{color:var(--err)}
.failure .where{font-family:ui-monospace,monospace;color:var(--muted);margin-bottom:4px}
.problems{margin:8px 0;padding-left:20px}
.problems li{margin:4px 0}
.problems pre{background:#fff;border-color:#f0c2c2;margin:2px 0}
.source{padding:6px 0;background:#fff}
.source div{white-space:pre;padding:0 10px}
.source .n{display:inline-block;width:4em;color:var(--muted);text-align:right;margin-right:12px;user-select:none}
.source .hit{background:#ffe1e1;font-weight:600}
.source .caret{color:var(--bad);font-weight:700}
.diff .add{color:#116329;background:#dafbe1;display:block}
.diff .del{color:#82071e;background:#ffebe9;display:block}
.diff .hunk{color:#8250df;display:block}
pre.scroll{max-height:420px}
svg.timeline{width:100%;height:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
svg .lane{font:12px ui-monospace,monospace;fill:var(--ink)}
svg .axis{font:11px system-ui,sans-serif;fill:var(--muted);text-anchor:middle}
svg .grid{stroke:#e4e8ec;stroke-width:1}
svg .ready{stroke:var(--ok);stroke-width:1.5;stroke-dasharray:5 4}
svg .step.ok{fill:#7cc48b;stroke:var(--ok)}
svg .step.bad{fill:#ec8c8c;stroke:var(--bad);stroke-width:2}
svg a:hover .step{opacity:.75}
svg .steplabel{font:11px system-ui,sans-serif;text-anchor:middle;pointer-events:none}
svg .life{stroke:#9aa4ae;stroke-width:1.5}
svg .boot{fill:#b6d4f2;stroke:#5b8fc7}
svg .readymark{fill:var(--ok)}
svg .logtick{stroke:#b3bac1;stroke-width:1}
svg .notable{fill:#e08a00}
svg .session{fill:#3a6fd8;stroke:#fff;stroke-width:1}
svg .fault{fill:var(--bad);stroke:#fff}
svg .exit{fill:#333}
.legend{color:var(--muted);font-size:12.5px;margin:6px 0 0}
.legend i{display:inline-block;width:12px;height:10px;margin:0 4px 0 12px;vertical-align:middle;border-radius:2px}
details{border:1px solid var(--line);border-radius:6px;margin:6px 0;background:#fff}
details>summary{cursor:pointer;padding:6px 10px;list-style-position:inside}
details[open]>summary{border-bottom:1px solid var(--line)}
details>.body{padding:4px 12px 10px}
.step-ok summary .mark{color:var(--ok)}.step-bad summary .mark{color:var(--bad)}
.step-bad{border-color:var(--bad)}
.dur{color:var(--muted);float:right}
.call{margin:8px 0 2px;font-weight:600}
.note{color:var(--muted);font-style:italic}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}
td.num{text-align:right;white-space:nowrap}
.counts{display:flex;gap:12px;margin:10px 0}
.counts div{border:1px solid var(--line);border-radius:8px;padding:8px 16px;min-width:110px}
.counts b{display:block;font-size:24px}
.counts .passed b{color:var(--ok)}.counts .failed b{color:var(--bad)}.counts .error b{color:var(--err)}
"#;

/// The pages' only script: following a link to a step (`#step-3`, from the drawing or the
/// failure) opens its entry; the load time is noted on `<html data-load-ms>` (what the browser
/// test measures).
const SCRIPT: &str = "function openTarget(){var e=location.hash&&document.getElementById(location.hash.slice(1));if(e&&e.tagName==='DETAILS'){e.open=true;}}\
addEventListener('hashchange',openTarget);\
addEventListener('load',function(){openTarget();document.documentElement.setAttribute('data-load-ms',performance.now().toFixed(1));});";

/// `<!doctype html>` to `<body>`: the policy that forbids every request, the title, the style.
pub(crate) fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n<script>{SCRIPT}</script>\n</head>\n<body>\n",
        esc(title)
    )
}

/// The page of one run; `dir` is where it is written (for links into the run directory),
/// `index` the suite's page to link back to.
pub fn render_scenario(run: &ScenarioRun, dir: &Path, index: Option<&str>) -> String {
    let mut out = head(&format!(
        "{} {} — ocs-harness",
        run.status.label(),
        run.name
    ));
    let run_id = run.events.iter().find_map(|s| match &s.event {
        RunEvent::StackReady { run_id, .. } => Some(run_id.clone()),
        RunEvent::RunFinished { run_id, .. } => run_id.clone(),
        _ => None,
    });
    out.push_str("<header>\n");
    if let Some(index) = index {
        let _ = writeln!(out, "<a href=\"{}\">← all scenarios</a>", href(index));
    }
    let _ = writeln!(
        out,
        "<h1><span class=\"badge {0}\">{0}</span> {1}</h1>\n<div class=\"meta\">\
         <span>file <code>{2}</code></span><span>took {3}</span>{4}{5}</div>",
        run.status.label(),
        esc(&run.name),
        esc(&run.file),
        secs(run.elapsed),
        run_id
            .map(|id| format!("<span>run <code>{}</code></span>", esc(&id)))
            .unwrap_or_default(),
        run.run_dir
            .as_ref()
            .map(|d| format!(
                "<span>files in <a href=\"{}\">{}</a></span>",
                href(&relative(dir, d)),
                esc(&d.display().to_string())
            ))
            .unwrap_or_default(),
    );
    if let Some(images) = &run.images {
        let _ = writeln!(out, "<div class=\"meta\">{}</div>", esc(images));
    }
    out.push_str("</header>\n");
    failure_box(&mut out, run);
    if let Some(svg) = super::svg::timeline(run, super::svg::View::Steps) {
        out.push_str("<h2>Timeline of the steps</h2>\n");
        out.push_str(&svg);
        out.push_str("<h2>The whole run, bring-up included</h2>\n");
    } else {
        out.push_str("<h2>Timeline</h2>\n");
    }
    if let Some(svg) = super::svg::timeline(run, super::svg::View::Whole) {
        out.push_str(&svg);
        out.push_str(
            "<div class=\"legend\">hover a mark for details, click a step to see it:\
             <i style=\"background:#7cc48b\"></i>step<i style=\"background:#ec8c8c\"></i>failed step\
             <i style=\"background:#b6d4f2\"></i>boot / registration<i style=\"background:#2f8f46\"></i>ready\
             <i style=\"background:#3a6fd8;border-radius:6px\"></i>session message\
             <i style=\"background:#c93c3c\"></i>fault<i style=\"background:#333\"></i>exit\
             <i style=\"background:#e08a00\"></i>selected or error log line\
             <i style=\"background:#b3bac1;width:2px\"></i>log line</div>\n",
        );
    }
    stack_section(&mut out, run);
    steps_section(&mut out, run);
    logs_section(&mut out, run, dir);
    let _ = writeln!(
        out,
        "<p class=\"note\">ocs-harness {}: secrets are redacted in this report as in every \
         other output.</p>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// The failing step of the run, when one failed.
fn step_failure(run: &ScenarioRun) -> Option<&StepFailure> {
    run.events.iter().rev().find_map(|s| match &s.event {
        RunEvent::StepFinished {
            failure: Some(f), ..
        } => Some(f),
        _ => None,
    })
}

/// Why the run could not run or finish, when it could not.
fn run_error(run: &ScenarioRun) -> Option<&str> {
    run.events.iter().rev().find_map(|s| match &s.event {
        RunEvent::RunFinished { error: Some(e), .. } => Some(e.as_str()),
        _ => None,
    })
}

/// What went wrong, first: the failing step with its source, the run error, or the snapshot
/// diff.
fn failure_box(out: &mut String, run: &ScenarioRun) {
    if run.status == Status::Passed {
        if let Some(diff) = &run.diff {
            out.push_str("<h2>Snapshot</h2>\n");
            diff_block(out, diff);
        }
        return;
    }
    let class = match run.status {
        Status::Error => "failure error",
        _ => "failure",
    };
    let _ = writeln!(out, "<section class=\"{class}\" id=\"failure\">");
    if let Some(f) = step_failure(run) {
        let _ = writeln!(
            out,
            "<h2>✗ <a href=\"#step-{}\">step {}</a> (line {}): {} failed</h2>",
            f.step,
            f.step,
            f.line,
            esc(&f.action)
        );
        if let Some(at) = &f.at {
            let _ = writeln!(
                out,
                "<div class=\"where\">{}:{}:{}: {}</div>",
                esc(&at.file().display().to_string()),
                at.line(),
                at.column(),
                esc(at.message())
            );
            if let Some(src) = &run.source {
                source_excerpt(out, src, at.line(), at.column());
            }
        } else if let Some(src) = &run.source {
            source_excerpt(out, src, f.line, 0);
        }
        if !f.problems.is_empty() {
            out.push_str("<ul class=\"problems\">\n");
            for p in &f.problems {
                out.push_str("<li><pre class=\"diff\">");
                expected_actual(out, &cut(p, VALUE_CHARS));
                out.push_str("</pre></li>\n");
            }
            out.push_str("</ul>\n");
        }
        if let Some(r) = &f.last_reply {
            let text = serde_saphyr::to_string(r).unwrap_or_else(|_| r.to_string());
            let _ = writeln!(
                out,
                "<details><summary>last reply</summary><pre>{}</pre></details>",
                esc(&cut(&text, VALUE_CHARS))
            );
        }
        if let Some(c) = &f.container {
            match f.log_tail.is_empty() {
                true => {
                    let _ = writeln!(out, "<div>{}: no log output</div>", esc(c));
                }
                false => {
                    let _ = writeln!(
                        out,
                        "<details><summary>last {} log lines of <code>{}</code></summary>\
                         <pre>{}</pre></details>",
                        f.log_tail.len(),
                        esc(c),
                        esc(&cut(&f.log_tail.join("\n"), VALUE_CHARS))
                    );
                }
            }
        }
    } else {
        let _ = writeln!(
            out,
            "<h2>✗ {}</h2>",
            esc(run.message.as_deref().unwrap_or("the run did not pass"))
        );
        if let Some(kind) = &run.kind {
            let _ = writeln!(out, "<div class=\"where\">{}</div>", esc(kind));
        }
        let text = run.details.as_deref().or(run_error(run));
        if let Some(text) = text.filter(|t| run.diff.as_deref() != Some(*t)) {
            let _ = writeln!(out, "<pre>{}</pre>", esc(&cut(text, VALUE_CHARS)));
        }
    }
    if let Some(diff) = &run.diff {
        out.push_str("<h2>Snapshot diff</h2>\n");
        diff_block(out, diff);
    }
    out.push_str("</section>\n");
}

/// The lines around `line` of the scenario file (three before; after it, the block indented
/// under it, at least three lines and at most [`BLOCK`]), `line` marked, a caret under
/// `column`.
fn source_excerpt(out: &mut String, src: &str, line: usize, column: usize) {
    let lines: Vec<&str> = src.lines().collect();
    if line == 0 || line > lines.len() {
        return;
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let own = indent(lines[line - 1]);
    let block = lines[line..]
        .iter()
        .take(BLOCK)
        .take_while(|l| l.trim().is_empty() || indent(l) > own)
        .count();
    let from = line.saturating_sub(3).max(1);
    let to = (line + block.max(3)).min(lines.len());
    out.push_str("<pre class=\"source\">");
    for n in from..=to {
        let class = if n == line { " class=\"hit\"" } else { "" };
        let _ = write!(
            out,
            "<div{class}><span class=\"n\">{n}</span>{}</div>",
            esc(lines[n - 1])
        );
        if n == line && column > 0 {
            let _ = write!(
                out,
                "<div><span class=\"n\"></span><span class=\"caret\">{}^</span></div>",
                " ".repeat(column - 1)
            );
        }
    }
    out.push_str("</pre>\n");
}

/// `text`, escaped, the lines of its `(- expected, + actual)` blocks coloured (the lines
/// indented under such a header that start with `-` or `+`).
pub(crate) fn expected_actual(out: &mut String, text: &str) {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut block: Option<usize> = None;
    for line in text.lines() {
        if block.is_some_and(|i| !line.trim().is_empty() && indent(line) <= i) {
            block = None;
        }
        let class = match (block, line.trim_start().split_once(' ')) {
            (Some(_), Some(("+", _))) => "add",
            (Some(_), Some(("-", _))) => "del",
            _ => "",
        };
        let _ = match class {
            "" => writeln!(out, "{}", esc(line)),
            c => write!(out, "<span class=\"{c}\">{}</span>", esc(line)),
        };
        if line.trim_end().ends_with("(- expected, + actual):") {
            block = Some(indent(line));
        }
    }
}

/// A unified diff, its lines coloured by their first character.
fn diff_block(out: &mut String, diff: &str) {
    out.push_str("<pre class=\"diff\">");
    for line in cut(diff, VALUE_CHARS * 5).lines() {
        let class = match line.chars().next() {
            Some('+') => "add",
            Some('-') => "del",
            Some('@') => "hunk",
            _ => "",
        };
        match class {
            "" => {
                let _ = writeln!(out, "{}", esc(line));
            }
            c => {
                let _ = write!(out, "<span class=\"{c}\">{}</span>", esc(line));
            }
        }
    }
    out.push_str("</pre>\n");
}

/// The stack: each container and its image.
fn stack_section(out: &mut String, run: &ScenarioRun) {
    let Some((images, built)) = run.events.iter().find_map(|s| match &s.event {
        RunEvent::StackReady { images, built, .. } => Some((images, built)),
        _ => None,
    }) else {
        return;
    };
    out.push_str("<h2>Stack</h2>\n<table><tr><th>container</th><th>image</th></tr>\n");
    for (role, image) in images {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(role),
            esc(image)
        );
    }
    out.push_str("</table>\n");
    if !built.is_empty() {
        let list: Vec<String> = built
            .iter()
            .map(|(i, s)| format!("{} ({})", esc(i), secs(*s)))
            .collect();
        let _ = writeln!(out, "<div class=\"note\">built: {}</div>", list.join(", "));
    }
}

/// What one step did: its calls and replies, session messages, selected log lines, faults.
#[derive(Default)]
struct StepView<'a> {
    lines: Vec<(&'static str, String)>,
    finished: Option<&'a RunEvent>,
    started: Option<f64>,
}

/// Each step: collapsed when it passed, open when it failed.
fn steps_section(out: &mut String, run: &ScenarioRun) {
    let mut steps: BTreeMap<usize, StepView> = BTreeMap::new();
    let mut polls: BTreeMap<usize, usize> = BTreeMap::new();
    for s in &run.events {
        match &s.event {
            RunEvent::StepStarted { step, .. } => {
                steps.entry(*step).or_default().started = Some(s.at);
            }
            RunEvent::CallMade { step, call } if call.polled => {
                *polls.entry(*step).or_default() += 1;
            }
            RunEvent::CallMade { step, call } => steps
                .entry(*step)
                .or_default()
                .lines
                .push(("call", format!("→ {call}"))),
            RunEvent::ReplyReceived { step, call, answer } => {
                let lines = &mut steps.entry(*step).or_default().lines;
                // an `until` step's polls: only the last reply is kept
                if call.polled {
                    if let Some(last) = lines.last() {
                        if last.0 == "poll" {
                            lines.pop();
                        }
                    }
                }
                let raw = match answer {
                    crate::runner::event::Answer::Reply(r) => Some(r.raw.clone()),
                    crate::runner::event::Answer::Api(a) => Some(a.raw.clone()),
                    crate::runner::event::Answer::Value(v) => Some(v.clone()),
                    crate::runner::event::Answer::Error(_) => None,
                };
                let text = match raw {
                    Some(v) => format!(
                        "← {answer}\n{}",
                        serde_saphyr::to_string(&v).unwrap_or_else(|_| v.to_string())
                    ),
                    None => format!("← {answer}"),
                };
                lines.push((if call.polled { "poll" } else { "reply" }, text));
            }
            RunEvent::SessionMessage {
                step,
                instance,
                op,
                session_id,
                text,
                ..
            } => steps
                .entry(*step)
                .or_default()
                .lines
                .push(("session", format!("[{instance}.{op}:{session_id}] {text}"))),
            RunEvent::LogLineSelected {
                step,
                container,
                text,
            } => steps
                .entry(*step)
                .or_default()
                .lines
                .push(("log", format!("[{container}] {text}"))),
            RunEvent::FaultInjected {
                step,
                fault,
                container,
                ..
            } => steps
                .entry(*step)
                .or_default()
                .lines
                .push(("fault", format!("{fault} {container}"))),
            RunEvent::StepFinished { step, .. } => {
                steps.entry(*step).or_default().finished = Some(&s.event);
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        return;
    }
    out.push_str("<h2>Steps</h2>\n");
    for (n, view) in &steps {
        let Some(RunEvent::StepFinished {
            line,
            action,
            duration,
            passed,
            outcome,
            ..
        }) = view.finished
        else {
            let _ = writeln!(
                out,
                "<details id=\"step-{n}\"><summary>step {n}: did not finish</summary></details>"
            );
            continue;
        };
        let (class, mark, open) = match passed {
            true => ("step-ok", "✓", ""),
            false => ("step-bad", "✗", " open"),
        };
        let _ = writeln!(
            out,
            "<details class=\"{class}\" id=\"step-{n}\"{open}><summary><span class=\"mark\">{mark}</span> \
             step {n} <span class=\"note\">(line {line})</span> <code>{}</code>\
             <span class=\"dur\">{}</span></summary><div class=\"body\">",
            esc(action),
            secs(duration.as_secs_f64())
        );
        if let Some(p) = polls.get(n) {
            let _ = writeln!(out, "<div class=\"note\">{p} polls; the last reply:</div>");
        }
        for (kind, text) in &view.lines {
            let label = match *kind {
                "call" => "call",
                "reply" | "poll" => "reply",
                "session" => "session message",
                "log" => "log line selected",
                _ => "fault",
            };
            let _ = writeln!(
                out,
                "<div class=\"call\">{label}</div><pre>{}</pre>",
                esc(&cut(text, VALUE_CHARS))
            );
        }
        let normalised = outcome.normalised();
        let outcome =
            serde_saphyr::to_string(&normalised).unwrap_or_else(|_| normalised.to_string());
        let _ = writeln!(
            out,
            "<div class=\"call\">outcome (as the transcript shows it)</div><pre>{}</pre></div></details>",
            esc(&cut(&outcome, VALUE_CHARS))
        );
    }
}

/// Every container's log, collapsed; cut to the page's share with a link to the full file.
fn logs_section(out: &mut String, run: &ScenarioRun, dir: &Path) {
    let mut by: BTreeMap<&str, Vec<&crate::runtime::logs::LogLine>> = BTreeMap::new();
    for l in &run.logs {
        by.entry(l.container.as_str()).or_default().push(l);
    }
    if by.is_empty() && run.run_dir.is_none() {
        return;
    }
    out.push_str("<h2>Container logs</h2>\n");
    let t0 = run.events.first().map(|s| s.at);
    let budget = LOG_CHARS / by.len().max(1);
    for (container, lines) in &by {
        let shown: Vec<String> = lines
            .iter()
            .map(|l| {
                let at = l
                    .received
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                let when = match t0 {
                    Some(t0) => format!("+{:>8.3}", at - t0),
                    None => format!("{at:.3}"),
                };
                format!("{when}  {}", cut(&l.text, LINE_CHARS))
            })
            .collect();
        let (head, omitted, tail) = keep_ends(&shown, budget);
        let full = run.run_dir.as_ref().map(|d| {
            let file = d.join("logs").join(format!("{container}.log"));
            href(&relative(dir, &file))
        });
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code> <span class=\"note\">{} lines</span></summary><div class=\"body\">",
            esc(container),
            lines.len()
        );
        if let Some(full) = &full {
            let _ = writeln!(
                out,
                "<div class=\"note\">full log: <a href=\"{full}\">{}</a> (in the run directory)</div>",
                esc(&format!("logs/{container}.log"))
            );
        }
        out.push_str("<pre>");
        out.push_str(&esc(&head.join("\n")));
        if omitted > 0 {
            let _ = write!(
                out,
                "\n<span class=\"note\">… {omitted} lines cut from this report; the full log is in the run directory …</span>\n"
            );
        }
        out.push_str(&esc(&tail.join("\n")));
        out.push_str("</pre></div></details>\n");
    }
    if let Some(d) = &run.run_dir {
        let _ = writeln!(
            out,
            "<div class=\"note\">the whole timeline: <a href=\"{}\">timeline.log</a></div>",
            href(&relative(dir, &d.join("timeline.log")))
        );
    }
}

/// The first lines (a quarter of `budget` characters) and the last ones (the rest), and how
/// many lines in between were left out.
fn keep_ends(lines: &[String], budget: usize) -> (Vec<&str>, usize, Vec<&str>) {
    let total: usize = lines.iter().map(|l| l.len() + 1).sum();
    if total <= budget {
        return (lines.iter().map(|l| l.as_str()).collect(), 0, Vec::new());
    }
    let mut head = Vec::new();
    let mut used = 0;
    for l in lines {
        if used + l.len() + 1 > budget / 4 {
            break;
        }
        used += l.len() + 1;
        head.push(l.as_str());
    }
    let mut tail = Vec::new();
    let mut used = 0;
    for l in lines[head.len()..].iter().rev() {
        if used + l.len() + 1 > budget - budget / 4 {
            break;
        }
        used += l.len() + 1;
        tail.push(l.as_str());
    }
    tail.reverse();
    let omitted = lines.len() - head.len() - tail.len();
    (head, omitted, tail)
}
