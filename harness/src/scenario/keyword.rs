//! The step kinds as a scenario file writes them, in one table: each kind's keyword (the key
//! a step starts with) and the keys a step of that kind accepts. Also the one-line text of a
//! step (`start barebones1.count`, `fault kill crossbar (SIGKILL)`) that reports print.

use std::fmt;

use crate::wait::fmt_duration;

use super::{FaultAction, OpAction, StepKind, UntilTarget};

/// The kind of a step, as its first key names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKeyword {
    /// `api: <instance>`.
    Api,
    /// `start: <instance>.<op>`.
    Start,
    /// `status: <instance>.<op>`.
    Status,
    /// `wait: <instance>.<op>`.
    Wait,
    /// `stop: <instance>.<op>`.
    Stop,
    /// `abort: <instance>.<op>`.
    Abort,
    /// `until: <instance>.<op> | registry`.
    Until,
    /// `logs: <container>`.
    Logs,
    /// `fault: <action>`.
    Fault,
    /// `exits: <container>`.
    Exits,
    /// `fetch: <container>`.
    Fetch,
    /// `exec: {in: <container>, cmd: ..}`.
    Exec,
    /// `call: <instance>.<procedure>`.
    Call,
    /// `feed: {agent, feed}`.
    Feed,
    /// `device: <device>`.
    Device,
}

/// Every kind: keyword, and the keys its steps accept (the keyword among them, in the order
/// messages list them). The order of the rows is the order kinds are suggested in.
const TABLE: &[(StepKeyword, &str, &[&str])] = &[
    (
        StepKeyword::Api,
        "api",
        &["name", "api", "timeout", "expect", "capture", "within"],
    ),
    (
        StepKeyword::Start,
        "start",
        &[
            "name", "start", "params", "password", "expect", "capture", "within", "redact",
        ],
    ),
    (
        StepKeyword::Status,
        "status",
        &[
            "name", "status", "password", "expect", "capture", "within", "redact",
        ],
    ),
    (
        StepKeyword::Wait,
        "wait",
        &[
            "name", "wait", "timeout", "password", "expect", "capture", "within", "redact",
        ],
    ),
    (
        StepKeyword::Stop,
        "stop",
        &[
            "name", "stop", "password", "expect", "capture", "within", "redact",
        ],
    ),
    (
        StepKeyword::Abort,
        "abort",
        &[
            "name", "abort", "password", "expect", "capture", "within", "redact",
        ],
    ),
    (
        StepKeyword::Until,
        "until",
        &[
            "name", "until", "timeout", "password", "expect", "capture", "within", "redact",
        ],
    ),
    (
        StepKeyword::Logs,
        "logs",
        &[
            "name", "logs", "window", "timeout", "contains", "regex", "lines", "absent", "allow",
            "within",
        ],
    ),
    (
        StepKeyword::Fault,
        "fault",
        &[
            "name",
            "fault",
            "container",
            "signal",
            "for",
            "timeout",
            "within",
        ],
    ),
    (
        StepKeyword::Exits,
        "exits",
        &["name", "exits", "timeout", "code", "within"],
    ),
    (
        StepKeyword::Fetch,
        "fetch",
        &[
            "name", "fetch", "path", "into", "timeout", "expect", "within",
        ],
    ),
    (
        StepKeyword::Exec,
        "exec",
        &["name", "exec", "expect", "within"],
    ),
    (
        StepKeyword::Call,
        "call",
        &[
            "name", "call", "args", "kwargs", "expect", "capture", "within", "redact",
        ],
    ),
    (
        StepKeyword::Feed,
        "feed",
        &["name", "feed", "window", "expect"],
    ),
    (
        StepKeyword::Device,
        "device",
        &[
            "name",
            "device",
            "define-responses",
            "update-responses",
            "default-response",
            "expect",
            "timeout",
            "within",
        ],
    ),
];

impl StepKeyword {
    /// Every kind, in the order they are suggested.
    pub fn all() -> impl Iterator<Item = StepKeyword> {
        TABLE.iter().map(|(k, _, _)| *k)
    }

