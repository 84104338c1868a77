//! The Docker engine as the harness uses it: the client (testcontainers' own, so
//! `DOCKER_HOST` and testcontainers' settings apply), the labels every resource carries,
//! listing and removal by label, container operations and inspection, and the one mapping of
//! the engine's errors ([`EngineError`], which keeps the engine's error as its source).

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::errors::Error as BollardError;
use testcontainers::bollard::models::{
    ContainerSummary, Network, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest,
};
use testcontainers::bollard::query_parameters::{
    EventsOptions, InspectContainerOptions, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;

use crate::clock::unix_time_of_rfc3339;
use crate::overrides::ImageRef;
use crate::plan::LABEL_RUN;
use crate::runtime::logs::{LogStore, Stream};
use crate::wait::{poll_until, Backoff, Probe, WaitError};

/// What the engine (or testcontainers on its behalf) answered instead of doing the request.
#[derive(Debug, thiserror::Error)]
pub enum EngineCause {
    /// The engine's API.
    #[error(transparent)]
    Docker(#[from] BollardError),
    /// testcontainers, starting or inspecting a container.
    #[error(transparent)]
    Testcontainers(#[from] testcontainers::TestcontainersError),
    /// testcontainers' client (connecting).
    #[error(transparent)]
    Client(#[from] testcontainers::core::client::ClientError),
    /// A removal retried until its deadline.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// A request to the Docker engine failed. The engine's own error is the source.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No engine answers.
    #[error(
        "cannot reach the Docker engine. Start the engine, or point DOCKER_HOST at it; \
         Docker-backed tests do not run without one"
    )]
    Unreachable {
        /// Why.
        #[source]
        source: Box<EngineCause>,
    },
    /// The engine's address or TLS settings are unusable.
    #[error("{text}")]
    Settings {
        /// What is wrong and what to do.
        text: String,
    },
    /// Removing a run left some of it behind; the rest was removed.
    #[error("could not remove all of run {run}: {}", .failures.join("; "))]
    Leftovers {
        /// The run.
        run: String,
        /// What was removed.
        removed: Vec<String>,
        /// What could not be, and why (one line each).
        failures: Vec<String>,
    },
    /// A request failed.
    #[error("Docker request failed while {doing}")]
    Request {
        /// What the harness was doing.
        doing: String,
        /// The engine's answer.
        #[source]
        source: Box<EngineCause>,
    },
}

/// The one mapping of engine errors: `.doing("restarting crossbar")?`.
pub(crate) trait Doing<T> {
    /// The error as an [`EngineError::Request`] about `doing`.
    fn doing(self, doing: impl Into<String>) -> Result<T, EngineError>;
}

impl<T, E: Into<EngineCause>> Doing<T> for Result<T, E> {
    fn doing(self, doing: impl Into<String>) -> Result<T, EngineError> {
        self.map_err(|e| EngineError::Request {
            doing: doing.into(),
            source: Box::new(e.into()),
        })
    }
}

/// The engine's client (the one testcontainers uses), or a clear error when none answers or
/// its TLS settings are incomplete (checked first: testcontainers panics on them).
pub async fn docker(settings: &EngineSettings) -> Result<Docker, EngineError> {
    settings.check()?;
    let unreachable = |e: EngineCause| EngineError::Unreachable {
        source: Box::new(e),
    };
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| unreachable(e.into()))?;
    docker.ping().await.map_err(|e| unreachable(e.into()))?;
    Ok(docker)
}

/// How the harness reaches the engine: read once from the settings' environment by the rules
/// testcontainers follows for the client that starts the containers (`DOCKER_HOST`, else the
/// first socket of `/var/run/docker.sock`, `$XDG_RUNTIME_DIR/.docker/run/docker.sock`,
/// `~/.docker/run/docker.sock`, `~/.docker/desktop/docker.sock`; TLS for `https://`, or for
/// `tcp://`/`http://` with `DOCKER_TLS_VERIFY=1`, with the certificates in `DOCKER_CERT_PATH`),
/// so that every client of the harness (signals, drops) reaches the same engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// The engine's address (`unix://...`, `tcp://...`, `https://...`).
    pub host: String,
    /// `DOCKER_TLS_VERIFY=1`.
    pub tls_verify: bool,
    /// `DOCKER_CERT_PATH`: the directory of `ca.pem`, `cert.pem` and `key.pem`.
    pub cert_path: Option<std::path::PathBuf>,
    /// `OCS_HARNESS_HOST`: where the engine's published ports are reached, instead of the
    /// address derived from the engine (see [`EngineHost::derive`]).
    pub ports_host: Option<String>,
    /// Docker's client configuration directory (`$DOCKER_CONFIG`, else `~/.docker`), whose
    /// `config.json` holds registry credentials.
    pub config_dir: Option<std::path::PathBuf>,
}

