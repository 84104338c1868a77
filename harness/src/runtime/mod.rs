//! The only place that talks to Docker: images (`images`), stacks of containers (`stack`)
//! and their logs (`logs`).

pub mod images;
pub mod logs;
pub mod stack;
pub mod sweep;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::overrides::ImageOverrides;
use crate::plan::{plan_stack, ImageSource, StackSpec};
use crate::recipes::ImageSet;
use images::{build_agent_image, ensure_base_images, ImageError};
use stack::{Stack, StackError, UpOptions};

/// Why a stack could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Building or finding the base images failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Building an agent's image failed.
    #[error("agent {instance_id}: {source}")]
    AgentImage {
        /// The agent.
        instance_id: String,
        /// What went wrong.
        #[source]
        source: ImageError,
    },
    /// The stack could not be planned.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// The image set file is unusable.
    #[error(transparent)]
    ImageSet(#[from] crate::imageset::ImageSetError),
    /// The stack could not be brought up.
    #[error(transparent)]
    Stack(#[from] StackError),
}

/// How to launch a stack.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Scenario name, recorded in labels.
    pub scenario: String,
    /// The base image set.
    pub images: ImageSet,
    /// An image set file to use instead of `images` (default from `$OCS_HARNESS_IMAGES`).
    pub images_file: Option<PathBuf>,
    /// Extra overrides, applied after the image set's own.
    pub overrides: ImageOverrides,
    /// Where runs keep their files; a directory per run is made below it.
    pub runs_dir: PathBuf,
    /// Readiness deadlines.
    pub crossbar_ready: Duration,
    /// Readiness deadline per agent.
    pub agent_ready: Duration,
    /// Leave a failed run's stack running for inspection
    /// (default from `OCS_HARNESS_KEEP_ON_FAILURE=1`).
    pub keep_on_failure: bool,
    /// Start the agents' containers while crossbar boots, held paused until it is ready
    /// (default; `OCS_HARNESS_HOLD_AGENTS=0` turns it off).
    pub hold_agents: bool,
}

impl LaunchError {
    /// The agent the error is about, when it is about one.
    pub fn agent(&self) -> Option<&str> {
        match self {
            LaunchError::AgentImage { instance_id, .. } => Some(instance_id),
            LaunchError::Stack(StackError::NotReady { role, .. }) => role.strip_prefix("agent "),
            LaunchError::Stack(StackError::ImageMissing { role, .. }) if role != "crossbar" => {
                Some(role)
            }
            _ => None,
        }
    }
}

impl LaunchOptions {
    /// Defaults for a scenario called `scenario`.
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.into(),
            images: ImageSet::default(),
            images_file: std::env::var_os("OCS_HARNESS_IMAGES")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            overrides: ImageOverrides::new(),
            runs_dir: default_runs_dir(),
            crossbar_ready: Duration::from_secs(60),
            agent_ready: Duration::from_secs(60),
            keep_on_failure: std::env::var("OCS_HARNESS_KEEP_ON_FAILURE")
                .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes")),
            hold_agents: stack::hold_agents_from_env(),
        }
    }
}

/// `$OCS_HARNESS_RUNS_DIR`, else `<cargo target dir>/ocs-harness/runs`, where the target dir
/// is `$CARGO_TARGET_DIR` or `target` next to the nearest `Cargo.lock` above the working
/// directory.
pub fn default_runs_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("OCS_HARNESS_RUNS_DIR").filter(|d| !d.is_empty()) {
        return d.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let cwd = std::env::current_dir().ok()?;
            cwd.ancestors()
                .find(|d| d.join("Cargo.lock").is_file())
                .map(|d| d.join("target"))
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("ocs-harness").join("runs")
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
    let docker = stack::docker().await?;
    for line in sweep::sweep(&docker, sweep::Sweep::Stale).await? {
        eprintln!("ocs-harness: {line}");
    }
    let t = Instant::now();
    let loaded;
    let images = match &options.images_file {
        Some(file) => {
            loaded = crate::imageset::load(file)?;
            &loaded
        }
        None => &options.images,
    };
    let base =
        ensure_base_images(&docker, images, &|line| eprintln!("ocs-harness: {line}")).await?;
    let mut overrides = images.overrides();
    for (from, target) in &images.extra {
        let to = match target {
            crate::imageset::OverrideTarget::Image(i) => i.clone(),
            crate::imageset::OverrideTarget::Build(context) => {
                build_agent_image(&docker, context, None, &Default::default(), &overrides)
                    .await
                    .map_err(|source| LaunchError::AgentImage {
                        instance_id: format!("(image set override {from})"),
                        source,
                    })?
                    .image
                    .to_string()
            }
        };
        overrides.insert(from, &to).map_err(|problem| {
            LaunchError::ImageSet(crate::imageset::ImageSetError {
                file: images.name.clone(),
                problem,
            })
        })?;
    }
    overrides.extend(&options.overrides);
    let mut built = BTreeMap::new();
    let mut report = LaunchReport {
        built: base.built,
        images: Duration::ZERO,
    };
    for agent in &spec.agents {
        if let ImageSource::Build {
            context,
            dockerfile,
            args,
        } = &agent.image
        {
            let bt = Instant::now();
            let args = args.clone().into_iter().collect();
            let img = build_agent_image(&docker, context, dockerfile.as_deref(), &args, &overrides)
                .await
                .map_err(|source| LaunchError::AgentImage {
                    instance_id: agent.instance_id.clone(),
                    source,
                })?;
            if img.built {
                report.built.push((img.image.to_string(), bt.elapsed()));
            }
            built.insert(agent.instance_id.clone(), img.image);
        }
    }
    report.images = t.elapsed();
    let run_id = plan::new_run_id();
    let created = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let user_scf = match &spec.site_config {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            LaunchError::Plan(crate::plan::PlanError::SiteConfig {
                file: path.display().to_string(),
                problem: format!("cannot be read: {e}"),
            })
        })?),
        None => None,
    };
    let plan = plan_stack(
        spec,
        &run_id,
        &options.scenario,
        created,
        &overrides,
        &built,
        user_scf.as_deref(),
    )?
    .with_owner(std::process::id(), &sweep::host_name());
    let mut up = UpOptions::in_dir(options.runs_dir.join(&run_id));
    up.crossbar_ready = options.crossbar_ready;
    up.agent_ready = options.agent_ready;
    up.hold_agents = options.hold_agents;
    let stack = Stack::up(plan, up).await?;
    Ok((stack, report))
}

use crate::plan;
