//! One decoder per step kind: the keys of an `api`, `.ops` call, `until`, `exits`, `logs`,
//! `fault` and `fetch` step, once [`super::steps`] has found the kind and checked the keys.

use super::super::error::{closest, list_names};
use super::super::expect::{
    ApiExpect, CallExpect, FetchExpect, LogWindow, LogsCheck, ReplyExpect, DEFAULT_LOGS_TIMEOUT,
};
use super::super::keyword::StepKeyword;
use super::super::node::{Cx, Fields, Kind, Node};
use super::super::{
    CallStep, Fault, FaultAction, FetchStep, OpAction, StepKind, UntilTarget, DEFAULT_FAULT_TIMEOUT,
};
use super::expect::{
    parse_api_expect, parse_call_expect, parse_fetch_expect, parse_regex_list, parse_reply_expect,
};
use super::steps::{container_target, op_target, StepParts};
use super::values::{absolute_path, parse_duration};

/// `api: <instance>`.
pub(super) fn api(cx: &mut Cx, p: &StepParts) -> Option<StepKind> {
    let instance = op_target(cx, p.target, p.keyword, p.names, false)?.0;
    let expect = match p.fields.get("expect") {
        Some(v) => parse_api_expect(cx, v)?,
        None => ApiExpect::default(),
    };
    let timeout = match p.fields.get("timeout") {
        Some(v) => Some(parse_duration(cx, v, "`timeout`", false)?),
        None => None,
    };
    if timeout.is_some() && expect == ApiExpect::default() {
        let k = p.fields.key("timeout").expect("present");
        let e = cx
            .err(
                k.pos,
                "this `api` step polls (`timeout`) but has no `expect` to poll for",
                "nothing to wait for",
            )
            .help(
                "say what to wait for, e.g. `expect: {fields: {access_control: \
                 {update_count: {\">\": 0}}}}`, or remove `timeout`",
            );
        return cx.fail(e);
    }
    Some(StepKind::Api {
        instance,
        expect,
        timeout,
    })
}

