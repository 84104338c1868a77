//! Runs that are interrupted: SIGTERM makes the harness save the logs and remove its run;
//! SIGKILL leaves the run behind, and `ocs-harness clean` finds it by label and removes all of
//! it. Both drive the real `ocs-harness` binary through a scenario that runs until killed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use ocs_harness::testing::{docker, list_labelled, LABEL_PID, LABEL_ROLE, LABEL_RUN};
use ocs_harness::wait::{poll_until, Backoff, Probe};
use testcontainers::bollard::query_parameters::ListContainersOptionsBuilder;
use testcontainers::bollard::Docker;

fn long_scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/long.yaml")
}

/// Start a run whose output goes to `log` (a file, so nothing can block on a full pipe).
fn start_run(log: &std::path::Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_ocs-harness"))
        .arg("run")
        .arg(long_scenario())
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("the ocs-harness binary starts")
}

fn log_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("{name}-{}.log", std::process::id()))
}

/// Containers and networks labelled with the harness process `pid`.
async fn resources_of(docker: &Docker, pid: u32) -> (Vec<String>, Vec<String>) {
    let (containers, networks) = list_labelled(docker, &format!("{LABEL_PID}={pid}"))
        .await
        .expect("list by label");
    (
        containers
            .into_iter()
            .filter_map(|c| c.labels.and_then(|l| l.get(LABEL_RUN).cloned()))
            .collect(),
        networks.into_iter().filter_map(|n| n.name).collect(),
    )
}

/// Wait until the run's agent container is running (images may need building first).
async fn wait_for_agent(docker: &Docker, pid: u32) -> String {
    poll_until(
        format!("harness process {pid} to have its agent container running"),
        Duration::from_secs(600),
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        },
        || async {
            let filter = HashMap::from([(
                "label",
                vec![
                    format!("{LABEL_PID}={pid}"),
                    format!("{LABEL_ROLE}=barebones1"),
                ],
            )]);
            let running = docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::new().filters(&filter).build(),
                ))
                .await
                .unwrap_or_default();
            match running
                .first()
                .and_then(|c| c.labels.as_ref()?.get(LABEL_RUN).cloned())
            {
                Some(run) => Probe::Ready(run),
                None => Probe::Pending("no running agent container yet".into()),
            }
        },
    )
    .await
    .expect("the run comes up")
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_saves_logs_and_removes_the_run() {
    let docker = docker().await.expect("a Docker engine");
    let log = log_path("sigterm");
    let mut child = start_run(&log);
    let pid = child.id();
    let run = wait_for_agent(&docker, pid).await;
    signal(pid, "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait().expect("wait"))
        .await
        .expect("join");
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "exit code; stderr:\n{stderr}"
    );
    assert!(stderr.contains("caught SIGTERM"), "{stderr}");
    assert!(stderr.contains(&format!("logs of run {run}")), "{stderr}");
    let (containers, networks) = resources_of(&docker, pid).await;
    assert!(
        containers.is_empty() && networks.is_empty(),
        "left behind: {containers:?} {networks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leftovers_are_found_and_removed_by_clean() {
    let docker = docker().await.expect("a Docker engine");
    let mut child = start_run(&log_path("sigkill"));
    let pid = child.id();
    let run = wait_for_agent(&docker, pid).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    let (containers, networks) = resources_of(&docker, pid).await;
    assert!(
        !containers.is_empty() && !networks.is_empty(),
        "SIGKILL runs no cleanup, so the run is still there"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_ocs-harness"))
        .arg("clean")
        .output()
        .expect("clean runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "removed run {run} (scenario long-running, its harness process {pid} is gone)"
        )),
        "{stdout}"
    );
    let (containers, networks) = resources_of(&docker, pid).await;
    assert!(
        containers.is_empty() && networks.is_empty(),
        "left behind: {containers:?} {networks:?}"
    );
}
