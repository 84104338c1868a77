//! End to end against real containers: the ocs documentation's dockerized barebones agent,
//! built from its unchanged Dockerfile (FROM simonsobs/ocs:latest, mapped to the local ocs
//! image), next to a real crossbar on a private network, driven through the HTTP call bridge.

use std::path::PathBuf;
use std::time::Duration;

use ocs_harness::ocs::{OpCode, ResponseCode, SessionStatus};
use ocs_harness::wait::{poll_until, Backoff, Probe};
use ocs_harness::{launch, AgentSpec, ImageSource, LaunchOptions, Stack, StackSpec};
use serde_json::json;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn barebones_stack() -> StackSpec {
    StackSpec {
        registry: false,
        agents: vec![AgentSpec::new(
            "barebones1",
            "BarebonesAgent",
            ImageSource::Build {
                context: fixture("fixtures/agents/barebones"),
                dockerfile: None,
                args: Default::default(),
            },
        )
        .with_arguments(["--mode", "idle"])
        .with_env("LOGLEVEL", "info")],
        ..StackSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barebones_documented_session() -> anyhow::Result<()> {
    let mut options = LaunchOptions::new("barebones-e2e");
    options.hold_agents = true;
    let (stack, report) = launch(&barebones_stack(), &options).await?;
    eprintln!(
        "images: {:?} (built: {:?}); timings: {:?}",
        report.images,
        report.built,
        stack.timings()
    );
    let result = drive(&stack).await;
    if result.is_err() {
        for line in stack.logs().lines().iter().rev().take(60).rev() {
            eprintln!("[{}] {}", line.container, line.text);
        }
    }
    let removed = stack.teardown().await?;
    eprintln!("removed: {removed:?}");
    result
}

async fn drive(stack: &Stack) -> anyhow::Result<()> {
    let client = stack.client();
    let agent = client.agent("barebones1");

    // Dialled where the engine's ports are reached (loopback for a local engine; the default
    // bridge's gateway when the harness sees itself in a container) and published on loopback
    // only when the engine is local: ask the engine what crossbar's port is bound to.
    let host = stack.engine_host();
    assert_eq!(stack.bridge_url().host_str(), Some(host.host.as_str()));
    let bound = if host.local { "127.0.0.1" } else { "0.0.0.0" };
    let docker = ocs_harness::testing::docker().await?;
    let name = stack
        .container_name("crossbar")
        .expect("crossbar is in the stack");
    let inspect = docker
        .inspect_container(
            name,
            None::<testcontainers::bollard::query_parameters::InspectContainerOptions>,
        )
        .await?;
    let ports = inspect
        .network_settings
        .and_then(|n| n.ports)
        .expect("crossbar publishes a port");
    let bindings: Vec<String> = ports
        .values()
        .flatten()
        .flatten()
        .map(|b| b.host_ip.clone().unwrap_or_default())
        .collect();
    assert!(!bindings.is_empty(), "crossbar's port is published");
    assert!(
        bindings
            .iter()
            .all(|ip| ip == bound || (!host.local && ip == "::")),
        "bound to {bindings:?}, expected {bound} ({host:?})"
    );

    // The agent was started while crossbar booted and held (paused) until the bridge
    // answered: the engine's unpause comes after the harness saw crossbar ready.
    let released = stack
        .engine_released("barebones1")
        .await
        .expect("the engine reports the agent's release (unpause)");
    let marks = &stack.timings().marks;
    assert!(
        released >= marks.bridge_ready && released <= marks.agent_ready["barebones1"],
        "released at {released}, bridge ready at {}, agent ready at {}",
        marks.bridge_ready,
        marks.agent_ready["barebones1"]
    );

    let api = agent.get_api().await?;
    assert_eq!(api.agent_class.as_deref(), Some("BarebonesAgent"));
    assert_eq!(api.instance_hostname, "ocs-docker");
    assert!(api.process("count").is_some(), "count is a process");
    assert!(api.task("print").is_some(), "print is a task");

    // count: start -> running with data.value growing -> stop -> the documented messages.
    let started = agent.start("count", None).await?;
    assert_eq!(started.status, ResponseCode::Ok, "{started}");
    assert_eq!(started.message, "Started process \"count\".");

    let first = poll_until(
        "count to be running with data.value",
        Duration::from_secs(20),
        Backoff::default(),
        || async {
            match agent.status("count").await {
                Ok(r) => match r.session {
                    Some(s) if s.status == SessionStatus::Running => {
                        match s.data.get("value").and_then(|v| v.as_i64()) {
                            Some(v) => Probe::Ready(v),
                            None => Probe::Pending(format!("running, data {}", s.data)),
                        }
                    }
                    other => Probe::Pending(format!("{other:?}")),
                },
                Err(e) => Probe::Failed(e.to_string()),
            }
        },
    )
    .await?;
    let later = poll_until(
        "count's data.value to grow",
        Duration::from_secs(20),
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(250),
        },
        || async {
            match agent.status("count").await {
                Ok(r) => {
                    let v = r
                        .session
                        .as_ref()
                        .and_then(|s| s.data.get("value"))
                        .and_then(|v| v.as_i64());
                    match v {
                        Some(v) if v > first => Probe::Ready(v),
                        other => Probe::Pending(format!("value {other:?}")),
                    }
                }
                Err(e) => Probe::Failed(e.to_string()),
            }
        },
    )
    .await?;
    assert!(later > first);

    let stopped = agent.stop("count").await?;
    assert_eq!(stopped.status, ResponseCode::Ok, "{stopped}");
    let done = agent.wait("count", Some(Duration::from_secs(20))).await?;
    assert_eq!(done.status, ResponseCode::Ok, "{done}");
    let session = done.session.expect("wait returns the session");
    assert_eq!(session.op_code, OpCode::Succeeded);
    assert_eq!(session.success, Some(true));
    assert_eq!(
        session.message_texts(),
        vec![
            "Status is now \"starting\".",
            "Status is now \"running\".",
            "Acquisition exited cleanly.",
            "Status is now \"done\".",
        ]
    );
    let logs = stack.logs();
    logs.wait_for(
        "barebones1",
        "Starting the count!",
        0,
        Duration::from_secs(10),
    )
    .await?;
    logs.wait_for(
        "barebones1",
        "count:0 Acquisition exited cleanly.",
        0,
        Duration::from_secs(10),
    )
    .await?;

    // print with a text param.
    let mark = logs.len();
    let printed = agent
        .start("print", Some(json!({"text": "hello from ocs-harness"})))
        .await?;
    assert_eq!(printed.status, ResponseCode::Ok, "{printed}");
    let done = agent.wait("print", Some(Duration::from_secs(20))).await?;
    let session = done.session.expect("session");
    assert_eq!(session.op_code, OpCode::Succeeded);
    assert_eq!(session.data["text"], "hello from ocs-harness");
    assert!(session.message_texts().contains(&"Printed text to logs"));
    logs.wait_for(
        "barebones1",
        "hello from ocs-harness",
        mark,
        Duration::from_secs(10),
    )
    .await?;

    // A wrong-typed param: an error reply, and no session created.
    let before = agent.status("print").await?;
    let before_id = before.session.as_ref().map(|s| s.session_id);
    let rejected = agent.start("print", Some(json!({"text": 42}))).await?;
    assert_eq!(rejected.status, ResponseCode::Error, "{rejected}");
    assert!(rejected.session.is_none(), "{rejected}");
    assert!(
        rejected.message.contains("Param 'text'") && rejected.message.contains("str"),
        "{}",
        rejected.message
    );
    // ocs discards the previous done session before validating (ocs-reference section 2), so
    // status now says no session is active; in any case no new session id was handed out.
    let after = agent.status("print").await?;
    if let Some(s) = &after.session {
        assert_eq!(Some(s.session_id), before_id, "no new session was created");
    }
    Ok(())
}

/// With holding off, the agents start once crossbar answers and are never paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_not_held_start_after_crossbar() -> anyhow::Result<()> {
    let mut options = LaunchOptions::new("barebones-not-held");
    options.hold_agents = false;
    let (stack, _) = launch(&barebones_stack(), &options).await?;
    let result = async {
        let api = stack.client().agent("barebones1").get_api().await?;
        anyhow::ensure!(api.agent_class.as_deref() == Some("BarebonesAgent"));
        anyhow::ensure!(
            stack.engine_released("barebones1").await.is_none(),
            "the agent was paused although holding was off"
        );
        let (started, _) = stack
            .engine_times("barebones1", "session joined")
            .await
            .expect("the engine reports the agent's start");
        let bridge_ready = stack.timings().marks.bridge_ready;
        anyhow::ensure!(
            started >= bridge_ready,
            "the agent started at {started}, before crossbar answered at {bridge_ready}"
        );
        Ok(())
    }
    .await;
    stack.teardown().await?;
    result
}

