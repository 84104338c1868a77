//! Scenario files: this module owns the YAML format a user writes to describe a stack and the
//! steps to run against it, its strict parsing and validation (every error names
//! `file:line:column`, shows the line with a caret and says what to write instead), and the
//! pure checks the steps make on replies, `get_api` results and log lines. It does no I/O
//! besides reading the file, and never talks to Docker or OCS: [`Scenario::stack_spec`] hands
//! the stack to `plan`, and the runner feeds replies and log lines to the checks.
//!
//! The vocabulary is the one an OCS user knows: docker-compose keys for containers (`image`,
//! `build`, `environment`, `hostname`, `command`) and site-config keys for agents
//! (`agent-class`, `instance-id`, `arguments`). `scenarios/reference.yaml.example` shows every
//! key with comments.
//!
//! `${VAR}` and `${VAR:-default}` are expanded from the environment on the raw text before
//! parsing (`$$` is a literal `$`; comments are left alone), so they work in every scalar;
//! error positions still point into the file as written, at the `${...}` when the problem
//! is in an expanded value.
//!
//! Parts: [`error`] (rendering), `expand` (variables), `node` (the positioned YAML tree),
//! `parse` (decoding and validation: the stack, the steps, one decoder per step kind, the
//! expectations), [`exec`] (the `exec` step and its check), `keyword` (the step kinds' keywords and keys, in one table; the one-line
//! text of a step), [`matcher`] (partial JSON matching), [`expect`] (the checks of each step
//! kind).

pub mod capture;
pub use crate::source::error;
pub mod exec;
pub mod expect;
mod feed;
mod keyword;
pub mod matcher;
pub(crate) mod node;
mod parse;

#[cfg(test)]
mod device_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::config::Env;
use crate::plan::StackSpec;

pub use error::{ScenarioError, ScenarioErrors};
pub use exec::{ExecResult, ExecStep, ExecTarget};
pub use keyword::StepKeyword;
/// Default readiness deadline after a fault that restarts a container.
pub const DEFAULT_FAULT_TIMEOUT: Duration = crate::plan::DEFAULT_READY;
pub use crate::filespec::Fetched;
pub use expect::{
    ApiExpect, CallExpect, FetchExpect, LogWindow, LogsCheck, PidExpect, ReplyExpect,
};
pub use feed::{FeedCheck, FeedMessage};
pub use matcher::Mismatch;

/// A parsed and validated scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `name:`, or the file name without `.yaml`.
    pub name: String,
    /// The file it came from (as given).
    pub path: PathBuf,
    /// `description:`.
    pub description: Option<String>,
    /// The stack. Build contexts are resolved against the scenario file's directory (not
    /// checked for existence; the runtime does that). An agent whose `agent-class` comes from
    /// a user site config (`site-config`) has an empty `agent_class`.
    pub stack: StackSpec,
    /// `stack.site-config`: the user's own site config file, resolved like build contexts.
    /// When set, the agents' classes and arguments come from it.
    pub site_config: Option<PathBuf>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What the scenario asks of the whole run besides its steps.
    pub checks: RunChecks,
    /// The file's text as written (before `${VAR}` expansion), for errors found later.
    pub source: String,
    /// Where each agent is written, by instance-id, for errors found at run time.
    pub agent_sources: BTreeMap<String, AgentSource>,
    /// Each agent's `password` (sent with its `.ops` calls unless a step gives its own), by
    /// instance-id.
    pub passwords: BTreeMap<String, String>,
}

/// What a scenario asks of the whole run besides its steps (the top-level `coverage:` and
/// `log-policy:`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunChecks {
    /// `coverage: all`, where it is written: every operation of every agent must be exercised.
    pub coverage_all: Option<SourcePos>,
    /// `log-policy:` (default `errors`, nothing allowed besides the built-in list).
    pub log_policy: crate::logpolicy::LogPolicy,
    /// Where `log-policy:` is written, when it is.
    pub log_policy_at: Option<SourcePos>,
    /// `stack.ready-within`: every agent's registration budget, unless it has its own.
    pub ready_within: Option<Budget>,
    /// An agent's own `ready-within`, by instance-id.
    pub agent_ready_within: BTreeMap<String, Budget>,
    /// `shutdown:`: how the agents are stopped at the end of the run, and whether that is
    /// checked.
    pub shutdown: Shutdown,
}

