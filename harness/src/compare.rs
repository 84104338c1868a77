//! Run the same scenarios on two image sets and say what changed: operation outcomes and
//! message sequences (the normalised transcripts), log signatures that appeared or vanished,
//! readiness/run latency beyond a threshold, and each step and agent registration that grew
//! beyond the budget ratio (`budget::growth`). Reports as text and as Markdown for a
//! pull-request comment.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::runner::RunReport;
use crate::scenario::Scenario;
use crate::suite::{Planned, SuiteOptions};

/// One side (one image set) of one scenario.
#[derive(Debug, Clone)]
pub struct Side {
    /// The image set's file.
    #[allow(dead_code)] // kept with the side for the summary's provenance (issue 11)
    pub images: PathBuf,
    /// The normalised transcript, when the run got that far.
    pub transcript: Option<Value>,
    /// Why it failed (a failing step or an error before any step).
    pub failure: Option<String>,
    /// Time the stack took to come up (no image builds).
    pub stack_ready: Duration,
    /// The whole run, image checks and builds left out.
    pub elapsed: Duration,
    /// Normalised log lines per container (`container: line`).
    pub log_signatures: BTreeSet<String>,
    /// Which images this side proved and where each came from (see
    /// [`crate::runtime::LaunchReport::proved_line`]).
    pub proved: Option<String>,
    /// What its steps and agents took, when it ran.
    pub times: Option<crate::budget::RunTimes>,
    /// The run as the HTML report shows it (`compare --html`).
    pub page: crate::html::ScenarioRun,
}

/// What changed for one scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Same behaviour.
    Same,
    /// Both ran; these things differ.
    Different(Vec<String>),
    /// Only one side failed.
    FailedOnOneSide {
        /// `baseline` or `candidate`.
        side: &'static str,
        /// Its failure.
        failure: String,
    },
    /// Both failed (compared like any other outcome: the failures are shown).
    FailedBoth {
        /// Baseline's failure.
        baseline: String,
        /// Candidate's failure.
        candidate: String,
    },
}

/// The comparison of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioComparison {
    /// Scenario name.
    pub name: String,
    /// Baseline side.
    pub baseline: Side,
    /// Candidate side.
    pub candidate: Side,
    /// Behaviour verdict.
    pub verdict: Verdict,
    /// Log lines seen only on one side: `(appeared, vanished)`.
    pub logs: (Vec<String>, Vec<String>),
    /// Latency changes beyond the threshold, as text.
    pub latency: Vec<String>,
    /// Steps and registrations of the candidate that grew beyond the budget ratio against
    /// the baseline, as text.
    pub slower: Vec<String>,
}

impl ScenarioComparison {
    /// Whether anything changed (behaviour, failures, logs or latency).
    pub fn changed(&self) -> bool {
        self.verdict != Verdict::Same
            || !self.logs.0.is_empty()
            || !self.logs.1.is_empty()
            || !self.latency.is_empty()
            || !self.slower.is_empty()
    }
}

/// Options of a comparison.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// A latency change counts when it is more than this fraction of the baseline ...
    pub latency_ratio: f64,
    /// ... and more than this much in absolute terms.
    pub latency_floor: Duration,
    /// Scenario runs at once (each side of each scenario is one run).
    pub jobs: usize,
    /// When a step's duration or an agent's registration has grown (`--budget-ratio`,
    /// `--budget-floor`).
    pub budget: crate::budget::GrowthRule,
    /// The harness's settings (read once by the caller; the default: nothing set).
    pub settings: crate::config::Settings,
}

