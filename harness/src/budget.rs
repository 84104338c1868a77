//! Time budgets: what a run's steps and agents took ([`RunTimes`], written to
//! `<run dir>/times.json` and read back as a baseline), when a duration has grown too much
//! against a baseline ([`GrowthRule`]), and the default budgets derived from the run's own
//! floor ([`Defaults`]) where the scenario gives no number. Pure: the runner records the times
//! and checks them (`runner::checks`), the command line loads baselines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The name of a run's times file in its run directory.
pub const TIMES_FILE: &str = "times.json";

/// What one run's steps and agents took.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunTimes {
    /// The scenario's name.
    pub scenario: String,
    /// The run id.
    #[serde(default)]
    pub run_id: String,
    /// Whether every step passed (a failed run's times are kept, but a passing run is the
    /// better baseline).
    #[serde(default)]
    pub passed: bool,
    /// Seconds from crossbar's container running to its bridge answering.
    #[serde(default)]
    pub crossbar_boot: f64,
    /// Each agent's registration: seconds from its container running (or released) to its
    /// first `get_api` answer.
    #[serde(default)]
    pub registration: BTreeMap<String, f64>,
    /// Each finished step, in order.
    #[serde(default)]
    pub steps: Vec<StepTime>,
}

/// What one step took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTime {
    /// 1-based step number.
    pub step: usize,
    /// What it did (`wait barebones1.print (timeout 10s)`).
    pub action: String,
    /// Seconds.
    pub duration: f64,
    /// Whether it passed.
    pub passed: bool,
}

/// When a duration has grown too much against its baseline: more than `ratio` times the
/// baseline *and* more than `floor` above it (so 10 ms -> 30 ms is noise, not growth).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrowthRule {
    /// How many times the baseline a duration may take.
    pub ratio: f64,
    /// How much longer than the baseline it may always take.
    pub floor: Duration,
}

/// `--budget-ratio`'s default.
pub const DEFAULT_RATIO: f64 = 2.0;
/// `--budget-floor`'s default.
pub const DEFAULT_FLOOR: Duration = Duration::from_secs(2);

impl Default for GrowthRule {
    fn default() -> Self {
        Self {
            ratio: DEFAULT_RATIO,
            floor: DEFAULT_FLOOR,
        }
    }
}

impl GrowthRule {
    /// The budget a baseline of `base` seconds gives: the larger of `ratio` × base and
    /// base + floor.
    pub fn budget(&self, base: f64) -> f64 {
        (base * self.ratio).max(base + self.floor.as_secs_f64())
    }

    /// Whether `now` seconds is over the budget of a baseline of `base` seconds.
    pub fn grew(&self, base: f64, now: f64) -> bool {
        now > self.budget(base)
    }
}

/// A duration over its budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Over {
    /// What took too long: `step 9 (wait barebones1.print)`, `agent barebones1's registration`.
    pub what: String,
    /// The step, for a step.
    pub step: Option<usize>,
    /// The agent, for a registration.
    pub agent: Option<String>,
    /// Seconds it took.
    pub took: f64,
    /// Seconds it was allowed.
    pub budget: f64,
    /// Where the budget came from: `the baseline's 0.05s`, `ready-within`, ...
    pub why: String,
    /// The baseline's seconds, when the budget came from a baseline.
    pub was: Option<f64>,
}

impl std::fmt::Display for Over {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} took {}, over its budget of {} ({})",
            self.what,
            secs(self.took),
            secs(self.budget),
            self.why
        )
    }
}

/// Seconds as people read them: `12ms`, `1.25s`, `23.4s`.
pub fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 10.0 {
        format!("{s:.2}s")
    } else {
        format!("{s:.1}s")
    }
}

/// One duration of a run set against the same one of its baseline (a growth report's row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compared {
    /// What it is: `agent a1's registration`, `step 2 (wait a1.print (timeout 10s))`.
    pub what: String,
    /// The baseline's seconds.
    pub was: f64,
    /// This run's seconds.
    pub now: f64,
    /// The seconds the growth rule allows.
    pub budget: f64,
    /// Whether it grew beyond the rule.
    pub over: bool,
}

/// The growth report of one scenario: its durations against the baseline's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioGrowth {
    /// The scenario's name.
    pub scenario: String,
    /// Whether the baseline has times of this scenario (a new scenario has none).
    pub in_baseline: bool,
    /// Each duration compared, in the run's order (registrations, then steps).
    pub compared: Vec<Compared>,
}

