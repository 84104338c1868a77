//! Emulated devices: fake hardware a scenario declares in `stack.devices`, answering a line
//! protocol with responses the scenario defines, with the semantics of socs's
//! `socs.testing.device_emulator` (`define_responses`, `update_responses`, `get_response`).
//! Pure data: each device runs as a service container (the harness's own emulator, Python's
//! standard library only, in an image with Python 3) reached over TCP by its name; a serial
//! device is also a pty at a path in an agent's container, relayed to that TCP port (as
//! socs's tests make one with socat). `device` steps change the responses and check what the
//! device received, through the emulator's command line in its container.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::filespec::{FileCopy, FileSpec};
use crate::overrides::ImageRef;
use crate::service::{Readiness, ReadyCheck, ServiceSpec};

/// The emulator, copied into each device's container.
pub const EMULATOR_PY: &str = include_str!("device/emulator.py");
/// The serial relay, copied into the container of an agent with a serial device.
pub const SERIAL_RELAY_PY: &str = include_str!("device/serial_relay.py");
/// Where the emulator is in a device's container.
pub const EMULATOR_PATH: &str = "/ocs-harness/device/emulator.py";
/// Where a device's configuration is in its container.
pub const CONFIG_PATH: &str = "/ocs-harness/device/config.json";
/// Where the serial relay is in an agent's container.
pub const RELAY_PATH: &str = "/ocs-harness/serial_relay.py";
/// The TCP port a device listens on unless the scenario gives one.
pub const DEFAULT_PORT: u16 = 9001;
/// How long a device's emulator may take to listen.
pub const DEFAULT_READY: Duration = Duration::from_secs(60);

/// One emulated device as the scenario declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Its name in the stack: the host name agents reach it by, what `device`, `exec: {in}`
    /// and `logs` steps name.
    pub name: String,
    /// The image its emulator runs in (any with `python3`).
    pub image: ImageRef,
    /// The TCP port it listens on.
    pub port: u16,
    /// `Some`: a serial device, seen by an agent at a path (messages are lines, responses
    /// end with CRLF).
    pub serial: Option<SerialLink>,
    /// `None`: raw bytes (`encoding: none`, commands and responses written as hex).
    pub encoding: Option<String>,
    /// The responses it starts with, by command.
    pub responses: Responses,
    /// The response to a command it has none for (`None`: no reply).
    pub default_response: Option<Response>,
}

/// Where an agent sees a serial device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialLink {
    /// The agent's instance-id.
    pub agent: String,
    /// The path in the agent's container (e.g. `/dev/ttyUSB0`).
    pub path: String,
}

/// Responses by command, in the order written.
pub type Responses = Vec<(String, Response)>;

/// What a device answers to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// This text (or these bytes, as hex, with `encoding: none`).
    Reply(String),
    /// No reply at all.
    Nothing,
    /// Each in turn, one per time the command comes, then none (socs pops a list).
    Sequence(Vec<Response>),
    /// The reply after a delay.
    Delayed {
        /// What is sent.
        reply: Box<Response>,
        /// How long after the command.
        delay: Duration,
    },
}

impl Response {
    /// As the emulator reads it.
    pub fn to_json(&self) -> Value {
        match self {
            Response::Reply(s) => Value::String(s.clone()),
            Response::Nothing => Value::Null,
            Response::Sequence(v) => Value::Array(v.iter().map(Response::to_json).collect()),
            Response::Delayed { reply, delay } => {
                json!({"reply": reply.to_json(), "delay": delay.as_secs_f64()})
            }
        }
    }
}

/// The responses as the emulator reads them.
pub fn responses_json(responses: &Responses) -> Value {
    let map: Map<String, Value> = responses
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    Value::Object(map)
}

/// What a `device` step does.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceAction {
    /// `define-responses` (with `default-response`): replace every response.
    Define {
        /// The new responses.
        responses: Responses,
        /// The new default response.
        default_response: Option<Response>,
    },
    /// `update-responses`: add to or change the responses.
    Update(Responses),
    /// Neither: only check what the device received.
    Check,
}

