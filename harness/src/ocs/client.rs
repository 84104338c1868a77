//! The typed client: [`OcsClient`] (one per crossbar/address root) hands out
//! [`AgentClient`]s (one per agent instance-id) whose methods are the OCS management
//! calls and `.ops` actions, decoded into [`Reply`] and [`AgentApi`].

use std::time::Duration;

use serde_json::{Map, Value};

use super::protocol::{AgentApi, Reply};
use super::transport::{truncate, CallError, CallOptions, HttpBridge, Transport, WampError};

/// Extra HTTP time a [`AgentClient::wait`] allows on top of the OCS wait timeout.
pub const WAIT_HTTP_MARGIN: Duration = Duration::from_secs(10);

/// Why a typed call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The call itself failed (WAMP error, HTTP error, no connection, ...).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The call returned, but the value does not have the shape OCS documents.
    #[error("unexpected reply to {procedure}: {detail}; got {}", truncate(&body.to_string(), 1000))]
    Protocol {
        /// The procedure that was called.
        procedure: String,
        /// What is wrong with the value.
        detail: String,
        /// The returned value.
        body: Value,
    },
}

impl ClientError {
    /// True if the agent has not registered the procedure (WAMP `no_such_procedure`):
    /// the agent is not up yet, or gone.
    pub fn is_not_registered(&self) -> bool {
        matches!(self, Self::Call(e) if e.is_no_such_procedure())
    }

    /// The underlying call error, if any.
    pub fn call_error(&self) -> Option<&CallError> {
        match self {
            Self::Call(e) => Some(e),
            Self::Protocol { .. } => None,
        }
    }

    /// Classification of a WAMP error (HTTP 200 with `error`), if this is one.
    pub fn wamp_error(&self) -> Option<WampError> {
        self.call_error().and_then(CallError::wamp_error)
    }

    /// True if the HTTP request timed out.
    pub fn is_timeout(&self) -> bool {
        self.call_error().is_some_and(CallError::is_timeout)
    }

    /// True if the bridge could not be reached.
    pub fn is_connect(&self) -> bool {
        self.call_error().is_some_and(CallError::is_connect)
    }
}

/// A client for the agents under one address root (e.g. `observatory`).
#[derive(Debug, Clone)]
pub struct OcsClient<T: Transport = HttpBridge> {
    transport: T,
    address_root: String,
}

impl OcsClient<HttpBridge> {
    /// A client over crossbar's HTTP bridge at `call_url` (see [`HttpBridge::new`]).
    pub fn http(call_url: reqwest::Url, address_root: impl Into<String>) -> Self {
        Self::new(HttpBridge::new(call_url), address_root)
    }
}

impl<T: Transport> OcsClient<T> {
    /// A client calling through `transport` for agents under `address_root`.
    pub fn new(transport: T, address_root: impl Into<String>) -> Self {
        Self {
            transport,
            address_root: address_root.into(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The address root.
    pub fn address_root(&self) -> &str {
        &self.address_root
    }

    /// The client of agent `instance_id` (at `<root>.<instance_id>`). The id is not checked
    /// here; see [`instance_id_bad_char`].
    pub fn agent(&self, instance_id: impl Into<String>) -> AgentClient<'_, T> {
        AgentClient {
            client: self,
            instance_id: instance_id.into(),
            password: None,
        }
    }

    /// A raw call of any procedure; returns the procedure's return value.
    pub async fn call(
        &self,
        procedure: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: CallOptions,
    ) -> Result<Value, CallError> {
        self.transport.call(procedure, args, kwargs, options).await
    }
}

/// Calls to one agent instance. Cheap to create; borrows its [`OcsClient`].
#[derive(Debug)]
pub struct AgentClient<'a, T: Transport = HttpBridge> {
    client: &'a OcsClient<T>,
    instance_id: String,
    password: Option<String>,
}

impl<T: Transport> Clone for AgentClient<'_, T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client,
            instance_id: self.instance_id.clone(),
            password: self.password.clone(),
        }
    }
}

