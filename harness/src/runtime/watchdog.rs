//! The runs of this process, removed on SIGINT/SIGTERM (logs saved first) before the process
//! exits with 128 + the signal. A teardown racing with the handler waits for it instead of
//! removing the same containers. After testcontainers' `watchdog.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::runtime::engine::{docker_detached, remove_run};
use crate::runtime::logs::LogStore;
use crate::runtime::notice;

static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

struct ActiveRun {
    logs: LogStore,
    run_dir: PathBuf,
}

fn active() -> &'static Mutex<BTreeMap<String, ActiveRun>> {
    static ACTIVE: OnceLock<Mutex<BTreeMap<String, ActiveRun>>> = OnceLock::new();
    ACTIVE.get_or_init(Default::default)
}

/// When a signal is being handled, the handler removes the runs and exits the process; a
/// teardown racing with it waits here forever.
pub(crate) async fn wait_if_shutting_down() {
    if SHUTTING_DOWN.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
}

/// Note a run as live in this process, so SIGINT/SIGTERM removes it (installing the handler
/// on first use).
pub(crate) fn register(run_id: &str, logs: &LogStore, run_dir: &Path) {
    install();
    let run = ActiveRun {
        logs: logs.clone(),
        run_dir: run_dir.to_path_buf(),
    };
    active()
        .lock()
        .expect("active runs")
        .insert(run_id.to_string(), run);
}

/// The run is gone (torn down or kept on purpose).
pub(crate) fn unregister(run_id: &str) {
    active().lock().expect("active runs").remove(run_id);
}

fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            notice::warn(
                "cannot install the SIGINT/SIGTERM handler; an interrupted run may leave \
                 containers (ocs-harness clean removes them)",
            );
            return;
        };
        std::thread::Builder::new()
            .name("ocs-harness-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    SHUTTING_DOWN.store(true, Ordering::SeqCst);
                    remove_active_runs(if sig == SIGINT { "SIGINT" } else { "SIGTERM" });
                    std::process::exit(128 + sig);
                }
            })
            .ok();
    });
}

/// Save the logs of every live run and remove its resources.
fn remove_active_runs(signal: &str) {
    let runs = std::mem::take(&mut *active().lock().expect("active runs"));
    notice::warn(&format!(
        "caught {signal}; saving logs and removing {} run(s)",
        runs.len()
    ));
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let docker = docker_detached();
        for (run_id, run) in &runs {
            if let Ok(dir) = run.logs.save(&run.run_dir) {
                notice::info(&format!("logs of run {run_id} in {}", dir.display()));
            }
            if let Ok(docker) = &docker {
                match remove_run(docker, run_id).await {
                    Ok(removed) => notice::info(&format!("removed {}", removed.join(", "))),
                    Err(e) => notice::warn(&crate::runtime::notice::display_chain(&e)),
                }
            }
        }
    });
}
