//! What a run reports as it goes: one [`RunEvent`] per thing that happened (the run started,
//! the stack is ready, an agent described itself, a step started, a call was made, its reply
//! came back, a session message or a log line was seen, a fault was injected, a step
//! finished, the run finished),
//! delivered in order to every [`RunObserver`]. The timeline and the transcript are two such
//! readers; a caller adds its own with [`super::run_observed`] (live progress, JSON lines).
//! Every event serialises to one JSON object tagged by `event`.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use super::redact::Secrets;
use crate::ocs::{AgentApi, Reply};
use crate::scenario::capture::ValuePath;
use crate::scenario::ScenarioError;
use crate::transcript;

/// One thing that happened during a run, in the order it happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run began (before any image is checked or container started).
    RunStarted {
        /// The scenario's name.
        scenario: String,
        /// How many steps it has.
        steps: usize,
    },
    /// The stack is up and every operation the steps name exists.
    StackReady {
        /// The run id.
        run_id: String,
        /// The stack, as the transcript lists it (`<instance-id> (<agent class>)`, `crossbar`).
        stack: Vec<String>,
        /// The image of each container (after overrides), by role (`crossbar`, instance-id).
        images: std::collections::BTreeMap<String, String>,
        /// The images this run built, with their build time.
        built: Vec<(String, f64)>,
        /// Time from the run's turn on a suite's worker (the start of a run of its own) to
        /// the ready stack: what a suite prepared ahead of the turn is not in it.
        #[serde(serialize_with = "secs")]
        after: Duration,
        /// crossbar's boot: its container running to its bridge answering.
        #[serde(serialize_with = "secs")]
        crossbar_boot: Duration,
        /// Each agent's registration: its container running (or released, when held) to its
        /// first `get_api` answer.
        #[serde(serialize_with = "secs_map")]
        registration: std::collections::BTreeMap<String, Duration>,
        /// When (Unix seconds) the stack's `up` began, the bridge first answered, and each
        /// agent was released and first answered (for drawing the run on a time axis).
        marks: crate::runtime::stack::Marks,
    },
    /// An agent of the ready stack described itself (`get_api`, once per agent): what its
    /// operations are, for coverage.
    AgentDescribed {
        /// The agent.
        instance: String,
        /// Its class, as the stack was planned with it.
        agent_class: String,
        /// Its `get_api` (serialised as received).
        #[serde(serialize_with = "raw_api")]
        api: AgentApi,
    },
    /// A step began.
    StepStarted {
        /// 1-based step number.
        step: usize,
        /// The step's line in the scenario file.
        line: usize,
        /// What the step does, e.g. `start barebones1.count`.
        action: String,
    },
    /// A call to an agent went out.
    CallMade {
        /// The step making it.
        step: usize,
        /// The call.
        call: Call,
    },
    /// The answer to a call came back.
    ReplyReceived {
        /// The step that made the call.
        step: usize,
        /// The call.
        call: Call,
        /// What came back.
        answer: Answer,
    },
    /// A session message seen for the first time in a reply (at the agent's own time).
    SessionMessage {
        /// The step whose reply carried it.
        step: usize,
        /// The agent.
        instance: String,
        /// The operation.
        op: String,
        /// The session's id.
        session_id: i64,
        /// Unix time the agent stamped on it.
        time: f64,
        /// The message.
        text: String,
    },
    /// A log line a `logs` step's checks selected (as logged, not normalised).
    LogLineSelected {
        /// The step.
        step: usize,
        /// The container.
        container: String,
        /// The line.
        text: String,
    },
    /// A fault is being injected now; `after-last-fault` refers to `at`.
    FaultInjected {
        /// The step.
        step: usize,
        /// The fault (`restart`, `kill`, ...).
        fault: String,
        /// The container.
        container: String,
        /// Unix time of the injection.
        at: f64,
    },
    /// A step ended.
    StepFinished {
        /// 1-based step number.
        step: usize,
        /// The step's line in the scenario file.
        line: usize,
        /// What the step did.
        action: String,
        /// How long it took.
        #[serde(serialize_with = "secs")]
        duration: Duration,
        /// Whether it did what the scenario expected.
        passed: bool,
        /// What it did.
        outcome: Outcome,
        /// What went wrong, when it failed.
        failure: Option<StepFailure>,
        /// The parts of `outcome` the transcript shows as `<redacted>` (the step's
        /// `redact:`): they vary between runs.
        #[serde(skip)]
        redact: Vec<crate::scenario::capture::ValuePath>,
    },
    /// The run ended (passed, failed at a step, or could not run).
    RunFinished {
        /// The scenario's name.
        scenario: String,
        /// The run id, once the stack had one.
        run_id: Option<String>,
        /// Whether every step passed.
        passed: bool,
        /// The failing step, if one failed.
        failed_step: Option<usize>,
        /// Why the run could not run or finish (launch, scenario or teardown error).
        error: Option<String>,
        /// Wall time of the whole run.
        #[serde(serialize_with = "secs")]
        elapsed: Duration,
    },
}

