//! The `stack:` part of a scenario: crossbar, the registry, the user's site config, the
//! service containers (in `services`) and the agents (docker-compose keys for the container, SCF keys for the agent), with the checks on
//! instance-ids (valid for OCS, unique, not clashing with crossbar or the registry).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plan::{
    check_instance_id, host_manager_of, AgentSpec, HostedAgent, ImageSource, StackSpec,
    DEFAULT_HOSTNAME, HOST_MANAGER_CLASS,
};

use super::super::node::{Cx, Fields, Key, Kind, Node, Pos};
use super::super::{AgentSource, Budget};
use super::resolve_path;
use super::values::{parse_duration, parse_env_map, parse_image};

mod compose;
mod devices;
mod files;
mod services;

pub(super) use devices::{is_hex, responses as device_responses};

/// One device response (a `default-response`).
pub(super) fn device_response(cx: &mut Cx, v: &Node, raw: bool) -> Option<crate::device::Response> {
    devices::response(cx, v, raw, 0)
}

const STACK_KEYS: &[&str] = &[
    "crossbar",
    "registry",
    "site-config",
    "agents",
    "compose",
    "services",
    "devices",
    "ready-within",
];
const CROSSBAR_KEYS: &[&str] = &["image", "realm", "address-root"];
const REGISTRY_KEYS: &[&str] = &["image"];
const AGENT_KEYS: &[&str] = &[
    "instance-id",
    "agent-class",
    "build",
    "image",
    "arguments",
    "environment",
    "hostname",
    "command",
    "entrypoint",
    "files",
    "packages",
    "password",
    "ready-within",
    "manage",
];
/// Keys about an agent's own container: not for an agent a HostManager runs.
const CONTAINER_KEYS: &[&str] = &[
    "build",
    "image",
    "environment",
    "command",
    "entrypoint",
    "files",
    "packages",
    "ready-within",
];
const BUILD_KEYS: &[&str] = &["context", "dockerfile", "args"];

/// What the stack part yields besides the [`StackSpec`].
pub(super) struct StackOut {
    pub spec: StackSpec,
    pub site_config: Option<PathBuf>,
}

/// The error for a scenario without `stack:` (at the top-level mapping, `pos`).
pub(super) fn no_stack(cx: &mut Cx, pos: Pos) -> Option<StackOut> {
    let e = cx
        .err(pos, "the scenario has no `stack`", "expected `stack:`")
        .help(
            "add `stack:` with the agents to run, e.g.\n  stack:\n    agents:\n      - \
             instance-id: barebones1\n        agent-class: BarebonesAgent\n        \
             image: simonsobs/ocs:latest",
        );
    cx.fail(e)
}