impl<'a, T: Transport> AgentClient<'a, T> {
    /// Send `password` (kwarg `password`) with every `.ops` action (`start`, `status`,
    /// `wait`, `stop`, `abort`), as OCS's own client does; an empty one is not sent.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into()).filter(|p: &String| !p.is_empty());
        self
    }

    /// The instance-id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The agent address `<root>.<instance_id>`, also its management procedure.
    pub fn address(&self) -> String {
        format!("{}.{}", self.client.address_root, self.instance_id)
    }

    /// The operations procedure `<root>.<instance_id>.ops`.
    pub fn ops_procedure(&self) -> String {
        format!("{}.ops", self.address())
    }

    /// A management call `<address>` with args `[q]`; returns the raw value (`null` for an
    /// unknown `q`).
    pub async fn management(&self, q: &str) -> Result<Value, ClientError> {
        let value = self
            .client
            .call(
                &self.address(),
                vec![Value::from(q)],
                Map::new(),
                CallOptions::default(),
            )
            .await?;
        Ok(value)
    }

    /// A call of the agent's own procedure `<address>.<name>` (what OCS calls a *special
    /// access point*, such as the Access Director's `request_exclusive`), with `args` and
    /// `kwargs`; returns its return value as is.
    pub async fn special(
        &self,
        name: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, ClientError> {
        let procedure = format!("{}.{name}", self.address());
        let value = self
            .client
            .call(&procedure, args, kwargs, CallOptions::default())
            .await?;
        Ok(value)
    }

    /// `get_api`: the agent's ops, sessions, feeds and identity. While the agent is not
    /// registered this fails with [`ClientError::is_not_registered`].
    pub async fn get_api(&self) -> Result<AgentApi, ClientError> {
        let value = self.management("get_api").await?;
        AgentApi::from_value(value.clone()).map_err(|detail| ClientError::Protocol {
            procedure: self.address(),
            detail,
            body: value,
        })
    }

    /// `get_agent_class`: the class name, `None` if the agent gave none.
    pub async fn get_agent_class(&self) -> Result<Option<String>, ClientError> {
        match self.management("get_agent_class").await? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(ClientError::Protocol {
                procedure: self.address(),
                detail: "agent class is neither a string nor null".into(),
                body: other,
            }),
        }
    }

    async fn ops(
        &self,
        action: &str,
        op_name: &str,
        params: Option<Value>,
        mut kwargs: Map<String, Value>,
        options: CallOptions,
    ) -> Result<Reply, ClientError> {
        let procedure = self.ops_procedure();
        let mut args = vec![Value::from(action), Value::from(op_name)];
        args.extend(params);
        if let Some(pw) = &self.password {
            kwargs.insert("password".into(), Value::from(pw.as_str()));
        }
        let value = self.client.call(&procedure, args, kwargs, options).await?;
        Reply::from_value(value.clone()).map_err(|detail| ClientError::Protocol {
            procedure,
            detail,
            body: value,
        })
    }

    /// `start`: launch task or process `op`, with `params` (normally an object) as third
    /// positional arg; `None` sends `{}`, as ocs's own client does (`start(**kwargs)` sends its
    /// kwargs, empty or not), so an operation that reads its params gets a mapping. Rejections
    /// (unknown op, bad params, already running) come back as `Ok` replies with
    /// [`ResponseCode::Error`](super::ResponseCode::Error).
    pub async fn start(&self, op: &str, params: Option<Value>) -> Result<Reply, ClientError> {
        let params = params.unwrap_or_else(|| Value::Object(Map::new()));
        self.ops(
            "start",
            op,
            Some(params),
            Map::new(),
            CallOptions::default(),
        )
        .await
    }

    /// `status`: the op's current or latest session (`No session active.` without one).
    pub async fn status(&self, op: &str) -> Result<Reply, ClientError> {
        self.ops("status", op, None, Map::new(), CallOptions::default())
            .await
    }

    /// `wait`: block until `op` is done or `timeout` passes (then the reply is
    /// [`ResponseCode::Timeout`](super::ResponseCode::Timeout)). The timeout is sent as float
    /// seconds in kwarg `timeout`, and the HTTP timeout is `timeout + WAIT_HTTP_MARGIN`.
    ///
    /// `None` sends no timeout, which makes OCS wait **forever**; the HTTP request is then
    /// bounded only by the transport's default timeout, and the call fails with a transport
    /// timeout ([`ClientError::is_timeout`]) if the op outlives it. Prefer `Some`.
    pub async fn wait(&self, op: &str, timeout: Option<Duration>) -> Result<Reply, ClientError> {
        let mut kwargs = Map::new();
        let mut options = CallOptions::default();
        if let Some(t) = timeout {
            kwargs.insert("timeout".into(), Value::from(t.as_secs_f64()));
            options.timeout = Some(t.saturating_add(WAIT_HTTP_MARGIN));
        }
        self.ops("wait", op, None, kwargs, options).await
    }

    /// `stop`: ask process `op` to stop. The reply is built before the stopper runs; poll
    /// `status`/`wait` for the outcome.
    pub async fn stop(&self, op: &str) -> Result<Reply, ClientError> {
        self.ops("stop", op, None, Map::new(), CallOptions::default())
            .await
    }

    /// `abort`: ask task `op` to abort. As with `stop`, poll for the outcome.
    pub async fn abort(&self, op: &str) -> Result<Reply, ClientError> {
        self.ops("abort", op, None, Map::new(), CallOptions::default())
            .await
    }
}

