//! Decoding a `device` step: `device: <device>` with `define-responses` (and
//! `default-response`) or `update-responses`, and `expect: {received: [..]}` with `timeout`.

use crate::device::{DeviceAction, DeviceStep, DEFAULT_RECEIVED_TIMEOUT};

use super::super::error::{closest, list_names};
use super::super::node::Cx;
use super::stack::{device_response, device_responses, is_hex};
use super::steps::StepParts;
use super::values::parse_duration;

const EXPECT_KEYS: &[&str] = &["received"];

/// `device: <device>`.
pub(super) fn device(cx: &mut Cx, p: &StepParts) -> Option<DeviceStep> {
    let f = &p.fields;
    let name = cx.nonempty_string(p.target, "the target of `device`", "device: ls425")?;
    let Some(&raw) = p.names.devices.get(&name) else {
        let known: Vec<String> = p.names.devices.keys().cloned().collect();
        let label = match closest(&name, known.iter().map(String::as_str)) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "no such device".into(),
        };
        let e = cx.err(
            p.target.pos,
            format!("no device `{name}` in the stack"),
            label,
        );
        let e = if known.is_empty() {
            e.help(
                "declare it in `stack.devices`, e.g. `devices: [{name: ls425, port: 1234, \
                 responses: {'*IDN?': 'LSCI,MODEL425'}}]`",
            )
        } else {
            e.note(format!("the devices are {}", list_names(&known)))
        };
        return cx.fail(e);
    };
    let action = match (f.get("define-responses"), f.get("update-responses")) {
        (Some(_), Some(_)) => {
            let k = f.key("update-responses").expect("present");
            let e = cx
                .err(
                    k.pos,
                    "this `device` step has both `define-responses` and `update-responses`",
                    "give only one of these",
                )
                .help(
                    "`define-responses` replaces every response (socs's define_responses); \
                     `update-responses` adds to them or changes some (update_responses)",
                );
            return cx.fail(e);
        }
        (Some(v), None) => {
            let responses = device_responses(cx, v, raw, "`define-responses`")?;
            let default_response = match f.get("default-response") {
                Some(d) => Some(device_response(cx, d, raw)?),
                None => None,
            };
            DeviceAction::Define {
                responses,
                default_response,
            }
        }
        (None, Some(v)) => {
            DeviceAction::Update(device_responses(cx, v, raw, "`update-responses`")?)
        }
        (None, None) => DeviceAction::Check,
    };
    if let (Some(k), false) = (
        f.key("default-response"),
        matches!(action, DeviceAction::Define { .. }),
    ) {
        let e = cx
            .err(
                k.pos,
                "`default-response` goes with `define-responses`",
                "no `define-responses` here",
            )
            .help(
                "as socs's define_responses(responses, default_response), a default comes with a \
                 new set of responses; add `define-responses` to this step",
            );
        return cx.fail(e);
    }
    let received = match f.get("expect") {
        Some(v) => {
            let example = "expect: {received: [ZCLEAR, ZPROBE]}";
            let e = cx.fields(v, "`expect` of a `device` step", EXPECT_KEYS, example)?;
            match e.get("received") {
                Some(r) => {
                    let list = cx.strings(r, "`received`", example, false)?;
                    if raw {
                        if let Some(bad) = list.iter().find(|m| !is_hex(m)) {
                            let err = cx
                                .err(r.pos, format!("`{bad}` is not hex"), "not hex bytes")
                                .help(
                                    "this device has `encoding: none`: write what it receives as \
                                     hex digits, two a byte",
                                );
                            return cx.fail(err);
                        }
                    }
                    list
                }
                None => Vec::new(),
            }
        }
        None => Vec::new(),
    };
    if matches!(action, DeviceAction::Check) && received.is_empty() {
        let e = cx
            .err(
                p.kind_key.pos,
                format!("this `device` step does nothing to `{name}`"),
                "nothing to do",
            )
            .help(
                "give `define-responses`, `update-responses` or `expect: {received: [..]}` (what \
                 the device must have received)",
            );
        return cx.fail(e);
    }
    let timeout = match f.get("timeout") {
        Some(v) if received.is_empty() => {
            let e = cx
                .err(
                    v.pos,
                    "`timeout` goes with `expect: {received: ..}`",
                    "nothing to wait for",
                )
                .help("changing the responses does not wait; remove `timeout`");
            return cx.fail(e);
        }
        Some(v) => parse_duration(cx, v, "`timeout`", false)?,
        None => DEFAULT_RECEIVED_TIMEOUT,
    };
    Some(DeviceStep {
        device: name,
        action,
        received,
        timeout,
    })
}
