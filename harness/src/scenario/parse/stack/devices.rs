//! `stack.devices`: emulated devices (see `crate::device`): a name, the TCP `port` it
//! listens on, `serial: {agent, path}` for a serial device, `encoding` (`utf-8`, or `none`
//! for raw bytes written as hex), the `responses` it starts with and a `default-response`.
//! Also the responses as `device` steps write them (`define-responses`, `update-responses`).

use crate::device::{DeviceSpec, Response, Responses, SerialLink, DEFAULT_PORT};
use crate::overrides::ImageRef;
use std::collections::BTreeSet;

use super::super::super::error::{closest, list_names};
use super::super::super::node::{Cx, Kind, Node};
use super::super::values::{absolute_path, parse_duration, parse_image};

const DEVICE_KEYS: &[&str] = &[
    "name",
    "image",
    "port",
    "serial",
    "encoding",
    "responses",
    "default-response",
];
const SERIAL_KEYS: &[&str] = &["agent", "path"];
const DELAYED_KEYS: &[&str] = &["reply", "delay"];
const EXAMPLE: &str =
    "- name: ls425\n    serial: {agent: LS425, path: /dev/ttyUSB0}\n    responses: {'*IDN?': 'LSCI,MODEL425,LSA425T,1.3'}";
const RESPONSES_EXAMPLE: &str = "{'*IDN?': 'LSCI,MODEL425,LSA425T,1.3', 'OPST?': '132'}";