impl ScenarioGrowth {
    /// The growth report of the run `now` against `baseline`.
    pub fn of(baseline: &Baseline, now: &RunTimes, rule: &GrowthRule) -> Self {
        let base = baseline.get(&now.scenario);
        ScenarioGrowth {
            scenario: now.scenario.clone(),
            in_baseline: base.is_some(),
            compared: base.map(|b| compare(b, now, rule)).unwrap_or_default(),
        }
    }
}

impl Compared {
    /// now / was (was of 0 counts as 1 ms).
    pub fn ratio(&self) -> f64 {
        self.now / self.was.max(0.001)
    }
}

/// Every duration of `now` that `base` has too: each agent's registration, and each step that
/// passed in both runs and is the same step (same number, same action).
pub fn compare(base: &RunTimes, now: &RunTimes, rule: &GrowthRule) -> Vec<Compared> {
    let row = |what: String, was: f64, now: f64| Compared {
        what,
        was,
        now,
        budget: rule.budget(was),
        over: rule.grew(was, now),
    };
    let mut out = Vec::new();
    for (agent, &took) in &now.registration {
        if let Some(&was) = base.registration.get(agent) {
            out.push(row(format!("agent {agent}'s registration"), was, took));
        }
    }
    for s in now.steps.iter().filter(|s| s.passed) {
        if let Some(b) = base
            .steps
            .iter()
            .find(|b| b.step == s.step && b.action == s.action && b.passed)
        {
            out.push(row(
                format!("step {} ({})", s.step, s.action),
                b.duration,
                s.duration,
            ));
        }
    }
    out
}

/// The durations of `now` that grew beyond `rule` against `base`: each agent's registration,
/// and each step that passed in both runs and is the same step (same number, same action).
pub fn growth(base: &RunTimes, now: &RunTimes, rule: &GrowthRule) -> Vec<Over> {
    let mut out = Vec::new();
    for (agent, &took) in &now.registration {
        let Some(&was) = base.registration.get(agent) else {
            continue;
        };
        if rule.grew(was, took) {
            out.push(Over {
                what: format!("agent {agent}'s registration"),
                step: None,
                agent: Some(agent.clone()),
                took,
                budget: rule.budget(was),
                why: baseline_why(was, rule),
                was: Some(was),
            });
        }
    }
    for s in now.steps.iter().filter(|s| s.passed) {
        let Some(b) = base
            .steps
            .iter()
            .find(|b| b.step == s.step && b.action == s.action && b.passed)
        else {
            continue;
        };
        if rule.grew(b.duration, s.duration) {
            out.push(Over {
                what: format!("step {} ({})", s.step, s.action),
                step: Some(s.step),
                agent: None,
                took: s.duration,
                budget: rule.budget(b.duration),
                why: baseline_why(b.duration, rule),
                was: Some(b.duration),
            });
        }
    }
    out
}

/// Where a budget from a baseline of `was` seconds comes from.
pub fn baseline_why(was: f64, rule: &GrowthRule) -> String {
    format!(
        "the baseline's {} × {} or + {}, whichever is larger",
        secs(was),
        rule.ratio,
        secs(rule.floor.as_secs_f64())
    )
}

/// The default budgets, derived from the run's own floor, for what the scenario gives no
/// number for and no baseline covers.
///
/// - **Registration**: an agent may take [`READY_RATIO`] × the run's crossbar boot (its
///   container running to its bridge answering: a Python service starting on the same engine
///   under the same load, measured in the same run), and never less than [`READY_FLOOR`].
/// - **Single calls** (`start`, `status`, `stop`, `abort`, `call`, `api` without `timeout`:
///   one round trip through the bridge, which an agent answers at once): [`CALL_RATIO`] × the
///   run's fastest single call, and never less than [`CALL_FLOOR`]. Steps that wait for
///   something (`wait`, `until`, `logs`, faults, ...) have no default budget: their timeout
///   bounds them, and a baseline or a `within` says how long they should take.
pub struct Defaults;

/// See [`Defaults`].
pub const READY_RATIO: f64 = 1.5;
/// See [`Defaults`].
pub const READY_FLOOR: Duration = Duration::from_secs(15);
/// See [`Defaults`].
pub const CALL_RATIO: f64 = 50.0;
/// See [`Defaults`].
pub const CALL_FLOOR: Duration = Duration::from_secs(5);

