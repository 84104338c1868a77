//! The runner's decisions against a scripted fake stack (no Docker): `until` gives up early,
//! the process identity check, log windows, `after-last-fault`, and the events a run emits.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

use super::event::Emitter;
use super::event::Outcome;
use super::stack_ops::StackOps;
use super::steps::run_steps;
use super::{RunEvent, StepFailure};
use crate::ocs::{AgentApi, CallError, ClientError, Reply};
use crate::runtime::exec::{Command, CommandOutput, ExecError};
use crate::runtime::logs::{LogLine, Stream};
use crate::runtime::stack::StackError;
use crate::scenario::{Fault, FaultAction, Fetched, OpAction, Scenario};
use crate::transcript::Transcript;

/// The files a fetch finds: name and size.
type Files = Vec<(String, u64)>;

/// A stack whose answers are scripted.
#[derive(Default)]
struct Fake {
    /// `get_api` answers, in order (the last one repeats).
    apis: Mutex<VecDeque<AgentApi>>,
    /// `.ops` answers, in order (the last one repeats); `Err` is a failed call.
    replies: Mutex<VecDeque<Result<Reply, String>>>,
    /// Containers that are not running, with their exit code.
    stopped: Mutex<BTreeMap<String, Option<i64>>>,
    /// Every log line so far.
    logs: Mutex<Vec<LogLine>>,
    /// Every call and fault, as text.
    calls: Mutex<Vec<String>>,
    /// What each fetch of a path finds, in order (the last one repeats); absent: no such path.
    files: Mutex<BTreeMap<String, VecDeque<Files>>>,
    /// Return values of `call` steps, in order (the last one repeats); `Err` is a failed call.
    values: Mutex<VecDeque<Result<Value, String>>>,
    /// What an emulated device's `received` answers, in order (the last one repeats).
    received: Mutex<VecDeque<Vec<&'static str>>>,
}

fn next<T: Clone>(queue: &Mutex<VecDeque<T>>) -> T {
    let mut q = queue.lock().unwrap();
    if q.len() > 1 {
        q.pop_front().unwrap()
    } else {
        q.front().cloned().expect("a scripted answer")
    }
}

fn call_error(message: &str) -> ClientError {
    ClientError::Call(CallError::Wamp {
        procedure: "observatory.fake1.ops".into(),
        uri: "wamp.error.no_such_procedure".into(),
        args: vec![json!(message)],
        kwargs: Map::new(),
    })
}

impl Fake {
    fn log(&self, container: &str, text: &str) {
        let mut logs = self.logs.lock().unwrap();
        let seq = logs.len();
        let (tag, text) = crate::levels::strip(text);
        logs.push(LogLine {
            seq,
            container: container.into(),
            received: SystemTime::now(),
            stream: Stream::Stdout,
            text: text.into(),
            level: tag.as_ref().and_then(|t| t.level),
            namespace: tag.map(|t| t.namespace),
        });
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl StackOps for Fake {
    async fn get_api(&self, instance: &str) -> Result<AgentApi, ClientError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("get_api {instance}"));
        Ok(next(&self.apis))
    }

    async fn op(
        &self,
        action: OpAction,
        instance: &str,
        op: &str,
        _params: Option<&Value>,
        _timeout: Option<Duration>,
        password: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let mut call = format!("{} {instance}.{op}", action.as_str());
        if let Some(pw) = password {
            call.push_str(&format!(" (password {pw})"));
        }
        self.calls.lock().unwrap().push(call.clone());
        self.log(instance, &format!("called {call}"));
        next(&self.replies).map_err(|e| call_error(&e))
    }

    async fn call(
        &self,
        instance: &str,
        procedure: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, ClientError> {
        let call = format!(
            "call {instance}.{procedure} {} {}",
            Value::from(args),
            Value::from(kwargs)
        );
        self.calls.lock().unwrap().push(call);
        next(&self.values).map_err(|e| call_error(&e))
    }

    async fn container_state(&self, role: &str) -> Result<(bool, Option<i64>), StackError> {
        Ok(match self.stopped.lock().unwrap().get(role) {
            Some(code) => (false, *code),
            None => (true, None),
        })
    }

    async fn fault(&mut self, fault: &Fault) -> Result<(), StackError> {
        let what = format!("fault {} {}", fault.action.as_str(), fault.container);
        self.calls.lock().unwrap().push(what);
        if fault.action == FaultAction::Kill {
            self.stopped
                .lock()
                .unwrap()
                .insert(fault.container.clone(), Some(137));
        }
        Ok(())
    }

    async fn fetch(
        &self,
        role: &str,
        path: &str,
        into: &str,
    ) -> Result<Option<(std::path::PathBuf, Fetched)>, StackError> {
        let what = format!("fetch {role}:{path} into {into}");
        self.calls.lock().unwrap().push(what);
        let mut all = self.files.lock().unwrap();
        let Some(queue) = all.get_mut(path) else {
            return Ok(None);
        };
        let files = if queue.len() > 1 {
            queue.pop_front().unwrap()
        } else {
            queue.front().cloned().unwrap_or_default()
        };
        Ok(Some((
            format!("runs/r1/fetched/{into}").into(),
            Fetched { files },
        )))
    }

    /// Echoes the command line on stdout, exit code 3 when it contains `fail`.
    async fn exec(&self, role: &str, command: &Command) -> Result<CommandOutput, ExecError> {
        let line = command.cmd.join(" ");
        self.calls
            .lock()
            .unwrap()
            .push(format!("exec in {role}: {line}"));
        if let (false, code) = self.container_state(role).await? {
            let role = role.into();
            return Err(ExecError::NotRunning {
                role,
                code,
                cmd: line,
            });
        }
        if command.cmd.get(1).map(String::as_str) == Some(crate::device::EMULATOR_PATH) {
            let answer = match command.cmd[2].as_str() {
                "received" => json!({"ok": true, "received": next(&self.received)}),
                action => json!({"ok": true, "action": action}),
            };
            return Ok(CommandOutput {
                exit: 0,
                stdout: format!("{answer}\n"),
                stderr: String::new(),
                duration: Duration::from_millis(20),
            });
        }
        Ok(CommandOutput {
            exit: if line.contains("fail") { 3 } else { 0 },
            stdout: format!("{line}\n"),
            stderr: String::new(),
            duration: Duration::from_millis(20),
        })
    }

    async fn exec_in_image(
        &self,
        image: &crate::overrides::ImageRef,
        command: &Command,
    ) -> Result<CommandOutput, ExecError> {
        let line = command.cmd.join(" ");
        self.calls
            .lock()
            .unwrap()
            .push(format!("exec in a new {image} ({}): {line}", command.label));
        Ok(CommandOutput {
            exit: 0,
            stdout: format!("{line}\n"),
            stderr: String::new(),
            duration: Duration::from_millis(20),
        })
    }

    fn log_mark(&self) -> usize {
        self.logs.lock().unwrap().len()
    }

    fn log_lines(&self, container: &str, since: usize) -> Vec<LogLine> {
        let logs = self.logs.lock().unwrap();
        logs.get(since..)
            .unwrap_or(&[])
            .iter()
            .filter(|l| l.container == container)
            .cloned()
            .collect()
    }

    fn log_tail(&self, container: &str, n: usize) -> Vec<String> {
        let lines = self.log_lines(container, 0);
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| l.text.clone())
            .collect()
    }
}