impl Default for CompareOptions {
    /// Runs at once: the machine's cores, at most 4 (a run is a stack of containers).
    fn default() -> Self {
        Self {
            latency_ratio: 0.5,
            latency_floor: Duration::from_secs(2),
            budget: Default::default(),
            settings: Default::default(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        }
    }
}

/// Normalise a log line into a signature: no timestamps, ids, addresses, keys or numbers,
/// so that two runs of the same images give the same set of signatures.
pub fn log_signature(line: &str) -> String {
    static RULES: std::sync::LazyLock<Vec<(regex::Regex, &str)>> = std::sync::LazyLock::new(|| {
        [
            (r"0x[0-9a-fA-F]+", "<addr>"),
            (
                r"\b[0-9A-Za-z]{3,5}(-[0-9A-Za-z]{3,5}){3,}\b",
                "<random-id>",
            ),
        ]
        .into_iter()
        .map(|(re, with)| (regex::Regex::new(re).expect("valid regex"), with))
        .collect()
    });
    static HEX: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b[0-9a-fA-F]{6,}\b").expect("valid regex")
    });
    static DIGITS: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\d+").expect("valid regex"));
    let mut line = crate::transcript::log_line(line);
    for (re, with) in RULES.iter() {
        line = re.replace_all(&line, *with).into_owned();
    }
    line = HEX
        .replace_all(&line, |c: &regex::Captures| {
            let m = &c[0];
            if m.chars().any(|ch| ch.is_ascii_digit()) {
                "<hex>".to_string()
            } else {
                m.to_string()
            }
        })
        .into_owned();
    let line = DIGITS.replace_all(line.trim_end(), "#");
    // Column padding depends on the numbers just replaced (`[Router    7]` vs `[Router   11]`).
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn signatures(report: &RunReport) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(report.run_dir.join("logs")) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let container = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                let sig = log_signature(line);
                if !sig.trim().is_empty() {
                    out.insert(format!("{container}: {sig}"));
                }
            }
        }
    }
    out
}

/// One side of one scenario, from its run in the suite (which made its page).
fn side(images: &Path, run: crate::suite::Finished) -> Side {
    let page = match run.page {
        Some(page) => page,
        None => crate::html::ScenarioRun::from_result(&run.scenario, &run.result, Vec::new()),
    };
    match run.result {
        Ok(report) => Side {
            images: images.to_path_buf(),
            transcript: serde_json::to_value(&report.transcript).ok(),
            failure: report.failure.as_ref().map(|f| f.to_string()),
            stack_ready: report.stack_up,
            // Image builds (a first run on a new set) are not the images' behaviour.
            elapsed: report.elapsed.saturating_sub(report.images),
            log_signatures: signatures(&report),
            proved: crate::runtime::pull::proved_for_run(&report.run_id),
            times: Some(report.times),
            page,
        },
        Err(e) => Side {
            images: images.to_path_buf(),
            transcript: None,
            failure: Some(e.to_string()),
            stack_ready: Duration::ZERO,
            elapsed: Duration::ZERO,
            log_signatures: BTreeSet::new(),
            proved: None,
            times: None,
            page,
        },
    }
}

/// Where two JSON values differ, one line per difference (`path: a -> b`).
pub fn diff_values(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_values(&p, va, vb, out),
                    (Some(va), None) => out.push(format!("{p}: {va} -> (absent)")),
                    (None, Some(vb)) => out.push(format!("{p}: (absent) -> {vb}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => diff_values(&p, va, vb, out),
                    (Some(va), None) => out.push(format!("{p}: {va} -> (absent)")),
                    (None, Some(vb)) => out.push(format!("{p}: (absent) -> {vb}")),
                    (None, None) => {}
                }
            }
        }
        (x, y) if x != y => out.push(format!("{path}: {x} -> {y}")),
        _ => {}
    }
}