impl Default for EngineSettings {
    /// With no variable set (the first engine socket found on this machine).
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

impl EngineSettings {
    /// From the harness's settings (the environment read once at the edge).
    pub fn of(settings: &crate::config::Settings) -> Self {
        Self::from_lookup(|k| settings.env.var(k))
    }

    /// From the variables `get` gives.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let host = get("DOCKER_HOST").unwrap_or_else(|| {
            let mut sockets = vec!["/var/run/docker.sock".to_string()];
            if let Some(dir) = get("XDG_RUNTIME_DIR") {
                sockets.push(format!("{dir}/.docker/run/docker.sock"));
            }
            if let Some(home) = get("HOME") {
                sockets.push(format!("{home}/.docker/run/docker.sock"));
                sockets.push(format!("{home}/.docker/desktop/docker.sock"));
            }
            let found = sockets
                .into_iter()
                .find(|p| std::path::Path::new(p).exists());
            format!(
                "unix://{}",
                found.as_deref().unwrap_or("/var/run/docker.sock")
            )
        });
        Self {
            host,
            tls_verify: get("DOCKER_TLS_VERIFY").as_deref() == Some("1"),
            cert_path: get("DOCKER_CERT_PATH").map(Into::into),
            ports_host: get(crate::config::HOST)
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty()),
            config_dir: get("DOCKER_CONFIG")
                .map(std::path::PathBuf::from)
                .or_else(|| get("HOME").map(|h| std::path::Path::new(&h).join(".docker"))),
        }
    }

    /// Whether the engine is reached over TLS.
    fn tls(&self) -> bool {
        let scheme = self.host.split("://").next().unwrap_or_default();
        scheme == "https" || (matches!(scheme, "tcp" | "http") && self.tls_verify)
    }

    /// The certificates' directory when TLS is used, or what is wrong with the settings.
    fn check(&self) -> Result<Option<&std::path::Path>, EngineError> {
        let bad = |text: String| EngineError::Settings { text };
        let scheme = self.host.split("://").next().unwrap_or_default();
        if !self.host.contains("://") || !matches!(scheme, "unix" | "tcp" | "http" | "https") {
            return Err(bad(format!(
                "DOCKER_HOST={} is not an engine address: use unix:///path/to/docker.sock, \
                 tcp://host:port or https://host:port",
                self.host
            )));
        }
        if !self.tls() {
            return Ok(None);
        }
        let why = if scheme == "https" {
            format!("DOCKER_HOST={}", self.host)
        } else {
            "DOCKER_TLS_VERIFY=1".to_string()
        };
        let Some(dir) = &self.cert_path else {
            return Err(bad(format!(
                "{why} asks for TLS, but DOCKER_CERT_PATH is not set: set it to the directory \
                 holding ca.pem, cert.pem and key.pem (or unset DOCKER_TLS_VERIFY for a plain \
                 tcp:// engine)"
            )));
        };
        let missing: Vec<&str> = ["ca.pem", "cert.pem", "key.pem"]
            .into_iter()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(bad(format!(
                "{why} asks for TLS, but DOCKER_CERT_PATH={} lacks {}: point it at the \
                 directory holding ca.pem, cert.pem and key.pem",
                dir.display(),
                missing.join(", ")
            )));
        }
        Ok(Some(dir))
    }

    /// A client for these settings (as testcontainers makes its own), or a clear error.
    pub fn connect(&self) -> Result<Docker, EngineError> {
        use testcontainers::bollard::API_DEFAULT_VERSION;
        const TIMEOUT: u64 = 120;
        let unreachable = |e: BollardError| EngineError::Unreachable {
            source: Box::new(e.into()),
        };
        let host = self.host.as_str();
        match self.check()? {
            Some(dir) => Docker::connect_with_ssl(
                host,
                &dir.join("key.pem"),
                &dir.join("cert.pem"),
                &dir.join("ca.pem"),
                TIMEOUT,
                API_DEFAULT_VERSION,
            ),
            None if host.starts_with("unix://") => {
                Docker::connect_with_unix(host, TIMEOUT, API_DEFAULT_VERSION)
            }
            None => Docker::connect_with_http(host, TIMEOUT, API_DEFAULT_VERSION),
        }
        .map_err(unreachable)
    }
}

