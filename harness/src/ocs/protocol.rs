//! Typed OCS replies: the `[status, message, session]` triple of `.ops` actions, the
//! session dict (`OpSession.encoded`) and the `get_api` structure.
//!
//! Decoding tolerates unknown extra keys and keeps the raw JSON next to the typed fields, so
//! callers can match arbitrary fields and transcripts can show exactly what came back.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Whether an API call went through (`ocs.base.ResponseCode`). Says nothing about whether
/// the operation itself succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum ResponseCode {
    /// `0`: the request was carried out.
    Ok,
    /// `-1`: the request was refused or failed; the message says why.
    Error,
    /// `1`: a `wait` timed out with the operation still running.
    Timeout,
}

impl ResponseCode {
    /// The OCS integer.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Ok => 0,
            Self::Error => -1,
            Self::Timeout => 1,
        }
    }

    /// Decode an OCS integer; `None` if it is not a known code.
    pub fn from_i64(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Ok),
            -1 => Some(Self::Error),
            1 => Some(Self::Timeout),
            _ => None,
        }
    }
}

impl ResponseCode {
    /// Every code with its name as a scenario file writes it (`ocs.base.ResponseCode`'s
    /// member names, lower-cased).
    pub const NAMES: [(ResponseCode, &'static str); 3] = [
        (Self::Ok, "ok"),
        (Self::Error, "error"),
        (Self::Timeout, "timeout"),
    ];

    /// The lower-case name (`ok`, `error`, `timeout`).
    pub fn name(self) -> &'static str {
        name_of(&Self::NAMES, self).expect("every response code is named")
    }
}

impl FromStr for ResponseCode {
    type Err = UnknownName;
    /// A name of [`ResponseCode::NAMES`], in any case.
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        parse_name(&Self::NAMES, s, "response code")
    }
}

impl TryFrom<i64> for ResponseCode {
    type Error = String;
    fn try_from(code: i64) -> Result<Self, String> {
        Self::from_i64(code).ok_or_else(|| format!("unknown OCS response code {code}"))
    }
}

impl From<ResponseCode> for i64 {
    fn from(code: ResponseCode) -> i64 {
        code.as_i64()
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "OK",
            Self::Error => "ERROR",
            Self::Timeout => "TIMEOUT",
        })
    }
}

/// State of an operation session (`ocs.base.OpCode`).
///
/// Unknown integers decode to [`OpCode::Unknown`] instead of failing, so a future OCS
/// with more codes does not make whole sessions undecodable; nothing treats `Unknown` as
/// terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "i64", into = "i64")]
pub enum OpCode {
    /// `1`: no session.
    None,
    /// `2`: starting.
    Starting,
    /// `3`: running.
    Running,
    /// `4`: stopping.
    Stopping,
    /// `5`: done, success.
    Succeeded,
    /// `6`: done, failure.
    Failed,
    /// `7`: expired (Registry only).
    Expired,
    /// `8`: running but degraded.
    Degraded,
    /// Any other integer, verbatim.
    Unknown(i64),
}

impl OpCode {
    /// Decode an OCS integer (never fails; see [`OpCode::Unknown`]).
    pub fn from_i64(code: i64) -> Self {
        match code {
            1 => Self::None,
            2 => Self::Starting,
            3 => Self::Running,
            4 => Self::Stopping,
            5 => Self::Succeeded,
            6 => Self::Failed,
            7 => Self::Expired,
            8 => Self::Degraded,
            other => Self::Unknown(other),
        }
    }

