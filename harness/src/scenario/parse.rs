//! Decoding the node tree into a [`Scenario`]: the stack (docker-compose and SCF vocabulary),
//! the steps, and the cross-checks between them (unique and valid instance-ids, steps naming
//! agents that exist).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::overrides::ImageRef;
use crate::plan::{check_instance_id, AgentSpec, ImageSource, StackSpec, DEFAULT_HOSTNAME};

use super::error::{closest, list_names};
use super::expect::{
    parse_api_expect, parse_regex_list, parse_reply_expect, ApiExpect, LogWindow, LogsCheck,
    ReplyExpect, DEFAULT_LOGS_TIMEOUT,
};
use super::node::{Cx, Fields, Key, Kind, Node, Pos};
use super::{Fault, FaultAction, OpAction, Scenario, Step, StepKind, UntilTarget};

const TOP_KEYS: &[&str] = &["name", "description", "stack", "steps"];
const STACK_KEYS: &[&str] = &["crossbar", "registry", "site-config", "agents"];
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
];
const BUILD_KEYS: &[&str] = &["context", "dockerfile", "args"];

/// The step kinds, in the order they are suggested.
pub(crate) const STEP_KINDS: &[&str] = &[
    "api", "start", "status", "wait", "stop", "abort", "until", "logs", "fault", "exits",
];
const LOGS_KEYS: &[&str] = &[
    "name", "logs", "window", "timeout", "contains", "regex", "lines", "absent", "allow",
];

/// The keys a step of `kind` accepts.
fn step_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "api" => &["name", "api", "expect"],
        "start" => &["name", "start", "params", "expect"],
        "status" => &["name", "status", "expect"],
        "stop" => &["name", "stop", "expect"],
        "abort" => &["name", "abort", "expect"],
        "wait" => &["name", "wait", "timeout", "expect"],
        "until" => &["name", "until", "timeout", "expect"],
        "fault" => &["name", "fault", "container", "signal", "for", "timeout"],
        "exits" => &["name", "exits", "timeout", "code"],
        _ => LOGS_KEYS,
    }
}

/// Every key some step accepts.
fn any_step_key(key: &str) -> bool {
    STEP_KINDS
        .iter()
        .any(|k| step_keys(k).contains(&key) && !STEP_KINDS.contains(&key))
}

/// Longest timeout accepted anywhere.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

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

/// Decode a duration: `20s`, `500ms`, `2m`, `1h`, or a number of seconds. Negative, over an
/// hour, or (unless `allow_zero`) zero is an "absurd timeout".
pub(crate) fn parse_duration(
    cx: &mut Cx,
    node: &Node,
    what: &str,
    allow_zero: bool,
) -> Option<Duration> {
    const HELP: &str = "write e.g. `20s`, `500ms`, `2m`, or a number of seconds";
    let (secs, shown) = match &node.kind {
        Kind::Num(n) => (n.as_f64().unwrap_or(f64::NAN), node.raw.clone()),
        Kind::Str(s) => {
            let t = s.trim();
            let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
            let (num, unit) = (t[..split].trim(), t[split..].trim());
            let scale = match unit {
                "ms" => Some(0.001),
                "s" | "" => Some(1.0),
                "m" | "min" => Some(60.0),
                "h" => Some(3600.0),
                _ => None,
            };
            match (num.parse::<f64>(), scale) {
                (Ok(n), Some(scale)) if n.is_finite() => (n * scale, t.to_string()),
                _ => {
                    let e = cx
                        .err(
                            node.pos,
                            format!("{what}: `{t}` is not a duration"),
                            "expected a duration",
                        )
                        .help(HELP);
                    return cx.fail(e);
                }
            }
        }
        _ => return cx.type_error(node, what, "a duration", "timeout: 20s"),
    };
    let problem = if secs.is_nan() {
        Some("it is not a number")
    } else if secs < 0.0 {
        Some("it is negative")
    } else if secs == 0.0 && !allow_zero {
        Some("it is zero, so it would give up before anything could happen")
    } else if secs > MAX_TIMEOUT.as_secs_f64() {
        Some("it is over 1 hour")
    } else {
        None
    };
    if let Some(problem) = problem {
        let e = cx
            .err(
                node.pos,
                format!("absurd timeout `{shown}`: {problem}"),
                "absurd timeout",
            )
            .help(format!(
                "{HELP}; {} and at most 1 hour",
                if allow_zero {
                    "0 or more"
                } else {
                    "more than 0"
                }
            ));
        return cx.fail(e);
    }
    Some(Duration::from_secs_f64(secs))
}

