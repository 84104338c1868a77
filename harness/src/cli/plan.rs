//! `ocs-harness plan [PATH|NAME]...`: what a run of each selected scenario would start, without Docker, like
//! `docker compose config`: images after overrides and where each comes from, container
//! names, environment, commands, files copied in, the generated site config and crossbar config.
//! Built agent images are content-addressed from the build context at run time, so the plan
//! names the context and the Dockerfile's `FROM` rewrites instead of the tag.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::imageset::ImageSet;
use crate::overrides::ImageRef;
use crate::plan::{plan_stack, ContainerPlan, ImageSource, StackPlan};
use crate::runtime::LaunchOptions;
use crate::scenario::Scenario;
use serde::Serialize;

use super::exit::{Classify, CliError};

#[derive(Serialize)]
struct Printed {
    scenario: String,
    file: String,
    image_set: String,
    images: Vec<ImageLine>,
    network: String,
    containers: Vec<Container>,
    /// Agents a HostManager runs in its container (no container of their own).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    run_by_host_managers: Vec<String>,
    /// Where its crossbar comes from under `test --crossbar shared`.
    crossbar_when_shared: String,
    site_config: String,
    crossbar_config: String,
}

#[derive(Serialize)]
struct ImageLine {
    role: String,
    image: String,
    /// Where it comes from: as written, an override, or a build.
    from: String,
}

#[derive(Serialize)]
struct Container {
    name: String,
    role: String,
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<Vec<String>>,
    /// Words run before the container's own command (an agent's serial relay).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    before_its_command: Vec<String>,
    /// Files copied in through the engine's API (nothing is bind-mounted).
    files: Vec<String>,
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<crate::service::Healthcheck>,
    /// A service's readiness (services start first, each once those it depends on are ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    ready: Option<String>,
}

use crate::images::resolve::{self, unbuilt};

fn origin(written: &ImageRef, resolved: &str, set: &str) -> String {
    if written.to_string() == resolved {
        format!("{written} as written (must be present locally)")
    } else {
        format!("{written}, overridden by the image set {set}")
    }
}

/// The plan of `scenario` (YAML).
pub fn plan(scenario: &Scenario, images: Option<PathBuf>) -> Result<String, CliError> {
    let mut options = LaunchOptions::with_settings(&scenario.name, super::settings());
    if images.is_some() {
        options.images_file = images;
    }
    let named = scenario.stack.image_set.as_deref();
    let set = match resolve::choose(options.images_file.as_deref(), &options.images, named) {
        resolve::SetChoice::Named(f) => crate::imageset::load(&f).bad_input()?,
        // Without an engine, `auto` is not decided: the default set.
        resolve::SetChoice::Given | resolve::SetChoice::Unnamed => options.images.clone(),
    };
    let overrides = crate::images::planned_overrides(&set, &options.overrides)
        .map_err(anyhow::Error::msg)
        .bad_input()?;
    let spec = scenario.stack_spec();
    let mut built = BTreeMap::new();
    let mut images = Vec::new();
    for agent in &spec.agents {
        if let ImageSource::Build {
            context,
            dockerfile,
            ..
        } = &agent.image
        {
            built.insert(agent.instance_id.clone(), unbuilt(context));
            let name = dockerfile.as_deref().unwrap_or("Dockerfile");
            let from = match std::fs::read_to_string(context.join(name)) {
                Ok(text) => {
                    let (_, rewrites) = overrides.rewrite_dockerfile(&text);
                    let mut s = format!("build of {} ({name})", context.display());
                    for (line, from, to) in rewrites {
                        s.push_str(&format!("; {name}:{line}: FROM {from} -> {to}"));
                    }
                    s
                }
                Err(e) => format!(
                    "build of {} ({name} cannot be read: {e})",
                    context.display()
                ),
            };
            images.push(ImageLine {
                role: agent.instance_id.clone(),
                image: "built at run time, tagged by content".into(),
                from,
            });
        }
    }
    for s in &spec.services {
        if let Some(b) = &s.build {
            built.insert(s.name.clone(), unbuilt(&b.context));
            images.push(ImageLine {
                role: s.name.clone(),
                image: "built at run time, tagged by content".into(),
                from: format!("build of {}", b.context.display()),
            });
        }
    }
    let user_scf = match &spec.site_config {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("site config {}: cannot be read: {e}", p.display()))
                .bad_input()?,
        ),
        None => None,
    };
    let run_id = crate::plan::new_run_id();
    let mut plan = plan_stack(
        &spec,
        &run_id,
        &scenario.name,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        &overrides,
        &built,
        user_scf.as_deref(),
    )
    .bad_input()?;
    // the image set's code coverage, as the launch applies it
    if let Some(cc) = plan.code_coverage.clone().or(set.code_coverage.clone()) {
        plan.add_code_coverage(&cc);
    }
    Ok(render(scenario, &set, &spec, &plan, images))
}

