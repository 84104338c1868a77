//! Service containers at bring-up: each is started on the stack's network under its name
//! (and aliases), its listed ports published, and waited for until its readiness condition
//! holds (a log line, a TCP port, an HTTP answer), before crossbar and the agents start.

use std::collections::BTreeMap;
use std::time::Duration;

use testcontainers::core::IntoContainerPort;
use testcontainers::{ContainerAsync, GenericImage};

use crate::plan::ServicePlan;
use crate::runtime::attached::{start_attached, Reach};
use crate::runtime::bringup::BringUp;
use crate::runtime::engine::EngineHost;
use crate::runtime::logs::LogStore;
use crate::runtime::role::Role;
use crate::runtime::stack::StackError;
use crate::service::{Readiness, ReadyCheck};
use crate::wait::{poll_until, Backoff, Probe};

/// The started services, by name.
pub(crate) type Services = BTreeMap<String, ContainerAsync<GenericImage>>;

impl BringUp<'_> {
    /// Start every service of the plan, in order, each ready before the next starts.
    pub(crate) async fn start_services(
        &self,
        services: &[ServicePlan],
        network: &str,
    ) -> Result<Services, StackError> {
        let mut out = Services::new();
        for s in services {
            let container = self.start_service(s, network).await?;
            let ready = match &s.ready {
                Some(r) => {
                    let at = Probed {
                        docker: self.docker,
                        host: self.host,
                        logs: &self.logs,
                        since: 0,
                    };
                    wait_ready(&container, s, r, &at).await
                }
                None => Ok(()),
            };
            // Handed over before the readiness error: teardown removes it either way.
            out.insert(s.name.clone(), container);
            if let Err(error) = ready {
                return Err(StackError::NotReady {
                    role: Role::Service(s.name.clone()),
                    error: Box::new(error),
                    log_tail: self.logs.tail(&s.name, self.options.log_tail),
                });
            }
        }
        Ok(out)
    }

    /// Create service `s` attached to `network` under its name and aliases, then start it.
    async fn start_service(
        &self,
        s: &ServicePlan,
        network: &str,
    ) -> Result<ContainerAsync<GenericImage>, StackError> {
        let reach = Reach {
            aliases: &s.aliases,
            ports: published(s).collect(),
            publish_ip: self.host.publish_ip(),
        };
        start_attached(
            self.docker,
            &s.container,
            network,
            &reach,
            &self.logs,
            &self.options.run_dir,
        )
        .await
    }
}

/// The container ports of `s` to publish: the listed ones and its readiness check's.
fn published(s: &ServicePlan) -> impl Iterator<Item = u16> + '_ {
    let probe = s.ready.as_ref().and_then(|r| r.check.port());
    s.ports.iter().copied().chain(probe)
}

/// What a readiness probe asks: the engine, where its published ports are reached, the logs
/// (a log line counts from position `since` of the store on: after a restart, lines of the
/// service's new run).
pub(crate) struct Probed<'a> {
    pub docker: &'a testcontainers::bollard::Docker,
    pub host: &'a EngineHost,
    pub logs: &'a LogStore,
    pub since: usize,
}

/// Wait until `ready` holds for service `s`, or its container exits.
pub(crate) async fn wait_ready(
    container: &ContainerAsync<GenericImage>,
    s: &ServicePlan,
    ready: &Readiness,
    at: &Probed<'_>,
) -> Result<(), crate::wait::WaitError> {
    let (host, logs) = (at.host, at.logs);
    let address = match ready.check.port() {
        Some(p) => match container.get_host_port_ipv4(p.tcp()).await {
            Ok(published) => Some(format!("{}:{published}", host.url_host())),
            Err(e) => {
                return Err(failed(
                    &s.name,
                    ready,
                    format!("port {p} not published: {e}"),
                ))
            }
        },
        None => None,
    };
    let condition = format!("service {} to be ready ({})", s.name, ready.check);
    poll_until(condition, ready.timeout, Backoff::default(), || async {
        if !container.is_running().await.unwrap_or(false) {
            let code = container.exit_code().await.ok().flatten();
            let code = code.map_or(String::new(), |c| format!(" with code {c}"));
            return Probe::Failed(format!("the container exited{code}"));
        }
        if ready.check == ReadyCheck::Healthy {
            return health_probe(at.docker, container.id()).await;
        }
        probe(&ready.check, &s.name, address.as_deref(), logs, at.since).await
    })
    .await
}

fn failed(name: &str, ready: &Readiness, reason: String) -> crate::wait::WaitError {
    crate::wait::WaitError::Failed {
        condition: format!("service {name} to be ready ({})", ready.check),
        reason,
        after: Duration::ZERO,
    }
}

/// One look at `check` (`address`: the published port, `host:port`).
async fn probe(
    check: &ReadyCheck,
    name: &str,
    address: Option<&str>,
    logs: &LogStore,
    since: usize,
) -> Probe<()> {
    let address = address.unwrap_or_default();
    match check {
        ReadyCheck::Log(regex) => {
            let re = regex::Regex::new(regex).expect("checked when the scenario was parsed");
            match logs
                .lines_of(name, since)
                .iter()
                .any(|l| re.is_match(&l.text))
            {
                true => Probe::Ready(()),
                false => Probe::Pending("no matching line yet".into()),
            }
        }
        ReadyCheck::Tcp(_) => match tokio::net::TcpStream::connect(address).await {
            Ok(_) => Probe::Ready(()),
            Err(e) => Probe::Pending(format!("connecting to {address}: {e}")),
        },
        ReadyCheck::Http { path, status, .. } => http_probe(address, path, *status).await,
        ReadyCheck::Healthy => Probe::Failed("asked of the engine, not probed here".into()),
    }
}

/// The engine's view of a container's healthcheck: healthy is ready, unhealthy fails (as
/// compose's `service_healthy` does), anything else is not yet.
async fn health_probe(docker: &testcontainers::bollard::Docker, id: &str) -> Probe<()> {
    match crate::runtime::engine::health(docker, id).await {
        Ok(Some((status, _))) if status == "healthy" => Probe::Ready(()),
        Ok(Some((status, last))) if status == "unhealthy" => Probe::Failed(format!(
            "the engine reports it unhealthy; the last check said: {}",
            if last.is_empty() { "(nothing)" } else { &last }
        )),
        Ok(Some((status, last))) => Probe::Pending(format!(
            "health {status}{}",
            if last.is_empty() {
                String::new()
            } else {
                format!(", last check: {last}")
            }
        )),
        Ok(None) => Probe::Failed("the container has no healthcheck".into()),
        Err(e) => Probe::Pending(format!("inspecting the container: {e}")),
    }
}

async fn http_probe(address: &str, path: &str, status: u16) -> Probe<()> {
    let url = format!("http://{address}{path}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a plain HTTP client builds");
    match client.get(&url).send().await {
        Ok(r) if r.status().as_u16() == status => Probe::Ready(()),
        Ok(r) => Probe::Pending(format!("GET {url} answered {}", r.status().as_u16())),
        Err(e) => Probe::Pending(format!("GET {url}: {e}")),
    }
}