/// An image reference.
fn parse_image(cx: &mut Cx, node: &Node, what: &str) -> Option<ImageRef> {
    let s = cx.nonempty_string(node, what, "image: simonsobs/ocs:latest")?;
    match ImageRef::parse(&s) {
        Ok(r) => Some(r),
        Err(problem) => {
            let e = cx
                .err(
                    node.pos,
                    format!("{what}: {problem}"),
                    "not an image reference",
                )
                .help("write `repository[:tag]`, e.g. `simonsobs/ocs:latest`");
            cx.fail(e)
        }
    }
}

/// A string-to-string mapping, or a compose-style list of `KEY=VALUE`.
fn parse_env_map(
    cx: &mut Cx,
    node: &Node,
    what: &str,
    list_ok: bool,
) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match &node.kind {
        Kind::Map(entries) => {
            let mut ok = true;
            for (k, v) in entries {
                match v.scalar_text() {
                    Some(s) => {
                        out.insert(k.name.clone(), s);
                    }
                    None if matches!(v.kind, Kind::Null) => {
                        ok = false;
                        let e = cx
                            .err(
                                k.pos,
                                format!("{what}: `{}` has no value", k.name),
                                "no value",
                            )
                            .help(format!(
                                "write `{0}: value`; docker-compose would pass `{0}` through from \
                                 the host, the harness does not: write `{0}: ${{{0}}}` for that",
                                k.name
                            ));
                        cx.errors.push(e);
                    }
                    None => {
                        ok = false;
                        let e = cx
                            .err(
                                v.pos,
                                format!(
                                    "{what}: the value of `{}` must be a string, but this is {}",
                                    k.name,
                                    v.describe()
                                ),
                                "expected a string",
                            )
                            .help(format!("write e.g. `{}: info`", k.name));
                        cx.errors.push(e);
                    }
                }
            }
            ok.then_some(out)
        }
        Kind::Seq(items) if list_ok => {
            let mut ok = true;
            for item in items {
                let Some(s) = item.scalar_text() else {
                    ok = false;
                    let _: Option<()> = cx.type_error(
                        item,
                        &format!("each item of {what}"),
                        "a `KEY=VALUE` string",
                        "- LOGLEVEL=debug",
                    );
                    continue;
                };
                match s.split_once('=') {
                    Some((k, v)) if !k.is_empty() => {
                        out.insert(k.to_string(), v.to_string());
                    }
                    _ => {
                        ok = false;
                        let e = cx
                            .err(
                                item.pos,
                                format!("{what}: `{s}` is not `KEY=VALUE`"),
                                "expected KEY=VALUE",
                            )
                            .help(format!(
                                "write `{s}=value`; docker-compose would pass `{s}` through from \
                                 the host, the harness does not: write `{s}=${{{s}}}` for that"
                            ));
                        cx.errors.push(e);
                    }
                }
            }
            ok.then_some(out)
        }
        _ => cx.type_error(
            node,
            what,
            if list_ok {
                "a mapping or a list of `KEY=VALUE`"
            } else {
                "a mapping"
            },
            "environment: {LOGLEVEL: debug}",
        ),
    }
}

/// What the stack part yields besides the [`StackSpec`].
struct StackOut {
    spec: StackSpec,
    site_config: Option<PathBuf>,
}

/// Known containers and ops, for checking step targets.
struct Names {
    /// instance-ids of the agents (including ones with other errors), in order.
    agents: Vec<String>,
    registry: bool,
    /// ops seen per instance (from `api` expectations and other steps), for hints.
    ops: BTreeMap<String, Vec<String>>,
}

impl Names {
    fn op_targets(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.registry {
            v.push("registry".to_string());
        }
        v.extend(self.agents.iter().cloned());
        v
    }