    /// The OCS integer.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::None => 1,
            Self::Starting => 2,
            Self::Running => 3,
            Self::Stopping => 4,
            Self::Succeeded => 5,
            Self::Failed => 6,
            Self::Expired => 7,
            Self::Degraded => 8,
            Self::Unknown(code) => code,
        }
    }

    /// True for [`OpCode::Succeeded`] and [`OpCode::Failed`], the codes of a done session.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }

    /// Every known code with its upper-case OCS name, in OCS order (`1..=8`).
    pub const NAMES: [(OpCode, &'static str); 8] = [
        (Self::None, "NONE"),
        (Self::Starting, "STARTING"),
        (Self::Running, "RUNNING"),
        (Self::Stopping, "STOPPING"),
        (Self::Succeeded, "SUCCEEDED"),
        (Self::Failed, "FAILED"),
        (Self::Expired, "EXPIRED"),
        (Self::Degraded, "DEGRADED"),
    ];

    /// The upper-case OCS name; `None` for [`OpCode::Unknown`].
    pub fn name(self) -> Option<&'static str> {
        name_of(&Self::NAMES, self)
    }
}

impl FromStr for OpCode {
    type Err = UnknownName;
    /// A name of [`OpCode::NAMES`], in any case (never [`OpCode::Unknown`]).
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        parse_name(&Self::NAMES, s, "op code")
    }
}

impl From<i64> for OpCode {
    fn from(code: i64) -> Self {
        Self::from_i64(code)
    }
}

impl From<OpCode> for i64 {
    fn from(code: OpCode) -> i64 {
        code.as_i64()
    }
}

impl fmt::Display for OpCode {
    /// The upper-case OCS name (`SUCCEEDED`, ...); `UNKNOWN(<n>)` for unknown codes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self) {
            (Some(name), _) => f.write_str(name),
            (None, code) => write!(f, "UNKNOWN({})", code.as_i64()),
        }
    }
}

/// The `status` string of a session; it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// `"starting"`.
    Starting,
    /// `"running"`.
    Running,
    /// `"stopping"`.
    Stopping,
    /// `"done"`.
    Done,
}

impl SessionStatus {
    /// Every status with its name, in the order a session goes through them.
    pub const NAMES: [(SessionStatus, &'static str); 4] = [
        (Self::Starting, "starting"),
        (Self::Running, "running"),
        (Self::Stopping, "stopping"),
        (Self::Done, "done"),
    ];

    /// The lower-case name, as OCS sends it.
    pub fn name(self) -> &'static str {
        name_of(&Self::NAMES, self).expect("every session status is named")
    }
}

impl FromStr for SessionStatus {
    type Err = UnknownName;
    /// A name of [`SessionStatus::NAMES`], in any case.
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        parse_name(&Self::NAMES, s, "session status")
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of a type's `NAMES` (`"op code"`, `"session status"`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`")]
pub struct UnknownName {
    /// What kind of name was expected.
    pub what: &'static str,
    /// The name given.
    pub name: String,
}

fn name_of<T: PartialEq + Copy>(table: &[(T, &'static str)], value: T) -> Option<&'static str> {
    table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}

fn parse_name<T: Copy>(
    table: &[(T, &'static str)],
    name: &str,
    what: &'static str,
) -> Result<T, UnknownName> {
    table
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(v, _)| *v)
        .ok_or_else(|| UnknownName {
            what,
            name: name.to_string(),
        })
}

/// One session message, decoded from `[unix_ts, text]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Unix time in seconds.
    pub time: f64,
    /// The message text.
    pub text: String,
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (time, text) = <(f64, String)>::deserialize(d)?;
        Ok(Self { time, text })
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.time, &self.text).serialize(s)
    }
}

/// The typed fields of a session; unknown keys are ignored.
#[derive(Deserialize)]
struct SessionFields {
    session_id: i64,
    op_name: String,
    op_code: OpCode,
    #[serde(default)]
    cred_level: Option<i64>,
    status: SessionStatus,
    #[serde(default)]
    degraded: bool,
    #[serde(default)]
    success: Option<bool>,
    start_time: f64,
    #[serde(default)]
    end_time: Option<f64>,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    messages: Vec<Message>,
}

/// An operation session (`OpSession.encoded`). Serialises back to exactly [`Session::raw`].
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Per-agent-process counter shared by all ops; resets when the agent restarts.
    pub session_id: i64,
    /// The operation's name.
    pub op_name: String,
    /// Derived state code.
    pub op_code: OpCode,
    /// Credential level the op was started with (`None` if the key is absent).
    pub cred_level: Option<i64>,
    /// `starting | running | stopping | done`.
    pub status: SessionStatus,
    /// Whether the op flagged itself degraded.
    pub degraded: bool,
    /// `None` until done, then whether it succeeded.
    pub success: Option<bool>,
    /// Unix start time.
    pub start_time: f64,
    /// Unix end time, once done.
    pub end_time: Option<f64>,
    /// The op's `session.data` (usually an object; `Null` if absent).
    pub data: Value,
    /// Session messages, oldest first.
    pub messages: Vec<Message>,
    /// The session dict exactly as received.
    pub raw: Value,
}

impl Session {
    /// Decode a session dict, keeping it as [`Session::raw`].
    pub fn from_value(raw: Value) -> Result<Self, serde_json::Error> {
        let f = SessionFields::deserialize(&raw)?;
        Ok(Self {
            session_id: f.session_id,
            op_name: f.op_name,
            op_code: f.op_code,
            cred_level: f.cred_level,
            status: f.status,
            degraded: f.degraded,
            success: f.success,
            start_time: f.start_time,
            end_time: f.end_time,
            data: f.data,
            messages: f.messages,
            raw,
        })
    }