    /// Every keyword, in the order they are suggested.
    pub fn names() -> Vec<&'static str> {
        TABLE.iter().map(|(_, n, _)| *n).collect()
    }

    fn row(self) -> &'static (StepKeyword, &'static str, &'static [&'static str]) {
        TABLE
            .iter()
            .find(|(k, _, _)| *k == self)
            .expect("every step kind is in the table")
    }

    /// The keyword as written (`api`, `start`, ...).
    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    /// The keys a step of this kind accepts, the keyword among them.
    pub fn keys(self) -> &'static [&'static str] {
        self.row().2
    }

    /// The kind whose keyword is `name` (exactly).
    pub fn from_keyword(name: &str) -> Option<StepKeyword> {
        TABLE
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(k, _, _)| *k)
    }

    /// The keys a `capture:` path of this kind starts with: what the step got back has
    /// these at the top (the keys of its `expect`).
    pub fn capture_roots(self) -> &'static [&'static str] {
        match self {
            Self::Start | Self::Status | Self::Wait | Self::Stop | Self::Abort | Self::Until => {
                &["status", "message", "session", "data"]
            }
            Self::Api => &["fields"],
            Self::Call => &["value", "error"],
            Self::Logs
            | Self::Fault
            | Self::Exits
            | Self::Fetch
            | Self::Exec
            | Self::Feed
            | Self::Device => &[],
        }
    }

    /// The `.ops` action of `start`, `status`, `wait`, `stop` and `abort`.
    pub fn op_action(self) -> Option<OpAction> {
        match self {
            Self::Start => Some(OpAction::Start),
            Self::Status => Some(OpAction::Status),
            Self::Wait => Some(OpAction::Wait),
            Self::Stop => Some(OpAction::Stop),
            Self::Abort => Some(OpAction::Abort),
            Self::Api
            | Self::Until
            | Self::Logs
            | Self::Fault
            | Self::Exits
            | Self::Fetch
            | Self::Exec
            | Self::Call
            | Self::Feed
            | Self::Device => None,
        }
    }
}

impl From<OpAction> for StepKeyword {
    fn from(action: OpAction) -> Self {
        match action {
            OpAction::Start => Self::Start,
            OpAction::Status => Self::Status,
            OpAction::Wait => Self::Wait,
            OpAction::Stop => Self::Stop,
            OpAction::Abort => Self::Abort,
        }
    }
}

impl fmt::Display for StepKeyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StepKind {
    /// The keyword this step is written with.
    pub fn keyword(&self) -> StepKeyword {
        match self {
            Self::Api { .. } => StepKeyword::Api,
            Self::Op { action, .. } => StepKeyword::from(*action),
            Self::Until { .. } => StepKeyword::Until,
            Self::Logs(_) => StepKeyword::Logs,
            Self::Fault(_) => StepKeyword::Fault,
            Self::Exits { .. } => StepKeyword::Exits,
            Self::Fetch(_) => StepKeyword::Fetch,
            Self::Exec(_) => StepKeyword::Exec,
            Self::Call(_) => StepKeyword::Call,
            Self::Feed(_) => StepKeyword::Feed,
            Self::Device(_) => StepKeyword::Device,
        }
    }
}

impl fmt::Display for StepKind {
    /// What the step does, on one line: its keyword, target and timing, e.g.
    /// `wait barebones1.count (timeout 20s)`, `fault kill crossbar (SIGKILL)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kw = self.keyword();
        match self {
            Self::Api {
                instance,
                timeout: Some(t),
                ..
            } => write!(f, "{kw} {instance} (timeout {})", fmt_duration(*t)),
            Self::Api { instance, .. } => write!(f, "{kw} {instance}"),
            Self::Op {
                instance,
                op,
                timeout,
                ..
            } => match timeout {
                Some(t) => write!(f, "{kw} {instance}.{op} (timeout {})", fmt_duration(*t)),
                None => write!(f, "{kw} {instance}.{op}"),
            },
            Self::Until {
                target, timeout, ..
            } => {
                let timeout = fmt_duration(*timeout);
                match target {
                    UntilTarget::Op { instance, op } => {
                        write!(f, "{kw} {instance}.{op} (timeout {timeout})")
                    }
                    UntilTarget::Registry => write!(f, "{kw} registry (timeout {timeout})"),
                }
            }
            Self::Logs(check) => write!(f, "{kw} {}", check.container),
            Self::Fault(fault) => match (fault.action, &fault.duration) {
                (FaultAction::Kill, _) => {
                    write!(f, "{kw} kill {} ({})", fault.container, fault.signal)
                }
                (FaultAction::Disconnect, Some(d)) => write!(
                    f,
                    "{kw} disconnect {} (for {})",
                    fault.container,
                    fmt_duration(*d)
                ),
                (a, _) => write!(f, "{kw} {} {}", a.as_str(), fault.container),
            },
            Self::Exits {
                container, timeout, ..
            } => write!(f, "{kw} {container} (timeout {})", fmt_duration(*timeout)),
            Self::Fetch(x) => write!(f, "{kw} {}:{} into {}", x.container, x.path, x.into),
            Self::Exec(e) => match &e.target {
                super::ExecTarget::In(c) => write!(f, "{kw} in {c}: {}", command_line(&e.cmd)),
                super::ExecTarget::Image { image, .. } => {
                    write!(f, "{kw} in a new {image}: {}", command_line(&e.cmd))
                }
            },
            Self::Call(c) => write!(f, "{kw} {}.{}", c.instance, c.procedure),
            Self::Feed(c) => write!(
                f,
                "{kw} {}.{} (within {})",
                c.agent,
                c.feed,
                fmt_duration(c.within)
            ),
            Self::Device(d) => {
                let did = match (&d.action, d.received.len()) {
                    (_, 0) => d.action.describe(),
                    (crate::device::DeviceAction::Check, n) => {
                        format!("{n} received (timeout {})", fmt_duration(d.timeout))
                    }
                    (a, n) => format!(
                        "{}, then {n} received (timeout {})",
                        a.describe(),
                        fmt_duration(d.timeout)
                    ),
                };
                write!(f, "{kw} {}: {did}", d.device)
            }
        }
    }
}