/// The first character of `id` that keeps it from working as an OCS instance-id, i.e. as the
/// last component of the WAMP URI `<root>.<id>`: crossbar requires URIs to match
/// `^([^\s\.#]+\.)*([^\s\.#]+)$` (else HTTP 500), and a `.` inside an id splits it into two
/// components, which breaks the Registry's `<root>.*` wildcard. `None` when every character is
/// fine (emptiness is the caller's to check). This is the one home of the rule; the plan turns
/// it into the user-facing message.
pub fn instance_id_bad_char(id: &str) -> Option<char> {
    id.chars().find(|&c| !instance_id_char_ok(c))
}

/// Whether `c` may stand in an OCS instance-id (see [`instance_id_bad_char`]).
pub fn instance_id_char_ok(c: char) -> bool {
    !is_bad(c, true)
}

/// Check that `root` works as an OCS address root: one or more `.`-separated components,
/// none empty, with no whitespace or `#` (the crossbar URI rule of
/// [`instance_id_bad_char`]; dots between components are allowed here).
pub fn validate_address_root(root: &str) -> Result<(), String> {
    if root.is_empty() {
        return Err("address root is empty; use e.g. \"observatory\"".to_owned());
    }
    let bad = bad_chars(root, false);
    if !bad.is_empty() {
        let suggestion: String = root
            .chars()
            .map(|c| if is_bad(c, false) { '-' } else { c })
            .collect();
        return Err(format!(
            "address root {root:?} contains {}, which crossbar rejects in WAMP URIs; \
             use e.g. {suggestion:?}",
            bad.join(", ")
        ));
    }
    if root.split('.').any(str::is_empty) {
        let fixed: Vec<&str> = root.split('.').filter(|s| !s.is_empty()).collect();
        return Err(format!(
            "address root {root:?} has an empty component (leading, trailing or doubled '.'), \
             which crossbar rejects in WAMP URIs; write {:?}",
            fixed.join(".")
        ));
    }
    Ok(())
}

fn is_bad(c: char, dot_is_bad: bool) -> bool {
    c.is_whitespace() || c == '#' || (dot_is_bad && c == '.')
}