/// Where the harness reaches the ports the engine publishes, and whether the engine is local
/// (its published ports then stay on loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineHost {
    /// Host name or IP address to dial (`127.0.0.1` rather than `localhost`: IPv4 and IPv6
    /// ports can differ).
    pub host: String,
    /// The engine shares the harness's loopback: publish on 127.0.0.1 only.
    pub local: bool,
    /// Where `host` came from, for the debug log and messages.
    pub from: String,
    /// The one address published ports are bound to: the address the harness dials (loopback
    /// for a local engine), never every interface (see [`EngineHost::with_publish`]).
    pub publish: String,
}

impl EngineHost {
    /// As testcontainers' `get_host()` derives it, with `OCS_HARNESS_HOST` first:
    /// `override_host` when given; the host of a `tcp://`, `http://` or `https://`
    /// `docker_host`; for a socket, when the harness runs in a container (`in_container`),
    /// the default bridge's `gateway`, else (a bridge that lists a subnet and no gateway) the
    /// container's own default `route` (the engine's host, as seen from inside; the caller
    /// passes none when the bridge's interface is in this network namespace, i.e. the engine
    /// is local); else localhost. Published on loopback when local; [`EngineHost::with_publish`] sets the
    /// address of a remote one.
    pub fn derive(
        override_host: Option<&str>,
        docker_host: &str,
        in_container: bool,
        gateway: Option<&str>,
        route: Option<&str>,
    ) -> EngineHost {
        let (host, from) = if let Some(h) = override_host {
            (h.to_string(), crate::config::HOST.to_string())
        } else if let Some(h) = tcp_host(docker_host) {
            (h, format!("DOCKER_HOST={docker_host}"))
        } else if let (true, Some(g)) = (in_container, gateway) {
            let from = "the default bridge's gateway (the harness runs in a container)";
            (g.to_string(), from.to_string())
        } else if let (true, Some(r)) = (in_container, route) {
            let from = "the container's default route (the harness runs in a container; \
                        the default bridge lists no gateway)";
            (r.to_string(), from.to_string())
        } else {
            (
                "localhost".to_string(),
                format!("the local engine at {docker_host}"),
            )
        };
        let local = is_loopback(&host);
        let host = if host == "localhost" {
            "127.0.0.1".to_string()
        } else {
            host
        };
        let publish = if local {
            "127.0.0.1".to_string()
        } else {
            ip_literal(&host).unwrap_or_default()
        };
        EngineHost {
            host,
            local,
            from,
            publish,
        }
    }

    /// The address to publish on when `host` is a name (an IP address already has it):
    /// `resolved`, the address the name resolves to here, which is the one the harness dials;
    /// loopback when it does not resolve (the harness cannot dial it either, and nothing is
    /// opened to the network meanwhile).
    pub fn with_publish(mut self, resolved: Option<std::net::IpAddr>) -> EngineHost {
        if self.publish.is_empty() {
            self.publish = match resolved {
                Some(ip) => ip.to_string(),
                None => "127.0.0.1".to_string(),
            };
        }
        self
    }

    /// The host as it goes into a URL (an IPv6 address in brackets).
    pub fn url_host(&self) -> String {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.host.clone(),
        }
    }

    /// The address crossbar's and the services' ports are published on: loopback when the
    /// engine is local, else the one address the harness dials (the gateway, the engine's
    /// host), so that nobody else on that network reaches the agents' bridge.
    pub fn publish_ip(&self) -> &str {
        &self.publish
    }
}

/// `host` as an IP address, without brackets.
fn ip_literal(host: &str) -> Option<String> {
    host.trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_string())
}

/// The gateway of the default route in `/proc/net/route`'s text (`Destination` 0, the
/// `RTF_GATEWAY` flag; addresses are printed in the kernel's byte order).
pub fn default_route_gateway(route_table: &str) -> Option<std::net::Ipv4Addr> {
    route_table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dest, gateway, flags) = (f.get(1)?, f.get(2)?, f.get(3)?);
        let flags = u16::from_str_radix(flags, 16).ok()?;
        if *dest != "00000000" || flags & 0x2 == 0 {
            return None;
        }
        let raw = u32::from_str_radix(gateway, 16).ok()?;
        let ip = std::net::Ipv4Addr::from(raw.to_ne_bytes());
        (!ip.is_unspecified()).then_some(ip)
    })
}

