//! Stale runs: whatever a killed harness left behind is found by label and removed by the
//! next run or by `ocs-harness clean`. Failed stacks kept on purpose (`--keep-on-failure`)
//! carry a marker and are removed once older than a maximum age. (The runs of a live process
//! are removed on SIGINT/SIGTERM by the watchdog.)

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use testcontainers::bollard::Docker;

use crate::clock::unix_now_secs;
use crate::config::{ConfigError, KEEP_MAX_AGE};
use crate::runtime::engine::{
    list_labelled, remove_run, EngineError, LABEL_CREATED, LABEL_HOST, LABEL_KEPT, LABEL_MANAGED,
    LABEL_PID, LABEL_RUN, LABEL_SCENARIO,
};

/// This machine's host name (labels runs so that pids are only compared on the same host).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// How long a kept stack may stay before a later run removes it:
/// `$OCS_HARNESS_KEEP_MAX_AGE` (default one hour).
pub fn kept_max_age() -> Result<Duration, ConfigError> {
    crate::config::Config::from_env().map(|c| c.keep_max_age)
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

/// What is known of one run from its resources' labels.
#[derive(Debug, Clone, Default)]
struct RunInfo {
    scenario: String,
    pid: Option<u32>,
    host: String,
    created: u64,
    kept_at: Option<u64>,
}

/// Which runs a sweep removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// At the start of a run: runs whose process is gone, and kept stacks older than the
    /// maximum age.
    Stale,
    /// `ocs-harness clean`: every run whose process is gone, kept stacks included.
    AllButLive,
}

fn owner_alive(info: &RunInfo, here: &str) -> bool {
    match info.pid {
        Some(pid) if info.host == here => {
            pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        // Another machine's run on a shared engine: assume alive; age decides.
        _ => true,
    }
}

/// Remove the runs `mode` selects, kept stacks older than `$OCS_HARNESS_KEEP_MAX_AGE`.
/// Returns one line per removed run.
pub async fn sweep(docker: &Docker, mode: Sweep) -> Result<Vec<String>, SweepError> {
    Ok(sweep_older_than(docker, mode, kept_max_age()?).await?)
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
        if let Some(p) = labels.get(LABEL_PID).and_then(|p| p.parse().ok()) {
            info.pid = Some(p);
        }
        if let Some(h) = labels.get(LABEL_HOST) {
            info.host = h.clone();
        }
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

/// Why `mode` removes a run, or `None` when it stays.
fn stale_because(
    info: &RunInfo,
    mode: Sweep,
    max_age: u64,
    now: u64,
    here: &str,
) -> Option<String> {
    Some(match (info.kept_at, mode) {
        (Some(_), Sweep::AllButLive) => "kept after a failure".to_string(),
        (Some(at), Sweep::Stale) if now.saturating_sub(at) > max_age => format!(
            "kept after a failure {} min ago, older than the {} min limit \
                 ({KEEP_MAX_AGE})",
            now.saturating_sub(at) / 60,
            max_age / 60
        ),
        (Some(_), Sweep::Stale) => return None,
        (None, _) if owner_alive(info, here) => return None,
        (None, _) => format!(
            "its harness process {} is gone",
            info.pid.map_or("?".into(), |p| p.to_string())
        ),
    })
}

/// Remove the runs `mode` selects, kept stacks older than `max_age`. Returns one line per
/// removed run.
pub async fn sweep_older_than(
    docker: &Docker,
    mode: Sweep,
    max_age: Duration,
) -> Result<Vec<String>, EngineError> {
    let here = host_name();
    let now = unix_now_secs();
    let mut report = Vec::new();
    for (run, info) in find_runs(docker).await? {
        let Some(why) = stale_because(&info, mode, max_age.as_secs(), now, &here) else {
            continue;
        };
        let removed = remove_run(docker, &run).await?;
        if !removed.is_empty() {
            report.push(format!(
                "removed run {run} (scenario {}, {why}): {}",
                if info.scenario.is_empty() {
                    "?"
                } else {
                    &info.scenario
                },
                removed.join(", ")
            ));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pid: Option<u32>, host: &str, kept_at: Option<u64>) -> RunInfo {
        RunInfo {
            scenario: "s".into(),
            pid,
            host: host.into(),
            created: 0,
            kept_at,
        }
    }

    #[test]
    fn which_runs_are_stale() {
        let here = "this-host";
        let (max_age, now) = (3600, 10_000);
        let mine = run(Some(std::process::id()), here, None);
        assert_eq!(stale_because(&mine, Sweep::Stale, max_age, now, here), None);
        assert_eq!(
            stale_because(&mine, Sweep::AllButLive, max_age, now, here),
            None
        );
        // A pid that cannot exist on this host.
        let gone = run(Some(u32::MAX), here, None);
        assert_eq!(
            stale_because(&gone, Sweep::Stale, max_age, now, here).as_deref(),
            Some("its harness process 4294967295 is gone")
        );
        // Another machine's run on a shared engine is assumed alive.
        let elsewhere = run(Some(u32::MAX), "other-host", None);
        assert_eq!(
            stale_because(&elsewhere, Sweep::Stale, max_age, now, here),
            None
        );

        let kept_recently = run(Some(u32::MAX), here, Some(now - 60));
        assert_eq!(
            stale_because(&kept_recently, Sweep::Stale, max_age, now, here),
            None
        );
        assert_eq!(
            stale_because(&kept_recently, Sweep::AllButLive, max_age, now, here).as_deref(),
            Some("kept after a failure")
        );
        let kept_long_ago = run(Some(u32::MAX), here, Some(now - 7200));
        assert_eq!(
            stale_because(&kept_long_ago, Sweep::Stale, max_age, now, here).as_deref(),
            Some(
                "kept after a failure 120 min ago, older than the 60 min limit \
                 (OCS_HARNESS_KEEP_MAX_AGE)"
            )
        );
    }
}