/// `start|status|wait|stop|abort: <instance>.<op>`.
pub(super) fn op(cx: &mut Cx, p: &StepParts) -> Option<StepKind> {
    let action = p.keyword.op_action().expect("an .ops step kind");
    let (instance, op) = op_target(cx, p.target, p.keyword, p.names, true)?;
    let params = match p.fields.get("params") {
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
    let timeout = match (action, p.fields.get("timeout")) {
        (OpAction::Wait, Some(v)) => Some(parse_duration(cx, v, "`timeout`", false)?),
        (OpAction::Wait, None) => return p.missing(cx, "timeout", "timeout: 20s"),
        _ => None,
    };
    let expect = match p.fields.get("expect") {
        Some(v) => parse_reply_expect(cx, v)?,
        None => ReplyExpect::default(),
    };
    Some(StepKind::Op {
        action,
        instance,
        op: op.expect("op required"),
        params,
        timeout,
        expect,
    })
}

/// `call: <instance>.<procedure>`, with optional `args` (a list) and `kwargs` (a mapping).
pub(super) fn call(cx: &mut Cx, p: &StepParts) -> Option<StepKind> {
    let (instance, procedure) = op_target(cx, p.target, p.keyword, p.names, true)?;
    let args = match p.fields.get("args") {
        Some(v) => match v.to_json() {
            serde_json::Value::Array(items) => items,
            _ => return cx.type_error(v, "`args`", "a list", "args: [test-grant]"),
        },
        None => Vec::new(),
    };
    let kwargs = match p.fields.get("kwargs") {
        Some(v) => match v.to_json() {
            serde_json::Value::Object(map) => map,
            _ => {
                return cx.type_error(
                    v,
                    "`kwargs`",
                    "a mapping",
                    "kwargs: {grant_name: test-grant, action: acquire}",
                )
            }
        },
        None => serde_json::Map::new(),
    };
    let expect = match p.fields.get("expect") {
        Some(v) => parse_call_expect(cx, v)?,
        None => CallExpect::default(),
    };
    Some(StepKind::Call(CallStep {
        instance,
        procedure: procedure.expect("procedure required"),
        args,
        kwargs,
        expect,
    }))
}

/// `until: <instance>.<op> | registry`, with a required `timeout` and non-empty `expect`.
pub(super) fn until(cx: &mut Cx, p: &StepParts) -> Option<StepKind> {
    let target = match p.target.scalar_text().as_deref() {
        Some("registry") if p.names.registry => UntilTarget::Registry,
        _ => {
            let (instance, op) = op_target(cx, p.target, p.keyword, p.names, true)?;
            UntilTarget::Op {
                instance,
                op: op.expect("op required"),
            }
        }
    };
    let timeout = match p.fields.get("timeout") {
        Some(v) => parse_duration(cx, v, "`timeout`", false)?,
        None => return p.missing(cx, "timeout", "timeout: 20s"),
    };
    let expect = match p.fields.get("expect") {
        Some(v) => parse_reply_expect(cx, v)?,
        None => return p.missing(cx, "expect", "expect: {session: {status: running}}"),
    };
    if expect.is_empty() {
        let k = p.fields.key("expect").expect("present");
        let e = cx
            .err(
                k.pos,
                "`until` needs a condition, but this `expect` is empty",
                "nothing to wait for",
            )
            .help("say what to wait for, e.g. `expect: {session: {status: running}}`");
        return cx.fail(e);
    }
    Some(StepKind::Until {
        target,
        timeout,
        expect,
    })
}

/// `exits: <container>`, with a required `timeout` and an optional `code`.
pub(super) fn exits(cx: &mut Cx, p: &StepParts) -> Option<StepKind> {
    let container = container_target(cx, p.target, StepKeyword::Exits.as_str(), p.names)?;
    let timeout = match p.fields.get("timeout") {
        Some(v) => parse_duration(cx, v, "`timeout`", false)?,
        None => return p.missing(cx, "timeout", "timeout: 30s"),
    };
    let code = match p.fields.get("code") {
        Some(v) => match &v.kind {
            Kind::Num(n) if n.as_i64().is_some() => n.as_i64(),
            _ => return cx.type_error(v, "`code`", "a whole number", "code: 0"),
        },
        None => None,
    };
    Some(StepKind::Exits {
        container,
        code,
        timeout,
    })
}

/// `logs: <container>`: at least one check; `allow` only with `absent`.
pub(super) fn logs(cx: &mut Cx, p: &StepParts) -> Option<LogsCheck> {
    let f = &p.fields;
    let container = container_target(cx, p.target, StepKeyword::Logs.as_str(), p.names)?;
    let window = log_window(cx, f)?;
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
    let check = LogsCheck {
        container,
        window,
        timeout,
        contains,
        regex,
        lines,
        absent,
        allow,
    };
    check_logs_check(cx, p, &check)?;
    Some(check)
}

/// `window: step | run` (default `run`).
pub(super) fn log_window(cx: &mut Cx, f: &Fields) -> Option<LogWindow> {
    let Some(v) = f.get("window") else {
        return Some(LogWindow::Run);
    };
    let s = cx.string(v, "`window`", "window: step")?;
    match s.as_str() {
        "step" => Some(LogWindow::Step),
        "run" => Some(LogWindow::Run),
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
            cx.fail(e)
        }
    }
}

/// A `logs` step must check something, and `allow` only filters `absent`.
fn check_logs_check(cx: &mut Cx, p: &StepParts, c: &LogsCheck) -> Option<()> {
    if c.contains.is_empty() && c.regex.is_empty() && c.lines.is_empty() && c.absent.is_empty() {
        let e = cx
            .err(
                p.kind_key.pos,
                "this `logs` step checks nothing",
                "no checks",
            )
            .help("add `contains`, `regex`, `lines` or `absent`, e.g. `absent: [Traceback]`");
        return cx.fail(e);
    }
    if !c.allow.is_empty() && c.absent.is_empty() {
        let k = p.fields.key("allow").expect("present");
        let e = cx
            .err(
                k.pos,
                "`allow` without `absent`",
                "allow only filters `absent`",
            )
            .help("add `absent: [...]` (lines that must not appear), or remove `allow`");
        return cx.fail(e);
    }
    Some(())
}

/// The signals `fault: kill` may send.
const SIGNALS: &[&str] = &[
    "SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT",
];

/// `fault: <action>` with a required `container`, and the keys only some actions take.
pub(super) fn fault(cx: &mut Cx, p: &StepParts) -> Option<Fault> {
    let f = &p.fields;
    let (action, action_text) = fault_action(cx, p)?;
    let container = match f.get("container") {
        Some(v) => container_target(cx, v, "container", p.names)?,
        None => return p.missing(cx, "container", "container: crossbar"),
    };
    only_for(cx, f, &action_text, action, "signal", &[FaultAction::Kill])?;
    only_for(
        cx,
        f,
        &action_text,
        action,
        "for",
        &[FaultAction::Disconnect],
    )?;
    only_for(
        cx,
        f,
        &action_text,
        action,
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
            fault_signal(cx, v.pos, &s)?
        }
        None => "SIGKILL".to_string(),
    };
    let duration = match f.get("for") {
        Some(v) => Some(parse_duration(cx, v, "`for`", false)?),
        None => None,
    };
    let timeout = match f.get("timeout") {
        Some(v) => parse_duration(cx, v, "`timeout`", false)?,
        None => DEFAULT_FAULT_TIMEOUT,
    };
    Some(Fault {
        action,
        container,
        signal,
        duration,
        timeout,
    })
}

