//! The checks a step makes: [`ReplyExpect`] on an `.ops` reply, [`ApiExpect`] on `get_api`,
//! [`LogsCheck`] on container log lines, [`FetchExpect`] on files fetched out of a container,
//! and checking actual values against them, producing
//! [`Mismatch`]es (decoding them from the file is `parse::expect`). All checks are pure: the
//! runner fetches the reply, the API or the log lines.

use crate::filespec::Fetched;
use std::time::Duration;

use serde_json::Value;

use crate::ocs::{AgentApi, OpCode, Reply, ResponseCode, Session, SessionStatus};

use super::capture::Bindings;
use super::error::list_names;
use super::matcher::{Matcher, MessagesExpect, Mismatch, Pattern};

/// Expectations on the reply of `start`/`status`/`wait`/`stop`/`abort` (and what `until` polls).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplyExpect {
    /// The reply's response code.
    pub status: Option<ResponseCode>,
    /// The reply's message.
    pub message: Option<Matcher>,
    /// The reply's session.
    pub session: Option<SessionExpect>,
    /// `no-session: true`: the reply carries no session (e.g. a start rejected for its
    /// params). `false` checks nothing.
    pub no_session: bool,
    /// The session's message texts.
    pub messages: Option<MessagesExpect>,
}

/// Expectations on a session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionExpect {
    /// `starting | running | stopping | done`.
    pub status: Option<SessionStatus>,
    /// `Some(None)`: `success` must be null (not done yet).
    pub success: Option<Option<bool>>,
    /// The derived op code.
    pub op_code: Option<OpCode>,
    /// The degraded flag.
    pub degraded: Option<bool>,
    /// Partial match on `session.data`.
    pub data: Option<Matcher>,
    /// The session id.
    pub session_id: Option<i64>,
}

impl ReplyExpect {
    /// This expectation as the runner checks it (see [`Matcher::resolve`]).
    pub fn resolve(&self, b: &Bindings) -> ReplyExpect {
        let mut e = self.clone();
        e.message = e.message.map(|m| m.resolve(b));
        if let Some(s) = &mut e.session {
            s.data = s.data.as_ref().map(|m| m.resolve(b));
        }
        e.messages = e.messages.map(|m| m.resolve(b));
        e
    }

    /// Whether nothing is expected (the step only needs the call to go through).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Check `reply`; one mismatch per failed expectation.
    pub fn check_reply(&self, reply: &Reply) -> Vec<Mismatch> {
        let mut out = Vec::new();
        if let Some(want) = self.status {
            if reply.status != want {
                out.push(Mismatch::new(
                    "status",
                    format!(
                        "expected {}, got {} (message: {:?})",
                        want.name(),
                        reply.status.name(),
                        reply.message
                    ),
                ));
            }
        }
        if let Some(m) = &self.message {
            if let Err(e) = m.matches_str(&reply.message) {
                out.push(e.under("message"));
            }
        }
        if self.no_session {
            if let Some(s) = &reply.session {
                out.push(Mismatch::new(
                    "session",
                    format!(
                        "expected no session, got session {} of `{}` ({}, status {})",
                        s.session_id, s.op_name, s.op_code, s.status
                    ),
                ));
            }
        }
        let wants_session = self.session.is_some() || self.messages.is_some();
        let session = match (&reply.session, wants_session) {
            (Some(s), _) => Some(s),
            (None, true) => {
                out.push(Mismatch::new(
                    "session",
                    format!(
                        "expected a session, got none (reply: {} {:?})",
                        reply.status.name(),
                        reply.message
                    ),
                ));
                None
            }
            (None, false) => None,
        };
        if let (Some(want), Some(s)) = (&self.session, session) {
            out.extend(want.check_session(s));
        }
        if let (Some(m), Some(s)) = (&self.messages, session) {
            out.extend(m.check(&s.message_texts()));
        }
        out
    }
}

