//! `stack.services`: non-OCS containers on the stack's network with compose-like keys
//! (`image` or `build`, `environment`, `command`, `entrypoint`, `hostname`, `aliases`, `ports`,
//! `files`, `depends-on`) and a readiness condition (`ready: {log | tcp | http, timeout}`).
//! `depends-on` must name services of the stack and must not go round in a circle.

use std::collections::BTreeSet;
use std::path::Path;

use crate::service::{
    start_order, Readiness, ReadyCheck, ServiceSpec, StartOrderError, DEFAULT_SERVICE_READY,
};

use super::super::super::error::{closest, list_names};
use super::super::super::node::{Cx, Fields, Kind, Node, Pos};
use super::super::values::{parse_duration, parse_env_map};

const SERVICE_KEYS: &[&str] = &[
    "name",
    "image",
    "build",
    "environment",
    "command",
    "entrypoint",
    "hostname",
    "aliases",
    "ports",
    "ready",
    "files",
    "depends-on",
];
const READY_KEYS: &[&str] = &["log", "tcp", "http", "timeout"];
const HTTP_KEYS: &[&str] = &["port", "path", "status"];
const EXAMPLE: &str = "- name: influxdb\n    image: influxdb:1.7\n    ready: {http: {port: 8086, path: /ping, status: 204}}";

/// A service's `depends-on` entries, each with where it is written.
type Dependencies = Vec<(String, Pos)>;

