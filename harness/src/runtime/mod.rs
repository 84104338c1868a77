//! The only place that talks to Docker.
//!
//! - `engine`: the client, labels, listing and removal by label, container operations, and
//!   the one mapping of the engine's errors.
//! - `images`: base images from recipes and agent images from build contexts; `packages`: an
//!   agent's image with Python packages added.
//! - `stack`: a running stack (`bringup` brings it up phase by phase, `readiness` says when a
//!   container is ready, `faults` injects faults, `inspect` asks the engine about it, `keep`
//!   tears it down or keeps it).
//! - `logs`: every container's output as it arrives.
//! - `files`: files copied into containers before they start, and fetched out of them.
//! - `sweep`: stale runs of killed harnesses; `watchdog`: this process's runs on a signal.
//!
//! [`launch`] puts it together: sweep, images (which set and which images: the pure
//! [`crate::images::resolve`]; making them present: here), plan, up. Its settings come in
//! as values ([`LaunchOptions`], built from [`Settings`]); nothing here reads the environment.

mod attached;
mod bringup;
pub mod codecov;
mod crossbar_image;
pub mod dockerignore;
pub mod engine;
pub mod exec;
mod faults;
pub mod files;
pub mod hub;
pub mod images;
mod inspect;
mod keep;
mod lease;
mod level_hook;
pub mod logs;
pub(crate) mod notice;
mod packages;
pub(crate) mod progress;
pub mod prune;
pub mod pull;
pub mod readiness;
pub(crate) use crate::role;
mod services;
pub mod shutdown;
pub mod stack;
pub mod sweep;
pub(crate) mod tap;
mod turn;
mod watchdog;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use testcontainers::bollard::Docker;

use crate::clock::unix_now_secs;
use crate::config::{Config, ConfigError, Settings};
use crate::images::resolve;
use crate::imageset::{
    BaseFrom, ImageSet, ImageSetError, ImagesChoice, OverrideTarget, PullPolicy,
};
use crate::overrides::{ImageOverrides, ImageRef};
use crate::plan::{plan_stack, ImageSource, PlanError, StackPlan, StackSpec};
use engine::{EngineError, EngineSettings};
use images::{build_agent_image, context_base_images, ensure_recipes, BuildSettings, ImageError};
pub(crate) use notice::display_chain;
use pull::Origin;
pub use role::Role;
use stack::{Stack, StackError, UpOptions};
pub use turn::{Slot, Turn};

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
    /// Adding an agent's `packages` to its image failed.
    #[error(transparent)]
    AgentPackages(AgentImageError),
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
            LaunchError::AgentImage(e) | LaunchError::AgentPackages(e) => Some(&e.instance_id),
            LaunchError::Stack(StackError::NotReady { role, .. })
            | LaunchError::Stack(StackError::ImageMissing { role, .. }) => role.instance_id(),
            _ => None,
        }
    }
}

/// How to launch a stack. [`LaunchOptions::with_settings`] takes the harness's [`Settings`]
/// (read once at the edge), [`LaunchOptions::defaults`] the documented defaults;
/// [`LaunchOptions::new`] is the Rust entry point that reads this process's environment.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Scenario name, recorded in labels.
    pub scenario: String,
    /// The base image set.
    pub images: ImageSet,
    /// An image set file to use instead of `images` (`$OCS_HARNESS_IMAGES`); the words
    /// `upstream`, `local` and `auto` choose a bundled set (see the README's Images section).
    /// With none, and `images` left at its default, the choice is `auto`.
    pub images_file: Option<PathBuf>,
    /// The pull policy (`--pull`, `$OCS_HARNESS_PULL`); `None`: the set's, else `missing`
    /// (`never` when `auto` found no registry).
    pub pull: Option<PullPolicy>,
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
    /// The suite's log allow-list (`test --log-allow FILE`), added to the built-in one and
    /// the scenario's `log-policy: {allow: [...]}` when the run's logs are checked.
    pub log_allow: Vec<String>,
    /// What the run's time budgets are checked against besides the scenario's own numbers
    /// (`test --baseline-run`, `--budget-ratio`, `--budget-floor`).
    pub budgets: crate::budget::BudgetOptions,
    /// How the engine is reached (`DOCKER_HOST`, TLS, `OCS_HARNESS_HOST`, Docker's client
    /// configuration directory).
    pub engine: EngineSettings,
    /// The run's turn on a suite's worker, and the worker's shared crossbar (`test
    /// --crossbar shared`) that comes with it: the stack takes a realm on it unless it needs
    /// its own (another crossbar image or address root, a published crossbar image). What
    /// comes before the turn is prepared ahead (see [`Turn`]); the default is a turn held
    /// already, with a crossbar of the stack's own.
    pub turn: Turn,
    /// The suite worker, given back once the steps are over (see [`Slot`]).
    pub slot: Slot,
    /// An unreadable variable of the settings given to [`LaunchOptions::with_settings`],
    /// reported by [`launch`].
    env_error: Option<ConfigError>,
}