/// `shutdown:` (default `graceful`): at the end of the run every running agent gets its stop
/// signal, as `docker stop` sends it, and must exit with 0 within `within`, logging no
/// traceback; `shutdown: kill` opts out (the containers are removed by force, as before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    /// Stop the agents and check it (`graceful`); `false` for `kill`.
    pub graceful: bool,
    /// The budget (default 10 s, ocs's test runner's).
    pub within: Duration,
    /// The signal (default: the image's `STOPSIGNAL`, else SIGTERM).
    pub signal: Option<String>,
    /// Where `shutdown:` is written, when it is.
    pub at: Option<SourcePos>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            graceful: true,
            within: crate::runtime::shutdown::DEFAULT_STOP_BUDGET,
            signal: None,
            at: None,
        }
    }
}

impl RunChecks {
    /// The registration budget written for `instance`: its own, else the stack's.
    pub fn ready_budget(&self, instance: &str) -> Option<Budget> {
        self.agent_ready_within
            .get(instance)
            .copied()
            .or(self.ready_within)
    }
}

/// A time budget written in the scenario (`within`, `ready-within`): how long something may
/// take at most, and where it is written (a failure points there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The longest it may take.
    pub limit: Duration,
    /// Where the budget is written.
    pub at: SourcePos,
}

pub use crate::source::SourcePos;

/// Where an agent is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentSource {
    /// The agent's `instance-id` value.
    pub entry: SourcePos,
    /// Its `build` or `image` value.
    pub image: SourcePos,
    /// Its `packages` value (else where its image is written).
    pub packages: SourcePos,
}

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Position in `steps`, starting at 1 (as reports print it).
    pub index: usize,
    /// Line of the step in the file.
    pub line: usize,
    /// `name:`, free text.
    pub name: Option<String>,
    /// What the step does.
    pub kind: StepKind,
    /// Where the step's target (`barebones1.count`, `registry`, ...) is written.
    pub target: SourcePos,
    /// Where the step's `expect:` key is written, when it has one (a failed expectation
    /// points there).
    pub expect: Option<SourcePos>,
    /// `capture:`: values to save from what the step got back, for later steps.
    pub captures: Vec<capture::Capture>,
    /// `password:`: the credential sent with this step's `.ops` calls (may use `{{name}}`).
    pub password: Option<String>,
    /// `within:`: the step fails when it took longer (its whole duration; an `exec` step's
    /// `expect.within` bounds its command alone).
    pub within: Option<Budget>,
    /// `redact:`: the parts of the step's outcome the transcript shows as `<redacted>`,
    /// because they vary between runs (e.g. `session.messages` of a busy process).
    pub redact: Vec<capture::ValuePath>,
}

/// The `.ops` actions of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpAction {
    /// Start a task or process.
    Start,
    /// Read the op's current session.
    Status,
    /// Wait (up to a timeout) for the op to finish.
    Wait,
    /// Stop a process.
    Stop,
    /// Abort a task.
    Abort,
}

impl OpAction {
    /// The OCS action name (`start`, ...), which is also the step's keyword.
    pub fn as_str(self) -> &'static str {
        StepKeyword::from(self).as_str()
    }
}

/// What an `until` step polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UntilTarget {
    /// `status` of `instance.op`.
    Op {
        /// The agent.
        instance: String,
        /// The task or process.
        op: String,
    },
    /// The registry's `main` process (its session data lists every agent).
    Registry,
}