pub(super) fn decode_stack(cx: &mut Cx, node: &Node, file: &Path) -> Option<StackOut> {
    let f = cx.fields(
        node,
        "`stack`",
        STACK_KEYS,
        "stack: {agents: [{instance-id: fake1, agent-class: FakeDataAgent, image: simonsobs/ocs:latest}]}",
    )?;
    let mut spec = StackSpec::default();
    let mut ok = true;
    if let Some(v) = f.get("ready-within") {
        cx.stack_ready_within = Some(ready_within(cx, v)?);
    }
    if let Some(v) = f.get("crossbar") {
        ok &= decode_crossbar(cx, v, &mut spec).is_some();
    }
    if let Some(v) = f.get("registry") {
        decode_registry(cx, v, &mut spec)?;
    }
    let site_config = match f.get("site-config") {
        Some(v) => {
            let s = cx.nonempty_string(v, "`site-config`", "site-config: ../fixtures/site.yaml")?;
            Some(resolve_path(file, &s))
        }
        None => None,
    };
    if let Some(v) = f.get("compose") {
        if let Some(k) = f.key("agents") {
            let e = cx
                .err(k.pos, "`agents` cannot be used together with `compose`", "second list of agents")
                .help("the agents come from the compose file's services; remove `agents`, or remove `compose` and list every agent here");
            return cx.fail(e);
        }
        let scf = f.get("site-config").zip(site_config.as_deref());
        ok &= compose::decode_compose(cx, v, scf, file, &mut spec).is_some();
        // A compose file that runs its own registry (as a site's does) replaces the built-in one.
        if spec.agents.iter().any(|a| a.instance_id == "registry") {
            match f.key("registry").filter(|_| spec.registry) {
                Some(k) => {
                    let e = cx
                        .err(k.pos, "the compose file runs its own registry (instance `registry`), and so does `registry` here", "a second registry")
                        .help("remove `registry` (or write `registry: false`): the compose file's registry agent is the stack's registry");
                    cx.errors.push(e);
                    ok = false;
                }
                None => spec.registry = false,
            }
        }
    }
    if let Some(v) = f.get("agents") {
        let Kind::Seq(items) = &v.kind else {
            return cx.type_error(
                v,
                "`agents`",
                "a list",
                "agents: [{instance-id: barebones1, agent-class: BarebonesAgent, image: simonsobs/ocs:latest}]",
            );
        };
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut hosted = Vec::new();
        for item in items {
            match decode_agent(cx, item, file, &spec, site_config.is_some(), &mut seen) {
                Some(Decoded::Run(a)) => spec.agents.push(*a),
                Some(Decoded::Hosted(h, pos)) => hosted.push((h, pos)),
                None => ok = false,
            }
        }
        ok &= check_hosted(cx, &spec, &hosted, f.key("site-config"));
        spec.hosted = hosted.into_iter().map(|(h, _)| h).collect();
    }
    if let Some(v) = f.get("services") {
        let mut taken = vec![crate::plan::CROSSBAR.to_string()];
        taken.extend(spec.registry.then(|| "registry".to_string()));
        taken.extend(spec.agents.iter().map(|a| a.instance_id.clone()));
        match services::decode_services(cx, v, &taken, file) {
            Some(s) => spec.services = s,
            None => ok = false,
        }
    }
    if let Some(v) = f.get("devices") {
        let mut taken = vec![crate::plan::CROSSBAR.to_string()];
        taken.extend(spec.registry.then(|| "registry".to_string()));
        let agents: Vec<String> = spec.agents.iter().map(|a| a.instance_id.clone()).collect();
        taken.extend(agents.iter().cloned());
        taken.extend(spec.services.iter().map(|s| s.name.clone()));
        match devices::decode_devices(cx, v, &taken, &agents, &spec.registry_image) {
            Some(d) => {
                // each device runs as a service, started first
                let services = std::mem::take(&mut spec.services);
                spec.services = d.iter().map(|d| d.service()).chain(services).collect();
                spec.devices = d;
            }
            None => ok = false,
        }
    }
    ok.then_some(StackOut { spec, site_config })
}

/// `registry: true | false | {image: ...}`.
fn decode_registry(cx: &mut Cx, v: &Node, spec: &mut StackSpec) -> Option<()> {
    match &v.kind {
        Kind::Bool(b) => spec.registry = *b,
        Kind::Map(_) => {
            let r = cx.fields(
                v,
                "`registry`",
                REGISTRY_KEYS,
                "registry: {image: simonsobs/ocs:latest}",
            )?;
            if let Some(img) = r.get("image") {
                spec.registry_image = parse_image(cx, img, "`registry.image`")?;
            }
            spec.registry = true;
        }
        _ => {
            return cx.type_error(
                v,
                "`registry`",
                "`true`, `false` or a mapping with `image`",
                "registry: {image: simonsobs/ocs:latest}",
            )
        }
    }
    Some(())
}