impl SessionExpect {
    /// Check session `s`; one mismatch per failed expectation.
    pub fn check_session(&self, s: &Session) -> Vec<Mismatch> {
        let mut out = Vec::new();
        if let Some(st) = self.status {
            if s.status != st {
                out.push(Mismatch::new(
                    "session.status",
                    format!("expected {st}, got {}", s.status),
                ));
            }
        }
        if let Some(success) = self.success {
            if s.success != success {
                let show = |b: Option<bool>| b.map_or("null".to_string(), |b| b.to_string());
                out.push(Mismatch::new(
                    "session.success",
                    format!("expected {}, got {}", show(success), show(s.success)),
                ));
            }
        }
        if let Some(code) = self.op_code {
            if s.op_code != code {
                out.push(Mismatch::new(
                    "session.op_code",
                    format!("expected {code}, got {}", s.op_code),
                ));
            }
        }
        if let Some(d) = self.degraded {
            if s.degraded != d {
                out.push(Mismatch::new(
                    "session.degraded",
                    format!("expected {d}, got {}", s.degraded),
                ));
            }
        }
        if let Some(id) = self.session_id {
            if s.session_id != id {
                out.push(Mismatch::new(
                    "session.session_id",
                    format!("expected {id}, got {}", s.session_id),
                ));
            }
        }
        if let Some(m) = &self.data {
            if let Err(e) = m.matches(Some(&s.data)) {
                out.push(e.under("session.data"));
            }
        }
        out
    }
}

/// Expectations on an agent's `get_api`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiExpect {
    /// The agent class it reports.
    pub agent_class: Option<String>,
    /// Tasks that must be declared (others may exist).
    pub tasks: Vec<String>,
    /// Processes that must be declared (others may exist).
    pub processes: Vec<String>,
    /// Feeds that must exist (others may exist).
    pub feeds: Vec<String>,
    /// `pid: same | changed`: the agent process compared with the previous `api` step of the
    /// same agent (the runner checks it; `same` means it survived a fault).
    pub pid: Option<PidExpect>,
    /// `fields`: a partial match on the whole `get_api` value, for any field of it (e.g.
    /// `access_control.update_count`).
    pub fields: Option<Matcher>,
}

/// The agent process across a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidExpect {
    /// The same process (`instance_pid` and feed session ids unchanged).
    Same,
    /// A new process.
    Changed,
}

impl ApiExpect {
    /// Check `api`; one mismatch per failed expectation.
    pub fn check_api(&self, api: &AgentApi) -> Vec<Mismatch> {
        let mut out = Vec::new();
        if let Some(want) = &self.agent_class {
            if api.agent_class.as_deref() != Some(want.as_str()) {
                out.push(Mismatch::new(
                    "agent_class",
                    format!(
                        "expected {want:?}, got {}",
                        api.agent_class
                            .as_ref()
                            .map_or("null".to_string(), |c| format!("{c:?}"))
                    ),
                ));
            }
        }
        let names = |ops: &[crate::ocs::OpInfo]| -> String {
            if ops.is_empty() {
                "none".to_string()
            } else {
                let n: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
                list_names(&n)
            }
        };
        for t in &self.tasks {
            if api.task(t).is_none() {
                let why = if api.process(t).is_some() {
                    format!("`{t}` is a process, not a task")
                } else {
                    format!("the agent's tasks are {}", names(&api.tasks))
                };
                out.push(Mismatch::new(
                    "tasks",
                    format!("expected a task `{t}`; {why}"),
                ));
            }
        }
        for p in &self.processes {
            if api.process(p).is_none() {
                let why = if api.task(p).is_some() {
                    format!("`{p}` is a task, not a process")
                } else {
                    format!("the agent's processes are {}", names(&api.processes))
                };
                out.push(Mismatch::new(
                    "processes",
                    format!("expected a process `{p}`; {why}"),
                ));
            }
        }
        if let Some(m) = &self.fields {
            if let Err(e) = m.matches(Some(&api.raw)) {
                out.push(e.under("get_api"));
            }
        }
        for feed in &self.feeds {
            if api.feed(feed).is_none() {
                let have: Vec<&str> = api.feeds.iter().map(|(n, _)| n.as_str()).collect();
                out.push(Mismatch::new(
                    "feeds",
                    format!(
                        "expected a feed `{feed}`; the agent's feeds are {}",
                        if have.is_empty() {
                            "none".to_string()
                        } else {
                            list_names(&have)
                        }
                    ),
                ));
            }
        }
        out
    }
}