impl LaunchOptions {
    /// Defaults for a scenario called `scenario` with the settings of this process's
    /// environment: the Rust entry point for a test of one's own (`cargo test`), as
    /// `with_settings(scenario, &Settings::from_env())`. Nothing in the harness calls it: the
    /// CLI reads its settings once and passes them down. An unreadable variable makes
    /// [`launch`] fail, naming it.
    pub fn new(scenario: &str) -> Self {
        Self::with_settings(scenario, &Settings::from_env())
    }

    /// Defaults for a scenario called `scenario` with `settings` (the `OCS_HARNESS_*`
    /// variables, see the README, and the engine's). An unreadable variable makes [`launch`]
    /// fail, naming it.
    pub fn with_settings(scenario: &str, settings: &Settings) -> Self {
        Self {
            engine: EngineSettings::of(settings),
            build: BuildSettings::of(settings),
            env_error: settings.error.clone(),
            ..Self::with_config(scenario, &settings.config)
        }
    }

    /// Defaults for `scenario` with `settings`, or their unreadable variable.
    pub fn from_settings(scenario: &str, settings: &Settings) -> Result<Self, ConfigError> {
        settings.config()?;
        Ok(Self::with_settings(scenario, settings))
    }

    /// Defaults for `scenario` with the settings of `config`.
    pub fn with_config(scenario: &str, config: &Config) -> Self {
        Self {
            scenario: scenario.into(),
            images: ImageSet::default(),
            images_file: config.images_file.clone(),
            pull: config.pull,
            overrides: ImageOverrides::new(),
            runs_dir: config.runs_dir.clone(),
            crossbar_ready: stack::DEFAULT_READY,
            agent_ready: stack::DEFAULT_READY,
            keep_on_failure: config.keep_on_failure,
            hold_agents: config.hold_agents,
            keep_max_age: config.keep_max_age,
            log_allow: Vec::new(),
            budgets: Default::default(),
            build: BuildSettings {
                cache_dir: config.cache_dir.clone(),
                apt_allowed: config.apt_allowed,
                search_path: Vec::new(),
            },
            engine: EngineSettings::default(),
            turn: Turn::default(),
            slot: Slot::default(),
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

/// What `launch` did before the stack came up.
#[derive(Debug, Clone, Default)]
pub struct LaunchReport {
    /// Images built by this launch, with their build time.
    pub built: Vec<(String, Duration)>,
    /// Time spent on images (checks and builds).
    pub images: Duration,
    /// The image set used (`upstream`, `ocs-0.12.1`, ...).
    pub set: String,
    /// Every container's image and where it came from, as `(role, image, origin)`.
    pub proved: Vec<(String, String, String)>,
}

impl LaunchReport {
    /// The one line saying which images the run proved and where each came from.
    pub fn proved_line(&self) -> String {
        let parts: Vec<String> = self
            .proved
            .iter()
            .map(|(role, image, origin)| format!("{role}={image} ({origin})"))
            .collect();
        format!("images ({}): {}", self.set, parts.join("; "))
    }
}

/// Build what is missing, plan the stack and bring it up.
pub async fn launch(
    spec: &StackSpec,
    options: &LaunchOptions,
) -> Result<(Stack, LaunchReport), LaunchError> {
    if let Some(e) = &options.env_error {
        return Err(e.clone().into());
    }
    let docker = engine::docker(&options.engine).await?;
    for line in sweep::sweep_older_than(&docker, sweep::Sweep::Stale, options.keep_max_age).await? {
        notice::info(&line);
    }
    let t = Instant::now();
    let (set, policy) = choose_set(&docker, options, spec.image_set.as_deref()).await?;
    let (overrides, mut report) = prepare_images(&docker, spec, &set, policy, options).await?;
    let mut built = build_agents(&docker, spec, &overrides, &mut report).await?;
    let cache = &options.build.cache_dir;
    add_packages(&docker, spec, &overrides, &mut built, &mut report, cache).await?;
    report.images = t.elapsed();
    let lease = lease_shared(&docker, spec, &set, &overrides, options).await?;
    let on_lease = lease.as_ref().map(|l| StackSpec {
        realm: l.realm.clone(),
        bridge_path: l.path.clone(),
        ..spec.clone()
    });
    let mut plan = plan_run(
        on_lease.as_ref().unwrap_or(spec),
        options,
        &overrides,
        &built,
    )?;
    if set.crossbar_from != BaseFrom::Recipe {
        published_crossbar(&docker, &mut plan, spec).await;
    }
    level_hook::add_level_hook(&docker, &mut plan).await;
    // After the level hook: the coverage directory goes first on the PYTHONPATH it made (the
    // image's own entries kept); its sitecustomize starts coverage, then runs the next one.
    if let Some(cc) = plan.code_coverage.clone().or(set.code_coverage.clone()) {
        plan.add_code_coverage(&cc);
    }
    report.set = set.name.clone();
    report.proved = proved(&plan);
    notice::info(&report.proved_line());
    pull::record_run(&plan.run_id, &report.proved_line());
    let mut up = UpOptions::in_dir(options.runs_dir.join(&plan.run_id));
    up.crossbar_ready = options.crossbar_ready;
    up.agent_ready = options.agent_ready;
    up.hold_agents = options.hold_agents;
    up.engine = options.engine.clone();
    up.lease = lease;
    up.turn = options.turn.clone();
    let stack = Stack::up(plan, up).await?;
    Ok((stack, report))
}

/// A realm on the worker's shared crossbar, when there is one and the stack can use it (see
/// [`hub::own_crossbar`]).
async fn lease_shared(
    docker: &Docker,
    spec: &StackSpec,
    set: &ImageSet,
    overrides: &ImageOverrides,
    options: &LaunchOptions,
) -> Result<Option<hub::Lease>, StackError> {
    if !options.turn.shared() {
        return Ok(None);
    }
    if let Some(why) = hub::own_crossbar(spec, set) {
        tracing::debug!(why, "a crossbar of its own");
        return Ok(None);
    }
    // The worker's crossbar comes with the run's turn: what came before was prepared ahead.
    let Some(shared) = options.turn.take().await else {
        return Ok(None);
    };
    let image = overrides.resolve(&spec.crossbar_image).to_string();
    let start = hub::Start {
        docker,
        engine: &options.engine,
        runs_dir: &options.runs_dir,
        ready: options.crossbar_ready,
        cache_dir: &options.build.cache_dir,
        keep_max_age: options.keep_max_age,
    };
    shared.lease(&image, start).await
}

/// One base image of a set, as `ocs-harness images` shows it.
#[derive(Debug, Clone)]
pub struct SetImage {
    /// `ocs` or `crossbar`.
    pub what: &'static str,
    /// The image.
    pub image: String,
    /// Its digest (repository digest, else image id) when present.
    pub digest: Option<String>,
    /// Where it came from, or where it would come from.
    pub origin: String,
}

/// What the image set of `options` resolves to (and, when `prepare`, make its base images
/// present: pulled, loaded or built): the set's name, its pull policy, and its images.
pub async fn resolve_image_set(
    options: &LaunchOptions,
    prepare: bool,
) -> Result<(String, PullPolicy, Vec<SetImage>), LaunchError> {
    if let Some(e) = &options.env_error {
        return Err(e.clone().into());
    }
    let docker = engine::docker(&options.engine).await?;
    let (set, policy) = choose_set(&docker, options, None).await?;
    let pairs = [
        (
            "ocs",
            set.ocs_image(),
            &set.ocs_from,
            Role::agent("ocs base image"),
        ),
        (
            "crossbar",
            set.crossbar_image(),
            &set.crossbar_from,
            Role::Crossbar,
        ),
    ];
    if prepare {
        let wanted: Vec<_> = pairs
            .iter()
            .map(|(_, i, _, r)| (i.clone(), r.clone(), false))
            .collect();
        ensure_wanted(&docker, &set, policy, &wanted, options).await?;
    }
    let mut out = Vec::new();
    for (what, image, from, _) in pairs {
        let name = image.to_string();
        let present = images::image_exists(&docker, &image).await?;
        let origin = origin_text(pull::origin_of(&name), from, present, policy);
        let digest = if present {
            pull::digest(&docker, &name).await
        } else {
            None
        };
        out.push(SetImage {
            what,
            image: name,
            digest,
            origin,
        });
    }
    Ok((set.name, policy, out))
}

/// The image set `options` choose (`auto` asks the registries) and its pull policy, without
/// preparing anything.
pub async fn chosen_image_set(
    options: &LaunchOptions,
) -> Result<(ImageSet, PullPolicy), LaunchError> {
    if let Some(e) = &options.env_error {
        return Err(e.clone().into());
    }
    let docker = engine::docker(&options.engine).await?;
    choose_set(&docker, options, None).await
}

/// Where a set's image came from (this process knows), or where it would come from.
fn origin_text(
    known: Option<Origin>,
    from: &BaseFrom,
    present: bool,
    policy: PullPolicy,
) -> String {
    match (known, from) {
        (Some(o), _) => o.to_string(),
        (None, BaseFrom::Recipe) if present => "recipe-built".into(),
        (None, BaseFrom::Recipe) => "absent: built from the recipe when needed".into(),
        (None, BaseFrom::Archive { path, .. }) if !present => {
            format!("absent: loaded from {} when needed", path.display())
        }
        (None, _) if present => "local".into(),
        (None, _) => format!("absent: pulled when needed (pull policy {policy})"),
    }
}

/// The image set of a run and its pull policy: `--images`/`$OCS_HARNESS_IMAGES` (a file or
/// `upstream|local|auto`), else `options.images` when changed, else the set the stack names
/// (`named`, a scenario's `images:`), else `auto`: the published
/// images when present or a registry serves them, else the recipes with pulls off (no
/// registry answers).
async fn choose_set(
    docker: &Docker,
    options: &LaunchOptions,
    named: Option<&std::path::Path>,
) -> Result<(ImageSet, PullPolicy), LaunchError> {
    let choice = resolve::choose(options.images_file.as_deref(), &options.images, named);
    let Some(choice) = choice.for_run() else {
        let set = options.images.clone();
        let policy = options.pull.or(set.pull).unwrap_or_default();
        return Ok((set, policy));
    };
    let (set, offline) = match choice {
        ImagesChoice::File(f) => (crate::imageset::load(&f)?, false),
        ImagesChoice::Upstream => (ImageSet::upstream(), false),
        ImagesChoice::Local => (ImageSet::default(), false),
        ImagesChoice::Auto => {
            let up = ImageSet::upstream();
            let creds = options.engine.config_dir.as_deref();
            let served = pull::available(docker, &up.ocs_image(), creds).await
                && pull::available(docker, &up.crossbar_image(), creds).await;
            resolve::auto_set(served)
        }
    };
    let policy = resolve::pull_policy(options.pull, &set, offline);
    Ok((set, policy))
}

/// Every image the stack refers to present (recipes built only when referred to, archives
/// loaded, published images pulled by `policy`), and the overrides every image goes
/// through: the set's own, its extra ones (built where they name a context), then the
/// options'.
async fn prepare_images(
    docker: &Docker,
    spec: &StackSpec,
    images: &ImageSet,
    policy: PullPolicy,
    options: &LaunchOptions,
) -> Result<(ImageOverrides, LaunchReport), LaunchError> {
    let mut overrides = images.overrides();
    overrides.extend(&options.overrides);
    let from_lines = |context: &std::path::Path, dockerfile: Option<&str>, o: &ImageOverrides| {
        context_base_images(context, dockerfile, o).unwrap_or_default()
    };
    let wanted = resolve::wanted_images(spec, images, &overrides, &from_lines);
    let base = ensure_wanted(docker, images, policy, &wanted, options).await?;

    let mut overrides = images.overrides();
    for (from, target) in &images.extra {
        let to = match target {
            OverrideTarget::Image(i) => i.clone(),
            OverrideTarget::Build { context, wheels } => {
                let none = Default::default();
                let dir =
                    if wheels.is_empty() {
                        None
                    } else {
                        let cache = &options.build.cache_dir;
                        Some(packages::requirement_wheels(wheels, cache).await.map_err(
                            |error| {
                                let instance_id =
                                    format!("(image set override {from}, its wheels)");
                                LaunchError::AgentImage(AgentImageError { instance_id, error })
                            },
                        )?)
                    };
                let img =
                    build_agent_image(docker, context, None, &none, &overrides, dir.as_deref())
                        .await
                        .map_err(|error| {
                            let instance_id = format!("(image set override {from})");
                            LaunchError::AgentImage(AgentImageError { instance_id, error })
                        })?;
                record_built(&img.image, context, &overrides);
                img.image.to_string()
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
        built: base,
        ..LaunchReport::default()
    };
    Ok((overrides, report))
}

/// Make every wanted image present: the set's recipes (built), archives (loaded), anything
/// else by the pull policy. Returns what was built.
async fn ensure_wanted(
    docker: &Docker,
    set: &ImageSet,
    policy: PullPolicy,
    wanted: &[(ImageRef, Role, bool)],
    options: &LaunchOptions,
) -> Result<Vec<(String, Duration)>, LaunchError> {
    let recipe_ocs = set.ocs.image(&set.os_image());
    let recipe_crossbar = set.crossbar.image(&set.os_image());
    let mut recipes = (false, false);
    let mut built = Vec::new();
    let mut done: Vec<&ImageRef> = Vec::new();
    for (image, role, from_line) in wanted {
        if done.contains(&image) {
            continue;
        }
        done.push(image);
        if let Some(b) = ensure_service_recipe(docker, set, image, options).await? {
            built.extend(b);
            continue;
        }
        let archive = [&set.ocs_from, &set.crossbar_from]
            .into_iter()
            .find_map(|f| match f {
                BaseFrom::Archive { path, image: i } if i == image => Some(path),
                _ => None,
            });
        if set.ocs_from == BaseFrom::Recipe && *image == recipe_ocs {
            recipes.0 = true;
        } else if set.crossbar_from == BaseFrom::Recipe && *image == recipe_crossbar {
            recipes.1 = true;
        } else if let Some(path) = archive {
            pull::ensure_archive(docker, path, image).await?;
        } else if *from_line && policy == PullPolicy::Never {
            // Reported by the build with its Dockerfile line when absent.
            if images::image_exists(docker, image).await? {
                pull::record(&image.to_string(), Origin::Local);
            }
        } else {
            let creds = options.engine.config_dir.as_deref();
            pull::ensure_published(docker, image, policy, &role.to_string(), creds)
                .await
                .map_err(|e| match e {
                    ImageError::Missing(_) => LaunchError::Stack(StackError::ImageMissing {
                        image: image.to_string(),
                        role: role.clone(),
                        hint: pull::ways_out(&image.to_string()),
                    }),
                    e => LaunchError::Image(e),
                })?;
        }
    }
    if recipes != (false, false) {
        built.extend(build_base_recipes(docker, set, recipes, options).await?);
    }
    Ok(built)
}

/// Build the set's ocs and crossbar recipe images that are `wanted` and absent, and record
/// them as recipe-built. Returns what was built.
async fn build_base_recipes(
    docker: &Docker,
    set: &ImageSet,
    wanted: (bool, bool),
    options: &LaunchOptions,
) -> Result<Vec<(String, Duration)>, ImageError> {
    let base = ensure_recipes(docker, set, &options.build, wanted).await?;
    for (image, wanted) in [(&base.ocs, wanted.0), (&base.crossbar, wanted.1)] {
        if wanted {
            pull::record(&image.to_string(), Origin::RecipeBuilt);
        }
    }
    Ok(base.built)
}

/// When `image` is one of the set's service recipe images, build it if absent and return
/// what was built; `None` for any other image.
async fn ensure_service_recipe(
    docker: &Docker,
    set: &ImageSet,
    image: &ImageRef,
    options: &LaunchOptions,
) -> Result<Option<Vec<(String, Duration)>>, ImageError> {
    let recipes = set.service_recipes();
    let Some((recipe, _)) = recipes.iter().find(|(_, i)| i == image) else {
        return Ok(None);
    };
    let built = images::ensure_deb_recipe(docker, set, recipe, &options.build).await?;
    pull::record(&image.to_string(), Origin::RecipeBuilt);
    Ok(Some(built))
}

/// Record a built image with the bases of its context.
fn record_built(image: &ImageRef, context: &std::path::Path, overrides: &ImageOverrides) {
    let bases = context_base_images(context, None, overrides)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, b)| b.to_string())
        .collect();
    pull::record(&image.to_string(), Origin::Built(bases));
}

/// A published ocs-crossbar configures itself from `OCS_ADDRESS_ROOT`, `OCS_REALM` and
/// `OCS_PORT` (its `run-crossbar.sh` fills its own template from them): set them from the
/// stack, and mount the image's own template filled with them (valid for the crossbar the
/// image holds) instead of the config written for the recipe's crossbar 26.
async fn published_crossbar(docker: &Docker, plan: &mut StackPlan, spec: &StackSpec) {
    let port = crate::plan::CROSSBAR_PORT;
    let env = &mut plan.crossbar.env;
    env.insert("OCS_ADDRESS_ROOT".into(), spec.address_root.clone());
    env.insert("OCS_REALM".into(), spec.realm.clone());
    env.insert("OCS_PORT".into(), port.to_string());
    let image = plan.crossbar.image.clone();
    let name = format!("ocsh-{}-crossbar-template", plan.run_id);
    let helper = crossbar_image::Helper {
        name: &name,
        labels: &plan.labels,
    };
    let stack = (spec.realm.as_str(), spec.address_root.as_str(), port);
    match crossbar_image::own_config(docker, helper, &image, stack).await {
        Some(config) => plan.set_crossbar_config(config),
        None => notice::warn(&format!(
            "{image} holds no ocs-crossbar config template; using the harness's crossbar config"
        )),
    }
}

/// Every container's image with its origin: crossbar, the agents, the services.
fn proved(plan: &StackPlan) -> Vec<(String, String, String)> {
    std::iter::once(&plan.crossbar)
        .chain(plan.agents.iter().map(|a| &a.container))
        .chain(plan.services.iter().map(|s| &s.container))
        .map(|c| {
            let origin = pull::origin_of(&c.image).unwrap_or(Origin::Local);
            (c.role.to_string(), c.image.clone(), origin.to_string())
        })
        .collect()
}

/// Build (or find) the image of every agent and service given as a build context; the images
/// by instance-id (by name for a service). What was built goes into `report`.
async fn build_agents(
    docker: &Docker,
    spec: &StackSpec,
    overrides: &ImageOverrides,
    report: &mut LaunchReport,
) -> Result<BTreeMap<String, ImageRef>, LaunchError> {
    let agents = spec.agents.iter().filter_map(|a| match &a.image {
        ImageSource::Build {
            context,
            dockerfile,
            args,
        } => Some((
            a.instance_id.clone(),
            a.instance_id.clone(),
            context,
            dockerfile,
            args,
        )),
        ImageSource::Image(_) => None,
    });
    let services = spec.services.iter().filter_map(|s| {
        let b = s.build.as_ref()?;
        let who = format!("{} (a service)", s.name);
        Some((s.name.clone(), who, &b.context, &b.dockerfile, &b.args))
    });
    let mut built = BTreeMap::new();
    for (key, who, context, dockerfile, args) in agents.chain(services) {
        let bt = Instant::now();
        let args = args.clone().into_iter().collect();
        let img = build_agent_image(
            docker,
            context,
            dockerfile.as_deref(),
            &args,
            overrides,
            None,
        )
        .await
        .map_err(|error| {
            LaunchError::AgentImage(AgentImageError {
                instance_id: who.clone(),
                error,
            })
        })?;
        if img.built {
            report.built.push((img.image.to_string(), bt.elapsed()));
        }
        let bases = context_base_images(context, dockerfile.as_deref(), overrides)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, b)| b.to_string())
            .collect();
        pull::record(&img.image.to_string(), Origin::Built(bases));
        built.insert(key, img.image);
    }
    Ok(built)
}

/// The image of every agent with `packages`, with them added (built unless present), joins
/// `built`: the agent's built image, else its image after `overrides`, is the base.
async fn add_packages(
    docker: &Docker,
    spec: &StackSpec,
    overrides: &ImageOverrides,
    built: &mut BTreeMap<String, ImageRef>,
    report: &mut LaunchReport,
    cache: &std::path::Path,
) -> Result<(), LaunchError> {
    for agent in spec.agents.iter().filter(|a| !a.packages.is_empty()) {
        let id = &agent.instance_id;
        let base = match (&agent.image, built.get(id)) {
            (_, Some(b)) => b.clone(),
            (ImageSource::Image(i), None) => overrides.resolve(i),
            (ImageSource::Build { .. }, None) => return Err(PlanError::Unbuilt(id.clone()).into()),
        };
        let bt = Instant::now();
        let (image, was_built) = packages::with_packages(docker, &base, &agent.packages, cache)
            .await
            .map_err(|error| {
                let instance_id = id.clone();
                LaunchError::AgentPackages(AgentImageError { instance_id, error })
            })?;
        if was_built {
            report.built.push((image.to_string(), bt.elapsed()));
        }
        pull::record(&image.to_string(), Origin::Built(vec![base.to_string()]));
        built.insert(id.clone(), image);
    }
    Ok(())
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
    fn the_proved_line_names_the_set_and_every_image() {
        let r = LaunchReport {
            set: "upstream".into(),
            proved: vec![
                ("crossbar".into(), "a/x:1".into(), "pulled".into()),
                ("fake1".into(), "a/y:2".into(), "local".into()),
            ],
            ..LaunchReport::default()
        };
        assert_eq!(
            r.proved_line(),
            "images (upstream): crossbar=a/x:1 (pulled); fake1=a/y:2 (local)"
        );
        let absent = origin_text(None, &BaseFrom::Recipe, false, PullPolicy::Missing);
        assert_eq!(absent, "absent: built from the recipe when needed");
        let image = BaseFrom::Image(ImageRef::parse("a/x").unwrap());
        let absent = origin_text(None, &image, false, PullPolicy::Never);
        assert_eq!(absent, "absent: pulled when needed (pull policy never)");
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