    fn example_op(&self, instance: &str) -> String {
        match self.ops.get(instance).and_then(|o| o.first()) {
            Some(op) => format!("{instance}.{op}"),
            None if instance == "registry" => "registry.main".into(),
            None => format!("{instance}.<op>"),
        }
    }
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
    let stack = match f.get("stack") {
        Some(v) => decode_stack(cx, v, file),
        None => {
            let e = cx
                .err(f.pos(), "the scenario has no `stack`", "expected `stack:`")
                .help(
                    "add `stack:` with the agents to run, e.g.\n  stack:\n    agents:\n      - \
                     instance-id: barebones1\n        agent-class: BarebonesAgent\n        \
                     image: simonsobs/ocs:latest",
                );
            cx.fail(e)
        }
    };
    // Names for checking steps, even when parts of the stack had errors.
    let mut names = Names {
        agents: agent_ids(f.get("stack")),
        registry: stack.as_ref().is_none_or(|s| s.spec.registry),
        ops: BTreeMap::new(),
    };
    let steps = match f.get("steps") {
        Some(v) => decode_steps(cx, v, &mut names),
        None => Some(Vec::new()),
    };
    let (name, description, stack, steps) = (name?, description?, stack?, steps?);
    if !cx.errors.is_empty() {
        return None;
    }
    Some(Scenario {
        name,
        path: file.to_path_buf(),
        description,
        stack: stack.spec,
        site_config: stack.site_config,
        steps,
        source: String::new(),
        agent_sources: Default::default(),
    })
}

/// The instance-id strings of every agent mapping, however broken the rest is.
fn agent_ids(stack: Option<&Node>) -> Vec<String> {
    let Some(Node {
        kind: Kind::Map(entries),
        ..
    }) = stack
    else {
        return Vec::new();
    };
    let Some((_, agents)) = entries.iter().find(|(k, _)| k.name == "agents") else {
        return Vec::new();
    };
    let Kind::Seq(items) = &agents.kind else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|a| match &a.kind {
            Kind::Map(e) => e
                .iter()
                .find(|(k, _)| k.name == "instance-id")
                .and_then(|(_, v)| v.scalar_text()),
            _ => None,
        })
        .collect()
}

fn decode_stack(cx: &mut Cx, node: &Node, file: &Path) -> Option<StackOut> {
    let f = cx.fields(
        node,
        "`stack`",
        STACK_KEYS,
        "stack: {agents: [{instance-id: fake1, agent-class: FakeDataAgent, image: simonsobs/ocs:latest}]}",
    )?;
    let mut spec = StackSpec::default();
    let mut ok = true;
    if let Some(v) = f.get("crossbar") {
        ok &= decode_crossbar(cx, v, &mut spec).is_some();
    }
    if let Some(v) = f.get("registry") {
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
    }
    let site_config = match f.get("site-config") {
        Some(v) => {
            let s = cx.nonempty_string(v, "`site-config`", "site-config: ../fixtures/site.yaml")?;
            Some(resolve_path(file, &s))
        }
        None => None,
    };
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
        for item in items {
            match decode_agent(cx, item, file, &spec, site_config.is_some(), &mut seen) {
                Some(a) => spec.agents.push(a),
                None => ok = false,
            }
        }
    }
    ok.then_some(StackOut { spec, site_config })
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

fn decode_agent(
    cx: &mut Cx,
    node: &Node,
    file: &Path,
    spec: &StackSpec,
    has_site_config: bool,
    seen: &mut BTreeMap<String, usize>,
) -> Option<AgentSpec> {
    let f = cx.fields(
        node,
        "an agent",
        AGENT_KEYS,
        "- instance-id: barebones1\n    agent-class: BarebonesAgent\n    image: simonsobs/ocs:latest",
    )?;
    let instance_id = match f.get("instance-id") {
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
    };
    let who = instance_id
        .as_ref()
        .map_or("this agent".to_string(), |i| format!("agent `{i}`"));
    let agent_class = match f.get("agent-class") {
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
    };
    let image = match (f.key("build"), f.key("image")) {
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
    };
    let arguments = match f.get("arguments") {
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
    };
    let environment = match f.get("environment") {
        Some(v) => parse_env_map(cx, v, "`environment`", true),
        None => Some(BTreeMap::new()),
    };
    let hostname = match f.get("hostname") {
        Some(v) => cx
            .nonempty_string(v, "`hostname`", "hostname: ocs-docker")
            .and_then(|h| {
                if h.chars().any(char::is_whitespace) {
                    let e = cx
                        .err(
                            v.pos,
                            format!("hostname `{h}` contains whitespace"),
                            "invalid hostname",
                        )
                        .help("use letters, digits and '-', e.g. `ocs-docker`");
                    cx.fail(e)
                } else {
                    Some(h)
                }
            }),
        None => Some(DEFAULT_HOSTNAME.to_string()),
    };
    let command = match f.get("command") {
        Some(v) => match &v.kind {
            Kind::Str(s) => {
                let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
                if words.is_empty() {
                    let e = cx
                        .err(v.pos, "`command` must not be empty", "empty")
                        .help("remove `command` to keep the image's CMD");
                    cx.fail(e)
                } else {
                    Some(Some(words))
                }
            }
            _ => cx
                .strings(
                    v,
                    "`command`",
                    "command: [--agent, /app/barebones_agent.py, --entrypoint, main]",
                    false,
                )
                .map(Some),
        },
        None => Some(None),
    };
    if let Some(id) = &instance_id {
        let entry = f.get("instance-id").map(|v| v.pos).unwrap_or(f.pos());
        let image_pos = f.get("build").or(f.get("image")).map_or(entry, |v| v.pos);
        cx.agent_sources.insert(
            id.clone(),
            super::AgentSource {
                entry: entry.into(),
                image: image_pos.into(),
            },
        );
    }
    Some(AgentSpec {
        instance_id: instance_id?,
        agent_class: agent_class?,
        arguments: arguments?,
        image: image?,
        hostname: hostname?,
        environment: environment?,
        command: command?,
    })
}

