//! Scenario parsing of emulated devices: `stack.devices` and `device` steps, valid forms and
//! one snapshot per error case (the rendered message is the interface).

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::device::{DeviceAction, Response, SerialLink, DEFAULT_PORT};

const FILE: &str = "scenarios/test.yaml";

fn parse(text: &str) -> Result<Scenario, Vec<ScenarioError>> {
    Scenario::parse_all(text, Path::new(FILE), &|_| None)
}

/// The first error, rendered.
fn err(text: &str) -> String {
    match parse(text) {
        Ok(s) => panic!("expected an error, got {s:#?}"),
        Err(errors) => errors[0].to_string(),
    }
}

/// A stack with one agent, `devices` and `steps` as given (each indented already).
fn scenario(devices: &str, steps: &str) -> String {
    format!(
        "stack:\n  agents:\n    - instance-id: LS425\n      agent-class: Lakeshore425Agent\n      \
         image: simonsobs/socs:v0.6.4\n  devices:\n{devices}steps:\n{steps}"
    )
}

const LS425: &str = "    - name: ls425\n      serial: {agent: LS425, path: /dev/ttyUSB0}\n      \
                     responses: {'*IDN?': 'LSCI,MODEL425,LSA425T,1.3'}\n";

#[test]
fn devices_parse_with_socs_kinds_of_response() {
    let text = scenario(
        "    - name: psu\n      image: simonsobs/socs:v0.6.4\n      port: 1234\n      \
         responses:\n        '*idn?': Keithley\n        'OPST?': 132\n        ZCLEAR: ''\n        \
         NOREPLY: null\n        'RDGFIELD?': ['+1.0E-01', '+1.2E-01', null]\n        \
         SLOW: {reply: late, delay: 1.5s}\n      default-response: ''\n\
         \x20   - name: cpa\n      encoding: none\n      responses: {'0999': '09990a'}\n",
        "  - device: psu\n    expect: {received: ['*idn?']}\n",
    );
    let s = parse(&text).unwrap_or_else(|e| panic!("{}", ScenarioErrors(e)));
    let d = &s.stack.devices;
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].name.as_str(), d[0].port), ("psu", 1234));
    assert_eq!(d[0].encoding.as_deref(), Some("utf-8"));
    assert_eq!(
        d[0].responses,
        vec![
            ("*idn?".into(), Response::Reply("Keithley".into())),
            ("OPST?".into(), Response::Reply("132".into())),
            ("ZCLEAR".into(), Response::Reply(String::new())),
            ("NOREPLY".into(), Response::Nothing),
            (
                "RDGFIELD?".into(),
                Response::Sequence(vec![
                    Response::Reply("+1.0E-01".into()),
                    Response::Reply("+1.2E-01".into()),
                    Response::Nothing,
                ])
            ),
            (
                "SLOW".into(),
                Response::Delayed {
                    reply: Box::new(Response::Reply("late".into())),
                    delay: Duration::from_millis(1500),
                }
            ),
        ]
    );
    assert_eq!(d[0].default_response, Some(Response::Reply(String::new())));
    assert_eq!((d[1].port, d[1].encoding.clone()), (DEFAULT_PORT, None));
    // the default image is the stack's ocs image; each device runs as a service, first
    assert_eq!(d[1].image.to_string(), "simonsobs/ocs:latest");
    let services: Vec<&str> = s.stack.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(services, ["psu", "cpa"]);
}

