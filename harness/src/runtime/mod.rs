//! The only place that talks to Docker.
//!
//! - `engine`: the client, labels, listing and removal by label, container operations, and
//!   the one mapping of the engine's errors.
//! - `images`: base images from recipes and agent images from build contexts.
//! - `stack`: a running stack (`bringup` brings it up phase by phase, `readiness` says when a
//!   container is ready, `faults` injects faults, `inspect` asks the engine about it, `keep`
//!   tears it down or keeps it).
//! - `logs`: every container's output as it arrives.
//! - `sweep`: stale runs of killed harnesses; `watchdog`: this process's runs on a signal.
//! - `role`: what a container is in its stack.
//!
//! [`launch`] puts it together: sweep, images, plan, up.

mod bringup;
pub mod engine;
mod faults;
pub mod images;
mod inspect;
mod keep;
pub mod logs;
pub(crate) mod notice;
pub mod readiness;
pub mod role;
pub mod stack;
pub mod sweep;
mod watchdog;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use testcontainers::bollard::Docker;

use crate::clock::unix_now_secs;
use crate::config::{Config, ConfigError};
use crate::imageset::{ImageSet, ImageSetError, OverrideTarget};
use crate::overrides::{ImageOverrides, ImageRef};
use crate::plan::{plan_stack, ImageSource, PlanError, StackPlan, StackSpec};
use engine::EngineError;
use images::{build_agent_image, ensure_base_images_in, BuildSettings, ImageError};
pub(crate) use notice::display_chain;
pub use role::Role;
use stack::{Stack, StackError, UpOptions};

/// Building an agent's image failed. Shows the image error's message after the agent's
/// name; its causes are the image error's causes.
#[derive(Debug)]
pub struct AgentImageError {
    /// The agent (or `(image set override <image>)`).
    pub instance_id: String,
    /// What went wrong.
    pub error: ImageError,
}

impl std::fmt::Display for AgentImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "agent {}: {}", self.instance_id, self.error)
    }
}

impl std::error::Error for AgentImageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// Why a stack could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// An `OCS_HARNESS_*` variable is unreadable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The engine failed (or cannot be reached).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Building or finding the base images failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Building an agent's image failed.
    #[error(transparent)]
    AgentImage(AgentImageError),
    /// The stack could not be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The image set file is unusable.
    #[error(transparent)]
    ImageSet(#[from] ImageSetError),
    /// The stack could not be brought up.
    #[error(transparent)]
    Stack(#[from] StackError),
}

impl LaunchError {
    /// The agent the error is about, when it is about one.
    pub fn agent(&self) -> Option<&str> {
        match self {
            LaunchError::AgentImage(e) => Some(&e.instance_id),
            LaunchError::Stack(StackError::NotReady { role, .. })
            | LaunchError::Stack(StackError::ImageMissing { role, .. }) => role.instance_id(),
            _ => None,
        }
    }
}

/// How to launch a stack. [`LaunchOptions::defaults`] and the `with_*` methods do not read
/// the environment; [`LaunchOptions::from_env`] (and [`LaunchOptions::new`]) do.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Scenario name, recorded in labels.
    pub scenario: String,
    /// The base image set.
    pub images: ImageSet,
    /// An image set file to use instead of `images` (`$OCS_HARNESS_IMAGES`).
    pub images_file: Option<PathBuf>,
    /// Extra overrides, applied after the image set's own.
    pub overrides: ImageOverrides,
    /// Where runs keep their files; a directory per run is made below it.
    pub runs_dir: PathBuf,
    /// Readiness deadlines.
    pub crossbar_ready: Duration,
    /// Readiness deadline per agent.
    pub agent_ready: Duration,
    /// Leave a failed run's stack running for inspection (`$OCS_HARNESS_KEEP_ON_FAILURE`).
    pub keep_on_failure: bool,
    /// Start the agents' containers while crossbar boots, held paused until it is ready
    /// (default; `OCS_HARNESS_HOLD_AGENTS=0` turns it off).
    pub hold_agents: bool,
    /// Kept stacks older than this are removed by the sweep before the launch
    /// (`$OCS_HARNESS_KEEP_MAX_AGE`).
    pub keep_max_age: Duration,
    /// Where the base images' downloads and build lock live, and whether apt-get may install
    /// debootstrap (`$OCS_HARNESS_CACHE`, `$OCS_HARNESS_NO_APT`).
    pub build: BuildSettings,
    /// An unreadable variable seen by [`LaunchOptions::new`], reported by [`launch`].
    env_error: Option<ConfigError>,
}