/// The kinds of step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `api: <instance>`: call `get_api` and check it (with `timeout`: poll it until the
    /// expectation holds).
    Api {
        /// The agent.
        instance: String,
        /// What must hold.
        expect: ApiExpect,
        /// When given, poll `get_api` until `expect` holds, failing at this deadline.
        timeout: Option<Duration>,
    },
    /// `start|status|wait|stop|abort: <instance>.<op>`: one `.ops` call, then check the reply.
    Op {
        /// Which call.
        action: OpAction,
        /// The agent.
        instance: String,
        /// The task or process.
        op: String,
        /// `start` only: the op's params (a JSON object).
        params: Option<Value>,
        /// `wait` only (required there): the OCS wait timeout.
        timeout: Option<Duration>,
        /// What the reply must look like.
        expect: ReplyExpect,
    },
    /// `until: <instance>.<op> | registry`: poll `status` until `expect` holds, failing at
    /// `timeout`.
    Until {
        /// What to poll.
        target: UntilTarget,
        /// When to give up.
        timeout: Duration,
        /// The condition (never empty).
        expect: ReplyExpect,
    },
    /// `logs: <container>`: check a container's log lines.
    Logs(LogsCheck),
    /// `fault: <action>` on a container of the stack.
    Fault(Fault),
    /// `call: <instance>.<procedure>`: call a procedure the agent registered besides its
    /// operations (e.g. the Access Director's `request_exclusive`), then check what it returned.
    Call(CallStep),
    /// `exits: <container>`: wait until the container exits (and check its exit code), for
    /// an exit the scenario expects instead of failing on it.
    Exits {
        /// `crossbar` or an instance-id.
        container: String,
        /// The exit code it must have.
        code: Option<i64>,
        /// How long to wait.
        timeout: Duration,
    },
    /// `exec: {in: <container>, cmd: ..}`: run a command in a container of the stack and
    /// check its exit code, output and duration.
    Exec(ExecStep),
    /// `fetch: <container>`: copy a path out of a container into the run directory, and
    /// check what came out.
    Fetch(FetchStep),
    /// `feed: {agent, feed}`: check what the agent publishes on the feed (as the run's feed
    /// tap receives it).
    Feed(FeedCheck),
    /// `device: <device>`: change an emulated device's responses (`define-responses`,
    /// `update-responses`) and check what it received (`expect.received`).
    Device(crate::device::DeviceStep),
}

/// A `fetch` step.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchStep {
    /// `crossbar` or an instance-id.
    pub container: String,
    /// The absolute path in the container (a file or a directory).
    pub path: String,
    /// The directory under the run's `fetched/` it is copied into.
    pub into: String,
    /// How long to fetch again until `expect` holds (zero: once).
    pub timeout: Duration,
    /// What must hold.
    pub expect: FetchExpect,
}

/// A `call` step: the procedure, its arguments, and what must hold of what it returns.
#[derive(Debug, Clone, PartialEq)]
pub struct CallStep {
    /// The agent.
    pub instance: String,
    /// The procedure's last component (`<root>.<instance>.<procedure>`).
    pub procedure: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: serde_json::Map<String, Value>,
    /// What must hold of the return value (or the error).
    pub expect: CallExpect,
}

impl StepKind {
    /// The `(agent, feed)` a `feed` step observes.
    pub fn observed_feed(&self) -> Option<(&str, &str)> {
        match self {
            StepKind::Feed(c) => Some((&c.agent, &c.feed)),
            _ => None,
        }
    }
}

/// What a fault step does to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultAction {
    /// Stop and start it again (then wait for readiness).
    Restart,
    /// Stop it (SIGTERM, then SIGKILL after 10 s).
    Stop,
    /// Start it again (then wait for readiness).
    Start,
    /// Send it a signal (`signal:`, default SIGKILL).
    Kill,
    /// Freeze it.
    Pause,
    /// Thaw it (then wait for readiness).
    Unpause,
    /// Cut it off the stack's network (`for:` reconnects it after that long).
    Disconnect,
    /// Put it back on the stack's network.
    Connect,
}

impl FaultAction {
    /// Every action, as written.
    pub const ALL: &'static [(&'static str, FaultAction)] = &[
        ("restart", FaultAction::Restart),
        ("stop", FaultAction::Stop),
        ("start", FaultAction::Start),
        ("kill", FaultAction::Kill),
        ("pause", FaultAction::Pause),
        ("unpause", FaultAction::Unpause),
        ("disconnect", FaultAction::Disconnect),
        ("connect", FaultAction::Connect),
    ];

    /// The action as written.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .expect("every action is listed")
    }
}

/// A fault step.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// What to do.
    pub action: FaultAction,
    /// `crossbar` or an instance-id.
    pub container: String,
    /// `kill` only: the signal (default `SIGKILL`).
    pub signal: String,
    /// `disconnect` only: reconnect after this long.
    pub duration: Option<Duration>,
    /// `restart`, `start`, `unpause`: how long to wait for readiness (default 120 s).
    pub timeout: Duration,
}

impl Scenario {
    /// The first step that reaches crossbar's own container (a log check, a fault, an exit, a
    /// command in it, a fetch from it): such a scenario needs a crossbar of its own, never a
    /// worker's shared one.
    pub fn crossbar_step(&self) -> Option<&Step> {
        self.steps.iter().find(|s| {
            let container = match &s.kind {
                StepKind::Logs(l) => Some(&l.container),
                StepKind::Fault(f) => Some(&f.container),
                StepKind::Exits { container, .. } => Some(container),
                StepKind::Exec(e) => match &e.target {
                    exec::ExecTarget::In(c) => Some(c),
                    exec::ExecTarget::Image { .. } => None,
                },
                StepKind::Fetch(f) => Some(&f.container),
                _ => None,
            };
            container.is_some_and(|c| c == crate::plan::CROSSBAR)
        })
    }