/// Transcript differences, with each step's action named.
fn transcript_diff(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let steps = |v: &Value| {
        v.get("steps")
            .and_then(|s| s.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let (sa, sb) = (steps(a), steps(b));
    for i in 0..sa.len().max(sb.len()) {
        match (sa.get(i), sb.get(i)) {
            (Some(x), Some(y)) => {
                let action = x.get("action").and_then(|v| v.as_str()).unwrap_or("?");
                let mut d = Vec::new();
                diff_values("", &x["outcome"], &y["outcome"], &mut d);
                for line in d {
                    out.push(format!("step {} ({action}){line}", i + 1));
                }
            }
            (Some(x), None) => {
                out.push(format!("step {}: only on baseline: {}", i + 1, x["action"]))
            }
            (None, Some(y)) => out.push(format!(
                "step {}: only on candidate: {}",
                i + 1,
                y["action"]
            )),
            (None, None) => {}
        }
    }
    let mut d = Vec::new();
    diff_values("stack", &a["stack"], &b["stack"], &mut d);
    out.extend(d);
    out
}

fn latency_changes(a: &Side, b: &Side, o: &CompareOptions) -> Vec<String> {
    let mut out = Vec::new();
    for (what, x, y) in [
        ("time to a ready stack", a.stack_ready, b.stack_ready),
        ("whole run", a.elapsed, b.elapsed),
    ] {
        if x.is_zero() || y.is_zero() {
            continue;
        }
        let delta = y.as_secs_f64() - x.as_secs_f64();
        if delta.abs() > o.latency_floor.as_secs_f64()
            && delta.abs() > x.as_secs_f64() * o.latency_ratio
        {
            out.push(format!(
                "{what}: {:.1}s -> {:.1}s ({:+.0}%)",
                x.as_secs_f64(),
                y.as_secs_f64(),
                delta / x.as_secs_f64() * 100.0
            ));
        }
    }
    out
}

/// Compare two finished sides.
pub fn judge(
    name: &str,
    baseline: Side,
    candidate: Side,
    o: &CompareOptions,
) -> ScenarioComparison {
    let verdict = match (&baseline.failure, &candidate.failure) {
        (Some(a), Some(b)) => Verdict::FailedBoth {
            baseline: a.clone(),
            candidate: b.clone(),
        },
        (Some(a), None) => Verdict::FailedOnOneSide {
            side: "baseline",
            failure: a.clone(),
        },
        (None, Some(b)) => Verdict::FailedOnOneSide {
            side: "candidate",
            failure: b.clone(),
        },
        (None, None) => match (&baseline.transcript, &candidate.transcript) {
            (Some(a), Some(b)) => {
                let d = transcript_diff(a, b);
                if d.is_empty() {
                    Verdict::Same
                } else {
                    Verdict::Different(d)
                }
            }
            _ => Verdict::Different(vec!["a transcript is missing".into()]),
        },
    };
    let appeared: Vec<String> = candidate
        .log_signatures
        .difference(&baseline.log_signatures)
        .cloned()
        .collect();
    let vanished: Vec<String> = baseline
        .log_signatures
        .difference(&candidate.log_signatures)
        .cloned()
        .collect();
    let latency = latency_changes(&baseline, &candidate, o);
    let slower = match (&baseline.times, &candidate.times) {
        (Some(a), Some(b)) => crate::budget::growth(a, b, &o.budget)
            .iter()
            .map(|over| {
                let secs = crate::budget::secs;
                format!(
                    "{}: {} -> {} (budget {})",
                    over.what,
                    secs(over.was.unwrap_or_default()),
                    secs(over.took),
                    secs(over.budget)
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    ScenarioComparison {
        name: name.into(),
        baseline,
        candidate,
        verdict,
        logs: (appeared, vanished),
        latency,
        slower,
    }
}

/// Run every scenario on both image sets, `options.jobs` runs at once, as one suite (no
/// snapshot check: the two sides are compared with each other), and compare. An error only
/// when a run's task panicked.
pub async fn compare(
    baseline: &Path,
    candidate: &Path,
    scenarios: &[Scenario],
    options: &CompareOptions,
) -> anyhow::Result<Vec<ScenarioComparison>> {
    let sides = [("baseline", baseline), ("candidate", candidate)];
    let planned = scenarios
        .iter()
        .flat_map(|s| {
            sides.map(|(side, set)| Planned {
                scenario: s.clone(),
                images: Some(set.to_path_buf()),
                note: Some(format!("compare {}: {side} {}", s.name, set.display())),
            })
        })
        .collect();
    let mut suite = SuiteOptions::new(options.settings.clone());
    suite.jobs = options.jobs.max(1);
    suite.pages = true;
    let outcome = crate::suite::run(planned, &suite, &crate::suite::silent()).await?;
    let mut runs = outcome.runs.into_iter();
    let mut out = Vec::new();
    for s in scenarios {
        let a = runs.next().expect("two sides per scenario");
        let b = runs.next().expect("two sides per scenario");
        out.push(judge(
            &s.name,
            side(baseline, a),
            side(candidate, b),
            options,
        ));
    }
    Ok(out)
}

pub fn verdict_word(c: &ScenarioComparison) -> &'static str {
    match &c.verdict {
        Verdict::Same if c.changed() => "same behaviour, other changes",
        Verdict::Same => "same",
        Verdict::Different(_) => "different",
        Verdict::FailedOnOneSide {
            side: "baseline", ..
        } => "fails on baseline only",
        Verdict::FailedOnOneSide { .. } => "fails on candidate only",
        Verdict::FailedBoth { .. } => "fails on both",
    }
}

const LIST_CAP: usize = 25;

fn capped(lines: &[String]) -> (Vec<&String>, usize) {
    (
        lines.iter().take(LIST_CAP).collect(),
        lines.len().saturating_sub(LIST_CAP),
    )
}

/// What changed in `c` (its verdict's details, log lines, latency, slower steps), as the
/// Markdown summary has it.
pub fn changes(c: &ScenarioComparison) -> String {
    let mut m = String::new();
    changed_section(&mut m, c);
    m
}

/// The details of a scenario that changed: its verdict, log lines, latency.
fn changed_section(m: &mut String, c: &ScenarioComparison) {
    let _ = writeln!(m, "\n### {} — {}\n", c.name, verdict_word(c));
    match &c.verdict {
        Verdict::Different(lines) => {
            let (shown, more) = capped(lines);
            let _ = writeln!(
                m,
                "Transcript differences (baseline -> candidate):\n\n```text"
            );
            for l in shown {
                let _ = writeln!(m, "{l}");
            }
            if more > 0 {
                let _ = writeln!(m, "... and {more} more");
            }
            let _ = writeln!(m, "```");
        }
        Verdict::FailedOnOneSide { side, failure } => {
            let _ = writeln!(
                m,
                "Failure on the {side}:\n\n```text\n{}\n```",
                failure.trim_end()
            );
        }
        Verdict::FailedBoth {
            baseline,
            candidate,
        } => {
            let _ = writeln!(
                m,
                "Baseline failure:\n\n```text\n{}\n```\n\nCandidate failure:\n\n```text\n{}\n```",
                baseline.trim_end(),
                candidate.trim_end()
            );
        }
        Verdict::Same => {}
    }
    for (title, lines) in [
        ("Log lines that appeared", &c.logs.0),
        ("Log lines that vanished", &c.logs.1),
        ("Latency beyond the threshold", &c.latency),
        (
            "Slower beyond the budget ratio (baseline -> candidate)",
            &c.slower,
        ),
    ] {
        if lines.is_empty() {
            continue;
        }
        let (shown, more) = capped(lines);
        let _ = writeln!(m, "\n{title}:\n\n```text");
        for l in shown {
            let _ = writeln!(m, "{l}");
        }
        if more > 0 {
            let _ = writeln!(m, "... and {more} more");
        }
        let _ = writeln!(m, "```");
    }
}

/// The comparison as Markdown, for a pull-request comment.
pub fn markdown(baseline: &Path, candidate: &Path, results: &[ScenarioComparison]) -> String {
    let mut m = String::new();
    let changed = results.iter().filter(|c| c.changed()).count();
    let _ = writeln!(m, "## ocs-harness compare\n");
    let _ = writeln!(
        m,
        "Baseline `{}`, candidate `{}`: **{changed} of {} scenarios changed**.\n",
        baseline.display(),
        candidate.display(),
        results.len()
    );
    let _ = writeln!(m, "| scenario | result | ready (s) | run (s) |");
    let _ = writeln!(m, "| --- | --- | --- | --- |");
    for c in results {
        let _ = writeln!(
            m,
            "| {} | {} | {:.1} → {:.1} | {:.1} → {:.1} |",
            c.name,
            verdict_word(c),
            c.baseline.stack_ready.as_secs_f64(),
            c.candidate.stack_ready.as_secs_f64(),
            c.baseline.elapsed.as_secs_f64(),
            c.candidate.elapsed.as_secs_f64()
        );
    }
    images_section(&mut m, results);
    for c in results.iter().filter(|c| c.changed()) {
        changed_section(&mut m, c);
    }
    m
}

/// Which images each side proved (each distinct line once).
fn images_section(m: &mut String, results: &[ScenarioComparison]) {
    for (side, pick) in [
        (
            "Baseline",
            (|c: &ScenarioComparison| &c.baseline) as fn(&ScenarioComparison) -> &Side,
        ),
        ("Candidate", |c: &ScenarioComparison| &c.candidate),
    ] {
        let lines: BTreeSet<&str> = results
            .iter()
            .filter_map(|c| pick(c).proved.as_deref())
            .collect();
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(m, "\n{side} proved:\n\n```text");
        for l in lines {
            let _ = writeln!(m, "{l}");
        }
        let _ = writeln!(m, "```");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn side(transcript: Value, failure: Option<&str>, logs: &[&str]) -> Side {
        Side {
            images: "x.yaml".into(),
            transcript: Some(transcript),
            failure: failure.map(str::to_string),
            stack_ready: Duration::from_secs(8),
            elapsed: Duration::from_secs(10),
            log_signatures: logs.iter().map(|s| s.to_string()).collect(),
            proved: None,
            times: None,
            page: Default::default(),
        }
    }

    #[test]
    fn a_changed_message_is_a_difference_named_by_step() {
        let a = json!({"stack": ["fake1"], "steps": [{"step": 1, "action": "wait fake1.delay_task",
            "outcome": {"session": {"messages": ["Exited after <float> seconds"]}}}]});
        let mut b = a.clone();
        b["steps"][0]["outcome"]["session"]["messages"][0] =
            json!("Finished after <float> seconds");
        let c = judge(
            "fake-data",
            side(a.clone(), None, &[]),
            side(b, None, &[]),
            &CompareOptions::default(),
        );
        assert_eq!(
            c.verdict,
            Verdict::Different(vec![
                "step 1 (wait fake1.delay_task).session.messages[0]: \"Exited after <float> seconds\" -> \"Finished after <float> seconds\"".into()
            ])
        );
        assert!(c.changed());
        let same = judge(
            "x",
            side(a.clone(), None, &["a: x"]),
            side(a, None, &["a: x"]),
            &CompareOptions::default(),
        );
        assert_eq!(same.verdict, Verdict::Same);
        assert!(!same.changed());
    }

    #[test]
    fn one_sided_failures_logs_and_latency() {
        let t = json!({"steps": []});
        let mut slow = side(t.clone(), None, &["crossbar: new line"]);
        slow.stack_ready = Duration::from_secs(20);
        let c = judge(
            "x",
            side(t.clone(), None, &["crossbar: old line"]),
            slow,
            &CompareOptions::default(),
        );
        assert_eq!(
            c.logs,
            (
                vec!["crossbar: new line".into()],
                vec!["crossbar: old line".into()]
            )
        );
        assert_eq!(
            c.latency,
            vec!["time to a ready stack: 8.0s -> 20.0s (+150%)".to_string()]
        );
        let f = judge(
            "x",
            side(t.clone(), None, &[]),
            side(t, Some("step 2 failed"), &[]),
            &CompareOptions::default(),
        );
        assert!(matches!(
            f.verdict,
            Verdict::FailedOnOneSide {
                side: "candidate",
                ..
            }
        ));
        let md = markdown(Path::new("a.yaml"), Path::new("b.yaml"), &[c, f]);
        assert!(md.contains("**2 of 2 scenarios changed**"), "{md}");
        assert!(md.contains("| x | fails on candidate only |"), "{md}");
    }

    #[test]
    fn steps_that_grew_beyond_the_budget_ratio_are_reported() {
        use crate::budget::{RunTimes, StepTime};
        let t = json!({"steps": []});
        let times = |reg: f64, wait: f64| RunTimes {
            scenario: "x".into(),
            registration: [("b1".to_string(), reg)].into(),
            steps: vec![StepTime {
                step: 4,
                action: "wait b1.print (timeout 10s)".into(),
                duration: wait,
                passed: true,
            }],
            ..RunTimes::default()
        };
        let (mut a, mut b) = (side(t.clone(), None, &[]), side(t, None, &[]));
        a.times = Some(times(3.0, 0.05));
        b.times = Some(times(4.0, 5.2));
        let c = judge("x", a, b, &CompareOptions::default());
        assert_eq!(
            c.slower,
            ["step 4 (wait b1.print (timeout 10s)): 50ms -> 5.20s (budget 2.05s)"]
        );
        assert_eq!(c.verdict, Verdict::Same);
        assert!(c.changed(), "reported, and a failure with --strict");
        let md = markdown(Path::new("a.yaml"), Path::new("b.yaml"), &[c]);
        assert!(
            md.contains(
                "Slower beyond the budget ratio (baseline -> candidate):\n\n```text\nstep 4"
            ),
            "{md}"
        );
    }

    #[test]
    fn signatures_drop_random_ids_and_addresses() {
        assert_eq!(
            log_signature(
                "[Router 11] session=1, authid=\"4YC-EXM4-UE7E-GH2T-CKGG-TP9N\", at 0x7fcd2beb0\n"
            ),
            "[Router #] session=#, authid=\"<random-id>\", at <addr>"
        );
        assert_eq!(
            log_signature("node_id=\"f3c9f1f2-7\""),
            "node_id=\"<hex>-#\""
        );
    }

    #[test]
    fn signatures_drop_what_varies() {
        assert_eq!(
            log_signature("2026-11-27T13:44:50+0000 [Controller      7] Ok, worker \"Router worker001\" configured"),
            "[Controller #] Ok, worker \"Router worker#\" configured"
        );
    }
}
