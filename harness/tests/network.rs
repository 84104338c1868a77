//! Every container of a stack is created already attached to the stack's network, under its
//! name and aliases, and started only after that: the engine reports exactly one `connect` of
//! each container to the network (a service once got its aliases by a disconnect and a second
//! connect after its start, and its first request failed now and then with "Network is
//! unreachable").

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ocs-harness");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn each_container_is_connected_to_the_stack_network_once() {
    let runs = std::env::temp_dir().join(format!("ocsh-network-test-{}", std::process::id()));
    // Followed live from before the run (the engine keeps only its last events for `--since`,
    // and other tests may be busy on the same engine); `--since` covers the moment before the
    // subscription is live.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
        .to_string();
    let mut events = Command::new("docker")
        .args([
            "events",
            "--since",
            &since,
            "--filter",
            "type=network",
            "--filter",
            "event=connect",
            "--format",
            "{{.Actor.Attributes.name}} {{.Actor.Attributes.container}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the docker command line runs (it is how this test reads the engine's events)");
    let out = Command::new(BIN)
        .args(["test", "--format", "json", "scenarios/service.yaml"])
        .current_dir(repo())
        .env("OCS_HARNESS_RUNS_DIR", &runs)
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    // The connects happened at bring-up, long before the run's end: all of them are out.
    let _ = events.kill();
    let mut seen = String::new();
    events
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut seen)
        .expect("the events are text");
    let _ = events.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "service.yaml failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_id = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "scenario_finished")
        .and_then(|e| e["run_id"].as_str().map(String::from))
        .expect("scenario_finished names the run");
    let mut connects: BTreeMap<String, usize> = BTreeMap::new();
    for line in seen.lines() {
        if let Some((network, container)) = line.split_once(' ') {
            if network.contains(&run_id) {
                *connects.entry(container.to_string()).or_default() += 1;
            }
        }
    }
    // crossbar, the agent, the two services and the exec step's one-off containers at least
    assert!(
        connects.len() >= 4,
        "expected the run's containers among the engine's connect events: {connects:?}"
    );
    let twice: Vec<_> = connects.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "containers connected to the network of run {run_id} more than once: {twice:?}"
    );
    let _ = std::fs::remove_dir_all(&runs);
}