impl LaunchOptions {
    /// Defaults for a scenario called `scenario`, from the environment (the `OCS_HARNESS_*`
    /// variables, see the README). An unreadable variable makes [`launch`] fail, naming it.
    pub fn new(scenario: &str) -> Self {
        match Self::from_env(scenario) {
            Ok(options) => options,
            Err(e) => Self {
                env_error: Some(e),
                ..Self::defaults(scenario)
            },
        }
    }

    /// Defaults for `scenario` with the settings of the environment.
    pub fn from_env(scenario: &str) -> Result<Self, ConfigError> {
        Ok(Self::with_config(scenario, &Config::from_env()?))
    }

    /// Defaults for `scenario` with the settings of `config`.
    pub fn with_config(scenario: &str, config: &Config) -> Self {
        Self {
            scenario: scenario.into(),
            images: ImageSet::default(),
            images_file: config.images_file.clone(),
            overrides: ImageOverrides::new(),
            runs_dir: config.runs_dir.clone(),
            crossbar_ready: Duration::from_secs(60),
            agent_ready: Duration::from_secs(60),
            keep_on_failure: config.keep_on_failure,
            hold_agents: config.hold_agents,
            keep_max_age: config.keep_max_age,
            build: BuildSettings {
                cache_dir: config.cache_dir.clone(),
                apt_allowed: config.apt_allowed,
            },
            env_error: None,
        }
    }

    /// Defaults for `scenario`, the environment unread (the documented defaults).
    pub fn defaults(scenario: &str) -> Self {
        Self::with_config(scenario, &Config::default())
    }

    /// Use the image set file `file`.
    pub fn with_images_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.images_file = Some(file.into());
        self
    }

    /// Apply `overrides` after the image set's own.
    pub fn with_overrides(mut self, overrides: ImageOverrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// Keep runs' files below `dir`.
    pub fn with_runs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runs_dir = dir.into();
        self
    }

    /// Readiness deadlines: crossbar's bridge, and each agent.
    pub fn with_ready_deadlines(mut self, crossbar: Duration, agent: Duration) -> Self {
        (self.crossbar_ready, self.agent_ready) = (crossbar, agent);
        self
    }

    /// Leave a failed run's stack running for inspection.
    pub fn with_keep_on_failure(mut self, keep: bool) -> Self {
        self.keep_on_failure = keep;
        self
    }

    /// Hold the agents paused while crossbar boots.
    pub fn with_hold_agents(mut self, hold: bool) -> Self {
        self.hold_agents = hold;
        self
    }
}

/// `$OCS_HARNESS_RUNS_DIR`, else `<cargo target dir>/ocs-harness/runs`, where the target dir
/// is `$CARGO_TARGET_DIR` or `target` next to the nearest `Cargo.lock` above the working
/// directory.
pub fn default_runs_dir() -> PathBuf {
    crate::config::runs_dir_from_env()
}

/// What `launch` did before the stack came up.
#[derive(Debug, Clone, Default)]
pub struct LaunchReport {
    /// Images built by this launch, with their build time.
    pub built: Vec<(String, Duration)>,
    /// Time spent on images (checks and builds).
    pub images: Duration,
}

/// Build what is missing, plan the stack and bring it up.
pub async fn launch(
    spec: &StackSpec,
    options: &LaunchOptions,
) -> Result<(Stack, LaunchReport), LaunchError> {
    if let Some(e) = &options.env_error {
        return Err(e.clone().into());
    }
    let docker = engine::docker().await?;
    for line in sweep::sweep_older_than(&docker, sweep::Sweep::Stale, options.keep_max_age).await? {
        notice::info(&line);
    }
    let t = Instant::now();
    let (overrides, mut report) = prepare_images(&docker, options).await?;
    let built = build_agents(&docker, spec, &overrides, &mut report).await?;
    report.images = t.elapsed();
    let plan = plan_run(spec, options, &overrides, &built)?;
    let mut up = UpOptions::in_dir(options.runs_dir.join(&plan.run_id));
    up.crossbar_ready = options.crossbar_ready;
    up.agent_ready = options.agent_ready;
    up.hold_agents = options.hold_agents;
    let stack = Stack::up(plan, up).await?;
    Ok((stack, report))
}