/// A scenario with one agent, `fake1`, and `steps`.
fn scenario(steps: &str) -> Scenario {
    let text = format!(
        "name: unit\nstack:\n  agents:\n    - instance-id: fake1\n      agent-class: FakeDataAgent\n      \
         image: simonsobs/ocs:latest\nsteps:\n{steps}"
    );
    Scenario::parse_all(&text, Path::new("unit.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("{}", e[0]))
}

/// The agent's `get_api` with process `pid` and feed session `feed`.
fn api(pid: i64, feed: &str) -> AgentApi {
    let body: Value =
        serde_json::from_str(include_str!("../ocs/testdata/get_api_barebones.json")).unwrap();
    let mut api = AgentApi::from_value(body["args"][0].clone()).unwrap();
    api.instance_pid = pid;
    api.feeds[0].1["session_id"] = json!(feed);
    api
}

/// A reply carrying a session of `acq` in `status`, with `data`.
fn reply(status: &str, data: Value) -> Reply {
    let (op_code, success) = match status {
        "done" => (5, json!(true)),
        _ => (3, Value::Null),
    };
    Reply::from_value(json!([0, "Session active.", {
        "session_id": 0, "op_name": "acq", "op_code": op_code, "status": status,
        "degraded": false, "success": success, "start_time": 1.0, "data": data,
        "messages": [[1.0, "Status is now \"running\"."]],
    }]))
    .unwrap()
}

/// Run `steps` against `fake`: the failure and every event.
async fn run(fake: &mut Fake, steps: &str) -> (Option<StepFailure>, Vec<RunEvent>) {
    run_scenario(fake, scenario(steps)).await
}

/// Run `steps` on a stack with an emulated device, `dev`.
async fn run_with_device(fake: &mut Fake, steps: &str) -> Option<StepFailure> {
    let text = format!(
        "name: unit\nstack:\n  agents:\n    - instance-id: fake1\n      agent-class: FakeDataAgent\n      \
         image: simonsobs/ocs:latest\n  devices:\n    - name: dev\nsteps:\n{steps}"
    );
    let scenario = Scenario::parse_all(&text, Path::new("unit.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("{}", e[0]));
    run_scenario(fake, scenario).await.0
}

async fn run_scenario(fake: &mut Fake, scenario: Scenario) -> (Option<StepFailure>, Vec<RunEvent>) {
    let mut events = Vec::new();
    let mut collect = |e: &RunEvent| events.push(e.clone());
    let failure = {
        let emitter = Emitter::new(vec![&mut collect]);
        run_steps(fake, &scenario, &emitter).await
    };
    (failure, events)
}

fn problems(failure: &Option<StepFailure>) -> String {
    failure
        .as_ref()
        .map(|f| f.problems.join("\n"))
        .unwrap_or_default()
}

#[tokio::test]
async fn until_gives_up_when_the_session_ends_without_matching() {
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("done", json!({"value": 1}))));
    let t = Instant::now();
    let (failure, _) = run(
        &mut fake,
        "  - until: fake1.acq\n    timeout: 60s\n    expect: {data: {value: 5}}\n",
    )
    .await;
    assert!(t.elapsed() < Duration::from_secs(5), "it gave up early");
    let failure = failure.expect("the step fails");
    assert_eq!(failure.step, 1);
    assert!(
        failure.problems[0].contains("the session ended") && failure.problems[0].contains("value"),
        "{failure}"
    );
    assert_eq!(failure.container.as_deref(), Some("fake1"));
    assert_eq!(failure.last_reply.as_ref().unwrap()["status"], "OK");
    assert_eq!(fake.calls(), ["status fake1.acq"], "one poll was enough");
}

#[tokio::test]
async fn until_gives_up_when_the_container_exits() {
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Err("the agent is gone".into()));
    fake.stopped.lock().unwrap().insert("fake1".into(), Some(1));
    let t = Instant::now();
    let (failure, events) = run(
        &mut fake,
        "  - until: fake1.acq\n    timeout: 60s\n    expect: {status: ok}\n",
    )
    .await;
    assert!(t.elapsed() < Duration::from_secs(5), "it gave up early");
    let text = problems(&failure);
    assert!(
        text.contains("gave up waiting for fake1.acq to match the expectation")
            && text.contains("the container of fake1 exited with code 1"),
        "{text}"
    );
    let outcome = events.iter().find_map(|e| match e {
        RunEvent::StepFinished { outcome, .. } => Some(outcome),
        _ => None,
    });
    assert!(
        matches!(outcome, Some(Outcome::Polled(None))),
        "{outcome:?}"
    );
    // no reply was ever seen: the failure says so with a null last reply
    assert_eq!(failure.unwrap().last_reply, Some(Value::Null));
}

#[tokio::test]
async fn until_keeps_polling_a_running_session_until_it_matches() {
    let mut fake = Fake::default();
    {
        let mut r = fake.replies.lock().unwrap();
        r.push_back(Ok(reply("running", json!({"value": 1}))));
        r.push_back(Err("a transient bridge error".into()));
        r.push_back(Ok(reply("running", json!({"value": 3}))));
    }
    let (failure, _) = run(
        &mut fake,
        "  - until: fake1.acq\n    timeout: 20s\n    expect: {data: {value: {\">=\": 2}}}\n",
    )
    .await;
    assert!(failure.is_none(), "{}", problems(&failure));
    assert_eq!(fake.calls().len(), 3);
}

const API_TWICE: &str =
    "  - api: fake1\n  - fault: restart\n    container: fake1\n  - api: fake1\n";

#[tokio::test]
async fn pid_same_holds_for_the_same_process_and_fails_for_a_new_one() {
    let mut fake = Fake::default();
    fake.apis.lock().unwrap().push_back(api(7, "1.5"));
    let steps = format!("{API_TWICE}    expect: {{pid: same}}\n");
    let (failure, _) = run(&mut fake, &steps).await;
    assert!(failure.is_none(), "{}", problems(&failure));

    let mut fake = Fake::default();
    fake.apis
        .lock()
        .unwrap()
        .extend([api(7, "1.5"), api(7, "2.5")]);
    let (failure, _) = run(&mut fake, &steps).await;
    // the same pid in a new pid namespace is still a new process: the feed session tells
    assert_eq!(
        problems(&failure),
        "pid: expected the same agent process, but it changed from 7/1.5 to 7/2.5 \
         (pid/feed session) (the agent restarted)"
    );
    assert_eq!(failure.unwrap().step, 3);
}

#[tokio::test]
async fn pid_changed_needs_a_new_process_and_an_earlier_api_step() {
    let mut fake = Fake::default();
    fake.apis
        .lock()
        .unwrap()
        .extend([api(7, "1.5"), api(9, "2.5")]);
    let steps = format!("{API_TWICE}    expect: {{pid: changed}}\n");
    let (failure, _) = run(&mut fake, &steps).await;
    assert!(failure.is_none(), "{}", problems(&failure));

    let mut fake = Fake::default();
    fake.apis.lock().unwrap().push_back(api(7, "1.5"));
    let (failure, _) = run(&mut fake, &steps).await;
    assert_eq!(
        problems(&failure),
        "pid: expected a new agent process, but it is still 7/1.5"
    );

    let mut fake = Fake::default();
    fake.apis.lock().unwrap().push_back(api(7, "1.5"));
    let (failure, _) = run(&mut fake, "  - api: fake1\n    expect: {pid: changed}\n").await;
    assert!(
        problems(&failure).starts_with("pid: there is no earlier `api` step of this agent"),
        "{failure:?}"
    );
}

/// A line logged before the run, a status call (which logs `called status fake1.acq`), then a
/// `logs` step with `window`.
async fn logs_step(window: &str) -> (Option<StepFailure>, Vec<RunEvent>) {
    let mut fake = Fake::default();
    fake.log(
        "fake1",
        "2026-11-27T12:51:26+0000 Traceback from the start-up",
    );
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("running", json!({}))));
    let steps = format!(
        "  - status: fake1.acq\n  - logs: fake1\n    window: {window}\n    timeout: 1s\n    \
         contains: [called status]\n    absent: [Traceback]\n"
    );
    run(&mut fake, &steps).await
}

