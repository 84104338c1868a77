//! The transport layer: how one WAMP call reaches an agent.
//!
//! [`Transport`] is the seam: the typed client above it only needs "call this procedure with
//! these args and kwargs". [`HttpBridge`] implements it over crossbar's HTTP call bridge
//! (the "caller" service, usually `http://<host>:<port>/call`) and turns every way the bridge
//! can answer into either the procedure's return value or a [`CallError`].

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::Url;
use serde_json::{Map, Value};

/// Default HTTP timeout of an [`HttpBridge`] call when neither the bridge nor the call sets one.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-call options of [`Transport::call`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// HTTP (transport) timeout for this call; `None` uses the transport's default.
    pub timeout: Option<Duration>,
}

impl CallOptions {
    /// Options with a per-call transport timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
        }
    }
}

/// Something that can call a WAMP procedure.
pub trait Transport: Send + Sync {
    /// Call a WAMP procedure; `Ok(value)` is the procedure's return value (the bridge's
    /// `args[0]`, or `Null` if `args` is empty or absent).
    fn call(
        &self,
        procedure: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: CallOptions,
    ) -> impl Future<Output = Result<Value, CallError>> + Send;
}

impl<T: Transport> Transport for &T {
    fn call(
        &self,
        procedure: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: CallOptions,
    ) -> impl Future<Output = Result<Value, CallError>> + Send {
        (**self).call(procedure, args, kwargs, options)
    }
}

impl<T: Transport> Transport for Arc<T> {
    fn call(
        &self,
        procedure: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: CallOptions,
    ) -> impl Future<Output = Result<Value, CallError>> + Send {
        (**self).call(procedure, args, kwargs, options)
    }
}

/// Classification of a WAMP error URI (parsed from the URI, never from the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WampError {
    /// `wamp.error.no_such_procedure`: nothing registered the procedure (agent not up yet, or gone).
    NoSuchProcedure,
    /// `wamp.error.not_authorized`: the URI is outside what the bridge session may call.
    NotAuthorized,
    /// `wamp.error.runtime_error`: the agent's handler raised (or crossbar itself failed).
    RuntimeError,
    /// `wamp.error.canceled`: the callee went away while the call was in flight.
    Canceled,
    /// Any other URI, verbatim.
    Other(String),
}

impl WampError {
    /// Classify a WAMP error URI.
    pub fn from_uri(uri: &str) -> Self {
        match uri {
            "wamp.error.no_such_procedure" => Self::NoSuchProcedure,
            "wamp.error.not_authorized" => Self::NotAuthorized,
            "wamp.error.runtime_error" => Self::RuntimeError,
            "wamp.error.canceled" => Self::Canceled,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The URI this classification stands for.
    pub fn uri(&self) -> &str {
        match self {
            Self::NoSuchProcedure => "wamp.error.no_such_procedure",
            Self::NotAuthorized => "wamp.error.not_authorized",
            Self::RuntimeError => "wamp.error.runtime_error",
            Self::Canceled => "wamp.error.canceled",
            Self::Other(uri) => uri,
        }
    }
}

impl std::fmt::Display for WampError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.uri())
    }
}

/// The JSON error body the bridge sends (`{"error": uri, "args": [...], "kwargs": {...}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBody {
    /// The error URI, e.g. `wamp.error.invalid_json`.
    pub uri: String,
    /// Positional error arguments (usually one message string).
    pub args: Vec<Value>,
    /// Keyword error arguments (usually empty).
    pub kwargs: Map<String, Value>,
}

impl ErrorBody {
    /// Parse `{"error": "<uri>", ...}`; `None` unless `error` is a string. Missing or
    /// mistyped `args`/`kwargs` become empty.
    pub fn from_value(body: &Value) -> Option<Self> {
        let obj = body.as_object()?;
        let uri = obj.get("error")?.as_str()?.to_owned();
        let args = match obj.get("args") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let kwargs = match obj.get("kwargs") {
            Some(Value::Object(k)) => k.clone(),
            _ => Map::new(),
        };
        Some(Self { uri, args, kwargs })
    }

    /// Classification of [`Self::uri`].
    pub fn kind(&self) -> WampError {
        WampError::from_uri(&self.uri)
    }
}