    /// The raw session dict.
    pub fn to_value(&self) -> Value {
        self.raw.clone()
    }

    /// Message texts, oldest first.
    pub fn message_texts(&self) -> Vec<&str> {
        self.messages.iter().map(|m| m.text.as_str()).collect()
    }

    /// True once `status` is `done`.
    pub fn is_done(&self) -> bool {
        self.status == SessionStatus::Done
    }
}

impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

impl Serialize for Session {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

/// The reply of an `.ops` action, decoded from `[status, message, session]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Whether the call went through.
    pub status: ResponseCode,
    /// Human-readable message from the agent.
    pub message: String,
    /// The session; `None` when the agent sent `{}` (or `null`).
    pub session: Option<Session>,
    /// The triple exactly as received.
    pub raw: Value,
}

impl Reply {
    /// Decode the triple; the error says what is wrong with it.
    pub fn from_value(raw: Value) -> Result<Self, String> {
        let items = match raw.as_array() {
            Some(items) if items.len() == 3 => items,
            Some(items) => {
                return Err(format!(
                    "expected [status, message, session], got an array of {} items",
                    items.len()
                ))
            }
            None => return Err("expected [status, message, session], got a non-array".into()),
        };
        let status = items[0]
            .as_i64()
            .ok_or_else(|| format!("status {} is not an integer", items[0]))
            .and_then(ResponseCode::try_from)?;
        let message = items[1]
            .as_str()
            .ok_or_else(|| format!("message {} is not a string", items[1]))?
            .to_owned();
        let session = match &items[2] {
            Value::Null => None,
            Value::Object(o) if o.is_empty() => None,
            Value::Object(_) => Some(
                Session::from_value(items[2].clone())
                    .map_err(|e| format!("session does not decode: {e}"))?,
            ),
            other => return Err(format!("session {other} is not an object")),
        };
        Ok(Self {
            status,
            message,
            session,
            raw,
        })
    }

    /// True for [`ResponseCode::Ok`].
    pub fn is_ok(&self) -> bool {
        self.status == ResponseCode::Ok
    }

    /// True for [`ResponseCode::Error`].
    pub fn is_error(&self) -> bool {
        self.status == ResponseCode::Error
    }

    /// True for [`ResponseCode::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.status == ResponseCode::Timeout
    }
}

impl fmt::Display for Reply {
    /// `OK "message"` plus `op_name:session_id STATUS` when there is a session.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.status, self.message)?;
        if let Some(s) = &self.session {
            write!(f, " [{}:{} {}]", s.op_name, s.session_id, s.op_code)?;
        }
        Ok(())
    }
}

/// Whether an op is a task or a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// A task (finite; `abort`).
    Task,
    /// A process (runs until stopped; `stop`).
    Process,
}

/// The session slot of an op in `get_api`.
#[derive(Debug, Clone, PartialEq)]
pub enum OpState {
    /// The op never ran (or its history was wiped): `{"op_name": .., "status": "no_history"}`.
    NoHistory,
    /// The op's latest session.
    Session(Session),
}