impl DeviceAction {
    /// What it does, as reports show it: `define-responses (2 commands)`, `check`.
    pub fn describe(&self) -> String {
        let n = |r: &Responses| match r.len() {
            1 => "1 command".to_string(),
            n => format!("{n} commands"),
        };
        match self {
            DeviceAction::Define { responses, .. } => {
                format!("define-responses ({})", n(responses))
            }
            DeviceAction::Update(r) => format!("update-responses ({})", n(r)),
            DeviceAction::Check => "check".into(),
        }
    }
}

/// A `device` step.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStep {
    /// The device's name.
    pub device: String,
    /// What it does to the responses.
    pub action: DeviceAction,
    /// `expect.received`: messages the device must receive, in this order (others may come
    /// between), after those an earlier check of this device matched.
    pub received: Vec<String>,
    /// How long to wait for them.
    pub timeout: Duration,
}

/// How long a `device` step waits for `received` unless it gives `timeout`.
pub const DEFAULT_RECEIVED_TIMEOUT: Duration = Duration::from_secs(10);

impl DeviceStep {
    /// The emulator command line that changes the responses, if the step does.
    pub fn control_command(&self) -> Option<Vec<String>> {
        let (action, body) = match &self.action {
            DeviceAction::Define {
                responses,
                default_response,
            } => (
                "define",
                json!({
                    "responses": responses_json(responses),
                    "default": default_response.as_ref().map_or(Value::Null, Response::to_json),
                }),
            ),
            DeviceAction::Update(responses) => {
                ("update", json!({"responses": responses_json(responses)}))
            }
            DeviceAction::Check => return None,
        };
        Some(vec![
            "python3".into(),
            EMULATOR_PATH.into(),
            action.into(),
            body.to_string(),
        ])
    }

    /// The emulator command line that lists what the device received.
    pub fn received_command() -> Vec<String> {
        vec!["python3".into(), EMULATOR_PATH.into(), "received".into()]
    }
}

/// Where `expected` (in order, others between) first all appear in `received`: the index
/// after the last one matched, or the first one missing.
pub fn match_received(received: &[String], expected: &[String]) -> Result<usize, usize> {
    let mut at = 0;
    for (i, want) in expected.iter().enumerate() {
        match received[at..].iter().position(|r| r == want) {
            Some(p) => at += p + 1,
            None => return Err(i),
        }
    }
    Ok(at)
}

impl DeviceSpec {
    /// The emulator's configuration file.
    pub fn config_json(&self) -> String {
        json!({
            "name": self.name,
            "port": self.port,
            "serial": self.serial.is_some(),
            "encoding": self.encoding,
            "responses": responses_json(&self.responses),
            "default": self.default_response.as_ref().map_or(Value::Null, Response::to_json),
        })
        .to_string()
    }

    /// The service container that runs the emulator (its files: [`DeviceSpec::files`]).
    pub fn service(&self) -> ServiceSpec {
        ServiceSpec {
            name: self.name.clone(),
            image: self.image.clone(),
            build: None,
            container: Default::default(),
            environment: BTreeMap::new(),
            command: None,
            entrypoint: Some(vec![
                "python3".into(),
                "-u".into(),
                EMULATOR_PATH.into(),
                "serve".into(),
                CONFIG_PATH.into(),
            ]),
            hostname: None,
            aliases: Vec::new(),
            ports: Vec::new(),
            ready: Some(Readiness {
                check: ReadyCheck::Log(format!(
                    "^DeviceEmulator {}: .* listening on port {}$",
                    regex::escape(&self.name),
                    self.port
                )),
                timeout: DEFAULT_READY,
            }),
            files: Vec::<FileSpec>::new(),
            depends_on: Vec::new(),
        }
    }

    /// The files the emulator's container gets.
    pub fn files(&self) -> Vec<FileCopy> {
        vec![
            FileCopy::new(EMULATOR_PATH, "device emulator", EMULATOR_PY.to_string()),
            FileCopy::new(CONFIG_PATH, "device configuration", self.config_json()),
        ]
    }
}

