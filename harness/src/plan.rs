//! The resolved stack: image names after overrides, container names carrying the run's id,
//! the generated site config (SCF) and crossbar config, labels. Pure data with no I/O, so it
//! can be printed (`--dry-run`) and unit-tested without Docker.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::device::DeviceSpec;
pub use crate::filespec::{CopyContent, FileCopy, FileSpec};
use crate::overrides::{ImageOverrides, ImageRef};
use crate::service::{
    start_order, ContainerOptions, Healthcheck, Readiness, ServiceSpec, StartOrderError,
};

/// The default deadline for crossbar's bridge to answer and for each agent to answer `get_api`.
/// It bounds a hung start, not a slow one: crossbar alone took over 60 s to boot on this
/// project's 2-core machine under load (the old deadline), where an idle boot takes a few seconds.
pub const DEFAULT_READY: Duration = Duration::from_secs(120);

/// Label put on every image, container and network the harness creates. Every label is
/// defined here, with the plan that writes them; the runtime only reads them back.
pub const LABEL_MANAGED: &str = "org.ocs-harness.managed";
/// Label holding a base image's recipe hash.
pub const LABEL_RECIPE: &str = "org.ocs-harness.recipe";
/// Label naming the run a resource belongs to.
pub const LABEL_RUN: &str = "org.ocs-harness.run";
/// Label naming the scenario of the run.
pub const LABEL_SCENARIO: &str = "org.ocs-harness.scenario";
/// Label with the creation time (unix seconds).
pub const LABEL_CREATED: &str = "org.ocs-harness.created";
/// Label with the logical name of a container in its stack (`crossbar`, an instance-id).
pub const LABEL_ROLE: &str = "org.ocs-harness.role";
/// Label with the pid of the harness process that owns the run.
pub const LABEL_PID: &str = "org.ocs-harness.pid";
/// Label with the host name of the machine that process runs on.
pub const LABEL_HOST: &str = "org.ocs-harness.host";
/// Label with the owning process's random token (unique per process, whatever namespaces it
/// shares a host name or pid with).
pub const LABEL_OWNER: &str = "org.ocs-harness.owner";
/// Label with the boot id of the kernel the owning process runs on.
pub const LABEL_BOOT: &str = "org.ocs-harness.boot-id";
/// Label with the PID namespace of the owning process (`pid:[4026531836]`).
pub const LABEL_PID_NS: &str = "org.ocs-harness.pid-ns";
/// Label with the owning process's start time (clock ticks since boot), so a reused pid is
/// not taken for the owner.
pub const LABEL_PID_START: &str = "org.ocs-harness.pid-start";
/// Label (on a marker network) saying a failed run's stack was kept, with the time (unix s).
pub const LABEL_KEPT: &str = "org.ocs-harness.kept";

/// The role (and container-name part) of the run's crossbar: the one spelling of it.
pub const CROSSBAR: &str = "crossbar";

/// The port crossbar listens on inside its container.
pub const CROSSBAR_PORT: u16 = 8001;
/// The hostname agents get by default, as in the ocs docker convention.
pub const DEFAULT_HOSTNAME: &str = "ocs-docker";

/// Where an agent's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An image reference (overrides apply).
    Image(ImageRef),
    /// A build context with a Dockerfile (overrides apply to its `FROM` lines).
    Build {
        /// Directory holding the Dockerfile.
        context: PathBuf,
        /// Dockerfile name relative to the context; `Dockerfile` when `None`.
        dockerfile: Option<String>,
        /// Build arguments.
        args: BTreeMap<String, String>,
    },
}

/// One agent as the user describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// OCS instance-id.
    pub instance_id: String,
    /// OCS agent-class (as listed in the SCF).
    pub agent_class: String,
    /// SCF `arguments`.
    pub arguments: Vec<String>,
    /// Image or build context.
    pub image: ImageSource,
    /// Container hostname = the SCF host the instance is listed under.
    pub hostname: String,
    /// Extra environment (INSTANCE_ID and LOGLEVEL are set unless given here).
    pub environment: BTreeMap<String, String>,
    /// Overrides the image's CMD.
    pub command: Option<Vec<String>>,
    /// Overrides the image's ENTRYPOINT (compose's `entrypoint`; the image's CMD is then not
    /// used, as compose does).
    pub entrypoint: Option<Vec<String>>,
    /// Files and directories copied into the container before it starts.
    pub files: Vec<FileSpec>,
    /// Python packages added to the image (pinned specs, `so3g==0.2.9`).
    pub packages: Vec<String>,
    /// User, working directory, labels and healthcheck (from a compose file).
    pub container: ContainerOptions,
}

impl AgentSpec {
    /// An agent from an image, with the default hostname and no arguments.
    pub fn new(instance_id: &str, agent_class: &str, image: ImageSource) -> Self {
        Self {
            instance_id: instance_id.into(),
            agent_class: agent_class.into(),
            arguments: Vec::new(),
            image,
            hostname: DEFAULT_HOSTNAME.into(),
            environment: BTreeMap::new(),
            command: None,
            entrypoint: None,
            files: Vec::new(),
            packages: Vec::new(),
            container: ContainerOptions::default(),
        }
    }

    /// Set the SCF arguments.
    pub fn with_arguments<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.arguments = args.into_iter().map(Into::into).collect();
        self
    }

    /// Add an environment variable.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.environment.insert(key.into(), value.into());
        self
    }
}

/// An agent its host's HostManager runs, as a process in the HostManager's container (what
/// the SCF says with `manage: host/up` or `host/down`): listed in the site config, with no
/// container of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedAgent {
    /// OCS instance-id.
    pub instance_id: String,
    /// OCS agent-class.
    pub agent_class: String,
    /// SCF `arguments`.
    pub arguments: Vec<String>,
    /// The SCF host it is listed under: the hostname of the HostManager that runs it.
    pub hostname: String,
    /// `true` for `host/up` (the HostManager starts it at once), `false` for `host/down`
    /// (started when asked, e.g. by the HostManager's `update` task).
    pub up: bool,
}

