//! Stale runs: whatever a killed harness left behind is found by label and removed by the
//! next run or by `ocs-harness clean`. A run's owner is recorded so that it can be proven alive
//! or gone from another process ([`Owner`]: host, boot id, PID namespace, pid and its start
//! time, a random token); a run whose owner cannot be checked from here (another host,
//! kernel or PID namespace) is left alone for a grace period. Failed stacks kept on purpose
//! (`--keep-on-failure`) and crossbars kept for `test --reuse` carry a marker and are removed
//! once older than a maximum age. (The runs of a live process are removed on SIGINT/SIGTERM by
//! the watchdog.)

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::Duration;

use testcontainers::bollard::Docker;

use crate::clock::unix_now_secs;
use crate::config::{ConfigError, KEEP_MAX_AGE};
use crate::plan::{
    LABEL_BOOT, LABEL_CREATED, LABEL_HOST, LABEL_KEPT, LABEL_MANAGED, LABEL_OWNER, LABEL_PID,
    LABEL_PID_NS, LABEL_PID_START, LABEL_RUN, LABEL_SCENARIO,
};
use crate::runtime::engine::{list_labelled, remove_run, EngineError};

/// This machine's host name (labels runs so that pids are only compared on the same host).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// How long a kept stack may stay before a later run removes it:
/// `$OCS_HARNESS_KEEP_MAX_AGE` of `settings` (default one hour).
pub fn kept_max_age(settings: &crate::config::Settings) -> Result<Duration, ConfigError> {
    settings.config().map(|c| c.keep_max_age)
}

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The environment is unreadable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Who owns a run, as its labels say: enough for another harness process to prove that the
/// owner still runs, or that it is gone, even across containers and PID namespaces that share
/// a host name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// Host name.
    pub host: String,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: Option<String>,
    /// The PID namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`).
    pub pid_ns: Option<String>,
    /// The pid in that namespace.
    pub pid: Option<u32>,
    /// The process's start time, in clock ticks since boot (a reused pid has another).
    pub pid_start: Option<u64>,
    /// A random token drawn once per process.
    pub token: Option<String>,
}

impl Owner {
    /// This process.
    pub fn this_process() -> &'static Owner {
        static THIS: OnceLock<Owner> = OnceLock::new();
        THIS.get_or_init(|| {
            let pid = std::process::id();
            let read = |path: &str| {
                std::fs::read_to_string(path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            Owner {
                host: host_name(),
                boot_id: read("/proc/sys/kernel/random/boot_id"),
                pid_ns: std::fs::read_link("/proc/self/ns/pid")
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned()),
                pid: Some(pid),
                pid_start: process_start(pid),
                token: Some(format!("{:016x}", rand::random::<u64>())),
            }
        })
    }

    /// The labels that record this owner on a run's resources.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let fields = [
            (LABEL_HOST, Some(self.host.clone())),
            (LABEL_BOOT, self.boot_id.clone()),
            (LABEL_PID_NS, self.pid_ns.clone()),
            (LABEL_PID, self.pid.map(|p| p.to_string())),
            (LABEL_PID_START, self.pid_start.map(|t| t.to_string())),
            (LABEL_OWNER, self.token.clone()),
        ];
        fields
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect()
    }

    /// Fill in what `labels` say.
    fn note(&mut self, labels: &HashMap<String, String>) {
        let text = |k: &str| labels.get(k).cloned();
        if let Some(h) = text(LABEL_HOST) {
            self.host = h;
        }
        self.boot_id = text(LABEL_BOOT).or(self.boot_id.take());
        self.pid_ns = text(LABEL_PID_NS).or(self.pid_ns.take());
        self.pid = text(LABEL_PID).and_then(|p| p.parse().ok()).or(self.pid);
        let start = text(LABEL_PID_START).and_then(|p| p.parse().ok());
        self.pid_start = start.or(self.pid_start);
        self.token = text(LABEL_OWNER).or(self.token.take());
    }
}

/// The start time (clock ticks since boot) of process `pid` in this PID namespace; `None`
/// when there is no such process.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22; the command name (field 2, in parentheses) may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// What a sweep can tell about a run's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Liveness {
    /// Proven to run.
    Alive(String),
    /// Proven gone.
    Gone(String),
    /// Neither can be proven from here.
    Unprovable(String),
}