/// A call to an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// The agent.
    pub instance: String,
    /// `get_api`, or the `.ops` action: `start`, `status`, `wait`, `stop`, `abort`.
    pub action: String,
    /// The operation (`None` for `get_api`).
    pub op: Option<String>,
    /// `start`'s params.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    /// One poll of an `until` step (rather than the step's single call).
    pub polled: bool,
}

impl fmt::Display for Call {
    /// `start barebones1.count {"n": 1}`, `status barebones1.count`, `barebones1 get_api`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.op, &self.params) {
            (None, _) => write!(f, "{} {}", self.instance, self.action),
            (Some(op), Some(p)) => write!(f, "{} {}.{op} {p}", self.action, self.instance),
            (Some(op), None) => write!(f, "{} {}.{op}", self.action, self.instance),
        }
    }
}

/// What came back from a call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// `get_api`'s value (serialised as received).
    Api(#[serde(serialize_with = "raw_api")] AgentApi),
    /// An `.ops` reply (serialised as received).
    Reply(#[serde(serialize_with = "raw_reply")] Reply),
    /// What another procedure returned (`call` steps).
    Value(Value),
    /// The call failed.
    Error(String),
}

impl fmt::Display for Answer {
    /// A reply as `OK "message" [op:session STATUS]`, `get_api` normalised, an error as
    /// `error: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Api(api) => write!(f, "{}", transcript::api(api)),
            Answer::Reply(r) => write!(f, "{r}"),
            Answer::Value(v) => write!(f, "{}", crate::scenario::matcher::show(v)),
            Answer::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// What a step did, by kind; [`Outcome::normalised`] is what the transcript shows of it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `api`: the agent's `get_api`.
    Api(#[serde(serialize_with = "raw_api")] AgentApi),
    /// `start|status|wait|stop|abort`: the reply.
    Reply(#[serde(serialize_with = "raw_reply")] Reply),
    /// `until`: the last reply seen, if any.
    Polled(#[serde(serialize_with = "raw_last_reply")] Option<Reply>),
    /// `call`: what the procedure returned.
    Value(Value),
    /// `logs`: the window looked at and the lines selected (as logged).
    Logs {
        /// `step` or `run`.
        window: String,
        /// The selected lines.
        lines: Vec<String>,
    },
    /// `fault`: what was done; `ready_again` for faults that wait for readiness.
    Fault {
        /// The fault.
        fault: String,
        /// The container.
        container: String,
        /// Whether the container answered again (restart, start, unpause, connect).
        ready_again: Option<bool>,
    },
    /// `exits`: the container exited with this code.
    Exited {
        /// The exit code.
        code: i64,
    },
    /// `fetch`: what was copied out of a container.
    Fetched {
        /// The path in the container.
        path: String,
        /// Where it was copied to; `None` when the container has no such path.
        into: Option<String>,
        /// The files found, by name under the path, with their sizes.
        files: Vec<(String, u64)>,
    },
    /// `exec`: what the command did.
    Exec {
        /// Its exit code.
        exit: i64,
        /// Its standard output.
        stdout: String,
        /// Its standard error.
        stderr: String,
        /// How long it ran.
        #[serde(serialize_with = "secs")]
        duration: Duration,
    },
    /// `feed`: what the tap received of the feed (counts depend on timing, so the transcript
    /// shows the blocks and fields seen, not how many messages).
    Feed {
        /// `agent.feed`.
        feed: String,
        /// Messages in the window.
        messages: usize,
        /// Block names seen, sorted.
        blocks: Vec<String>,
        /// Data fields seen, sorted.
        fields: Vec<String>,
    },
    /// `device`: what the step did to an emulated device, and the messages it checked the
    /// device received.
    Device {
        /// The device.
        device: String,
        /// `define N responses`, `update N responses` or `check`.
        did: String,
        /// The messages found received (as the step lists them).
        received: Vec<String>,
    },
    /// The call or the wait failed.
    Error(String),
}

/// A reply as `capture:` paths see it: `status`, `message`, `session`, `data`.
fn reply_root(r: &Reply) -> Value {
    json!({
        "status": r.status.name(),
        "message": r.message,
        "session": r.session.as_ref().map(|s| &s.raw),
        "data": r.session.as_ref().map(|s| &s.data),
    })
}

impl Answer {
    /// What a `capture:` path is looked up in (see [`Outcome::capture_root`]).
    pub fn capture_root(&self) -> Option<Value> {
        Some(match self {
            Answer::Reply(r) => reply_root(r),
            Answer::Api(a) => json!({"fields": a.raw}),
            Answer::Value(v) => json!({"value": v}),
            Answer::Error(e) => json!({"error": e}),
        })
    }
}

impl Outcome {
    /// What a `capture:` path is looked up in: the keys of the step kind's `expect` (`status`,
    /// `message`, `session`, `data` of a reply; `fields` of `get_api`; `value` or `error` of a
    /// call), `None` when the step got nothing back.
    pub fn capture_root(&self) -> Option<Value> {
        match self {
            Outcome::Reply(r) | Outcome::Polled(Some(r)) => Some(reply_root(r)),
            Outcome::Api(a) => Some(json!({"fields": a.raw})),
            Outcome::Value(v) => Some(json!({"value": v})),
            Outcome::Error(e) => Some(json!({"error": e})),
            _ => None,
        }
    }

    /// The outcome as the transcript (and a failure's last reply) shows it: normalised by
    /// `transcript`'s functions, so it is identical across runs.
    pub fn normalised(&self) -> Value {
        match self {
            Outcome::Api(a) => transcript::api(a),
            Outcome::Reply(r) => transcript::reply(r),
            Outcome::Polled(last) => last.as_ref().map(transcript::reply).unwrap_or(Value::Null),
            Outcome::Value(v) => json!({"value": transcript::redact_numbers(v)}),
            Outcome::Logs { window, lines } => json!({
                "window": window,
                "lines": lines.iter().map(|l| transcript::log_line(l)).collect::<Vec<_>>(),
            }),
            Outcome::Fault {
                fault,
                container,
                ready_again,
            } => {
                let mut v = json!({"fault": fault, "container": container});
                if let Some(ready) = ready_again {
                    v["ready_again"] = json!(ready);
                }
                v
            }
            Outcome::Exited { code } => json!({"exited": true, "code": code}),
            // Names, sizes and counts vary from run to run (an agent's data files): the
            // transcript keeps what the step asked for and whether it was there.
            Outcome::Fetched { path, into, .. } => {
                json!({"fetched": path, "exists": into.is_some()})
            }
            Outcome::Exec {
                exit,
                stdout,
                stderr,
                ..
            } => json!({
                "exit": exit,
                "stdout": transcript::command_output(stdout),
                "stderr": transcript::command_output(stderr),
            }),
            Outcome::Feed {
                feed,
                blocks,
                fields,
                ..
            } => json!({"feed": feed, "blocks": blocks, "fields": fields}),
            Outcome::Device {
                device,
                did,
                received,
            } => {
                let mut v = json!({"device": device, "did": did});
                if !received.is_empty() {
                    v["received"] = json!(received);
                }
                v
            }
            Outcome::Error(e) => json!({"error": e}),
        }
    }
}

/// A step that did not do what the scenario expected.
#[derive(Debug, Clone, Serialize)]
pub struct StepFailure {
    /// 1-based step number.
    pub step: usize,
    /// Line of the step in the scenario file.
    pub line: usize,
    /// What the step did.
    pub action: String,
    /// What went wrong, one item per problem (expectation diffs, errors, timeouts).
    pub problems: Vec<String>,
    /// The last reply seen, normalised.
    pub last_reply: Option<Value>,
    /// The last log lines of the container the step was about.
    pub log_tail: Vec<String>,
    /// The container the step was about.
    pub container: Option<String>,
    /// Where the failed expectation is written: the step's `expect:` (its target when it has
    /// none), as `file`, `line`, `column`; `Display` shows it like a scenario parse error.
    #[serde(serialize_with = "position")]
    pub at: Option<ScenarioError>,
}

impl StepFailure {
    /// The first line of the failure: `step N (line L): <action> failed`.
    pub fn headline(&self) -> String {
        format!(
            "step {} (line {}): {} failed",
            self.step, self.line, self.action
        )
    }

    /// What follows the headline and the snippet: the problems (`  - `), the last reply and
    /// the container's last log lines, each line ending in a newline.
    pub fn body(&self) -> String {
        let mut out = String::new();
        for p in &self.problems {
            for (i, line) in p.lines().enumerate() {
                let bullet = if i == 0 { "  - " } else { "    " };
                out.push_str(&format!("{bullet}{line}\n"));
            }
        }
        if let Some(r) = &self.last_reply {
            out.push_str("  last reply:\n");
            let text = serde_saphyr::to_string(r).unwrap_or_else(|_| r.to_string());
            for line in text.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
        if let Some(c) = &self.container {
            if self.log_tail.is_empty() {
                out.push_str(&format!("  {c}: no log output\n"));
            } else {
                out.push_str(&format!("  last log lines of {c}:\n"));
                for line in &self.log_tail {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
        out
    }
}

impl fmt::Display for StepFailure {
    /// The step's `expect:` line rendered like a scenario parse error (`error: step N (line
    /// L): <action> failed`, ` --> file:line:column`, the source line and a caret), then the
    /// problems, the last reply and the log tail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => writeln!(f, "{at}")?,
            None => writeln!(f, "{}", self.headline())?,
        }
        f.write_str(&self.body())
    }
}

/// A reader of a run's events, called in order, on the runner's task (keep it quick).
pub trait RunObserver: Send {
    /// One event.
    fn on_event(&mut self, event: &RunEvent);
}

impl<F: FnMut(&RunEvent) + Send> RunObserver for F {
    fn on_event(&mut self, event: &RunEvent) {
        self(event)
    }
}

/// A position in the scenario file as `{file, line, column}`.
fn position<S: Serializer>(at: &Option<ScenarioError>, s: S) -> Result<S::Ok, S::Error> {
    at.as_ref()
        .map(|e| json!({"file": e.file(), "line": e.line(), "column": e.column()}))
        .serialize(s)
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn secs_map<S: Serializer>(
    m: &std::collections::BTreeMap<String, Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().map(|(k, d)| (k, d.as_secs_f64())))
}

fn raw_api<S: Serializer>(a: &AgentApi, s: S) -> Result<S::Ok, S::Error> {
    a.raw.serialize(s)
}

fn raw_reply<S: Serializer>(r: &Reply, s: S) -> Result<S::Ok, S::Error> {
    r.raw.serialize(s)
}

fn raw_last_reply<S: Serializer>(r: &Option<Reply>, s: S) -> Result<S::Ok, S::Error> {
    r.as_ref().map(|r| &r.raw).serialize(s)
}

/// The runner's side of the stream: hands each event to every observer, in order, and turns
/// the sessions in replies into [`RunEvent::SessionMessage`]s, each message once.
pub(crate) struct Emitter<'a> {
    inner: std::sync::Mutex<Inner<'a>>,
}

struct Inner<'a> {
    observers: Vec<&'a mut dyn RunObserver>,
    /// `(instance.op, session id, time, text)` of every message already emitted.
    seen: std::collections::BTreeSet<(String, i64, String, String)>,
    /// What no reader may see in clear.
    secrets: Secrets,
    /// Where, in what the current step gets back, values become secrets (captures that later
    /// steps send as passwords).
    secret_paths: Vec<ValuePath>,
}

impl<'a> Emitter<'a> {
    /// An emitter feeding `observers`.
    pub(crate) fn new(observers: Vec<&'a mut dyn RunObserver>) -> Self {
        Self {
            inner: std::sync::Mutex::new(Inner {
                observers,
                seen: Default::default(),
                secrets: Secrets::default(),
                secret_paths: Vec::new(),
            }),
        }
    }

    /// Deliver `event` to every observer, secrets redacted.
    pub(crate) fn emit(&self, event: RunEvent) {
        let mut inner = self.inner.lock().expect("event lock");
        let event = match inner.secrets.is_empty() {
            true => event,
            false => inner.secrets.event(&event),
        };
        for o in inner.observers.iter_mut() {
            o.on_event(&event);
        }
    }

    /// From now on, redact `secret` in every event.
    pub(crate) fn add_secret(&self, secret: &str) {
        self.inner.lock().expect("event lock").secrets.add(secret);
    }

    /// The values at `paths` in the answers of the current step are secrets.
    pub(crate) fn secret_paths(&self, paths: Vec<ValuePath>) {
        self.inner.lock().expect("event lock").secret_paths = paths;
    }

    /// The secrets so far (for what is written besides the events, and for failures).
    pub(crate) fn secrets(&self) -> Secrets {
        self.inner.lock().expect("event lock").secrets.clone()
    }

    /// The reply to `call`, then the messages of its session not seen before.
    pub(crate) fn reply(&self, step: usize, call: &Call, answer: Answer) {
        self.learn_secrets(&answer);
        let session = match &answer {
            Answer::Reply(r) => r.session.clone(),
            _ => None,
        };
        self.emit(RunEvent::ReplyReceived {
            step,
            call: call.clone(),
            answer,
        });
        if let Some(s) = session {
            self.session(step, &call.instance, &s);
        }
    }

    /// Values at the secret paths of `answer` become secrets before anyone sees it.
    fn learn_secrets(&self, answer: &Answer) {
        let mut inner = self.inner.lock().expect("event lock");
        if inner.secret_paths.is_empty() {
            return;
        }
        let Some(root) = answer.capture_root() else {
            return;
        };
        let found: Vec<String> = inner
            .secret_paths
            .iter()
            .filter_map(|p| p.get(&root))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        for s in found {
            inner.secrets.add(&s);
        }
    }

    fn session(&self, step: usize, instance: &str, s: &crate::ocs::Session) {
        let fresh: Vec<&crate::ocs::Message> = {
            let mut inner = self.inner.lock().expect("event lock");
            let source = format!("{instance}.{}", s.op_name);
            s.messages
                .iter()
                .filter(|m| {
                    let key = (
                        source.clone(),
                        s.session_id,
                        format!("{:.6}", m.time),
                        m.text.clone(),
                    );
                    inner.seen.insert(key)
                })
                .collect()
        };
        for m in fresh {
            self.emit(RunEvent::SessionMessage {
                step,
                instance: instance.to_string(),
                op: s.op_name.clone(),
                session_id: s.session_id,
                time: m.time,
                text: m.text.clone(),
            });
        }
    }
}

/// How each event, reply and failure looks with the run's secrets redacted (see
/// [`super::redact`]: the texts and values; here: which parts of an event are those).
impl Secrets {
    /// `event` as readers may see it.
    pub(crate) fn event(&self, event: &RunEvent) -> RunEvent {
        let mut e = event.clone();
        match &mut e {
            RunEvent::CallMade { call, .. } => self.call(call),
            RunEvent::ReplyReceived { call, answer, .. } => {
                self.call(call);
                *answer = self.answer(answer);
            }
            RunEvent::SessionMessage { text, .. } | RunEvent::LogLineSelected { text, .. } => {
                *text = self.text(text)
            }
            RunEvent::StepFinished {
                outcome,
                failure,
                action,
                ..
            } => {
                *action = self.text(action);
                *outcome = self.outcome(outcome);
                *failure = failure.take().map(|f| self.failure(f));
            }
            RunEvent::StepStarted { action, .. } => *action = self.text(action),
            RunEvent::RunFinished { error, .. } => *error = error.as_ref().map(|e| self.text(e)),
            RunEvent::RunStarted { .. }
            | RunEvent::StackReady { .. }
            | RunEvent::AgentDescribed { .. }
            | RunEvent::FaultInjected { .. } => {}
        }
        e
    }

    fn call(&self, call: &mut Call) {
        call.params = call.params.as_ref().map(|p| self.value(p));
    }

    fn reply(&self, r: &Reply) -> Reply {
        let raw = self.value(&r.raw);
        Reply::from_value(raw.clone()).unwrap_or_else(|_| Reply {
            message: self.text(&r.message),
            session: None,
            raw,
            ..r.clone()
        })
    }

    fn api(&self, a: &AgentApi) -> AgentApi {
        let raw = self.value(&a.raw);
        AgentApi::from_value(raw.clone()).unwrap_or_else(|_| AgentApi {
            access_control: self.value(&a.access_control),
            feeds: Vec::new(),
            raw,
            ..a.clone()
        })
    }

    fn answer(&self, a: &Answer) -> Answer {
        match a {
            Answer::Api(api) => Answer::Api(self.api(api)),
            Answer::Reply(r) => Answer::Reply(self.reply(r)),
            Answer::Value(v) => Answer::Value(self.value(v)),
            Answer::Error(e) => Answer::Error(self.text(e)),
        }
    }

    fn outcome(&self, o: &Outcome) -> Outcome {
        match o {
            Outcome::Api(api) => Outcome::Api(self.api(api)),
            Outcome::Reply(r) => Outcome::Reply(self.reply(r)),
            Outcome::Polled(r) => Outcome::Polled(r.as_ref().map(|r| self.reply(r))),
            Outcome::Value(v) => Outcome::Value(self.value(v)),
            Outcome::Logs { window, lines } => Outcome::Logs {
                window: window.clone(),
                lines: lines.iter().map(|l| self.text(l)).collect(),
            },
            Outcome::Error(e) => Outcome::Error(self.text(e)),
            Outcome::Exec {
                exit,
                stdout,
                stderr,
                duration,
            } => Outcome::Exec {
                exit: *exit,
                stdout: self.text(stdout),
                stderr: self.text(stderr),
                duration: *duration,
            },
            other => other.clone(),
        }
    }

    /// `f` as readers may see it.
    pub(crate) fn failure(&self, mut f: StepFailure) -> StepFailure {
        f.problems = f.problems.iter().map(|p| self.text(p)).collect();
        f.last_reply = f.last_reply.as_ref().map(|r| self.value(r));
        f.log_tail = f.log_tail.iter().map(|l| self.text(l)).collect();
        f
    }
}