#[tokio::test]
async fn log_window_step_starts_where_the_previous_step_began() {
    let (failure, events) = logs_step("step").await;
    assert!(failure.is_none(), "{}", problems(&failure));
    let selected: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::LogLineSelected {
                step: 2,
                container,
                text,
            } if container == "fake1" => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(selected, ["called status fake1.acq"]);
    let mut transcript = Transcript::default();
    for e in &events {
        super::RunObserver::on_event(&mut transcript, e);
    }
    assert_eq!(
        transcript.steps[1].outcome,
        json!({"window": "step", "lines": ["called status fake1.acq"]})
    );
}

#[tokio::test]
async fn log_window_run_sees_every_line_and_fails_at_once_on_an_absent_one() {
    let t = Instant::now();
    let (failure, _) = logs_step("run").await;
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "absent fails at once"
    );
    let failure = failure.expect("the start-up traceback is in the run's window");
    assert_eq!(failure.step, 2);
    assert!(
        failure.problems[0].contains("expected no line containing \"Traceback\", but line 1"),
        "{failure}"
    );
    assert_eq!(failure.last_reply, None);
    assert_eq!(failure.log_tail.len(), 2);
}

/// A fault, then a status whose `data.timestamp` must be after it.
async fn after_fault(timestamp: f64) -> Option<StepFailure> {
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("running", json!({"timestamp": timestamp}))));
    let steps = "  - fault: restart\n    container: fake1\n  - status: fake1.acq\n    \
                 expect: {data: {timestamp: {after-last-fault: true}}}\n";
    run(&mut fake, steps).await.0
}

#[tokio::test]
async fn after_last_fault_refers_to_the_time_of_the_last_fault() {
    let now = crate::clock::unix_now();
    let failure = after_fault(now + 60.0).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    let failure = after_fault(now - 60.0)
        .await
        .expect("a time before the fault");
    assert_eq!(failure.step, 2);
    assert!(failure.problems[0].contains("data.timestamp"), "{failure}");
}

#[tokio::test]
async fn exits_checks_the_code_after_a_kill() {
    let mut fake = Fake::default();
    let steps = "  - fault: kill\n    container: fake1\n  - exits: fake1\n    timeout: 5s\n    \
                 code: 0\n";
    let (failure, events) = run(&mut fake, steps).await;
    assert_eq!(problems(&failure), "expected exit code 0, got 137");
    assert!(events.iter().any(|e| matches!(
        e,
        RunEvent::FaultInjected { step: 1, fault, container, .. } if fault == "kill" && container == "fake1"
    )));
}

#[tokio::test]
async fn a_failed_call_says_whether_the_container_is_gone() {
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Err("no such procedure".into()));
    fake.stopped.lock().unwrap().insert("fake1".into(), None);
    let (failure, _) = run(&mut fake, "  - start: fake1.acq\n  - status: fake1.acq\n").await;
    let failure = failure.expect("the call fails");
    assert_eq!(failure.step, 1, "the run stops at the first failure");
    assert_eq!(failure.problems.len(), 2);
    assert!(failure.problems[0].starts_with("the call failed: "));
    assert_eq!(failure.problems[1], "the container of fake1 is not running");
    assert_eq!(fake.calls(), ["start fake1.acq"]);
}

#[tokio::test]
async fn events_come_in_order_each_session_message_once() {
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("running", json!({}))));
    let (failure, events) = run(&mut fake, "  - status: fake1.acq\n  - status: fake1.acq\n").await;
    assert!(failure.is_none());
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "step_started",
            "call_made",
            "reply_received",
            "session_message",
            "step_finished",
            "step_started",
            "call_made",
            "reply_received",
            "step_finished",
        ]
    );
    let finished = serde_json::to_value(&events[4]).unwrap();
    assert_eq!(finished["step"], 1);
    assert_eq!(finished["line"], 8);
    assert_eq!(finished["action"], "status fake1.acq");
    assert_eq!(finished["passed"], true);
    assert!(finished["duration"].is_f64());
    assert_eq!(finished["outcome"]["reply"][1], "Session active.");
}

