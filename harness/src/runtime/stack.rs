//! A running stack: the private network, crossbar and the agents as testcontainers, and
//! teardown that always runs (explicit, on drop, on a signal, and by label for anything a
//! failed start left). Bringing it up (`Stack::up`) is in `bringup`, faults in `faults`, keeping and
//! tearing down in `keep`, questions to the engine about it in `inspect`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use testcontainers::bollard::Docker;
use testcontainers::{ContainerAsync, GenericImage};

use crate::ocs::{HttpBridge, OcsClient};
use crate::plan::StackPlan;
use crate::runtime::engine::{self, EngineError, EngineHost};
use crate::runtime::logs::LogStore;
use crate::runtime::role::Role;
use crate::runtime::watchdog;
use crate::wait::WaitError;

/// Why a stack could not be brought up or torn down, or a fault not injected.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The engine failed a request (or cannot be reached).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An image is missing; nothing was started.
    #[error(
        "image {image} (for {}) is not present locally and no image registry can be reached; \
         nothing was started. {hint}", role.name()
    )]
    ImageMissing {
        /// The image.
        image: String,
        /// The container that needs it.
        role: Role,
        /// What to do.
        hint: String,
    },
    /// A container's image is not an image reference.
    #[error("the image of {role} is not usable")]
    BadImage {
        /// The container.
        role: Role,
        /// Why.
        #[source]
        source: crate::overrides::ImageRefError,
    },
    /// A container did not become ready.
    #[error("{role} did not become ready: {error}{}", format_tail(.log_tail))]
    NotReady {
        /// The container.
        role: Role,
        /// The wait's error (condition, deadline, last value).
        error: Box<WaitError>,
        /// Its last log lines.
        log_tail: Vec<String>,
    },
    /// The feed tap did not subscribe.
    #[error(
        "the feed tap did not become ready: {error}{}\nThe tap runs python3 from the stack's \
         OCS image (the registry's, else the first agent's); that image needs autobahn, as \
         every OCS image has.",
        format_tail(.log_tail)
    )]
    TapNotReady {
        /// The wait's error (condition, deadline, last value).
        error: WaitError,
        /// Its last log lines.
        log_tail: Vec<String>,
    },
    /// The stack has no such container.
    #[error(
        "Docker request failed while looking up container {}: no such container in this stack",
        .0.name()
    )]
    NoSuchContainer(Role),
    /// Tearing the stack down failed somewhere; everything that could be removed was.
    #[error(
        "tearing down run {run} failed: {}. Remove what is left with `ocs-harness clean --run {run}`",
        .failures.join("; ")
    )]
    Teardown {
        /// The run.
        run: String,
        /// What was removed.
        removed: Vec<String>,
        /// Each failure, with its causes.
        failures: Vec<String>,
    },
    /// Local file I/O.
    #[error("{doing}")]
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

/// `map_err` for local file I/O.
pub(crate) fn io_err(doing: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
    let doing = doing.into();
    move |source| StackError::Io { doing, source }
}

pub use crate::plan::DEFAULT_READY;

/// Deadlines and choices for bringing a stack up (`in_dir` gives the defaults).
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
    /// How the engine is reached.
    pub engine: crate::runtime::engine::EngineSettings,
    /// A realm on a worker's shared crossbar: the stack starts no crossbar of its own.
    pub lease: Option<crate::runtime::lease::Lease>,
    /// The run's turn on a suite's worker: with a crossbar of the stack's own, what comes
    /// before the agents (network, services, crossbar's boot) is prepared ahead of it.
    pub turn: crate::runtime::Turn,
}

impl UpOptions {
    /// Defaults with the run directory `dir` (agents held).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            crossbar_ready: DEFAULT_READY,
            agent_ready: DEFAULT_READY,
            run_dir: dir.into(),
            log_tail: 30,
            hold_agents: true,
            engine: Default::default(),
            lease: None,
            turn: Default::default(),
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
    /// The whole `up`, less the wait for the run's turn.
    pub total: Duration,
    /// The wait for the run's turn on a suite's worker, the stack prepared (not in `total`).
    pub turn_wait: Duration,
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

/// A stack that is up: every agent answered `get_api`.
pub struct Stack {
    pub(crate) plan: StackPlan,
    pub(crate) docker: Docker,
    /// Where the engine's published ports are reached.
    pub(crate) host: EngineHost,
    pub(crate) crossbar: Option<ContainerAsync<GenericImage>>,
    pub(crate) agents: BTreeMap<String, ContainerAsync<GenericImage>>,
    /// The service containers, by name.
    pub(crate) services: BTreeMap<String, ContainerAsync<GenericImage>>,
    pub(crate) bridge_url: reqwest::Url,
    pub(crate) client: OcsClient<HttpBridge>,
    pub(crate) logs: LogStore,
    pub(crate) run_dir: PathBuf,
    pub(crate) timings: Timings,
    pub(crate) torn_down: bool,
    /// Log followers after restarts and timed reconnects; aborted at teardown.
    pub(crate) background: Vec<tokio::task::JoinHandle<()>>,
    /// Helper containers the steps need (the feed tap).
    pub(crate) helpers: Vec<ContainerAsync<GenericImage>>,
    /// How the engine is reached (for the removal on drop, from a client of its own).
    pub(crate) engine: crate::runtime::engine::EngineSettings,
    /// The realm on a worker's shared crossbar, the run's until the stack is gone.
    pub(crate) lease: Option<crate::runtime::lease::Lease>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("run_id", &self.plan.run_id)
            .field("bridge_url", &self.bridge_url.as_str())
            .field("realm", &self.lease.as_ref().map(|l| l.realm.as_str()))
            .finish()
    }
}