/// A teardown whose logs cannot be saved (a file stands where the logs directory goes: root
/// writes through any mode bits) still removes every container and the network, and says
/// what failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teardown_that_cannot_save_the_logs_still_removes_everything() -> anyhow::Result<()> {
    use ocs_harness::testing::{docker, list_labelled, LABEL_RUN};
    let runs = std::env::temp_dir().join(format!("ocs-harness-teardown-{}", std::process::id()));
    let mut options = LaunchOptions::new("teardown-logs-unsaved");
    options.runs_dir = runs.clone();
    let (stack, _) = launch(&barebones_stack(), &options).await?;
    let run_id = stack.run_id().to_string();
    let logs = runs.join(&run_id).join("logs");
    std::fs::create_dir_all(runs.join(&run_id))?;
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::write(&logs, "in the way")?;

    let error = stack
        .teardown()
        .await
        .expect_err("the logs cannot be saved");
    let text = error.to_string();
    assert!(
        text.contains("saving the logs") && text.contains("ocs-harness clean --run"),
        "{text}"
    );
    let docker = docker().await?;
    let (containers, networks) = list_labelled(&docker, &format!("{LABEL_RUN}={run_id}")).await?;
    let _ = std::fs::remove_dir_all(&runs);
    assert!(
        containers.is_empty() && networks.is_empty(),
        "left {} containers and {} networks behind",
        containers.len(),
        networks.len()
    );
    Ok(())
}