/// The image set's base images present, and the overrides every image goes through: the
/// set's own, its extra ones (built where they name a context), then the options'.
async fn prepare_images(
    docker: &Docker,
    options: &LaunchOptions,
) -> Result<(ImageOverrides, LaunchReport), LaunchError> {
    let loaded;
    let images = match &options.images_file {
        Some(file) => {
            loaded = crate::imageset::load(file)?;
            &loaded
        }
        None => &options.images,
    };
    let progress = |line: &str| notice::info(line);
    let base = ensure_base_images_in(docker, images, &options.build, &progress).await?;
    let mut overrides = images.overrides();
    for (from, target) in &images.extra {
        let to = match target {
            OverrideTarget::Image(i) => i.clone(),
            OverrideTarget::Build(context) => {
                let none = Default::default();
                build_agent_image(docker, context, None, &none, &overrides)
                    .await
                    .map_err(|error| {
                        let instance_id = format!("(image set override {from})");
                        LaunchError::AgentImage(AgentImageError { instance_id, error })
                    })?
                    .image
                    .to_string()
            }
        };
        overrides
            .insert(from, &to)
            .map_err(|problem| ImageSetError {
                file: images.name.clone(),
                problem: problem.to_string(),
            })?;
    }
    overrides.extend(&options.overrides);
    let report = LaunchReport {
        built: base.built,
        images: Duration::ZERO,
    };
    Ok((overrides, report))
}

/// Build (or find) the image of every agent given as a build context; the images by
/// instance-id. What was built goes into `report`.
async fn build_agents(
    docker: &Docker,
    spec: &StackSpec,
    overrides: &ImageOverrides,
    report: &mut LaunchReport,
) -> Result<BTreeMap<String, ImageRef>, LaunchError> {
    let mut built = BTreeMap::new();
    for agent in &spec.agents {
        let ImageSource::Build {
            context,
            dockerfile,
            args,
        } = &agent.image
        else {
            continue;
        };
        let bt = Instant::now();
        let args = args.clone().into_iter().collect();
        let img = build_agent_image(docker, context, dockerfile.as_deref(), &args, overrides)
            .await
            .map_err(|error| {
                let instance_id = agent.instance_id.clone();
                LaunchError::AgentImage(AgentImageError { instance_id, error })
            })?;
        if img.built {
            report.built.push((img.image.to_string(), bt.elapsed()));
        }
        built.insert(agent.instance_id.clone(), img.image);
    }
    Ok(built)
}

/// The plan of a new run of `spec`, owned by this process.
fn plan_run(
    spec: &StackSpec,
    options: &LaunchOptions,
    overrides: &ImageOverrides,
    built: &BTreeMap<String, ImageRef>,
) -> Result<StackPlan, LaunchError> {
    let run_id = crate::plan::new_run_id();
    let user_scf = match &spec.site_config {
        Some(path) => Some(
            std::fs::read_to_string(path).map_err(|e| PlanError::SiteConfig {
                file: path.display().to_string(),
                problem: format!("cannot be read: {e}"),
            })?,
        ),
        None => None,
    };
    let plan = plan_stack(
        spec,
        &run_id,
        &options.scenario,
        unix_now_secs(),
        overrides,
        built,
        user_scf.as_deref(),
    )?;
    Ok(plan.with_owner(std::process::id(), &sweep::host_name()))
}

#[cfg(test)]
mod tests {
    use super::notice::display_chain;
    use super::*;

    #[test]
    fn defaults_do_not_read_the_environment() {
        let o = LaunchOptions::defaults("s");
        assert_eq!(o.scenario, "s");
        assert!(o.hold_agents && !o.keep_on_failure);
        assert_eq!(o.images_file, None);
        assert_eq!(o.keep_max_age, Duration::from_secs(3600));
        let o = o.with_hold_agents(false).with_keep_on_failure(true);
        assert!(!o.hold_agents && o.keep_on_failure);
    }

    #[test]
    fn an_unreadable_variable_fails_the_launch() {
        let o = LaunchOptions {
            env_error: Some(ConfigError::Bool {
                var: crate::config::HOLD_AGENTS,
                value: "maybe".into(),
            }),
            ..LaunchOptions::defaults("s")
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt.block_on(launch(&StackSpec::default(), &o)).unwrap_err();
        assert!(matches!(e, LaunchError::Config(_)), "{e}");
        assert!(e
            .to_string()
            .starts_with("OCS_HARNESS_HOLD_AGENTS=\"maybe\""));
    }

    #[test]
    fn chains_show_each_cause_once() {
        let io = std::io::Error::other("disk full");
        let e = StackError::Io {
            doing: "writing x".into(),
            source: io,
        };
        assert_eq!(display_chain(&e), "writing x: disk full");
        let agent = AgentImageError {
            instance_id: "fake1".into(),
            error: ImageError::Io {
                doing: "packing".into(),
                source: std::io::Error::other("gone"),
            },
        };
        assert_eq!(agent.to_string(), "agent fake1: packing");
        assert_eq!(display_chain(&agent), "agent fake1: packing: gone");
    }
}
