//! Decoding the node tree into a [`Scenario`]. The parts: [`stack`] (the docker-compose and
//! SCF vocabulary: crossbar, registry, site-config, agents), [`steps`] (what makes a step: its
//! kind, its keys, its target) and [`step_kinds`] (one decoder per kind), [`expect`] (the
//! `expect:` mappings) and [`values`] (durations, images, environment maps). This file holds
//! the top level and the cross-checks between stack and steps ([`Names`]).

mod captures;
mod checks;
mod device;
mod exec;
mod expect;
mod feed;
mod stack;
mod step_kinds;
mod steps;
mod values;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::node::{Cx, Kind, Node, Pos};
use super::Scenario;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "images",
    "stack",
    "steps",
    "coverage",
    "log-policy",
    "shutdown",
    "code-coverage",
];

/// Known containers and ops, for checking step targets.
struct Names {
    /// instance-ids of the agents (including ones with other errors), in order.
    agents: Vec<String>,
    registry: bool,
    /// names of the service containers.
    services: Vec<String>,
    /// names of the emulated devices (also among `services`), each with whether it speaks
    /// raw bytes (`encoding: none`).
    devices: BTreeMap<String, bool>,
    /// agents a HostManager runs (no container of their own), with their HostManager's
    /// instance-id when the stack has one.
    hosted: BTreeMap<String, Option<String>>,
    /// ops seen per instance (from `api` expectations and other steps), for hints.
    ops: BTreeMap<String, Vec<String>>,
}

impl Names {
    /// What an op step may name: `registry` (if the stack runs it) and every agent.
    fn op_targets(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.registry {
            v.push("registry".to_string());
        }
        v.extend(self.agents.iter().cloned());
        v
    }

    /// `instance.op` with an op the file uses for `instance`, for hints.
    fn example_op(&self, instance: &str) -> String {
        match self.ops.get(instance).and_then(|o| o.first()) {
            Some(op) => format!("{instance}.{op}"),
            None if instance == "registry" => "registry.main".into(),
            None => format!("{instance}.<op>"),
        }
    }
}

/// `a/../b` -> `b`, dropping `.`; leading `..` are kept.
fn normalise(p: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// `rel` relative to the directory of the scenario file `file`.
pub(crate) fn resolve_path(file: &Path, rel: &str) -> PathBuf {
    let rel = Path::new(rel);
    if rel.is_absolute() {
        return normalise(rel);
    }
    let dir = file.parent().unwrap_or(Path::new(""));
    normalise(&dir.join(rel))
}

/// Default scenario name: the file name without `.example`, `.yaml`/`.yml`.
fn default_name(file: &Path) -> String {
    let mut name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "scenario".into());
    for suffix in [".example", ".yaml", ".yml"] {
        if let Some(stripped) = name.strip_suffix(suffix) {
            name = stripped.to_string();
        }
    }
    name
}

