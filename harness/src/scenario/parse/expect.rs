//! Decoding the `expect:` of a step: [`ReplyExpect`] (with its `session`), [`ApiExpect`], and
//! the `regex` list of a `logs` step. The names of reply codes, session statuses and op codes
//! are OCS's own ([`ResponseCode::NAMES`], [`SessionStatus::NAMES`], [`OpCode::NAMES`]).

use crate::ocs::{OpCode, ResponseCode, SessionStatus};

use super::super::error::{closest, list_names};
use super::super::expect::{
    ApiExpect, CallExpect, FetchExpect, PidExpect, ReplyExpect, SessionExpect,
};
use super::super::matcher::{parse_matcher, parse_messages, parse_regex, Matcher, Pattern};
use super::super::node::{Cx, Fields, Kind, Node};

const REPLY_KEYS: &[&str] = &[
    "status",
    "message",
    "session",
    "no-session",
    "messages",
    "data",
];
const SESSION_KEYS: &[&str] = &[
    "status",
    "success",
    "op_code",
    "degraded",
    "data",
    "session_id",
];

fn op_code_names() -> Vec<&'static str> {
    OpCode::NAMES.iter().map(|(_, n)| *n).collect()
}

fn session_status_names() -> Vec<&'static str> {
    SessionStatus::NAMES.iter().map(|(_, n)| *n).collect()
}

/// Decode an `expect:` of a reply step.
pub(super) fn parse_reply_expect(cx: &mut Cx, node: &Node) -> Option<ReplyExpect> {
    let f = cx.fields(
        node,
        "an `expect` of a reply",
        REPLY_KEYS,
        "expect: {status: ok, session: {status: running}}",
    )?;
    let mut out = ReplyExpect::default();
    let mut ok = true;
    if let Some(v) = f.get("status") {
        out.status = Some(reply_status(cx, v)?);
    }
    if let Some(v) = f.get("message") {
        match reply_message(cx, v) {
            Ok(m) => out.message = Some(m),
            Err(true) => ok = false,
            Err(false) => return None,
        }
    }
    if let Some(v) = f.get("no-session") {
        out.no_session = cx.bool(v, "`no-session`", "no-session: true")?;
    }
    if let Some(v) = f.get("session") {
        match parse_session(cx, v) {
            Some(s) => out.session = Some(s),
            None => ok = false,
        }
    }
    if let Some(v) = f.get("data") {
        if out.session.as_ref().is_some_and(|s| s.data.is_some()) {
            let k = f.key("data").expect("present");
            let e = cx
                .err(
                    k.pos,
                    "`data` is given twice: here and as `session.data`",
                    "second `data`",
                )
                .help("`data` under `expect` is a shortcut for `session.data`; keep one");
            return cx.fail(e);
        }
        match parse_matcher(cx, v) {
            Some(m) => out.session.get_or_insert_with(SessionExpect::default).data = Some(m),
            None => ok = false,
        }
    }
    if let Some(v) = f.get("messages") {
        match parse_messages(cx, v) {
            Some(m) => out.messages = Some(m),
            None => ok = false,
        }
    }
    if out.no_session {
        no_session_contradiction(cx, &f)?;
    }
    ok.then_some(out)
}

/// `status: ok | error | timeout`, with a hint when it is a session status or an op code.
fn reply_status(cx: &mut Cx, v: &Node) -> Option<ResponseCode> {
    let s = cx.string(v, "`status`", "status: ok")?;
    if let Ok(code) = s.parse::<ResponseCode>() {
        return Some(code);
    }
    let names: Vec<&str> = ResponseCode::NAMES.iter().map(|(_, n)| *n).collect();
    let label = match closest(&s, names.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => "expected ok, error or timeout".into(),
    };
    let mut e = cx
        .err(v.pos, format!("unknown reply status `{s}`"), label)
        .note(
            "`status` is the reply's response code: ok (the call went through), \
             error (it was refused) or timeout (a wait timed out)",
        );
    if let Ok(status) = s.parse::<SessionStatus>() {
        e = e.help(format!(
            "`{s}` is a session status; write `session: {{status: {status}}}`"
        ));
    } else if let Ok(code) = s.parse::<OpCode>() {
        e = e.help(format!(
            "`{s}` is an op code; write `session: {{op_code: {code}}}`"
        ));
    }
    cx.fail(e)
}

/// `message`: an exact text, or a matcher mapping. `Err(true)`: the matcher had errors (keep
/// decoding the rest); `Err(false)`: stop.
fn reply_message(cx: &mut Cx, v: &Node) -> Result<Matcher, bool> {
    string_matcher(cx, v, "`message`", "message: 'Started process \"count\".'")
}

