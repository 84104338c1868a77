//! The normalised transcript of a run: each step, each reply, the session messages and the
//! log lines the steps selected, with everything that varies between runs (timestamps,
//! durations, pids, hostnames, run ids, counters) redacted, so a snapshot of it is identical
//! across runs. Pure functions over the OCS client's types.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::ocs::{AgentApi, Reply, Session};

/// One entry per step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// 1-based step number.
    pub step: usize,
    /// What the step did, e.g. `start barebones1.count`.
    pub action: String,
    /// The normalised outcome (reply, api summary, selected log lines, ...).
    pub outcome: Value,
}

/// A run's transcript.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Transcript {
    /// Scenario name.
    pub scenario: String,
    /// The stack, by logical container name and image role (no tags: they carry hashes).
    pub stack: Vec<String>,
    /// The steps.
    pub steps: Vec<Entry>,
}

/// Replace every number in `v` by a type placeholder (`<int>`, `<float>`), and every run of
/// five or more digits inside a string (a unix time in a file name such as the aggregator's
/// `/data/17962/1796217324.g3`); booleans and structure stay. Counters and timestamps in
/// `session.data` vary between runs; their presence and type do not.
pub fn redact_numbers(v: &Value) -> Value {
    static LONG_NUMBER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\d{5,}(\.\d+)?").expect("valid regex"));
    match v {
        Value::Number(n) if n.is_f64() => json!("<float>"),
        Value::Number(_) => json!("<int>"),
        Value::String(s) => json!(LONG_NUMBER.replace_all(s, |c: &regex::Captures| {
            if c.get(1).is_some() {
                "<float>"
            } else {
                "<int>"
            }
        })),
        Value::Array(a) => Value::Array(a.iter().map(redact_numbers).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), redact_numbers(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Numbers inside a session message (`Aborted after 0.3 seconds`, `stopped after 57
/// samples`) become `<float>` / `<int>`: they are durations and counters.
pub fn redact_message(text: &str) -> String {
    static NUMBER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\b\d+(\.\d+)?\b").expect("valid regex"));
    NUMBER
        .replace_all(text, |c: &regex::Captures| {
            if c.get(1).is_some() {
                "<float>"
            } else {
                "<int>"
            }
        })
        .into_owned()
}

/// What a `redact:` path's value becomes in the transcript.
pub const REDACTED: &str = "<redacted>";

/// Replace the value at `path` (as a step's `capture:` names it: `session.messages`,
/// `data.child_states`, `value.x`) in a normalised outcome by [`REDACTED`]; a reply's `data`
/// is its session's. Nothing happens when the outcome has no such value (e.g. a failed call).
pub fn redact_at(outcome: &mut Value, path: &crate::scenario::capture::ValuePath) {
    let target = match path.first() {
        "data" => outcome.get_mut("session"),
        _ => Some(outcome),
    };
    if let Some(t) = target {
        path.replace(t, json!(REDACTED));
    }
}

/// A session without its times: op, code, status, success, degraded, message texts (numbers
/// redacted) and the redacted data.
pub fn session(s: &Session) -> Value {
    let messages: Vec<String> = s.message_texts().into_iter().map(redact_message).collect();
    json!({
        "session_id": s.session_id,
        "op_name": s.op_name,
        "op_code": s.op_code.to_string(),
        "status": s.status,
        "success": s.success,
        "degraded": s.degraded,
        "messages": messages,
        "data": redact_numbers(&s.data),
    })
}

/// A reply: status, message, normalised session.
pub fn reply(r: &Reply) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), json!(r.status.to_string()));
    m.insert("message".into(), json!(r.message));
    m.insert(
        "session".into(),
        r.session.as_ref().map(session).unwrap_or(Value::Null),
    );
    Value::Object(m)
}

/// `get_api`, reduced to what does not vary: class, hostname, and the declared operations.
pub fn api(a: &AgentApi) -> Value {
    let ops = |ops: &[crate::ocs::OpInfo]| -> Vec<String> {
        ops.iter().map(|o| o.name.clone()).collect()
    };
    json!({
        "agent_class": a.agent_class,
        "instance_hostname": a.instance_hostname,
        "tasks": ops(&a.tasks),
        "processes": ops(&a.processes),
        "feeds": a.feeds.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
    })
}