/// Decode a whole scenario. Errors are recorded in `cx`; `None` if there were any.
pub(crate) fn decode(cx: &mut Cx, root: Option<&Node>, file: &Path) -> Option<Scenario> {
    let Some(root) = root else {
        let e = cx
            .err(
                Pos {
                    line: 1,
                    col: 1,
                    width: 1,
                },
                "the scenario file is empty",
                "nothing here",
            )
            .help("a scenario needs at least `stack:` with its agents; see scenarios/reference.yaml.example");
        return cx.fail(e);
    };
    let f = cx.fields(
        root,
        "the top-level mapping",
        TOP_KEYS,
        "stack: {agents: []}",
    )?;
    let name = match f.get("name") {
        Some(v) => cx.nonempty_string(v, "`name`", "name: barebones"),
        None => Some(default_name(file)),
    };
    let description = match f.get("description") {
        Some(v) => cx
            .string(v, "`description`", "description: what it shows")
            .map(Some),
        None => Some(None),
    };
    let image_set = match f.get("images") {
        Some(v) => image_set(cx, v, file).map(Some),
        None => Some(None),
    };
    let stack = match f.get("stack") {
        Some(v) => stack::decode_stack(cx, v, file),
        None => stack::no_stack(cx, f.pos()),
    };
    // Names for checking steps, even when parts of the stack had errors.
    let mut names = Names {
        agents: names_in(f.get("stack"), "agents", "instance-id"),
        registry: stack.as_ref().is_none_or(|s| s.spec.registry),
        services: names_in(f.get("stack"), "services", "name")
            .into_iter()
            .chain(names_in(f.get("stack"), "devices", "name"))
            .collect(),
        devices: match &stack {
            Some(s) => s
                .spec
                .devices
                .iter()
                .map(|d| (d.name.clone(), d.encoding.is_none()))
                .collect(),
            None => names_in(f.get("stack"), "devices", "name")
                .into_iter()
                .map(|n| (n, false))
                .collect(),
        },
        hosted: stack.as_ref().map_or_else(BTreeMap::new, |s| {
            s.spec
                .hosted
                .iter()
                .map(|h| {
                    let hm = crate::plan::host_manager_of(&s.spec, &h.hostname);
                    (h.instance_id.clone(), hm.map(str::to_string))
                })
                .collect()
        }),
        ops: BTreeMap::new(),
    };
    // agents that come from elsewhere than `agents:` (a compose file)
    let more: Vec<String> = cx
        .agent_sources
        .keys()
        .filter(|id| !names.agents.contains(id))
        .cloned()
        .collect();
    names.agents.extend(more);
    names
        .services
        .extend(std::mem::take(&mut cx.compose_services));
    let steps = match f.get("steps") {
        Some(v) => steps::decode_steps(cx, v, &mut names),
        None => Some(Vec::new()),
    };
    let checks = checks::decode_checks(cx, &f);
    let code_coverage = match f.get("code-coverage") {
        Some(v) => checks::code_coverage(cx, v).map(Some),
        None => Some(None),
    };
    let (name, description, stack, steps) = (name?, description?, stack?, steps?);
    let image_set = image_set?;
    let checks = checks?;
    let code_coverage = code_coverage?;
    if !cx.errors.is_empty() {
        return None;
    }
    let mut exec_images: Vec<crate::overrides::ImageRef> = Vec::new();
    for s in &steps {
        if let super::StepKind::Exec(e) = &s.kind {
            if let super::ExecTarget::Image { image, .. } = &e.target {
                if !exec_images.contains(image) {
                    exec_images.push(image.clone());
                }
            }
        }
    }
    Some(Scenario {
        name,
        path: file.to_path_buf(),
        description,
        stack: crate::plan::StackSpec {
            image_set,
            exec_images,
            code_coverage,
            ..stack.spec
        },
        site_config: stack.site_config,
        steps,
        checks,
        source: String::new(),
        agent_sources: Default::default(),
        passwords: Default::default(),
    })
}

/// `images:`: an image set file (relative to the scenario file) or a bundled set (`upstream`,
/// `local`, `auto`), read now so that a mistake in it points here.
fn image_set(cx: &mut Cx, v: &Node, file: &Path) -> Option<PathBuf> {
    let text = cx.nonempty_string(v, "`images`", "images: ../images/ocs-0.11.3.yaml")?;
    let path = resolve_path(file, &text);
    let words = ["upstream", "local", "auto"];
    let path = if words.contains(&text.as_str()) && !path.exists() {
        PathBuf::from(&text)
    } else {
        path
    };
    if let Err(e) = crate::imageset::load(&path) {
        let label = if path.exists() {
            "unusable image set"
        } else {
            "no such image set"
        };
        let e = cx.err(v.pos, e.to_string(), label).help(
            "`images` names an image set file, relative to this scenario file (e.g. \
             `../images/ocs-0.11.3.yaml`), or a bundled set: upstream, local or auto; \
             `--images` / OCS_HARNESS_IMAGES on the command line win over it",
        );
        return cx.fail(e);
    }
    Some(path)
}

/// The `key` strings of every mapping in the `list` of `stack` (the agents' instance-ids, the
/// services' names), however broken the rest is.
fn names_in(stack: Option<&Node>, list: &str, key: &str) -> Vec<String> {
    let Some(Node {
        kind: Kind::Map(entries),
        ..
    }) = stack
    else {
        return Vec::new();
    };
    let Some((_, items)) = entries.iter().find(|(k, _)| k.name == list) else {
        return Vec::new();
    };
    let Kind::Seq(items) = &items.kind else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|a| match &a.kind {
            Kind::Map(e) => e
                .iter()
                .find(|(k, _)| k.name == key)
                .and_then(|(_, v)| v.scalar_text()),
            _ => None,
        })
        .collect()
}