impl HostedAgent {
    /// Its SCF `manage` value.
    pub fn manage(&self) -> &'static str {
        if self.up {
            "host/up"
        } else {
            "host/down"
        }
    }
}

/// The agent class of OCS's HostManager, which runs the agents of its host that the site
/// config marks `manage: host/...`.
pub const HOST_MANAGER_CLASS: &str = "HostManager";

/// The stack as the user describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSpec {
    /// WAMP realm.
    pub realm: String,
    /// OCS address root.
    pub address_root: String,
    /// The path of crossbar's call bridge (`call`; a shared crossbar serves one per realm,
    /// see `runtime::hub`), in the site config's `wamp_http`.
    pub bridge_path: String,
    /// crossbar image (overrides apply).
    pub crossbar_image: ImageRef,
    /// Whether to run the registry agent.
    pub registry: bool,
    /// The registry agent's image (overrides apply).
    pub registry_image: ImageRef,
    /// The agents the harness runs, each in its own container.
    pub agents: Vec<AgentSpec>,
    /// The agents HostManagers run (listed in the site config only; each host with one needs
    /// a HostManager among `agents`).
    pub hosted: Vec<HostedAgent>,
    /// The user's own site config file, used instead of a generated one (its hub is pointed
    /// at the run's crossbar; agent classes and arguments come from it).
    pub site_config: Option<PathBuf>,
    /// Service containers (non-OCS), started and ready before crossbar and the agents. The
    /// emulated devices are among them (first), each as [`DeviceSpec::service`] gives it.
    pub services: Vec<ServiceSpec>,
    /// Emulated devices (`stack.devices`): their services get the emulator's files, and an
    /// agent with a serial device starts behind the serial relay.
    pub devices: Vec<DeviceSpec>,
    /// Images `exec` steps start one-off containers from (as written; overrides apply): made
    /// present with the stack's own images.
    pub exec_images: Vec<ImageRef>,
    /// The image set the stack names (a scenario's `images:`): a set file, or `upstream`,
    /// `local` or `auto`. A run's `--images` / `$OCS_HARNESS_IMAGES` wins over it.
    pub image_set: Option<PathBuf>,
    /// Python code coverage in the agents' containers (a scenario's `code-coverage:`; else
    /// the image set's).
    pub code_coverage: Option<crate::codecov::CodeCoverage>,
}

impl Default for StackSpec {
    fn default() -> Self {
        Self {
            realm: "test_realm".into(),
            address_root: "observatory".into(),
            bridge_path: "call".into(),
            crossbar_image: ImageRef::parse("simonsobs/ocs-crossbar:latest").expect("valid"),
            registry: true,
            registry_image: ImageRef::parse("simonsobs/ocs:latest").expect("valid"),
            agents: Vec::new(),
            hosted: Vec::new(),
            site_config: None,
            services: Vec::new(),
            devices: Vec::new(),
            exec_images: Vec::new(),
            image_set: None,
            code_coverage: None,
        }
    }
}

/// One container of a planned stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerPlan {
    /// Logical name in the stack: `crossbar` or the instance-id.
    pub role: String,
    /// Docker container name (unique daemon-wide: it carries the run id).
    pub name: String,
    /// Image after overrides.
    pub image: String,
    /// Container hostname.
    pub hostname: Option<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// CMD override.
    pub cmd: Option<Vec<String>>,
    /// ENTRYPOINT override (the image's CMD is then not used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Words run before the container's own command (its `entrypoint`, else the image's
    /// ENTRYPOINT and CMD, which the runtime reads from the image): the serial relay of an
    /// agent with a serial device. Empty: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wrap: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Files copied into the container through the engine's API before it starts (never
    /// bind-mounted: the engine need not share the harness's filesystem).
    pub files: Vec<FileCopy>,
    /// The user the process runs as (compose's `user`; default: the image's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The working directory (compose's `working_dir`; default: the image's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// The engine's healthcheck (compose's `healthcheck`; default: the image's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
}

impl ContainerPlan {
    /// Take `options`: user, working directory, healthcheck, and the labels the run's own do
    /// not already set.
    fn with_options(mut self, options: &ContainerOptions) -> Self {
        self.user = options.user.clone();
        self.working_dir = options.working_dir.clone();
        self.healthcheck = options.healthcheck.clone();
        for (k, v) in &options.labels {
            self.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self
    }
}

/// The site config directory of the ocs images (`OCS_CONFIG_DIR`).
pub const CONFIG_DIR: &str = "/config";
/// Where every agent finds the site config (`OCS_CONFIG_DIR=/config`, as in the ocs images).
pub const SCF_PATH: &str = "/config/default.yaml";
/// Where crossbar reads its config.
pub const CROSSBAR_CONFIG_PATH: &str = "/ocs/.crossbar/config.json";

/// An agent of a planned stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentPlan {
    /// OCS instance-id.
    pub instance_id: String,
    /// OCS agent-class.
    pub agent_class: String,
    /// Its container.
    pub container: ContainerPlan,
}

/// A service container of a planned stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    /// Its name in the stack (also its first network alias).
    pub name: String,
    /// Its container.
    pub container: ContainerPlan,
    /// Network aliases: the name first.
    pub aliases: Vec<String>,
    /// Container ports published on the engine's host.
    pub ports: Vec<u16>,
    /// When it is ready.
    pub ready: Option<Readiness>,
    /// The services that are ready before it starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// An agent a HostManager of the stack runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostedPlan {
    /// OCS instance-id.
    pub instance_id: String,
    /// OCS agent-class.
    pub agent_class: String,
    /// The instance-id of the HostManager that runs it (in its container).
    pub host_manager: String,
    /// Its SCF `manage` value (`host/up`, `host/down`).
    pub manage: String,
}

