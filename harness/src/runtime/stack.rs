//! A running stack: the private network, crossbar and the agents as testcontainers, their
//! readiness (the bridge answering, then each agent's `get_api`), and teardown that always
//! runs: explicit (`teardown`), on drop, and by label for anything a failed start left.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::join_all;
use testcontainers::bollard::models::{NetworkCreateRequest, PortBinding};
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;
use testcontainers::core::{AccessMode, IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::ocs::{CallOptions, ClientError, HttpBridge, OcsClient, Transport};
use crate::overrides::ImageRef;
use crate::plan::{ContainerPlan, StackPlan, CROSSBAR_PORT, LABEL_RUN};
use crate::runtime::logs::LogStore;
use crate::wait::{poll_until, poll_until_hinted, Backoff, Probe, WaitError};

/// Why a stack could not be brought up or torn down.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The Docker engine is not reachable.
    #[error(
        "cannot reach the Docker engine ({0}). Start the engine, or point DOCKER_HOST at it; \
         Docker-backed tests do not run without one"
    )]
    NoEngine(String),
    /// An image is missing; nothing was started.
    #[error(
        "image {image} (for {role}) is not present locally and no image registry can be reached; \
         nothing was started. {hint}"
    )]
    ImageMissing {
        /// The image.
        image: String,
        /// The container that needs it.
        role: String,
        /// What to do.
        hint: String,
    },
    /// A Docker request failed.
    #[error("Docker request failed while {doing}: {detail}")]
    Docker {
        /// What the harness was doing.
        doing: String,
        /// The error.
        detail: String,
    },
    /// A container did not become ready.
    #[error("{role} did not become ready: {error}{}", format_tail(.log_tail))]
    NotReady {
        /// The container.
        role: String,
        /// The wait's error (condition, deadline, last value).
        error: WaitError,
        /// Its last log lines.
        log_tail: Vec<String>,
    },
    /// Local file I/O.
    #[error("{doing}: {source}")]
    Io {
        /// What the harness was doing.
        doing: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn format_tail(tail: &[String]) -> String {
    if tail.is_empty() {
        "\n(no log output)".into()
    } else {
        format!("\n--- last log lines ---\n{}", tail.join("\n"))
    }
}

fn docker_err(
    doing: impl Into<String>,
) -> impl FnOnce(testcontainers::bollard::errors::Error) -> StackError {
    let doing = doing.into();
    move |e| StackError::Docker {
        doing,
        detail: e.to_string(),
    }
}

fn tc_err(
    doing: impl Into<String>,
) -> impl FnOnce(testcontainers::TestcontainersError) -> StackError {
    let doing = doing.into();
    move |e| StackError::Docker {
        doing,
        detail: e.to_string(),
    }
}

/// Deadlines for bringing a stack up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Until the bridge answers.
    pub crossbar_ready: Duration,
    /// Until each agent answers `get_api`.
    pub agent_ready: Duration,
    /// Where the run's files go (generated SCF, saved logs).
    pub run_dir: PathBuf,
    /// How many log lines a readiness error shows.
    pub log_tail: usize,
    /// Start the agents' containers while crossbar boots and hold them paused until it is
    /// ready (default; `OCS_HARNESS_HOLD_AGENTS=0` starts them after crossbar instead).
    pub hold_agents: bool,
}

impl UpOptions {
    /// Defaults with the run directory `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            crossbar_ready: Duration::from_secs(60),
            agent_ready: Duration::from_secs(60),
            run_dir: dir.into(),
            log_tail: 30,
            hold_agents: hold_agents_from_env(),
        }
    }
}

/// How long each part of bringing the stack up took.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timings {
    /// Image presence check.
    pub image_check: Duration,
    /// Network creation.
    pub network: Duration,
    /// crossbar: container create and start.
    pub crossbar_start: Duration,
    /// crossbar: container started to the bridge answering.
    pub crossbar_boot: Duration,
    /// Per agent: container create and start.
    pub agent_start: BTreeMap<String, Duration>,
    /// Per agent: container started to the first successful `get_api`.
    pub agent_registration: BTreeMap<String, Duration>,
    /// The whole `up`.
    pub total: Duration,
    /// Wall-clock moments (Unix seconds), to set against the engine's own timestamps.
    pub marks: Marks,
}

/// When `up` began, saw the bridge answer and saw each agent answer (Unix seconds).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Marks {
    /// `up` was called.
    pub began: f64,
    /// The bridge first answered.
    pub bridge_ready: f64,
    /// Each agent was released (unpaused), or started when it was not held.
    pub agent_released: BTreeMap<String, f64>,
    /// Each agent first answered `get_api`.
    pub agent_ready: BTreeMap<String, f64>,
}

/// Whether to hold agents while crossbar boots: yes unless `OCS_HARNESS_HOLD_AGENTS` is
/// `0`, `false` or `no`.
pub fn hold_agents_from_env() -> bool {
    !std::env::var("OCS_HARNESS_HOLD_AGENTS")
        .is_ok_and(|v| matches!(v.trim(), "0" | "false" | "no"))
}