/// The host part of a `tcp://`, `http://` or `https://` engine address.
fn tcp_host(docker_host: &str) -> Option<String> {
    let url = reqwest::Url::parse(docker_host).ok()?;
    if !matches!(url.scheme(), "tcp" | "http" | "https") {
        return None;
    }
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    Some(host.to_string())
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where this process reaches `docker`'s published ports (see [`EngineHost::derive`]).
pub async fn engine_host(docker: &Docker, settings: &EngineSettings) -> EngineHost {
    let override_host = settings.ports_host.clone();
    let docker_host = settings.host.clone();
    // testcontainers' test for "inside a container".
    let in_container = std::path::Path::new("/.dockerenv").exists();
    let socket = override_host.is_none() && tcp_host(&docker_host).is_none();
    let bridge = if in_container && socket {
        default_bridge(docker).await
    } else {
        DefaultBridge::default()
    };
    let gateway = bridge.gateway;
    // The default route leads to the engine's host only from a network namespace of its own:
    // where the bridge's interface is here (the engine runs in this very container, or the
    // harness's container is on the host network), the engine is local.
    let bridge_here = bridge
        .interface
        .is_some_and(|i| std::path::Path::new("/sys/class/net").join(i).exists());
    let route = if in_container && socket && gateway.is_none() && !bridge_here {
        std::fs::read_to_string("/proc/net/route")
            .ok()
            .and_then(|t| default_route_gateway(&t))
            .map(|ip| ip.to_string())
    } else {
        None
    };
    let host = EngineHost::derive(
        override_host.as_deref(),
        &docker_host,
        in_container,
        gateway.as_deref(),
        route.as_deref(),
    );
    let resolved = if host.publish.is_empty() {
        tokio::net::lookup_host((host.host.as_str(), 0))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .map(|a| a.ip())
    } else {
        None
    };
    host.with_publish(resolved)
}

/// What the harness needs of the engine's default `bridge` network.
#[derive(Debug, Default)]
struct DefaultBridge {
    /// Its gateway, as its IPAM config lists it (some engines list only the subnet).
    gateway: Option<String>,
    /// The name of its interface on the engine's host (`docker0`).
    interface: Option<String>,
}

async fn default_bridge(docker: &Docker) -> DefaultBridge {
    let Ok(network) = docker
        .inspect_network(
            "bridge",
            None::<testcontainers::bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    else {
        return DefaultBridge::default();
    };
    let interface = network
        .options
        .as_ref()
        .and_then(|o| o.get("com.docker.network.bridge.name"))
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .cloned();
    let gateway = network
        .ipam
        .and_then(|i| i.config)
        .into_iter()
        .flatten()
        .filter_map(|c| c.gateway)
        .find(|g| !g.trim().is_empty());
    DefaultBridge { gateway, interface }
}

/// A client of its own, for a thread outside testcontainers' runtime (drop, signals), made by
/// the same rules as the one that started the containers ([`EngineSettings`]).
pub(crate) fn docker_detached(settings: &EngineSettings) -> Result<Docker, EngineError> {
    settings.connect()
}

/// Every container (running or not) and network carrying `label` (`key=value`).
pub async fn list_labelled(
    docker: &Docker,
    label: &str,
) -> Result<(Vec<ContainerSummary>, Vec<Network>), EngineError> {
    let filter = HashMap::from([("label", vec![label.to_string()])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .doing(format!("listing the containers labelled {label}"))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .doing(format!("listing the networks labelled {label}"))?;
    Ok((containers, networks))
}

pub(crate) fn is_status(e: &BollardError, codes: &[u16]) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code, .. }
        if codes.contains(status_code))
}

/// Remove every container and network labelled with `run_id`, going on past what cannot be
/// removed. Returns what was removed; when something could not be, a
/// [`EngineError::Leftovers`] saying what and why (with what was removed).
pub async fn remove_run(docker: &Docker, run_id: &str) -> Result<Vec<String>, EngineError> {
    let (containers, networks) = list_labelled(docker, &format!("{LABEL_RUN}={run_id}")).await?;
    let mut removed = Vec::new();
    let mut failures = Vec::new();
    let mut ours = std::collections::HashSet::new();
    for c in containers {
        let Some(id) = c.id else { continue };
        ours.insert(id.clone());
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_else(|| id.clone());
        let name = name.trim_start_matches('/').to_string();
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true);
        match docker.remove_container(&id, Some(options.build())).await {
            // Gone already, or someone else (an engine-side removal) is removing it.
            Err(e) if !is_status(&e, &[404, 409]) => {
                let e = Err::<(), _>(e).doing(format!("removing container {name}"));
                failures.push(crate::runtime::notice::display_chain(&e.unwrap_err()));
            }
            _ => removed.push(format!("container {name}")),
        }
    }
    for n in networks {
        let Some(name) = n.name else { continue };
        match remove_network(docker, &name, &ours).await {
            Ok(()) => removed.push(format!("network {name}")),
            Err(e) => failures.push(crate::runtime::notice::display_chain(
                &Err::<(), _>(e)
                    .doing(format!("removing network {name}"))
                    .unwrap_err(),
            )),
        }
    }
    if failures.is_empty() {
        Ok(removed)
    } else {
        Err(EngineError::Leftovers {
            run: run_id.to_string(),
            removed,
            failures,
        })
    }
}

