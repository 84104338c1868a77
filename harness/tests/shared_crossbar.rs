//! Isolation on a shared crossbar (`test --crossbar shared`): two stacks of the same scenario,
//! with the same instance-ids, brought up at once on one shared crossbar, each in a realm of
//! its own. Each stack's calls reach its own agent only: an operation run in one stack has no
//! history in the other. Both go away without leaving anything behind, the crossbar last.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ocs_harness::ocs::OpState;
use ocs_harness::testing::{docker, list_labelled, settings, LABEL_RUN};
use ocs_harness::wait::{poll_until, Backoff, Probe};
use ocs_harness::{launch, Hub, LaunchOptions, Scenario, Stack, StackSpec, Turn};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether `op` of `agent` has any history in `stack`.
async fn ran(stack: &Stack, agent: &str, op: &str) -> bool {
    let api = stack
        .client()
        .agent(agent)
        .get_api()
        .await
        .expect("the agent answers get_api");
    let op = api.op(op).expect("the agent has the op");
    !matches!(op.session, OpState::NoHistory)
}

/// The stack of `barebones.yaml`, a shared crossbar (not started yet), and the launch options
/// of a run named so on it.
fn barebones_on_one_hub() -> (StackSpec, Arc<Hub>, impl Fn(&str) -> LaunchOptions) {
    let settings = settings();
    let scenario = Scenario::from_file(&repo().join("scenarios/barebones.yaml"), &settings.env)
        .expect("barebones.yaml parses");
    let hub = Arc::new(Hub::default());
    let runs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shared-crossbar-runs");
    let shared = hub.clone();
    let options = move |name: &str| {
        let mut o = LaunchOptions::with_settings(name, &settings).with_runs_dir(&runs);
        o.turn = Turn::now(Some(shared.clone()));
        o
    };
    (scenario.stack_spec(), hub, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_with_the_same_instance_ids_on_one_crossbar_see_only_their_own_agents() {
    let (spec, hub, options) = barebones_on_one_hub();
    let (options_a, options_b) = (options("shared-a"), options("shared-b"));
    let (a, b) = tokio::join!(launch(&spec, &options_a), launch(&spec, &options_b));
    let (a, _) = a.expect("stack a comes up on the shared crossbar");
    let (b, _) = b.expect("stack b comes up on the shared crossbar");

    // One crossbar, two realms, each with its own call bridge path.
    let (realm_a, realm_b) = (a.shared_realm(), b.shared_realm());
    assert!(realm_a.is_some() && realm_b.is_some() && realm_a != realm_b);
    assert_eq!(a.bridge_url().port(), b.bridge_url().port());
    assert_ne!(a.bridge_url().path(), b.bridge_url().path());

    // The same instance-id, two agents: what one stack runs, the other never sees.
    assert!(!ran(&a, "barebones1", "count").await && !ran(&b, "barebones1", "count").await);
    a.client()
        .agent("barebones1")
        .start("count", None)
        .await
        .expect("count starts in stack a");
    poll_until(
        "count of stack a's barebones1 to have a session",
        Duration::from_secs(20),
        Backoff::default(),
        || async {
            match ran(&a, "barebones1", "count").await {
                true => Probe::Ready(()),
                false => Probe::Pending("no history yet".into()),
            }
        },
    )
    .await
    .expect("stack a's count runs");
    assert!(
        !ran(&b, "barebones1", "count").await,
        "stack b's barebones1 saw the count started in stack a"
    );
    b.client()
        .agent("barebones1")
        .start("print", None)
        .await
        .expect("print starts in stack b");
    b.client()
        .agent("barebones1")
        .wait("print", Some(Duration::from_secs(10)))
        .await
        .expect("print ends in stack b");
    assert!(
        !ran(&a, "barebones1", "print").await,
        "stack a's barebones1 saw the print started in stack b"
    );

    // Both stacks go (their networks with the shared crossbar attached), then the crossbar.
    let ids = [a.run_id().to_string(), b.run_id().to_string()];
    a.teardown().await.expect("stack a is removed");
    b.teardown().await.expect("stack b is removed");
    hub.stop().await;
    let docker = docker().await.expect("the engine answers");
    for id in ids {
        let (containers, networks) = list_labelled(&docker, &format!("{LABEL_RUN}={id}"))
            .await
            .expect("listing by label");
        assert!(
            containers.is_empty() && networks.is_empty(),
            "run {id} left {} containers and {} networks",
            containers.len(),
            networks.len()
        );
    }
}

/// Whether container `id` exists.
async fn exists(docker: &testcontainers::bollard::Docker, id: &str) -> bool {
    docker
        .inspect_container(
            id,
            None::<testcontainers::bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_crossbar_that_died_is_replaced_for_the_next_stack() {
    let (spec, hub, options) = barebones_on_one_hub();
    let options = options("shared-died");
    let docker = docker().await.expect("the engine answers");

    let (first, _) = launch(&spec, &options)
        .await
        .expect("the first stack comes up");
    let dead = first
        .shared_crossbar_id()
        .expect("the stack runs on the shared crossbar")
        .to_string();
    first.teardown().await.expect("the first stack is removed");
    docker
        .kill_container(
            &dead,
            None::<testcontainers::bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("the shared crossbar is killed");

    let (second, _) = launch(&spec, &options)
        .await
        .expect("the second stack comes up on a new shared crossbar");
    let api = second.client().agent("barebones1").get_api().await;
    assert!(api.is_ok(), "the second stack's agent answers: {api:?}");
    let new = second
        .shared_crossbar_id()
        .expect("the stack runs on the shared crossbar")
        .to_string();
    assert_ne!(new, dead);
    assert!(
        !exists(&docker, &dead).await,
        "the dead crossbar was removed"
    );
    second
        .teardown()
        .await
        .expect("the second stack is removed");
    hub.stop().await;
    assert!(
        !exists(&docker, &new).await,
        "the shared crossbar was removed"
    );
}

/// Run the binary with `args` in the repository, its cache and runs in `dir`; its stdout and
/// stderr.
fn harness(args: &[&str], dir: &std::path::Path) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ocs-harness"))
        .args(args)
        .current_dir(repo())
        .env("OCS_HARNESS_CACHE", dir.join("cache"))
        .env("OCS_HARNESS_RUNS_DIR", dir.join("runs"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "ocs-harness {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// The kept crossbar a `--reuse` run names (`ocs-harness clean --run <id>` removes it).
fn kept_run(stderr: &str) -> String {
    let (_, rest) = stderr
        .split_once("clean --run ")
        .unwrap_or_else(|| panic!("the run names its kept crossbar:\n{stderr}"));
    rest.split(['`', ' ', '\n'])
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crossbar_kept_by_reuse_serves_the_next_run_and_clean_removes_it() {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("reuse-{}", std::process::id()));
    let docker = docker().await.expect("the engine answers");
    let containers_of = |run: String| {
        let docker = docker.clone();
        async move {
            let (containers, _) = list_labelled(&docker, &format!("{LABEL_RUN}={run}"))
                .await
                .expect("listing by label");
            containers
                .into_iter()
                .filter_map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    let args = ["test", "--reuse", "-j", "1", "scenarios/barebones.yaml"];
    let (_, first) = harness(&args, &dir);
    let kept = kept_run(&first);
    let booted = containers_of(kept.clone()).await;
    assert_eq!(booted.len(), 1, "one kept crossbar after the first run");
    let (_, second) = harness(&args, &dir);
    assert_eq!(
        kept_run(&second),
        kept,
        "the second run names the same crossbar"
    );
    assert_eq!(
        containers_of(kept.clone()).await,
        booted,
        "the second run used the kept crossbar instead of booting one"
    );
    harness(&["clean", "--run", &kept], &dir);
    assert!(containers_of(kept).await.is_empty(), "clean removed it");
}