fn decode_crossbar(cx: &mut Cx, node: &Node, spec: &mut StackSpec) -> Option<()> {
    let f = cx.fields(
        node,
        "`crossbar`",
        CROSSBAR_KEYS,
        "crossbar: {realm: test_realm}",
    )?;
    if let Some(v) = f.get("image") {
        spec.crossbar_image = parse_image(cx, v, "`crossbar.image`")?;
    }
    if let Some(v) = f.get("realm") {
        let realm = cx.nonempty_string(v, "`realm`", "realm: test_realm")?;
        if let Some(c) = realm.chars().find(|c| c.is_whitespace() || *c == '#') {
            let e = cx
                .err(
                    v.pos,
                    format!("realm `{realm}` contains {c:?}, which crossbar rejects"),
                    "invalid realm",
                )
                .help("use letters, digits, '-', '_' and '.', e.g. `test_realm`");
            return cx.fail(e);
        }
        spec.realm = realm;
    }
    if let Some(v) = f.get("address-root") {
        let root = cx.string(v, "`address-root`", "address-root: observatory")?;
        if let Err(problem) = crate::ocs::validate_address_root(&root) {
            let e = cx
                .err(v.pos, problem, "invalid address root")
                .help("the address root is the first part of every agent's WAMP address, e.g. `observatory`");
            return cx.fail(e);
        }
        spec.address_root = root;
    }
    Some(())
}

/// An entry of `agents`: run by the harness in its own container, or by a HostManager.
enum Decoded {
    Run(Box<AgentSpec>),
    /// With where its `manage` value is written.
    Hosted(HostedAgent, Pos),
}

/// What an agent's `manage` says (SCF values and their aliases, as ocs maps them).
enum Manage {
    /// `ignore` / `no`: the harness runs it; a HostManager leaves it alone.
    Ignore,
    /// `host/up`, `host/down` and aliases: its host's HostManager runs it.
    Host { up: bool },
}

/// `manage`: how its host's HostManager treats the agent.
fn agent_manage(cx: &mut Cx, v: &Node) -> Option<Manage> {
    let m = cx.nonempty_string(v, "`manage`", "manage: host/down")?;
    let help_ways = "`host/up` or `host/down`: the HostManager of the agent's host runs it as a \
                     process in its own container (no container for the agent); `ignore`: the \
                     harness runs it in a container of its own, and the HostManager leaves it \
                     alone (the default)";
    match m.as_str() {
        "ignore" | "no" => Some(Manage::Ignore),
        "host/up" | "host" | "up" | "yes" => Some(Manage::Host { up: true }),
        "host/down" | "down" => Some(Manage::Host { up: false }),
        "docker" | "docker/up" | "docker/down" => {
            let e = cx
                .err(
                    v.pos,
                    format!("`manage: {m}` is not offered: a HostManager of the stack has no docker compose file to start agents with"),
                    "docker management",
                )
                .help(help_ways);
            cx.fail(e)
        }
        _ => {
            let e = cx
                .err(
                    v.pos,
                    format!("unknown `manage` value `{m}`"),
                    "not a manage value",
                )
                .help(help_ways);
            cx.fail(e)
        }
    }
}

/// Every hosted agent has a HostManager on its host and the stack has no site config of its
/// own (whose `manage` keys say who runs what).
fn check_hosted(
    cx: &mut Cx,
    spec: &StackSpec,
    hosted: &[(HostedAgent, Pos)],
    site_config: Option<&Key>,
) -> bool {
    let mut ok = true;
    for (h, pos) in hosted {
        let e = if site_config.is_some() {
            cx.err(
                *pos,
                format!(
                    "agent `{}` is for a HostManager to run, but the stack uses its own site config",
                    h.instance_id
                ),
                "not with `site-config`",
            )
            .help(
                "give the agent its `manage` in the site config file, and list under `agents` \
                 only the agents the harness runs in containers",
            )
        } else if host_manager_of(spec, &h.hostname).is_none() {
            cx.err(
                *pos,
                format!(
                    "no HostManager runs on host `{}` to run agent `{}` (manage: {})",
                    h.hostname,
                    h.instance_id,
                    h.manage()
                ),
                "no HostManager for this agent",
            )
            .help(format!(
                "add an agent with `agent-class: {HOST_MANAGER_CLASS}` and the same hostname \
                 (`{}`{}), or remove `manage` to run this agent in a container of its own",
                h.hostname,
                if h.hostname == DEFAULT_HOSTNAME {
                    ", the default"
                } else {
                    ""
                }
            ))
        } else {
            continue;
        };
        cx.errors.push(e);
        ok = false;
    }
    ok
}