fn container(c: &ContainerPlan) -> Container {
    Container {
        name: c.name.clone(),
        role: c.role.clone(),
        image: c.image.clone(),
        hostname: c.hostname.clone(),
        environment: c.env.clone(),
        entrypoint: c.entrypoint.clone(),
        command: c.cmd.clone(),
        before_its_command: c.wrap.clone(),
        files: c
            .files
            .iter()
            .map(|f| format!("{} -> {} (copied in)", f.what, f.path))
            .collect(),
        labels: c.labels.clone(),
        user: c.user.clone(),
        working_dir: c.working_dir.clone(),
        healthcheck: c.healthcheck.clone(),
        ready: None,
    }
}

/// Where the run's crossbar comes from under `test --crossbar shared` (a run kept after a
/// failure, or run by `compare`, also gets its own).
fn when_shared(scenario: &Scenario, spec: &crate::plan::StackSpec, set: &ImageSet) -> String {
    let own = scenario
        .own_crossbar()
        .or_else(|| crate::runtime::hub::own_crossbar(spec, set));
    match own {
        Some(why) => format!("a crossbar of its own: {why}"),
        None => "a realm on the worker's crossbar, connected to the network as crossbar's name                  above (the site config names that realm)"
            .into(),
    }
}

fn render(
    scenario: &Scenario,
    set: &ImageSet,
    spec: &crate::plan::StackSpec,
    plan: &StackPlan,
    mut built: Vec<ImageLine>,
) -> String {
    let mut images = vec![ImageLine {
        role: "crossbar".into(),
        image: plan.crossbar.image.clone(),
        from: origin(&spec.crossbar_image, &plan.crossbar.image, &set.name),
    }];
    for a in &plan.agents {
        let written = if a.instance_id == "registry" && spec.registry {
            Some(spec.registry_image.clone())
        } else {
            spec.agents
                .iter()
                .find(|s| s.instance_id == a.instance_id)
                .and_then(|s| match &s.image {
                    ImageSource::Image(r) => Some(r.clone()),
                    ImageSource::Build { .. } => None,
                })
        };
        if let Some(w) = written {
            images.push(ImageLine {
                role: a.instance_id.clone(),
                image: a.container.image.clone(),
                from: origin(&w, &a.container.image, &set.name),
            });
        }
    }
    images.append(&mut built);
    for s in &plan.services {
        let written = spec.services.iter().find(|w| w.name == s.name);
        if let Some(w) = written.filter(|w| w.build.is_none()) {
            images.push(ImageLine {
                role: s.name.clone(),
                image: s.container.image.clone(),
                from: origin(&w.image, &s.container.image, &set.name),
            });
        }
    }
    let mut containers: Vec<Container> = plan
        .services
        .iter()
        .map(|s| {
            let mut c = container(&s.container);
            if c.image.starts_with("<built from") {
                c.image = "built at run time (see images)".into();
            }
            c.ready = Some(match &s.ready {
                Some(r) => format!(
                    "{} (within {})",
                    r.check,
                    crate::wait::fmt_duration(r.timeout)
                ),
                None => "as soon as it runs".into(),
            });
            c
        })
        .collect();
    containers.push(container(&plan.crossbar));
    for a in &plan.agents {
        let mut c = container(&a.container);
        if c.image.starts_with("<built from") {
            c.image = "built at run time (see images)".into();
        }
        containers.push(c);
    }
    for s in &plan.services {
        containers.push(container(&s.container));
    }
    let printed = Printed {
        scenario: scenario.name.clone(),
        file: scenario.path.display().to_string(),
        image_set: set.name.clone(),
        images,
        network: plan.network.clone(),
        containers,
        run_by_host_managers: plan
            .hosted
            .iter()
            .map(|h| {
                format!(
                    "{} ({}): a process in the container of HostManager {} (manage: {})",
                    h.instance_id, h.agent_class, h.host_manager, h.manage
                )
            })
            .collect(),
        crossbar_when_shared: when_shared(scenario, spec, set),
        site_config: plan.site_config.clone(),
        crossbar_config: plan.crossbar_config.clone(),
    };
    let body = serde_saphyr::to_string(&printed).unwrap_or_else(|e| format!("# {e}\n"));
    format!(
        "# ocs-harness plan: what a run of {} would start; nothing was started.\n\
         # Names carry a run id that is new for every run ({}).\n{body}",
        scenario.path.display(),
        plan.run_id
    )
}
