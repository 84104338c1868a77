//! When a container is ready: crossbar when its call bridge answers, an agent when it answers
//! `get_api`. Each wait polls with a deadline; a readiness line in the container's log only
//! makes the polling faster, and a container that exits ends its wait at once.

use std::time::{Duration, Instant};

use testcontainers::{ContainerAsync, GenericImage};

use crate::clock::unix_now;
use crate::ocs::{CallOptions, ClientError, HttpBridge, OcsClient, Transport};
use crate::runtime::engine;
use crate::runtime::logs::LogStore;
use crate::runtime::role::Role;
use crate::wait::{poll_until_hinted, Backoff, Probe, WaitError};

/// The line crossbar prints when it is ready (checked on 26.10.1); it only hints, the bridge
/// answering is the condition.
pub const CROSSBAR_READY_LINE: &str = "Ok, local node configuration ran successfully.";
/// The line an ocs agent prints on joining the realm; registration follows within
/// milliseconds, so `get_api` is then polled fast.
pub const AGENT_JOINED_LINE: &str = "session joined";

/// Intervals once a readiness line has been seen.
const HINTED: Backoff = Backoff {
    initial: Duration::from_millis(2),
    max: Duration::from_millis(20),
};

/// Wait until the bridge answers a call to a procedure nobody registered with
/// `no_such_procedure`: the router, the realm and the caller service are then all up.
/// Crossbar's readiness line (from log position `since` on) cuts the polling short.
pub(crate) async fn wait_bridge(
    client: &OcsClient<HttpBridge>,
    logs: &LogStore,
    since: usize,
    container: &ContainerAsync<GenericImage>,
    timeout: Duration,
) -> Result<(), WaitError> {
    let probe = format!("{}.ocs_harness_probe", client.address_root());
    let condition = format!(
        "crossbar's call bridge {} to answer (no_such_procedure for {probe})",
        client.transport().call_url()
    );
    let hint = logs.appeared(Role::CROSSBAR, CROSSBAR_READY_LINE, since);
    let exit_check = ExitCheck::default();
    poll_until_hinted(condition, timeout, Backoff::default(), hint, HINTED, || {
        let (exit_check, probe) = (&exit_check, &probe);
        async move {
            let options = CallOptions::with_timeout(Duration::from_secs(2));
            let r = client
                .transport()
                .call(probe, Vec::new(), Default::default(), options)
                .await;
            match r {
                Err(e) if e.is_no_such_procedure() => Probe::Ready(()),
                other => {
                    if let Some(reason) = exit_check.exited(container).await {
                        return Probe::Failed(reason);
                    }
                    Probe::Pending(match other {
                        Ok(v) => format!("unexpected answer {v}"),
                        Err(e) => e.to_string(),
                    })
                }
            }
        }
    })
    .await
}

/// Wait until `instance_id` answers `get_api` (its handlers are registered). Its `session
/// joined` line (from log position `since` on) switches to fast polling.
pub(crate) async fn wait_agent(
    client: &OcsClient<HttpBridge>,
    logs: &LogStore,
    since: usize,
    instance_id: &str,
    container: &ContainerAsync<GenericImage>,
    timeout: Duration,
) -> Result<(), WaitError> {
    let agent = client.agent(instance_id);
    let condition = format!(
        "agent {instance_id} to register ({} answering get_api)",
        agent.address()
    );
    let hint = logs.appeared(instance_id, AGENT_JOINED_LINE, since);
    let exit_check = ExitCheck::default();
    poll_until_hinted(condition, timeout, Backoff::default(), hint, HINTED, || {
        let (agent, exit_check) = (&agent, &exit_check);
        async move {
            match agent.get_api().await {
                // An answer the client cannot decode still means the agent registered; the
                // decoding problem shows in the steps that use it.
                Ok(_) | Err(ClientError::Protocol { .. }) => Probe::Ready(()),
                Err(e) => {
                    if let Some(reason) = exit_check.exited(container).await {
                        return Probe::Failed(reason);
                    }
                    Probe::Pending(describe(&e))
                }
            }
        }
    })
    .await
}

/// Asks the engine whether a container exited at most every 50 ms, so fast polling of the
/// bridge does not turn into a stream of inspections.
#[derive(Default)]
struct ExitCheck {
    last: std::sync::Mutex<Option<Instant>>,
}

impl ExitCheck {
    async fn exited(&self, container: &ContainerAsync<GenericImage>) -> Option<String> {
        {
            let mut last = self.last.lock().expect("exit check lock");
            if last.is_some_and(|t| t.elapsed() < Duration::from_millis(50)) {
                return None;
            }
            *last = Some(Instant::now());
        }
        exited(container).await
    }
}

fn describe(e: &ClientError) -> String {
    if e.is_not_registered() {
        "not registered yet (no_such_procedure)".into()
    } else {
        e.to_string()
    }
}

/// `Some(reason)` when the container is no longer running.
async fn exited(container: &ContainerAsync<GenericImage>) -> Option<String> {
    match container.is_running().await {
        Ok(true) => None,
        Ok(false) => {
            let code = container.exit_code().await.ok().flatten();
            let ago = exited_ago(container.id()).await;
            Some(match code {
                Some(c) => format!("the container exited with code {c}{ago}"),
                None => format!("the container is not running{ago}"),
            })
        }
        Err(e) => Some(format!("the container cannot be inspected: {e}")),
    }
}

/// ` (0.12s ago)`: how long ago the engine saw the container finish, so a report shows how
/// quickly the exit was noticed. Empty when the engine does not say.
async fn exited_ago(id: &str) -> String {
    let Ok(docker) = testcontainers::core::client::docker_client_instance().await else {
        return String::new();
    };
    match engine::started_finished(&docker, id).await {
        (_, Some(t)) => format!(" ({:.2}s ago)", (unix_now() - t).max(0.0)),
        _ => String::new(),
    }
}