/// An agent with `manage: host/...`: no container keys; its host's HostManager runs it.
fn decode_hosted(
    cx: &mut Cx,
    f: &Fields,
    instance_id: Option<String>,
    agent_class: Option<String>,
    up: bool,
) -> Option<Decoded> {
    let manage = f.get("manage").expect("hosted agents have `manage`");
    let who = instance_id
        .as_ref()
        .map_or("this agent".to_string(), |i| format!("agent `{i}`"));
    let mut ok = true;
    for k in CONTAINER_KEYS.iter().filter_map(|k| f.key(k)) {
        let e = cx
            .err(
                k.pos,
                format!(
                    "`{}` does not apply to {who}: a HostManager runs it, as a process in the \
                     HostManager's container (`manage` on line {})",
                    k.name, manage.pos.line
                ),
                "no container of its own",
            )
            .help(format!(
                "remove `{}` (give the HostManager agent what its agents need), or remove \
                 `manage` to run {who} in a container of its own",
                k.name
            ));
        cx.errors.push(e);
        ok = false;
    }
    if agent_class.as_deref() == Some(HOST_MANAGER_CLASS) {
        let e = cx
            .err(
                manage.pos,
                "a HostManager is not run by another HostManager (ocs ignores `manage` for one)",
                "not for a HostManager",
            )
            .help("remove `manage`: the harness runs each HostManager in its own container");
        cx.errors.push(e);
        ok = false;
    }
    let arguments = agent_arguments(cx, f, false);
    let hostname = agent_hostname(cx, f);
    let password_ok = agent_password(cx, f, instance_id.as_deref());
    if let Some(id) = &instance_id {
        let entry = f.get("instance-id").map(|v| v.pos).unwrap_or(f.pos());
        cx.agent_sources.insert(
            id.clone(),
            AgentSource {
                entry: entry.into(),
                image: manage.pos.into(),
                packages: manage.pos.into(),
            },
        );
    }
    let hosted = HostedAgent {
        instance_id: instance_id?,
        agent_class: agent_class?,
        arguments: arguments?,
        hostname: hostname?,
        up,
    };
    (ok && password_ok).then_some(Decoded::Hosted(hosted, manage.pos))
}