/// A stale run that cannot be removed (its network has a container of someone else's attached)
/// does not stop a later launch: the sweep warns and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_stale_run_does_not_stop_the_next_launch() -> anyhow::Result<()> {
    use ocs_harness::testing::{
        docker, LABEL_BOOT, LABEL_HOST, LABEL_MANAGED, LABEL_PID, LABEL_PID_NS, LABEL_RUN,
    };
    use std::collections::HashMap;
    use testcontainers::bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
    use testcontainers::bollard::query_parameters::{
        CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    };

    let options = LaunchOptions::new("stuck-sweep");
    let (stack, _) = launch(&barebones_stack(), &options).await?;
    let image = stack.plan().agents[0].container.image.clone();
    stack.teardown().await?;

    // A run of a harness process that is gone (pid 0 never is one), on this host and kernel.
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let pid_ns = std::fs::read_link("/proc/self/ns/pid")?;
    let run = format!("stuck{}", std::process::id());
    let net = format!("ocsh-{run}");
    let labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_RUN.to_string(), run.clone()),
        (LABEL_HOST.to_string(), read("/proc/sys/kernel/hostname")),
        (
            LABEL_BOOT.to_string(),
            read("/proc/sys/kernel/random/boot_id"),
        ),
        (
            LABEL_PID_NS.to_string(),
            pid_ns.to_string_lossy().into_owned(),
        ),
        (LABEL_PID.to_string(), "0".to_string()),
    ]);
    let docker = docker().await?;
    docker
        .create_network(NetworkCreateRequest {
            name: net.clone(),
            labels: Some(labels),
            ..Default::default()
        })
        .await?;
    // Someone else's container (no labels of ours) on that network.
    let other = format!("not-ours-{run}");
    let body = ContainerCreateBody {
        image: Some(image),
        entrypoint: Some(vec!["sleep".into(), "300".into()]),
        host_config: Some(HostConfig {
            network_mode: Some(net.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let create = CreateContainerOptionsBuilder::new().name(&other).build();
    docker.create_container(Some(create), body).await?;
    docker.start_container(&other, None).await?;

    let t = std::time::Instant::now();
    let launched = launch(&barebones_stack(), &options).await;
    let took = t.elapsed();
    let left = match launched {
        Ok((stack, _)) => {
            stack.teardown().await?;
            None
        }
        Err(e) => Some(e.to_string()),
    };
    let rm = RemoveContainerOptionsBuilder::new().force(true).v(true);
    docker.remove_container(&other, Some(rm.build())).await?;
    // Freed, the stale run may be swept by any harness process launching meanwhile.
    let _ = docker.remove_network(&net).await;
    assert_eq!(left, None, "the launch failed");
    assert!(took < Duration::from_secs(60), "the launch took {took:?}");
    Ok(())
}

/// A `logs` step on an agent killed just before ends as soon as the container is seen exited,
/// with its exit code, not at its 90 s timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logs_step_on_a_killed_agent_fails_at_once() -> anyhow::Result<()> {
    let text = "name: killed-logs\nstack:\n  registry: false\n  agents:\n    - instance-id: fake1\n      \
        agent-class: FakeDataAgent\n      image: simonsobs/ocs:latest\n      \
        arguments: [--mode, idle]\nsteps:\n  - api: fake1\n  - fault: kill\n    container: fake1\n  \
        - logs: fake1\n    timeout: 90s\n    contains: [a line fake1 never prints]\n";
    let path = fixture("tests/killed-logs.yaml");
    let scenario =
        ocs_harness::Scenario::from_str(text, &path, &ocs_harness::testing::settings().env)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = ocs_harness::run(&scenario, &LaunchOptions::new(&scenario.name)).await?;
    let failure = report.failure.expect("the logs step fails");
    eprintln!("the run took {:?}: {}", report.elapsed, failure.problems[0]);
    assert_eq!(failure.step, 3, "{failure}");
    let problems = failure.problems.join("\n");
    // Given up (the container exited), not timed out; the whole run is shorter than the
    // step's timeout alone.
    assert!(
        problems.contains("gave up waiting for fake1's log")
            && problems.contains("the container of fake1 exited with code 137"),
        "{problems}"
    );
    assert!(!failure.log_tail.is_empty(), "the log tail goes with it");
    assert!(
        report.elapsed < Duration::from_secs(90),
        "the run took {:?}",
        report.elapsed
    );
    Ok(())
}
