//! Credentials never leave a run in clear: [`Secrets`] holds every password the run sends (a
//! step's or an agent's `password`, a call's `password` kwarg, and values captured for use as
//! one) and replaces them with `<redacted>` in every event before any reader sees it, so the
//! timeline, the transcript, JSON lines, JUnit and failure messages never hold them.
//!
//! A string equal to a secret is always replaced; a secret of at least [`MIN_INSIDE`]
//! characters is also replaced inside longer texts (a shorter one, like OCS's test password
//! `a`, would otherwise blank out every word containing that letter).
//!
//! This module knows texts and JSON values; how each event is redacted (which of its parts
//! are texts and values) is beside the events, in `event`.

use serde_json::Value;

/// What a secret becomes.
pub(crate) const REDACTED: &str = "<redacted>";

/// Secrets shorter than this are only replaced where they are a whole value.
pub(crate) const MIN_INSIDE: usize = 4;

/// The run's secrets, longest first (so a secret containing another is replaced whole).
#[derive(Debug, Clone, Default)]
pub(crate) struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// Remember `secret` (empty ones are no secret: OCS sends no empty password).
    pub(crate) fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.values.iter().any(|v| v == secret) {
            self.values.push(secret.to_string());
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// Whether there is nothing to redact.
    /// The secrets themselves (longest first).
    pub(crate) fn values(&self) -> &[String] {
        &self.values
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with the secrets replaced.
    pub(crate) fn text(&self, text: &str) -> String {
        if self.values.iter().any(|v| v == text) {
            return REDACTED.to_string();
        }
        let mut out = text.to_string();
        for v in self
            .values
            .iter()
            .filter(|v| v.chars().count() >= MIN_INSIDE)
        {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }

    /// `v` with the secrets replaced in every string (keys too).
    pub(crate) fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.value(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_whole_and_long_ones_inside_texts() {
        let mut s = Secrets::default();
        assert!(s.is_empty());
        s.add("");
        assert!(s.is_empty(), "an empty password is no secret");
        s.add("a");
        s.add("hunter2-xyz");
        assert_eq!(s.text("a"), REDACTED);
        assert_eq!(
            s.text("a cat"),
            "a cat",
            "short secrets only as whole values"
        );
        assert_eq!(
            s.text("password hunter2-xyz rejected"),
            "password <redacted> rejected"
        );
        assert_eq!(
            s.value(&json!({"password": "hunter2-xyz", "n": 1, "l": ["a", "b"]})),
            json!({"password": REDACTED, "n": 1, "l": [REDACTED, "b"]})
        );
    }
}