#[test]
fn the_run_is_send() {
    fn send<T: Send>(_: &T) {}
    let scenario = scenario("  - api: fake1\n");
    let options = crate::runtime::LaunchOptions::defaults("unit");
    let future = super::run(&scenario, &options);
    send(&future);
}

#[tokio::test]
async fn the_timeline_reads_the_events() {
    let mut fake = Fake::default();
    fake.apis.lock().unwrap().push_back(api(7, "1.5"));
    fake.replies.lock().unwrap().extend([
        Ok(reply("running", json!({}))),
        Ok(reply("running", json!({}))),
        Err("boom".into()),
    ]);
    let steps =
        "  - api: fake1\n  - start: fake1.acq\n    params: {a: 1}\n  - until: fake1.acq\n    \
                 timeout: 5s\n    expect: {status: ok}\n  - status: fake1.acq\n";
    let (_, events) = run(&mut fake, steps).await;
    let mut timeline = crate::timeline::Timeline::new();
    for e in &events {
        super::RunObserver::on_event(&mut timeline, e);
    }
    let lines: Vec<String> = timeline
        .merged(&[])
        .iter()
        .map(|e| format!("[{}] {}", e.source, e.text))
        .collect();
    let api = crate::transcript::api(&api(7, "1.5"));
    let error = call_error("boom");
    assert_eq!(
        lines,
        [
            "[session fake1.acq:0] Status is now \"running\".".to_string(),
            "[harness] step 1 (line 8): api fake1".into(),
            "[bridge] -> fake1 get_api".into(),
            format!("[bridge] <- fake1 get_api: {api}"),
            "[harness] step 1 ok".into(),
            "[harness] step 2 (line 9): start fake1.acq".into(),
            "[bridge] -> start fake1.acq {\"a\":1}".into(),
            "[bridge] <- OK \"Session active.\" [acq:0 RUNNING]".into(),
            "[harness] step 2 ok".into(),
            "[harness] step 3 (line 11): until fake1.acq (timeout 5s)".into(),
            "[bridge] <- status fake1.acq: OK \"Session active.\" [acq:0 RUNNING]".into(),
            "[harness] step 3 ok".into(),
            "[harness] step 4 (line 14): status fake1.acq".into(),
            "[bridge] -> status fake1.acq".into(),
            format!("[bridge] <- error: {error}"),
            format!("[harness] step 4 FAILED:\nthe call failed: {error}"),
        ]
    );
}

#[tokio::test]
async fn every_operation_a_step_names_must_exist_unless_an_error_is_expected() {
    let fake = Fake::default();
    fake.apis.lock().unwrap().push_back(api(7, "1.5"));
    let s = scenario("  - start: fake1.count\n  - until: fake1.nope\n    timeout: 1s\n    expect: {status: ok}\n");
    let error = super::check_operations(&fake, &s)
        .await
        .expect("nope is unknown");
    let text = error.to_string();
    assert!(
        text.contains("agent `fake1` has no operation `nope`"),
        "{text}"
    );
    assert!(text.contains("unit.yaml:9:12"), "{text}");
    // The agent under test does not offer what the scenario drives: a verdict, exit 1.
    assert_eq!(
        crate::report::failure_kind(&super::RunError::MissingOperation(Box::new(error))),
        crate::report::FailureKind::Assertion
    );
    let s = scenario("  - start: fake1.nope\n    expect: {status: error}\n");
    assert!(super::check_operations(&fake, &s).await.is_none());
    assert_eq!(fake.calls(), ["get_api fake1"], "one get_api per agent");
}

#[tokio::test]
async fn a_failure_points_at_the_expect_line_like_a_parse_error() {
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("done", json!({"value": 1}))));
    let steps =
        "  - wait: fake1.acq\n    timeout: 5s\n    expect:\n      session: {status: running}\n";
    let (failure, events) = run(&mut fake, steps).await;
    let failure = failure.expect("the step fails");
    let text = failure.to_string();
    assert!(
        text.starts_with(
            "error: step 1 (line 8): wait fake1.acq (timeout 5s) failed\n  \
             --> unit.yaml:10:5\n   |\n10 |     expect:\n   |     ^^^^^^ this expectation did \
             not hold\n  - "
        ),
        "{text}"
    );
    assert!(text.contains("last reply:"), "{text}");
    let finished = events.iter().find_map(|e| match e {
        RunEvent::StepFinished { failure, .. } => failure.clone(),
        _ => None,
    });
    let json = serde_json::to_value(finished.expect("the step's failure")).unwrap();
    assert_eq!(
        json["at"],
        json!({"file": "unit.yaml", "line": 10, "column": 5})
    );
}