impl OpState {
    /// The session, if there is one.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Self::NoHistory => None,
            Self::Session(s) => Some(s),
        }
    }

    fn from_value(v: Value) -> Result<Self, String> {
        if v.get("status").and_then(Value::as_str) == Some("no_history") {
            return Ok(Self::NoHistory);
        }
        Session::from_value(v)
            .map(Self::Session)
            .map_err(|e| format!("session does not decode: {e}"))
    }
}

#[derive(Deserialize)]
struct OpInfoFields {
    op_type: OpType,
    #[serde(default)]
    blocking: bool,
    #[serde(default)]
    abortable: Option<bool>,
    #[serde(default)]
    docstring: Option<String>,
    /// Absent before ocs 0.12 (no access control): every op then needs level 1.
    #[serde(default = "basic_privs")]
    min_privs: i64,
}

fn basic_privs() -> i64 {
    1
}

/// One entry of `get_api`'s `tasks` or `processes`, from `[name, session_or_stub, op_info]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpInfo {
    /// The op's name.
    pub name: String,
    /// Task or process.
    pub op_type: OpType,
    /// The latest session or `NoHistory`.
    pub session: OpState,
    /// Whether the op runs in a worker thread.
    pub blocking: bool,
    /// Tasks only: whether an aborter exists (`None` for processes).
    pub abortable: Option<bool>,
    /// The op's docstring, if any.
    pub docstring: Option<String>,
    /// Minimum privilege level to start it (≥ 1).
    pub min_privs: i64,
}

impl OpInfo {
    fn from_value(v: Value) -> Result<Self, String> {
        let (name, session, info): (String, Value, Value) = serde_json::from_value(v)
            .map_err(|e| format!("expected [name, session, op_info]: {e}"))?;
        let info = OpInfoFields::deserialize(&info)
            .map_err(|e| format!("op_info of {name:?} does not decode: {e}"))?;
        let session = OpState::from_value(session).map_err(|e| format!("op {name:?}: {e}"))?;
        Ok(Self {
            name,
            op_type: info.op_type,
            session,
            blocking: info.blocking,
            abortable: info.abortable,
            docstring: info.docstring,
            min_privs: info.min_privs,
        })
    }
}

#[derive(Deserialize)]
struct AgentApiFields {
    #[serde(default)]
    agent_class: Option<String>,
    instance_hostname: String,
    instance_pid: i64,
    #[serde(default)]
    feeds: Vec<(String, Value)>,
    #[serde(default)]
    tasks: Vec<Value>,
    #[serde(default)]
    processes: Vec<Value>,
    #[serde(default)]
    access_control: Value,
}

/// An agent's self-description from the management call `get_api`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentApi {
    /// The agent class name (`None` if the agent gave none).
    pub agent_class: Option<String>,
    /// The agent's hostname (the container hostname under Docker).
    pub instance_hostname: String,
    /// The agent's PID; changes when the agent restarts.
    pub instance_pid: i64,
    /// `(feed_name, feed_info)` pairs; `feed_info.session_id` is a string that changes per process.
    pub feeds: Vec<(String, Value)>,
    /// Tasks, sorted by name.
    pub tasks: Vec<OpInfo>,
    /// Processes, sorted by name.
    pub processes: Vec<OpInfo>,
    /// The access-control block (`{version, policy, ...}`).
    pub access_control: Value,
    /// The `get_api` value exactly as received.
    pub raw: Value,
}

impl AgentApi {
    /// Decode a `get_api` value; the error says what is wrong with it.
    pub fn from_value(raw: Value) -> Result<Self, String> {
        let f = AgentApiFields::deserialize(&raw).map_err(|e| format!("get_api: {e}"))?;
        let ops = |list: Vec<Value>| -> Result<Vec<OpInfo>, String> {
            list.into_iter().map(OpInfo::from_value).collect()
        };
        Ok(Self {
            agent_class: f.agent_class,
            instance_hostname: f.instance_hostname,
            instance_pid: f.instance_pid,
            feeds: f.feeds,
            tasks: ops(f.tasks)?,
            processes: ops(f.processes)?,
            access_control: f.access_control,
            raw,
        })
    }