#[test]
fn device_steps_define_update_and_check() {
    let text = scenario(
        LS425,
        "  - device: ls425\n    define-responses: {'OPST?': '132'}\n    default-response: ''\n\
         \x20 - device: ls425\n    update-responses: {'UNIT?': '2'}\n\
         \x20 - device: ls425\n    expect: {received: [ZCLEAR, ZPROBE]}\n    timeout: 5s\n\
         \x20 - exec: {in: ls425, cmd: [cat, /ocs-harness/device/config.json]}\n\
         \x20 - logs: ls425\n    contains: msg\n",
    );
    let s = parse(&text).unwrap_or_else(|e| panic!("{}", ScenarioErrors(e)));
    assert_eq!(
        s.stack.devices[0].serial,
        Some(SerialLink {
            agent: "LS425".into(),
            path: "/dev/ttyUSB0".into()
        })
    );
    let StepKind::Device(define) = &s.steps[0].kind else {
        panic!("a device step")
    };
    assert_eq!(
        define.action,
        DeviceAction::Define {
            responses: vec![("OPST?".into(), Response::Reply("132".into()))],
            default_response: Some(Response::Reply(String::new())),
        }
    );
    let StepKind::Device(update) = &s.steps[1].kind else {
        panic!("a device step")
    };
    assert!(matches!(&update.action, DeviceAction::Update(r) if r.len() == 1));
    let StepKind::Device(check) = &s.steps[2].kind else {
        panic!("a device step")
    };
    assert_eq!(check.action, DeviceAction::Check);
    assert_eq!(check.received, ["ZCLEAR", "ZPROBE"]);
    assert_eq!(check.timeout, Duration::from_secs(5));
    assert_eq!(
        s.steps[2].kind.to_string(),
        "device ls425: 2 received (timeout 5s)"
    );
    assert_eq!(
        s.steps[0].kind.to_string(),
        "device ls425: define-responses (1 command)"
    );
}

#[test]
fn device_errors() {
    let no_steps = "";
    insta::assert_snapshot!(
        "device_unknown_key",
        err(&scenario(
            "    - name: ls425\n      respones: {}\n",
            no_steps
        ))
    );
    insta::assert_snapshot!(
        "device_no_name",
        err(&scenario("    - port: 1234\n", no_steps))
    );
    insta::assert_snapshot!(
        "device_name_taken",
        err(&scenario("    - name: LS425\n", no_steps))
    );
    insta::assert_snapshot!(
        "device_serial_unknown_agent",
        err(&scenario(
            "    - name: ls425\n      serial: {agent: LS452, path: /dev/ttyUSB0}\n",
            no_steps
        ))
    );
    insta::assert_snapshot!(
        "device_serial_relative_path",
        err(&scenario(
            "    - name: ls425\n      serial: {agent: LS425, path: ./responder}\n",
            no_steps
        ))
    );
    insta::assert_snapshot!(
        "device_bad_port",
        err(&scenario(
            "    - name: ls425\n      port: 70000\n",
            no_steps
        ))
    );
    insta::assert_snapshot!(
        "device_bad_encoding",
        err(&scenario(
            "    - name: ls425\n      encoding: utf-16\n",
            no_steps
        ))
    );
    insta::assert_snapshot!(
        "device_not_hex",
        err(&scenario(
            "    - name: cpa\n      encoding: none\n      responses: {'0999': 'init_res'}\n",
            no_steps
        ))
    );
    insta::assert_snapshot!(
        "device_nested_list",
        err(&scenario(
            "    - name: ls425\n      responses: {'RDG?': [[a, b]]}\n",
            no_steps
        ))
    );
    insta::assert_snapshot!(
        "device_delay_missing",
        err(&scenario(
            "    - name: ls425\n      responses: {'RDG?': {reply: a}}\n",
            no_steps
        ))
    );
    insta::assert_snapshot!(
        "device_step_unknown_device",
        err(&scenario(
            LS425,
            "  - device: ls245\n    define-responses: {'OPST?': '132'}\n"
        ))
    );
    insta::assert_snapshot!(
        "device_step_define_and_update",
        err(&scenario(
            LS425,
            "  - device: ls425\n    define-responses: {}\n    update-responses: {}\n"
        ))
    );
    insta::assert_snapshot!(
        "device_step_default_without_define",
        err(&scenario(
            LS425,
            "  - device: ls425\n    update-responses: {}\n    default-response: ''\n"
        ))
    );
    insta::assert_snapshot!(
        "device_step_nothing_to_do",
        err(&scenario(LS425, "  - device: ls425\n"))
    );
    insta::assert_snapshot!(
        "device_step_timeout_without_received",
        err(&scenario(
            LS425,
            "  - device: ls425\n    define-responses: {}\n    timeout: 5s\n"
        ))
    );
    insta::assert_snapshot!(
        "device_step_responses_not_a_mapping",
        err(&scenario(
            LS425,
            "  - device: ls425\n    define-responses: ['OPST?', '132']\n"
        ))
    );
}
