//! Bringing a stack up, phase by phase: the images are there, the site config is written,
//! the network, the service containers (ready first; in `services`), crossbar, the agents (started while crossbar boots and held paused until its
//! bridge answers), their release, and their readiness.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use testcontainers::bollard::models::PortBinding;
use testcontainers::bollard::Docker;
use testcontainers::core::{ContainerRequest, IntoContainerPort};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::clock::unix_now;
use crate::ocs::{HttpBridge, OcsClient};
use crate::overrides::ImageRef;
use crate::plan::{AgentPlan, ContainerPlan, StackPlan, CROSSBAR_PORT};
use crate::runtime::engine::{self, Doing, EngineHost};
use crate::runtime::files;
use crate::runtime::logs::LogStore;
use crate::runtime::notice;
use crate::runtime::readiness::{wait_agent, wait_bridge};
use crate::runtime::role::Role;
use crate::runtime::stack::{io_err, Stack, StackError, Timings, UpOptions};
use crate::runtime::sweep::Owner;
use crate::runtime::watchdog;
use crate::wait::{poll_until, Backoff, Probe};

/// Set when the engine refused to pause a running agent: later stacks of this process start
/// their agents after crossbar instead.
static HOLD_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// The CPU weight of a crossbar booting ahead of its run's turn: a quarter of a running
/// stack's containers' (the engine's default, 1024), so that the running stacks keep the CPU
/// they ask for on a busy machine.
const AHEAD_CPU_SHARES: i64 = 256;

impl Stack {
    /// Create the network and containers of `plan` and wait until every agent answers.
    /// On failure everything created so far is removed before the error returns.
    pub async fn up(plan: StackPlan, options: UpOptions) -> Result<Stack, StackError> {
        // Whoever planned it, the run is this process's: a later sweep must be able to tell.
        let plan = plan.with_labels(&Owner::this_process().labels());
        let docker = engine::docker(&options.engine).await?;
        let started = Instant::now();
        let mut timings = Timings::default();
        timings.marks.began = unix_now();
        check_images(&docker, &plan).await?;
        timings.image_check = started.elapsed();
        let host = engine::engine_host(&docker, &options.engine).await;
        tracing::debug!(run = %plan.run_id, host = %host.host, local = host.local, from = %host.from, "the engine's published ports are reached here");
        write_site_config(&options.run_dir, &plan.site_config)?;

        let logs = LogStore::new();
        let run_id = plan.run_id.clone();
        watchdog::register(&run_id, &logs, &options.run_dir, &options.engine);
        let up = BringUp {
            docker: &docker,
            host: &host,
            options: &options,
            logs: logs.clone(),
            started,
        };
        let result = up.run(plan, timings).await;
        if result.is_err() {
            // A signal handler removing the run makes the start fail; it owns the exit.
            watchdog::wait_if_shutting_down().await;
            // Whatever a failed start left behind (containers in `Created`, the network).
            let _ = logs.save(&options.run_dir);
            let _ = engine::remove_run(&docker, &run_id).await;
            watchdog::unregister(&run_id);
        }
        result
    }
}

/// Pre-flight: every image must be local (a pull would only fail, slowly).
pub(crate) async fn check_images(docker: &Docker, plan: &StackPlan) -> Result<(), StackError> {
    let agents = plan
        .agents
        .iter()
        .map(|a| (&a.container, Role::agent(&a.instance_id)));
    let services = plan
        .services
        .iter()
        .map(|s| (&s.container, Role::Service(s.name.clone())));
    let containers = std::iter::once((&plan.crossbar, Role::Crossbar))
        .chain(agents)
        .chain(services);
    for (container, role) in containers {
        let image = &container.image;
        let r = ImageRef::parse(image).map_err(|source| StackError::BadImage {
            role: role.clone(),
            source,
        })?;
        if !engine::image_exists(docker, &r).await? {
            return Err(StackError::ImageMissing {
                image: image.into(),
                role,
                hint: format!(
                    "Build it first, or add an image override mapping {image} to a local image."
                ),
            });
        }
    }
    Ok(())
}

