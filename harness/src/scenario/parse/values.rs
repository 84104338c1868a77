//! Values that appear in several places of a scenario file: durations (one grammar for every
//! `timeout` and `for`: a number of seconds, or a `humantime` duration), image references and
//! environment-style string maps.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::overrides::ImageRef;

use super::super::node::{Cx, Key, Kind, Node};

/// Longest timeout accepted anywhere.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

const DURATION_HELP: &str = "write e.g. `20s`, `500ms`, `2m`, or a number of seconds";

/// Decode a duration: `20s`, `500ms`, `2m`, `1h`, `1m 30s` (see [`seconds_of`]), or a number
/// of seconds. Negative, over an hour, or (unless `allow_zero`) zero is an "absurd timeout".
pub(crate) fn parse_duration(
    cx: &mut Cx,
    node: &Node,
    what: &str,
    allow_zero: bool,
) -> Option<Duration> {
    let (secs, shown) = match &node.kind {
        Kind::Num(n) => (n.as_f64().unwrap_or(f64::NAN), node.raw.clone()),
        Kind::Str(s) => {
            let t = s.trim();
            match seconds_of(t) {
                Some(secs) => (secs, t.to_string()),
                None => {
                    let e = cx
                        .err(
                            node.pos,
                            format!("{what}: `{t}` is not a duration"),
                            "expected a duration",
                        )
                        .help(DURATION_HELP);
                    return cx.fail(e);
                }
            }
        }
        _ => return cx.type_error(node, what, "a duration", "timeout: 20s"),
    };
    if let Some(problem) = absurd(secs, allow_zero) {
        let e = cx
            .err(
                node.pos,
                format!("absurd timeout `{shown}`: {problem}"),
                "absurd timeout",
            )
            .help(format!(
                "{DURATION_HELP}; {} and at most 1 hour",
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

/// The seconds of a duration written as text: a number of seconds (`20`, `1.5`), or what
/// `humantime` reads (`20s`, `500ms`, `2m`, `2min`, `1h`, `1.5s`, `1m 30s`). A leading `-`
/// makes it negative, so that `-10s` is reported as negative rather than as no duration.
fn seconds_of(t: &str) -> Option<f64> {
    let (sign, body) = match t.strip_prefix('-') {
        Some(rest) => (-1.0, rest.trim_start()),
        None => (1.0, t),
    };
    let bare_number = !body.is_empty() && body.chars().all(|c| c.is_ascii_digit() || c == '.');
    let secs = if bare_number {
        body.parse::<f64>().ok()?
    } else {
        humantime::parse_duration(body).ok()?.as_secs_f64()
    };
    Some(sign * secs)
}

/// Why `secs` is no sensible timeout, if it is not.
fn absurd(secs: f64, allow_zero: bool) -> Option<&'static str> {
    if secs.is_nan() {
        Some("it is not a number")
    } else if secs < 0.0 {
        Some("it is negative")
    } else if secs == 0.0 && !allow_zero {
        Some("it is zero, so it would give up before anything could happen")
    } else if secs > MAX_TIMEOUT.as_secs_f64() {
        Some("it is over 1 hour")
    } else {
        None
    }
}

/// An image reference.
pub(super) fn parse_image(cx: &mut Cx, node: &Node, what: &str) -> Option<ImageRef> {
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
pub(super) fn parse_env_map(
    cx: &mut Cx,
    node: &Node,
    what: &str,
    list_ok: bool,
) -> Option<BTreeMap<String, String>> {
    match &node.kind {
        Kind::Map(entries) => env_from_map(cx, entries, what),
        Kind::Seq(items) if list_ok => env_from_list(cx, items, what),
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

fn env_from_map(
    cx: &mut Cx,
    entries: &[(Key, Node)],
    what: &str,
) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in entries {
        let e = match v.scalar_text() {
            Some(s) => {
                out.insert(k.name.clone(), s);
                continue;
            }
            None if matches!(v.kind, Kind::Null) => cx
                .err(
                    k.pos,
                    format!("{what}: `{}` has no value", k.name),
                    "no value",
                )
                .help(format!(
                    "write `{0}: value`; docker-compose would pass `{0}` through from \
                     the host, the harness does not: write `{0}: ${{{0}}}` for that",
                    k.name
                )),
            None => cx
                .err(
                    v.pos,
                    format!(
                        "{what}: the value of `{}` must be a string, but this is {}",
                        k.name,
                        v.describe()
                    ),
                    "expected a string",
                )
                .help(format!("write e.g. `{}: info`", k.name)),
        };
        ok = false;
        cx.errors.push(e);
    }
    ok.then_some(out)
}

fn env_from_list(cx: &mut Cx, items: &[Node], what: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
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

/// An absolute path in a container (`what` names the key).
pub(crate) fn absolute_path(cx: &mut Cx, v: &Node, what: &str, example: &str) -> Option<String> {
    let s = cx.nonempty_string(v, what, example)?;
    if s.starts_with('/') && !s.split('/').any(|part| part == "..") {
        return Some(s);
    }
    let e = cx
        .err(
            v.pos,
            format!("{what} must be an absolute path in the container, not `{s}`"),
            "expected a path starting with /",
        )
        .help(format!(
            "write the path as the container sees it, without `..`, e.g. `{example}`"
        ));
    cx.fail(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_of_each_unit() {
        assert_eq!(seconds_of("20s"), Some(20.0));
        assert_eq!(seconds_of("500ms"), Some(0.5));
        assert_eq!(seconds_of("2m"), Some(120.0));
        assert_eq!(seconds_of("2min"), Some(120.0));
        assert_eq!(seconds_of("1h"), Some(3600.0));
        assert_eq!(seconds_of("1.5"), Some(1.5));
        assert_eq!(seconds_of("2 s"), Some(2.0));
        assert_eq!(seconds_of("1.5s"), Some(1.5));
        assert_eq!(seconds_of("1m 30s"), Some(90.0));
        assert_eq!(seconds_of("1h30m"), Some(5400.0));
        assert_eq!(seconds_of("-10s"), Some(-10.0));
        assert_eq!(seconds_of("-5"), Some(-5.0));
        assert_eq!(seconds_of("0s"), Some(0.0));
        assert_eq!(
            seconds_of("2 days"),
            Some(172_800.0),
            "absurd, but a duration"
        );
        assert_eq!(seconds_of("soon"), None);
        assert_eq!(seconds_of("inf"), None);
        assert_eq!(seconds_of("nan"), None);
        assert_eq!(seconds_of("1e3"), None);
        assert_eq!(seconds_of("20 parsecs"), None);
        assert_eq!(seconds_of(""), None);
        assert_eq!(seconds_of("1..2"), None);
    }

    #[test]
    fn absurd_timeouts() {
        assert_eq!(absurd(1.0, false), None);
        assert_eq!(absurd(0.0, true), None);
        assert!(absurd(0.0, false).unwrap().starts_with("it is zero"));
        assert_eq!(absurd(-1.0, true), Some("it is negative"));
        assert_eq!(absurd(3601.0, true), Some("it is over 1 hour"));
        assert_eq!(absurd(3600.0, true), None);
        assert_eq!(absurd(f64::NAN, true), Some("it is not a number"));
    }
}