/// Expectations on what a `call` step's procedure returned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallExpect {
    /// `value`: the return value.
    pub value: Option<Matcher>,
    /// `error`: the call must fail, with an error text matching this.
    pub error: Option<Matcher>,
}

impl CallExpect {
    /// Check the result of the call: its return value, or its error text.
    pub fn check(&self, result: Result<&serde_json::Value, &str>) -> Vec<Mismatch> {
        let mut out = Vec::new();
        match (result, &self.error) {
            (Ok(v), None) => {
                if let Some(m) = &self.value {
                    out.extend(m.matches(Some(v)).err().map(|e| e.under("value")));
                }
            }
            (Ok(v), Some(_)) => out.push(Mismatch::new(
                "error",
                format!(
                    "expected the call to fail, but it returned {}",
                    super::matcher::show(v)
                ),
            )),
            (Err(e), Some(m)) => out.extend(m.matches_str(e).err().map(|e| e.under("error"))),
            (Err(e), None) => out.push(Mismatch::new("", format!("the call failed: {e}"))),
        }
        out
    }
}

/// Which log lines a `logs` step looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogWindow {
    /// Lines logged since the previous step began (what that step caused, and since).
    Step,
    /// Every line since the container started (the default).
    #[default]
    Run,
}

/// A `logs` step: checks on a container's log lines. Log lines arrive asynchronously, so the
/// runner re-checks `contains`/`regex`/`lines` until they hold or `timeout` passes; `absent`
/// is checked on the lines seen by then.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsCheck {
    /// The container: an instance-id, `registry` or `crossbar`.
    pub container: String,
    /// Which lines to look at.
    pub window: LogWindow,
    /// How long to wait for the expected lines (default 10 s).
    pub timeout: Duration,
    /// Each must be a substring of some line.
    pub contains: Vec<String>,
    /// Each must match some line.
    pub regex: Vec<Pattern>,
    /// An ordered subsequence of lines, each given as a substring of its line.
    pub lines: Vec<String>,
    /// No line may contain any of these ...
    pub absent: Vec<String>,
    /// ... except lines containing one of these (known harmless).
    pub allow: Vec<String>,
}

/// Default timeout of a `logs` step.
pub const DEFAULT_LOGS_TIMEOUT: Duration = Duration::from_secs(10);

fn tail(lines: &[&str]) -> String {
    const SHOWN: usize = 20;
    if lines.is_empty() {
        return "; the window has no lines".to_string();
    }
    let skip = lines.len().saturating_sub(SHOWN);
    let head = if skip > 0 {
        format!("; the last {SHOWN} of {} lines are:", lines.len())
    } else {
        format!("; the {} lines are:", lines.len())
    };
    let body: String = lines
        .iter()
        .enumerate()
        .skip(skip)
        .map(|(i, l)| format!("\n  {:>4} | {l}", i + 1))
        .collect();
    format!("{head}{body}")
}

