//! Operation coverage: which operations of each agent class's `get_api` a run (or a whole
//! suite) exercised, and how (started, ran to success, failed, stopped, aborted, rejected
//! params). Plain data: the runner's events fill it (`runner/readers.rs`), `test` merges the
//! runs, prints the table and checks `coverage: all`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::ocs::AgentApi;

/// One way an operation was exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exercise {
    /// A `start` was accepted.
    Started,
    /// A session of it ended in success.
    Succeeded,
    /// A session of it ended in failure.
    Failed,
    /// A `stop` was accepted.
    Stopped,
    /// An `abort` was accepted.
    Aborted,
    /// A `start` was refused without a session (its params were checked).
    Rejected,
}

impl Exercise {
    fn as_str(self) -> &'static str {
        match self {
            Exercise::Started => "started",
            Exercise::Succeeded => "succeeded",
            Exercise::Failed => "failed",
            Exercise::Stopped => "stopped",
            Exercise::Aborted => "aborted",
            Exercise::Rejected => "rejected",
        }
    }
}

/// One operation of an agent class and how it was exercised (empty: never).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpCoverage {
    /// `task` or `process`.
    pub kind: &'static str,
    /// How it was exercised.
    pub how: BTreeSet<Exercise>,
}

/// Coverage per agent class, per operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Coverage {
    classes: BTreeMap<String, BTreeMap<String, OpCoverage>>,
    #[serde(skip)]
    instances: BTreeMap<String, String>,
}

impl Coverage {
    /// Agent `instance` of class `class` has the operations of `api`.
    pub fn describe(&mut self, instance: &str, class: &str, api: &AgentApi) {
        self.instances
            .insert(instance.to_string(), class.to_string());
        let ops = self.classes.entry(class.to_string()).or_default();
        for (op, kind) in api
            .tasks
            .iter()
            .map(|o| (o, "task"))
            .chain(api.processes.iter().map(|o| (o, "process")))
        {
            ops.entry(op.name.clone()).or_default().kind = kind;
        }
    }

    /// `instance.op` was exercised `how` (ignored for agents or operations not described).
    pub fn record(&mut self, instance: &str, op: &str, how: Exercise) {
        let Some(class) = self.instances.get(instance) else {
            return;
        };
        if let Some(c) = self.classes.get_mut(class).and_then(|ops| ops.get_mut(op)) {
            c.how.insert(how);
        }
    }

    /// Add another run's coverage to this one.
    pub fn merge(&mut self, other: &Coverage) {
        for (class, ops) in &other.classes {
            let mine = self.classes.entry(class.clone()).or_default();
            for (op, c) in ops {
                let m = mine.entry(op.clone()).or_default();
                m.kind = c.kind;
                m.how.extend(c.how.iter().copied());
            }
        }
    }

    /// The operations never exercised, as `Class.op`.
    pub fn missing(&self) -> Vec<String> {
        self.classes
            .iter()
            .flat_map(|(class, ops)| {
                ops.iter()
                    .filter(|(_, c)| c.how.is_empty())
                    .map(move |(op, _)| format!("{class}.{op}"))
            })
            .collect()
    }

    /// Whether no agent was described.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// `(Class.op, "started,succeeded")` per operation, for JUnit properties.
    pub fn properties(&self) -> Vec<(String, String)> {
        self.rows()
            .map(|(class, op, c)| (format!("coverage.{class}.{op}"), how(c)))
            .collect()
    }

    fn rows(&self) -> impl Iterator<Item = (&String, &String, &OpCoverage)> {
        self.classes
            .iter()
            .flat_map(|(class, ops)| ops.iter().map(move |(op, c)| (class, op, c)))
    }
}

fn how(c: &OpCoverage) -> String {
    if c.how.is_empty() {
        return "NEVER".into();
    }
    c.how
        .iter()
        .map(|h| h.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Coverage {
    /// One block per agent class: its exercised count, then one line per operation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .classes
            .values()
            .flat_map(|ops| ops.keys())
            .map(|op| op.len())
            .max()
            .unwrap_or(0);
        for (class, ops) in &self.classes {
            let done = ops.values().filter(|c| !c.how.is_empty()).count();
            writeln!(f, "{class}: {done}/{} operations exercised", ops.len())?;
            for (op, c) in ops {
                writeln!(f, "  {op:<width$}  {:<7}  {}", c.kind, how(c))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> AgentApi {
        let body: serde_json::Value =
            serde_json::from_str(include_str!("ocs/testdata/get_api_barebones.json"))
                .expect("json");
        AgentApi::from_value(body["args"][0].clone()).expect("an api")
    }

    #[test]
    fn records_per_class_merges_and_names_what_is_missing() {
        let mut a = Coverage::default();
        a.describe("fake1", "BarebonesAgent", &api());
        a.record("fake1", "print", Exercise::Started);
        a.record("fake1", "print", Exercise::Succeeded);
        a.record("nobody", "count", Exercise::Started);
        assert_eq!(a.missing(), vec!["BarebonesAgent.count".to_string()]);
        let mut b = Coverage::default();
        b.describe("fake2", "BarebonesAgent", &api());
        b.record("fake2", "count", Exercise::Stopped);
        a.merge(&b);
        assert!(a.missing().is_empty());
        assert_eq!(
            a.to_string(),
            "BarebonesAgent: 2/2 operations exercised\n  count  process  stopped\n  \
             print  task     started,succeeded\n"
        );
        assert_eq!(
            a.properties()[0],
            ("coverage.BarebonesAgent.count".into(), "stopped".into())
        );
    }
}
