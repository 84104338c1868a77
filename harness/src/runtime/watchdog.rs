//! The runs of this process, removed on SIGINT/SIGTERM (logs saved first) before the process
//! exits with 128 + the signal. A teardown racing with the handler waits for it instead of
//! removing the same containers. After testcontainers' `watchdog.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::runtime::engine::{docker_detached, remove_run, EngineSettings};
use crate::runtime::logs::LogStore;
use crate::runtime::notice;

static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

struct ActiveRun {
    logs: LogStore,
    run_dir: PathBuf,
    engine: EngineSettings,
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
pub(crate) fn register(run_id: &str, logs: &LogStore, run_dir: &Path, engine: &EngineSettings) {
    install();
    let run = ActiveRun {
        logs: logs.clone(),
        run_dir: run_dir.to_path_buf(),
        engine: engine.clone(),
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
                let mut caught = 0;
                let mut runs = Vec::new();
                for sig in signals.forever() {
                    caught += 1;
                    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                    if caught == 1 {
                        SHUTTING_DOWN.store(true, Ordering::SeqCst);
                        runs = active()
                            .lock()
                            .expect("active runs")
                            .keys()
                            .cloned()
                            .collect();
                        // The cleanup runs on a thread of its own, so that further signals
                        // are still heard while it works.
                        let cleaning = std::thread::Builder::new()
                            .name("ocs-harness-cleanup".into())
                            .spawn(move || {
                                remove_active_runs(name);
                                std::process::exit(128 + sig);
                            });
                        if cleaning.is_err() {
                            remove_active_runs(name);
                            std::process::exit(128 + sig);
                        }
                        continue;
                    }
                    match again(caught, &runs) {
                        Again::Warn(text) => notice::warn(&text),
                        Again::Exit(text) => {
                            notice::warn(&text);
                            std::process::exit(128 + sig);
                        }
                    }
                }
            })
            .ok();
    });
}

/// What a signal caught while the cleanup of `runs` goes on does.
#[derive(Debug, PartialEq, Eq)]
enum Again {
    /// Say that the cleanup goes on, and how to cut it short.
    Warn(String),
    /// Exit now, saying what may be left and how to remove it.
    Exit(String),
}

/// The `caught`th signal (the 2nd or later) during the cleanup of `runs`: the second warns, the
/// third forces the exit.
fn again(caught: usize, runs: &[String]) -> Again {
    if caught < 3 {
        return Again::Warn(
            "still removing the run's containers and network; interrupt once more to exit at \
             once and leave them"
                .into(),
        );
    }
    let what = match runs {
        [] => "nothing of a run was live".to_string(),
        runs => format!(
            "the containers and networks of run(s) {} may be left",
            runs.join(", ")
        ),
    };
    Again::Exit(format!(
        "exiting without finishing the cleanup: {what}; remove them with `ocs-harness clean` \
         (a later run also removes them)"
    ))
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
        for (run_id, run) in &runs {
            let docker = docker_detached(&run.engine);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_third_signal_forces_the_exit_naming_what_may_be_left() {
        let runs = vec!["r1".to_string(), "r2".to_string()];
        assert!(matches!(again(2, &runs), Again::Warn(t) if t.contains("once more")));
        let Again::Exit(text) = again(3, &runs) else {
            panic!("the third signal exits");
        };
        assert!(
            text.contains("run(s) r1, r2 may be left") && text.contains("`ocs-harness clean`"),
            "{text}"
        );
        assert!(matches!(again(4, &[]), Again::Exit(t) if t.contains("nothing of a run")));
    }
}
