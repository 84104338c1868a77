//! Which password a step sends (its own `password`, else its agent's), and what the run must
//! treat as secret: every password written in the scenario, every password a step resolves,
//! and the values captured for use as one (redacted from the moment they are seen).

use std::collections::BTreeSet;

use crate::scenario::capture::{references, Bindings, ValuePath};
use crate::scenario::{Scenario, Step, StepKind, UntilTarget};

/// The agent a step's `.ops` calls go to.
fn agent_of(kind: &StepKind) -> Option<&str> {
    match kind {
        StepKind::Op { instance, .. } => Some(instance),
        StepKind::Until {
            target: UntilTarget::Op { instance, .. },
            ..
        } => Some(instance),
        StepKind::Until {
            target: UntilTarget::Registry,
            ..
        } => Some("registry"),
        _ => None,
    }
}

/// The password `step` sends with its `.ops` calls, resolved against `b`.
pub(super) fn password_for(scenario: &Scenario, step: &Step, b: &Bindings) -> Option<String> {
    match &step.password {
        Some(p) => Some(b.text(p)),
        None => agent_of(&step.kind).and_then(|a| scenario.passwords.get(a).cloned()),
    }
}

/// The credentials written in `step` (its `password`, a call's `password` kwarg), unresolved.
fn written(step: &Step) -> Vec<&str> {
    let mut out: Vec<&str> = step.password.iter().map(String::as_str).collect();
    if let StepKind::Call(c) = &step.kind {
        out.extend(c.kwargs.get("password").and_then(|v| v.as_str()));
    }
    out
}

/// The credentials `kind` (resolved) sends as a call's `password` kwarg.
pub(super) fn sent_in_kwargs(kind: &StepKind) -> Option<&str> {
    match kind {
        StepKind::Call(c) => c.kwargs.get("password").and_then(|v| v.as_str()),
        _ => None,
    }
}

/// Every password the scenario writes out (no `{{name}}` in it): secret from the start.
pub(super) fn written_secrets(scenario: &Scenario) -> Vec<String> {
    let mut out: Vec<String> = scenario.passwords.values().cloned().collect();
    for step in &scenario.steps {
        out.extend(
            written(step)
                .into_iter()
                .filter(|p| references(p).is_empty())
                .map(str::to_string),
        );
    }
    out
}

/// The capture names some step sends as (part of) a password.
pub(super) fn secret_names(scenario: &Scenario) -> BTreeSet<String> {
    scenario
        .steps
        .iter()
        .flat_map(written)
        .flat_map(references)
        .map(|r| r.name)
        .collect()
}

/// Where in what `step` gets back its secret captures are.
pub(super) fn secret_paths(step: &Step, names: &BTreeSet<String>) -> Vec<ValuePath> {
    step.captures
        .iter()
        .filter(|c| names.contains(&c.name))
        .filter_map(|c| c.from.path().cloned())
        .collect()
}