    /// The task called `name`.
    pub fn task(&self, name: &str) -> Option<&OpInfo> {
        self.tasks.iter().find(|o| o.name == name)
    }

    /// The process called `name`.
    pub fn process(&self, name: &str) -> Option<&OpInfo> {
        self.processes.iter().find(|o| o.name == name)
    }

    /// The task or process called `name`.
    pub fn op(&self, name: &str) -> Option<&OpInfo> {
        self.task(name).or_else(|| self.process(name))
    }

    /// The feed info of feed `name`.
    pub fn feed(&self, name: &str) -> Option<&Value> {
        self.feeds.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocs::transport::decode_reply;
    use serde_json::json;

    /// Decode a recorded bridge body into the procedure's return value.
    fn ret(body: &str) -> Value {
        decode_reply("observatory.barebones1.ops", 200, body.into()).unwrap()
    }

    const COUNT_DONE: &str = include_str!("testdata/status_count_done.json");
    const WAIT_TIMEOUT: &str = include_str!("testdata/wait_count_timeout.json");
    const GET_API: &str = include_str!("testdata/get_api_barebones.json");

    #[test]
    fn names_round_trip_in_any_case() {
        for (code, name) in OpCode::NAMES {
            assert_eq!(code.to_string(), name);
            assert_eq!(name.to_ascii_lowercase().parse::<OpCode>(), Ok(code));
            assert_eq!(OpCode::from_i64(code.as_i64()), code);
        }
        assert_eq!(OpCode::Unknown(42).to_string(), "UNKNOWN(42)");
        assert_eq!(OpCode::Unknown(42).name(), None);
        assert!("UNKNOWN(42)".parse::<OpCode>().is_err());
        for (status, name) in SessionStatus::NAMES {
            assert_eq!(status.to_string(), name);
            assert_eq!(
                name.to_ascii_uppercase().parse::<SessionStatus>(),
                Ok(status)
            );
            assert_eq!(serde_json::to_value(status).unwrap(), json!(name));
        }
        for (code, name) in ResponseCode::NAMES {
            assert_eq!(code.name(), name);
            assert_eq!(code.to_string(), name.to_ascii_uppercase());
            assert_eq!(name.parse::<ResponseCode>(), Ok(code));
        }
        let err = "runing".parse::<SessionStatus>().unwrap_err();
        assert_eq!(err.to_string(), "unknown session status `runing`");
    }

    #[test]
    fn no_session_reply() {
        let r = Reply::from_value(ret(r#"{"args":[[0,"No session active.",{}]]}"#)).unwrap();
        assert!(r.is_ok());
        assert_eq!(r.message, "No session active.");
        assert_eq!(r.session, None);
        assert_eq!(r.raw, json!([0, "No session active.", {}]));
        assert_eq!(r.to_string(), r#"OK "No session active.""#);
    }

    #[test]
    fn finished_count_session() {
        let r = Reply::from_value(ret(COUNT_DONE)).unwrap();
        assert_eq!(r.status, ResponseCode::Ok);
        assert_eq!(r.message, "Session active.");
        let s = r.session.as_ref().unwrap();
        assert_eq!(s.session_id, 0);
        assert_eq!(s.op_name, "count");
        assert_eq!(s.op_code, OpCode::Succeeded);
        assert!(s.op_code.is_terminal());
        assert_eq!(s.cred_level, Some(1));
        assert_eq!(s.status, SessionStatus::Done);
        assert!(s.is_done());
        assert!(!s.degraded);
        assert_eq!(s.success, Some(true));
        assert_eq!(s.start_time, 1767225600.5);
        assert_eq!(s.end_time, Some(1767225605.75));
        assert_eq!(s.data["value"], 4);
        assert_eq!(
            s.message_texts(),
            vec![
                r#"Status is now "starting"."#,
                r#"Status is now "running"."#,
                "Acquisition exited cleanly.",
                r#"Status is now "done"."#,
            ]
        );
        assert_eq!(s.messages[0].time, s.start_time);
        // raw keeps everything, and serialising gives it back
        assert_eq!(s.raw["op_code"], 5);
        assert_eq!(serde_json::to_value(s).unwrap(), s.to_value());
        assert_eq!(r.to_string(), r#"OK "Session active." [count:0 SUCCEEDED]"#);
        // the raw triple is exactly the bridge's args[0]
        let body: Value = serde_json::from_str(COUNT_DONE).unwrap();
        assert_eq!(r.raw, body["args"][0]);
    }

    #[test]
    fn wait_timeout_reply() {
        let r = Reply::from_value(ret(WAIT_TIMEOUT)).unwrap();
        assert!(r.is_timeout());
        assert_eq!(
            r.message,
            r#"Operation "count" still running; wait timed out."#
        );
        let s = r.session.unwrap();
        assert_eq!(s.op_code, OpCode::Running);
        assert!(!s.op_code.is_terminal());
        assert_eq!(s.status, SessionStatus::Running);
        assert_eq!(s.success, None);
        assert_eq!(s.end_time, None);
        assert_eq!(s.message_texts().len(), 2);
    }

    #[test]
    fn param_error_reply() {
        let body =
            r#"{"args":[[-1,"Param 'delay'=two is not of required type (<class 'float'>)",{}]]}"#;
        let r = Reply::from_value(ret(body)).unwrap();
        assert!(r.is_error());
        assert_eq!(
            r.message,
            "Param 'delay'=two is not of required type (<class 'float'>)"
        );
        assert!(r.session.is_none());
    }

    #[test]
    fn bad_triples_are_described() {
        for (v, want) in [
            (json!([0, "x"]), "array of 2 items"),
            (json!({"a": 1}), "non-array"),
            (json!([7, "x", {}]), "unknown OCS response code 7"),
            (json!(["0", "x", {}]), "is not an integer"),
            (json!([0, 5, {}]), "is not a string"),
            (json!([0, "x", [1]]), "is not an object"),
            (json!([0, "x", {"op_name": "c"}]), "session does not decode"),
        ] {
            let err = Reply::from_value(v.clone()).unwrap_err();
            assert!(err.contains(want), "{v}: {err}");
        }
        assert!(Reply::from_value(json!([0, "Idle.", null]))
            .unwrap()
            .session
            .is_none());
    }

    #[test]
    fn session_tolerates_missing_cred_level_and_extra_keys() {
        let v = json!({
            "session_id": 3, "op_name": "acq", "op_code": 8, "status": "running",
            "degraded": true, "success": null, "start_time": 1.0, "end_time": null,
            "data": {}, "messages": [[1.0, "Status is now \"starting\"."]],
            "brand_new_key": [1, 2, 3]
        });
        let s = Session::from_value(v.clone()).unwrap();
        assert_eq!(s.cred_level, None);
        assert_eq!(s.op_code, OpCode::Degraded);
        assert!(s.degraded);
        assert_eq!(s.raw["brand_new_key"], json!([1, 2, 3]));
        let s2: Session = serde_json::from_value(v).unwrap();
        assert_eq!(s, s2);
    }

    #[test]
    fn op_code_ints_and_names() {
        let names = [
            "NONE",
            "STARTING",
            "RUNNING",
            "STOPPING",
            "SUCCEEDED",
            "FAILED",
            "EXPIRED",
            "DEGRADED",
        ];
        for (i, name) in (1..=8).zip(names) {
            let c = OpCode::from_i64(i);
            assert_eq!(c.as_i64(), i);
            assert_eq!(c.to_string(), name);
            assert_eq!(serde_json::from_value::<OpCode>(json!(i)).unwrap(), c);
            assert_eq!(serde_json::to_value(c).unwrap(), json!(i));
            assert_eq!(c.is_terminal(), i == 5 || i == 6);
        }
        let u = OpCode::from_i64(42);
        assert_eq!(u, OpCode::Unknown(42));
        assert_eq!(u.to_string(), "UNKNOWN(42)");
        assert!(!u.is_terminal());
        assert_eq!(
            serde_json::from_value::<OpCode>(json!(0)).unwrap(),
            OpCode::Unknown(0)
        );
    }

    #[test]
    fn response_code_serde() {
        for (i, c) in [
            (0, ResponseCode::Ok),
            (-1, ResponseCode::Error),
            (1, ResponseCode::Timeout),
        ] {
            assert_eq!(serde_json::from_value::<ResponseCode>(json!(i)).unwrap(), c);
            assert_eq!(serde_json::to_value(c).unwrap(), json!(i));
        }
        assert!(serde_json::from_value::<ResponseCode>(json!(2)).is_err());
        assert_eq!(ResponseCode::Timeout.to_string(), "TIMEOUT");
    }

    #[test]
    fn session_status_serde() {
        assert_eq!(
            serde_json::from_value::<SessionStatus>(json!("stopping")).unwrap(),
            SessionStatus::Stopping
        );
        assert!(serde_json::from_value::<SessionStatus>(json!("no_history")).is_err());
        assert_eq!(SessionStatus::Done.to_string(), "done");
    }

    #[test]
    fn get_api_decodes() {
        let api = AgentApi::from_value(ret(GET_API)).unwrap();
        assert_eq!(api.agent_class.as_deref(), Some("BarebonesAgent"));
        assert_eq!(api.instance_hostname, "ocs-docker");
        assert_eq!(api.instance_pid, 7);
        assert_eq!(api.feeds.len(), 1);
        let feed = api.feed("feed_name").unwrap();
        assert_eq!(feed["session_id"], "1767225590.1234567");
        assert_eq!(api.access_control["policy"], "none");

        let count = api.process("count").unwrap();
        assert_eq!(count.op_type, OpType::Process);
        assert_eq!(count.abortable, None);
        assert_eq!(count.min_privs, 1);
        assert!(count.blocking);
        let s = count.session.session().unwrap();
        assert_eq!(s.op_code, OpCode::Succeeded);

        let print = api.task("print").unwrap();
        assert_eq!(print.op_type, OpType::Task);
        assert_eq!(print.session, OpState::NoHistory);
        assert_eq!(print.abortable, Some(false));
        assert_eq!(print.docstring, None);
        assert_eq!(print.min_privs, 2);
        // ocs 0.11 sends op_info without min_privs (measured on ocs 0.11.3).
        let old = AgentApi::from_value(serde_json::json!({
            "agent_class": "BarebonesAgent", "instance_hostname": "ocs-docker", "instance_pid": 7,
            "feeds": [], "processes": [],
            "tasks": [["print", {"op_name": "print", "status": "no_history"},
                       {"op_type": "task", "blocking": true, "abortable": false, "docstring": null}]],
            "access_control": {}
        }))
        .unwrap();
        assert_eq!(old.task("print").unwrap().min_privs, 1);

        assert_eq!(api.op("print").unwrap().name, "print");
        assert_eq!(api.op("count").unwrap().name, "count");
        assert!(api.op("nope").is_none());
        assert!(api.task("count").is_none());
        assert_eq!(api.raw["instance_pid"], 7);
    }

    #[test]
    fn get_api_without_class_and_bad_shapes() {
        let v = json!({
            "agent_class": null, "instance_hostname": "h", "instance_pid": 1,
            "feeds": [], "processes": [], "tasks": [], "access_control": {}, "extra": 1
        });
        let api = AgentApi::from_value(v).unwrap();
        assert_eq!(api.agent_class, None);

        let bad = json!({
            "instance_hostname": "h", "instance_pid": 1,
            "tasks": [["t", {"op_name": "t", "status": "no_history"}, {"op_type": "thing", "min_privs": 1}]]
        });
        let err = AgentApi::from_value(bad).unwrap_err();
        assert!(err.contains("op_info of \"t\""), "{err}");

        let err = AgentApi::from_value(json!({"instance_pid": 1})).unwrap_err();
        assert!(err.contains("instance_hostname"), "{err}");
    }
}