impl Defaults {
    /// The default registration budget of a run whose crossbar booted in `crossbar_boot`
    /// seconds, and what it is derived from.
    pub fn registration(crossbar_boot: f64) -> (f64, String) {
        let budget = (crossbar_boot * READY_RATIO).max(READY_FLOOR.as_secs_f64());
        if crossbar_boot == 0.0 {
            // On a worker's shared crossbar (`--crossbar shared`): no boot of the run's own.
            return (
                budget,
                format!(
                    "the default on a shared crossbar: {}; `ready-within` sets it",
                    secs(READY_FLOOR.as_secs_f64())
                ),
            );
        }
        (
            budget,
            format!(
                "the default: {READY_RATIO} × this run's crossbar boot of {}, at least {}; \
                 `ready-within` sets it",
                secs(crossbar_boot),
                secs(READY_FLOOR.as_secs_f64())
            ),
        )
    }

    /// The default budget of a single call in a run whose fastest single call took `fastest`
    /// seconds, and what it is derived from.
    pub fn call(fastest: f64) -> (f64, String) {
        let budget = (fastest * CALL_RATIO).max(CALL_FLOOR.as_secs_f64());
        (
            budget,
            format!(
                "the default for a single call: {CALL_RATIO} × this run's fastest call of {}, \
                 at least {}; `within` sets it",
                secs(fastest),
                secs(CALL_FLOOR.as_secs_f64())
            ),
        )
    }
}

/// Baseline run times, by scenario name.
pub type Baseline = BTreeMap<String, RunTimes>;

/// What the runner checks budgets against besides the scenario's own numbers.
#[derive(Debug, Clone, Default)]
pub struct BudgetOptions {
    /// `--baseline-run`: earlier runs' times, by scenario.
    pub baseline: Option<Arc<Baseline>>,
    /// `--budget-ratio`, `--budget-floor`.
    pub rule: GrowthRule,
}

/// Read a baseline: a run directory (its `times.json`), a directory of run directories (for
/// each scenario its newest passing run, else its newest), a `times.json`, or the JSON lines of
/// `ocs-harness test --format json`.
pub fn load_baseline(path: &Path) -> Result<Baseline, String> {
    let what = "give a run directory (target/ocs-harness/runs/<id>), a directory of runs, a \
                times.json, or what `ocs-harness test --format json` printed";
    let found = if path.is_dir() {
        from_dir(path)?
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the baseline {}: {e}; {what}", path.display()))?;
        from_text(&text).map_err(|e| format!("the baseline {}: {e}; {what}", path.display()))?
    };
    if found.is_empty() {
        return Err(format!(
            "the baseline {} holds no run times; {what}",
            path.display()
        ));
    }
    Ok(found)
}

/// The times in a run directory, or in the run directories below `dir`.
fn from_dir(dir: &Path) -> Result<Baseline, String> {
    let own = dir.join(TIMES_FILE);
    if own.is_file() {
        let times = read_times(&own)?;
        return Ok(Baseline::from([(times.scenario.clone(), times)]));
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut runs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path().join(TIMES_FILE))
        .filter(|p| p.is_file())
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    runs.sort();
    let mut out = Baseline::new();
    for (_, p) in runs {
        let times = read_times(&p)?;
        // newest wins, but a failed run never replaces a passing one
        let keep_old = out
            .get(&times.scenario)
            .is_some_and(|old| old.passed && !times.passed);
        if !keep_old {
            out.insert(times.scenario.clone(), times);
        }
    }
    Ok(out)
}

fn read_times(p: &Path) -> Result<RunTimes, String> {
    let text =
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not a run's times: {e}", p.display()))
}

/// A `times.json`, or JSON lines of `test --format json` (each event with its `scenario`).
fn from_text(text: &str) -> Result<Baseline, String> {
    // one JSON document that is not an event: a times.json
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if v.get("event").is_none() {
            let times: RunTimes =
                serde_json::from_value(v).map_err(|e| format!("it is not a run's times ({e})"))?;
            return Ok(Baseline::from([(times.scenario.clone(), times)]));
        }
    }
    let mut out = Baseline::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {} is not JSON ({e})", n + 1))?;
        let Some(scenario) = v.get("scenario").and_then(|s| s.as_str()) else {
            continue;
        };
        let times = out.entry(scenario.to_string()).or_insert_with(|| RunTimes {
            scenario: scenario.to_string(),
            ..RunTimes::default()
        });
        match v.get("event").and_then(|e| e.as_str()) {
            Some("stack_ready") => times.ready(&v),
            Some("step_finished") => times.step(&v),
            Some("scenario_finished") => {
                times.passed = v.get("status").and_then(|s| s.as_str()) == Some("passed")
            }
            _ => {}
        }
    }
    out.retain(|_, t| !t.steps.is_empty() || !t.registration.is_empty());
    Ok(out)
}