/// One entry of `agents`. Every part is decoded (and its errors recorded) even when another
/// part failed.
fn decode_agent(
    cx: &mut Cx,
    node: &Node,
    file: &Path,
    spec: &StackSpec,
    has_site_config: bool,
    seen: &mut BTreeMap<String, usize>,
) -> Option<Decoded> {
    let f = cx.fields(
        node,
        "an agent",
        AGENT_KEYS,
        "- instance-id: barebones1\n    agent-class: BarebonesAgent\n    image: simonsobs/ocs:latest",
    )?;
    let instance_id = agent_instance_id(cx, &f, spec, seen);
    let who = instance_id
        .as_ref()
        .map_or("this agent".to_string(), |i| format!("agent `{i}`"));
    let manage = match f.get("manage") {
        Some(v) => Some(agent_manage(cx, v)?),
        None => None,
    };
    if let Some(Manage::Host { up }) = manage {
        let agent_class = agent_class(cx, &f, &who, false);
        return decode_hosted(cx, &f, instance_id, agent_class, up);
    }
    let agent_class = agent_class(cx, &f, &who, has_site_config);
    let image = agent_image(cx, &f, &who, file);
    let arguments = agent_arguments(cx, &f, has_site_config);
    let environment = match f.get("environment") {
        Some(v) => parse_env_map(cx, v, "`environment`", true),
        None => Some(BTreeMap::new()),
    };
    let hostname = agent_hostname(cx, &f);
    let command = agent_command(cx, &f, "command");
    let entrypoint = agent_command(cx, &f, "entrypoint");
    let files = match f.get("files") {
        Some(v) => files::decode_files(cx, v, file, false),
        None => Some(Vec::new()),
    };
    let packages = agent_packages(cx, &f);
    let password_ok = agent_password(cx, &f, instance_id.as_deref());
    let ready_ok = match (f.get("ready-within"), &instance_id) {
        (Some(v), id) => match ready_within(cx, v) {
            Some(budget) => {
                if let Some(id) = id {
                    cx.ready_within.insert(id.clone(), budget);
                }
                true
            }
            None => false,
        },
        (None, _) => true,
    };
    if let Some(id) = &instance_id {
        let entry = f.get("instance-id").map(|v| v.pos).unwrap_or(f.pos());
        let image_pos = f.get("build").or(f.get("image")).map_or(entry, |v| v.pos);
        cx.agent_sources.insert(
            id.clone(),
            AgentSource {
                entry: entry.into(),
                image: image_pos.into(),
                packages: f.get("packages").map_or(image_pos, |v| v.pos).into(),
            },
        );
    }
    Some(Decoded::Run(Box::new(AgentSpec {
        instance_id: instance_id?,
        agent_class: agent_class?,
        arguments: arguments?,
        image: image?,
        hostname: hostname?,
        environment: environment?,
        command: command?,
        entrypoint: entrypoint?,
        files: files?,
        packages: packages?,
        container: Default::default(),
    })))
    .filter(|_| password_ok && ready_ok)
}

/// `ready-within`: how long an agent may take to register (from its container running to
/// answering `get_api`); shorter than the readiness deadline, which gives up first.
fn ready_within(cx: &mut Cx, v: &Node) -> Option<Budget> {
    let limit = parse_duration(cx, v, "`ready-within`", false)?;
    let deadline = crate::plan::DEFAULT_READY;
    if limit >= deadline {
        let shown = crate::wait::fmt_duration;
        let e = cx
            .err(
                v.pos,
                format!(
                    "`ready-within: {}` is not shorter than the readiness deadline ({})",
                    shown(limit),
                    shown(deadline)
                ),
                "this budget can never fail the run",
            )
            .help(
                "the deadline gives up on an agent first; `ready-within` says how long its \
                 registration should take, e.g. `ready-within: 20s`",
            );
        return cx.fail(e);
    }
    Some(Budget {
        limit,
        at: v.pos.into(),
    })
}

/// Record the agent's `password` (for the runner); whether it is well-formed.
fn agent_password(cx: &mut Cx, f: &Fields, id: Option<&str>) -> bool {
    let Some(v) = f.get("password") else {
        return true;
    };
    let Some(pw) = cx.string(v, "`password`", "password: ${FAKE_PASSWORD}") else {
        return false;
    };
    if let Some(id) = id {
        cx.passwords.insert(id.to_string(), pw);
    }
    true
}

/// `packages`: pinned package specs added to the agent's image (see `crate::packages`).
fn agent_packages(cx: &mut Cx, f: &Fields) -> Option<Vec<String>> {
    let Some(v) = f.get("packages") else {
        return Some(Vec::new());
    };
    let example = "packages: [so3g==0.2.9]";
    let Kind::Seq(items) = &v.kind else {
        return cx.type_error(v, "`packages`", "a list of pinned packages", example);
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(spec) = item.scalar_text() else {
            ok = false;
            let _: Option<()> = cx.type_error(item, "each package", "a string", example);
            continue;
        };
        if let Err(problem) = crate::packages::check_spec(&spec) {
            ok = false;
            let e = cx.err(item.pos, problem, "not a pinned package").help(
                "each package is `name==version` from the package index, fetched by this \
                 host's pip and installed into the agent's image",
            );
            let _: Option<()> = cx.fail(e);
            continue;
        }
        out.push(spec);
    }
    ok.then_some(out)
}

