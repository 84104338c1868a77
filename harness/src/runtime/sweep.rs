//! Cleanup that cannot be skipped: the runs of this process are removed on SIGINT/SIGTERM
//! (logs saved first), and whatever a killed harness left behind is found by label and
//! removed by the next run or by `ocs-harness clean`. Failed stacks kept on purpose
//! (`--keep-on-failure`) carry a marker and are removed once older than a maximum age.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testcontainers::bollard::Docker;

use crate::plan::{LABEL_CREATED, LABEL_HOST, LABEL_KEPT, LABEL_PID, LABEL_RUN, LABEL_SCENARIO};
use crate::recipes::LABEL_MANAGED;
use crate::runtime::logs::LogStore;
use crate::runtime::stack::{remove_run, StackError};

/// This machine's host name (labels runs so that pids are only compared on the same host).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How long a kept stack may stay before a later run removes it:
/// `$OCS_HARNESS_KEEP_MAX_AGE` in seconds (or with an `s`/`m`/`h` suffix), default one hour.
pub fn kept_max_age() -> Duration {
    let parse = |v: &str| -> Option<Duration> {
        let v = v.trim();
        let (num, mult) = match v.chars().last()? {
            's' => (&v[..v.len() - 1], 1),
            'm' => (&v[..v.len() - 1], 60),
            'h' => (&v[..v.len() - 1], 3600),
            _ => (v, 1),
        };
        num.trim()
            .parse::<u64>()
            .ok()
            .map(|n| Duration::from_secs(n * mult))
    };
    std::env::var("OCS_HARNESS_KEEP_MAX_AGE")
        .ok()
        .and_then(|v| parse(&v))
        .unwrap_or(Duration::from_secs(3600))
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

/// Remove the runs `mode` selects. Returns one line per removed run.
pub async fn sweep(docker: &Docker, mode: Sweep) -> Result<Vec<String>, StackError> {
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
    let (containers, networks) =
        crate::runtime::stack::list_labelled(docker, &format!("{LABEL_MANAGED}=true")).await?;
    for c in &containers {
        if let Some(l) = &c.labels {
            note(l);
        }
    }
    for n in &networks {
        if let Some(l) = &n.labels {
            note(l);
        }
    }

    let here = host_name();
    let now = unix_now();
    let max_age = kept_max_age().as_secs();
    let mut report = Vec::new();
    for (run, info) in runs {
        let why = match (info.kept_at, mode) {
            (Some(_), Sweep::AllButLive) => "kept after a failure".to_string(),
            (Some(at), Sweep::Stale) if now.saturating_sub(at) > max_age => format!(
                "kept after a failure {} min ago, older than the {} min limit \
                 (OCS_HARNESS_KEEP_MAX_AGE)",
                now.saturating_sub(at) / 60,
                max_age / 60
            ),
            (Some(_), Sweep::Stale) => continue,
            (None, _) if owner_alive(&info, &here) => continue,
            (None, _) => format!(
                "its harness process {} is gone",
                info.pid.map_or("?".into(), |p| p.to_string())
            ),
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

static SHUTTING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// When a signal is being handled, the handler removes the runs and exits the process; a
/// teardown racing with it waits here instead of removing the same containers.
pub async fn wait_if_shutting_down() {
    if SHUTTING_DOWN.load(std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
}

struct ActiveRun {
    logs: LogStore,
    run_dir: PathBuf,
}

fn active() -> &'static Mutex<BTreeMap<String, ActiveRun>> {
    static ACTIVE: OnceLock<Mutex<BTreeMap<String, ActiveRun>>> = OnceLock::new();
    ACTIVE.get_or_init(Default::default)
}

/// Note a run as live in this process, so SIGINT/SIGTERM removes it (installing the handler
/// on first use).
pub fn register(run_id: &str, logs: &LogStore, run_dir: &std::path::Path) {
    install_signal_handler();
    active().lock().expect("active runs").insert(
        run_id.to_string(),
        ActiveRun {
            logs: logs.clone(),
            run_dir: run_dir.to_path_buf(),
        },
    );
}

/// The run is gone (torn down or kept on purpose).
pub fn unregister(run_id: &str) {
    active().lock().expect("active runs").remove(run_id);
}

/// Write a run's log lines to `<run_dir>/logs/<container>.log`.
pub fn save_logs(logs: &LogStore, run_dir: &std::path::Path) -> std::io::Result<PathBuf> {
    let dir = run_dir.join("logs");
    std::fs::create_dir_all(&dir)?;
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for line in logs.lines() {
        let f = files.entry(line.container.clone()).or_default();
        f.push_str(&line.text);
        f.push('\n');
    }
    for (role, text) in files {
        std::fs::write(dir.join(format!("{role}.log")), text)?;
    }
    Ok(dir)
}

fn install_signal_handler() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            eprintln!("ocs-harness: cannot install the SIGINT/SIGTERM handler; an interrupted run may leave containers (ocs-harness clean removes them)");
            return;
        };
        std::thread::Builder::new()
            .name("ocs-harness-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    SHUTTING_DOWN.store(true, std::sync::atomic::Ordering::SeqCst);
                    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                    let runs: Vec<(String, ActiveRun)> =
                        std::mem::take(&mut *active().lock().expect("active runs"))
                            .into_iter()
                            .collect();
                    eprintln!(
                        "ocs-harness: caught {name}; saving logs and removing {} run(s)",
                        runs.len()
                    );
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(rt) = rt {
                        rt.block_on(async {
                            let docker = Docker::connect_with_defaults();
                            for (run_id, run) in &runs {
                                if let Ok(dir) = save_logs(&run.logs, &run.run_dir) {
                                    eprintln!("ocs-harness: logs of run {run_id} in {}", dir.display());
                                }
                                if let Ok(docker) = &docker {
                                    match remove_run(docker, run_id).await {
                                        Ok(removed) => eprintln!(
                                            "ocs-harness: removed {}",
                                            removed.join(", ")
                                        ),
                                        Err(e) => eprintln!("ocs-harness: {e}"),
                                    }
                                }
                            }
                        });
                    }
                    std::process::exit(128 + sig);
                }
            })
            .ok();
    });
}