/// A command's output as a transcript shows it: each line as [`log_line`] shows a log
/// line, without the final line break.
pub fn command_output(text: &str) -> String {
    crate::scenario::exec::trim_final_newline(text)
        .lines()
        .map(log_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A log line as a transcript shows it: no leading timestamp, and the values that differ
/// between runs (container ids, run ids, IPv4 addresses) replaced by `<container-id>`,
/// `ocsh-<run>` and `<ip>`. On a worker's shared crossbar (`--crossbar shared`) the run's
/// call bridge path (`/call-3`) reads as its own crossbar's (`/call`) and the realm
/// (`ocsh_realm_3`) as `<realm>`, so that a snapshot holds in both modes.
pub fn log_line(line: &str) -> String {
    static VOLATILE: std::sync::LazyLock<[(regex::Regex, &str); 5]> =
        std::sync::LazyLock::new(|| {
            [
                (
                    regex::Regex::new(r"(ocsh-[0-9a-f]{8}-crossbar:\d+/call)-\d+\b")
                        .expect("valid regex"),
                    "$1",
                ),
                (
                    regex::Regex::new(r"\bocsh_realm_\d+\b").expect("valid regex"),
                    "<realm>",
                ),
                (
                    regex::Regex::new(r"ocsh-[0-9a-f]{8}").expect("valid regex"),
                    "ocsh-<run>",
                ),
                (
                    // crossbar's node ids are `<container id>-<pid>`; the pid varies too.
                    regex::Regex::new(r"\b[0-9a-f]{12}(-\d+)?\b").expect("valid regex"),
                    "<container-id>",
                ),
                (
                    regex::Regex::new(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")
                        .expect("valid regex"),
                    "<ip>",
                ),
            ]
        });
    let mut text = strip_timestamp(line);
    for (re, with) in VOLATILE.iter() {
        text = re.replace_all(&text, *with).into_owned();
    }
    text
}

fn strip_timestamp(line: &str) -> String {
    let b = line.as_bytes();
    let is_ts = b.len() > 25
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (b[19] == b'+' || b[19] == b'-')
        && b[24] == b' ';
    if is_ts {
        line[25..].to_string()
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_crossbars_path_and_realm_read_as_a_private_ones() {
        assert_eq!(
            log_line("base url http://ocsh-0badcafe-crossbar:8001/call-3 realm ocsh_realm_3"),
            "base url http://ocsh-<run>-crossbar:8001/call realm <realm>"
        );
        assert_eq!(
            log_line("http://ocsh-0badcafe-crossbar:8001/call"),
            "http://ocsh-<run>-crossbar:8001/call"
        );
    }

    #[test]
    fn numbers_are_redacted_structure_kept() {
        let v = json!({"value": 3, "timestamp": 1.5, "text": "hi", "l": [1, true]});
        assert_eq!(
            redact_numbers(&v),
            json!({"value": "<int>", "timestamp": "<float>", "text": "hi", "l": ["<int>", true]})
        );
        let v =
            json!({"f": "/data/17962/1796217324.g3", "s": "1602088928.8294137", "v": "v0.12.1"});
        assert_eq!(
            redact_numbers(&v),
            json!({"f": "/data/<int>/<int>.g3", "s": "<float>", "v": "v0.12.1"})
        );
    }

    #[test]
    fn message_numbers_are_redacted() {
        assert_eq!(
            redact_message("Aborted after 0.3 seconds"),
            "Aborted after <float> seconds"
        );
        assert_eq!(
            redact_message("Acquisition stopped after 57 samples."),
            "Acquisition stopped after <int> samples."
        );
        assert_eq!(
            redact_message("Status is now \"done\"."),
            "Status is now \"done\"."
        );
    }

    #[test]
    fn log_timestamps_are_stripped() {
        assert_eq!(
            log_line("2026-11-27T12:51:26+0000 count:0 Acquisition exited cleanly."),
            "count:0 Acquisition exited cleanly."
        );
        assert_eq!(log_line("Args: ['--mode']"), "Args: ['--mode']");
        assert_eq!(
            log_line(
                "session joined: {'x_cb_node': '5003148f8a69-7', 'peer': 'tcp4:172.31.0.2:8001'}"
            ),
            "session joined: {'x_cb_node': '<container-id>', 'peer': 'tcp4:<ip>:8001'}"
        );
        assert_eq!(
            log_line("ws://ocsh-0badcafe-crossbar:8001"),
            "ws://ocsh-<run>-crossbar:8001"
        );
    }
}