/// A container still being removed keeps its endpoint for a moment: retry until the network
/// can go, within a deadline. A network that a container outside the run (`ours`: the run's
/// container ids) is attached to cannot go: that fails at once, naming the container.
async fn remove_network(
    docker: &Docker,
    name: &str,
    ours: &std::collections::HashSet<String>,
) -> Result<(), WaitError> {
    poll_until(
        format!("network {name} to be removable"),
        Duration::from_secs(30),
        Backoff::default(),
        || async {
            match docker.remove_network(name).await {
                Err(e) if !is_status(&e, &[404]) => {
                    match foreign_endpoints(docker, name, ours).await {
                        // A worker's shared crossbar serves the run: it leaves the network.
                        Some(foreign) if foreign.iter().any(|(_, n)| is_hub(n)) => {
                            for (id, _) in foreign.iter().filter(|(_, n)| is_hub(n)) {
                                if let Err(e) = disconnect(docker, name, id).await {
                                    return Probe::Pending(format!(
                                        "disconnecting the shared crossbar: {e}"
                                    ));
                                }
                            }
                            Probe::Pending("the shared crossbar was attached".into())
                        }
                        Some(foreign) if !foreign.is_empty() => Probe::Failed(format!(
                            "{e}; container(s) outside the run are attached to it: {}",
                            foreign
                                .iter()
                                .map(|(_, n)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                        _ => Probe::Pending(e.to_string()),
                    }
                }
                _ => Probe::Ready(()),
            }
        },
    )
    .await
}

/// The prefix of a worker's shared crossbar's container name (`runtime::hub`): a run's
/// teardown disconnects such a container from its network instead of refusing to remove it.
pub(crate) const SHARED_CROSSBAR_PREFIX: &str = "ocsh-hub-";

/// Whether the container named `name` is a worker's shared crossbar.
fn is_hub(name: &str) -> bool {
    name.trim_start_matches('/')
        .starts_with(SHARED_CROSSBAR_PREFIX)
}

/// The ids and names of the containers attached to `network` that are not in `ours`; `None`
/// when the network cannot be inspected.
async fn foreign_endpoints(
    docker: &Docker,
    network: &str,
    ours: &std::collections::HashSet<String>,
) -> Option<Vec<(String, String)>> {
    let options = testcontainers::bollard::query_parameters::InspectNetworkOptions::default();
    let n = docker.inspect_network(network, Some(options)).await.ok()?;
    Some(
        n.containers
            .unwrap_or_default()
            .into_iter()
            .filter(|(id, _)| !ours.contains(id))
            .map(|(id, c)| {
                let name = c.name.unwrap_or_else(|| id.clone());
                (id, name)
            })
            .collect(),
    )
}

/// Whether `image` exists in the engine's image store.
pub async fn image_exists(docker: &Docker, image: &ImageRef) -> Result<bool, EngineError> {
    match docker.inspect_image(&image.to_string()).await {
        Ok(_) => Ok(true),
        Err(e) if is_status(&e, &[404]) => Ok(false),
        Err(e) => Err(e).doing(format!("inspecting image {image}")),
    }
}

/// Create a bridge network carrying `labels` (`internal`: no way out, a marker only).
pub(crate) async fn create_network(
    docker: &Docker,
    name: &str,
    labels: HashMap<String, String>,
    internal: bool,
) -> Result<(), BollardError> {
    docker
        .create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            internal: internal.then_some(true),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// Cut container `id` off `network`.
pub(crate) async fn disconnect(
    docker: &Docker,
    network: &str,
    id: &str,
) -> Result<(), BollardError> {
    let request = NetworkDisconnectRequest {
        container: id.to_string(),
        force: Some(true),
    };
    docker.disconnect_network(network, request).await
}

/// Put container `id` back on `network`.
pub(crate) async fn connect(docker: &Docker, network: &str, id: &str) -> Result<(), BollardError> {
    let request = NetworkConnectRequest {
        container: id.to_string(),
        endpoint_config: None,
    };
    docker.connect_network(network, request).await
}

/// Connect container `id` to `network`, reachable there as `alias` too.
pub(crate) async fn connect_as(
    docker: &Docker,
    network: &str,
    id: &str,
    alias: &str,
) -> Result<(), BollardError> {
    let request = NetworkConnectRequest {
        container: id.to_string(),
        endpoint_config: Some(testcontainers::bollard::models::EndpointSettings {
            aliases: Some(vec![alias.to_string()]),
            ..Default::default()
        }),
    };
    docker.connect_network(network, request).await
}

/// The engine's default CPU weight of a container (`--cpu-shares`).
pub(crate) const CPU_SHARES_DEFAULT: i64 = 1024;

/// Give container `id` the CPU weight `shares` (relative to the default 1024): under
/// contention it gets that share of what the others get; on an idle CPU, all it asks for.
pub(crate) async fn cpu_shares(docker: &Docker, id: &str, shares: i64) -> Result<(), BollardError> {
    let update = testcontainers::bollard::models::ContainerUpdateBody {
        cpu_shares: Some(shares),
        ..Default::default()
    };
    docker.update_container(id, update).await
}

/// Restart container `id` (SIGTERM, SIGKILL after 10 s).
pub(crate) async fn restart(docker: &Docker, id: &str) -> Result<(), BollardError> {
    let options = RestartContainerOptionsBuilder::new().t(10).build();
    docker.restart_container(id, Some(options)).await
}

/// Stop container `id` (SIGTERM, SIGKILL after 10 s).
pub(crate) async fn stop(docker: &Docker, id: &str) -> Result<(), BollardError> {
    let options = StopContainerOptionsBuilder::new().t(10).build();
    docker.stop_container(id, Some(options)).await
}

/// Start the (stopped) container `id`.
pub(crate) async fn start(docker: &Docker, id: &str) -> Result<(), BollardError> {
    docker
        .start_container(id, None::<StartContainerOptions>)
        .await
}

/// Send `signal` to container `id`.
pub(crate) async fn kill(docker: &Docker, id: &str, signal: &str) -> Result<(), BollardError> {
    let options = KillContainerOptionsBuilder::new().signal(signal).build();
    docker.kill_container(id, Some(options)).await
}

/// The engine's StartedAt and FinishedAt of container `id` (Unix seconds), when it says.
pub(crate) async fn started_finished(docker: &Docker, id: &str) -> (Option<f64>, Option<f64>) {
    let state = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()
        .and_then(|i| i.state);
    let time = |t: Option<String>| t.and_then(|t| unix_time_of_rfc3339(&t));
    match state {
        Some(s) => (time(s.started_at), time(s.finished_at)),
        None => (None, None),
    }
}

/// The health of container `id` as the engine reports it (`starting`, `healthy`,
/// `unhealthy`), with the output of its last check; `None` when it has no healthcheck.
pub(crate) async fn health(
    docker: &Docker,
    id: &str,
) -> Result<Option<(String, String)>, BollardError> {
    let state = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await?
        .state;
    let Some(health) = state.and_then(|s| s.health) else {
        return Ok(None);
    };
    let status = health.status.map(|s| s.to_string()).unwrap_or_default();
    let last = health
        .log
        .and_then(|l| l.last().cloned())
        .and_then(|r| r.output)
        .unwrap_or_default();
    Ok(Some((status, last.trim().to_string())))
}

/// The engine's timestamp (Unix seconds) of the first log line of container `id` that
/// contains `needle`.
pub(crate) async fn first_line_time(docker: &Docker, id: &str, needle: &str) -> Option<f64> {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .build();
    let mut stream = docker.logs(id, Some(options));
    while let Some(Ok(frame)) = stream.next().await {
        let bytes = frame.into_bytes();
        let text = String::from_utf8_lossy(&bytes);
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            let ts = line.split_once(' ').map(|(t, _)| t)?;
            return unix_time_of_rfc3339(ts);
        }
    }
    None
}

/// When (Unix seconds), between `since` and `until`, the engine first saw container `id`
/// unpaused.
pub(crate) async fn unpaused_at(docker: &Docker, id: &str, since: f64, until: f64) -> Option<f64> {
    let options = EventsOptions {
        since: Some((since.floor() as i64).to_string()),
        until: Some((until.ceil() as i64).to_string()),
        filters: Some(HashMap::from([
            ("container".to_string(), vec![id.to_string()]),
            ("event".to_string(), vec!["unpause".to_string()]),
        ])),
    };
    let mut events = docker.events(Some(options));
    while let Some(Ok(event)) = events.next().await {
        if let Some(ns) = event.time_nano {
            return Some(ns as f64 / 1e9);
        }
    }
    None
}

/// The complete log of container `id` as the engine has it; `None` when the engine cannot
/// give all of it.
pub(crate) async fn full_log(docker: &Docker, id: &str) -> Option<Vec<u8>> {
    let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
    let mut text = Vec::new();
    let mut stream = docker.logs(id, Some(options));
    while let Some(frame) = stream.next().await {
        text.extend_from_slice(&frame.ok()?.into_bytes());
    }
    Some(text)
}

/// Follow a restarted container's output into the store under `name`, from its new start
/// (`since`, Unix seconds) on: the testcontainers consumer ends at the first stop.
pub(crate) async fn follow_logs(
    docker: Docker,
    id: String,
    name: String,
    logs: LogStore,
    since: f64,
) {
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .since(since.floor() as i32)
        .build();
    let mut stream = docker.logs(&id, Some(options));
    while let Some(Ok(frame)) = stream.next().await {
        let (kind, bytes) = match frame {
            LogOutput::StdErr { message } => (Stream::Stderr, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (Stream::Stdout, message)
            }
            LogOutput::StdIn { .. } => continue,
        };
        let text = String::from_utf8_lossy(&bytes);
        for line in text.split_inclusive('\n') {
            let (ts, rest) = line.split_once(' ').unwrap_or(("", line));
            // Lines of the previous run of the container are already in the store.
            if unix_time_of_rfc3339(ts).is_some_and(|t| t < since) {
                continue;
            }
            logs.push_bytes(&name, kind, rest.as_bytes());
        }
    }
    logs.flush(&name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn the_engine_host_as_testcontainers_derives_it() {
        let sock = "unix:///var/run/docker.sock";
        let h = EngineHost::derive(None, sock, false, Some("172.17.0.1"), None);
        assert_eq!((h.host.as_str(), h.local), ("127.0.0.1", true));
        assert_eq!(h.publish_ip(), "127.0.0.1");
        let h = EngineHost::derive(None, sock, true, Some("172.17.0.1"), Some("10.1.0.1"));
        assert_eq!((h.host.as_str(), h.local), ("172.17.0.1", false));
        // Published on the address dialled, not on every interface.
        assert_eq!(h.publish_ip(), "172.17.0.1");
        // In a container whose engine's bridge lists a subnet and no gateway: the container's
        // default route (it fell back to localhost before, and crossbar was never reached).
        let h = EngineHost::derive(None, sock, true, None, Some("172.18.0.1"));
        assert_eq!((h.host.as_str(), h.local), ("172.18.0.1", false));
        assert_eq!(h.publish_ip(), "172.18.0.1");
        assert!(h.from.contains("default route"), "{}", h.from);
        // Neither: localhost, as testcontainers does.
        let h = EngineHost::derive(None, sock, true, None, None);
        assert_eq!((h.host.as_str(), h.local), ("127.0.0.1", true));
        let h = EngineHost::derive(None, "tcp://docker:2376", true, Some("172.17.0.1"), None);
        assert_eq!((h.host.as_str(), h.local), ("docker", false));
        assert_eq!(h.from, "DOCKER_HOST=tcp://docker:2376");
        // A name: published on the address it resolves to here (what the harness dials), on
        // loopback when it does not resolve; never on every interface.
        assert_eq!(h.publish_ip(), "");
        let ip: std::net::IpAddr = "10.2.3.4".parse().unwrap();
        assert_eq!(h.clone().with_publish(Some(ip)).publish_ip(), "10.2.3.4");
        assert_eq!(h.with_publish(None).publish_ip(), "127.0.0.1");
        let h = EngineHost::derive(None, "tcp://127.0.0.1:2375", false, None, None);
        assert_eq!((h.host.as_str(), h.local), ("127.0.0.1", true));
        let h = EngineHost::derive(None, "https://[::1]:2376", false, None, None);
        assert_eq!((h.host.as_str(), h.local), ("::1", true));
        assert_eq!(h.url_host(), "[::1]");
        let h = EngineHost::derive(Some("10.0.0.5"), "tcp://docker:2375", false, None, None);
        assert_eq!((h.host.as_str(), h.local), ("10.0.0.5", false));
        assert_eq!(h.from, "OCS_HARNESS_HOST");
        let ip: std::net::IpAddr = "10.9.9.9".parse().unwrap();
        assert_eq!(h.with_publish(Some(ip)).publish_ip(), "10.0.0.5");
    }

    #[test]
    fn the_default_route_from_the_kernels_table() {
        // /proc/net/route of a container on a user-defined bridge (gateway 172.18.0.1).
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let want: std::net::Ipv4Addr = if cfg!(target_endian = "little") {
            "172.18.0.1".parse().unwrap()
        } else {
            "1.0.18.172".parse().unwrap()
        };
        assert_eq!(default_route_gateway(table), Some(want));
        // No default route (a container with only its own subnet).
        let table = "Iface\tDestination\tGateway \tFlags\n\
                     eth0\t000012AC\t00000000\t0001\n";
        assert_eq!(default_route_gateway(table), None);
    }

    fn settings(vars: &[(&str, &str)]) -> EngineSettings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EngineSettings::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn a_bad_tls_setting_is_a_clear_error_not_a_panic() {
        let s = settings(&[
            ("DOCKER_HOST", "tcp://127.0.0.1:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
        ]);
        let e = s.connect().expect_err("no certificates").to_string();
        assert!(
            e.contains("DOCKER_TLS_VERIFY=1 asks for TLS, but DOCKER_CERT_PATH is not set"),
            "{e}"
        );
        let dir = std::env::temp_dir().join(format!("ocsh-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "").unwrap();
        let s = settings(&[
            ("DOCKER_HOST", "https://docker:2376"),
            ("DOCKER_CERT_PATH", dir.to_str().unwrap()),
        ]);
        let e = s.connect().expect_err("certificates missing").to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            e.contains("DOCKER_HOST=https://docker:2376 asks for TLS")
                && e.contains("lacks cert.pem, key.pem"),
            "{e}"
        );
        let e = settings(&[("DOCKER_HOST", "docker:2375")]).connect();
        assert!(e.unwrap_err().to_string().contains("not an engine address"));
        // Without TLS, a client is made (connecting happens at the first request).
        let plain = settings(&[("DOCKER_HOST", "tcp://127.0.0.1:2375")]);
        assert!(!plain.tls_verify && plain.connect().is_ok());
        assert!(settings(&[]).host.starts_with("unix://"));
    }

    /// Every `.rs` file below `dir`.
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir)
            .expect("readable source dir")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every container, network and volume the harness creates through the engine's API (or
    /// testcontainers, from a `GenericImage`) carries labels from its creation (the sweep, `clean`, the watchdog and the CI leak
    /// check find resources by label only): the function around each call sets them.
    #[test]
    fn every_resource_the_harness_creates_is_labelled_at_creation() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        // Spelled in pieces so that this test does not find itself.
        let mut calls = ["container", "network", "volume"]
            .map(|k| [".create_", k, "("].concat())
            .to_vec();
        // Containers testcontainers starts for the harness.
        calls.push(["GenericImage", "::new("].concat());
        let mut found = 0;
        let mut unlabelled = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            for call in &calls {
                for (at, _) in text.match_indices(call.as_str()) {
                    found += 1;
                    let start = text[..at].rfind("fn ").unwrap_or(0);
                    let end = text[at..].find("fn ").map_or(text.len(), |e| at + e);
                    if !text[start..end].contains("labels") {
                        let line = text[..at].lines().count();
                        unlabelled.push(format!("{}:{line}: {call}", file.display()));
                    }
                }
            }
        }
        assert!(found >= 5, "the call sites were not found ({found})");
        assert!(
            unlabelled.is_empty(),
            "created without labels:\n{}",
            unlabelled.join("\n")
        );
    }

    #[test]
    fn engine_errors_show_their_cause_once() {
        let cause = BollardError::DockerResponseServerError {
            status_code: 500,
            message: "boom".into(),
        };
        let e = Err::<(), _>(cause)
            .doing("restarting crossbar")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Docker request failed while restarting crossbar"
        );
        let source = e.source().expect("the engine's error is the source");
        assert!(source.to_string().contains("boom"), "{source}");
        assert!(!e.to_string().contains("boom"));
    }
}