/// Why a call through a [`Transport`] did not produce a return value.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The bridge answered HTTP 200 with a WAMP error: the call reached the router and failed
    /// there or in the agent.
    #[error(
        "call to {procedure} failed with WAMP error {uri}{}",
        describe_args(args, kwargs)
    )]
    Wamp {
        /// The procedure that was called.
        procedure: String,
        /// The error URI; see [`CallError::wamp_error`] for a classification.
        uri: String,
        /// Positional error arguments (usually one message string).
        args: Vec<Value>,
        /// Keyword error arguments.
        kwargs: Map<String, Value>,
    },
    /// The bridge answered with an HTTP status other than 200 (400: bad request body or
    /// Content-Type; 500: crossbar rejected the URI; 405: wrong method, ...).
    #[error("call to {procedure} got HTTP {status}: {}", describe_http(error.as_ref(), body))]
    Http {
        /// The procedure that was called.
        procedure: String,
        /// The HTTP status code.
        status: u16,
        /// The response body as text.
        body: String,
        /// The parsed `{"error", "args", "kwargs"}` body, if the body was such JSON.
        error: Option<ErrorBody>,
    },
    /// The HTTP exchange itself failed: no connection, timeout, broken response.
    #[error("call to {procedure} {}", describe_transport(source, *timeout))]
    Transport {
        /// The procedure that was called.
        procedure: String,
        /// The HTTP timeout that applied to the call, if any.
        timeout: Option<Duration>,
        /// The underlying HTTP client error.
        #[source]
        source: reqwest::Error,
    },
    /// HTTP 200 but the body is not the bridge's JSON shape (not JSON, or neither `args`
    /// nor `error`).
    #[error(
        "call to {procedure} got an undecodable HTTP 200 reply ({detail}): {}",
        truncate(body, 500)
    )]
    Decode {
        /// The procedure that was called.
        procedure: String,
        /// What is wrong with the body.
        detail: String,
        /// The response body as text.
        body: String,
    },
}

impl CallError {
    /// The procedure whose call failed.
    pub fn procedure(&self) -> &str {
        match self {
            Self::Wamp { procedure, .. }
            | Self::Http { procedure, .. }
            | Self::Transport { procedure, .. }
            | Self::Decode { procedure, .. } => procedure,
        }
    }

    /// Classification of a [`CallError::Wamp`] error (HTTP 200 with `error`); `None` for
    /// every other variant, including HTTP 4xx/5xx bodies that carry an error URI (see
    /// [`CallError::error_uri`] for those).
    pub fn wamp_error(&self) -> Option<WampError> {
        match self {
            Self::Wamp { uri, .. } => Some(WampError::from_uri(uri)),
            _ => None,
        }
    }

    /// The error URI of a WAMP error or of a JSON HTTP error body.
    pub fn error_uri(&self) -> Option<&str> {
        match self {
            Self::Wamp { uri, .. } => Some(uri),
            Self::Http { error: Some(e), .. } => Some(&e.uri),
            _ => None,
        }
    }

    /// True for a WAMP `no_such_procedure` error: nobody has registered the procedure.
    pub fn is_no_such_procedure(&self) -> bool {
        self.wamp_error() == Some(WampError::NoSuchProcedure)
    }