/// Write the generated site config to `<run_dir>/config/default.yaml` for the record (the
/// agents get theirs copied in through the engine's API); the config directory, absolute.
pub(crate) fn write_site_config(run_dir: &Path, site_config: &str) -> Result<PathBuf, StackError> {
    let config_dir = run_dir.join("config");
    std::fs::create_dir_all(&config_dir)
        .map_err(io_err(format!("creating {}", config_dir.display())))?;
    let scf_path = config_dir.join("default.yaml");
    std::fs::write(&scf_path, site_config)
        .map_err(io_err(format!("writing {}", scf_path.display())))?;
    config_dir
        .canonicalize()
        .map_err(io_err(format!("resolving {}", config_dir.display())))
}

/// The container request of `plan` on `network`, its output filed under its role.
pub(crate) fn request_for(
    plan: &ContainerPlan,
    network: &str,
    logs: &LogStore,
    run_dir: &Path,
) -> Result<ContainerRequest<GenericImage>, StackError> {
    let image = ImageRef::parse(&plan.image).map_err(|source| StackError::BadImage {
        role: Role::from(&plan.role),
        source,
    })?;
    let (name, tag) = image.name_and_tag();
    let mut image = GenericImage::new(name, tag);
    let mut cmd = plan.cmd.clone();
    if let Some((first, rest)) = plan.entrypoint.as_ref().and_then(|e| e.split_first()) {
        // The engine runs ENTRYPOINT + CMD, and testcontainers sets a one-word ENTRYPOINT:
        // the other words go first in CMD (the image's CMD is dropped, as compose does).
        image = image.with_entrypoint(first);
        cmd = Some(rest.iter().chain(cmd.iter().flatten()).cloned().collect());
    }
    let mut req = image
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
    if let Some(cmd) = cmd {
        req = req.with_cmd(cmd);
    }
    if let Some(user) = &plan.user {
        req = req.with_user(user);
    }
    if let Some(dir) = &plan.working_dir {
        req = req.with_working_dir(dir);
    }
    if let Some(h) = &plan.healthcheck {
        req = req.with_health_check(healthcheck(h));
    }
    // Copied through the engine's API before the start: the engine need not see our files.
    for file in &plan.files {
        for (target, data) in files::copies(file, run_dir)? {
            req = req.with_copy_to(target, data);
        }
    }
    Ok(req)
}

/// `h` as testcontainers takes it.
fn healthcheck(h: &crate::service::Healthcheck) -> testcontainers::core::Healthcheck {
    use testcontainers::core::Healthcheck;
    let base = match h.test.split_first() {
        Some((first, rest)) if first == "CMD" => Healthcheck::cmd(rest),
        Some((first, rest)) if first == "CMD-SHELL" => Healthcheck::cmd_shell(rest.join(" ")),
        _ => Healthcheck::none(),
    };
    base.with_interval(h.interval)
        .with_timeout(h.timeout)
        .with_retries(h.retries)
        .with_start_period(h.start_period)
        .with_start_interval(h.start_interval)
}

/// The bridge URL and a client for crossbar's published port, reached at `host`.
pub(crate) async fn bridge_of(
    crossbar: &ContainerAsync<GenericImage>,
    host: &EngineHost,
    address_root: &str,
    doing: &str,
) -> Result<(reqwest::Url, OcsClient<HttpBridge>), StackError> {
    let port = crossbar
        .get_host_port_ipv4(CROSSBAR_PORT.tcp())
        .await
        .doing(doing)?;
    let url = format!("http://{}:{port}/call", host.url_host());
    let url: reqwest::Url = url.parse().map_err(|e| StackError::Io {
        doing: format!(
            "making the bridge URL {url} (the engine's host is from {})",
            host.from
        ),
        source: std::io::Error::other(e),
    })?;
    let client = OcsClient::new(HttpBridge::new(url.clone()), address_root.to_string());
    Ok((url, client))
}