/// The fully resolved stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackPlan {
    /// The run's id (part of every name).
    pub run_id: String,
    /// Docker network name.
    pub network: String,
    /// Labels shared by every resource of the run.
    pub labels: BTreeMap<String, String>,
    /// WAMP realm.
    pub realm: String,
    /// OCS address root.
    pub address_root: String,
    /// The crossbar container.
    pub crossbar: ContainerPlan,
    /// The generated crossbar config (JSON), copied to `/ocs/.crossbar/config.json` (one of
    /// crossbar's `files`).
    pub crossbar_config: String,
    /// The agents, registry first when enabled, then in the order given.
    pub agents: Vec<AgentPlan>,
    /// The service containers, in the order they start: as given, except that each comes
    /// after those it depends on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServicePlan>,
    /// The agents HostManagers run (in the site config only, no container of their own).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosted: Vec<HostedPlan>,
    /// The images of `exec` steps' one-off containers: as written -> after overrides.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exec_images: BTreeMap<String, String>,
    /// The generated site config file (YAML), copied to `/config/default.yaml` (one of each
    /// agent's `files`).
    pub site_config: String,
    /// Python code coverage in the agents' containers, when on (see [`crate::codecov`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_coverage: Option<crate::codecov::CodeCoverage>,
}

impl StackPlan {
    /// Make every agent container run under coverage.py ([`crate::codecov`]): the
    /// environment, the `sitecustomize.py` and configuration, and a writable data directory.
    pub fn add_code_coverage(&mut self, cc: &crate::codecov::CodeCoverage) {
        use crate::codecov::{DATA_DIR, DIR, SITECUSTOMIZE};
        for agent in &mut self.agents {
            let c = &mut agent.container;
            crate::codecov::add_env(&mut c.env);
            c.files.push(FileCopy {
                path: format!("{DIR}/sitecustomize.py"),
                what: "code coverage start-up".into(),
                content: CopyContent::Text(SITECUSTOMIZE.into()),
            });
            c.files.push(FileCopy {
                path: format!("{DIR}/.coveragerc"),
                what: "code coverage configuration".into(),
                content: CopyContent::Text(cc.agent_rcfile()),
            });
            c.files.push(FileCopy::host(&FileSpec {
                source: None,
                target: DATA_DIR.into(),
                mode: None,
                writable: true,
            }));
        }
        self.code_coverage = Some(cc.clone());
    }

    /// Use `config` as crossbar's configuration: what is copied to
    /// [`CROSSBAR_CONFIG_PATH`] and what the plan shows.
    pub fn set_crossbar_config(&mut self, config: String) {
        for f in &mut self.crossbar.files {
            if f.path == CROSSBAR_CONFIG_PATH {
                f.content = CopyContent::Text(config.clone());
            }
        }
        self.crossbar_config = config;
    }

    /// Label every resource with the process that owns the run, so a later run can tell a
    /// live run from one whose process was killed.
    pub fn with_owner(self, pid: u32, host: &str) -> Self {
        self.with_labels(&BTreeMap::from([
            (LABEL_PID.to_string(), pid.to_string()),
            (LABEL_HOST.to_string(), host.to_string()),
        ]))
    }

    /// Add `labels` to every resource of the run (the network and every container).
    pub fn with_labels(mut self, labels: &BTreeMap<String, String>) -> Self {
        self.labels.extend(labels.clone());
        self.crossbar.labels.extend(labels.clone());
        for a in &mut self.agents {
            a.container.labels.extend(labels.clone());
        }
        for s in &mut self.services {
            s.container.labels.extend(labels.clone());
        }
        self
    }
}

