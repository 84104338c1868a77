//! The top-level keys that ask something of the whole run rather than of one step:
//! `coverage:` (every operation of every agent exercised) and `log-policy:` (what in the
//! logs fails the run).

use super::super::node::{Cx, Fields, Kind, Node};
use super::super::RunChecks;
use crate::logpolicy::{LogPolicy, Strictness};

const LOG_POLICY_KEYS: &[&str] = &["strictness", "allow"];

/// The run-wide checks of the top-level mapping `f`.
pub(super) fn decode_checks(cx: &mut Cx, f: &Fields) -> Option<RunChecks> {
    let mut checks = RunChecks::default();
    if let Some(v) = f.get("coverage") {
        let s = cx.string(v, "`coverage`", "coverage: all")?;
        match s.as_str() {
            "all" => checks.coverage_all = Some(v.pos.into()),
            "none" => {}
            _ => {
                let e = cx
                    .err(
                        v.pos,
                        format!("unknown coverage `{s}`"),
                        "expected all or none",
                    )
                    .help(
                        "`coverage: all` fails the run when an operation of one of its agents \
                         was never started, stopped, aborted or refused; `none` (the default) \
                         only reports coverage",
                    );
                return cx.fail(e);
            }
        }
    }
    if let Some(v) = f.get("log-policy") {
        checks.log_policy = log_policy(cx, v)?;
        checks.log_policy_at = Some(v.pos.into());
    }
    Some(checks)
}

/// `log-policy: errors | warnings | off`, or `{strictness: ..., allow: [...]}`.
fn log_policy(cx: &mut Cx, v: &Node) -> Option<LogPolicy> {
    let mut policy = LogPolicy::default();
    let strictness = match &v.kind {
        Kind::Map(_) => {
            let f = cx.fields(
                v,
                "`log-policy`",
                LOG_POLICY_KEYS,
                "log-policy: {strictness: warnings, allow: [\"harmless text\"]}",
            )?;
            if let Some(a) = f.get("allow") {
                policy.allow = cx.strings(a, "`allow`", "allow: [\"harmless text\"]", true)?;
            }
            f.get("strictness")
        }
        _ => Some(v),
    };
    if let Some(s) = strictness {
        policy.strictness = self::strictness(cx, s)?;
    }
    Some(policy)
}

fn strictness(cx: &mut Cx, v: &Node) -> Option<Strictness> {
    let s = cx.string(v, "the log policy's strictness", "log-policy: warnings")?;
    if let Some(level) = Strictness::parse(&s) {
        return Some(level);
    }
    let e = cx
        .err(
            v.pos,
            format!("unknown log strictness `{s}`"),
            "expected errors, warnings or off",
        )
        .help(
            "`errors` (the default) fails the run on a traceback, an unhandled error, a crash \
             or an ERROR/CRITICAL line in any container's log; `warnings` also on warnings; \
             `off` checks nothing",
        );
    cx.fail(e)
}