/// Now, in Unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A stack that is up: every agent answered `get_api`.
pub struct Stack {
    plan: StackPlan,
    docker: Docker,
    crossbar: Option<ContainerAsync<GenericImage>>,
    agents: BTreeMap<String, ContainerAsync<GenericImage>>,
    bridge_url: reqwest::Url,
    client: OcsClient<HttpBridge>,
    logs: LogStore,
    run_dir: PathBuf,
    timings: Timings,
    torn_down: bool,
    /// Log followers after restarts and timed reconnects; aborted at teardown.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("run_id", &self.plan.run_id)
            .field("bridge_url", &self.bridge_url.as_str())
            .finish()
    }
}

/// The engine's client (the one testcontainers uses), or a clear error when none answers.
pub async fn docker() -> Result<Docker, StackError> {
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| StackError::NoEngine(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| StackError::NoEngine(e.to_string()))?;
    Ok(docker)
}

/// Every container (running or not) and network carrying `label` (`key=value`).
pub async fn list_labelled(
    docker: &Docker,
    label: &str,
) -> Result<
    (
        Vec<testcontainers::bollard::models::ContainerSummary>,
        Vec<testcontainers::bollard::models::Network>,
    ),
    StackError,
> {
    let filter = HashMap::from([("label", vec![label.to_string()])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .map_err(docker_err(format!(
            "listing the containers labelled {label}"
        )))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(docker_err(format!("listing the networks labelled {label}")))?;
    Ok((containers, networks))
}

/// Remove every container and network labelled with `run_id`. Returns what was removed.
pub async fn remove_run(docker: &Docker, run_id: &str) -> Result<Vec<String>, StackError> {
    let (containers, networks) = list_labelled(docker, &format!("{LABEL_RUN}={run_id}")).await?;
    let mut removed = Vec::new();
    for c in containers {
        let Some(id) = c.id else { continue };
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_else(|| id.clone());
        let name = name.trim_start_matches('/').to_string();
        match docker
            .remove_container(
                &id,
                Some(
                    RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => removed.push(format!("container {name}")),
            // Gone already, or someone else (an engine-side removal) is removing it.
            Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => removed.push(format!("container {name}")),
            Err(e) => return Err(docker_err(format!("removing container {name}"))(e)),
        }
    }
    for n in networks {
        let Some(name) = n.name else { continue };
        // A container still being removed keeps its endpoint for a moment: retry until the
        // network can go, within a deadline.
        let gone = poll_until(
            format!("network {name} to be removable"),
            Duration::from_secs(30),
            Backoff::default(),
            || async {
                match docker.remove_network(&name).await {
                    Ok(())
                    | Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => Probe::Ready(()),
                    Err(e) => Probe::Pending(e.to_string()),
                }
            },
        )
        .await;
        match gone {
            Ok(()) => removed.push(format!("network {name}")),
            Err(e) => {
                return Err(StackError::Docker {
                    doing: format!("removing network {name}"),
                    detail: e.to_string(),
                })
            }
        }
    }
    Ok(removed)
}

fn request_for(
    plan: &ContainerPlan,
    network: &str,
    logs: &LogStore,
) -> Result<testcontainers::core::ContainerRequest<GenericImage>, StackError> {
    let image = ImageRef::parse(&plan.image).map_err(|e| StackError::Docker {
        doing: format!("parsing the image of {}", plan.role),
        detail: e,
    })?;
    let (name, tag) = image.name_and_tag();
    let mut req = GenericImage::new(name, tag)
        .with_container_name(&plan.name)
        .with_network(network)
        .with_labels(plan.labels.clone())
        .with_log_consumer(logs.consumer(&plan.role))
        .with_startup_timeout(Duration::from_secs(120));
    for (k, v) in &plan.env {
        req = req.with_env_var(k, v);
    }
    if let Some(h) = &plan.hostname {
        req = req.with_hostname(h);
    }
    if let Some(cmd) = &plan.cmd {
        req = req.with_cmd(cmd.clone());
    }
    Ok(req)
}

impl Stack {
    /// Create the network and containers of `plan` and wait until every agent answers.
    /// On failure everything created so far is removed before the error returns.
    pub async fn up(plan: StackPlan, options: UpOptions) -> Result<Stack, StackError> {
        let docker = docker().await?;
        let started = Instant::now();
        let mut timings = Timings::default();
        timings.marks.began = unix_now();

        // Pre-flight: every image must be local (a pull would only fail, slowly).
        let mut needed: Vec<(&str, &str)> = vec![(&plan.crossbar.image, "crossbar")];
        needed.extend(
            plan.agents
                .iter()
                .map(|a| (a.container.image.as_str(), a.instance_id.as_str())),
        );
        for (image, role) in needed {
            let r = ImageRef::parse(image).map_err(|e| StackError::Docker {
                doing: format!("parsing the image of {role}"),
                detail: e,
            })?;
            let present = crate::runtime::images::image_exists(&docker, &r)
                .await
                .map_err(|e| StackError::Docker {
                    doing: format!("checking image {image}"),
                    detail: e.to_string(),
                })?;
            if !present {
                return Err(StackError::ImageMissing {
                    image: image.into(),
                    role: role.into(),
                    hint: format!(
                        "Build it first, or add an image override mapping {image} to a local image."
                    ),
                });
            }
        }
        timings.image_check = started.elapsed();

        let config_dir = options.run_dir.join("config");
        std::fs::create_dir_all(&config_dir).map_err(|source| StackError::Io {
            doing: format!("creating {}", config_dir.display()),
            source,
        })?;
        let scf_path = config_dir.join("default.yaml");
        std::fs::write(&scf_path, &plan.site_config).map_err(|source| StackError::Io {
            doing: format!("writing {}", scf_path.display()),
            source,
        })?;
        let config_dir = config_dir.canonicalize().map_err(|source| StackError::Io {
            doing: format!("resolving {}", config_dir.display()),
            source,
        })?;

        let logs = LogStore::new();
        let run_id = plan.run_id.clone();
        crate::runtime::sweep::register(&run_id, &logs, &options.run_dir);
        let result = Self::bring_up(
            plan,
            &docker,
            &options,
            &config_dir,
            logs.clone(),
            timings,
            started,
        )
        .await;
        if result.is_err() {
            // A signal handler removing the run makes the start fail; it owns the exit.
            crate::runtime::sweep::wait_if_shutting_down().await;
            // Whatever a failed start left behind (containers in `Created`, the network).
            let _ = crate::runtime::sweep::save_logs(&logs, &options.run_dir);
            let _ = remove_run(&docker, &run_id).await;
            crate::runtime::sweep::unregister(&run_id);
        }
        result
    }

    async fn bring_up(
        plan: StackPlan,
        docker: &Docker,
        options: &UpOptions,
        config_dir: &Path,
        logs: LogStore,
        mut timings: Timings,
        started: Instant,
    ) -> Result<Stack, StackError> {
        let t = Instant::now();
        docker
            .create_network(NetworkCreateRequest {
                name: plan.network.clone(),
                driver: Some("bridge".into()),
                labels: Some(plan.labels.clone().into_iter().collect()),
                ..Default::default()
            })
            .await
            .map_err(docker_err(format!("creating network {}", plan.network)))?;
        timings.network = t.elapsed();

        // crossbar first: agents that start before it back off for seconds (autobahn).
        let t = Instant::now();
        let crossbar_req = request_for(&plan.crossbar, &plan.network, &logs)?;
        let crossbar = crossbar_req
            .with_copy_to(
                "/ocs/.crossbar/config.json",
                plan.crossbar_config.clone().into_bytes(),
            )
            .with_host_config_modifier(|hc| {
                hc.publish_all_ports = Some(false);
                hc.port_bindings = Some(HashMap::from([(
                    format!("{CROSSBAR_PORT}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )]));
            })
            .start()
            .await
            .map_err(tc_err(format!(
                "starting crossbar ({})",
                plan.crossbar.name
            )))?;
        timings.crossbar_start = t.elapsed();
        let logs = &logs;

        let port = crossbar
            .get_host_port_ipv4(CROSSBAR_PORT.tcp())
            .await
            .map_err(tc_err("reading crossbar's published port"))?;
        let bridge_url: reqwest::Url = format!("http://127.0.0.1:{port}/call")
            .parse()
            .expect("valid URL");
        let client = OcsClient::new(
            HttpBridge::new(bridge_url.clone()),
            plan.address_root.clone(),
        );

        // The agents' containers are created and started while crossbar boots, each held
        // (paused) as soon as it runs: an agent that connects before crossbar is ready backs
        // off for seconds, but the engine's part of starting a container (≈0.4 s each on the
        // reference machine, 2.3 s for eight) need not wait. They are released the moment
        // the bridge answers. The benchmark compares this with starting them afterwards.
        let t = Instant::now();
        let hold =
            options.hold_agents && !HOLD_UNSUPPORTED.load(std::sync::atomic::Ordering::Relaxed);
        let start_agents = || async {
            join_all(
                plan.agents
                    .iter()
                    .map(|agent| start_agent(docker, agent, &plan.network, logs, config_dir, hold)),
            )
            .await
            .into_iter()
            .collect::<Result<Vec<_>, StackError>>()
        };
        let bridge_wait = async {
            match wait_bridge(&client, logs, 0, &crossbar, options.crossbar_ready).await {
                Ok(()) => Ok((t.elapsed(), unix_now())),
                Err(error) => Err(StackError::NotReady {
                    role: "crossbar".into(),
                    error,
                    log_tail: logs.tail("crossbar", options.log_tail),
                }),
            }
        };
        let ((boot, ready_at), started_agents) = if hold {
            let mut starts = std::pin::pin!(start_agents());
            let mut bridge = std::pin::pin!(bridge_wait);
            tokio::select! {
                // An agent that cannot start ends the bring-up without waiting for crossbar.
                started = &mut starts => {
                    let started = started?;
                    (bridge.await?, started)
                }
                // crossbar failing still lets the starts in flight finish, so that nothing is
                // created after `up` has swept the run.
                ready = &mut bridge => {
                    let started = starts.await;
                    (ready?, started?)
                }
            }
        } else {
            let ready = bridge_wait.await?;
            (ready, start_agents().await?)
        };
        timings.crossbar_boot = boot;
        timings.marks.bridge_ready = ready_at;

        let mut stack = Stack {
            docker: docker.clone(),
            crossbar: Some(crossbar),
            agents: BTreeMap::new(),
            bridge_url,
            client,
            logs: logs.clone(),
            run_dir: options.run_dir.clone(),
            timings,
            torn_down: false,
            background: Vec::new(),
            plan,
        };
        let mut held = Vec::new();
        for (id, container, took, was_held) in started_agents {
            stack.timings.agent_start.insert(id.clone(), took);
            if was_held {
                held.push(id.clone());
            }
            stack.agents.insert(id, container);
        }

        // Release the held agents together; an agent's registration time counts from its
        // release (or from its start when it was not held).
        let releases = stack.plan.agents.iter().map(|agent| {
            let id = agent.instance_id.clone();
            let docker = &stack.docker;
            let container = &stack.agents[&id];
            let was_held = held.contains(&id);
            async move {
                if was_held {
                    docker
                        .unpause_container(container.id())
                        .await
                        .map_err(docker_err(format!("releasing agent {id}")))?;
                }
                Ok::<_, StackError>((id, Instant::now(), unix_now()))
            }
        });
        let mut running_since = BTreeMap::new();
        for r in join_all(releases).await {
            let (id, since, at) = r?;
            stack.timings.marks.agent_released.insert(id.clone(), at);
            running_since.insert(id, since);
        }

        let waits = stack.plan.agents.iter().map(|agent| {
            let id = agent.instance_id.clone();
            let container = &stack.agents[&id];
            let client = &stack.client;
            let logs = &stack.logs;
            let timeout = options.agent_ready;
            let since = running_since[&id];
            async move {
                let r = wait_agent(client, logs, 0, &id, container, timeout).await;
                let at = unix_now();
                (id, r, since.elapsed(), at)
            }
        });
        let mut first_err = None;
        for (id, r, took, at) in join_all(waits).await {
            match r {
                Ok(()) => {
                    stack.timings.marks.agent_ready.insert(id.clone(), at);
                    stack.timings.agent_registration.insert(id, took);
                }
                Err(error) => {
                    first_err.get_or_insert(StackError::NotReady {
                        log_tail: stack.logs.tail(&id, options.log_tail),
                        role: format!("agent {id}"),
                        error,
                    });
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        stack.timings.total = started.elapsed();
        Ok(stack)
    }

    /// The run's plan.
    pub fn plan(&self) -> &StackPlan {
        &self.plan
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.plan.run_id
    }

    /// The bridge URL on the host (`http://127.0.0.1:<port>/call`).
    pub fn bridge_url(&self) -> &reqwest::Url {
        &self.bridge_url
    }

    /// A client for the stack's agents.
    pub fn client(&self) -> &OcsClient<HttpBridge> {
        &self.client
    }

    /// Every container's log lines so far.
    pub fn logs(&self) -> &LogStore {
        &self.logs
    }

    /// How long bringing the stack up took, by part.
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// The Docker container name of `role` (`crossbar` or an instance-id).
    pub fn container_name(&self, role: &str) -> Option<&str> {
        if role == "crossbar" {
            return Some(&self.plan.crossbar.name);
        }
        self.plan
            .agents
            .iter()
            .find(|a| a.instance_id == role)
            .map(|a| a.container.name.as_str())
    }

    /// As the container of `role` reports it: seconds from its start (the engine's StartedAt)
    /// to the first log line containing `needle` (the engine's own line timestamp). `None`
    /// when there is no such line yet.
    pub async fn engine_time_to_line(&self, role: &str, needle: &str) -> Option<f64> {
        let (started, line) = self.engine_times(role, needle).await?;
        Some(line - started)
    }

    /// The engine's StartedAt of the container of `role` and the engine's timestamp of its
    /// first log line containing `needle`, both in Unix seconds.
    pub async fn engine_times(&self, role: &str, needle: &str) -> Option<(f64, f64)> {
        use futures::StreamExt;
        let id = self.container_id(role).ok()?;
        let started = self
            .docker
            .inspect_container(
                &id,
                None::<testcontainers::bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .ok()?
            .state?
            .started_at?;
        let started = unix_time_of_rfc3339(&started)?;
        let options = testcontainers::bollard::query_parameters::LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .build();
        let mut stream = self.docker.logs(&id, Some(options));
        while let Some(Ok(frame)) = stream.next().await {
            let bytes = frame.into_bytes();
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines() {
                if line.contains(needle) {
                    let ts = line.split_once(' ').map(|(t, _)| t)?;
                    return Some((started, unix_time_of_rfc3339(ts)?));
                }
            }
        }
        None
    }

    /// When, by the engine's events, the container of `role` was first unpaused (Unix
    /// seconds): the release of an agent held while crossbar booted. `None` when it never
    /// was (not held) or the engine does not say.
    pub async fn engine_released(&self, role: &str) -> Option<f64> {
        use futures::StreamExt;
        let id = self.container_id(role).ok()?;
        let since = (self.timings.marks.began.floor() as i64 - 1).to_string();
        let until = (unix_now().ceil() as i64 + 1).to_string();
        let options = testcontainers::bollard::query_parameters::EventsOptions {
            since: Some(since),
            until: Some(until),
            filters: Some(HashMap::from([
                ("container".to_string(), vec![id]),
                ("event".to_string(), vec!["unpause".to_string()]),
            ])),
        };
        let mut events = self.docker.events(Some(options));
        while let Some(Ok(event)) = events.next().await {
            if let Some(ns) = event.time_nano {
                return Some(ns as f64 / 1e9);
            }
        }
        None
    }

    /// Whether the container of `role` is running, and its exit code if not.
    pub async fn container_state(&self, role: &str) -> Result<(bool, Option<i64>), StackError> {
        let c = if role == "crossbar" {
            self.crossbar.as_ref()
        } else {
            self.agents.get(role)
        };
        let Some(c) = c else {
            return Err(StackError::Docker {
                doing: format!("looking up container {role}"),
                detail: "no such container in this stack".into(),
            });
        };
        let running = c
            .is_running()
            .await
            .map_err(tc_err(format!("inspecting {role}")))?;
        let code = if running {
            None
        } else {
            c.exit_code()
                .await
                .map_err(tc_err(format!("inspecting {role}")))?
        };
        Ok((running, code))
    }

    fn container_id(&self, role: &str) -> Result<String, StackError> {
        let c = if role == "crossbar" {
            self.crossbar.as_ref()
        } else {
            self.agents.get(role)
        };
        c.map(|c| c.id().to_string())
            .ok_or_else(|| StackError::Docker {
                doing: format!("looking up container {role}"),
                detail: "no such container in this stack".into(),
            })
    }

    /// Stop and start the container of `role` again, then wait until the stack is ready
    /// (crossbar: its bridge, on its possibly new port, and every running agent registered;
    /// an agent: its `get_api`).
    pub async fn restart(&mut self, role: &str, timeout: Duration) -> Result<(), StackError> {
        let id = self.container_id(role)?;
        self.docker
            .restart_container(
                &id,
                Some(
                    testcontainers::bollard::query_parameters::RestartContainerOptionsBuilder::new(
                    )
                    .t(10)
                    .build(),
                ),
            )
            .await
            .map_err(docker_err(format!("restarting {role}")))?;
        self.after_start(role, &id, timeout).await
    }

    /// Stop the container of `role` (SIGTERM, SIGKILL after 10 s).
    pub async fn stop(&mut self, role: &str) -> Result<(), StackError> {
        let id = self.container_id(role)?;
        self.docker
            .stop_container(
                &id,
                Some(
                    testcontainers::bollard::query_parameters::StopContainerOptionsBuilder::new()
                        .t(10)
                        .build(),
                ),
            )
            .await
            .map_err(docker_err(format!("stopping {role}")))
    }

    /// Start the (stopped) container of `role`, then wait until the stack is ready.
    pub async fn start(&mut self, role: &str, timeout: Duration) -> Result<(), StackError> {
        let id = self.container_id(role)?;
        self.docker
            .start_container(
                &id,
                None::<testcontainers::bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(docker_err(format!("starting {role}")))?;
        self.after_start(role, &id, timeout).await
    }

    /// Send `signal` (e.g. `SIGKILL`) to the container of `role`.
    pub async fn kill(&mut self, role: &str, signal: &str) -> Result<(), StackError> {
        let id = self.container_id(role)?;
        self.docker
            .kill_container(
                &id,
                Some(
                    testcontainers::bollard::query_parameters::KillContainerOptionsBuilder::new()
                        .signal(signal)
                        .build(),
                ),
            )
            .await
            .map_err(docker_err(format!("sending {signal} to {role}")))
    }

    /// Freeze the container of `role`.
    pub async fn pause(&mut self, role: &str) -> Result<(), StackError> {
        let id = self.container_id(role)?;
        self.docker
            .pause_container(&id)
            .await
            .map_err(docker_err(format!("pausing {role}")))
    }

    /// Thaw the container of `role`, then wait until it answers again.
    pub async fn unpause(&mut self, role: &str, timeout: Duration) -> Result<(), StackError> {
        let id = self.container_id(role)?;
        self.docker
            .unpause_container(&id)
            .await
            .map_err(docker_err(format!("unpausing {role}")))?;
        self.wait_ready(role, timeout).await
    }

    /// Cut the container of `role` off the stack's network.
    pub async fn disconnect(&mut self, role: &str) -> Result<(), StackError> {
        let id = self.container_id(role)?;
        disconnect(&self.docker, &self.plan.network, &id, role).await
    }

    /// Cut the container of `role` off the stack's network for `duration`, then put it back
    /// (in the background: the run goes on meanwhile).
    pub async fn disconnect_for(
        &mut self,
        role: &str,
        duration: Duration,
    ) -> Result<(), StackError> {
        let id = self.container_id(role)?;
        disconnect(&self.docker, &self.plan.network, &id, role).await?;
        let (docker, network, role) = (
            self.docker.clone(),
            self.plan.network.clone(),
            role.to_string(),
        );
        self.background.push(tokio::spawn(async move {
            // The partition's length is the fault itself, not a wait for a condition.
            tokio::time::sleep(duration).await;
            let _ = connect(&docker, &network, &id, &role).await;
        }));
        Ok(())
    }

    /// Put the container of `role` back on the stack's network, then wait until it answers.
    pub async fn connect(&mut self, role: &str, timeout: Duration) -> Result<(), StackError> {
        let id = self.container_id(role)?;
        connect(&self.docker, &self.plan.network, &id, role).await?;
        self.wait_ready(role, timeout).await
    }

    /// After a (re)start: follow the new run's logs, re-resolve crossbar's port, wait.
    async fn after_start(
        &mut self,
        role: &str,
        id: &str,
        timeout: Duration,
    ) -> Result<(), StackError> {
        let started_at = self
            .docker
            .inspect_container(
                id,
                None::<testcontainers::bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.started_at)
            .and_then(|t| unix_time_of_rfc3339(&t))
            .unwrap_or(0.0);
        self.background.push(tokio::spawn(follow_logs(
            self.docker.clone(),
            id.to_string(),
            role.to_string(),
            self.logs.clone(),
            started_at,
        )));
        if role == "crossbar" {
            let port = self
                .crossbar
                .as_ref()
                .expect("crossbar is running")
                .get_host_port_ipv4(CROSSBAR_PORT.tcp())
                .await
                .map_err(tc_err("reading crossbar's published port after a restart"))?;
            self.bridge_url = format!("http://127.0.0.1:{port}/call")
                .parse()
                .expect("valid URL");
            self.client = OcsClient::new(
                HttpBridge::new(self.bridge_url.clone()),
                self.plan.address_root.clone(),
            );
        }
        self.wait_ready(role, timeout).await
    }

    /// Wait until `role` answers: crossbar's bridge and then every running agent, or one
    /// agent's `get_api`.
    async fn wait_ready(&self, role: &str, timeout: Duration) -> Result<(), StackError> {
        // Readiness lines from here on only hint; one that came earlier just means polling.
        let since = self.logs.len();
        let not_ready = |role: &str, error: WaitError| StackError::NotReady {
            role: role.to_string(),
            error,
            log_tail: self.logs.tail(role, 30),
        };
        if role == "crossbar" {
            let crossbar = self.crossbar.as_ref().expect("crossbar is running");
            wait_bridge(&self.client, &self.logs, since, crossbar, timeout)
                .await
                .map_err(|e| not_ready("crossbar", e))?;
            for (id, c) in &self.agents {
                if c.is_running().await.unwrap_or(false) {
                    wait_agent(&self.client, &self.logs, since, id, c, timeout)
                        .await
                        .map_err(|e| not_ready(&format!("agent {id}"), e))?;
                }
            }
            return Ok(());
        }
        let c = &self.agents[role];
        wait_agent(&self.client, &self.logs, since, role, c, timeout)
            .await
            .map_err(|e| not_ready(&format!("agent {role}"), e))
    }

    /// Wait until the container of `role` has exited; its exit code.
    pub async fn wait_exit(&self, role: &str, timeout: Duration) -> Result<i64, WaitError> {
        poll_until(
            format!("the container of {role} to exit"),
            timeout,
            Backoff::default(),
            || async {
                match self.container_state(role).await {
                    Ok((false, code)) => Probe::Ready(code.unwrap_or(-1)),
                    Ok((true, _)) => Probe::Pending("still running".into()),
                    Err(e) => Probe::Failed(e.to_string()),
                }
            },
        )
        .await
    }

    /// Save the logs, remove every container and the network. Returns what was removed.
    pub async fn teardown(mut self) -> Result<Vec<String>, StackError> {
        self.torn_down = true;
        crate::runtime::sweep::wait_if_shutting_down().await;
        for task in self.background.drain(..) {
            task.abort();
        }
        self.save_engine_logs().await?;
        // One removal path for everything labelled with the run (it tolerates containers
        // that are already gone); the handles must not remove them again on drop.
        for (_, c) in std::mem::take(&mut self.agents) {
            std::mem::forget(c);
        }
        if let Some(c) = self.crossbar.take() {
            std::mem::forget(c);
        }
        let removed = remove_run(&self.docker, &self.plan.run_id).await?;
        crate::runtime::sweep::unregister(&self.plan.run_id);
        Ok(removed)
    }

    /// Leave the stack running for inspection (after a failure): logs saved, a marker
    /// network records when it was kept (a later run removes it once older than
    /// `OCS_HARNESS_KEEP_MAX_AGE`), and the returned text says how to reach and remove it.
    pub async fn keep(mut self) -> Result<String, StackError> {
        self.torn_down = true;
        crate::runtime::sweep::wait_if_shutting_down().await;
        let logs_dir = self.save_engine_logs().await?;
        let mut labels: HashMap<String, String> = self.plan.labels.clone().into_iter().collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        labels.insert(crate::plan::LABEL_KEPT.into(), now.to_string());
        self.docker
            .create_network(NetworkCreateRequest {
                name: format!("{}-kept", self.plan.network),
                driver: Some("bridge".into()),
                internal: Some(true),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(docker_err("marking the stack as kept"))?;
        crate::runtime::sweep::unregister(&self.plan.run_id);
        // Keep the containers: their handles must not remove them on drop.
        for (_, c) in std::mem::take(&mut self.agents) {
            std::mem::forget(c);
        }
        if let Some(c) = self.crossbar.take() {
            std::mem::forget(c);
        }
        let run = &self.plan.run_id;
        let first_agent = self.plan.agents.last();
        let mut text = format!(
            "the stack of run {run} was kept for inspection:\n  \
             bridge: {url}\n",
            url = self.bridge_url
        );
        if let Some(a) = first_agent {
            text.push_str(&format!(
                "  curl -s -X POST -H 'Content-Type: application/json' \\\n    \
                 -d '{{\"procedure\":\"{root}.{id}\",\"args\":[\"get_api\"]}}' {url}\n",
                root = self.plan.address_root,
                id = a.instance_id,
                url = self.bridge_url
            ));
        }
        for c in std::iter::once(&self.plan.crossbar)
            .chain(self.plan.agents.iter().map(|a| &a.container))
        {
            text.push_str(&format!(
                "  docker logs -f {n}    docker exec -it {n} bash\n",
                n = c.name
            ));
        }
        text.push_str(&format!(
            "  logs so far: {}\n  remove it: ocs-harness clean --run {run}\n  \
             (a later run removes it after OCS_HARNESS_KEEP_MAX_AGE, default 1h)",
            logs_dir.display()
        ));
        Ok(text)
    }

    /// Write every container's log to `<run_dir>/logs/<role>.log`.
    /// Write every container's complete log, as the engine has it, to
    /// `<run_dir>/logs/<role>.log`: unlike the followed stream, it cannot miss the last lines.
    /// Falls back to the followed lines for a container the engine cannot give.
    pub async fn save_engine_logs(&self) -> Result<PathBuf, StackError> {
        use futures::StreamExt;
        let dir = self.save_logs()?;
        let containers = self
            .crossbar
            .iter()
            .map(|c| ("crossbar".to_string(), c.id().to_string()))
            .chain(
                self.agents
                    .iter()
                    .map(|(r, c)| (r.clone(), c.id().to_string())),
            );
        for (role, id) in containers {
            let options = testcontainers::bollard::query_parameters::LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .build();
            let mut text = Vec::new();
            let mut stream = self.docker.logs(&id, Some(options));
            let mut complete = true;
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(f) => text.extend_from_slice(&f.into_bytes()),
                    Err(_) => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                let path = dir.join(format!("{role}.log"));
                std::fs::write(&path, text).map_err(|source| StackError::Io {
                    doing: format!("writing {}", path.display()),
                    source,
                })?;
            }
        }
        Ok(dir)
    }

    /// Write every container's followed log lines to `<run_dir>/logs/<role>.log`.
    pub fn save_logs(&self) -> Result<PathBuf, StackError> {
        crate::runtime::sweep::save_logs(&self.logs, &self.run_dir).map_err(|source| {
            StackError::Io {
                doing: format!("saving the logs of run {}", self.plan.run_id),
                source,
            }
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        let _ = self.save_logs();
        // Containers remove themselves on drop (testcontainers); the network and anything
        // else labelled with the run goes next, from a thread of its own so that this works
        // inside or outside a runtime.
        drop(std::mem::take(&mut self.agents));
        drop(self.crossbar.take());
        let run_id = self.plan.run_id.clone();
        crate::runtime::sweep::unregister(&run_id);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let docker = Docker::connect_with_defaults().ok()?;
                remove_run(&docker, &run_id).await.ok()
            })
        })
        .join();
    }
}

/// Create and start one agent's container; with `hold`, pause it as soon as it runs. Returns
/// the container, how long that took, and whether it is held.
async fn start_agent(
    docker: &Docker,
    agent: &crate::plan::AgentPlan,
    network: &str,
    logs: &LogStore,
    config_dir: &Path,
    hold: bool,
) -> Result<(String, ContainerAsync<GenericImage>, Duration, bool), StackError> {
    let t = Instant::now();
    let mount = Mount::bind_mount(config_dir.to_string_lossy().into_owned(), "/config")
        .with_access_mode(AccessMode::ReadOnly);
    let container = request_for(&agent.container, network, logs)?
        .with_mount(mount)
        .start()
        .await
        .map_err(tc_err(format!(
            "starting agent {} ({})",
            agent.instance_id, agent.container.name
        )))?;
    let held = hold && hold_container(docker, &container, &agent.instance_id).await;
    Ok((agent.instance_id.clone(), container, t.elapsed(), held))
}

/// Pause a just-started agent until crossbar is ready. `false` when it is not held: it
/// already exited (its readiness wait reports that), or the engine cannot pause it (then it
/// runs on and connects once crossbar answers, later by autobahn's backoff).
///
/// runc's freezer can fail with `unable to freeze` while the processes are busy starting
/// (seen with eight agents starting at once); that is retried for up to a second.
async fn hold_container(
    docker: &Docker,
    container: &ContainerAsync<GenericImage>,
    instance_id: &str,
) -> bool {
    let condition = format!("agent {instance_id} to pause until crossbar is ready");
    let paused = poll_until(
        condition,
        Duration::from_secs(1),
        Backoff::default(),
        || async {
            match docker.pause_container(container.id()).await {
                Ok(()) => Probe::Ready(true),
                Err(e) => {
                    if !container.is_running().await.unwrap_or(false) {
                        return Probe::Ready(false);
                    }
                    if e.to_string().contains("unable to freeze") {
                        return Probe::Pending(e.to_string());
                    }
                    // The engine cannot pause (e.g. rootless on cgroup v1): later stacks of
                    // this process start their agents after crossbar instead.
                    HOLD_UNSUPPORTED.store(true, std::sync::atomic::Ordering::Relaxed);
                    Probe::Failed(e.to_string())
                }
            }
        },
    )
    .await;
    match paused {
        Ok(held) => held,
        Err(e) => {
            eprintln!(
                "ocs-harness: agent {instance_id} runs on unheld and connects once crossbar \
                 answers: {e}"
            );
            false
        }
    }
}

/// Set when the engine refused to pause a running agent.
static HOLD_UNSUPPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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
async fn wait_bridge(
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
    let hint = logs.appeared("crossbar", CROSSBAR_READY_LINE, since);
    let exit_check = ExitCheck::default();
    poll_until_hinted(condition, timeout, Backoff::default(), hint, HINTED, || {
        let (exit_check, probe) = (&exit_check, &probe);
        async move {
            let r = client
                .transport()
                .call(
                    probe,
                    Vec::new(),
                    Default::default(),
                    CallOptions::with_timeout(Duration::from_secs(2)),
                )
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
async fn wait_agent(
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
    let finished = docker
        .inspect_container(
            id,
            None::<testcontainers::bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .ok()
        .and_then(|i| i.state)
        .and_then(|s| s.finished_at);
    let Some(finished) = finished else {
        return String::new();
    };
    match unix_time_of_rfc3339(&finished) {
        Some(t) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            format!(" ({:.2}s ago)", (now - t).max(0.0))
        }
        None => String::new(),
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time as Docker writes it
/// (`2026-11-27T13:44:50.123456789Z`).
pub fn unix_time_of_rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + frac)
}

async fn disconnect(
    docker: &Docker,
    network: &str,
    id: &str,
    role: &str,
) -> Result<(), StackError> {
    docker
        .disconnect_network(
            network,
            testcontainers::bollard::models::NetworkDisconnectRequest {
                container: id.to_string(),
                force: Some(true),
            },
        )
        .await
        .map_err(docker_err(format!("disconnecting {role} from {network}")))
}

async fn connect(docker: &Docker, network: &str, id: &str, role: &str) -> Result<(), StackError> {
    docker
        .connect_network(
            network,
            testcontainers::bollard::models::NetworkConnectRequest {
                container: id.to_string(),
                endpoint_config: None,
            },
        )
        .await
        .map_err(docker_err(format!("connecting {role} to {network}")))
}

/// Follow a restarted container's output into the store, from its new start on (the
/// testcontainers consumer ends at the first stop).
async fn follow_logs(docker: Docker, id: String, role: String, logs: LogStore, since: f64) {
    use futures::StreamExt;
    let options = testcontainers::bollard::query_parameters::LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .since(since.floor() as i32)
        .build();
    let mut stream = docker.logs(&id, Some(options));
    while let Some(Ok(frame)) = stream.next().await {
        let (kind, bytes) = match frame {
            testcontainers::bollard::container::LogOutput::StdErr { message } => {
                (crate::runtime::logs::Stream::Stderr, message)
            }
            testcontainers::bollard::container::LogOutput::StdOut { message }
            | testcontainers::bollard::container::LogOutput::Console { message } => {
                (crate::runtime::logs::Stream::Stdout, message)
            }
            testcontainers::bollard::container::LogOutput::StdIn { .. } => continue,
        };
        let text = String::from_utf8_lossy(&bytes);
        for line in text.split_inclusive('\n') {
            let (ts, rest) = line.split_once(' ').unwrap_or(("", line));
            // Lines of the previous run of the container are already in the store.
            if unix_time_of_rfc3339(ts).is_some_and(|t| t < since) {
                continue;
            }
            logs.push_bytes(&role, kind, rest.as_bytes());
        }
    }
    logs.flush(&role);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_times_parse() {
        assert_eq!(unix_time_of_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            unix_time_of_rfc3339("2026-11-27T13:44:50.5Z"),
            Some(1_795_787_090.5)
        );
        assert_eq!(unix_time_of_rfc3339("garbage"), None);
    }
}