#[tokio::test]
async fn a_step_without_expect_points_at_its_target() {
    let mut fake = Fake::default();
    let steps = "  - fault: kill\n    container: fake1\n  - exits: fake1\n    timeout: 5s\n    \
                 code: 0\n";
    let (failure, _) = run(&mut fake, steps).await;
    let text = failure.expect("the exit code differs").to_string();
    assert!(
        text.starts_with(
            "error: step 2 (line 10): exits fake1 (timeout 5s) failed\n  --> unit.yaml:10:12\n   \
             |\n10 |   - exits: fake1\n   |            ^^^^^ this step failed\n  - expected exit \
             code 0, got 137\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn fetch_checks_what_came_out_and_fetches_again_until_it_holds() {
    let mut fake = Fake::default();
    let g3 = |n: u64| vec![("1765/a.g3".to_string(), n)];
    fake.files
        .lock()
        .unwrap()
        .insert("/data".into(), VecDeque::from([vec![], g3(0), g3(12)]));
    let (failure, events) = run(
        &mut fake,
        "  - fetch: fake1\n    path: /data\n    timeout: 30s\n    \
         expect: {count: {\">=\": 1}, size: {\">\": 0}, names: {contains: 1765/a.g3}}\n",
    )
    .await;
    assert!(failure.is_none(), "{}", problems(&failure));
    assert_eq!(fake.calls().len(), 3, "{:?}", fake.calls());
    assert_eq!(fake.calls()[0], "fetch fake1:/data into fake1-data");
    let finished = events.iter().find_map(|e| match e {
        RunEvent::StepFinished { outcome, .. } => Some(outcome.normalised()),
        _ => None,
    });
    assert_eq!(finished, Some(json!({"fetched": "/data", "exists": true})));
    let mut timeline = crate::timeline::Timeline::new();
    for e in &events {
        super::event::RunObserver::on_event(&mut timeline, e);
    }
    let text = crate::timeline::render(&timeline.merged(&[]));
    assert!(
        text.contains(
            "step 1 ok: fetched /data: 1 file(s), 12 bytes, in runs/r1/fetched/fake1-data"
        ),
        "{text}"
    );

    // without a timeout: one look, and the mismatches are the problems
    let (failure, _) = run(
        &mut fake,
        "  - fetch: fake1\n    path: /data\n    into: d\n    expect: {count: 2}\n",
    )
    .await;
    assert_eq!(problems(&failure), "count: expected 2, got 1");
}

#[tokio::test]
async fn fetch_of_a_missing_path_names_container_and_path() {
    let mut fake = Fake::default();
    let (failure, _) = run(&mut fake, "  - fetch: fake1\n    path: /nowhere\n").await;
    assert_eq!(
        problems(&failure),
        "exists: expected `/nowhere` in the container of fake1 to exist, but there is no such path"
    );
    let (failure, _) = run(
        &mut fake,
        "  - fetch: fake1\n    path: /nowhere\n    expect: {exists: false}\n",
    )
    .await;
    assert!(failure.is_none(), "{}", problems(&failure));
}

#[tokio::test]
async fn exec_checks_exit_code_and_output_and_records_them() {
    let mut fake = Fake::default();
    let steps = "  - exec: {in: fake1, cmd: [ocsbow, status], env: {A: b}}\n    \
                 expect: {stdout: {contains: ocsbow}, stderr: \"\"}\n  \
                 - exec: {in: crossbar, cmd: 'echo fail'}\n";
    let (failure, events) = run(&mut fake, steps).await;
    assert_eq!(
        fake.calls(),
        [
            "exec in fake1: ocsbow status",
            "exec in crossbar: /bin/sh -c echo fail"
        ]
    );
    let failure = failure.expect("the second command exits with 3");
    assert_eq!(failure.step, 2);
    assert_eq!(problems(&Some(failure.clone())), "exit: expected 0, got 3");
    assert_eq!(
        failure.last_reply.as_ref().unwrap()["stdout"],
        "/bin/sh -c echo fail"
    );
    let first = events.iter().find_map(|e| match e {
        RunEvent::StepFinished { outcome, .. } => Some(outcome.normalised()),
        _ => None,
    });
    assert_eq!(
        first,
        Some(json!({"exit": 0, "stdout": "ocsbow status", "stderr": ""}))
    );
}

#[tokio::test]
async fn exec_in_an_image_runs_in_a_new_container_named_by_its_step() {
    let mut fake = Fake::default();
    let steps = "  - exec: {image: simonsobs/ocs:latest, cmd: [python3, -c, 'print(1)']}\n    \
                 expect: {stdout: {contains: print}}\n";
    let (failure, events) = run(&mut fake, steps).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    assert_eq!(
        fake.calls(),
        ["exec in a new simonsobs/ocs:latest (step-1): python3 -c print(1)"]
    );
    let action = events.iter().find_map(|e| match e {
        RunEvent::StepFinished { action, .. } => Some(action.clone()),
        _ => None,
    });
    assert_eq!(
        action.as_deref(),
        Some("exec in a new simonsobs/ocs:latest: python3 -c print(1)")
    );
}

#[tokio::test]
async fn api_with_timeout_polls_until_a_get_api_field_matches() {
    let mut fake = Fake::default();
    let mut before = api(7, "1.5");
    before.raw["access_control"] = json!({"update_count": 0});
    let mut after = api(7, "1.5");
    after.raw["access_control"] = json!({"update_count": 2});
    fake.apis
        .lock()
        .unwrap()
        .extend([before.clone(), before, after]);
    let steps = "  - api: fake1\n    timeout: 20s\n    \
                 expect: {fields: {access_control: {update_count: {\">\": 0}}}}\n";
    let (failure, events) = run(&mut fake, steps).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    assert_eq!(fake.calls().len(), 3, "polled until it matched");
    let polled = events
        .iter()
        .filter(|e| matches!(e, RunEvent::CallMade { call, .. } if call.polled))
        .count();
    assert_eq!(polled, 3);

    // without a timeout it is checked once, and the mismatch names the get_api path
    let mut fake = Fake::default();
    let mut zero = api(7, "1.5");
    zero.raw["access_control"] = json!({"update_count": 0});
    fake.apis.lock().unwrap().push_back(zero);
    let steps = "  - api: fake1\n    expect: {fields: {access_control: {update_count: 1}}}\n";
    let (failure, _) = run(&mut fake, steps).await;
    assert_eq!(
        problems(&failure),
        "get_api.access_control.update_count: expected 1, got 0"
    );
}

#[tokio::test]
async fn api_polling_gives_up_at_its_timeout() {
    let mut fake = Fake::default();
    fake.apis.lock().unwrap().push_back(api(7, "1.5"));
    let steps = "  - api: fake1\n    timeout: 300ms\n    expect: {fields: {nope: 1}}\n";
    let (failure, _) = run(&mut fake, steps).await;
    let text = problems(&failure);
    assert!(
        text.starts_with("timed out after 300ms waiting for fake1's get_api to match")
            && text.contains("get_api.nope: expected 1, got nothing (no such key)"),
        "{text}"
    );
    assert!(
        failure.unwrap().last_reply.is_some(),
        "the last get_api is shown"
    );
}

#[tokio::test]
async fn call_checks_the_return_value_or_the_error() {
    let mut fake = Fake::default();
    fake.values.lock().unwrap().push_back(Ok(json!({
        "message": "grant acquired", "password": "s3cret", "step": 2
    })));
    let steps = "  - call: fake1.request_exclusive\n    \
                 kwargs: {grant_name: g, action: acquire}\n    \
                 expect: {value: {message: grant acquired, step: {type: int}}}\n";
    let (failure, events) = run(&mut fake, steps).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    assert_eq!(
        fake.calls(),
        [r#"call fake1.request_exclusive [] {"action":"acquire","grant_name":"g"}"#]
    );
    let made = events.iter().find_map(|e| match e {
        RunEvent::CallMade { call, .. } => Some(call.to_string()),
        _ => None,
    });
    assert_eq!(
        made.as_deref(),
        Some(r#"call fake1.request_exclusive {"kwargs":{"action":"acquire","grant_name":"g"}}"#)
    );

    let mut fake = Fake::default();
    fake.values
        .lock()
        .unwrap()
        .push_back(Ok(json!({"error": "nope"})));
    let steps = "  - call: fake1.request_exclusive\n    expect: {value: {message: x}}\n";
    let (failure, _) = run(&mut fake, steps).await;
    assert_eq!(
        problems(&failure),
        "value.message: expected \"x\", got nothing (no such key)"
    );

    let mut fake = Fake::default();
    fake.values
        .lock()
        .unwrap()
        .push_back(Err("no such procedure".into()));
    let steps = "  - call: fake1.nothing\n    expect: {error: {contains: no_such_procedure}}\n";
    let (failure, _) = run(&mut fake, steps).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    let (failure, _) = run(&mut fake, "  - call: fake1.nothing\n").await;
    assert!(
        problems(&failure).starts_with("the call failed: "),
        "{failure:?}"
    );
}

#[tokio::test]
async fn exec_in_an_exited_container_fails_the_step() {
    let mut fake = Fake::default();
    fake.stopped
        .lock()
        .unwrap()
        .insert("fake1".into(), Some(137));
    let (failure, _) = run(&mut fake, "  - exec: {in: fake1, cmd: [true]}\n").await;
    assert_eq!(
        problems(&failure),
        "the container of agent fake1 is not running (it exited with code 137); cannot run \
         `true` in it"
    );
}

#[tokio::test]
async fn captures_feed_later_params_and_expectations() {
    let mut fake = Fake::default();
    fake.replies.lock().unwrap().extend([
        Ok(reply("done", json!({"current_file": "a.g3", "n": 2}))),
        Ok(reply("running", json!({"current_file": "b.g3"}))),
    ]);
    let steps = "  - status: fake1.acq\n    capture: {file: data.current_file, n: data.n}\n  \
                 - start: fake1.acq\n    params: {n: \"{{n}}\", f: \"was {{file}}\"}\n    \
                 expect: {data: {current_file: {\"!=\": \"{{file}}\"}}}\n";
    let (failure, events) = run(&mut fake, steps).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    let params = events.iter().find_map(|e| match e {
        RunEvent::CallMade { step: 2, call } => call.params.clone(),
        _ => None,
    });
    assert_eq!(params, Some(json!({"n": 2, "f": "was a.g3"})));

    // the file did not change: `!=` a captured value fails, naming both
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("done", json!({"current_file": "a.g3", "n": 2}))));
    let (failure, _) = run(&mut fake, steps).await;
    assert_eq!(
        problems(&failure),
        "session.data.current_file: expected != \"a.g3\", got \"a.g3\""
    );

    // a path with nothing at it fails the capturing step
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("done", json!({}))));
    let (failure, _) = run(&mut fake, steps).await;
    assert_eq!(failure.as_ref().map(|f| f.step), Some(1));
    assert_eq!(
        problems(&failure),
        "capture `file`: there is no `data.current_file` in what the step got back\n\
         capture `n`: there is no `data.n` in what the step got back"
    );
}