/// Why a stack cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Two agents share an instance-id.
    #[error("instance-id {0:?} is used by more than one agent; instance-ids must be unique")]
    DuplicateInstance(String),
    /// An instance-id OCS would reject.
    #[error(transparent)]
    InvalidInstanceId(#[from] InvalidInstanceId),
    /// A build-context agent whose image was not resolved before planning.
    #[error("agent {0:?} is built from a context, but no built image was given to the planner")]
    Unbuilt(String),
    /// An agent for a HostManager on a host that has none.
    #[error(
        "agent {instance:?} is to be run by the HostManager of host {host:?} (manage: \
         {manage}), but no agent of the stack has agent-class HostManager and that hostname; add \
         one, or run the agent in its own container (no `manage`)"
    )]
    NoHostManager {
        /// The hosted agent.
        instance: String,
        /// Its host.
        host: String,
        /// Its `manage` value.
        manage: String,
    },
    /// Agents for HostManagers with the user's own site config (its `manage` keys say that).
    #[error(
        "agent {0:?} is to be run by a HostManager, but the stack uses its own site config: \
         give it `manage` there, and list under `agents` only the containers the harness runs"
    )]
    HostedWithSiteConfig(String),
    /// The services' `depends-on` name an unknown service or go round in a circle.
    #[error(transparent)]
    Services(#[from] StartOrderError),
    /// The user's site config is unusable.
    #[error("site config {file}: {problem}")]
    SiteConfig {
        /// The file.
        file: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// An instance-id OCS would reject, with what is wrong and what to write instead: the one
/// rule (and message) for instance-ids, used by scenario files and by [`plan_stack`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}; {help}", self.message())]
pub struct InvalidInstanceId {
    /// The id.
    pub id: String,
    /// What is wrong, after "it": `must not be empty`, `contains a '#', which OCS rejects`.
    pub problem: String,
    /// What to write instead.
    pub help: String,
}

impl InvalidInstanceId {
    /// The message without the help: ``invalid instance-id `<id>`: it <problem>``.
    pub fn message(&self) -> String {
        format!("invalid instance-id `{}`: it {}", self.id, self.problem)
    }
}

/// Check an instance-id against what OCS and crossbar accept: a WAMP URI component must not
/// be empty or contain whitespace, `#` or `.` (a `.` also breaks the registry's wildcard).
pub fn check_instance_id(id: &str) -> Result<(), InvalidInstanceId> {
    let invalid = |problem: String, help: String| {
        Err(InvalidInstanceId {
            id: id.to_string(),
            problem,
            help,
        })
    };
    if id.is_empty() {
        return invalid(
            "must not be empty".into(),
            "use letters, digits, '-' or '_', e.g. `barebones1`".into(),
        );
    }
    let Some(c) = crate::ocs::instance_id_bad_char(id) else {
        return Ok(());
    };
    let what = match c {
        '.' => "a '.' (it splits the WAMP address and breaks the registry's wildcard)".into(),
        '#' => "a '#'".into(),
        c => format!("whitespace ({c:?})"),
    };
    let suggestion: String = id
        .chars()
        .map(|c| {
            if crate::ocs::instance_id_char_ok(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    invalid(
        format!("contains {what}, which OCS rejects"),
        format!("use letters, digits, '-' or '_', e.g. {suggestion:?}"),
    )
}

/// A fresh run id: 8 lowercase hex digits.
pub fn new_run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// `s` with every character Docker does not allow in names replaced by `-`.
pub fn docker_name_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn container_name(run_id: &str, role: &str) -> String {
    format!("ocsh-{run_id}-{}", docker_name_part(role))
}

/// The crossbar config for `realm` and `address_root` on [`CROSSBAR_PORT`]: the ocs template
/// with `auto_ping_size` raised to 12, which crossbar 26 requires.
pub fn crossbar_config(realm: &str, address_root: &str) -> String {
    crate::recipes::CROSSBAR_26_10_1
        .files
        .iter()
        .find(|(name, _)| *name == "config.json.template")
        .map(|(_, t)| {
            t.replace("{realm}", realm)
                .replace("{address_root}", address_root)
                .replace("{port}", &CROSSBAR_PORT.to_string())
        })
        .expect("the crossbar recipe ships its config template")
}

#[derive(Serialize)]
struct Scf<'a> {
    hub: ScfHub<'a>,
    hosts: BTreeMap<&'a str, ScfHost<'a>>,
}

#[derive(Serialize)]
struct ScfHub<'a> {
    wamp_server: String,
    wamp_http: String,
    wamp_realm: &'a str,
    address_root: &'a str,
}

#[derive(Serialize)]
struct ScfHost<'a> {
    #[serde(rename = "agent-instances")]
    agent_instances: Vec<ScfInstance<'a>>,
}

#[derive(Serialize)]
struct ScfInstance<'a> {
    #[serde(rename = "agent-class")]
    agent_class: &'a str,
    #[serde(rename = "instance-id")]
    instance_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    manage: Option<&'a str>,
    arguments: &'a [String],
}

/// Resolve `spec` into a plan. `built` maps the instance-id of every build-context agent (and
/// of every agent with `packages`), and the name of every built service, to the image built
/// for it; `overrides` applies to every other image.
/// `user_scf` is the text of `spec.site_config` when the stack uses the user's own SCF.
pub fn plan_stack(
    spec: &StackSpec,
    run_id: &str,
    scenario: &str,
    created_unix: u64,
    overrides: &ImageOverrides,
    built: &BTreeMap<String, ImageRef>,
    user_scf: Option<&str>,
) -> Result<StackPlan, PlanError> {
    check_agents(spec)?;
    let labels = run_labels(run_id, scenario, created_unix);
    let with_role = |role: &str| {
        let mut l = labels.clone();
        l.insert(LABEL_ROLE.into(), role.into());
        l
    };

    let crossbar = plan_crossbar(spec, run_id, overrides, with_role(CROSSBAR));
    let crossbar_config = crossbar_config(&spec.realm, &spec.address_root);

    let registry = spec.registry.then(|| {
        AgentSpec::new(
            "registry",
            "RegistryAgent",
            ImageSource::Image(spec.registry_image.clone()),
        )
    });
    let specs: Vec<&AgentSpec> = registry.iter().chain(&spec.agents).collect();
    let mut agents: Vec<AgentPlan> = Vec::new();
    for agent in &specs {
        let image = agent_image(agent, overrides, built)?;
        agents.push(plan_agent(
            agent,
            run_id,
            image,
            with_role(&agent.instance_id),
        ));
    }

    let mut services: Vec<ServicePlan> = start_order(&spec.services)?
        .into_iter()
        .map(|i| &spec.services[i])
        .map(|s| plan_service(s, run_id, overrides, built, with_role(&s.name)))
        .collect();
    plan_devices(spec, &mut agents, &mut services);

    let hub = ScfHub {
        wamp_server: format!("ws://{}:{CROSSBAR_PORT}/ws", crossbar.name),
        wamp_http: format!(
            "http://{}:{CROSSBAR_PORT}/{}",
            crossbar.name, spec.bridge_path
        ),
        wamp_realm: &spec.realm,
        address_root: &spec.address_root,
    };
    let hosted = spec
        .hosted
        .iter()
        .map(|h| HostedPlan {
            instance_id: h.instance_id.clone(),
            agent_class: h.agent_class.clone(),
            host_manager: host_manager_of(spec, &h.hostname)
                .unwrap_or_default()
                .to_string(),
            manage: h.manage().into(),
        })
        .collect();
    let body = match user_scf {
        None => generated_scf(hub, &specs, spec),
        Some(text) => {
            let file = spec
                .site_config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(site config)".into());
            let hostnames: Vec<&str> = specs.iter().map(|a| a.hostname.as_str()).collect();
            adopt_user_scf(text, &file, &hub, &mut agents, &hostnames)?
        }
    };
    let site_config = format!("# Site config generated by ocs-harness for run {run_id}.\n{body}");
    for a in &mut agents {
        let scf = FileCopy::new(SCF_PATH, "site config", site_config.clone());
        a.container.files.push(scf);
    }

    Ok(StackPlan {
        run_id: run_id.into(),
        network: format!("ocsh-{run_id}"),
        labels,
        realm: spec.realm.clone(),
        address_root: spec.address_root.clone(),
        crossbar_config,
        crossbar,
        agents,
        services,
        hosted,
        exec_images: spec
            .exec_images
            .iter()
            .map(|i| (i.to_string(), overrides.resolve(i).to_string()))
            .collect(),
        site_config,
        code_coverage: None,
    })
    .map(|mut plan| {
        // added to the containers by the launch, after the level hook (see runtime::launch)
        plan.code_coverage.clone_from(&spec.code_coverage);
        plan
    })
}

/// The container of service `s`.
fn plan_service(
    s: &ServiceSpec,
    run_id: &str,
    overrides: &ImageOverrides,
    built: &BTreeMap<String, ImageRef>,
    labels: BTreeMap<String, String>,
) -> ServicePlan {
    let image = match built.get(&s.name).filter(|_| s.build.is_some()) {
        Some(b) => b.to_string(),
        None => overrides.resolve(&s.image).to_string(),
    };
    let mut aliases = vec![s.name.clone()];
    aliases.extend(s.aliases.iter().filter(|a| **a != s.name).cloned());
    ServicePlan {
        name: s.name.clone(),
        container: ContainerPlan {
            role: s.name.clone(),
            name: container_name(run_id, &s.name),
            image,
            hostname: Some(s.hostname.clone().unwrap_or_else(|| s.name.clone())),
            env: s.environment.clone(),
            cmd: s.command.clone(),
            entrypoint: s.entrypoint.clone(),
            wrap: Vec::new(),
            labels,
            files: s.files.iter().map(FileCopy::host).collect(),
            user: None,
            working_dir: None,
            healthcheck: None,
        }
        .with_options(&s.container),
        aliases,
        ports: s.ports.clone(),
        ready: s.ready.clone(),
        depends_on: s.depends_on.clone(),
    }
}

/// The emulated devices' parts: the emulator's files in each device's service, and the serial
/// relay before the command of each agent with a serial device.
fn plan_devices(spec: &StackSpec, agents: &mut [AgentPlan], services: &mut [ServicePlan]) {
    for d in &spec.devices {
        if let Some(s) = services.iter_mut().find(|s| s.name == d.name) {
            s.container.files.extend(d.files());
        }
    }
    for a in agents.iter_mut() {
        let serial: Vec<&DeviceSpec> = spec
            .devices
            .iter()
            .filter(|d| d.serial.as_ref().is_some_and(|l| l.agent == a.instance_id))
            .collect();
        if let Some((wrap, relay)) = crate::device::serial_wrap(&serial) {
            a.container.wrap = wrap;
            a.container.files.push(relay);
        }
    }
}

/// crossbar's container, its generated config copied in.
fn plan_crossbar(
    spec: &StackSpec,
    run_id: &str,
    overrides: &ImageOverrides,
    labels: BTreeMap<String, String>,
) -> ContainerPlan {
    crossbar_container(
        container_name(run_id, CROSSBAR),
        overrides.resolve(&spec.crossbar_image).to_string(),
        labels,
        crossbar_config(&spec.realm, &spec.address_root),
    )
}

/// A crossbar container named `name` from `image`, with `labels` and `config` copied in (a
/// run's own, or a worker's shared one: `runtime::hub`).
pub fn crossbar_container(
    name: String,
    image: String,
    labels: BTreeMap<String, String>,
    config: String,
) -> ContainerPlan {
    ContainerPlan {
        role: CROSSBAR.into(),
        name,
        image,
        hostname: None,
        env: BTreeMap::new(),
        cmd: None,
        entrypoint: None,
        wrap: Vec::new(),
        labels,
        files: vec![FileCopy::new(
            CROSSBAR_CONFIG_PATH,
            "crossbar config",
            config,
        )],
        user: None,
        working_dir: None,
        healthcheck: None,
    }
}

/// The labels of every container (and the network) of run `run_id`.
fn run_labels(run_id: &str, scenario: &str, created_unix: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_RUN.to_string(), run_id.to_string()),
        (LABEL_SCENARIO.to_string(), scenario.to_string()),
        (LABEL_CREATED.to_string(), created_unix.to_string()),
    ])
}