/// The action of a fault step (its target), with the text as written.
fn fault_action(cx: &mut Cx, p: &StepParts) -> Option<(FaultAction, String)> {
    let text = cx.nonempty_string(p.target, "the action of `fault`", "fault: restart")?;
    if let Some((_, a)) = FaultAction::ALL.iter().find(|(n, _)| *n == text) {
        return Some((*a, text));
    }
    let all: Vec<&str> = FaultAction::ALL.iter().map(|(n, _)| *n).collect();
    let e = cx
        .err(
            p.target.pos,
            format!("unknown fault `{text}`"),
            match closest(&text, all.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "not a fault".into(),
            },
        )
        .help(format!("a fault is one of {}", list_names(&all)));
    cx.fail(e)
}

/// An error if `key` is given to a fault whose action is not in `allowed`.
fn only_for(
    cx: &mut Cx,
    f: &Fields,
    action_text: &str,
    action: FaultAction,
    key: &str,
    allowed: &[FaultAction],
) -> Option<()> {
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
}

/// A signal name (`SIGTERM`, `term`, ...) as `SIGTERM`; an error if it is not one of
/// [`SIGNALS`].
pub(super) fn fault_signal(cx: &mut Cx, pos: super::super::node::Pos, s: &str) -> Option<String> {
    match signal_name(s) {
        Some(name) => Some(name),
        None => {
            let e = cx
                .err(pos, format!("unknown signal `{s}`"), "not a signal name")
                .help(format!("use one of {}", list_names(SIGNALS)));
            cx.fail(e)
        }
    }
}

/// `term`, `sigterm`, `SIGTERM` -> `SIGTERM`, if it is one of [`SIGNALS`].
fn signal_name(s: &str) -> Option<String> {
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    SIGNALS.contains(&name.as_str()).then_some(name)
}

/// `fetch: <container>` with a required absolute `path`, an optional `into` (a plain name;
/// default `<container>-<last part of path>`), `timeout` and `expect`.
pub(super) fn fetch(cx: &mut Cx, p: &StepParts) -> Option<StepKind> {
    let container = container_target(cx, p.target, StepKeyword::Fetch.as_str(), p.names)?;
    let path = match p.fields.get("path") {
        Some(v) => absolute_path(cx, v, "`path`", "path: /data")?,
        None => return p.missing(cx, "path", "path: /data"),
    };
    let into = match p.fields.get("into") {
        Some(v) => plain_name(cx, v)?,
        None => default_into(&container, &path),
    };
    let timeout = match p.fields.get("timeout") {
        Some(v) => parse_duration(cx, v, "`timeout`", true)?,
        None => std::time::Duration::ZERO,
    };
    let expect = match p.fields.get("expect") {
        Some(v) => parse_fetch_expect(cx, v)?,
        None => FetchExpect::default(),
    };
    Some(StepKind::Fetch(FetchStep {
        container,
        path,
        into,
        timeout,
        expect,
    }))
}

/// `into`: one directory name under the run's `fetched/`.
fn plain_name(cx: &mut Cx, v: &Node) -> Option<String> {
    let s = cx.nonempty_string(v, "`into`", "into: aggregator-data")?;
    let ok = !s.contains(['/', '\\']) && s != "." && s != "..";
    if ok {
        return Some(s);
    }
    let e = cx
        .err(
            v.pos,
            format!("`into` must be a plain name, not `{s}`"),
            "a name, not a path",
        )
        .help("`into` names the directory under the run's `fetched/` the files land in, e.g. `into: aggregator-data`");
    cx.fail(e)
}

/// `<container>-<last part of path>` (`aggregator-data`), or `<container>` for `/`.
fn default_into(container: &str, path: &str) -> String {
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(last) if !last.is_empty() => format!("{container}-{last}"),
        _ => container.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(signal_name("SIGTERM").as_deref(), Some("SIGTERM"));
        assert_eq!(signal_name("term").as_deref(), Some("SIGTERM"));
        assert_eq!(signal_name("sigusr1").as_deref(), Some("SIGUSR1"));
        assert_eq!(signal_name("SIGFOO"), None);
        assert_eq!(signal_name("9"), None);
    }
}