/// Start crossbar's container `plan` on `network`. Its port is published on the one address
/// the harness dials: 127.0.0.1 when the engine is local (see [`EngineHost::publish_ip`]).
pub(crate) async fn start_crossbar_container(
    plan: &ContainerPlan,
    network: &str,
    host: &EngineHost,
    logs: &LogStore,
    run_dir: &Path,
) -> Result<ContainerAsync<GenericImage>, StackError> {
    let host_ip = host.publish_ip().to_string();
    request_for(plan, network, logs, run_dir)?
        .with_host_config_modifier(move |hc| {
            hc.publish_all_ports = Some(false);
            hc.port_bindings = Some(HashMap::from([(
                format!("{CROSSBAR_PORT}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some(host_ip.clone()),
                    host_port: Some(String::new()),
                }]),
            )]));
        })
        .start()
        .await
        .doing(format!("starting crossbar ({})", plan.name))
        .map_err(StackError::from)
}

/// An agent's container as started: instance-id, handle, how long the start took, and
/// whether it is held (paused).
type Started = (String, ContainerAsync<GenericImage>, Duration, bool);

/// A stack's crossbar (none of its own on a shared one), its bridge, a client, and the
/// agents started.
type Crossbar = (
    Option<ContainerAsync<GenericImage>>,
    reqwest::Url,
    OcsClient<HttpBridge>,
    Vec<Started>,
);

/// One bring-up: what every phase needs.
pub(crate) struct BringUp<'a> {
    pub docker: &'a Docker,
    pub host: &'a EngineHost,
    pub options: &'a UpOptions,
    pub logs: LogStore,
    pub started: Instant,
}