/// Every agent's instance-id (hosted ones too) is valid, unique, and not the registry's when
/// the stack runs it; every hosted agent has a HostManager on its host.
fn check_agents(spec: &StackSpec) -> Result<(), PlanError> {
    let mut seen = std::collections::BTreeSet::new();
    let ids = spec
        .agents
        .iter()
        .map(|a| &a.instance_id)
        .chain(spec.hosted.iter().map(|h| &h.instance_id));
    for id in ids {
        check_instance_id(id)?;
        let clash = id == "registry" && spec.registry;
        if !seen.insert(id.as_str()) || clash {
            return Err(PlanError::DuplicateInstance(id.clone()));
        }
    }
    if let Some(h) = spec.hosted.first().filter(|_| spec.site_config.is_some()) {
        return Err(PlanError::HostedWithSiteConfig(h.instance_id.clone()));
    }
    for h in &spec.hosted {
        if host_manager_of(spec, &h.hostname).is_none() {
            return Err(PlanError::NoHostManager {
                instance: h.instance_id.clone(),
                host: h.hostname.clone(),
                manage: h.manage().into(),
            });
        }
    }
    Ok(())
}

/// The instance-id of the HostManager the harness runs on SCF host `host`, if any.
pub fn host_manager_of<'a>(spec: &'a StackSpec, host: &str) -> Option<&'a str> {
    spec.agents
        .iter()
        .find(|a| a.agent_class == HOST_MANAGER_CLASS && a.hostname == host)
        .map(|a| a.instance_id.as_str())
}

/// The image `agent` runs: the one `built` for it (a build context, or packages added), else
/// its image after `overrides`.
fn agent_image(
    agent: &AgentSpec,
    overrides: &ImageOverrides,
    built: &BTreeMap<String, ImageRef>,
) -> Result<String, PlanError> {
    if let Some(image) = built.get(&agent.instance_id) {
        return Ok(image.to_string());
    }
    Ok(match &agent.image {
        ImageSource::Image(r) => overrides.resolve(r).to_string(),
        ImageSource::Build { .. } => built
            .get(&agent.instance_id)
            .ok_or_else(|| PlanError::Unbuilt(agent.instance_id.clone()))?
            .to_string(),
    })
}

