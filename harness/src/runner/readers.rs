//! The run's built-in readers: which event becomes which [`Timeline`] line, which becomes
//! which [`Transcript`] entry (each step's outcome normalised), and which reply exercised
//! which operation ([`Coverage`]). They live here, next to the events, so `timeline`,
//! `transcript` and `coverage` stay plain data and rendering and nothing imports the runner
//! back.

use super::event::{Answer, Call, Outcome, RunEvent, RunObserver};
use crate::budget::{RunTimes, StepTime};
use crate::coverage::{Coverage, Exercise};
use crate::ocs::{OpCode, Reply, ResponseCode};
use crate::timeline::Timeline;
use crate::transcript::{Entry, Transcript};

impl RunObserver for Timeline {
    fn on_event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::StackReady { run_id, .. } => {
                self.record("harness", format!("stack {run_id} ready"))
            }
            RunEvent::StepStarted { step, line, action } => {
                self.record("harness", format!("step {step} (line {line}): {action}"))
            }
            RunEvent::CallMade { call, .. } => {
                if let Some(text) = call_line(call) {
                    self.record("bridge", text)
                }
            }
            RunEvent::ReplyReceived { call, answer, .. } => {
                if let Some(text) = reply_line(call, answer) {
                    self.record("bridge", text)
                }
            }
            RunEvent::SessionMessage {
                instance,
                op,
                session_id,
                time,
                text,
                ..
            } => self.record_at(
                *time,
                &format!("session {instance}.{op}:{session_id}"),
                text,
            ),
            RunEvent::StepFinished {
                step,
                failure,
                outcome,
                ..
            } => match (failure, fetched_line(outcome)) {
                (Some(f), _) => self.record(
                    "harness",
                    format!("step {step} FAILED:\n{}", f.problems.join("\n")),
                ),
                (None, Some(text)) => self.record("harness", format!("step {step} ok: {text}")),
                (None, None) => self.record("harness", format!("step {step} ok")),
            },
            RunEvent::RunStarted { .. }
            | RunEvent::AgentDescribed { .. }
            | RunEvent::LogLineSelected { .. }
            | RunEvent::FaultInjected { .. }
            | RunEvent::RunFinished { .. } => {}
        }
    }
}

/// What a `fetch` step copied out, and where to: `/data: 2 files, 17 bytes, in <dir>`.
fn fetched_line(outcome: &Outcome) -> Option<String> {
    let Outcome::Fetched { path, into, files } = outcome else {
        return None;
    };
    Some(match into {
        Some(dir) => {
            let bytes: u64 = files.iter().map(|(_, size)| size).sum();
            format!(
                "fetched {path}: {} file(s), {bytes} bytes, in {dir}",
                files.len()
            )
        }
        None => format!("fetched {path}: no such path"),
    })
}

/// A call going out, as the timeline shows it (`until`'s polls are not shown).
fn call_line(call: &Call) -> Option<String> {
    if call.polled {
        return None;
    }
    Some(format!("-> {call}"))
}

/// A reply coming back, as the timeline shows it (a failed `get_api` or poll shows in the
/// step's problems instead).
fn reply_line(call: &Call, answer: &Answer) -> Option<String> {
    let op = call.op.as_deref().unwrap_or_default();
    Some(match answer {
        Answer::Api(_) if call.polled => return None,
        Answer::Api(_) => format!("<- {} {}: {answer}", call.instance, call.action),
        Answer::Value(_) => format!("<- {answer}"),
        Answer::Reply(r) if call.polled => {
            format!("<- {} {}.{op}: {r}", call.action, call.instance)
        }
        Answer::Reply(r) => format!("<- {r}"),
        Answer::Error(_) if call.op.is_some() && !call.polled => format!("<- {answer}"),
        Answer::Error(_) => return None,
    })
}

impl RunObserver for Transcript {
    /// The scenario, the stack, each finished step's normalised outcome.
    fn on_event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted { scenario, .. } => self.scenario = scenario.clone(),
            RunEvent::StackReady { stack, .. } => self.stack = stack.clone(),
            RunEvent::StepFinished {
                step,
                action,
                outcome,
                redact,
                ..
            } => {
                let mut outcome = outcome.normalised();
                for path in redact {
                    crate::transcript::redact_at(&mut outcome, path);
                }
                self.steps.push(Entry {
                    step: *step,
                    action: action.clone(),
                    outcome,
                })
            }
            _ => {}
        }
    }
}

impl RunObserver for Coverage {
    /// Each agent's operations (`agent_described`), then what each reply says was done.
    fn on_event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::AgentDescribed {
                instance,
                agent_class,
                api,
            } => self.describe(instance, agent_class, api),
            RunEvent::ReplyReceived {
                call,
                answer: Answer::Reply(reply),
                ..
            } => {
                for (op, how) in exercised(call, reply) {
                    self.record(&call.instance, op, how);
                }
            }
            _ => {}
        }
    }
}

/// What `reply` to `call` says was done to which operation: an accepted `start`, `stop` or
/// `abort`; a `start` refused without a session; a session that ended in success or failure.
fn exercised<'a>(call: &'a Call, reply: &'a Reply) -> Vec<(&'a str, Exercise)> {
    let mut done = Vec::new();
    if let Some(op) = call.op.as_deref() {
        let accepted = reply.status == ResponseCode::Ok;
        match call.action.as_str() {
            "start" if accepted => done.push((op, Exercise::Started)),
            "start" if reply.session.is_none() => done.push((op, Exercise::Rejected)),
            "stop" if accepted => done.push((op, Exercise::Stopped)),
            "abort" if accepted => done.push((op, Exercise::Aborted)),
            _ => {}
        }
    }
    if let Some(s) = &reply.session {
        match s.op_code {
            OpCode::Succeeded => done.push((s.op_name.as_str(), Exercise::Succeeded)),
            OpCode::Failed => done.push((s.op_name.as_str(), Exercise::Failed)),
            _ => {}
        }
    }
    done
}

impl RunObserver for RunTimes {
    /// The scenario, crossbar's boot and each agent's registration, each finished step's
    /// duration.
    fn on_event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted { scenario, .. } => self.scenario = scenario.clone(),
            RunEvent::StackReady {
                run_id,
                crossbar_boot,
                registration,
                ..
            } => {
                self.run_id = run_id.clone();
                self.crossbar_boot = crossbar_boot.as_secs_f64();
                self.registration = registration
                    .iter()
                    .map(|(agent, took)| (agent.clone(), took.as_secs_f64()))
                    .collect();
            }
            RunEvent::StepFinished {
                step,
                action,
                duration,
                passed,
                ..
            } => self.steps.push(StepTime {
                step: *step,
                action: action.clone(),
                duration: duration.as_secs_f64(),
                passed: *passed,
            }),
            _ => {}
        }
    }
}