impl BringUp<'_> {
    /// Every phase after the pre-flight, in order.
    pub(crate) async fn run(
        &self,
        plan: StackPlan,
        mut timings: Timings,
    ) -> Result<Stack, StackError> {
        let t = Instant::now();
        let labels = plan.labels.clone().into_iter().collect();
        engine::create_network(self.docker, &plan.network, labels, false)
            .await
            .doing(format!("creating network {}", plan.network))?;
        timings.network = t.elapsed();
        tracing::debug!(run = %plan.run_id, network = %plan.network, took = ?timings.network, "network created");

        let services = self.start_services(&plan.services, &plan.network).await?;

        let (crossbar, bridge_url, client, started_agents) = match &self.options.lease {
            None => self.own_crossbar(&plan, &mut timings).await?,
            Some(lease) => self.shared_crossbar(&plan, lease, &mut timings).await?,
        };

        let mut stack = Stack {
            docker: self.docker.clone(),
            host: self.host.clone(),
            crossbar,
            agents: BTreeMap::new(),
            services,
            bridge_url,
            client,
            logs: self.logs.clone(),
            run_dir: self.options.run_dir.clone(),
            timings,
            torn_down: false,
            background: Vec::new(),
            helpers: Vec::new(),
            engine: self.options.engine.clone(),
            lease: self.options.lease.clone(),
            plan,
        };
        let held = adopt(&mut stack, started_agents);
        let running_since = release(&mut stack, &held).await?;
        wait_agents(&mut stack, running_since, self.options).await?;
        stack.timings.total = self
            .started
            .elapsed()
            .saturating_sub(stack.timings.turn_wait);
        tracing::debug!(run = %stack.plan.run_id, total = ?stack.timings.total, "stack ready");
        Ok(stack)
    }

    /// The stack's own crossbar, started and ready, and the agents (held while it boots).
    async fn own_crossbar(
        &self,
        plan: &StackPlan,
        timings: &mut Timings,
    ) -> Result<Crossbar, StackError> {
        // A run whose worker is busy prepares its crossbar ahead, in the CPU time the running
        // stacks leave (a low CPU weight until its turn).
        let ahead = !self.options.turn.try_take().await;
        let t = Instant::now();
        let crossbar = self.start_crossbar(plan).await?;
        if ahead {
            self.weigh(plan, &crossbar, AHEAD_CPU_SHARES).await;
        }
        timings.crossbar_start = t.elapsed();
        tracing::debug!(run = %plan.run_id, took = ?timings.crossbar_start, "crossbar started");
        let (bridge_url, client) = bridge_of(
            &crossbar,
            self.host,
            &plan.address_root,
            "reading crossbar's published port",
        )
        .await?;
        tracing::debug!(run = %plan.run_id, bridge = %bridge_url, published = %self.host.publish_ip(), from = %self.host.from, "crossbar's bridge URL");

        let hold = self.options.hold_agents && !HOLD_UNSUPPORTED.load(Ordering::Relaxed);
        let ((boot, ready_at), started_agents) = if !ahead {
            self.crossbar_and_agents(plan, &client, &crossbar, hold, t)
                .await?
        } else {
            // Prepared ahead: crossbar boots before the run's turn, the agents start on it.
            let ready = self.bridge_ready(&client, &crossbar, t).await?;
            self.options.turn.take().await;
            self.weigh(plan, &crossbar, engine::CPU_SHARES_DEFAULT)
                .await;
            timings.turn_wait = self.options.turn.waited();
            tracing::debug!(run = %plan.run_id, waited = ?timings.turn_wait, "the run's turn");
            (ready, self.start_agents(plan, false).await?)
        };
        timings.crossbar_boot = boot;
        timings.marks.bridge_ready = ready_at;
        tracing::debug!(run = %plan.run_id, boot = ?boot, hold, "crossbar's bridge answers");
        Ok((Some(crossbar), bridge_url, client, started_agents))
    }

    /// A worker's shared crossbar, already up: connected to the stack's network under the
    /// name the stack's own crossbar would have had, and the agents started (nothing to hold
    /// them for). `crossbar_start` is the connection's time; the boot is nil.
    async fn shared_crossbar(
        &self,
        plan: &StackPlan,
        lease: &crate::runtime::lease::Lease,
        timings: &mut Timings,
    ) -> Result<Crossbar, StackError> {
        let t = Instant::now();
        engine::connect_as(
            self.docker,
            &plan.network,
            &lease.container_id,
            &plan.crossbar.name,
        )
        .await
        .doing(format!(
            "connecting the shared crossbar to network {}",
            plan.network
        ))?;
        timings.crossbar_start = t.elapsed();
        timings.marks.bridge_ready = unix_now();
        tracing::debug!(run = %plan.run_id, realm = %lease.realm, waited = ?lease.waited, took = ?timings.crossbar_start, "shared crossbar connected");
        let client = OcsClient::new(
            HttpBridge::new(lease.bridge_url.clone()),
            plan.address_root.clone(),
        );
        let started = self.start_agents(plan, false).await?;
        Ok((None, lease.bridge_url.clone(), client, started))
    }

    /// crossbar first: agents that start before it back off for seconds (autobahn).
    async fn start_crossbar(
        &self,
        plan: &StackPlan,
    ) -> Result<ContainerAsync<GenericImage>, StackError> {
        start_crossbar_container(
            &plan.crossbar,
            &plan.network,
            self.host,
            &self.logs,
            &self.options.run_dir,
        )
        .await
    }

    /// Wait for crossbar's bridge and start the agents: while it boots when `hold` (each
    /// agent paused as soon as it runs), after it otherwise. The boot time (from `t`), the
    /// moment the bridge answered, and the started agents.
    ///
    /// The engine's part of starting a container (≈0.4 s each on the reference machine,
    /// 2.3 s for eight) need not wait for crossbar; an agent that connects before crossbar is
    /// ready backs off for seconds, hence the hold. The benchmark compares both ways.
    async fn crossbar_and_agents(
        &self,
        plan: &StackPlan,
        client: &OcsClient<HttpBridge>,
        crossbar: &ContainerAsync<GenericImage>,
        hold: bool,
        t: Instant,
    ) -> Result<((Duration, f64), Vec<Started>), StackError> {
        if !hold {
            let ready = self.bridge_ready(client, crossbar, t).await?;
            return Ok((ready, self.start_agents(plan, false).await?));
        }
        let mut starts = std::pin::pin!(self.start_agents(plan, true));
        let mut bridge = std::pin::pin!(self.bridge_ready(client, crossbar, t));
        tokio::select! {
            // An agent that cannot start ends the bring-up without waiting for crossbar.
            started = &mut starts => {
                let started = started?;
                Ok((bridge.await?, started))
            }
            // crossbar failing still lets the starts in flight finish, so that nothing is
            // created after `up` has swept the run.
            ready = &mut bridge => {
                let started = starts.await;
                Ok((ready?, started?))
            }
        }
    }

    /// Give the stack's crossbar the CPU weight `shares` (best effort: an engine that cannot
    /// only makes a prepared crossbar compete as an equal).
    async fn weigh(&self, plan: &StackPlan, crossbar: &ContainerAsync<GenericImage>, shares: i64) {
        if let Err(e) = engine::cpu_shares(self.docker, crossbar.id(), shares).await {
            tracing::debug!(run = %plan.run_id, shares, error = %e, "crossbar's CPU weight unchanged");
        }
    }

    /// Every agent of `plan` started (with `hold`, each paused as soon as it runs).
    async fn start_agents(&self, plan: &StackPlan, hold: bool) -> Result<Vec<Started>, StackError> {
        let starts = plan
            .agents
            .iter()
            .map(|a| self.start_agent(a, &plan.network, hold));
        join_all(starts).await.into_iter().collect()
    }

    /// Until crossbar's bridge answers: the boot time (from `t`) and the moment it answered.
    async fn bridge_ready(
        &self,
        client: &OcsClient<HttpBridge>,
        crossbar: &ContainerAsync<GenericImage>,
        t: Instant,
    ) -> Result<(Duration, f64), StackError> {
        match wait_bridge(client, &self.logs, 0, crossbar, self.options.crossbar_ready).await {
            Ok(()) => Ok((t.elapsed(), unix_now())),
            Err(error) => Err(StackError::NotReady {
                role: Role::Crossbar,
                error: Box::new(error),
                log_tail: self.logs.tail(Role::CROSSBAR, self.options.log_tail),
            }),
        }
    }

    /// Create and start one agent's container; with `hold`, pause it as soon as it runs.
    async fn start_agent(
        &self,
        agent: &AgentPlan,
        network: &str,
        hold: bool,
    ) -> Result<Started, StackError> {
        let t = Instant::now();
        let wrapped = wrapped(self.docker, &agent.container).await?;
        let container = request_for(&wrapped, network, &self.logs, &self.options.run_dir)?
            .start()
            .await
            .doing(format!(
                "starting agent {} ({})",
                agent.instance_id, agent.container.name
            ))?;
        let held = hold && hold_container(self.docker, &container, &agent.instance_id).await;
        Ok((agent.instance_id.clone(), container, t.elapsed(), held))
    }
}