/// The container of `agent`, running `image`.
fn plan_agent(
    agent: &AgentSpec,
    run_id: &str,
    image: String,
    labels: BTreeMap<String, String>,
) -> AgentPlan {
    let mut env = BTreeMap::from([
        ("INSTANCE_ID".to_string(), agent.instance_id.clone()),
        ("LOGLEVEL".to_string(), "info".to_string()),
    ]);
    env.extend(agent.environment.clone());
    AgentPlan {
        instance_id: agent.instance_id.clone(),
        agent_class: agent.agent_class.clone(),
        container: ContainerPlan {
            role: agent.instance_id.clone(),
            name: container_name(run_id, &agent.instance_id),
            image,
            hostname: Some(agent.hostname.clone()),
            env,
            cmd: agent.command.clone(),
            entrypoint: agent.entrypoint.clone(),
            wrap: Vec::new(),
            labels,
            files: agent.files.iter().map(FileCopy::host).collect(),
            user: None,
            working_dir: None,
            healthcheck: None,
        }
        .with_options(&agent.container),
    }
}

/// The SCF the harness writes when the stack has no `site-config`: every agent (`specs`: the
/// registry, then the stack's agents) and every hosted agent under its hostname. On a host
/// with a HostManager, each agent the harness runs is `manage: ignore` (so that the
/// HostManager does not launch a second copy) and each hosted one says how the HostManager
/// starts it.
fn generated_scf(hub: ScfHub, specs: &[&AgentSpec], spec: &StackSpec) -> String {
    let run = specs.iter().map(|a| {
        let managed_host = host_manager_of(spec, &a.hostname).is_some();
        let manage = (managed_host && a.agent_class != HOST_MANAGER_CLASS).then_some("ignore");
        let instance = ScfInstance {
            agent_class: &a.agent_class,
            instance_id: &a.instance_id,
            manage,
            arguments: &a.arguments,
        };
        (a.hostname.as_str(), instance)
    });
    let hosted = spec.hosted.iter().map(|h| {
        let instance = ScfInstance {
            agent_class: &h.agent_class,
            instance_id: &h.instance_id,
            manage: Some(h.manage()),
            arguments: &h.arguments,
        };
        (h.hostname.as_str(), instance)
    });
    let mut hosts: BTreeMap<&str, ScfHost> = BTreeMap::new();
    for (host, instance) in run.chain(hosted) {
        hosts
            .entry(host)
            .or_insert_with(|| ScfHost {
                agent_instances: Vec::new(),
            })
            .agent_instances
            .push(instance);
    }
    serde_saphyr::to_string(&Scf { hub, hosts }).expect("the SCF always serialises")
}