#[tokio::test]
async fn times_are_the_steps_start_and_compare_with_captured_times() {
    let now = crate::clock::unix_now();
    let mut fake = Fake::default();
    fake.replies.lock().unwrap().extend([
        Ok(reply("done", json!({"timestamp": now + 5.0}))),
        Ok(reply("done", json!({"timestamp": now + 1000.0}))),
    ]);
    let steps = "  - start: fake1.acq\n    params: {until: {now: +100s}}\n    \
                 capture: {t0: {now: 0s}}\n    \
                 expect: {data: {timestamp: {\">\": {now: -60s}, \"<\": {now: +60s}}}}\n  \
                 - status: fake1.acq\n    \
                 expect: {data: {timestamp: {\">\": \"{{t0}}\", \"<\": {at: t0, plus: 60s}}}}\n";
    let (failure, events) = run(&mut fake, steps).await;
    let sent = events.iter().find_map(|e| match e {
        RunEvent::CallMade { step: 1, call } => call.params.clone(),
        _ => None,
    });
    let until = sent.and_then(|p| p["until"].as_f64()).expect("a number");
    assert!((until - now - 100.0).abs() < 5.0, "{until} vs {now}");
    // the first reply is within a minute of t0; the second is not, and says so
    assert_eq!(failure.as_ref().map(|f| f.step), Some(2));
    assert!(
        problems(&failure).starts_with("session.data.timestamp: expected < "),
        "{}",
        problems(&failure)
    );
}

/// A tap line for a recorded `false_temperatures` message of fake1 with `value` samples.
fn tap_line(timestamps: &[f64], value: Value) -> String {
    let values = vec![value; timestamps.len()];
    json!({"tap": "message", "agent": "fake1", "feed": "false_temperatures", "received": 1.0,
           "message": {"temps": {"block_name": "temps", "data": {"channel_00": values},
                                 "timestamps": timestamps}}})
    .to_string()
}

const FEED_STEP: &str = "  - feed: {agent: fake1, feed: false_temperatures, within: 1s}\n    \
    expect: {count: 2, blocks: [temps], fields: {channel_00: float}, timestamps: increasing}\n";

#[tokio::test]
async fn feed_step_checks_the_taps_messages() {
    let mut fake = Fake::default();
    fake.log(
        crate::runtime::tap::TAP,
        r#"{"tap": "subscribed", "topics": 1}"#,
    );
    fake.log(crate::runtime::tap::TAP, &tap_line(&[1.0, 2.0], json!(0.1)));
    fake.log("fake1", "not a tap line");
    fake.log(crate::runtime::tap::TAP, &tap_line(&[3.0], json!(0.2)));
    let (failure, events) = run(&mut fake, FEED_STEP).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    let mut transcript = Transcript::default();
    for e in &events {
        super::RunObserver::on_event(&mut transcript, e);
    }
    assert_eq!(
        transcript.steps[0].outcome,
        json!({"feed": "fake1.false_temperatures", "blocks": ["temps"], "fields": ["channel_00"]})
    );
}

#[tokio::test]
async fn feed_step_fails_at_once_on_a_wrong_field_and_at_the_deadline_on_silence() {
    let mut fake = Fake::default();
    fake.log(crate::runtime::tap::TAP, &tap_line(&[1.0], json!("0.1")));
    let t = Instant::now();
    let (failure, _) = run(&mut fake, FEED_STEP).await;
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "a wrong field fails at once"
    );
    let text = problems(&failure);
    assert!(
        text.contains("fields.channel_00: message 1: expected type float"),
        "{text}"
    );
    let mut silent = Fake::default();
    let (failure, _) = run(&mut silent, FEED_STEP).await;
    let text = problems(&failure);
    assert!(
        text.contains("feed fake1.false_temperatures") && text.contains("0 message(s) so far"),
        "{text}"
    );
}