/// `plan` with its `wrap` put before its command: ENTRYPOINT becomes the wrap and the
/// container's own entrypoint (the plan's, else the image's), CMD the plan's (else, when the
/// plan keeps the image's entrypoint, the image's). The plan itself when it wraps nothing.
async fn wrapped(docker: &Docker, plan: &ContainerPlan) -> Result<ContainerPlan, StackError> {
    if plan.wrap.is_empty() {
        return Ok(plan.clone());
    }
    let (entrypoint, cmd) = match &plan.entrypoint {
        Some(e) => (e.clone(), plan.cmd.clone()),
        None => {
            let image = docker
                .inspect_image(&plan.image)
                .await
                .doing(format!("reading the entrypoint of image {}", plan.image))?;
            let config = image.config.unwrap_or_default();
            (
                config.entrypoint.unwrap_or_default(),
                plan.cmd.clone().or(config.cmd),
            )
        }
    };
    let mut out = plan.clone();
    out.entrypoint = Some(plan.wrap.iter().cloned().chain(entrypoint).collect());
    out.cmd = cmd;
    out.wrap = Vec::new();
    Ok(out)
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
                Err(_) if !container.is_running().await.unwrap_or(false) => Probe::Ready(false),
                Err(e) if e.to_string().contains("unable to freeze") => {
                    Probe::Pending(e.to_string())
                }
                Err(e) => {
                    // The engine cannot pause (e.g. rootless on cgroup v1).
                    HOLD_UNSUPPORTED.store(true, Ordering::Relaxed);
                    Probe::Failed(e.to_string())
                }
            }
        },
    )
    .await;
    paused.unwrap_or_else(|e| {
        notice::warn(&format!(
            "agent {instance_id} runs on unheld and connects once crossbar answers: {e}"
        ));
        false
    })
}