fn agent_instance_id(
    cx: &mut Cx,
    f: &Fields,
    spec: &StackSpec,
    seen: &mut BTreeMap<String, usize>,
) -> Option<String> {
    match f.get("instance-id") {
        Some(v) => check_agent_id(cx, v, spec, seen),
        None if f.misspelt("instance-id") => None,
        None => {
            let e = cx
                .err(
                    f.pos(),
                    "this agent has no `instance-id`",
                    "agent without instance-id",
                )
                .help("add `instance-id: <name>` (the agent's OCS address, e.g. `barebones1`)");
            cx.fail(e)
        }
    }
}

fn agent_class(cx: &mut Cx, f: &Fields, who: &str, has_site_config: bool) -> Option<String> {
    match f.get("agent-class") {
        Some(v) => cx.nonempty_string(v, "`agent-class`", "agent-class: BarebonesAgent"),
        None if has_site_config => Some(String::new()),
        None if f.misspelt("agent-class") => None,
        None => {
            let e = cx
                .err(
                    f.pos(),
                    format!("{who} has no `agent-class`"),
                    "agent without agent-class",
                )
                .help(
                    "add `agent-class: <class>` as in a site config file, e.g. \
                     `agent-class: BarebonesAgent`",
                );
            cx.fail(e)
        }
    }
}

/// `build` or `image`: exactly one of them.
fn agent_image(cx: &mut Cx, f: &Fields, who: &str, file: &Path) -> Option<ImageSource> {
    match (f.key("build"), f.key("image")) {
        (Some(b), Some(i)) => {
            let second: &Key = if (b.pos.line, b.pos.col) > (i.pos.line, i.pos.col) {
                b
            } else {
                i
            };
            let e = cx
                .err(
                    second.pos,
                    format!("{who} has both `build` and `image`"),
                    "give only one of these",
                )
                .help(
                    "keep `build: <dir>` to build the agent's Dockerfile, or `image: <name:tag>` \
                     to run an existing image",
                );
            cx.fail(e)
        }
        (None, None) if f.misspelt("build") || f.misspelt("image") => None,
        (None, None) => {
            let e = cx
                .err(
                    f.pos(),
                    format!("{who} has neither `build` nor `image`"),
                    "no image for this agent",
                )
                .help(
                    "add `build: <dir>` (a directory with a Dockerfile, relative to this file) or \
                     `image: <name:tag>`, e.g. `image: simonsobs/ocs:latest`",
                );
            cx.fail(e)
        }
        (Some(_), None) => decode_build(cx, f.get("build").expect("present"), file),
        (None, Some(_)) => {
            parse_image(cx, f.get("image").expect("present"), "`image`").map(ImageSource::Image)
        }
    }
}

fn agent_arguments(cx: &mut Cx, f: &Fields, has_site_config: bool) -> Option<Vec<String>> {
    match f.get("arguments") {
        Some(_) if has_site_config => {
            let k = f.key("arguments").expect("present");
            let e = cx
                .err(
                    k.pos,
                    "`arguments` cannot be used together with `stack.site-config`",
                    "arguments come from the site config",
                )
                .help("move these arguments to the agent's entry in the site config file");
            cx.fail(e)
        }
        Some(v) => cx.strings(v, "`arguments`", "arguments: [--mode, idle]", false),
        None => Some(Vec::new()),
    }
}

fn agent_hostname(cx: &mut Cx, f: &Fields) -> Option<String> {
    let Some(v) = f.get("hostname") else {
        return Some(DEFAULT_HOSTNAME.to_string());
    };
    let h = cx.nonempty_string(v, "`hostname`", "hostname: ocs-docker")?;
    if h.chars().any(char::is_whitespace) {
        let e = cx
            .err(
                v.pos,
                format!("hostname `{h}` contains whitespace"),
                "invalid hostname",
            )
            .help("use letters, digits and '-', e.g. `ocs-docker`");
        return cx.fail(e);
    }
    Some(h)
}