impl Stack {
    /// The run's plan.
    pub fn plan(&self) -> &StackPlan {
        &self.plan
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.plan.run_id
    }

    /// The bridge URL (`http://<engine host>:<port>/call`; the host is 127.0.0.1 for a local
    /// engine, else the engine's host or `OCS_HARNESS_HOST`).
    pub fn bridge_url(&self) -> &reqwest::Url {
        &self.bridge_url
    }

    /// Where the engine's published ports are reached, and why there.
    pub fn engine_host(&self) -> &EngineHost {
        &self.host
    }

    /// The realm the stack took on a worker's shared crossbar; `None` with a crossbar of its
    /// own.
    pub fn shared_realm(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.realm.as_str())
    }

    /// The engine's id of the worker's shared crossbar the stack runs on; `None` with a
    /// crossbar of its own.
    pub fn shared_crossbar_id(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.container_id.as_str())
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

    /// The roles of the stack's containers: crossbar, then the agents by instance-id, then
    /// the services by name.
    pub fn roles(&self) -> Vec<Role> {
        std::iter::once(Role::Crossbar)
            .chain(self.plan.agents.iter().map(|a| Role::agent(&a.instance_id)))
            .chain(
                self.plan
                    .services
                    .iter()
                    .map(|s| Role::Service(s.name.clone())),
            )
            .collect()
    }

    /// The role of the container named `name` in this stack: `crossbar`, a service's name,
    /// else an instance-id.
    pub fn role_of(&self, name: &str) -> Role {
        if self.plan.services.iter().any(|s| s.name == name) {
            Role::Service(name.to_string())
        } else {
            Role::from(name)
        }
    }

    /// The Docker container name of `role` (`crossbar` or an instance-id).
    pub fn container_name(&self, role: impl Into<Role>) -> Option<&str> {
        match role.into() {
            Role::Crossbar => Some(&self.plan.crossbar.name),
            Role::Agent(id) => self
                .plan
                .agents
                .iter()
                .find(|a| a.instance_id == id)
                .map(|a| a.container.name.as_str()),
            Role::Service(name) => self
                .plan
                .services
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.container.name.as_str()),
            Role::Exec(_) => None,
        }
    }

    /// The container of `role`.
    pub(crate) fn container(
        &self,
        role: &Role,
    ) -> Result<&ContainerAsync<GenericImage>, StackError> {
        match role {
            Role::Crossbar => self.crossbar.as_ref(),
            Role::Agent(id) => self.agents.get(id),
            Role::Service(name) => self.services.get(name),
            Role::Exec(_) => None,
        }
        .ok_or_else(|| StackError::NoSuchContainer(role.clone()))
    }

    /// The engine's id of the container of `role`.
    pub(crate) fn container_id(&self, role: &Role) -> Result<String, StackError> {
        self.container(role).map(|c| c.id().to_string())
    }

    /// Write every container's followed log lines to `<run_dir>/logs/<role>.log`.
    pub fn save_logs(&self) -> Result<PathBuf, StackError> {
        self.logs.save(&self.run_dir).map_err(io_err(format!(
            "saving the logs of run {}",
            self.plan.run_id
        )))
    }

    /// Give up the container handles without removing the containers (one removal path, by
    /// label, or none when the stack is kept).
    pub(crate) fn forget_containers(&mut self) {
        for (_, c) in std::mem::take(&mut self.agents) {
            std::mem::forget(c);
        }
        for (_, c) in std::mem::take(&mut self.services) {
            std::mem::forget(c);
        }
        if let Some(c) = self.crossbar.take() {
            std::mem::forget(c);
        }
        for c in std::mem::take(&mut self.helpers) {
            std::mem::forget(c);
        }
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
        drop(std::mem::take(&mut self.helpers));
        drop(std::mem::take(&mut self.agents));
        drop(std::mem::take(&mut self.services));
        drop(self.crossbar.take());
        let run_id = self.plan.run_id.clone();
        watchdog::unregister(&run_id);
        let engine = self.engine.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let docker = engine::docker_detached(&engine).ok()?;
                crate::runtime::engine::remove_run(&docker, &run_id)
                    .await
                    .ok()
            })
        })
        .join();
    }
}