/// The serial relay an agent's container starts with, given its serial devices (`None`
/// when it has none): the command words run before the container's own, and the relay's file.
pub fn serial_wrap(devices: &[&DeviceSpec]) -> Option<(Vec<String>, FileCopy)> {
    if devices.is_empty() {
        return None;
    }
    let mut words = vec!["python3".to_string(), "-u".into(), RELAY_PATH.into()];
    for d in devices {
        let link = d.serial.as_ref().expect("only serial devices are given");
        words.push(format!("{}={}:{}", link.path, d.name, d.port));
    }
    words.push("--".into());
    Some((
        words,
        FileCopy::new(RELAY_PATH, "serial relay", SERIAL_RELAY_PY.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceSpec {
        DeviceSpec {
            name: "ls425".into(),
            image: ImageRef::parse("simonsobs/ocs:latest").unwrap(),
            port: 1234,
            serial: None,
            encoding: Some("utf-8".into()),
            responses: vec![
                ("*IDN?".into(), Response::Reply("LSCI".into())),
                (
                    "RDG?".into(),
                    Response::Sequence(vec![Response::Reply("1".into()), Response::Nothing]),
                ),
                (
                    "SLOW".into(),
                    Response::Delayed {
                        reply: Box::new(Response::Reply("ok".into())),
                        delay: Duration::from_millis(1500),
                    },
                ),
            ],
            default_response: None,
        }
    }

    #[test]
    fn the_emulator_gets_the_responses_as_socs_writes_them() {
        let config: Value = serde_json::from_str(&device().config_json()).unwrap();
        assert_eq!(
            config,
            json!({"name": "ls425", "port": 1234, "serial": false, "encoding": "utf-8",
                   "responses": {"*IDN?": "LSCI", "RDG?": ["1", null],
                                 "SLOW": {"reply": "ok", "delay": 1.5}},
                   "default": null})
        );
        let s = device().service();
        assert_eq!(s.name, "ls425");
        assert!(matches!(&s.ready.unwrap().check, ReadyCheck::Log(r)
            if regex::Regex::new(r).unwrap().is_match(
                "DeviceEmulator ls425: TCP device listening on port 1234")));
    }

    #[test]
    fn steps_run_the_emulators_command_line() {
        let step = DeviceStep {
            device: "ls425".into(),
            action: DeviceAction::Define {
                responses: vec![("OPST?".into(), Response::Reply("132".into()))],
                default_response: Some(Response::Reply(String::new())),
            },
            received: Vec::new(),
            timeout: DEFAULT_RECEIVED_TIMEOUT,
        };
        let cmd = step.control_command().unwrap();
        assert_eq!(cmd[..3], ["python3", EMULATOR_PATH, "define"]);
        let body: Value = serde_json::from_str(&cmd[3]).unwrap();
        assert_eq!(body, json!({"responses": {"OPST?": "132"}, "default": ""}));
        let check = DeviceStep {
            action: DeviceAction::Check,
            ..step
        };
        assert_eq!(check.control_command(), None);
    }

    #[test]
    fn received_messages_match_in_order_with_others_between() {
        let got: Vec<String> = ["*IDN?", "ZCLEAR", "RDG?", "ZPROBE", "RDG?"]
            .map(String::from)
            .to_vec();
        let want = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(match_received(&got, &want(&["ZCLEAR", "ZPROBE"])), Ok(4));
        assert_eq!(match_received(&got, &want(&["ZPROBE", "ZCLEAR"])), Err(1));
        assert_eq!(match_received(&got, &want(&["RDG?", "RDG?"])), Ok(5));
        assert_eq!(match_received(&got, &[]), Ok(0));
    }

    #[test]
    fn serial_devices_wrap_their_agents_command() {
        let mut d = device();
        d.serial = Some(SerialLink {
            agent: "LS425".into(),
            path: "/dev/ttyUSB0".into(),
        });
        let (words, file) = serial_wrap(&[&d]).unwrap();
        assert_eq!(
            words,
            ["python3", "-u", RELAY_PATH, "/dev/ttyUSB0=ls425:1234", "--"]
        );
        assert_eq!(file.path, RELAY_PATH);
        assert_eq!(serial_wrap(&[]), None);
    }
}