/// `devices:`, given the names already taken (crossbar, the registry, the agents, the
/// services), the agents' instance-ids (a serial device's `agent`) and the stack's default
/// device image.
pub(in crate::scenario::parse) fn decode_devices(
    cx: &mut Cx,
    node: &Node,
    taken: &[String],
    agents: &[String],
    default_image: &ImageRef,
) -> Option<Vec<DeviceSpec>> {
    let Kind::Seq(items) = &node.kind else {
        return cx.type_error(node, "`devices`", "a list", EXAMPLE);
    };
    let mut seen: BTreeSet<String> = taken.iter().cloned().collect();
    let mut serial_paths: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match decode_device(cx, item, &mut seen, agents, default_image) {
            Some(d) => {
                if let Some(link) = &d.serial {
                    let key = (link.agent.clone(), link.path.clone());
                    if !serial_paths.insert(key) {
                        let e = cx
                            .err(
                                item.pos,
                                format!(
                                    "agent `{}` has two serial devices at `{}`",
                                    link.agent, link.path
                                ),
                                "same path again",
                            )
                            .help("give each serial device of an agent a path of its own");
                        cx.errors.push(e);
                        ok = false;
                    }
                }
                out.push(d);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn decode_device(
    cx: &mut Cx,
    node: &Node,
    seen: &mut BTreeSet<String>,
    agents: &[String],
    default_image: &ImageRef,
) -> Option<DeviceSpec> {
    let f = cx.fields(node, "a device", DEVICE_KEYS, EXAMPLE)?;
    let name = match f.get("name") {
        Some(v) => device_name(cx, v, seen),
        None => {
            if f.misspelt("name") {
                return None;
            }
            let e = cx
                .err(f.pos(), "this device has no `name`", "`name` is required")
                .help("add `name: ls425`: agents reach the device by this host name");
            cx.fail(e)
        }
    };
    let image = match f.get("image") {
        Some(v) => parse_image(cx, v, "`image`"),
        None => Some(default_image.clone()),
    };
    let port = match f.get("port") {
        Some(v) => port(cx, v),
        None => Some(DEFAULT_PORT),
    };
    let serial = match f.get("serial") {
        Some(v) => serial(cx, v, agents).map(Some),
        None => Some(None),
    };
    let encoding = match f.get("encoding") {
        Some(v) => encoding(cx, v),
        None => Some(Some("utf-8".to_string())),
    };
    let (name, image, port, serial, encoding) = (name?, image?, port?, serial?, encoding?);
    let raw = encoding.is_none();
    let responses = match f.get("responses") {
        Some(v) => responses(cx, v, raw, "`responses`")?,
        None => Vec::new(),
    };
    let default_response = match f.get("default-response") {
        Some(v) => Some(response(cx, v, raw, 0)?),
        None => None,
    };
    Some(DeviceSpec {
        name,
        image,
        port,
        serial,
        encoding,
        responses,
        default_response,
    })
}

/// A host name label, not taken by another container of the stack.
fn device_name(cx: &mut Cx, v: &Node, seen: &mut BTreeSet<String>) -> Option<String> {
    let name = cx.nonempty_string(v, "`name`", "name: ls425")?;
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-');
    if !ok {
        let e = cx
            .err(
                v.pos,
                format!("`name` `{name}` is not a host name"),
                "invalid name",
            )
            .help(
                "agents reach the device by this name; use letters, digits, '-' and '_', \
                 e.g. `name: ls425`",
            );
        return cx.fail(e);
    }
    if !seen.insert(name.clone()) {
        let e = cx
            .err(
                v.pos,
                format!("the name `{name}` is taken by another container of the stack"),
                "not unique",
            )
            .help(
                "crossbar, the registry, every agent, service and device need names of their own",
            );
        return cx.fail(e);
    }
    Some(name)
}

fn port(cx: &mut Cx, v: &Node) -> Option<u16> {
    match &v.kind {
        Kind::Num(n) => match n.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(p) if p > 0 => Some(p),
            _ => cx.type_error(v, "`port`", "a port number (1 to 65535)", "port: 1234"),
        },
        _ => cx.type_error(v, "`port`", "a port number (1 to 65535)", "port: 1234"),
    }
}

/// `serial: {agent, path}`: an agent of the stack and an absolute path.
fn serial(cx: &mut Cx, v: &Node, agents: &[String]) -> Option<SerialLink> {
    let example = "serial: {agent: LS425, path: /dev/ttyUSB0}";
    let f = cx.fields(v, "`serial`", SERIAL_KEYS, example)?;
    let agent = match f.get("agent") {
        Some(a) => {
            let name = cx.nonempty_string(a, "`agent`", "agent: LS425")?;
            if !agents.contains(&name) {
                let label = match closest(&name, agents.iter().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => "no such agent".into(),
                };
                let mut e = cx.err(a.pos, format!("`{name}` is no agent of the stack"), label);
                e = if agents.is_empty() {
                    e.help("`serial.agent` names the agent (in `stack.agents`) that opens the port")
                } else {
                    e.note(format!("the agents are {}", list_names(agents)))
                };
                return cx.fail(e);
            }
            name
        }
        None => {
            if f.misspelt("agent") {
                return None;
            }
            let e = cx
                .err(f.pos(), "`serial` has no `agent`", "`agent` is required")
                .help(format!(
                    "name the agent that opens the port, e.g. `{example}`"
                ));
            return cx.fail(e);
        }
    };
    let path = match f.get("path") {
        Some(p) => absolute_path(cx, p, "`path`", "path: /dev/ttyUSB0")?,
        None => {
            if f.misspelt("path") {
                return None;
            }
            let e = cx
                .err(f.pos(), "`serial` has no `path`", "`path` is required")
                .help(format!(
                    "give the path the agent opens (its `--port` argument), e.g. `{example}`"
                ));
            return cx.fail(e);
        }
    };
    Some(SerialLink { agent, path })
}

/// `encoding: utf-8 | none`; `None` for raw bytes.
fn encoding(cx: &mut Cx, v: &Node) -> Option<Option<String>> {
    let text = match &v.kind {
        Kind::Null => return Some(None),
        _ => cx.nonempty_string(v, "`encoding`", "encoding: utf-8")?,
    };
    match text.to_ascii_lowercase().as_str() {
        "none" => Some(None),
        "utf-8" | "utf8" | "ascii" | "latin-1" | "latin1" => Some(Some(text)),
        _ => {
            let e = cx
                .err(
                    v.pos,
                    format!("unknown encoding `{text}`"),
                    "expected utf-8, ascii, latin-1 or none",
                )
                .help(
                    "`encoding: none` makes commands and responses raw bytes, written as hex \
                     (socs's `encoding=None`); the default is utf-8",
                );
            cx.fail(e)
        }
    }
}

/// A mapping command -> response (`what`: its key, for messages); `raw`: bytes, as hex.
pub(in crate::scenario::parse) fn responses(
    cx: &mut Cx,
    v: &Node,
    raw: bool,
    what: &str,
) -> Option<Responses> {
    let Kind::Map(entries) = &v.kind else {
        return cx.type_error(
            v,
            what,
            "a mapping of command to response",
            RESPONSES_EXAMPLE,
        );
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, value) in entries {
        if raw && !is_hex(&k.name) {
            let e = cx
                .err(
                    k.pos,
                    format!("command `{}` is not hex", k.name),
                    "not hex bytes",
                )
                .help(HEX_HELP);
            cx.errors.push(e);
            ok = false;
            continue;
        }
        match response(cx, value, raw, 0) {
            Some(r) => out.push((k.name.clone(), r)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

const HEX_HELP: &str = "with `encoding: none` the device speaks raw bytes: write each command \
                        and response as hex digits, two a byte (e.g. `0999000000060104`)";

/// One response: a string (numbers and booleans as written), null (no reply), a list (one
/// per time the command comes) or `{reply, delay}`.
pub(in crate::scenario::parse) fn response(
    cx: &mut Cx,
    v: &Node,
    raw: bool,
    depth: usize,
) -> Option<Response> {
    let example = "'RDGFIELD?': ['+1.0E-01', '+1.2E-01']  or  'OPST?': {reply: '132', delay: 2s}";
    match &v.kind {
        Kind::Null => Some(Response::Nothing),
        Kind::Str(_) | Kind::Num(_) | Kind::Bool(_) => {
            let text = v.scalar_text().expect("a scalar");
            if raw && !is_hex(&text) {
                let e = cx
                    .err(
                        v.pos,
                        format!("response `{text}` is not hex"),
                        "not hex bytes",
                    )
                    .help(HEX_HELP);
                return cx.fail(e);
            }
            Some(Response::Reply(text))
        }
        Kind::Seq(items) if depth == 0 => {
            let mut out = Vec::new();
            for item in items {
                out.push(response(cx, item, raw, depth + 1)?);
            }
            Some(Response::Sequence(out))
        }
        Kind::Seq(_) => {
            let e = cx
                .err(v.pos, "a list inside a list of responses", "nested list")
                .help("a list gives one response per time the command comes; each item is a string, null or {reply, delay}");
            cx.fail(e)
        }
        Kind::Map(_) => {
            let f = cx.fields(v, "a delayed response", DELAYED_KEYS, example)?;
            let reply = match f.get("reply") {
                Some(r) if matches!(r.kind, Kind::Seq(_) | Kind::Map(_)) => {
                    return cx.type_error(r, "`reply`", "a string or null", "reply: '132'")
                }
                Some(r) => response(cx, r, raw, depth + 1)?,
                None => Response::Nothing,
            };
            let delay =
                match f.get("delay") {
                    Some(d) => parse_duration(cx, d, "`delay`", true)?,
                    None => {
                        if f.misspelt("delay") {
                            return None;
                        }
                        let e = cx
                        .err(f.pos(), "this response has no `delay`", "`delay` is required")
                        .help("write `{reply: '132', delay: 2s}`, or the reply alone for no delay");
                        return cx.fail(e);
                    }
                };
            Some(Response::Delayed {
                reply: Box::new(reply),
                delay,
            })
        }
    }
}

/// Hex digits, two a byte.
pub(in crate::scenario::parse) fn is_hex(s: &str) -> bool {
    s.len().is_multiple_of(2) && s.chars().all(|c| c.is_ascii_hexdigit())
}