/// `services:`, given the names already taken (crossbar, the registry, the agents); paths
/// in `files` are relative to the scenario `file`.
pub(super) fn decode_services(
    cx: &mut Cx,
    node: &Node,
    taken: &[String],
    file: &Path,
) -> Option<Vec<ServiceSpec>> {
    let Kind::Seq(items) = &node.kind else {
        return cx.type_error(node, "`services`", "a list", EXAMPLE);
    };
    let mut seen: BTreeSet<String> = taken.iter().cloned().collect();
    let mut out = Vec::new();
    let mut deps: Vec<Dependencies> = Vec::new();
    let mut ok = true;
    for item in items {
        match decode_service(cx, item, &mut seen, file) {
            Some((s, d)) => {
                out.push(s);
                deps.push(d);
            }
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    check_dependencies(cx, &out, &deps).then_some(out)
}

/// Every `depends-on` entry names another service, and they go round in no circle.
fn check_dependencies(cx: &mut Cx, services: &[ServiceSpec], deps: &[Dependencies]) -> bool {
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let mut ok = true;
    for (s, d) in services.iter().zip(deps) {
        for (name, pos) in d {
            if *name == s.name {
                let e = cx
                    .err(
                        *pos,
                        format!("service `{name}` depends on itself"),
                        "itself",
                    )
                    .help("a service can depend only on other services of the stack");
                cx.errors.push(e);
                ok = false;
            } else if !names.contains(&name.as_str()) {
                let others = names.iter().copied().filter(|n| *n != s.name);
                let label = match closest(name, others.clone()) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => "no such service".into(),
                };
                let others: Vec<String> = others.map(str::to_string).collect();
                let mut e = cx.err(
                    *pos,
                    format!(
                        "service `{}` depends on `{name}`, which is no service of the stack",
                        s.name
                    ),
                    label,
                );
                e = if others.is_empty() {
                    e.help("`depends-on` names other services of `stack.services`; this stack has no other")
                } else {
                    e.note(format!("the other services are {}", list_names(&others)))
                };
                cx.errors.push(e);
                ok = false;
            }
        }
    }
    if !ok {
        return false;
    }
    match start_order(services) {
        Ok(_) => true,
        Err(StartOrderError::Cycle(circle)) => {
            // at the entry of the circle's first service that names the next one
            let first = services.iter().position(|s| s.name == circle[0]);
            let pos = first.and_then(|i| deps[i].iter().find(|(n, _)| *n == circle[1]));
            let pos = pos.map(|(_, p)| *p).unwrap_or_default();
            let e = cx
                .err(
                    pos,
                    format!(
                        "the services' `depends-on` go round in a circle: {}",
                        circle.join(" -> ")
                    ),
                    "closes a circle",
                )
                .help(
                    "each service starts once those it depends on are ready, so a circle never \
                     starts; remove one of these dependencies",
                );
            cx.errors.push(e);
            false
        }
        Err(StartOrderError::Unknown { .. }) => false,
    }
}

fn decode_service(
    cx: &mut Cx,
    node: &Node,
    seen: &mut BTreeSet<String>,
    file: &Path,
) -> Option<(ServiceSpec, Dependencies)> {
    let f = cx.fields(node, "a service", SERVICE_KEYS, EXAMPLE)?;
    let name = match f.get("name") {
        Some(v) => service_name(cx, v, seen),
        None => missing(cx, &f, "name", "name: influxdb"),
    };
    // `image: <name:tag>`, or `build: <dir>` (the service's own Dockerfile), as for agents
    let image = super::agent_image(cx, &f, "this service", file);
    let environment = match f.get("environment") {
        Some(v) => parse_env_map(cx, v, "`environment`", true),
        None => Some(Default::default()),
    };
    let command = words(cx, &f, "command", "command: [influxd, run]");
    let entrypoint = words(cx, &f, "entrypoint", "entrypoint: [/usr/bin/influxd]");
    let aliases = names(cx, &f, "aliases", "aliases: [db]");
    let hostname = match f.get("hostname") {
        Some(v) => Some(Some(cx.nonempty_string(v, "`hostname`", "hostname: db")?)),
        None => Some(None),
    };
    let ports = match f.get("ports") {
        Some(v) => ports(cx, v),
        None => Some(Vec::new()),
    };
    let ready = match f.get("ready") {
        Some(v) => readiness(cx, v).map(Some),
        None => Some(None),
    };
    let files = match f.get("files") {
        Some(v) => super::files::decode_files(cx, v, file, true),
        None => Some(Vec::new()),
    };
    let depends_on = match f.get("depends-on") {
        Some(v) => dependencies(cx, v),
        None => Some(Vec::new()),
    };
    let depends_on = depends_on?;
    let name = name?;
    // As a compose file's built service: the image is named after the service.
    let (image, build) = match image? {
        crate::plan::ImageSource::Image(i) => (i, None),
        crate::plan::ImageSource::Build {
            context,
            dockerfile,
            args,
        } => {
            let tag = format!("{}:built", name.to_ascii_lowercase());
            let image = crate::overrides::ImageRef::parse(&tag).ok()?;
            let build = crate::service::ServiceBuild {
                context,
                dockerfile,
                args,
            };
            (image, Some(build))
        }
    };
    let spec = ServiceSpec {
        name,
        image,
        build,
        environment: environment?,
        command: command?,
        entrypoint: entrypoint?,
        hostname: hostname?,
        aliases: aliases?,
        ports: ports?,
        ready: ready?,
        files: files?,
        depends_on: depends_on.iter().map(|(n, _)| n.clone()).collect(),
        container: Default::default(),
    };
    Some((spec, depends_on))
}

/// `depends-on: [service, ..]`: names, each once.
fn dependencies(cx: &mut Cx, v: &Node) -> Option<Dependencies> {
    let example = "depends-on: [influxdb]";
    let Kind::Seq(items) = &v.kind else {
        return cx.type_error(v, "`depends-on`", "a list of service names", example);
    };
    let mut out: Dependencies = Vec::new();
    for item in items {
        let name = cx.nonempty_string(item, "each item of `depends-on`", example)?;
        if out.iter().any(|(n, _)| *n == name) {
            let e = cx
                .err(item.pos, format!("`{name}` is named twice"), "again")
                .help("name each service once");
            return cx.fail(e);
        }
        out.push((name, item.pos));
    }
    Some(out)
}

fn missing<T>(cx: &mut Cx, f: &Fields, key: &str, example: &str) -> Option<T> {
    if f.misspelt(key) {
        return None;
    }
    let e = cx
        .err(
            f.pos(),
            format!("this service has no `{key}`"),
            format!("`{key}` is required"),
        )
        .help(format!("add `{example}`"));
    cx.fail(e)
}

/// A name other containers reach the service by: a DNS label, not taken by another container.
fn service_name(cx: &mut Cx, v: &Node, seen: &mut BTreeSet<String>) -> Option<String> {
    let name = dns_label(cx, v, "`name`", "name: influxdb")?;
    if !seen.insert(name.clone()) {
        let e = cx
            .err(
                v.pos,
                format!("the name `{name}` is taken by another container of the stack"),
                "not unique",
            )
            .help("crossbar, the registry, every agent and every service need names of their own");
        return cx.fail(e);
    }
    Some(name)
}

/// A host name label: letters, digits, `-` and `_`, not starting with `-`.
fn dns_label(cx: &mut Cx, v: &Node, what: &str, example: &str) -> Option<String> {
    let s = cx.nonempty_string(v, what, example)?;
    let ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !s.starts_with('-');
    if !ok {
        let e = cx
            .err(
                v.pos,
                format!("{what} `{s}` is not a host name"),
                "invalid name",
            )
            .help(format!(
                "other containers reach a service by this name; use letters, digits, '-' and \
                 '_', e.g. `{example}`"
            ));
        return cx.fail(e);
    }
    Some(s)
}

/// `command` / `entrypoint`: a list, or a string split at whitespace.
fn words(cx: &mut Cx, f: &Fields, key: &str, example: &str) -> Option<Option<Vec<String>>> {
    let Some(v) = f.get(key) else {
        return Some(None);
    };
    let words = match &v.kind {
        Kind::Str(s) => s.split_whitespace().map(str::to_string).collect(),
        _ => cx.strings(v, &format!("`{key}`"), example, false)?,
    };
    if words.is_empty() {
        let e = cx
            .err(v.pos, format!("`{key}` must not be empty"), "empty")
            .help(format!("remove `{key}` to keep the image's own"));
        return cx.fail(e);
    }
    Some(Some(words))
}

fn names(cx: &mut Cx, f: &Fields, key: &str, example: &str) -> Option<Vec<String>> {
    let Some(v) = f.get(key) else {
        return Some(Vec::new());
    };
    let Kind::Seq(items) = &v.kind else {
        return cx.type_error(v, &format!("`{key}`"), "a list", example);
    };
    let mut out = Vec::new();
    for item in items {
        out.push(dns_label(cx, item, "an alias", "db")?);
    }
    Some(out)
}

/// `ports`: container ports to publish on the engine's host.
fn ports(cx: &mut Cx, v: &Node) -> Option<Vec<u16>> {
    let Kind::Seq(items) = &v.kind else {
        return cx.type_error(v, "`ports`", "a list of port numbers", "ports: [8086]");
    };
    items
        .iter()
        .map(|p| port(cx, p, "each item of `ports`"))
        .collect()
}

fn port(cx: &mut Cx, v: &Node, what: &str) -> Option<u16> {
    match &v.kind {
        Kind::Num(n) => match n.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(p) if p > 0 => Some(p),
            _ => cx.type_error(v, what, "a port number (1 to 65535)", "8086"),
        },
        _ => cx.type_error(v, what, "a port number (1 to 65535)", "8086"),
    }
}