/// A command line on one line: a shell command as written, arguments with spaces quoted, a
/// multi-line argument (a script) as its first line and `...`.
fn command_line(cmd: &[String]) -> String {
    let one_line = |a: &str| match a.trim().split_once('\n') {
        Some((first, _)) => format!("{} ...", first.trim_end()),
        None => a.to_string(),
    };
    match cmd {
        [sh, c, script] if sh == "/bin/sh" && c == "-c" => one_line(script),
        _ => cmd
            .iter()
            .map(|a| {
                let a = one_line(a);
                if a.is_empty() || a.contains(char::is_whitespace) {
                    format!("{a:?}")
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let names = StepKeyword::names();
        assert_eq!(
            names,
            [
                "api", "start", "status", "wait", "stop", "abort", "until", "logs", "fault",
                "exits", "fetch", "exec", "call", "feed", "device"
            ]
        );
        for kw in StepKeyword::all() {
            assert!(kw.keys().contains(&kw.as_str()), "{kw}");
            assert!(kw.keys().contains(&"name"), "{kw}");
            assert_eq!(StepKeyword::from_keyword(kw.as_str()), Some(kw));
            if let Some(action) = kw.op_action() {
                assert_eq!(StepKeyword::from(action), kw);
                assert_eq!(action.as_str(), kw.as_str());
            }
        }
        assert_eq!(StepKeyword::from_keyword("sleep"), None);
    }

    /// The one-line text of each kind, as the run's reports print it.
    #[test]
    fn step_text() {
        use crate::scenario::Scenario;
        let text = "\
stack:
  agents:
    - {instance-id: b1, agent-class: BarebonesAgent, image: simonsobs/ocs:latest}
steps:
  - api: b1
  - start: b1.count
  - wait: b1.count
    timeout: 1.5
  - until: b1.count
    timeout: 2m
    expect: {session: {status: done}}
  - until: registry
    timeout: 500ms
    expect: {session: {status: running}}
  - logs: crossbar
    absent: [Traceback]
  - fault: kill
    container: b1
  - fault: disconnect
    container: b1
    for: 3s
  - fault: restart
    container: crossbar
  - exits: b1
    timeout: 30s
  - fetch: b1
    path: /data/
  - exec: {in: b1, cmd: [ocsbow, status]}
  - exec: {in: crossbar, cmd: 'test -f /x && echo \"a b\"'}
  - exec: {in: b1, cmd: [python3, -c, 'print(1)']}
  - exec: {in: b1, cmd: [python3, -c, \"import os\\nprint(os.getpid())\\n\"]}
";
        let s = Scenario::parse_all(text, std::path::Path::new("t.yaml"), &|_| None).unwrap();
        let lines: Vec<String> = s.steps.iter().map(|s| s.kind.to_string()).collect();
        assert_eq!(
            lines,
            [
                "api b1",
                "start b1.count",
                "wait b1.count (timeout 1.5s)",
                "until b1.count (timeout 2m00s)",
                "until registry (timeout 500ms)",
                "logs crossbar",
                "fault kill b1 (SIGKILL)",
                "fault disconnect b1 (for 3s)",
                "fault restart crossbar",
                "exits b1 (timeout 30s)",
                "fetch b1:/data/ into b1-data",
                "exec in b1: ocsbow status",
                "exec in crossbar: test -f /x && echo \"a b\"",
                "exec in b1: python3 -c print(1)",
                "exec in b1: python3 -c \"import os ...\"",
            ]
        );
        let kinds: Vec<&str> = s.steps.iter().map(|s| s.kind.keyword().as_str()).collect();
        assert_eq!(
            kinds,
            [
                "api", "start", "wait", "until", "until", "logs", "fault", "fault", "fault",
                "exits", "fetch", "exec", "exec", "exec", "exec"
            ]
        );
    }
}