/// `command` or `entrypoint` (`key`): a list of words, or a string split at whitespace;
/// `Some(None)` when absent.
fn agent_command(cx: &mut Cx, f: &Fields, key: &str) -> Option<Option<Vec<String>>> {
    let Some(v) = f.get(key) else {
        return Some(None);
    };
    let (what, example) = match key {
        "entrypoint" => ("ENTRYPOINT", "entrypoint: [dumb-init, ocs-agent-cli]"),
        _ => (
            "CMD",
            "command: [--agent, /app/barebones_agent.py, --entrypoint, main]",
        ),
    };
    match &v.kind {
        Kind::Str(s) => {
            let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                let e = cx
                    .err(v.pos, format!("`{key}` must not be empty"), "empty")
                    .help(format!("remove `{key}` to keep the image's {what}"));
                cx.fail(e)
            } else {
                Some(Some(words))
            }
        }
        _ => cx.strings(v, &format!("`{key}`"), example, false).map(Some),
    }
}

fn check_agent_id(
    cx: &mut Cx,
    v: &Node,
    spec: &StackSpec,
    seen: &mut BTreeMap<String, usize>,
) -> Option<String> {
    let id = cx.string(v, "`instance-id`", "instance-id: barebones1")?;
    if let Err(invalid) = check_instance_id(&id) {
        let e = cx
            .err(v.pos, invalid.message(), "OCS rejects this id")
            .help(invalid.help);
        return cx.fail(e);
    }
    if id == "registry" && spec.registry {
        let e = cx
            .err(
                v.pos,
                "instance-id `registry` is taken by the registry agent the stack runs",
                "clashes with the registry",
            )
            .help("rename this agent, or turn the built-in registry off with `registry: false` under `stack`");
        return cx.fail(e);
    }
    if id == crate::plan::CROSSBAR {
        let e = cx
            .err(
                v.pos,
                "instance-id `crossbar` is the name of the crossbar container",
                "clashes with crossbar",
            )
            .help("rename this agent, e.g. `crossbar-agent`");
        return cx.fail(e);
    }
    if let Some(first) = seen.get(&id) {
        let e = cx
            .err(
                v.pos,
                format!(
                    "duplicate instance-id `{id}`: line {first} already defines an agent with it"
                ),
                "second agent with this id",
            )
            .help("instance-ids must be unique within the stack; rename one of the agents");
        return cx.fail(e);
    }
    seen.insert(id.clone(), v.pos.line);
    Some(id)
}

fn decode_build(cx: &mut Cx, node: &Node, file: &Path) -> Option<ImageSource> {
    if !matches!(node.kind, Kind::Map(_)) {
        let s = cx.nonempty_string(node, "`build`", "build: ../fixtures/agents/barebones")?;
        return Some(ImageSource::Build {
            context: resolve_path(file, &s),
            dockerfile: None,
            args: BTreeMap::new(),
        });
    }
    let f = cx.fields(
        node,
        "`build`",
        BUILD_KEYS,
        "build: {context: ../fixtures/agents/barebones, dockerfile: Dockerfile}",
    )?;
    let context = match f.get("context") {
        Some(v) => cx.nonempty_string(
            v,
            "`build.context`",
            "context: ../fixtures/agents/barebones",
        )?,
        None if f.misspelt("context") => return None,
        None => {
            let e = cx
                .err(f.pos(), "`build` has no `context`", "build without context")
                .help(
                    "add `context: <dir>`, the directory with the Dockerfile (relative to this file)",
                );
            return cx.fail(e);
        }
    };
    let dockerfile = match f.get("dockerfile") {
        Some(v) => Some(cx.nonempty_string(v, "`build.dockerfile`", "dockerfile: Dockerfile")?),
        None => None,
    };
    let args = match f.get("args") {
        Some(v) => parse_env_map(cx, v, "`build.args`", true)?,
        None => BTreeMap::new(),
    };
    Some(ImageSource::Build {
        context: resolve_path(file, &context),
        dockerfile,
        args,
    })
}
