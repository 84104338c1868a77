//! One compose file's node tree into [`Service`]s: the honoured keys decoded, the rewritten
//! ones accepted, every other key kept as an error for the caller to report if the service
//! turns out to be an agent (the crossbar service's keys do not matter: it is replaced).

use std::collections::BTreeMap;
use std::path::Path;

use crate::overrides::ImageRef;
use crate::source::node::{Cx, Key, Kind, Node};
use crate::source::ScenarioError;

use super::env::{dotenv, split_command};
use super::{Build, Loc, Service, Volume, HONOURED_KEYS, REWRITTEN_KEYS, TOP_KEYS};

const BUILD_KEYS: &[&str] = &["context", "dockerfile", "args"];

/// The services of one file (`index` in the list, in directory `dir`).
pub(super) fn file(
    cx: &mut Cx,
    root: Option<&Node>,
    index: usize,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<Service> {
    let Some(root) = root else {
        return Vec::new();
    };
    let Kind::Map(entries) = &root.kind else {
        let _: Option<()> = cx.type_error(
            root,
            "A compose file",
            "a mapping",
            "services: {barebones1: {build: .}}",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        match k.name.as_str() {
            "services" => out = services(cx, v, index, dir, lookup),
            n if n.starts_with("x-") || TOP_KEYS.contains(&n) => {}
            n => {
                let e = cx
                    .err(
                        k.pos,
                        format!("compose key `{n}` is not supported by ocs-harness"),
                        "not supported",
                    )
                    .help(format!(
                        "the harness reads `services` (and accepts {}); move `{n}` to a compose \
                         file the scenario does not name",
                        TOP_KEYS[1..].join(", ")
                    ));
                cx.errors.push(e);
            }
        }
    }
    out
}

fn services(
    cx: &mut Cx,
    node: &Node,
    index: usize,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<Service> {
    let Kind::Map(entries) = &node.kind else {
        let _: Option<()> = cx.type_error(
            node,
            "`services`",
            "a mapping",
            "services: {barebones1: {build: .}}",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        if let Some(s) = service(cx, k, v, index, dir, lookup) {
            out.push(s);
        }
    }
    out
}

fn service(
    cx: &mut Cx,
    name: &Key,
    node: &Node,
    index: usize,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<Service> {
    let Kind::Map(entries) = &node.kind else {
        return cx.type_error(
            node,
            &format!("Service `{}`", name.name),
            "a mapping",
            "barebones1: {build: .}",
        );
    };
    let loc = |pos| Loc { file: index, pos };
    let mut s = Service {
        name: name.name.clone(),
        at: loc(name.pos),
        image: None,
        build: None,
        environment: BTreeMap::new(),
        command: None,
        entrypoint: None,
        hostname: None,
        volumes: Vec::new(),
        depends_on: Vec::new(),
        refused: Vec::new(),
    };
    let mut env_files = BTreeMap::new();
    for (k, v) in entries {
        match k.name.as_str() {
            "image" => s.image = image(cx, v),
            "build" => s.build = build(cx, v, dir),
            "environment" => s.environment = environment(cx, v, lookup).unwrap_or_default(),
            "env_file" => env_files = env_file(cx, v, dir).unwrap_or_default(),
            "command" => s.command = command(cx, v, "command"),
            "entrypoint" => s.entrypoint = command(cx, v, "entrypoint"),
            "hostname" => s.hostname = cx.nonempty_string(v, "`hostname`", "hostname: ocs-docker"),
            "volumes" => s.volumes = volumes(cx, v, index, dir),
            "depends_on" => s.depends_on = depends_on(cx, v, index),
            n if REWRITTEN_KEYS.contains(&n) || n.starts_with("x-") => {}
            _ => s.refused.push(refused(cx, k, &name.name)),
        }
    }
    for (k, v) in env_files {
        s.environment.entry(k).or_insert(v);
    }
    Some(s)
}

/// The error for a service key the harness cannot honour, with what to do instead.
fn refused(cx: &Cx, k: &Key, service: &str) -> ScenarioError {
    let help = match k.name.as_str() {
        "restart" => "an agent that exits fails the run (or is checked with an `exits:` step); \
                      remove `restart` from the compose file the scenario names"
            .to_string(),
        "healthcheck" => "the harness waits until each agent has registered on crossbar; remove \
                          `healthcheck` from the compose file the scenario names"
            .to_string(),
        _ => format!(
            "the harness uses {} and rewrites {}; remove `{}` (or keep it in a compose override \
             file that the scenario does not name)",
            HONOURED_KEYS.join(", "),
            REWRITTEN_KEYS.join(", "),
            k.name
        ),
    };
    cx.err(
        k.pos,
        format!(
            "compose key `{}` of service `{service}` is not supported by ocs-harness",
            k.name
        ),
        "not supported",
    )
    .help(help)
}

fn image(cx: &mut Cx, v: &Node) -> Option<ImageRef> {
    let s = cx.nonempty_string(v, "`image`", "image: simonsobs/ocs:latest")?;
    match ImageRef::parse(&s) {
        Ok(r) => Some(r),
        Err(problem) => {
            let e = cx
                .err(
                    v.pos,
                    format!("`image`: {problem}"),
                    "not an image reference",
                )
                .help("write `repository[:tag]`, e.g. `simonsobs/ocs:latest`");
            cx.fail(e)
        }
    }
}

fn build(cx: &mut Cx, v: &Node, dir: &Path) -> Option<Build> {
    if !matches!(v.kind, Kind::Map(_)) {
        let context = cx.nonempty_string(v, "`build`", "build: .")?;
        return Some(Build {
            context: super::env::resolve(dir, &context),
            dockerfile: None,
            args: BTreeMap::new(),
        });
    }
    let f = cx.fields(
        v,
        "`build`",
        BUILD_KEYS,
        "build: {context: ., dockerfile: Dockerfile}",
    )?;
    let context = match f.get("context") {
        Some(c) => cx.nonempty_string(c, "`build.context`", "context: .")?,
        None => ".".to_string(),
    };
    let dockerfile = match f.get("dockerfile") {
        Some(d) => Some(cx.nonempty_string(d, "`build.dockerfile`", "dockerfile: Dockerfile")?),
        None => None,
    };
    let args = match f.get("args") {
        Some(a) => environment(cx, a, &|_| None)?,
        None => BTreeMap::new(),
    };
    Some(Build {
        context: super::env::resolve(dir, &context),
        dockerfile,
        args,
    })
}

/// `environment` (or `build.args`): a mapping, or a list of `KEY=VALUE`; a bare `KEY` takes
/// the value from the environment, and is left out when unset, as compose does.
fn environment(
    cx: &mut Cx,
    v: &Node,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match &v.kind {
        Kind::Map(entries) => {
            for (k, val) in entries {
                match (&val.kind, val.scalar_text()) {
                    (Kind::Null, _) => {
                        if let Some(x) = lookup(&k.name) {
                            out.insert(k.name.clone(), x);
                        }
                    }
                    (_, Some(s)) => {
                        out.insert(k.name.clone(), s);
                    }
                    _ => {
                        let _: Option<()> = cx.type_error(
                            val,
                            &format!("`{}`", k.name),
                            "a string",
                            "LOGLEVEL: info",
                        );
                    }
                }
            }
        }
        Kind::Seq(_) => {
            for item in cx.strings(v, "`environment`", "- LOGLEVEL=info", false)? {
                match item.split_once('=') {
                    Some((k, val)) => {
                        out.insert(k.to_string(), val.to_string());
                    }
                    None => {
                        if let Some(x) = lookup(&item) {
                            out.insert(item, x);
                        }
                    }
                }
            }
        }
        _ => {
            return cx.type_error(
                v,
                "`environment`",
                "a mapping or a list of `KEY=VALUE`",
                "environment: [LOGLEVEL=info]",
            )
        }
    }
    Some(out)
}

/// `env_file`: one path or a list, relative to the compose file; read here.
fn env_file(cx: &mut Cx, v: &Node, dir: &Path) -> Option<BTreeMap<String, String>> {
    let paths = cx.strings(v, "`env_file`", "env_file: agent.env", true)?;
    let mut out = BTreeMap::new();
    for p in paths {
        let path = super::env::resolve(dir, &p);
        if !path.is_file() {
            let e = cx
                .err(
                    v.pos,
                    format!("env file `{p}` does not exist"),
                    "no such file",
                )
                .help(format!(
                    "create {} or remove it from `env_file`",
                    path.display()
                ));
            return cx.fail(e);
        }
        match dotenv(&path) {
            Ok(vars) => out.extend(vars),
            Err(err) => {
                let e = cx
                    .err(
                        v.pos,
                        format!("cannot read env file `{p}`: {err}"),
                        "unreadable",
                    )
                    .help("make the file readable");
                return cx.fail(e);
            }
        }
    }
    Some(out)
}

/// `command` or `entrypoint` (`key`): a list of words, or a string split as a shell would.
fn command(cx: &mut Cx, v: &Node, key: &str) -> Option<Vec<String>> {
    let (example, what) = match key {
        "entrypoint" => ("entrypoint: [dumb-init, ocs-agent-cli]", "ENTRYPOINT"),
        _ => (
            "command: [--agent, barebones_agent.py, --entrypoint, main]",
            "CMD",
        ),
    };
    let what_key = format!("`{key}`");
    let words = match &v.kind {
        Kind::Seq(_) => cx.strings(v, &what_key, example, false)?,
        _ => {
            let s = cx.string(v, &what_key, example)?;
            let Some(words) = split_command(&s) else {
                let e = cx
                    .err(
                        v.pos,
                        format!("{what_key} has an unclosed quote"),
                        "unclosed quote",
                    )
                    .help(format!(
                        "close the quote, or write the words as a list: `{example}`"
                    ));
                return cx.fail(e);
            };
            words
        }
    };
    if words.is_empty() {
        let e = cx
            .err(v.pos, format!("{what_key} must not be empty"), "empty")
            .help(format!("remove {what_key} to keep the image's {what}"));
        return cx.fail(e);
    }
    Some(words)
}

fn volumes(cx: &mut Cx, v: &Node, index: usize, dir: &Path) -> Vec<Volume> {
    let Kind::Seq(items) = &v.kind else {
        let _: Option<()> = cx.type_error(
            v,
            "`volumes`",
            "a list",
            "volumes: [./default.yaml:/config/default.yaml:ro]",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let at = Loc {
            file: index,
            pos: item.pos,
        };
        let (source, target, read_only) = match &item.kind {
            Kind::Map(_) => {
                let Some(f) = cx.fields(
                    item,
                    "a volume",
                    &["type", "source", "target", "read_only", "bind", "volume"],
                    "- {type: bind, source: ./default.yaml, target: /config/default.yaml}",
                ) else {
                    continue;
                };
                let text = |k: &str| f.get(k).and_then(Node::scalar_text);
                let read_only = text("read_only").is_some_and(|t| t == "true");
                let source = match text("type").as_deref() {
                    // a tmpfs is an empty, writable directory, like an anonymous volume
                    Some("tmpfs") => None,
                    _ => text("source"),
                };
                (source, text("target").unwrap_or_default(), read_only)
            }
            _ => {
                let Some(s) =
                    cx.string(item, "a volume", "- ./default.yaml:/config/default.yaml:ro")
                else {
                    continue;
                };
                let mut parts = s.splitn(3, ':');
                let read_only =
                    |opts: Option<&str>| opts.is_some_and(|o| o.split(',').any(|o| o == "ro"));
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(src), Some(tgt), opts) => {
                        (Some(src.to_string()), tgt.to_string(), read_only(opts))
                    }
                    (Some(tgt), None, _) => (None, tgt.to_string(), false),
                    _ => continue,
                }
            }
        };
        let is_path = |s: &str| s.starts_with(['.', '/', '~']);
        out.push(Volume {
            source: source
                .as_deref()
                .filter(|s| is_path(s))
                .map(|s| super::env::resolve(dir, s)),
            named: source.filter(|s| !is_path(s)),
            read_only,
            target,
            at,
        });
    }
    out
}

fn depends_on(cx: &mut Cx, v: &Node, index: usize) -> Vec<(String, Loc)> {
    let loc = |pos| Loc { file: index, pos };
    match &v.kind {
        Kind::Seq(items) => items
            .iter()
            .filter_map(|i| {
                cx.string(i, "each item of `depends_on`", "depends_on: [crossbar]")
                    .map(|s| (s, loc(i.pos)))
            })
            .collect(),
        Kind::Map(entries) => {
            let mut out = Vec::new();
            for (k, cond) in entries {
                if let Kind::Map(c) = &cond.kind {
                    for (ck, cv) in c {
                        let value = cv.scalar_text().unwrap_or_default();
                        let fine = match ck.name.as_str() {
                            "condition" => value == "service_started",
                            "required" => value == "true",
                            _ => false,
                        };
                        if !fine {
                            let e = cx
                                .err(
                                    ck.pos,
                                    format!(
                                        "`depends_on` `{}: {value}` is not supported by ocs-harness",
                                        ck.name
                                    ),
                                    "not supported",
                                )
                                .help(
                                    "the harness starts crossbar first and every agent after it, \
                                     and waits until each agent has registered; write \
                                     `depends_on: [crossbar]` or `condition: service_started`",
                                );
                            cx.errors.push(e);
                        }
                    }
                }
                out.push((k.name.clone(), loc(k.pos)));
            }
            out
        }
        _ => cx
            .type_error(
                v,
                "`depends_on`",
                "a list or a mapping",
                "depends_on: [crossbar]",
            )
            .unwrap_or_default(),
    }
}
