//! One compose file's node tree into [`Service`]s (and the files it `include`s): the honoured
//! keys decoded, the rewritten and accepted ones taken, every other key kept as an error for
//! the caller to report unless the service is crossbar (whose keys do not matter: it is
//! replaced).

use std::collections::BTreeMap;
use std::path::Path;

use crate::overrides::ImageRef;
use crate::source::node::{Cx, Key, Kind, Node};
use crate::source::ScenarioError;

use super::env::{dotenv, split_command};
use super::{
    Build, Extends, Healthcheck, Loc, Service, Volume, ACCEPTED_KEYS, HONOURED_KEYS,
    REWRITTEN_KEYS, TOP_KEYS,
};

const BUILD_KEYS: &[&str] = &["context", "dockerfile", "args"];

/// The files a compose file includes, as written, each with where it is written.
pub(super) type Includes = Vec<(String, crate::source::node::Pos)>;

/// The services of one file (`index` in the list, in directory `dir`), and its `include`s.
pub(super) fn file(
    cx: &mut Cx,
    root: Option<&Node>,
    index: usize,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Service>, Includes) {
    let mut includes = Includes::new();
    let Some(root) = root else {
        return (Vec::new(), includes);
    };
    let Kind::Map(entries) = &root.kind else {
        let _: Option<()> = cx.type_error(
            root,
            "A compose file",
            "a mapping",
            "services: {barebones1: {build: .}}",
        );
        return (Vec::new(), includes);
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        match k.name.as_str() {
            "services" => out = services(cx, v, index, dir, lookup),
            "include" => includes = include(cx, v),
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
    (out, includes)
}

/// `include`: paths, or mappings with `path` (one or a list).
fn include(cx: &mut Cx, v: &Node) -> Includes {
    let example = "include: [../influxdb/compose.yaml]";
    let Kind::Seq(items) = &v.kind else {
        return cx
            .type_error(v, "`include`", "a list", example)
            .unwrap_or_default();
    };
    let mut out = Includes::new();
    for item in items {
        match &item.kind {
            Kind::Map(_) => {
                let Some(f) = cx.fields(
                    item,
                    "an `include` entry",
                    &["path"],
                    "- path: ../influxdb/compose.yaml",
                ) else {
                    continue;
                };
                let Some(path) = f.get("path") else {
                    let e = cx
                        .err(item.pos, "this `include` entry has no `path`", "no path")
                        .help("write `- path: ../influxdb/compose.yaml`");
                    cx.errors.push(e);
                    continue;
                };
                let paths = cx.strings(path, "`path`", "path: ../influxdb/compose.yaml", true);
                out.extend(paths.unwrap_or_default().into_iter().map(|p| (p, path.pos)));
            }
            _ => {
                if let Some(p) = cx.nonempty_string(item, "an `include` entry", example) {
                    out.push((p, item.pos));
                }
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
        user: None,
        working_dir: None,
        labels: BTreeMap::new(),
        healthcheck: None,
        profiles: Vec::new(),
        restart: None,
        container_name: None,
        extends: None,
        refused: Vec::new(),
    };
    let mut env_files = BTreeMap::new();
    for (k, v) in entries {
        match k.name.as_str() {
            "user" => s.user = user(cx, v),
            "working_dir" => s.working_dir = absolute(cx, v, "`working_dir`", "working_dir: /app"),
            "labels" => s.labels = environment(cx, v, &|_| None).unwrap_or_default(),
            "healthcheck" => s.healthcheck = healthcheck(cx, v),
            "profiles" => {
                s.profiles = cx
                    .strings(v, "`profiles`", "profiles: [debug]", false)
                    .unwrap_or_default()
            }
            "extends" => s.extends = extends(cx, v, index, dir),
            "restart" => s.restart = restart(cx, v),
            "container_name" => {
                s.container_name =
                    cx.nonempty_string(v, "`container_name`", "container_name: influxdb")
            }
            "network_mode" => s.refused.push(network_mode(cx, k, v, &name.name)),
            n if ACCEPTED_KEYS.contains(&n) => {}
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
        _ => format!(
            "the harness uses {}, rewrites {} and accepts {} (docs/notes/compose.md says how); \
             remove `{}` (or keep it in a compose override file that the scenario does not name)",
            HONOURED_KEYS.join(", "),
            REWRITTEN_KEYS.join(", "),
            ACCEPTED_KEYS.join(", "),
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

/// The error for `network_mode`: every container of a run is on the run's own network.
fn network_mode(cx: &Cx, k: &Key, v: &Node, service: &str) -> ScenarioError {
    let mode = v.scalar_text().unwrap_or_default();
    cx.err(
        k.pos,
        format!(
            "service `{service}` has `network_mode: {mode}`, which an isolated run cannot give it"
        ),
        "not supported",
    )
    .help(
        "every container of a run is on the run's own network, reached by its service name (a \
         run must not share the host's network or another container's); remove `network_mode`, \
         or keep this service (e.g. an agent for hardware on the host's network) in a compose \
         file the scenario does not name",
    )
}

/// `user`: `uid`, `uid:gid`, or names; a number as written.
fn user(cx: &mut Cx, v: &Node) -> Option<String> {
    match &v.kind {
        Kind::Num(_) | Kind::Str(_) => cx.nonempty_string(v, "`user`", "user: \"9000\""),
        _ => cx.type_error(
            v,
            "`user`",
            "a user (`uid[:gid]` or a name)",
            "user: \"9000\"",
        ),
    }
}

/// An absolute path in the container.
fn absolute(cx: &mut Cx, v: &Node, what: &str, example: &str) -> Option<String> {
    let p = cx.nonempty_string(v, what, example)?;
    if !p.starts_with('/') {
        let e = cx
            .err(
                v.pos,
                format!("{what} `{p}` is not an absolute path"),
                "not absolute",
            )
            .help(format!("write the path in the container, e.g. `{example}`"));
        return cx.fail(e);
    }
    Some(p)
}

/// `restart`: one of compose's policies (no container of a run is restarted).
fn restart(cx: &mut Cx, v: &Node) -> Option<String> {
    let r = cx.nonempty_string(v, "`restart`", "restart: always")?;
    let known = matches!(
        r.as_str(),
        "no" | "always" | "unless-stopped" | "on-failure"
    ) || r
        .strip_prefix("on-failure:")
        .is_some_and(|n| n.parse::<u32>().is_ok());
    if !known {
        let e = cx
            .err(
                v.pos,
                format!("`restart: {r}` is not a restart policy"),
                "unknown policy",
            )
            .help("compose knows `no`, `always`, `on-failure[:N]` and `unless-stopped`");
        return cx.fail(e);
    }
    Some(r)
}

/// `extends: service` or `extends: {service, file}` (`file` relative to `dir`).
fn extends(cx: &mut Cx, v: &Node, index: usize, dir: &Path) -> Option<Extends> {
    let at = Loc {
        file: index,
        pos: v.pos,
    };
    if !matches!(v.kind, Kind::Map(_)) {
        let service = cx.nonempty_string(v, "`extends`", "extends: {service: base}")?;
        return Some(Extends {
            service,
            file: None,
            at,
        });
    }
    let example = "extends: {file: common.yml, service: agent-base}";
    let f = cx.fields(v, "`extends`", &["service", "file"], example)?;
    let Some(service) = f.get("service") else {
        let e = cx
            .err(v.pos, "`extends` has no `service`", "which service?")
            .help(format!("write e.g. `{example}`"));
        return cx.fail(e);
    };
    let service = cx.nonempty_string(service, "`extends.service`", example)?;
    let file = match f.get("file") {
        Some(p) => Some(super::env::resolve(
            dir,
            &cx.nonempty_string(p, "`extends.file`", example)?,
        )),
        None => None,
    };
    Some(Extends { service, file, at })
}

const HEALTHCHECK_KEYS: &[&str] = &[
    "test",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "disable",
];

/// `healthcheck`, as the engine takes it; `disable: true` or `test: [NONE]` is a test of
/// `["NONE"]` (so that it also turns off one given by an earlier file).
fn healthcheck(cx: &mut Cx, v: &Node) -> Option<Healthcheck> {
    let example = "healthcheck: {test: [CMD, curl, -f, http://localhost:8086/ping], interval: 5s}";
    let f = cx.fields(v, "`healthcheck`", HEALTHCHECK_KEYS, example)?;
    let disabled = match f.get("disable") {
        Some(d) => cx.bool(d, "`disable`", "disable: true")?,
        None => false,
    };
    let test = match (disabled, f.get("test")) {
        (true, _) => vec!["NONE".to_string()],
        (false, None) => {
            let e = cx
                .err(
                    v.pos,
                    "`healthcheck` has no `test`",
                    "what shows it healthy?",
                )
                .help(format!("write e.g. `{example}`"));
            return cx.fail(e);
        }
        (false, Some(t)) => match &t.kind {
            Kind::Seq(_) => {
                let words = cx.strings(t, "`test`", example, false)?;
                match words.first().map(String::as_str) {
                    Some("CMD" | "CMD-SHELL" | "NONE") => words,
                    _ => {
                        let e = cx
                            .err(
                                t.pos,
                                "a `test` list starts with `CMD`, `CMD-SHELL` or `NONE`",
                                "no CMD",
                            )
                            .help(format!(
                                "write e.g. `{example}`, or a string for a shell command"
                            ));
                        return cx.fail(e);
                    }
                }
            }
            _ => vec![
                "CMD-SHELL".to_string(),
                cx.nonempty_string(t, "`test`", example)?,
            ],
        },
    };
    let duration = |cx: &mut Cx, key: &str| -> Option<Option<std::time::Duration>> {
        let Some(d) = f.get(key) else {
            return Some(None);
        };
        let text = cx.nonempty_string(d, &format!("`{key}`"), "interval: 5s")?;
        match humantime::parse_duration(&text) {
            Ok(x) => Some(Some(x)),
            Err(_) => {
                let e = cx
                    .err(
                        d.pos,
                        format!("`{key}: {text}` is not a duration"),
                        "not a duration",
                    )
                    .help("write a compose duration, e.g. `5s`, `1m30s`, `500ms`");
                cx.fail(e)
            }
        }
    };
    let interval = duration(cx, "interval")?;
    let timeout = duration(cx, "timeout")?;
    let start_period = duration(cx, "start_period")?;
    let start_interval = duration(cx, "start_interval")?;
    let retries = match f.get("retries") {
        Some(r) => match r.scalar_text().and_then(|t| t.parse::<u32>().ok()) {
            Some(n) => Some(n),
            None => return cx.type_error(r, "`retries`", "a whole number", "retries: 5"),
        },
        None => None,
    };
    Some(Healthcheck {
        test,
        interval,
        timeout,
        retries,
        start_period,
        start_interval,
    })
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
        let host_absolute = source.as_deref().is_some_and(|s| s.starts_with(['/', '~']));
        out.push(Volume {
            host_absolute,
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
                            "condition" => value == "service_started" || value == "service_healthy",
                            "required" | "restart" => value == "true" || value == "false",
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
                                    "the harness starts the services first (each once those it \
                                     depends on are ready: healthy, when they have a \
                                     healthcheck), then crossbar, then every agent, and waits \
                                     until each agent has registered; write \
                                     `condition: service_started` or `service_healthy`",
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
