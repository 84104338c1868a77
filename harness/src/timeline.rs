//! One merged timeline of a run: harness steps, each bridge call and reply, session messages
//! (at the times the agent stamped them) and every container's log lines, interleaved by
//! time. Written in full next to the run's logs; its tail is shown when a run fails.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::runner::{Answer, Call, RunEvent, RunObserver};
use crate::runtime::logs::LogLine;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the epoch.
    pub at: f64,
    /// Who said it: `harness`, `bridge`, `session <instance>.<op>`, or a container.
    pub source: String,
    /// What happened.
    pub text: String,
}

/// The harness's own events (steps, calls, replies, session messages seen in replies), as a
/// reader of the run's events.
#[derive(Debug, Default)]
pub struct Timeline {
    events: Vec<Event>,
}

fn now() -> f64 {
    epoch_secs(SystemTime::now())
}

fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Timeline {
    /// An empty timeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record an event now.
    pub fn record(&mut self, source: &str, text: impl Into<String>) {
        self.record_at(now(), source, text);
    }

    fn record_at(&mut self, at: f64, source: &str, text: impl Into<String>) {
        self.events.push(Event {
            at,
            source: source.to_string(),
            text: text.into(),
        });
    }

    /// The harness's events merged with `logs`, ordered by time (stable for equal times).
    pub fn merged(&self, logs: &[LogLine]) -> Vec<Event> {
        let mut all: Vec<Event> = self.events.clone();
        all.extend(logs.iter().map(|l| Event {
            at: epoch_secs(l.received),
            source: l.container.clone(),
            text: l.text.clone(),
        }));
        all.sort_by(|a, b| a.at.total_cmp(&b.at));
        all
    }

    /// A call going out (`until`'s polls are not shown).
    fn call(&mut self, call: &Call) {
        if call.polled {
            return;
        }
        let text = match (&call.op, &call.params) {
            (None, _) => format!("-> {} {}", call.instance, call.action),
            (Some(op), Some(p)) => format!("-> {} {}.{op} {p}", call.action, call.instance),
            (Some(op), None) => format!("-> {} {}.{op}", call.action, call.instance),
        };
        self.record("bridge", text);
    }

    /// A reply coming back (failed `get_api` calls and polls show in the step's problems).
    fn reply(&mut self, call: &Call, answer: &Answer) {
        let op = call.op.as_deref().unwrap_or_default();
        let text = match answer {
            Answer::Api(api) => format!(
                "<- {} {}: {}",
                call.instance,
                call.action,
                crate::transcript::api(api)
            ),
            Answer::Reply(r) if call.polled => {
                format!("<- {} {}.{op}: {r}", call.action, call.instance)
            }
            Answer::Reply(r) => format!("<- {r}"),
            Answer::Error(e) if call.op.is_some() && !call.polled => format!("<- error: {e}"),
            Answer::Error(_) => return,
        };
        self.record("bridge", text);
    }
}

impl RunObserver for Timeline {
    fn on_event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::StackReady { run_id, .. } => {
                self.record("harness", format!("stack {run_id} ready"))
            }
            RunEvent::StepStarted { step, line, action } => {
                self.record("harness", format!("step {step} (line {line}): {action}"))
            }
            RunEvent::CallMade { call, .. } => self.call(call),
            RunEvent::ReplyReceived { call, answer, .. } => self.reply(call, answer),
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
            RunEvent::StepFinished { step, failure, .. } => match failure {
                Some(f) => self.record(
                    "harness",
                    format!("step {step} FAILED:\n{}", f.problems.join("\n")),
                ),
                None => self.record("harness", format!("step {step} ok")),
            },
            RunEvent::RunStarted { .. }
            | RunEvent::LogLineSelected { .. }
            | RunEvent::FaultInjected { .. }
            | RunEvent::RunFinished { .. } => {}
        }
    }
}

/// `13:44:50.123 [source] text`, one line per event (continuation lines indented).
pub fn render(events: &[Event]) -> String {
    let width = events
        .iter()
        .map(|e| e.source.len())
        .max()
        .unwrap_or(0)
        .min(28);
    let mut out = String::new();
    for e in events {
        let secs = e.at.rem_euclid(86_400.0);
        let (h, m, s) = (
            (secs / 3600.0) as u32,
            ((secs % 3600.0) / 60.0) as u32,
            secs % 60.0,
        );
        let mut lines = e.text.lines();
        let first = lines.next().unwrap_or("");
        out.push_str(&format!(
            "{h:02}:{m:02}:{s:06.3} [{:<width$}] {first}\n",
            e.source
        ));
        let indent = " ".repeat(width + 16);
        for more in lines {
            out.push_str(&format!("{indent}{more}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::logs::Stream;
    use std::time::Duration;

    #[test]
    fn events_interleave_by_time() {
        let mut t = Timeline::new();
        t.events.push(Event {
            at: 100.5,
            source: "harness".into(),
            text: "step 1: start a.b".into(),
        });
        let logs = vec![LogLine {
            seq: 0,
            container: "a".into(),
            received: UNIX_EPOCH + Duration::from_millis(100_250),
            stream: Stream::Stdout,
            text: "started\ncontinued".into(),
        }];
        let text = render(&t.merged(&logs));
        assert_eq!(
            text,
            "00:01:40.250 [a      ] started\n                       continued\n\
             00:01:40.500 [harness] step 1: start a.b\n"
        );
    }
}