impl LogsCheck {
    /// Check the lines of the window (the runner supplies them). Paths name the key that
    /// failed: `contains`, `regex`, `lines`, `absent`.
    pub fn check(&self, lines: &[&str]) -> Vec<Mismatch> {
        let mut out = Vec::new();
        for want in &self.contains {
            if !lines.iter().any(|l| l.contains(want.as_str())) {
                out.push(Mismatch::new(
                    "contains",
                    format!("expected a line containing {want:?}{}", tail(lines)),
                ));
            }
        }
        for re in &self.regex {
            if !lines.iter().any(|l| re.is_match(l)) {
                out.push(Mismatch::new(
                    "regex",
                    format!("expected a line matching /{}/{}", re.as_str(), tail(lines)),
                ));
            }
        }
        let mut at = 0;
        for (i, want) in self.lines.iter().enumerate() {
            match lines[at..].iter().position(|l| l.contains(want.as_str())) {
                Some(p) => at += p + 1,
                None => {
                    let after = if i == 0 {
                        String::new()
                    } else {
                        format!(" after line {at} (which contains {:?})", self.lines[i - 1])
                    };
                    out.push(Mismatch::new(
                        "lines",
                        format!("expected a line containing {want:?}{after}{}", tail(lines)),
                    ));
                    break;
                }
            }
        }
        for bad in &self.absent {
            let hits: Vec<(usize, &str)> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    l.contains(bad.as_str()) && !self.allow.iter().any(|a| l.contains(a.as_str()))
                })
                .map(|(i, l)| (i + 1, *l))
                .collect();
            if let Some((first, _)) = hits.first() {
                let shown: String = hits
                    .iter()
                    .take(5)
                    .map(|(n, l)| format!("\n  {n:>4} | {l}"))
                    .collect();
                let more = if hits.len() > 5 {
                    format!("\n  ... and {} more", hits.len() - 5)
                } else {
                    String::new()
                };
                out.push(Mismatch::new(
                    "absent",
                    format!(
                        "expected no line containing {bad:?}, but line {first} has it:{shown}{more}"
                    ),
                ));
            }
        }
        out
    }

    /// The lines the positive checks (`contains`, `regex`, `lines`) matched, first match of
    /// each, in log order: what a transcript shows of the step.
    pub fn selected<'a>(&self, lines: &[&'a str]) -> Vec<&'a str> {
        let mut picked: Vec<usize> = Vec::new();
        for want in &self.contains {
            picked.extend(lines.iter().position(|l| l.contains(want.as_str())));
        }
        for re in &self.regex {
            picked.extend(lines.iter().position(|l| re.is_match(l)));
        }
        let mut at = 0;
        for want in &self.lines {
            match lines[at..].iter().position(|l| l.contains(want.as_str())) {
                Some(p) => {
                    picked.push(at + p);
                    at += p + 1;
                }
                None => break,
            }
        }
        picked.sort_unstable();
        picked.dedup();
        picked.into_iter().map(|i| lines[i]).collect()
    }
}

/// Expectations on what a `fetch` step copied out of a container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchExpect {
    /// Whether the path must exist (`false`: must not). Without it, a missing path fails.
    pub exists: Option<bool>,
    /// On the number of files.
    pub count: Option<Matcher>,
    /// On each file's size in bytes.
    pub size: Option<Matcher>,
    /// On the sorted list of file names.
    pub names: Option<Matcher>,
}

impl FetchExpect {
    /// Check what was fetched (`None`: the path does not exist); `what` names it
    /// (`/data in aggregator`). One mismatch per failed expectation (at most 5 for `size`).
    pub fn check(&self, fetched: Option<&Fetched>, what: &str) -> Vec<Mismatch> {
        let Some(f) = fetched else {
            return match self.exists {
                Some(false) => Vec::new(),
                _ => vec![Mismatch::new(
                    "exists",
                    format!("expected {what} to exist, but there is no such path"),
                )],
            };
        };
        let mut out = Vec::new();
        if self.exists == Some(false) {
            let n = f.files.len();
            out.push(Mismatch::new(
                "exists",
                format!("expected no {what}, but it exists ({n} file(s))"),
            ));
        }
        if let Some(m) = &self.count {
            if let Err(e) = m.matches(Some(&Value::from(f.files.len()))) {
                out.push(e.under("count"));
            }
        }
        if let Some(m) = &self.size {
            let bad = f.files.iter().filter_map(|(name, size)| {
                m.matches(Some(&Value::from(*size)))
                    .err()
                    .map(|e| e.under(&format!("size of {name}")))
            });
            out.extend(bad.take(5));
        }
        if let Some(m) = &self.names {
            let names: Vec<Value> = f.files.iter().map(|(n, _)| n.as_str().into()).collect();
            if let Err(e) = m.matches(Some(&Value::Array(names))) {
                out.push(e.under("names"));
            }
        }
        out
    }
}
