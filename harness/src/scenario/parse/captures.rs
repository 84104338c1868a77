//! Decoding `capture:` (names and paths, checked against what the step kind gets back) and
//! checking that every `{{name}}` a step uses was captured by an earlier step.

use std::collections::BTreeSet;

use super::super::capture::{references, valid_name, Capture, CaptureFrom, TimeValue, ValuePath};
use super::super::error::{closest, list_names};
use super::super::keyword::StepKeyword;
use super::super::node::{Cx, Kind, Node, Pos};

const EXAMPLE: &str = "capture: {file: data.current_file}";

/// The keys of a step whose strings may use `{{name}}`.
const INTERPOLATED: &[&str] = &["params", "args", "kwargs", "password", "expect"];

/// Decode `capture: {NAME: PATH, ..}` of a `keyword` step.
pub(super) fn decode_captures(
    cx: &mut Cx,
    node: &Node,
    keyword: StepKeyword,
) -> Option<Vec<Capture>> {
    let Kind::Map(entries) = &node.kind else {
        return cx.type_error(node, "`capture`", "a mapping of names to paths", EXAMPLE);
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        if !valid_name(&k.name) {
            let e = cx
                .err(
                    k.pos,
                    format!("`{}` cannot name a capture", k.name),
                    "invalid name",
                )
                .help(
                    "a capture name starts with a letter or `_`, then letters, digits, `_` \
                     or `-`",
                );
            cx.errors.push(e);
            ok = false;
            continue;
        }
        if let Kind::Map(_) = &v.kind {
            match time_of(cx, v) {
                Some(t) => out.push(Capture {
                    name: k.name.clone(),
                    from: CaptureFrom::Time(t),
                }),
                None => ok = false,
            }
            continue;
        }
        match decode_path(cx, v, keyword, "capture") {
            Some(path) => out.push(Capture {
                name: k.name.clone(),
                from: CaptureFrom::Path(path),
            }),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Decode `redact: [PATH, ..]` of a `keyword` step: the parts of its outcome the transcript
/// shows as `<redacted>` (what varies between runs).
pub(super) fn decode_redactions(
    cx: &mut Cx,
    node: &Node,
    keyword: StepKeyword,
) -> Option<Vec<ValuePath>> {
    let example = "redact: [session.messages]";
    let Kind::Seq(items) = &node.kind else {
        return cx.type_error(node, "`redact`", "a list of paths", example);
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match decode_path(cx, item, keyword, "redact") {
            Some(p) => out.push(p),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A capture's time source (`{now: 0s}`, `{at: t0, plus: 1s}`); an error for any other mapping.
fn time_of(cx: &mut Cx, v: &Node) -> Option<TimeValue> {
    match TimeValue::of(&v.to_json()) {
        Some(Ok(t)) => Some(t),
        Some(Err(why)) => {
            let e = cx.err(v.pos, format!("bad time: {why}"), "bad time");
            cx.fail(e)
        }
        None => {
            let e = cx
                .err(
                    v.pos,
                    "a capture takes a path or a time",
                    "neither a path nor a time",
                )
                .help(
                    "write a path into what the step got back (`data.current_file`), or the \
                     step's time, `{now: 0s}`",
                );
            cx.fail(e)
        }
    }
}

/// One capture (or `redact`) path: it parses, and starts with what the step gets back.
fn decode_path(cx: &mut Cx, v: &Node, keyword: StepKeyword, what: &str) -> Option<ValuePath> {
    let text = cx.nonempty_string(v, &format!("a {what} path"), EXAMPLE)?;
    let path =
        match ValuePath::parse(&text) {
            Ok(p) => p,
            Err(why) => {
                let e = cx.err(v.pos, format!("bad {what} path: {why}"), "bad path").help(
                "write keys separated by `.`, list indexes as `[0]`, and keys with dots as \
                 `[\"observatory.fake1\"]`, e.g. `data.channels[0].name`",
            );
                return cx.fail(e);
            }
        };
    let roots = keyword.capture_roots();
    if roots.contains(&path.first()) {
        return Some(path);
    }
    let label = match closest(path.first(), roots.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => "not in what this step gets back".into(),
    };
    let e = cx
        .err(
            v.pos,
            format!("a `{keyword}` step gets back no `{}`", path.first()),
            label,
        )
        .help(format!(
            "a {what} path of a `{keyword}` step starts with {} (the keys of its `expect`)",
            list_names(roots)
        ));
    cx.fail(e)
}

/// Report every `{{name}}` in the interpolated keys of step `node` that is not in `known`.
pub(super) fn check_references(cx: &mut Cx, node: &Node, known: &BTreeSet<String>) {
    let Kind::Map(entries) = &node.kind else {
        return;
    };
    for (_, v) in entries
        .iter()
        .filter(|(k, _)| INTERPOLATED.contains(&k.name.as_str()))
    {
        check_node(cx, v, known);
    }
}

fn check_node(cx: &mut Cx, node: &Node, known: &BTreeSet<String>) {
    match &node.kind {
        Kind::Str(s) => {
            for r in references(s) {
                if !known.contains(&r.name) {
                    let pos = reference_pos(cx, node.pos, &r.name);
                    let e = unknown_capture(cx, pos, &r.name, known);
                    cx.errors.push(e);
                }
            }
        }
        Kind::Seq(items) => items.iter().for_each(|n| check_node(cx, n, known)),
        Kind::Map(entries) => {
            match TimeValue::of(&node.to_json()) {
                Some(Err(why)) => {
                    let e = cx
                        .err(node.pos, format!("bad time: {why}"), "bad time")
                        .help("write e.g. `{now: +100s}` or `{at: t0, plus: 100s}`");
                    cx.errors.push(e);
                }
                Some(Ok(TimeValue::At(name, _))) if !known.contains(&name) => {
                    let e = unknown_capture(cx, node.pos, &name, known);
                    cx.errors.push(e);
                }
                _ => {}
            }
            entries.iter().for_each(|(_, n)| check_node(cx, n, known))
        }
        _ => {}
    }
}

fn unknown_capture(
    cx: &Cx,
    pos: Pos,
    name: &str,
    known: &BTreeSet<String>,
) -> super::super::ScenarioError {
    let label = match closest(name, known.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None => "not captured before this step".into(),
    };
    let e = cx.err(pos, format!("no capture `{name}` before this step"), label);
    if known.is_empty() {
        e.help(format!(
            "capture it in an earlier step, e.g. `capture: {{{name}: data.current_file}}`"
        ))
    } else {
        let names: Vec<&str> = known.iter().map(String::as_str).collect();
        e.note(format!("the captures so far are {}", list_names(&names)))
    }
}

/// Where `{{name}}` is written on the scalar's line (the scalar's position if not found).
fn reference_pos(cx: &Cx, pos: Pos, name: &str) -> Pos {
    let Some(line) = cx.src.line_text(pos.line) else {
        return pos;
    };
    let chars: Vec<char> = line.chars().collect();
    let from = pos.col.saturating_sub(1).min(chars.len());
    let rest: String = chars[from..].iter().collect();
    references(&rest)
        .into_iter()
        .find(|r| r.name == name)
        .map_or(pos, |r| Pos {
            line: pos.line,
            col: pos.col + r.at,
            width: r.len,
        })
}