fn check_agent_id(
    cx: &mut Cx,
    v: &Node,
    spec: &StackSpec,
    seen: &mut BTreeMap<String, usize>,
) -> Option<String> {
    let id = cx.string(v, "`instance-id`", "instance-id: barebones1")?;
    if let Err(problem) = check_instance_id(&id) {
        // `problem` is "<what is wrong>; <what to write>"
        let (what, fix) = problem.split_once("; ").unwrap_or((
            &problem,
            "use letters, digits, '-' or '_', e.g. `barebones1`",
        ));
        let e = cx
            .err(
                v.pos,
                format!("invalid instance-id `{id}`: it {what}"),
                "OCS rejects this id",
            )
            .help(fix);
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
    if id == "crossbar" {
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
    match &node.kind {
        Kind::Map(_) => {
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
                        .help("add `context: <dir>`, the directory with the Dockerfile (relative to this file)");
                    return cx.fail(e);
                }
            };
            let dockerfile = match f.get("dockerfile") {
                Some(v) => {
                    Some(cx.nonempty_string(v, "`build.dockerfile`", "dockerfile: Dockerfile")?)
                }
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
        _ => {
            let s = cx.nonempty_string(node, "`build`", "build: ../fixtures/agents/barebones")?;
            Some(ImageSource::Build {
                context: resolve_path(file, &s),
                dockerfile: None,
                args: BTreeMap::new(),
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Steps

/// Record the ops each instance is known to have, for "e.g. barebones1.count" hints.
fn collect_ops(items: &[Node], names: &mut Names) {
    let mut add = |inst: &str, op: &str| {
        let ops = names.ops.entry(inst.to_string()).or_default();
        if !op.is_empty() && !ops.iter().any(|o| o == op) {
            ops.push(op.to_string());
        }
    };
    for item in items {
        let Kind::Map(entries) = &item.kind else {
            continue;
        };
        for (k, v) in entries {
            if STEP_KINDS.contains(&k.name.as_str()) {
                if let Some((inst, op)) = v.scalar_text().as_deref().and_then(|t| t.split_once('.'))
                {
                    add(inst, op);
                }
            }
            if k.name == "expect" {
                let api = entries
                    .iter()
                    .find(|(k, _)| k.name == "api")
                    .and_then(|(_, v)| v.scalar_text());
                if let (Some(inst), Kind::Map(ex)) = (api, &v.kind) {
                    for (ek, ev) in ex {
                        if ek.name == "tasks" || ek.name == "processes" {
                            if let Kind::Seq(ops) = &ev.kind {
                                for op in ops.iter().filter_map(Node::scalar_text) {
                                    add(&inst, &op);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn decode_steps(cx: &mut Cx, node: &Node, names: &mut Names) -> Option<Vec<Step>> {
    let Kind::Seq(items) = &node.kind else {
        return cx.type_error(
            node,
            "`steps`",
            "a list",
            "steps: [{start: barebones1.count}]",
        );
    };
    collect_ops(items, names);
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match decode_step(cx, item, i + 1, names) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn decode_step(cx: &mut Cx, node: &Node, index: usize, names: &Names) -> Option<Step> {
    let Kind::Map(entries) = &node.kind else {
        if let Some(text) = node.scalar_text() {
            if text.trim_start().starts_with("sleep") {
                return sleep_error(cx, node.pos);
            }
        }
        return cx.type_error(
            node,
            &format!("Step {index}"),
            "a mapping",
            "- start: barebones1.count",
        );
    };
    if let Some((k, _)) = entries.iter().find(|(k, _)| k.name == "sleep") {
        return sleep_error(cx, k.pos);
    }
    let kinds: Vec<&(Key, Node)> = entries
        .iter()
        .filter(|(k, _)| STEP_KINDS.contains(&k.name.as_str()))
        .collect();
    let (kind_key, target) = match kinds.as_slice() {
        [] => {
            let stray = entries.iter().find(|(k, _)| !any_step_key(&k.name));
            let e = match stray {
                Some((k, _)) => {
                    let msg = format!("unknown step kind `{}`", k.name);
                    match closest(&k.name, STEP_KINDS.iter().copied()) {
                        Some(s) => cx
                            .err(k.pos, msg, format!("did you mean `{s}`?"))
                            .note(format!("the step kinds are {}", list_names(STEP_KINDS))),
                        None => cx.err(k.pos, msg, "not a step kind").help(format!(
                            "a step starts with its kind, one of {}",
                            list_names(STEP_KINDS)
                        )),
                    }
                }
                None => {
                    let pos = entries.first().map_or(node.pos, |(k, _)| k.pos);
                    cx.err(
                        pos,
                        format!("step {index} has no kind"),
                        "what does this step do?",
                    )
                    .help(format!(
                        "start the step with one of {}, e.g. `- status: barebones1.count`",
                        list_names(STEP_KINDS)
                    ))
                }
            };
            return cx.fail(e);
        }
        [one] => (&one.0, &one.1),
        [first, second, ..] => {
            let e = cx
                .err(
                    second.0.pos,
                    format!(
                        "step {index} has two kinds: `{}` (line {}) and `{}`",
                        first.0.name, first.0.pos.line, second.0.name
                    ),
                    "second kind",
                )
                .help("a step does one thing; split this into two steps, each its own `- ` item");
            return cx.fail(e);
        }
    };
    let kind = kind_key.name.as_str();
    let allowed = step_keys(kind);
    let mut ok = true;
    let mut suggested = Vec::new();
    for (k, _) in entries {
        if allowed.contains(&k.name.as_str()) {
            continue;
        }
        ok = false;
        if let Some(s) = closest(&k.name, allowed.iter().copied()) {
            suggested.push(s);
        }
        let users: Vec<&str> = STEP_KINDS
            .iter()
            .copied()
            .filter(|s| step_keys(s).contains(&k.name.as_str()))
            .collect();
        let e = if !users.is_empty() && !STEP_KINDS.contains(&k.name.as_str()) {
            cx.err(
                k.pos,
                format!("`{}` does not apply to a `{kind}` step", k.name),
                format!("only for {}", list_names(&users)),
            )
            .help(format!(
                "the keys of a `{kind}` step are {}",
                list_names(allowed)
            ))
        } else {
            cx.unknown_key(k, &format!("a `{kind}` step"), allowed)
        };
        cx.errors.push(e);
    }
    let fields = Fields::unchecked(node, entries, suggested);
    let name = match fields.get("name") {
        Some(v) => Some(cx.string(v, "`name`", "name: the count runs")?),
        None => None,
    };
    let line = entries.first().map_or(node.pos.line, |(k, _)| k.pos.line);
    let step_kind = match kind {
        "api" => {
            let instance = op_target(cx, target, kind, names, false)?.0;
            let expect = match fields.get("expect") {
                Some(v) => parse_api_expect(cx, v)?,
                None => ApiExpect::default(),
            };
            StepKind::Api { instance, expect }
        }
        "logs" => StepKind::Logs(decode_logs(cx, &fields, target, names)?),
        "fault" => StepKind::Fault(decode_fault(cx, &fields, kind_key, target, names)?),
        "exits" => {
            let container = container_target(cx, target, "exits", names)?;
            let timeout = match fields.get("timeout") {
                Some(v) => parse_duration(cx, v, "`timeout`", false)?,
                None => return missing(cx, &fields, kind_key, kind, "timeout", "timeout: 30s"),
            };
            let code = match fields.get("code") {
                Some(v) => match &v.kind {
                    Kind::Num(n) if n.as_i64().is_some() => n.as_i64(),
                    _ => return cx.type_error(v, "`code`", "a whole number", "code: 0"),
                },
                None => None,
            };
            StepKind::Exits {
                container,
                code,
                timeout,
            }
        }
        "until" => {
            let target = match target.scalar_text().as_deref() {
                Some("registry") if names.registry => UntilTarget::Registry,
                _ => {
                    let (instance, op) = op_target(cx, target, kind, names, true)?;
                    UntilTarget::Op {
                        instance,
                        op: op.expect("op required"),
                    }
                }
            };
            let timeout = match fields.get("timeout") {
                Some(v) => parse_duration(cx, v, "`timeout`", false)?,
                None => return missing(cx, &fields, kind_key, kind, "timeout", "timeout: 20s"),
            };
            let expect = match fields.get("expect") {
                Some(v) => parse_reply_expect(cx, v)?,
                None => {
                    return missing(
                        cx,
                        &fields,
                        kind_key,
                        kind,
                        "expect",
                        "expect: {session: {status: running}}",
                    )
                }
            };
            if expect.is_empty() {
                let k = fields.key("expect").expect("present");
                let e = cx
                    .err(
                        k.pos,
                        "`until` needs a condition, but this `expect` is empty",
                        "nothing to wait for",
                    )
                    .help("say what to wait for, e.g. `expect: {session: {status: running}}`");
                return cx.fail(e);
            }
            StepKind::Until {
                target,
                timeout,
                expect,
            }
        }
        _ => {
            let action = match kind {
                "start" => OpAction::Start,
                "status" => OpAction::Status,
                "wait" => OpAction::Wait,
                "stop" => OpAction::Stop,
                _ => OpAction::Abort,
            };
            let (instance, op) = op_target(cx, target, kind, names, true)?;
            let params = match fields.get("params") {
                Some(v) => match &v.kind {
                    Kind::Map(_) => Some(v.to_json()),
                    _ => {
                        return cx.type_error(
                            v,
                            "`params`",
                            "a mapping (OCS passes params as a dict)",
                            "params: {delay: 1}",
                        )
                    }
                },
                None => None,
            };
            let timeout = match (action, fields.get("timeout")) {
                (OpAction::Wait, Some(v)) => Some(parse_duration(cx, v, "`timeout`", false)?),
                (OpAction::Wait, None) => {
                    return missing(cx, &fields, kind_key, kind, "timeout", "timeout: 20s")
                }
                _ => None,
            };
            let expect = match fields.get("expect") {
                Some(v) => parse_reply_expect(cx, v)?,
                None => ReplyExpect::default(),
            };
            StepKind::Op {
                action,
                instance,
                op: op.expect("op required"),
                params,
                timeout,
                expect,
            }
        }
    };
    if !ok {
        return None;
    }
    Some(Step {
        index,
        line,
        name,
        kind: step_kind,
        target: target.pos.into(),
    })
}

fn missing<T>(
    cx: &mut Cx,
    f: &Fields,
    kind_key: &Key,
    kind: &str,
    key: &str,
    example: &str,
) -> Option<T> {
    if f.misspelt(key) {
        return None;
    }
    let why = match (kind, key) {
        ("wait", "timeout") => "; OCS would otherwise wait forever",
        ("until", "timeout") => "; it says how long to keep polling",
        ("until", "expect") => "; it is the condition to poll for",
        _ => "",
    };
    let e = cx
        .err(
            kind_key.pos,
            format!("this `{kind}` step has no `{key}`"),
            format!("`{key}` is required here"),
        )
        .help(format!("add `{example}` to the step{why}"));
    cx.fail(e)
}

fn sleep_error<T>(cx: &mut Cx, pos: Pos) -> Option<T> {
    let e = cx
        .err(pos, "there is no `sleep` step", "sleeping is not offered")
        .help(
            "say what you are waiting for instead: `until: <instance>.<op>` with a `timeout` and \
             an `expect` polls until the condition holds (e.g. `expect: {session: {data: \
             {value: {\">=\": 2}}}}`), `wait: <instance>.<op>` with a `timeout` waits for an \
             operation to finish, and `logs` checks wait for their lines",
        );
    cx.fail(e)
}

/// Decode a step target: `instance` or `instance.op` (when `need_op`).
fn op_target(
    cx: &mut Cx,
    node: &Node,
    kind: &str,
    names: &Names,
    need_op: bool,
) -> Option<(String, Option<String>)> {
    let t = cx.nonempty_string(node, &format!("the target of `{kind}`"), "barebones1.count")?;
    let (instance, op) = match t.split_once('.') {
        Some((i, o)) => (i.to_string(), Some(o.to_string())),
        None => (t.clone(), None),
    };
    let known = names.op_targets();
    // A target naming an agent whose (invalid) id was already reported gets no second error.
    if known.contains(&t) && t.contains('.') {
        return None;
    }
    if instance == "registry" && !names.registry && !known.contains(&instance) {
        let e = cx
            .err(
                node.pos,
                "the stack runs no registry (`registry: false` under `stack`)",
                "no registry",
            )
            .help("remove `registry: false` to run the registry agent, or drop this step");
        return cx.fail(e);
    }
    if !known.contains(&instance) {
        let mut e = cx.err(
            node.pos,
            format!("no agent `{instance}` in the stack"),
            match closest(&instance, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "unknown agent".into(),
            },
        );
        e = if known.is_empty() {
            e.help("the stack has no agents; add them under `stack.agents`")
        } else {
            e.note(format!("the stack's agents are {}", list_names(&known)))
        };
        return cx.fail(e);
    }
    match (op, need_op) {
        (None, true) => {
            let until = if kind == "until" && names.registry {
                ", or `until: registry` to poll the registry"
            } else {
                ""
            };
            let e = cx
                .err(
                    node.pos,
                    format!("`{kind}` needs an operation, but `{t}` names only an agent"),
                    "expected instance.op",
                )
                .help(format!(
                    "write instance.op, e.g. `{kind}: {}`{until}",
                    names.example_op(&instance)
                ));
            cx.fail(e)
        }
        (Some(op), false) => {
            let e = cx
                .err(
                    node.pos,
                    format!("`{kind}` takes an agent, not an operation (`{t}`)"),
                    "expected an instance-id",
                )
                .help(format!(
                    "write `{kind}: {instance}`{}",
                    if kind == "api" {
                        format!(
                            ", and check the op with `expect: {{tasks: [{op}]}}` or `processes`"
                        )
                    } else {
                        String::new()
                    }
                ));
            cx.fail(e)
        }
        (Some(op), true) => {
            if op.is_empty()
                || op
                    .chars()
                    .any(|c| c.is_whitespace() || c == '.' || c == '#')
            {
                let e = cx
                    .err(
                        node.pos,
                        format!("`{op}` is not an operation name"),
                        "invalid operation",
                    )
                    .help(format!(
                        "write instance.op with the task or process name, e.g. `{}`",
                        names.example_op(&instance)
                    ));
                return cx.fail(e);
            }
            Some((instance, Some(op)))
        }
        (None, false) => Some((instance, None)),
    }
}

/// A container of the stack named by a step: `crossbar` or an agent's instance-id.
fn container_target(cx: &mut Cx, target: &Node, kind: &str, names: &Names) -> Option<String> {
    let container = cx.nonempty_string(
        target,
        &format!("the target of `{kind}`"),
        &format!("{kind}: barebones1"),
    )?;
    let mut known: Vec<String> = vec!["crossbar".into()];
    known.extend(names.op_targets());
    if !known.contains(&container) {
        let e = if let Some((inst, _)) = container
            .split_once('.')
            .filter(|(i, _)| known.iter().any(|k| k == i))
        {
            cx.err(
                target.pos,
                format!("`{kind}` takes a container, not an operation (`{container}`)"),
                "expected a container name",
            )
            .help(format!("write `{kind}: {inst}`"))
        } else {
            cx.err(
                target.pos,
                format!("no container `{container}` in the stack"),
                match closest(&container, known.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "unknown container".into(),
                },
            )
            .note(format!(
                "the containers are {} (an agent's instance-id, or `crossbar`)",
                list_names(&known)
            ))
        };
        return cx.fail(e);
    }
    Some(container)
}

fn decode_fault(
    cx: &mut Cx,
    f: &Fields,
    kind_key: &Key,
    target: &Node,
    names: &Names,
) -> Option<Fault> {
    let action_text = cx.nonempty_string(target, "the action of `fault`", "fault: restart")?;
    let Some(action) = FaultAction::ALL
        .iter()
        .find(|(n, _)| *n == action_text)
        .map(|(_, a)| *a)
    else {
        let all: Vec<&str> = FaultAction::ALL.iter().map(|(n, _)| *n).collect();
        let e = cx
            .err(
                target.pos,
                format!("unknown fault `{action_text}`"),
                match closest(&action_text, all.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "not a fault".into(),
                },
            )
            .help(format!("a fault is one of {}", list_names(&all)));
        return cx.fail(e);
    };
    let container = match f.get("container") {
        Some(v) => container_target(cx, v, "container", names)?,
        None => return missing(cx, f, kind_key, "fault", "container", "container: crossbar"),
    };
    let only = |cx: &mut Cx, key: &str, allowed: &[FaultAction]| -> Option<()> {
        match f.key(key) {
            Some(k) if !allowed.contains(&action) => {
                let e = cx
                    .err(
                        k.pos,
                        format!("`{key}` does not apply to `fault: {action_text}`"),
                        "not for this fault",
                    )
                    .help(format!(
                        "`{key}` goes with `fault: {}`",
                        allowed
                            .iter()
                            .map(|a| a.as_str())
                            .collect::<Vec<_>>()
                            .join("` or `fault: ")
                    ));
                cx.fail(e)
            }
            _ => Some(()),
        }
    };
    only(cx, "signal", &[FaultAction::Kill])?;
    only(cx, "for", &[FaultAction::Disconnect])?;
    only(
        cx,
        "timeout",
        &[
            FaultAction::Restart,
            FaultAction::Start,
            FaultAction::Unpause,
            FaultAction::Connect,
        ],
    )?;
    let signal = match f.get("signal") {
        Some(v) => {
            let s = cx.nonempty_string(v, "`signal`", "signal: SIGTERM")?;
            let upper = s.to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            const SIGNALS: &[&str] = &[
                "SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
                "SIGSTOP", "SIGCONT",
            ];
            if !SIGNALS.contains(&name.as_str()) {
                let e = cx
                    .err(v.pos, format!("unknown signal `{s}`"), "not a signal name")
                    .help(format!("use one of {}", list_names(SIGNALS)));
                return cx.fail(e);
            }
            name
        }
        None => "SIGKILL".to_string(),
    };
    let duration = match f.get("for") {
        Some(v) => Some(parse_duration(cx, v, "`for`", false)?),
        None => None,
    };
    let timeout = match f.get("timeout") {
        Some(v) => parse_duration(cx, v, "`timeout`", false)?,
        None => super::DEFAULT_FAULT_TIMEOUT,
    };
    Some(Fault {
        action,
        container,
        signal,
        duration,
        timeout,
    })
}

fn decode_logs(cx: &mut Cx, f: &Fields, target: &Node, names: &Names) -> Option<LogsCheck> {
    let container = container_target(cx, target, "logs", names)?;
    let window = match f.get("window") {
        Some(v) => {
            let s = cx.string(v, "`window`", "window: step")?;
            match s.as_str() {
                "step" => LogWindow::Step,
                "run" => LogWindow::Run,
                _ => {
                    let e = cx
                        .err(
                            v.pos,
                            format!("unknown log window `{s}`"),
                            "expected step or run",
                        )
                        .help(
                            "`run` (the default) looks at every line since the container \
                             started, `step` at lines since the previous step began",
                        );
                    return cx.fail(e);
                }
            }
        }
        None => LogWindow::Run,
    };
    let timeout = match f.get("timeout") {
        Some(v) => parse_duration(cx, v, "`timeout`", true)?,
        None => DEFAULT_LOGS_TIMEOUT,
    };
    let list = |cx: &mut Cx, key: &str, example: &str| -> Option<Vec<String>> {
        match f.get(key) {
            Some(v) => cx.strings(v, &format!("`{key}`"), example, true),
            None => Some(Vec::new()),
        }
    };
    let contains = list(cx, "contains", "contains: \"Acquisition exited cleanly.\"")?;
    let lines = list(
        cx,
        "lines",
        "lines: [\"Starting the count!\", \"Status is now \\\"done\\\".\"]",
    )?;
    let absent = list(cx, "absent", "absent: [Traceback]")?;
    let allow = list(cx, "allow", "allow: [\"_ARRAY_API not found\"]")?;
    let regex = match f.get("regex") {
        Some(v) => parse_regex_list(cx, v)?,
        None => Vec::new(),
    };
    if contains.is_empty() && regex.is_empty() && lines.is_empty() && absent.is_empty() {
        let k = f.key("logs").expect("the kind key");
        let e = cx
            .err(k.pos, "this `logs` step checks nothing", "no checks")
            .help("add `contains`, `regex`, `lines` or `absent`, e.g. `absent: [Traceback]`");
        return cx.fail(e);
    }
    if !allow.is_empty() && absent.is_empty() {
        let k = f.key("allow").expect("present");
        let e = cx
            .err(
                k.pos,
                "`allow` without `absent`",
                "allow only filters `absent`",
            )
            .help("add `absent: [...]` (lines that must not appear), or remove `allow`");
        return cx.fail(e);
    }
    Some(LogsCheck {
        container,
        window,
        timeout,
        contains,
        regex,
        lines,
        absent,
        allow,
    })
}