#[tokio::test]
async fn passwords_are_sent_and_never_seen_in_clear() {
    let text = "name: unit\nstack:\n  agents:\n    - instance-id: fake1\n      \
                agent-class: FakeDataAgent\n      image: simonsobs/ocs:latest\n      \
                password: agent-pw-123\nsteps:\n  - status: fake1.acq\n  \
                - call: fake1.request_exclusive\n    kwargs: {password: grant-pw-456}\n    \
                capture: {pw: value.password}\n  - start: fake1.acq\n    password: \"{{pw}}\"\n  \
                - status: fake1.acq\n    password: step-pw-789\n";
    let scenario = Scenario::parse_all(text, Path::new("unit.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("{}", e[0]));
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("running", json!({"echo": "agent-pw-123"}))));
    fake.values.lock().unwrap().push_back(Ok(
        json!({"password": "granted-pw-000", "message": "grant acquired"}),
    ));
    let mut events = Vec::new();
    let mut collect = |e: &RunEvent| events.push(e.clone());
    let failure = {
        let emitter = Emitter::new(vec![&mut collect]);
        run_steps(&mut fake, &scenario, &emitter).await
    };
    assert!(failure.is_none(), "{}", problems(&failure));
    assert_eq!(
        fake.calls(),
        [
            "status fake1.acq (password agent-pw-123)",
            r#"call fake1.request_exclusive [] {"password":"grant-pw-456"}"#,
            "start fake1.acq (password granted-pw-000)",
            "status fake1.acq (password step-pw-789)",
        ],
        "the agent's password by default, a step's own (a captured one too) instead"
    );
    let all: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    for secret in [
        "agent-pw-123",
        "grant-pw-456",
        "granted-pw-000",
        "step-pw-789",
    ] {
        assert!(!all.contains(secret), "{secret} in the events: {all}");
    }
    assert!(all.contains("<redacted>"), "{all}");
}

/// A fault (`action`), then a status whose `data.timestamp` must be after the stack was ready
/// again.
async fn after_ready(action: &str, timestamp: f64) -> Option<StepFailure> {
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("running", json!({"timestamp": timestamp}))));
    let steps = format!(
        "  - fault: {action}\n    container: fake1\n  - status: fake1.acq\n    \
         expect: {{data: {{timestamp: {{after-ready-again: true}}}}}}\n"
    );
    run(&mut fake, &steps).await.0
}

#[tokio::test]
async fn after_ready_again_refers_to_when_a_fault_found_the_stack_ready() {
    let now = crate::clock::unix_now();
    let failure = after_ready("restart", now + 60.0).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    let failure = after_ready("restart", now - 60.0).await;
    assert!(
        problems(&failure).starts_with("session.data.timestamp: expected > "),
        "{failure:?}"
    );
    // a fault that does not wait for readiness leaves nothing to be after
    let failure = after_ready("kill", now + 60.0).await;
    assert!(
        problems(&failure).contains("no fault step has waited for that yet"),
        "{failure:?}"
    );
}

#[tokio::test]
async fn a_step_over_its_within_fails_there_though_its_expectation_held() {
    let mut fake = Fake::default();
    {
        let mut r = fake.replies.lock().unwrap();
        r.push_back(Ok(reply("running", json!({"value": 1}))));
        r.push_back(Ok(reply("running", json!({"value": 2}))));
        r.push_back(Ok(reply("running", json!({"value": 5}))));
    }
    let (failure, events) = run(
        &mut fake,
        "  - until: fake1.acq\n    timeout: 60s\n    within: 1ms\n    expect: {data: {value: 5}}\n",
    )
    .await;
    let failure = failure.expect("over its budget");
    assert_eq!(failure.problems.len(), 1, "{failure}");
    assert!(
        failure.problems[0].starts_with("the step took ")
            && failure.problems[0].ends_with(", over its budget `within: 1ms`"),
        "{failure}"
    );
    let at = failure.at.as_ref().unwrap();
    assert_eq!((at.line(), at.column()), (10, 13), "{failure}");
    assert!(
        failure.to_string().contains("this budget was exceeded"),
        "{failure}"
    );
    let passed = events.iter().find_map(|e| match e {
        RunEvent::StepFinished { passed, .. } => Some(*passed),
        _ => None,
    });
    assert_eq!(passed, Some(false));
    // the same step with the time it needs passes
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("running", json!({"value": 5}))));
    let (failure, _) = run(
        &mut fake,
        "  - until: fake1.acq\n    timeout: 60s\n    within: 30s\n    expect: {data: {value: 5}}\n",
    )
    .await;
    assert!(failure.is_none(), "{failure:?}");
}

/// Times of a run of [`scenario`]`(steps)`: crossbar booted in 4 s, fake1 registered in
/// `registration` seconds, the steps took `durations`.
fn times(registration: f64, durations: &[f64], steps: &str) -> crate::budget::RunTimes {
    let s = scenario(steps);
    crate::budget::RunTimes {
        scenario: s.name.clone(),
        run_id: "r1".into(),
        passed: true,
        crossbar_boot: 4.0,
        registration: BTreeMap::from([("fake1".to_string(), registration)]),
        steps: s
            .steps
            .iter()
            .zip(durations)
            .map(|(step, d)| crate::budget::StepTime {
                step: step.index,
                action: step.kind.to_string(),
                duration: *d,
                passed: true,
            })
            .collect(),
    }
}