    /// Why the scenario needs a crossbar of its own, from its steps (see
    /// [`Scenario::crossbar_step`]).
    pub fn own_crossbar(&self) -> Option<String> {
        self.crossbar_step().map(|step| {
            format!(
                "step {} (line {}) reaches crossbar's container",
                step.index, step.line
            )
        })
    }

    /// Read and parse `path`, `${VAR}` taken from `env`. Relative build paths resolve against
    /// the file's directory, made absolute with the current directory.
    pub fn from_file(path: &Path, env: &Env) -> Result<Scenario, ScenarioError> {
        check_file(path, env).map_err(|mut errors| errors.remove(0))
    }

    /// Parse `text`; `path` is used in messages, for the default name and to resolve relative
    /// paths. `${VAR}` is taken from `env`.
    pub fn from_str(text: &str, path: &Path, env: &Env) -> Result<Scenario, ScenarioError> {
        Self::parse_all(text, path, &|name| env.var(name)).map_err(|mut errors| errors.remove(0))
    }

    /// Parse `text`, reading variables with `lookup`; every error found, in file order.
    pub fn parse_all(
        text: &str,
        path: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Scenario, Vec<ScenarioError>> {
        let (src, root) = node::Source::parse(path, text, lookup).map_err(|e| vec![e])?;
        let mut cx = node::Cx::new(&src);
        cx.lookup = Some(lookup);
        let scenario = parse::decode(&mut cx, root.as_ref(), path);
        match scenario {
            Some(mut s) if cx.errors.is_empty() => {
                s.source = text.to_string();
                s.agent_sources = std::mem::take(&mut cx.agent_sources);
                s.passwords = std::mem::take(&mut cx.passwords);
                s.checks.agent_ready_within = std::mem::take(&mut cx.ready_within);
                s.checks.ready_within = cx.stack_ready_within.take();
                Ok(s)
            }
            _ => {
                let mut errors = std::mem::take(&mut cx.errors);
                errors.sort_by_key(|e| (e.line(), e.column()));
                errors.dedup();
                if errors.is_empty() {
                    // every decoder records why it fails; this is a safety net
                    errors.push(ScenarioError::whole_file(
                        path,
                        "the scenario could not be decoded (no specific error was recorded; \
                         please report this)",
                    ));
                }
                Err(errors)
            }
        }
    }

    /// An error at `pos` of this scenario's file, rendered like the parser's errors: for
    /// mistakes only found at run time (a missing build context, an unknown operation).
    pub fn error_at(
        &self,
        pos: SourcePos,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) -> ScenarioError {
        let e = ScenarioError::new(error::Inner {
            file: self.path.clone(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
            label: label.into(),
            width: pos.width.max(1),
            source_line: self
                .source
                .lines()
                .nth(pos.line.saturating_sub(1))
                .unwrap_or_default()
                .trim_end_matches('\r')
                .to_string(),
            notes: Vec::new(),
        });
        match help {
            Some(h) => e.help(h),
            None => e,
        }
    }

    /// The stack for `plan::plan_stack`.
    pub fn stack_spec(&self) -> StackSpec {
        StackSpec {
            site_config: self.site_config.clone(),
            ..self.stack.clone()
        }
    }
}

/// Read and parse `path` (`${VAR}` from `env`), reporting every error found (in file order),
/// not just the first.
pub fn check_file(path: &Path, env: &Env) -> Result<Scenario, Vec<ScenarioError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ScenarioError::whole_file(
            path,
            format!("cannot read the scenario file: {e}"),
        )]
    })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut s = Scenario::parse_all(&text, &abs, &|name| env.var(name)).map_err(|errors| {
        // messages name the file as the user gave it (and other files, e.g. a compose
        // file, relative to the current directory when they are under it)
        let cwd = std::env::current_dir().unwrap_or_default();
        errors
            .into_iter()
            .map(|mut e| {
                if e.file() == abs {
                    e.set_file(path);
                } else if let Ok(rel) = e.file().strip_prefix(&cwd) {
                    let rel = rel.to_path_buf();
                    e.set_file(&rel);
                }
                e
            })
            .collect::<Vec<_>>()
    })?;
    s.path = path.to_path_buf();
    Ok(s)
}