impl RunTimes {
    /// Record a `stack_ready` event (as the runner serialises it).
    fn ready(&mut self, v: &serde_json::Value) {
        if let Some(id) = v.get("run_id").and_then(|s| s.as_str()) {
            self.run_id = id.to_string();
        }
        self.crossbar_boot = v
            .get("crossbar_boot")
            .and_then(|s| s.as_f64())
            .unwrap_or_default();
        if let Some(r) = v.get("registration").and_then(|r| r.as_object()) {
            self.registration = r
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect();
        }
    }

    /// Record a `step_finished` event (as the runner serialises it).
    fn step(&mut self, v: &serde_json::Value) {
        let (Some(step), Some(action), Some(duration)) = (
            v.get("step").and_then(|s| s.as_u64()),
            v.get("action").and_then(|s| s.as_str()),
            v.get("duration").and_then(|s| s.as_f64()),
        ) else {
            return;
        };
        self.steps.push(StepTime {
            step: step as usize,
            action: action.to_string(),
            duration,
            passed: v.get("passed").and_then(|p| p.as_bool()).unwrap_or(false),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(n: usize, action: &str, duration: f64) -> StepTime {
        StepTime {
            step: n,
            action: action.into(),
            duration,
            passed: true,
        }
    }

    fn times(reg: f64, steps: &[(usize, &str, f64)]) -> RunTimes {
        RunTimes {
            scenario: "s".into(),
            run_id: "r".into(),
            passed: true,
            crossbar_boot: 8.0,
            registration: BTreeMap::from([("a1".to_string(), reg)]),
            steps: steps.iter().map(|(n, a, d)| step(*n, a, *d)).collect(),
        }
    }

    #[test]
    fn growth_needs_both_the_ratio_and_the_floor() {
        let rule = GrowthRule::default();
        // 10 ms -> 30 ms: three times, but 20 ms is noise
        assert!(!rule.grew(0.010, 0.030));
        // 50 ms -> 5 s: a task several seconds slower
        assert!(rule.grew(0.050, 5.0));
        // 10 s -> 13 s: more than 2 s, but not twice
        assert!(!rule.grew(10.0, 13.0));
        // 10 s -> 21 s: both
        assert!(rule.grew(10.0, 21.0));
        // the budget is the larger of the two
        assert_eq!(rule.budget(0.5), 2.5);
        assert_eq!(rule.budget(10.0), 20.0);
        let tight = GrowthRule {
            ratio: 1.5,
            floor: Duration::from_millis(100),
        };
        assert!(tight.grew(1.0, 1.6));
        assert!(!tight.grew(1.0, 1.4));
    }

    #[test]
    fn growth_compares_the_same_steps_and_agents() {
        let base = times(
            4.0,
            &[
                (1, "api a1", 0.02),
                (2, "wait a1.print (timeout 10s)", 0.05),
            ],
        );
        let now = times(
            25.0,
            &[(1, "api a1", 0.04), (2, "wait a1.print (timeout 10s)", 5.1)],
        );
        let over = growth(&base, &now, &GrowthRule::default());
        let text: Vec<String> = over.iter().map(|o| o.to_string()).collect();
        assert_eq!(
            text,
            [
                "agent a1's registration took 25.0s, over its budget of 8.00s (the baseline's \
                 4.00s × 2 or + 2.00s, whichever is larger)",
                "step 2 (wait a1.print (timeout 10s)) took 5.10s, over its budget of 2.05s (the \
                 baseline's 50ms × 2 or + 2.00s, whichever is larger)"
            ]
        );
        assert_eq!(over[1].step, Some(2));
        assert_eq!(over[0].agent.as_deref(), Some("a1"));
        // an edited scenario: step 2 is another step now, so it is not compared
        let edited = times(4.0, &[(1, "api a1", 0.02), (2, "status a1.print", 9.0)]);
        assert!(growth(&base, &edited, &GrowthRule::default()).is_empty());
        // a step that failed in either run is not compared
        let mut failed = now.clone();
        failed.steps[1].passed = false;
        failed.registration.clear();
        assert!(growth(&base, &failed, &GrowthRule::default()).is_empty());
    }

    #[test]
    fn a_growth_report_lists_every_compared_duration_and_marks_the_grown() {
        let base = times(
            4.0,
            &[
                (1, "api a1", 0.02),
                (2, "wait a1.delay_task (timeout 20s)", 2.0),
            ],
        );
        let now = times(
            4.5,
            &[
                (1, "api a1", 0.03),
                (2, "wait a1.delay_task (timeout 20s)", 6.1),
            ],
        );
        let baseline = Baseline::from([("s".to_string(), base.clone())]);
        let report = ScenarioGrowth::of(&baseline, &now, &GrowthRule::default());
        assert!(report.in_baseline);
        let rows: Vec<(&str, bool)> = report
            .compared
            .iter()
            .map(|c| (c.what.as_str(), c.over))
            .collect();
        assert_eq!(
            rows,
            [
                ("agent a1's registration", false),
                ("step 1 (api a1)", false),
                ("step 2 (wait a1.delay_task (timeout 20s))", true)
            ]
        );
        assert_eq!(report.compared[2].budget, 4.0);
        assert!((report.compared[2].ratio() - 3.05).abs() < 1e-9);
        // the rows marked over are what `growth` reports
        let over = growth(&base, &now, &GrowthRule::default());
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].what, report.compared[2].what);
        // a scenario the baseline does not have: nothing compared, and said so
        let mut new = now.clone();
        new.scenario = "new".into();
        let report = ScenarioGrowth::of(&baseline, &new, &GrowthRule::default());
        assert!(!report.in_baseline && report.compared.is_empty());
    }

    #[test]
    fn defaults_derive_from_the_run_s_floor() {
        assert_eq!(Defaults::registration(4.0).0, 15.0);
        assert_eq!(Defaults::registration(20.0).0, 30.0);
        let (shared, why) = Defaults::registration(0.0);
        assert_eq!(shared, 15.0);
        assert!(why.contains("shared crossbar"), "{why}");
        assert_eq!(Defaults::call(0.02).0, 5.0);
        assert_eq!(Defaults::call(0.2).0, 10.0);
    }

    #[test]
    fn a_baseline_from_json_lines_a_times_file_and_run_directories() {
        let lines = r#"{"event":"run_started","scenarios":1,"jobs":1}
{"event":"stack_ready","run_id":"r1","stack":[],"images":{},"built":[],"after":9.5,"crossbar_boot":6.5,"registration":{"a1":3.25},"scenario":"s"}
{"event":"step_started","step":1,"line":6,"action":"api a1","scenario":"s"}
{"event":"step_finished","step":1,"line":6,"action":"api a1","duration":0.012,"passed":true,"outcome":{},"failure":null,"scenario":"s"}
{"event":"scenario_finished","scenario":"s","file":"s.yaml","status":"passed","elapsed":12.0}
"#;
        let b = from_text(lines).unwrap();
        let s = &b["s"];
        assert_eq!(s.run_id, "r1");
        assert!(s.passed);
        assert_eq!(s.crossbar_boot, 6.5);
        assert_eq!(s.registration["a1"], 3.25);
        assert_eq!(s.steps, vec![step(1, "api a1", 0.012)]);
        assert!(from_text("not json\n")
            .unwrap_err()
            .contains("line 1 is not JSON"));

        let dir = std::env::temp_dir().join(format!("ocsh-baseline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (i, (run, passed)) in [("r1", true), ("r2", false)].into_iter().enumerate() {
            let mut t = times(1.0, &[(1, "api a1", 0.01)]);
            t.run_id = run.into();
            t.passed = passed;
            std::fs::create_dir_all(dir.join(run)).unwrap();
            let file = dir.join(run).join(TIMES_FILE);
            std::fs::write(&file, serde_json::to_string(&t).unwrap()).unwrap();
            // r2 is the newer run
            let at = std::time::UNIX_EPOCH + Duration::from_secs(1_000 + i as u64);
            let f = std::fs::File::options().write(true).open(&file).unwrap();
            f.set_modified(at).unwrap();
        }
        // the newest passing run of each scenario
        assert_eq!(load_baseline(&dir).unwrap()["s"].run_id, "r1");
        // one run's directory, and its file
        assert_eq!(load_baseline(&dir.join("r2")).unwrap()["s"].run_id, "r2");
        let file = dir.join("r2").join(TIMES_FILE);
        assert_eq!(load_baseline(&file).unwrap()["s"].run_id, "r2");
        let empty = dir.join("r3");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(load_baseline(&empty)
            .unwrap_err()
            .contains("holds no run times"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