/// Whether `owner` runs, as seen from `here`; `start_of` gives a pid's start time in this
/// PID namespace (`None`: no such process).
fn liveness(owner: &Owner, here: &Owner, start_of: impl Fn(u32) -> Option<u64>) -> Liveness {
    if owner.token.is_some() && owner.token == here.token {
        return Liveness::Alive("it is this process's own run".into());
    }
    let pid = owner.pid.map_or("?".into(), |p| p.to_string());
    if owner.host != here.host {
        return Liveness::Unprovable(format!(
            "its harness process {pid} runs on host {:?}, not here",
            owner.host
        ));
    }
    let (Some(boot), Some(ns), Some(p)) = (&owner.boot_id, &owner.pid_ns, owner.pid) else {
        return Liveness::Unprovable(format!(
            "its labels do not say which kernel boot and PID namespace its harness process \
             {pid} runs in (an older harness)"
        ));
    };
    if Some(boot) != here.boot_id.as_ref() {
        return Liveness::Unprovable(format!(
            "its harness process {pid} runs under another kernel (boot id {boot}): another \
             machine or VM with the same host name, or before a reboot"
        ));
    }
    if Some(ns) != here.pid_ns.as_ref() {
        return Liveness::Unprovable(format!(
            "its harness process {pid} runs in another PID namespace ({ns}, e.g. another \
             container), where this process cannot see it"
        ));
    }
    match (start_of(p), owner.pid_start) {
        (None, _) => Liveness::Gone(format!("its harness process {p} is gone")),
        (Some(now), Some(then)) if now != then => Liveness::Gone(format!(
            "its harness process {p} is gone (the pid now belongs to another process)"
        )),
        (Some(_), _) => Liveness::Alive(format!("its harness process {p} is running")),
    }
}

/// What is known of one run from its resources' labels.
#[derive(Debug, Clone, Default)]
struct RunInfo {
    scenario: String,
    owner: Owner,
    created: u64,
    kept_at: Option<u64>,
}

/// Which runs a sweep removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// At the start of a run: runs whose process is gone, runs whose owner cannot be
    /// checked once older than the maximum age, and kept stacks older than it.
    Stale,
    /// `ocs-harness clean`: every run whose process is gone, kept stacks included (a run whose
    /// owner cannot be checked still waits for the maximum age).
    AllButLive,
}

/// Remove the runs `mode` selects, kept stacks older than `$OCS_HARNESS_KEEP_MAX_AGE`.
/// Returns one line per removed run.
pub async fn sweep(
    docker: &Docker,
    mode: Sweep,
    settings: &crate::config::Settings,
) -> Result<Vec<String>, SweepError> {
    Ok(sweep_older_than(docker, mode, kept_max_age(settings)?).await?)
}

/// Every run labelled as managed, with what its labels say.
async fn find_runs(docker: &Docker) -> Result<BTreeMap<String, RunInfo>, EngineError> {
    let mut runs: BTreeMap<String, RunInfo> = BTreeMap::new();
    let mut note = |labels: &HashMap<String, String>| {
        let Some(run) = labels.get(LABEL_RUN) else {
            return;
        };
        let info = runs.entry(run.clone()).or_default();
        if let Some(s) = labels.get(LABEL_SCENARIO) {
            info.scenario = s.clone();
        }
        info.owner.note(labels);
        if let Some(c) = labels.get(LABEL_CREATED).and_then(|c| c.parse().ok()) {
            info.created = c;
        }
        if let Some(k) = labels.get(LABEL_KEPT).and_then(|k| k.parse().ok()) {
            info.kept_at = Some(k);
        }
    };
    let (containers, networks) = list_labelled(docker, &format!("{LABEL_MANAGED}=true")).await?;
    let labels = containers.iter().filter_map(|c| c.labels.as_ref());
    labels
        .chain(networks.iter().filter_map(|n| n.labels.as_ref()))
        .for_each(&mut note);
    Ok(runs)
}

/// A sweep's decision about one run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    remove: bool,
    why: String,
}

/// What `mode` does with a run (`max_age` in seconds), seen from `here` at `now`.
fn decide(
    info: &RunInfo,
    mode: Sweep,
    max_age: u64,
    now: u64,
    here: &Owner,
    start_of: impl Fn(u32) -> Option<u64>,
) -> Decision {
    let (remove, why) = match (info.kept_at, mode) {
        (Some(_), Sweep::AllButLive) => (true, "kept on purpose".to_string()),
        (Some(at), Sweep::Stale) if now.saturating_sub(at) > max_age => (
            true,
            format!(
                "kept on purpose {} min ago, older than the {} min limit ({KEEP_MAX_AGE})",
                now.saturating_sub(at) / 60,
                max_age / 60
            ),
        ),
        (Some(at), Sweep::Stale) => (
            false,
            format!(
                "kept on purpose {} min ago, within the {} min limit ({KEEP_MAX_AGE})",
                now.saturating_sub(at) / 60,
                max_age / 60
            ),
        ),
        (None, _) => match liveness(&info.owner, here, start_of) {
            Liveness::Alive(why) => (false, why),
            Liveness::Gone(why) => (true, why),
            Liveness::Unprovable(why) => {
                let age = now.saturating_sub(info.created);
                let old = age > max_age;
                let verdict = if old { "older than" } else { "within" };
                let why = format!(
                    "{why}; created {} min ago, {verdict} the {} min grace period \
                     ({KEEP_MAX_AGE})",
                    age / 60,
                    max_age / 60
                );
                (old, why)
            }
        },
    };
    Decision { remove, why }
}

