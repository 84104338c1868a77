//! The `exec` step as a scenario writes it: a command run in a container of the stack, and
//! what its exit code, output and duration must be. Pure: the runner runs the command (through
//! the runtime) and hands the result to [`ExecExpect::check`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::matcher::{Matcher, Mismatch};
use crate::overrides::ImageRef;

/// How long an `exec` command may run when the step gives no `timeout`.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// Where an `exec` command runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecTarget {
    /// `in`: a running container of the stack (`crossbar`, an instance-id, a service's name).
    In(String),
    /// `image`: a new container from this image (image overrides apply), on the stack's
    /// network, removed once the command ends.
    Image {
        /// The image as written.
        image: ImageRef,
        /// Where it is written (an error about the image points there).
        at: super::SourcePos,
    },
}

impl ExecTarget {
    /// The container of the stack the command runs in (`None` for a new one).
    pub fn container(&self) -> Option<&str> {
        match self {
            ExecTarget::In(c) => Some(c),
            ExecTarget::Image { .. } => None,
        }
    }
}

/// `exec: {in: <container> | image: <image>, cmd: .., user, env, timeout}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecStep {
    /// Where it runs.
    pub target: ExecTarget,
    /// The command line (a string command is `["/bin/sh", "-c", <string>]`).
    pub cmd: Vec<String>,
    /// `user`: who runs it (`name`, `uid`, `uid:gid`); the container's user by default.
    pub user: Option<String>,
    /// `env`: extra environment variables.
    pub env: BTreeMap<String, String>,
    /// How long the command may run before the step fails.
    pub timeout: Duration,
    /// What the result must be.
    pub expect: ExecExpect,
}

/// The `expect:` of an `exec` step.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecExpect {
    /// `exit`: the exit code (default 0).
    pub exit: Matcher,
    /// `stdout`: the standard output, final newline removed.
    pub stdout: Option<Matcher>,
    /// `stderr`: the standard error, final newline removed.
    pub stderr: Option<Matcher>,
    /// `within`: the command finished within this long.
    pub within: Option<Duration>,
}

impl Default for ExecExpect {
    fn default() -> Self {
        Self {
            exit: Matcher::Equals(json!(0)),
            stdout: None,
            stderr: None,
            within: None,
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// Its exit code.
    pub exit: i64,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// How long it ran.
    pub duration: Duration,
}

/// `text` without its final line break (what `stdout` / `stderr` matchers see).
pub fn trim_final_newline(text: &str) -> &str {
    let t = text.strip_suffix('\n').unwrap_or(text);
    t.strip_suffix('\r').unwrap_or(t)
}

impl ExecExpect {
    /// Everything about `r` that does not meet the expectation.
    pub fn check(&self, r: &ExecResult) -> Vec<Mismatch> {
        let mut out = Vec::new();
        if let Err(m) = self.exit.matches(Some(&json!(r.exit))) {
            out.push(m.under("exit"));
        }
        for (name, matcher, text) in [
            ("stdout", &self.stdout, &r.stdout),
            ("stderr", &self.stderr, &r.stderr),
        ] {
            if let Some(m) = matcher {
                if let Err(e) = m.matches_str(trim_final_newline(text)) {
                    out.push(e.under(name));
                }
            }
        }
        if let Some(within) = self.within.filter(|w| r.duration > *w) {
            out.push(Mismatch::new(
                "within",
                format!(
                    "expected the command to finish within {}, it took {}",
                    crate::wait::fmt_duration(within),
                    crate::wait::fmt_duration(r.duration)
                ),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::matcher::{MatchOp, Pattern};

    fn result(exit: i64, stdout: &str) -> ExecResult {
        ExecResult {
            exit,
            stdout: stdout.into(),
            stderr: String::new(),
            duration: Duration::from_millis(300),
        }
    }

    #[test]
    fn default_expects_exit_zero() {
        let e = ExecExpect::default();
        assert!(e.check(&result(0, "x")).is_empty());
        let m = e.check(&result(2, "x"));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].path, "exit");
    }

    #[test]
    fn output_is_matched_without_its_final_newline() {
        let e = ExecExpect {
            stdout: Some(Matcher::Equals(json!("ok"))),
            stderr: Some(Matcher::Ops(vec![MatchOp::Regex(
                Pattern::new("^$").unwrap(),
            )])),
            ..ExecExpect::default()
        };
        assert!(e.check(&result(0, "ok\n")).is_empty());
        assert_eq!(e.check(&result(0, "ok\nmore\n"))[0].path, "stdout");
    }

    #[test]
    fn within_is_an_upper_bound() {
        let e = ExecExpect {
            within: Some(Duration::from_millis(100)),
            ..ExecExpect::default()
        };
        let m = e.check(&result(0, ""));
        assert_eq!(m.len(), 1);
        assert!(m[0].detail.contains("within 100ms"), "{}", m[0].detail);
    }
}