/// A string expectation (`what`): its exact text, or a mapping of matcher operators
/// (`{regex: ..}`, `{contains: ..}`, ...). `Err(true)`: the matcher had errors (keep decoding
/// the rest); `Err(false)`: stop.
pub(super) fn string_matcher(
    cx: &mut Cx,
    v: &Node,
    what: &str,
    example: &str,
) -> Result<Matcher, bool> {
    if !matches!(v.kind, Kind::Map(_)) {
        let s = cx.string(v, what, example).ok_or(false)?;
        return Ok(Matcher::Equals(serde_json::Value::String(s)));
    }
    match parse_matcher(cx, v) {
        Some(m @ Matcher::Ops(_)) => Ok(m),
        Some(_) => {
            let key = what.trim_matches('`');
            let e = cx
                .err(
                    v.pos,
                    format!("{what} is a string: give its exact text or a matcher"),
                    "not a matcher mapping",
                )
                .help(format!(
                    "write e.g. `{key}: {{regex: '^Started'}}` or `{key}: {{contains: started}}`"
                ));
            cx.errors.push(e);
            Err(false)
        }
        None => Err(true),
    }
}

/// `no-session: true` together with what needs a session is an error.
fn no_session_contradiction(cx: &mut Cx, f: &Fields) -> Option<()> {
    let Some(k) = ["session", "data", "messages"]
        .iter()
        .find_map(|k| f.key(k))
    else {
        return Some(());
    };
    let e = cx
        .err(
            k.pos,
            format!("`no-session: true` contradicts `{}`", k.name),
            "expects a session",
        )
        .help(format!(
            "a reply without a session has no {}; remove one of the two",
            if k.name == "messages" {
                "messages"
            } else {
                "session data"
            }
        ));
    cx.fail(e)
}

fn parse_session(cx: &mut Cx, node: &Node) -> Option<SessionExpect> {
    let f = cx.fields(
        node,
        "`session`",
        SESSION_KEYS,
        "session: {status: done, success: true}",
    )?;
    let mut out = SessionExpect::default();
    if let Some(v) = f.get("status") {
        out.status = Some(session_status(cx, v)?);
    }
    if let Some(v) = f.get("success") {
        out.success = Some(match v.kind {
            Kind::Null => None,
            Kind::Bool(b) => Some(b),
            _ => {
                return cx.type_error(
                    v,
                    "`success`",
                    "`true`, `false` or `null` (not done yet)",
                    "success: true",
                )
            }
        });
    }
    if let Some(v) = f.get("op_code") {
        out.op_code = Some(op_code(cx, v)?);
    }
    if let Some(v) = f.get("degraded") {
        out.degraded = Some(cx.bool(v, "`degraded`", "degraded: false")?);
    }
    if let Some(v) = f.get("session_id") {
        out.session_id = match &v.kind {
            Kind::Num(n) if n.as_i64().is_some() => n.as_i64(),
            _ => return cx.type_error(v, "`session_id`", "an integer", "session_id: 0"),
        };
    }
    if let Some(v) = f.get("data") {
        out.data = Some(parse_matcher(cx, v)?);
    }
    Some(out)
}

/// `session.status`, with a hint when it is an op code.
fn session_status(cx: &mut Cx, v: &Node) -> Option<SessionStatus> {
    let s = cx.string(v, "`session.status`", "status: running")?;
    if let Ok(status) = s.parse::<SessionStatus>() {
        return Some(status);
    }
    let names = session_status_names();
    let help = if let Ok(code) = s.parse::<OpCode>() {
        format!(
            "`{s}` is an op code; write `op_code: {code}`, or `status: {}`",
            status_of_op_code(code)
        )
    } else {
        format!("write one of {}", list_names(&names))
    };
    let label = match closest(&s, names.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => "unknown session status".into(),
    };
    let e = cx
        .err(v.pos, format!("unknown session status `{s}`"), label)
        .help(help);
    cx.fail(e)
}

/// The session status to suggest for someone who wrote op code `code` as a status.
fn status_of_op_code(code: OpCode) -> SessionStatus {
    match code {
        OpCode::Succeeded | OpCode::Failed => SessionStatus::Done,
        OpCode::Starting => SessionStatus::Starting,
        OpCode::Stopping => SessionStatus::Stopping,
        _ => SessionStatus::Running,
    }
}