/// Descriptions of the distinct offending characters, in order of appearance.
fn bad_chars(s: &str, dot_is_bad: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in s.chars().filter(|&c| is_bad(c, dot_is_bad)) {
        let d = if c.is_whitespace() {
            format!("whitespace ({c:?})")
        } else {
            format!("{c:?}")
        };
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocs::protocol::{OpCode, OpState, ResponseCode};
    use crate::ocs::test_server::{serve, Canned};
    use serde_json::json;
    use std::collections::VecDeque;
    use std::future::Future;
    use std::sync::Mutex;

    /// One call as the fake transport saw it.
    #[derive(Debug, Clone, PartialEq)]
    struct Recorded {
        procedure: String,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: CallOptions,
    }

    /// A transport answering canned values and recording calls.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<Recorded>>,
        answers: Mutex<VecDeque<Result<Value, CallError>>>,
    }

    impl Fake {
        fn answering(answers: Vec<Result<Value, CallError>>) -> Self {
            Self {
                calls: Mutex::default(),
                answers: Mutex::new(answers.into()),
            }
        }
        fn bodies(bodies: &[&str]) -> Self {
            Self::answering(
                bodies
                    .iter()
                    .map(|b| crate::ocs::transport::decode_reply("recorded", 200, (*b).into()))
                    .collect(),
            )
        }
        fn calls(&self) -> Vec<Recorded> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Transport for Fake {
        fn call(
            &self,
            procedure: &str,
            args: Vec<Value>,
            kwargs: Map<String, Value>,
            options: CallOptions,
        ) -> impl Future<Output = Result<Value, CallError>> + Send {
            self.calls.lock().unwrap().push(Recorded {
                procedure: procedure.to_owned(),
                args,
                kwargs,
                options,
            });
            let answer = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .expect("no canned answer left");
            async move { answer }
        }
    }

    const NO_SESSION: &str = r#"{"args":[[0,"No session active.",{}]]}"#;
    const NOT_REGISTERED: &str = r#"{"error": "wamp.error.no_such_procedure", "args": ["no callee registered for procedure <observatory.x>"], "kwargs": {}}"#;

    fn kw(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn ops_actions_build_the_documented_calls() {
        let fake = Fake::bodies(&[NO_SESSION; 6]);
        let client = OcsClient::new(&fake, "observatory");
        let agent = client.agent("barebones1");
        assert_eq!(agent.address(), "observatory.barebones1");
        assert_eq!(agent.ops_procedure(), "observatory.barebones1.ops");

        agent.start("count", None).await.unwrap();
        agent
            .start("print", Some(json!({"text": "hi"})))
            .await
            .unwrap();
        agent.status("count").await.unwrap();
        agent
            .wait("count", Some(Duration::from_millis(1500)))
            .await
            .unwrap();
        agent.stop("count").await.unwrap();
        agent.abort("print").await.unwrap();

        let ops = "observatory.barebones1.ops";
        let none = CallOptions::default();
        let expected = vec![
            (json!(["start", "count", {}]), json!({}), none),
            (json!(["start", "print", {"text": "hi"}]), json!({}), none),
            (json!(["status", "count"]), json!({}), none),
            (
                json!(["wait", "count"]),
                json!({"timeout": 1.5}),
                CallOptions::with_timeout(Duration::from_millis(11_500)),
            ),
            (json!(["stop", "count"]), json!({}), none),
            (json!(["abort", "print"]), json!({}), none),
        ];
        let calls = fake.calls();
        assert_eq!(calls.len(), expected.len());
        for (call, (args, kwargs, options)) in calls.into_iter().zip(expected) {
            assert_eq!(call.procedure, ops);
            assert_eq!(Value::from(call.args), args);
            assert_eq!(call.kwargs, kw(kwargs));
            assert_eq!(call.options, options);
        }
    }

    #[tokio::test]
    async fn password_goes_with_every_ops_action_like_ocs_client() {
        let fake = Fake::bodies(&[NO_SESSION; 5]);
        let client = OcsClient::new(&fake, "observatory");
        let agent = client.agent("fd1").with_password("pw");
        agent.start("acq", None).await.unwrap();
        agent.status("acq").await.unwrap();
        agent.wait("acq", None).await.unwrap();
        agent.stop("acq").await.unwrap();
        agent.abort("t").await.unwrap();
        let kwargs: Vec<Value> = fake
            .calls()
            .into_iter()
            .map(|c| Value::Object(c.kwargs))
            .collect();
        assert_eq!(
            kwargs,
            vec![json!({"password": "pw"}); 5],
            "OCSClient passes the password to start, status, wait, stop and abort"
        );
        // wait(None): no OCS timeout, transport default HTTP timeout
        assert_eq!(fake.calls()[2].options, CallOptions::default());
        // an empty password is not sent (OCSClient: privs 1, or no password API)
        let fake = Fake::bodies(&[NO_SESSION]);
        let client = OcsClient::new(&fake, "observatory");
        client
            .agent("fd1")
            .with_password("")
            .start("acq", None)
            .await
            .unwrap();
        assert_eq!(fake.calls()[0].kwargs, Map::new());
    }

    #[tokio::test]
    async fn management_calls() {
        let fake = Fake::bodies(&[
            include_str!("testdata/get_api_barebones.json"),
            r#"{"args":["BarebonesAgent"]}"#,
            r#"{"args":[null]}"#,
            r#"{"args":[5]}"#,
        ]);
        let client = OcsClient::new(&fake, "observatory");
        let agent = client.agent("barebones1");
        let api = agent.get_api().await.unwrap();
        assert_eq!(api.instance_pid, 7);
        assert_eq!(api.task("print").unwrap().session, OpState::NoHistory);
        assert_eq!(
            agent.get_agent_class().await.unwrap().as_deref(),
            Some("BarebonesAgent")
        );
        assert_eq!(agent.get_agent_class().await.unwrap(), None);
        let err = agent.get_agent_class().await.unwrap_err();
        assert!(matches!(err, ClientError::Protocol { .. }));
        assert_eq!(
            err.to_string(),
            "unexpected reply to observatory.barebones1: agent class is neither a string nor null; got 5"
        );
        for call in fake.calls() {
            assert_eq!(call.procedure, "observatory.barebones1");
            assert!(call.kwargs.is_empty());
        }
        let args: Vec<Value> = fake
            .calls()
            .into_iter()
            .map(|c| c.args[0].clone())
            .collect();
        assert_eq!(
            args,
            vec![
                json!("get_api"),
                json!("get_agent_class"),
                json!("get_agent_class"),
                json!("get_agent_class")
            ]
        );
    }

    #[tokio::test]
    async fn not_registered_is_recognised() {
        let fake = Fake::bodies(&[NOT_REGISTERED]);
        let client = OcsClient::new(&fake, "observatory");
        let err = client.agent("x").get_api().await.unwrap_err();
        assert!(err.is_not_registered());
        assert_eq!(err.wamp_error(), Some(WampError::NoSuchProcedure));
        assert!(!err.is_timeout());
        assert!(err.to_string().contains("no callee registered"), "{err}");

        let fake = Fake::bodies(&[
            r#"{"error": "wamp.error.runtime_error", "args": ["Session.data cannot store inf/-inf; please convert to NaN."], "kwargs": {}}"#,
        ]);
        let client = OcsClient::new(&fake, "observatory");
        let err = client.agent("x").get_api().await.unwrap_err();
        assert!(!err.is_not_registered());
        assert_eq!(err.wamp_error(), Some(WampError::RuntimeError));
    }

    #[tokio::test]
    async fn bad_triple_is_a_protocol_error() {
        let fake = Fake::bodies(&[r#"{"args":[[0,"x"]]}"#]);
        let client = OcsClient::new(&fake, "observatory");
        let err = client.agent("x").status("count").await.unwrap_err();
        match &err {
            ClientError::Protocol {
                procedure, body, ..
            } => {
                assert_eq!(procedure, "observatory.x.ops");
                assert_eq!(body, &json!([0, "x"]));
            }
            other => panic!("expected Protocol, got {other:?}"),
        }
        assert!(!err.is_not_registered());
    }

    #[tokio::test]
    async fn replies_decode_through_the_client() {
        let fake = Fake::bodies(&[
            include_str!("testdata/wait_count_timeout.json"),
            r#"{"args":[[-1,"Param 'delay'=two is not of required type (<class 'float'>)",{}]]}"#,
            include_str!("testdata/status_count_done.json"),
        ]);
        let client = OcsClient::new(&fake, "observatory");
        let agent = client.agent("barebones1");
        let r = agent.wait("count", Some(Duration::ZERO)).await.unwrap();
        assert_eq!(r.status, ResponseCode::Timeout);
        assert_eq!(r.session.unwrap().op_code, OpCode::Running);
        let r = agent
            .start("delay_task", Some(json!({"delay": "two"})))
            .await
            .unwrap();
        assert_eq!(r.status, ResponseCode::Error);
        assert!(r.session.is_none());
        let r = agent.status("count").await.unwrap();
        assert_eq!(
            r.session.unwrap().message_texts().last().copied(),
            Some(r#"Status is now "done"."#)
        );
        assert_eq!(fake.calls()[0].kwargs, kw(json!({"timeout": 0.0})));
    }

    #[tokio::test]
    async fn agent_client_over_http_bridge() {
        let (url, rx) = serve(vec![
            Canned::Reply(200, include_str!("testdata/status_count_done.json")),
            Canned::Reply(200, NOT_REGISTERED),
        ]);
        let client = OcsClient::http(url, "observatory");
        let agent = client.agent("barebones1");
        let r = agent.status("count").await.unwrap();
        assert!(r.session.unwrap().op_code.is_terminal());
        let err = agent.get_api().await.unwrap_err();
        assert!(err.is_not_registered(), "{err}");

        let seen: Vec<_> = rx.iter().collect();
        assert_eq!(seen[0].header("content-type"), vec!["application/json"]);
        assert_eq!(
            seen[0].json(),
            json!({"procedure": "observatory.barebones1.ops", "args": ["status", "count"], "kwargs": {}})
        );
        assert_eq!(
            seen[1].json(),
            json!({"procedure": "observatory.barebones1", "args": ["get_api"], "kwargs": {}})
        );
    }

    #[tokio::test]
    async fn wait_http_timeout_exceeds_ocs_timeout() {
        let (url, _rx) = serve(vec![Canned::Hang]);
        let bridge = HttpBridge::new(url).with_timeout(Duration::from_millis(100));
        let client = OcsClient::new(bridge, "observatory");
        // wait(None) falls back to the bridge default and times out at the HTTP level.
        let err = client.agent("b").wait("count", None).await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
    }

    #[test]
    fn instance_id_rule() {
        for ok in ["fake-data1", "barebones_1", "LS240-a", "x"] {
            assert_eq!(instance_id_bad_char(ok), None, "{ok}");
        }
        assert_eq!(instance_id_bad_char("fake.data"), Some('.'));
        assert_eq!(instance_id_bad_char("fake data#1"), Some(' '));
        assert_eq!(instance_id_bad_char("a#b"), Some('#'));
        assert_eq!(instance_id_bad_char("tab\there"), Some('\t'));
        assert_eq!(instance_id_bad_char("nbsp\u{a0}x"), Some('\u{a0}'));
    }

    #[test]
    fn address_root_validation() {
        for ok in ["observatory", "site.observatory", "a-b"] {
            assert_eq!(validate_address_root(ok), Ok(()), "{ok}");
        }
        let err = validate_address_root("observatory.").unwrap_err();
        assert!(err.contains("write \"observatory\""), "{err}");
        let err = validate_address_root("a..b").unwrap_err();
        assert!(err.contains("write \"a.b\""), "{err}");
        let err = validate_address_root("my root").unwrap_err();
        assert!(err.contains("\"my-root\""), "{err}");
        assert!(validate_address_root("").is_err());
    }
}