/// Remove the runs `mode` selects, kept stacks older than `max_age`. Returns one line per
/// removed run; every decision, kept or removed, is logged with its reason (target
/// `ocs_harness::runtime::sweep`, level info).
///
/// A run that cannot be removed (a network a container outside the run is attached to) does
/// not stop the sweep: the others are removed, and one warning says what is stuck and how
/// to remove it (once per run and process: every launch sweeps). At the start of a run
/// ([`Sweep::Stale`]) that is all; `clean` ([`Sweep::AllButLive`]) fails with it as well.
pub async fn sweep_older_than(
    docker: &Docker,
    mode: Sweep,
    max_age: Duration,
) -> Result<Vec<String>, EngineError> {
    let here = Owner::this_process();
    let now = unix_now_secs();
    let mut report = Vec::new();
    let mut stuck = Vec::new();
    for (run, info) in find_runs(docker).await? {
        let scenario = if info.scenario.is_empty() {
            "?"
        } else {
            &info.scenario
        };
        let d = decide(&info, mode, max_age.as_secs(), now, here, process_start);
        if !d.remove {
            tracing::info!("sweep keeps run {run} (scenario {scenario}): {}", d.why);
            continue;
        }
        tracing::info!("sweep removes run {run} (scenario {scenario}): {}", d.why);
        let removed = match remove_run(docker, &run).await {
            Ok(removed) => removed,
            Err(EngineError::Leftovers { failures, .. }) => {
                stuck.push((run.clone(), failures.join("; ")));
                continue;
            }
            Err(e) => {
                stuck.push((run.clone(), crate::runtime::notice::display_chain(&e)));
                continue;
            }
        };
        if !removed.is_empty() {
            report.push(format!(
                "removed run {run} (scenario {scenario}, {}): {}",
                d.why,
                removed.join(", ")
            ));
        }
    }
    if let Some(text) = stuck_text(&stuck, mode == Sweep::Stale) {
        crate::runtime::notice::warn(&text);
    }
    match (mode, stuck.is_empty()) {
        (Sweep::AllButLive, false) => Err(EngineError::Leftovers {
            run: stuck
                .iter()
                .map(|(r, _)| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            removed: report,
            failures: stuck.into_iter().map(|(_, why)| why).collect(),
        }),
        _ => Ok(report),
    }
}

/// The one warning about the runs a sweep could not remove (`(run, why)`), or `None` when
/// there are none (or, with `once`, when every one was warned about by this process before).
fn stuck_text(stuck: &[(String, String)], once: bool) -> Option<String> {
    static WARNED: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    let new: Vec<&(String, String)> = stuck
        .iter()
        .filter(|(run, _)| warned.insert(run.clone()) || !once)
        .collect();
    if new.is_empty() {
        return None;
    }
    let mut text = format!(
        "the sweep could not remove {} stale run(s); the launch goes on:",
        new.len()
    );
    for (run, why) in &new {
        text.push_str(&format!("\n  run {run}: {why}"));
    }
    text.push_str(
        "\n  to remove it: disconnect or remove what holds it (`docker network inspect <network>` \
         lists what is attached; `docker network disconnect -f <network> <container>`), then \
         `ocs-harness clean --run <run>`",
    );
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> Owner {
        Owner {
            host: "this-host".into(),
            boot_id: Some("boot-a".into()),
            pid_ns: Some("pid:[1]".into()),
            pid: Some(100),
            pid_start: Some(5000),
            token: Some("mine".into()),
        }
    }

    fn run(owner: Owner, created: u64, kept_at: Option<u64>) -> RunInfo {
        RunInfo {
            scenario: "s".into(),
            owner,
            created,
            kept_at,
        }
    }

    /// Processes of this namespace: 200 started at tick 7000.
    fn start_of(pid: u32) -> Option<u64> {
        (pid == 200).then_some(7000)
    }

    fn d(info: &RunInfo, mode: Sweep) -> (bool, String) {
        let x = decide(info, mode, 3600, 10_000, &here(), start_of);
        (x.remove, x.why)
    }

    fn other(pid: u32, start: u64) -> Owner {
        Owner {
            pid: Some(pid),
            pid_start: Some(start),
            token: Some("theirs".into()),
            ..here()
        }
    }

    #[test]
    fn a_live_owner_is_proven_and_a_gone_one_too() {
        let mine = run(here(), 0, None);
        assert_eq!(
            d(&mine, Sweep::AllButLive),
            (false, "it is this process's own run".into())
        );
        let live = run(other(200, 7000), 0, None);
        assert_eq!(
            d(&live, Sweep::Stale),
            (false, "its harness process 200 is running".into())
        );
        let gone = run(other(300, 7000), 9_999, None);
        assert_eq!(
            d(&gone, Sweep::Stale),
            (true, "its harness process 300 is gone".into())
        );
        let reused = run(other(200, 6000), 9_999, None);
        assert_eq!(
            d(&reused, Sweep::Stale).1,
            "its harness process 200 is gone (the pid now belongs to another process)"
        );
    }

    #[test]
    fn an_unprovable_owner_waits_for_the_grace_period() {
        // Two harnesses in two containers on the host network: same host name and boot id,
        // another PID namespace; the other one's pid may exist here as some other process.
        let neighbour = Owner {
            pid_ns: Some("pid:[2]".into()),
            ..other(200, 7000)
        };
        let (remove, why) = d(&run(neighbour.clone(), 9_000, None), Sweep::Stale);
        assert!(!remove, "{why}");
        assert_eq!(
            why,
            "its harness process 200 runs in another PID namespace (pid:[2], e.g. another \
             container), where this process cannot see it; created 16 min ago, within the 60 \
             min grace period (OCS_HARNESS_KEEP_MAX_AGE)"
        );
        assert!(!d(&run(neighbour.clone(), 9_000, None), Sweep::AllButLive).0);
        let (remove, why) = d(&run(neighbour, 1_000, None), Sweep::Stale);
        assert!(
            remove
                && why.ends_with("older than the 60 min grace period (OCS_HARNESS_KEEP_MAX_AGE)"),
            "{why}"
        );

        let elsewhere = Owner {
            host: "other-host".into(),
            ..other(300, 1)
        };
        let (remove, why) = d(&run(elsewhere, 9_000, None), Sweep::Stale);
        assert!(!remove);
        assert!(
            why.starts_with("its harness process 300 runs on host \"other-host\""),
            "{why}"
        );
        let rebooted = Owner {
            boot_id: Some("boot-b".into()),
            ..other(300, 1)
        };
        assert!(d(&run(rebooted, 9_000, None), Sweep::Stale)
            .1
            .contains("another kernel"));
        let older_harness = Owner {
            boot_id: None,
            pid_ns: None,
            pid_start: None,
            token: None,
            ..other(300, 1)
        };
        let (remove, why) = d(&run(older_harness, 9_000, None), Sweep::Stale);
        assert!(!remove && why.contains("an older harness"), "{why}");
    }

    #[test]
    fn kept_stacks_go_after_the_maximum_age() {
        let gone = other(300, 1);
        let kept_recently = run(gone.clone(), 0, Some(10_000 - 60));
        assert!(!d(&kept_recently, Sweep::Stale).0);
        assert_eq!(
            d(&kept_recently, Sweep::AllButLive),
            (true, "kept on purpose".into())
        );
        let kept_long_ago = run(gone, 0, Some(10_000 - 7200));
        assert_eq!(
            d(&kept_long_ago, Sweep::Stale),
            (
                true,
                "kept on purpose 120 min ago, older than the 60 min limit \
                 (OCS_HARNESS_KEEP_MAX_AGE)"
                    .into()
            )
        );
    }

    #[test]
    fn stuck_runs_are_warned_about_once_with_how_to_remove_them() {
        let stuck = vec![(
            "r-stuck-1".to_string(),
            "network ocsh-r has a guest".to_string(),
        )];
        let text = stuck_text(&stuck, true).expect("a first warning");
        assert!(
            text.contains("run r-stuck-1: network ocsh-r has a guest")
                && text.contains("the launch goes on")
                && text.contains("docker network disconnect -f")
                && text.contains("ocs-harness clean --run"),
            "{text}"
        );
        assert_eq!(stuck_text(&stuck, true), None, "once per process");
        assert!(
            stuck_text(&stuck, false).is_some(),
            "`clean` always says it"
        );
        assert_eq!(stuck_text(&[], false), None);
    }

    #[test]
    fn this_process_is_identified_and_provably_alive() {
        let me = Owner::this_process();
        assert_eq!(me.pid, Some(std::process::id()));
        assert!(me.pid_start.is_some() && me.boot_id.is_some() && me.pid_ns.is_some());
        assert_eq!(process_start(std::process::id()), me.pid_start);
        let labels: HashMap<String, String> = me.labels().into_iter().collect();
        let mut read = Owner::default();
        read.note(&labels);
        assert_eq!(&read, me);
        // Another process of this namespace with our labels but another token: provable.
        let twin = Owner {
            token: Some("x".into()),
            ..me.clone()
        };
        assert!(matches!(
            liveness(&twin, me, process_start),
            Liveness::Alive(_)
        ));
    }
}