/// `session.op_code`: an op code name, in any case.
fn op_code(cx: &mut Cx, v: &Node) -> Option<OpCode> {
    let Kind::Str(s) = &v.kind else {
        return cx.type_error(v, "`op_code`", "an op code name", "op_code: SUCCEEDED");
    };
    if let Ok(code) = s.parse::<OpCode>() {
        return Some(code);
    }
    let names = op_code_names();
    let label = match closest(&s.to_ascii_uppercase(), names.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => "unknown op code".into(),
    };
    let e = cx
        .err(v.pos, format!("unknown op code `{s}`"), label)
        .help(format!(
            "write one of {} (case does not matter)",
            list_names(&names)
        ));
    cx.fail(e)
}

/// Decode an `expect:` of an `api` step.
pub(super) fn parse_api_expect(cx: &mut Cx, node: &Node) -> Option<ApiExpect> {
    const KEYS: &[&str] = &[
        "agent-class",
        "tasks",
        "processes",
        "feeds",
        "pid",
        "fields",
    ];
    let f = cx.fields(
        node,
        "an `expect` of an `api` step",
        KEYS,
        "expect: {agent-class: BarebonesAgent, tasks: [print]}",
    )?;
    let mut out = ApiExpect::default();
    if let Some(v) = f.get("agent-class") {
        out.agent_class = Some(cx.string(v, "`agent-class`", "agent-class: BarebonesAgent")?);
    }
    if let Some(v) = f.get("tasks") {
        out.tasks = cx.strings(v, "`tasks`", "tasks: [print]", true)?;
    }
    if let Some(v) = f.get("processes") {
        out.processes = cx.strings(v, "`processes`", "processes: [count]", true)?;
    }
    if let Some(v) = f.get("feeds") {
        out.feeds = cx.strings(v, "`feeds`", "feeds: [feed_name]", true)?;
    }
    if let Some(v) = f.get("pid") {
        out.pid = Some(pid_expect(cx, v)?);
    }
    if let Some(v) = f.get("fields") {
        out.fields = Some(parse_matcher(cx, v)?);
    }
    Some(out)
}

/// Decode an `expect:` of a `call` step: `value` (a matcher on the return value) and/or
/// `error` (the call must fail; its text as a string or a matcher).
pub(super) fn parse_call_expect(cx: &mut Cx, node: &Node) -> Option<CallExpect> {
    let f = cx.fields(
        node,
        "an `expect` of a `call` step",
        &["value", "error"],
        "expect: {value: {message: grant acquired}}",
    )?;
    let mut out = CallExpect::default();
    if let Some(v) = f.get("value") {
        out.value = Some(parse_matcher(cx, v)?);
    }
    if let Some(v) = f.get("error") {
        match string_matcher(cx, v, "`error`", "error: {contains: Credential failed}") {
            Ok(m) => out.error = Some(m),
            Err(_) => return None,
        }
    }
    if let (Some(_), Some(k)) = (&out.value, f.key("error")) {
        let e = cx
            .err(
                k.pos,
                "`error` contradicts `value`",
                "expects a failed call",
            )
            .help("a call either returns a value or fails; keep one of `value` and `error`");
        return cx.fail(e);
    }
    Some(out)
}

/// `pid: same | changed`.
fn pid_expect(cx: &mut Cx, v: &Node) -> Option<PidExpect> {
    match cx.string(v, "`pid`", "pid: same")?.as_str() {
        "same" => Some(PidExpect::Same),
        "changed" => Some(PidExpect::Changed),
        _ => {
            let e = cx
                .err(
                    v.pos,
                    "`pid` must be `same` or `changed`",
                    "not same/changed",
                )
                .help(
                    "`pid: same` checks the agent process survived (compared with the \
                     previous `api` step of this agent), `pid: changed` that it restarted",
                );
            cx.fail(e)
        }
    }
}

/// Decode the regex list of a `logs` step.
pub(super) fn parse_regex_list(cx: &mut Cx, node: &Node) -> Option<Vec<Pattern>> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match parse_regex(cx, item, "`regex`") {
            Some(p) => out.push(p),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Decode the `expect:` of a `fetch` step.
pub(super) fn parse_fetch_expect(cx: &mut Cx, node: &Node) -> Option<FetchExpect> {
    const KEYS: &[&str] = &["exists", "count", "size", "names"];
    let f = cx.fields(
        node,
        "an `expect` of a `fetch` step",
        KEYS,
        "expect: {count: {\">=\": 1}, size: {\">\": 0}}",
    )?;
    let mut out = FetchExpect::default();
    if let Some(v) = f.get("exists") {
        out.exists = Some(cx.bool(v, "`exists`", "exists: true")?);
    }
    let mut ok = true;
    for (key, slot) in [
        ("count", &mut out.count),
        ("size", &mut out.size),
        ("names", &mut out.names),
    ] {
        if let Some(v) = f.get(key) {
            *slot = parse_matcher(cx, v);
            ok &= slot.is_some();
        }
    }
    ok.then_some(out)
}