#[test]
fn budgets_come_from_the_scenario_the_baseline_or_the_run_s_floor() {
    use super::checks::over_budget;
    use crate::budget::{BudgetOptions, GrowthRule};
    let steps =
        "  - status: fake1.acq\n  - start: fake1.acq\n  - wait: fake1.acq\n    timeout: 30s\n";
    let s = scenario(steps);
    let none = BudgetOptions::default();
    let shown = |over: Vec<(crate::budget::Over, crate::scenario::SourcePos)>| {
        over.iter()
            .map(|(o, at)| format!("{o} @{}:{}", at.line, at.column))
            .collect::<Vec<_>>()
    };
    // the defaults: 1.5 × crossbar's 4 s boot, at least 15 s; 50 × the fastest call, at
    // least 5 s; no default for a wait
    assert!(over_budget(&s, &times(14.0, &[0.02, 4.0, 25.0], steps), &none).is_empty());
    assert_eq!(
        shown(over_budget(
            &s,
            &times(20.0, &[0.02, 6.0, 25.0], steps),
            &none
        )),
        [
            "agent fake1's registration took 20.0s, over its budget of 15.0s (the default: 1.5 \
             × this run's crossbar boot of 4.00s, at least 15.0s; `ready-within` sets it) @4:20",
            "step 2 (start fake1.acq) took 6.00s, over its budget of 5.00s (the default for a \
             single call: 50 × this run's fastest call of 20ms, at least 5.00s; `within` sets \
             it) @9:12"
        ]
    );
    // a baseline replaces the defaults: twice the baseline or 2 s more
    let base = times(3.0, &[0.02, 0.03, 0.05], steps);
    let with_base = BudgetOptions {
        baseline: Some(std::sync::Arc::new(BTreeMap::from([(
            "unit".to_string(),
            base,
        )]))),
        rule: GrowthRule::default(),
    };
    assert_eq!(
        shown(over_budget(
            &s,
            &times(7.0, &[0.02, 0.04, 5.1], steps),
            &with_base
        )),
        [
            "agent fake1's registration took 7.00s, over its budget of 6.00s (the baseline's \
             3.00s × 2 or + 2.00s, whichever is larger) @4:20",
            "step 3 (wait fake1.acq (timeout 30s)) took 5.10s, over its budget of 2.05s (the \
             baseline's 50ms × 2 or + 2.00s, whichever is larger) @10:11"
        ]
    );
    // the scenario's own numbers win; a step with `within` was checked as it ended
    let own = "  - status: fake1.acq\n  - start: fake1.acq\n    within: 10s\n  - wait: fake1.acq\n    timeout: 30s\n";
    let text = format!(
        "name: unit\nstack:\n  ready-within: 25s\n  agents:\n    - instance-id: fake1\n      \
         agent-class: FakeDataAgent\n      image: simonsobs/ocs:latest\nsteps:\n{own}"
    );
    let s = Scenario::parse_all(&text, Path::new("unit.yaml"), &|_| None).unwrap();
    assert!(over_budget(&s, &times(20.0, &[0.02, 6.0, 25.0], own), &none).is_empty());
    assert_eq!(
        shown(over_budget(&s, &times(26.0, &[0.02, 6.0, 25.0], own), &none)),
        ["agent fake1's registration took 26.0s, over its budget of 25.0s (`ready-within: 25s`) @3:17"]
    );
}

#[tokio::test]
async fn redact_hides_what_varies_from_the_transcript_not_from_the_check() {
    let mut fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Ok(reply("running", json!({"value": 2, "children": ["a"]}))));
    let steps = "  - status: fake1.acq\n    \
                 expect: {data: {children: [a]}}\n    \
                 redact: [session.messages, data.children]\n";
    let (failure, events) = run(&mut fake, steps).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    let mut transcript = Transcript::default();
    for e in &events {
        super::RunObserver::on_event(&mut transcript, e);
    }
    let session = &transcript.steps[0].outcome["session"];
    assert_eq!(session["messages"], "<redacted>");
    assert_eq!(
        session["data"],
        json!({"value": "<int>", "children": "<redacted>"})
    );
    assert_eq!(session["status"], "running", "the rest is kept");
}

/// `steps` after `fault: kill` of fake1 (whose log has a line): the failure and how long the
/// run took.
async fn after_kill(steps: &str) -> (StepFailure, Duration) {
    let mut fake = Fake::default();
    fake.log("fake1", "the last words of fake1");
    fake.files
        .lock()
        .unwrap()
        .insert("/data".into(), VecDeque::from([vec![]]));
    let steps = format!("  - fault: kill\n    container: fake1\n{steps}");
    let t = Instant::now();
    let (failure, _) = run(&mut fake, &steps).await;
    (failure.expect("the step fails"), t.elapsed())
}

#[tokio::test]
async fn waits_on_an_exited_container_end_at_once_with_its_code_and_log_tail() {
    for (kind, steps) in [
        (
            "logs",
            "  - logs: fake1\n    timeout: 90s\n    contains: [never printed]\n",
        ),
        (
            "feed",
            "  - feed: {agent: fake1, feed: false_temperatures, within: 90s}\n    \
             expect: {count: 2}\n",
        ),
        (
            "fetch",
            "  - fetch: fake1\n    path: /data\n    timeout: 90s\n    expect: {count: 1}\n",
        ),
    ] {
        let (failure, took) = after_kill(steps).await;
        assert!(
            took < Duration::from_secs(5),
            "{kind}: took {took:?}, not cut short by the exit"
        );
        assert_eq!(failure.step, 2, "{kind}");
        let text = failure.problems.join("\n");
        assert!(
            text.contains("gave up waiting for")
                && text.contains("the container of fake1 exited with code 137"),
            "{kind}: {text}"
        );
        assert_eq!(failure.log_tail, ["the last words of fake1"], "{kind}");
    }
}

#[tokio::test]
async fn device_steps_change_responses_then_wait_for_what_was_received() {
    let mut fake = Fake {
        received: Mutex::new(VecDeque::from([
            vec!["*IDN?"],
            vec!["*IDN?", "ZCLEAR", "RDG?", "ZPROBE"],
            vec!["*IDN?", "ZCLEAR", "RDG?", "ZPROBE", "ZCLEAR"],
        ])),
        ..Fake::default()
    };
    let steps = "  - device: dev\n    define-responses: {ZCLEAR: ''}\n    default-response: ''\n  \
                 - device: dev\n    expect: {received: [ZCLEAR, ZPROBE]}\n  \
                 - device: dev\n    expect: {received: [ZCLEAR]}\n";
    let failure = run_with_device(&mut fake, steps).await;
    assert!(failure.is_none(), "{}", problems(&failure));
    let calls = fake.calls();
    assert_eq!(
        calls[0],
        format!(
            "exec in dev: python3 {} define {{\"default\":\"\",\"responses\":{{\"ZCLEAR\":\"\"}}}}",
            crate::device::EMULATOR_PATH
        )
    );
    // polled until both came, then the next check only looks after ZPROBE: the ZCLEAR
    // received before it does not count, the third answer's does
    let polls = calls.iter().filter(|c| c.ends_with(" received")).count();
    assert_eq!(polls, 3, "{calls:#?}");
}

#[tokio::test]
async fn a_device_check_fails_at_its_timeout_saying_what_came() {
    let mut fake = Fake {
        received: Mutex::new(VecDeque::from([vec!["*IDN?", "ZCLEAR"]])),
        ..Fake::default()
    };
    let steps = "  - device: dev\n    expect: {received: [ZPROBE]}\n    timeout: 2s\n";
    let failure = run_with_device(&mut fake, steps).await;
    let text = problems(&failure);
    assert!(
        text.contains("timed out after 2s waiting for device dev to receive \"ZPROBE\"")
            && text.contains("received so far: \"*IDN?\", \"ZCLEAR\""),
        "{text}"
    );
}
