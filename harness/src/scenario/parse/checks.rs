//! The top-level keys that ask something of the whole run rather than of one step:
//! `coverage:` (every operation of every agent exercised), `log-policy:` (what in the
//! logs fails the run) and `shutdown:` (how the agents stop at the end, and that they do).

use super::super::node::{Cx, Fields, Kind, Node};
use super::super::{RunChecks, Shutdown};
use super::values::parse_duration;
use crate::logpolicy::{LogPolicy, Strictness};

const LOG_POLICY_KEYS: &[&str] = &["strictness", "allow"];
const SHUTDOWN_KEYS: &[&str] = &["within", "signal"];
const SHUTDOWN_EXAMPLE: &str = "shutdown: {within: 10s, signal: SIGINT}";

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
    if let Some(v) = f.get("shutdown") {
        checks.shutdown = shutdown(cx, v)?;
    }
    Some(checks)
}

/// `code-coverage: {source: [package, ...]}`: Python code coverage of these packages in every
/// agent's container.
pub(super) fn code_coverage(cx: &mut Cx, v: &Node) -> Option<crate::codecov::CodeCoverage> {
    let example = "code-coverage: {source: [socs]}";
    let f = cx.fields(v, "`code-coverage`", &["source", "omit"], example)?;
    let Some(s) = f.get("source") else {
        let e = cx
            .err(
                f.pos(),
                "`code-coverage` has no `source`",
                "`source` is required",
            )
            .help(format!(
                "name the Python packages to measure (importable names), e.g. `{example}`"
            ));
        return cx.fail(e);
    };
    let source = cx.strings(s, "`source`", "source: [socs]", false)?;
    let bad = source.iter().find(|p| {
        p.is_empty()
            || !p
                .split('.')
                .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    });
    if source.is_empty() || bad.is_some() {
        let e = cx
            .err(
                s.pos,
                match bad {
                    Some(b) => format!("`{b}` is not a Python package name"),
                    None => "`source` is empty".into(),
                },
                "expected importable package names",
            )
            .help(format!("e.g. `{example}`"));
        return cx.fail(e);
    }
    let omit = match f.get("omit") {
        Some(o) => cx.strings(o, "`omit`", "omit: [\"*/_version.py\"]", false)?,
        None => Vec::new(),
    };
    Some(crate::codecov::CodeCoverage { source, omit })
}

/// `shutdown: graceful | kill`, or `{within: DURATION, signal: SIGNAL}` (graceful).
fn shutdown(cx: &mut Cx, v: &Node) -> Option<Shutdown> {
    let mut out = Shutdown {
        at: Some(v.pos.into()),
        ..Shutdown::default()
    };
    if let Kind::Map(_) = &v.kind {
        let f = cx.fields(v, "`shutdown`", SHUTDOWN_KEYS, SHUTDOWN_EXAMPLE)?;
        if let Some(w) = f.get("within") {
            out.within = parse_duration(cx, w, "`within`", false)?;
        }
        if let Some(s) = f.get("signal") {
            let name = cx.nonempty_string(s, "`signal`", "signal: SIGINT")?;
            out.signal = Some(super::step_kinds::fault_signal(cx, s.pos, &name)?);
        }
        return Some(out);
    }
    let s = cx.string(v, "`shutdown`", SHUTDOWN_EXAMPLE)?;
    match s.as_str() {
        "graceful" => Some(out),
        "kill" => Some(Shutdown {
            graceful: false,
            ..out
        }),
        _ => {
            let e = cx
                .err(
                    v.pos,
                    format!("unknown shutdown `{s}`"),
                    "expected graceful, kill or a mapping",
                )
                .help(
                    "`graceful` (the default) stops every agent at the end as `docker stop` \
                     does and fails the run when one does not exit with 0 within 10 s; \
                     `{within: 20s, signal: SIGINT}` changes the budget or the signal; `kill` \
                     removes the containers by force and checks nothing",
                );
            cx.fail(e)
        }
    }
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