/// Point the user's SCF at the run's crossbar, take agent classes from it, and add the
/// registry when the stack runs one and the file lists none.
fn adopt_user_scf(
    text: &str,
    file: &str,
    hub: &ScfHub,
    agents: &mut [AgentPlan],
    hostnames: &[&str],
) -> Result<String, PlanError> {
    let err = |problem: String| PlanError::SiteConfig {
        file: file.to_string(),
        problem,
    };
    let mut scf: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| err(format!("is not valid YAML: {e}")))?;
    let root = scf
        .as_object_mut()
        .ok_or_else(|| err("must be a mapping with `hub` and `hosts`".into()))?;
    root.insert(
        "hub".into(),
        serde_json::to_value(hub).expect("hub serialises"),
    );
    let hosts = root
        .get_mut("hosts")
        .and_then(|h| h.as_object_mut())
        .ok_or_else(|| err("has no `hosts` mapping; list the agents under `hosts:`".into()))?;
    // A host's own crossbar address (`'wamp_server': 'ws://crossbar:8001/ws'` under a docker
    // host, as ocs's documentation writes it) is the run's crossbar too.
    for entry in hosts.values_mut().filter_map(|h| h.as_object_mut()) {
        for (key, value) in [
            ("wamp_server", &hub.wamp_server),
            ("wamp_http", &hub.wamp_http),
        ] {
            if let Some(v) = entry.get_mut(key) {
                *v = serde_json::Value::String(value.clone());
            }
        }
    }
    for (agent, host) in agents.iter_mut().zip(hostnames) {
        let entry = hosts
            .entry(host.to_string())
            .or_insert_with(|| serde_json::json!({"agent-instances": []}));
        let instances = entry
            .get_mut("agent-instances")
            .and_then(|i| i.as_array_mut())
            .ok_or_else(|| err(format!("host `{host}` has no `agent-instances` list")))?;
        let found = instances
            .iter()
            .find(|i| i.get("instance-id").and_then(|v| v.as_str()) == Some(&agent.instance_id));
        match found {
            Some(inst) => {
                if agent.agent_class.is_empty() {
                    agent.agent_class = inst
                        .get("agent-class")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string();
                }
            }
            None if agent.instance_id == "registry" && agent.agent_class == "RegistryAgent" => {
                instances.push(serde_json::json!({
                    "agent-class": "RegistryAgent", "instance-id": "registry", "arguments": []
                }));
            }
            None => {
                let listed: Vec<String> = instances
                    .iter()
                    .filter_map(|i| i.get("instance-id").and_then(|v| v.as_str()))
                    .map(|s| format!("`{s}`"))
                    .collect();
                return Err(err(format!(
                    "host `{host}` lists no instance `{}` (it lists: {}); the agent's container \
                     has hostname `{host}`, so ocs looks for it there. Add it to that host's \
                     agent-instances, or set the agent's `hostname` to the host that lists it",
                    agent.instance_id,
                    if listed.is_empty() {
                        "none".into()
                    } else {
                        listed.join(", ")
                    }
                )));
            }
        }
    }
    Ok(serde_saphyr::to_string(&scf).expect("a JSON value serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> StackSpec {
        StackSpec {
            agents: vec![AgentSpec::new(
                "barebones1",
                "BarebonesAgent",
                ImageSource::Build {
                    context: "fixtures/agents/barebones".into(),
                    dockerfile: None,
                    args: BTreeMap::new(),
                },
            )
            .with_arguments(["--mode", "idle"])],
            ..StackSpec::default()
        }
    }

    fn plan(spec: &StackSpec) -> Result<StackPlan, PlanError> {
        let overrides = ImageOverrides::new()
            .with("simonsobs/ocs:latest", "ocs-harness/ocs:0.12.1-aaaa")
            .unwrap()
            .with(
                "simonsobs/ocs-crossbar:latest",
                "ocs-harness/crossbar:26.10.1-bbbb",
            )
            .unwrap();
        plan_stack(
            spec,
            "0badcafe",
            "unit",
            1_800_000_000,
            &overrides,
            &built(),
            None,
        )
    }

    #[test]
    fn services_get_a_container_named_by_the_run_and_their_name_as_alias() {
        let mut spec = spec();
        spec.services.push(ServiceSpec {
            name: "web".into(),
            image: ImageRef::parse("simonsobs/ocs:latest").unwrap(),
            build: None,
            environment: BTreeMap::new(),
            command: None,
            entrypoint: Some(vec!["python3".into(), "-m".into(), "http.server".into()]),
            hostname: None,
            aliases: vec!["www".into(), "web".into()],
            ports: vec![],
            ready: None,
            files: vec![FileSpec::read_only("fixtures/files/data", "/srv/data")],
            depends_on: Vec::new(),
            container: Default::default(),
        });
        let p = plan(&spec).unwrap();
        let s = &p.services[0];
        assert_eq!(s.container.name, "ocsh-0badcafe-web");
        assert_eq!(
            s.container.image, "ocs-harness/ocs:0.12.1-aaaa",
            "overrides apply"
        );
        assert_eq!(s.container.hostname.as_deref(), Some("web"));
        assert_eq!(s.aliases, ["web", "www"]);
        assert_eq!(s.container.files[0].path, "/srv/data");
        assert_eq!(s.container.labels[LABEL_ROLE], "web");
        assert_eq!(s.container.labels[LABEL_RUN], "0badcafe");
        let p = p.with_labels(&BTreeMap::from([("k".to_string(), "v".to_string())]));
        assert_eq!(p.services[0].container.labels["k"], "v");
    }

    #[test]
    fn a_built_service_runs_its_image_with_the_compose_options() {
        let mut spec = spec();
        spec.services.push(ServiceSpec {
            name: "web".into(),
            image: ImageRef::parse("web:built").unwrap(),
            build: Some(crate::service::ServiceBuild {
                context: "site/web".into(),
                dockerfile: None,
                args: BTreeMap::new(),
            }),
            environment: BTreeMap::new(),
            command: None,
            entrypoint: None,
            hostname: None,
            aliases: vec![],
            ports: vec![],
            ready: None,
            files: vec![],
            depends_on: Vec::new(),
            container: ContainerOptions {
                user: Some("9000".into()),
                working_dir: Some("/srv".into()),
                labels: BTreeMap::from([
                    ("team".to_string(), "daq".to_string()),
                    (LABEL_RUN.to_string(), "not the run".to_string()),
                ]),
                healthcheck: None,
            },
        });
        let mut built = built();
        built.insert(
            "web".into(),
            ImageRef::parse("ocs-harness/agent-web:dddd").unwrap(),
        );
        let overrides = ImageOverrides::new();
        let p = plan_stack(&spec, "0badcafe", "unit", 0, &overrides, &built, None).unwrap();
        let c = &p.services[0].container;
        assert_eq!(c.image, "ocs-harness/agent-web:dddd");
        assert_eq!(c.user.as_deref(), Some("9000"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.labels["team"], "daq");
        assert_eq!(c.labels[LABEL_RUN], "0badcafe", "the run's own labels win");
    }

    fn built() -> BTreeMap<String, ImageRef> {
        BTreeMap::from([(
            "barebones1".to_string(),
            ImageRef::parse("ocs-harness/agent-barebones:cccc").unwrap(),
        )])
    }

    #[test]
    fn plan_is_fully_resolved() {
        let p = plan(&spec()).unwrap();
        insta::assert_yaml_snapshot!(p, {".crossbar_config" => "[config]"});
    }

    #[test]
    fn a_replaced_crossbar_config_is_what_is_copied() {
        let mut p = plan_stack(
            &StackSpec::default(),
            "r1",
            "s",
            0,
            &ImageOverrides::default(),
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        p.set_crossbar_config("{\"own\": 1}".into());
        let copied = p
            .crossbar
            .files
            .iter()
            .find(|f| f.path == CROSSBAR_CONFIG_PATH);
        assert_eq!(
            copied.map(|f| &f.content),
            Some(&CopyContent::Text("{\"own\": 1}".into()))
        );
        assert_eq!(p.crossbar_config, "{\"own\": 1}");
    }

    #[test]
    fn generated_crossbar_config_passes_crossbar_26_limits() {
        let cfg: serde_json::Value =
            serde_json::from_str(&crossbar_config("test_realm", "observatory")).unwrap();
        let ws = &cfg["workers"][0]["transports"][0]["paths"]["ws"]["options"];
        let size = ws["auto_ping_size"].as_i64().unwrap();
        assert!((12..=125).contains(&size), "auto_ping_size {size}");
        assert_eq!(cfg["workers"][0]["transports"][0]["endpoint"]["port"], 8001);
        assert_eq!(cfg["workers"][0]["realms"][0]["name"], "test_realm");
        assert_eq!(
            cfg["workers"][0]["transports"][0]["paths"]["call"]["type"],
            "caller"
        );
    }

    #[test]
    fn user_site_config_is_pointed_at_the_run() {
        let mut s = spec();
        s.agents[0].agent_class = String::new();
        s.agents[0].arguments.clear();
        s.site_config = Some("my-scf.yaml".into());
        let scf = "hub:\n  wamp_server: ws://localhost:8001/ws\n  wamp_http: http://localhost:8001/call\n  \
                   wamp_realm: test_realm\n  address_root: observatory\nhosts:\n  ocs-docker:\n    \
                   agent-instances:\n    - {agent-class: BarebonesAgent, instance-id: barebones1, \
                   arguments: [--mode, idle]}\n";
        let p = plan_stack(
            &s,
            "0badcafe",
            "unit",
            0,
            &ImageOverrides::new(),
            &built(),
            Some(scf),
        )
        .unwrap();
        assert_eq!(p.agents[1].agent_class, "BarebonesAgent");
        let v: serde_json::Value = serde_saphyr::from_str(&p.site_config).unwrap();
        assert_eq!(
            v["hub"]["wamp_server"],
            "ws://ocsh-0badcafe-crossbar:8001/ws"
        );
        let instances = v["hosts"]["ocs-docker"]["agent-instances"]
            .as_array()
            .unwrap();
        assert_eq!(instances.len(), 2, "the registry is added: {instances:?}");
        assert_eq!(instances[0]["arguments"][1], "idle");

        // a docker host's own crossbar address, as ocs's documentation writes it
        let own = scf.replace(
            "  ocs-docker:\n",
            "  ocs-docker:\n    wamp_server: ws://crossbar:8001/ws\n    wamp_http: http://crossbar:8001/call\n",
        );
        let p = plan_stack(
            &s,
            "0badcafe",
            "unit",
            0,
            &ImageOverrides::new(),
            &built(),
            Some(&own),
        )
        .unwrap();
        let v: serde_json::Value = serde_saphyr::from_str(&p.site_config).unwrap();
        let host = &v["hosts"]["ocs-docker"];
        assert_eq!(host["wamp_server"], "ws://ocsh-0badcafe-crossbar:8001/ws");
        assert_eq!(host["wamp_http"], "http://ocsh-0badcafe-crossbar:8001/call");

        let wrong_host = scf.replace("ocs-docker:", "other-host:");
        let err = plan_stack(
            &s,
            "0badcafe",
            "unit",
            0,
            &ImageOverrides::new(),
            &built(),
            Some(&wrong_host),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("host `ocs-docker` lists no instance `barebones1`"),
            "{err}"
        );
    }

    #[test]
    fn hosted_agents_are_in_the_site_config_only() {
        let mut s = spec();
        s.agents.push(AgentSpec::new(
            "hm1",
            HOST_MANAGER_CLASS,
            ImageSource::Image(ImageRef::parse("simonsobs/ocs:latest").unwrap()),
        ));
        s.hosted.push(HostedAgent {
            instance_id: "fake2".into(),
            agent_class: "FakeDataAgent".into(),
            arguments: vec!["--mode".into(), "idle".into()],
            hostname: DEFAULT_HOSTNAME.into(),
            up: false,
        });
        let p = plan(&s).unwrap();
        let roles: Vec<&str> = p.agents.iter().map(|a| a.instance_id.as_str()).collect();
        assert_eq!(
            roles,
            ["registry", "barebones1", "hm1"],
            "no container for fake2"
        );
        assert_eq!(p.hosted[0].host_manager, "hm1");
        let v: serde_json::Value = serde_saphyr::from_str(&p.site_config).unwrap();
        let instances = v["hosts"][DEFAULT_HOSTNAME]["agent-instances"]
            .as_array()
            .unwrap();
        let manage: Vec<(&str, Option<&str>)> = instances
            .iter()
            .map(|i| (i["instance-id"].as_str().unwrap(), i["manage"].as_str()))
            .collect();
        assert_eq!(
            manage,
            [
                ("registry", Some("ignore")),
                ("barebones1", Some("ignore")),
                ("hm1", None),
                ("fake2", Some("host/down")),
            ]
        );

        s.hosted[0].hostname = "elsewhere".into();
        let err = plan(&s).unwrap_err().to_string();
        assert!(
            err.contains("no agent of the stack has agent-class HostManager"),
            "{err}"
        );
        s.hosted[0].instance_id = "hm1".into();
        assert_eq!(
            plan(&s).unwrap_err(),
            PlanError::DuplicateInstance("hm1".into())
        );
    }

    #[test]
    fn without_a_host_manager_the_site_config_has_no_manage() {
        let p = plan(&spec()).unwrap();
        assert!(!p.site_config.contains("manage"), "{}", p.site_config);
    }

    #[test]
    fn instance_id_rule() {
        for ok in ["barebones1", "fake-data_2", "LS240-a", "x"] {
            assert_eq!(check_instance_id(ok), Ok(()), "{ok}");
        }
        let e = check_instance_id("").unwrap_err();
        assert_eq!(e.message(), "invalid instance-id ``: it must not be empty");
        assert_eq!(e.help, "use letters, digits, '-' or '_', e.g. `barebones1`");
        let e = check_instance_id("fake data#1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid instance-id `fake data#1`: it contains whitespace (' '), which OCS \
             rejects; use letters, digits, '-' or '_', e.g. \"fake-data-1\""
        );
        assert!(check_instance_id("tab\there").is_err());
        assert!(check_instance_id("nbsp\u{a0}x").is_err());
        let e = check_instance_id("a.b").unwrap_err();
        assert!(e.problem.starts_with("contains a '.' (it splits"), "{e}");
    }

    #[test]
    fn rejects_duplicate_and_invalid_instance_ids() {
        let mut s = spec();
        s.agents.push(s.agents[0].clone());
        assert_eq!(
            plan(&s).unwrap_err(),
            PlanError::DuplicateInstance("barebones1".into())
        );
        let mut s = spec();
        s.agents[0].instance_id = "bare.bones".into();
        let err = plan(&s).unwrap_err().to_string();
        assert!(
            err.contains("'.'") && err.contains("\"bare-bones\""),
            "{err}"
        );
        assert!(
            err.starts_with("invalid instance-id `bare.bones`: it contains"),
            "{err}"
        );
        let mut s = spec();
        s.agents[0].instance_id = "registry".into();
        assert!(matches!(plan(&s), Err(PlanError::DuplicateInstance(_))));
    }
}
