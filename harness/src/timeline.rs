//! One merged timeline of a run: harness steps, each bridge call and reply, session messages
//! (at the times the agent stamped them) and every container's log lines, interleaved by
//! time. Written in full next to the run's logs; its tail is shown when a run fails.

use std::time::{SystemTime, UNIX_EPOCH};

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

/// The harness's own events (steps, calls, replies, session messages seen in replies). The
/// runner records them from its events (`runner::readers`).
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

    /// Record an event at `at` (seconds since the epoch), e.g. a session message at the
    /// agent's own time.
    pub fn record_at(&mut self, at: f64, source: &str, text: impl Into<String>) {
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
            level: None,
            namespace: None,
        }];
        let text = render(&t.merged(&logs));
        assert_eq!(
            text,
            "00:01:40.250 [a      ] started\n                       continued\n\
             00:01:40.500 [harness] step 1: start a.b\n"
        );
    }
}
