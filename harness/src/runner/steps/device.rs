//! `device: <device>`: change an emulated device's responses and check what it received,
//! through the emulator's command line in the device's container (see `crate::device`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Checked, StackOps};
use crate::device::{match_received, DeviceStep};
use crate::runner::event::Outcome;
use crate::runtime::exec::Command;
use crate::wait::{poll_until, Backoff, Probe};

/// How long one emulator command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Run the `device` step number `n`; `consumed`: by device, how many of the messages it
/// received earlier checks have matched (a check looks only after those).
pub(super) async fn run(
    stack: &impl StackOps,
    n: usize,
    step: &DeviceStep,
    consumed: &mut BTreeMap<String, usize>,
) -> Checked {
    let did = step.action.describe();
    let outcome = |received: Vec<String>| Outcome::Device {
        device: step.device.clone(),
        did: did.clone(),
        received,
    };
    if let Some(cmd) = step.control_command() {
        if let Err(problem) = emulator(stack, &step.device, cmd, format!("step-{n}")).await {
            return Checked::plain(Outcome::Error(problem.clone()), vec![problem], &step.device);
        }
    }
    if step.received.is_empty() {
        return Checked::plain(outcome(Vec::new()), Vec::new(), &step.device);
    }
    let from = consumed.get(&step.device).copied().unwrap_or(0);
    let condition = format!(
        "device {} to receive {}",
        step.device,
        step.received
            .iter()
            .map(|m| format!("{m:?}"))
            .collect::<Vec<_>>()
            .join(", then ")
    );
    let label = format!("step-{n}-received");
    let waited = poll_until(condition, step.timeout, Backoff::default(), || async {
        let cmd = DeviceStep::received_command();
        let all = match emulator(stack, &step.device, cmd, label.clone()).await {
            Ok(v) => v,
            Err(problem) => return Probe::Failed(problem),
        };
        let all: Vec<String> = all["received"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let since = all.get(from..).unwrap_or_default();
        match match_received(since, &step.received) {
            Ok(end) => Probe::Ready(from + end),
            Err(missing) => Probe::Pending(format!(
                "{:?} not received yet; received {}",
                step.received[missing],
                shown(since, from)
            )),
        }
    })
    .await;
    match waited {
        Ok(end) => {
            consumed.insert(step.device.clone(), end);
            Checked::plain(outcome(step.received.clone()), Vec::new(), &step.device)
        }
        Err(e) => Checked::plain(outcome(Vec::new()), vec![e.to_string()], &step.device),
    }
}

/// What the device received after the first `from` messages, for a message.
fn shown(since: &[String], from: usize) -> String {
    let what = if from == 0 {
        "so far"
    } else {
        "since the last check"
    };
    if since.is_empty() {
        return format!("nothing {what}");
    }
    let last: Vec<String> = since
        .iter()
        .rev()
        .take(10)
        .rev()
        .map(|m| format!("{m:?}"))
        .collect();
    let more = since.len().saturating_sub(10);
    let more = if more > 0 {
        format!("{more} more, then ")
    } else {
        String::new()
    };
    format!("{what}: {more}{}", last.join(", "))
}

/// Run the emulator's command line `cmd` in the device's container; its JSON answer.
async fn emulator(
    stack: &impl StackOps,
    device: &str,
    cmd: Vec<String>,
    label: String,
) -> Result<serde_json::Value, String> {
    let command = Command {
        cmd,
        user: None,
        env: BTreeMap::new(),
        timeout: COMMAND_TIMEOUT,
        label,
        hidden: Vec::new(),
    };
    let out = stack
        .exec(device, &command)
        .await
        .map_err(|e| crate::runtime::display_chain(&e))?;
    let answer: Option<serde_json::Value> = serde_json::from_str(out.stdout.trim()).ok();
    match answer {
        Some(v) if out.exit == 0 && v["ok"] == serde_json::Value::Bool(true) => Ok(v),
        _ => Err(format!(
            "the emulator of device {device} answered with exit code {}: {}{}",
            out.exit,
            out.stdout.trim(),
            out.stderr.trim()
        )),
    }
}