/// Take the started agents into the stack; the instance-ids of those held.
fn adopt(stack: &mut Stack, started: Vec<Started>) -> Vec<String> {
    let mut held = Vec::new();
    for (id, container, took, was_held) in started {
        stack.timings.agent_start.insert(id.clone(), took);
        if was_held {
            held.push(id.clone());
        }
        stack.agents.insert(id, container);
    }
    held
}

/// Release the held agents together. An agent's registration time counts from its release
/// (or from its start when it was not held): that moment, per agent.
async fn release(
    stack: &mut Stack,
    held: &[String],
) -> Result<BTreeMap<String, Instant>, StackError> {
    let releases = stack.plan.agents.iter().map(|agent| {
        let id = agent.instance_id.clone();
        let (docker, container) = (&stack.docker, &stack.agents[&id]);
        let was_held = held.contains(&id);
        async move {
            if was_held {
                docker
                    .unpause_container(container.id())
                    .await
                    .doing(format!("releasing agent {id}"))?;
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
    Ok(running_since)
}

/// Wait until every agent answers `get_api`; the first agent that does not is the error.
async fn wait_agents(
    stack: &mut Stack,
    running_since: BTreeMap<String, Instant>,
    options: &UpOptions,
) -> Result<(), StackError> {
    let waits = stack.plan.agents.iter().map(|agent| {
        let id = agent.instance_id.clone();
        let (container, client, logs) = (&stack.agents[&id], &stack.client, &stack.logs);
        let since = running_since[&id];
        async move {
            let r = wait_agent(client, logs, 0, &id, container, options.agent_ready).await;
            (id, r, since.elapsed(), unix_now())
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
                    role: Role::Agent(id),
                    error: Box::new(error),
                });
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::service::Healthcheck;

    #[test]
    fn a_compose_healthcheck_is_the_engines() {
        let h = Healthcheck {
            test: vec![
                "CMD-SHELL".into(),
                "influx -execute 'SHOW DATABASES'".into(),
            ],
            interval: Some(Duration::from_secs(2)),
            timeout: None,
            retries: Some(5),
            start_period: Some(Duration::from_secs(60)),
            start_interval: None,
        };
        let debug = format!("{:?}", super::healthcheck(&h));
        assert!(
            debug.contains("\"CMD-SHELL\", \"influx -execute 'SHOW DATABASES'\""),
            "{debug}"
        );
        assert!(debug.contains("interval: Some(2s)"), "{debug}");
        assert!(debug.contains("retries: Some(5)"), "{debug}");
        let none = Healthcheck {
            test: vec!["NONE".into()],
            ..h
        };
        assert!(format!("{:?}", super::healthcheck(&none)).contains("[\"NONE\"]"));
    }
}