/// `ready: {log: REGEX | tcp: PORT | http: {port, path, status}, timeout}`.
fn readiness(cx: &mut Cx, v: &Node) -> Option<Readiness> {
    let example = "ready: {http: {port: 8086, path: /ping, status: 204}, timeout: 60s}";
    let f = cx.fields(v, "`ready`", READY_KEYS, example)?;
    let given: Vec<&str> = ["log", "tcp", "http"]
        .into_iter()
        .filter(|k| f.get(k).is_some())
        .collect();
    let check = match given.as_slice() {
        ["log"] => {
            let node = f.get("log").expect("given");
            let p = super::super::super::matcher::parse_regex(cx, node, "`log`")?;
            ReadyCheck::Log(p.as_str().to_string())
        }
        ["tcp"] => ReadyCheck::Tcp(port(cx, f.get("tcp").expect("given"), "`tcp`")?),
        ["http"] => http(cx, f.get("http").expect("given"))?,
        _ => {
            let e = cx
                .err(
                    f.pos(),
                    "`ready` needs exactly one of `log`, `tcp` or `http`",
                    format!("found {}", given.len()),
                )
                .help(format!("write e.g. `{example}`"));
            return cx.fail(e);
        }
    };
    let timeout = match f.get("timeout") {
        Some(t) => parse_duration(cx, t, "`timeout`", false)?,
        None => DEFAULT_SERVICE_READY,
    };
    Some(Readiness { check, timeout })
}

fn http(cx: &mut Cx, v: &Node) -> Option<ReadyCheck> {
    let example = "http: {port: 8086, path: /ping, status: 204}";
    let f = cx.fields(v, "`http`", HTTP_KEYS, example)?;
    let port = match f.get("port") {
        Some(p) => port(cx, p, "`port`")?,
        None => return missing(cx, &f, "port", "port: 8086"),
    };
    let path = match f.get("path") {
        Some(p) => cx.nonempty_string(p, "`path`", "path: /ping")?,
        None => "/".to_string(),
    };
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let status = match f.get("status") {
        Some(s) => match &s.kind {
            Kind::Num(n) if n.as_u64().is_some_and(|c| (100..600).contains(&c)) => {
                n.as_u64().expect("checked") as u16
            }
            _ => return cx.type_error(s, "`status`", "an HTTP status code", "status: 204"),
        },
        None => 200,
    };
    Some(ReadyCheck::Http { port, path, status })
}