    /// True if the HTTP request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_timeout())
    }

    /// True if no connection to the bridge could be made.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_connect())
    }

    /// The HTTP status, for [`CallError::Http`].
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn describe_args(args: &[Value], kwargs: &Map<String, Value>) -> String {
    let mut out = String::new();
    let texts: Vec<String> = args
        .iter()
        .map(|a| match a {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    if !texts.is_empty() {
        let _ = write!(out, ": {}", texts.join("; "));
    }
    if !kwargs.is_empty() {
        let _ = write!(out, " (kwargs {})", Value::Object(kwargs.clone()));
    }
    out
}

fn describe_http(error: Option<&ErrorBody>, body: &str) -> String {
    match error {
        Some(e) => format!("{}{}", e.uri, describe_args(&e.args, &e.kwargs)),
        None if body.trim().is_empty() => "(empty body)".to_owned(),
        None => truncate(body, 500),
    }
}

fn describe_transport(source: &reqwest::Error, timeout: Option<Duration>) -> String {
    let what = if source.is_timeout() {
        match timeout {
            Some(t) => format!("timed out after {t:?} without an HTTP reply"),
            None => "timed out without an HTTP reply".to_owned(),
        }
    } else if source.is_connect() {
        "could not connect to the HTTP bridge".to_owned()
    } else {
        "failed in the HTTP exchange".to_owned()
    };
    // reqwest's own message is terse; the cause chain says e.g. "Connection refused".
    let mut chain = source.to_string();
    let mut cause = std::error::Error::source(source);
    while let Some(c) = cause {
        let _ = write!(chain, ": {c}");
        cause = c.source();
    }
    format!("{what} ({chain})")
}

/// Cut `s` to at most `max` characters for display, marking the cut.
/// `v` with the value of every key named `password` replaced by `<redacted>`: how requests
/// and replies are logged (OCS sends credentials as a `password` kwarg, and the Access
/// Director returns granted ones under `password`).
pub(crate) fn without_passwords(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| match k.as_str() {
                    "password" if !v.is_null() => (k.clone(), Value::from("<redacted>")),
                    _ => (k.clone(), without_passwords(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_passwords).collect()),
        other => other.clone(),
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((idx, _)) => format!("{}... ({} bytes in all)", &s[..idx], s.len()),
    }
}

/// [`Transport`] over crossbar's HTTP call bridge.
///
/// Each call is a `POST` of `{"procedure", "args", "kwargs"}` with Content-Type exactly
/// `application/json` to the call URL, without query parameters. The client ignores proxy
/// environment variables: the bridge is always reached directly.
#[derive(Debug, Clone)]
pub struct HttpBridge {
    client: reqwest::Client,
    call_url: Url,
    timeout: Duration,
}

impl HttpBridge {
    /// A bridge client posting to `call_url` (e.g. `http://127.0.0.1:8001/call`), with
    /// [`DEFAULT_HTTP_TIMEOUT`]. Any query string or fragment in `call_url` is dropped,
    /// because crossbar treats query parameters as signed-request fields and answers 400.
    ///
    /// # Panics
    /// If the HTTP client cannot be built (only possible when the TLS backend fails to
    /// initialise; this crate builds reqwest without TLS).
    pub fn new(mut call_url: Url) -> Self {
        if call_url.query().is_some() || call_url.fragment().is_some() {
            tracing::warn!(url = %call_url, "dropping query/fragment from the crossbar call URL");
            call_url.set_query(None);
            call_url.set_fragment(None);
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("building a plain-HTTP reqwest client cannot fail");
        Self {
            client,
            call_url,
            timeout: DEFAULT_HTTP_TIMEOUT,
        }
    }

    /// Set the default HTTP timeout of every call (a call's [`CallOptions::timeout`] overrides it).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The URL calls are posted to.
    pub fn call_url(&self) -> &Url {
        &self.call_url
    }

    /// The default HTTP timeout of a call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn do_call(
        &self,
        procedure: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: CallOptions,
    ) -> Result<Value, CallError> {
        let timeout = options.timeout.unwrap_or(self.timeout);
        let request = serde_json::json!({
            "procedure": procedure,
            "args": args,
            "kwargs": kwargs,
        });
        let body = request.to_string();
        tracing::debug!(%procedure, request = %without_passwords(&request), ?timeout, "bridge call");
        let transport_err = |source| CallError::Transport {
            procedure: procedure.to_owned(),
            timeout: Some(timeout),
            source,
        };
        let response = self
            .client
            .post(self.call_url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(transport_err)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(transport_err)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let shown = match serde_json::from_str::<Value>(&text) {
            Ok(v) => without_passwords(&v).to_string(),
            Err(_) => text.clone(),
        };
        tracing::debug!(%procedure, status, reply = %truncate(&shown, 2000), "bridge reply");
        decode_reply(procedure, status, text)
    }
}

impl Transport for HttpBridge {
    fn call(
        &self,
        procedure: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: CallOptions,
    ) -> impl Future<Output = Result<Value, CallError>> + Send {
        self.do_call(procedure, args, kwargs, options)
    }
}

/// Turn a bridge HTTP reply (status and body text) into the call result.
///
/// - 200 with `{"error": uri, ...}`: [`CallError::Wamp`].
/// - 200 with `{"args": [v, ...]}`: `Ok(v)`; `Ok(Null)` if `args` is empty or absent.
/// - 200 with anything else (not JSON, not an object, `args` not an array, `error` not a
///   string): [`CallError::Decode`].
/// - any other status: [`CallError::Http`], with the error body parsed when it is JSON.
pub fn decode_reply(procedure: &str, status: u16, body: String) -> Result<Value, CallError> {
    let parsed: Result<Value, _> = serde_json::from_str(&body);
    if status != 200 {
        let error = parsed.ok().as_ref().and_then(ErrorBody::from_value);
        return Err(CallError::Http {
            procedure: procedure.to_owned(),
            status,
            body,
            error,
        });
    }
    let decode = |detail: String, body: String| CallError::Decode {
        procedure: procedure.to_owned(),
        detail,
        body,
    };
    let value = match parsed {
        Ok(v) => v,
        Err(e) => return Err(decode(format!("not JSON: {e}"), body)),
    };
    let Value::Object(mut obj) = value else {
        return Err(decode("not a JSON object".to_owned(), body));
    };
    if let Some(err) = obj.get("error") {
        if !err.is_string() {
            return Err(decode("\"error\" is not a string".to_owned(), body));
        }
        let e = ErrorBody::from_value(&Value::Object(obj)).expect("error is a string");
        return Err(CallError::Wamp {
            procedure: procedure.to_owned(),
            uri: e.uri,
            args: e.args,
            kwargs: e.kwargs,
        });
    }
    match obj.remove("args") {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::Array(args)) => Ok(args.into_iter().next().unwrap_or(Value::Null)),
        Some(_) => Err(decode("\"args\" is not an array".to_owned(), body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocs::test_server::{serve, Canned};
    use std::net::TcpListener;

    // ---- decode_reply on recorded bridge bodies ----

    #[test]
    fn success_returns_args0() {
        let v = decode_reply(
            "observatory.x.ops",
            200,
            r#"{"args":[[0,"No session active.",{}]]}"#.into(),
        )
        .unwrap();
        assert_eq!(v, serde_json::json!([0, "No session active.", {}]));
    }

    #[test]
    fn empty_or_missing_args_is_null() {
        assert_eq!(
            decode_reply("p", 200, r#"{"args":[]}"#.into()).unwrap(),
            Value::Null
        );
        assert_eq!(decode_reply("p", 200, r#"{}"#.into()).unwrap(), Value::Null);
        assert_eq!(
            decode_reply("p", 200, r#"{"args":[null]}"#.into()).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn wamp_error_with_spaces_is_parsed() {
        let body = r#"{"error": "wamp.error.no_such_procedure", "args": ["no callee registered for procedure <observatory.x>"], "kwargs": {}}"#;
        let err = decode_reply("observatory.x", 200, body.into()).unwrap_err();
        assert_eq!(err.wamp_error(), Some(WampError::NoSuchProcedure));
        assert!(err.is_no_such_procedure());
        assert_eq!(err.procedure(), "observatory.x");
        match &err {
            CallError::Wamp {
                uri, args, kwargs, ..
            } => {
                assert_eq!(uri, "wamp.error.no_such_procedure");
                assert_eq!(
                    args[0],
                    "no callee registered for procedure <observatory.x>"
                );
                assert!(kwargs.is_empty());
            }
            other => panic!("expected Wamp, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "call to observatory.x failed with WAMP error wamp.error.no_such_procedure: \
             no callee registered for procedure <observatory.x>"
        );
    }

    #[test]
    fn wamp_error_kinds() {
        for (uri, kind) in [
            ("wamp.error.not_authorized", WampError::NotAuthorized),
            ("wamp.error.runtime_error", WampError::RuntimeError),
            ("wamp.error.canceled", WampError::Canceled),
            (
                "wamp.error.invalid_argument",
                WampError::Other("wamp.error.invalid_argument".into()),
            ),
        ] {
            let body = format!(r#"{{"error": "{uri}", "args": ["x"], "kwargs": {{}}}}"#);
            let err = decode_reply("p", 200, body).unwrap_err();
            assert_eq!(err.wamp_error(), Some(kind.clone()));
            assert_eq!(kind.uri(), uri);
            assert!(!err.is_no_such_procedure());
        }
    }

    #[test]
    fn runtime_error_display_names_procedure_and_message() {
        let body = r#"{"error": "wamp.error.runtime_error", "args": ["_ops_handler() missing 1 required positional argument: 'op_name'"], "kwargs": {}}"#;
        let err = decode_reply("observatory.fake-data1.ops", 200, body.into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "call to observatory.fake-data1.ops failed with WAMP error wamp.error.runtime_error: \
             _ops_handler() missing 1 required positional argument: 'op_name'"
        );
    }

    #[test]
    fn http_400_keeps_parsed_error() {
        let body = r#"{"error": "wamp.error.invalid_json", "args": [], "kwargs": {}}"#;
        let err = decode_reply("observatory.x", 400, body.into()).unwrap_err();
        assert_eq!(err.http_status(), Some(400));
        assert_eq!(err.wamp_error(), None, "HTTP errors are not WAMP errors");
        assert_eq!(err.error_uri(), Some("wamp.error.invalid_json"));
        match &err {
            CallError::Http {
                status,
                body: b,
                error: Some(e),
                ..
            } => {
                assert_eq!(*status, 400);
                assert_eq!(b, body);
                assert!(e.args.is_empty());
            }
            other => panic!("expected Http, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "call to observatory.x got HTTP 400: wamp.error.invalid_json"
        );
    }

    #[test]
    fn http_500_without_kwargs() {
        let body = r#"{"error": "wamp.error.runtime_error", "args": ["Sorry, Crossbar.io has encountered a problem."]}"#;
        let err = decode_reply("observatory.bad id", 500, body.into()).unwrap_err();
        assert_eq!(err.error_uri(), Some("wamp.error.runtime_error"));
        assert_eq!(
            err.to_string(),
            "call to observatory.bad id got HTTP 500: wamp.error.runtime_error: \
             Sorry, Crossbar.io has encountered a problem."
        );
    }

    #[test]
    fn http_non_json_body() {
        let err = decode_reply("p", 405, "<html>Method Not Allowed</html>".into()).unwrap_err();
        match &err {
            CallError::Http {
                status: 405,
                error: None,
                ..
            } => {}
            other => panic!("expected Http 405, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "call to p got HTTP 405: <html>Method Not Allowed</html>"
        );
        let err = decode_reply("p", 502, String::new()).unwrap_err();
        assert_eq!(err.to_string(), "call to p got HTTP 502: (empty body)");
    }

    #[test]
    fn decode_errors_on_200() {
        for (body, detail) in [
            ("not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"args":"get_api"}"#, "\"args\" is not an array"),
            (r#"{"error":5}"#, "\"error\" is not a string"),
        ] {
            let err = decode_reply("p", 200, body.into()).unwrap_err();
            match &err {
                CallError::Decode {
                    detail: d, body: b, ..
                } => {
                    assert!(d.starts_with(detail), "{d}");
                    assert_eq!(b, body);
                }
                other => panic!("expected Decode, got {other:?}"),
            }
            assert!(err
                .to_string()
                .starts_with("call to p got an undecodable HTTP 200 reply"));
        }
    }

    #[test]
    fn truncate_marks_cut() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc... (6 bytes in all)");
    }

    // ---- HttpBridge against a loopback server ----

    fn kwargs(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[tokio::test]
    async fn bridge_posts_exact_json_and_decodes_success() {
        let (url, rx) = serve(vec![Canned::Reply(
            200,
            r#"{"args":[[0,"No session active.",{}]]}"#,
        )]);
        let bridge = HttpBridge::new(url);
        let v = bridge
            .call(
                "observatory.barebones1.ops",
                vec!["status".into(), "count".into()],
                kwargs(&[("timeout", 1.5.into())]),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(v, serde_json::json!([0, "No session active.", {}]));

        let seen = rx.recv().unwrap();
        assert_eq!(seen.request_line, "POST /call HTTP/1.1");
        assert_eq!(seen.header("content-type"), vec!["application/json"]);
        assert_eq!(
            seen.json(),
            serde_json::json!({
                "procedure": "observatory.barebones1.ops",
                "args": ["status", "count"],
                "kwargs": {"timeout": 1.5},
            })
        );
    }

    #[tokio::test]
    async fn bridge_sends_empty_args_and_kwargs_as_array_and_object() {
        let (url, rx) = serve(vec![Canned::Reply(200, r#"{"args":["BarebonesAgent"]}"#)]);
        let bridge = HttpBridge::new(url);
        let v = bridge
            .call("observatory.b", vec![], Map::new(), CallOptions::default())
            .await
            .unwrap();
        assert_eq!(v, "BarebonesAgent");
        let seen = rx.recv().unwrap();
        assert_eq!(
            seen.json(),
            serde_json::json!({"procedure": "observatory.b", "args": [], "kwargs": {}})
        );
    }

    #[tokio::test]
    async fn bridge_drops_query_parameters() {
        let (mut url, rx) = serve(vec![Canned::Reply(200, r#"{"args":[null]}"#)]);
        url.set_query(Some("timestamp=1"));
        let bridge = HttpBridge::new(url);
        assert_eq!(bridge.call_url().query(), None);
        bridge
            .call(
                "observatory.b",
                vec!["nope".into()],
                Map::new(),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(rx.recv().unwrap().request_line, "POST /call HTTP/1.1");
    }

    #[tokio::test]
    async fn bridge_maps_wamp_and_http_errors() {
        let (url, rx) = serve(vec![
            Canned::Reply(
                200,
                r#"{"error": "wamp.error.no_such_procedure", "args": ["no callee registered for procedure <observatory.x>"], "kwargs": {}}"#,
            ),
            Canned::Reply(
                400,
                r#"{"error": "wamp.error.invalid_json", "args": [], "kwargs": {}}"#,
            ),
            Canned::Reply(200, "Sorry"),
        ]);
        let bridge = HttpBridge::new(url);
        let call = || bridge.call("observatory.x", vec![], Map::new(), CallOptions::default());

        let err = call().await.unwrap_err();
        assert!(err.is_no_such_procedure(), "{err}");

        let err = call().await.unwrap_err();
        assert_eq!(err.http_status(), Some(400), "{err}");
        assert_eq!(err.error_uri(), Some("wamp.error.invalid_json"));

        let err = call().await.unwrap_err();
        assert!(matches!(err, CallError::Decode { .. }), "{err}");
        assert_eq!(rx.iter().count(), 3);
    }

    #[tokio::test]
    async fn bridge_per_call_timeout_is_a_timeout() {
        let (url, _rx) = serve(vec![Canned::Hang]);
        let bridge = HttpBridge::new(url).with_timeout(Duration::from_secs(20));
        let started = std::time::Instant::now();
        let err = bridge
            .call(
                "observatory.x.ops",
                vec!["wait".into(), "count".into()],
                Map::new(),
                CallOptions::with_timeout(Duration::from_millis(200)),
            )
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(4));
        assert!(err.is_timeout(), "{err:?}");
        assert!(!err.is_connect());
        let text = err.to_string();
        assert!(
            text.starts_with(
                "call to observatory.x.ops timed out after 200ms without an HTTP reply"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn bridge_default_timeout_applies() {
        let (url, _rx) = serve(vec![Canned::Hang]);
        let bridge = HttpBridge::new(url).with_timeout(Duration::from_millis(150));
        assert_eq!(bridge.timeout(), Duration::from_millis(150));
        let err = bridge
            .call("observatory.x", vec![], Map::new(), CallOptions::default())
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    }

    #[tokio::test]
    async fn bridge_connection_refused_is_connect() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = Url::parse(&format!("http://127.0.0.1:{port}/call")).unwrap();
        let err = HttpBridge::new(url)
            .call("observatory.x", vec![], Map::new(), CallOptions::default())
            .await
            .unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(!err.is_timeout());
        assert!(
            err.to_string()
                .starts_with("call to observatory.x could not connect to the HTTP bridge"),
            "{err}"
        );
    }
}
