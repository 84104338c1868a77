//! Decoding an `exec` step: `exec: {in | image, cmd, user, env, timeout}` and its
//! `expect: {exit, stdout, stderr, within}`.

use super::super::exec::{ExecExpect, ExecStep, ExecTarget, DEFAULT_EXEC_TIMEOUT};
use super::super::matcher::{parse_matcher, Matcher};
use super::super::node::{Cx, Kind, Node};
use super::expect::string_matcher;
use super::steps::{container_target, StepParts};
use super::values::{parse_duration, parse_env_map, parse_image};

const EXEC_KEYS: &[&str] = &["in", "image", "cmd", "user", "env", "timeout"];
const EXPECT_KEYS: &[&str] = &["exit", "stdout", "stderr", "within"];
const EXAMPLE: &str = "exec: {in: fake1, cmd: [ocsbow, status]}";

/// `exec: {in: <container> | image: <image>, cmd: [..] | "shell command", user, env, timeout}`.
pub(super) fn exec(cx: &mut Cx, p: &StepParts) -> Option<ExecStep> {
    let f = cx.fields(p.target, "`exec`", EXEC_KEYS, EXAMPLE)?;
    let target = match (f.key("in"), f.key("image")) {
        (Some(i), Some(m)) => {
            let second = if (m.pos.line, m.pos.col) > (i.pos.line, i.pos.col) {
                m
            } else {
                i
            };
            let e = cx
                .err(
                    second.pos,
                    "this `exec` step has both `in` and `image`",
                    "give only one of these",
                )
                .help(
                    "`in: <container>` runs the command in a running container of the stack; \
                     `image: <image>` runs it in a new container from that image, on the \
                     stack's network, removed afterwards",
                );
            cx.fail(e)
        }
        (Some(_), None) => {
            let v = f.get("in").expect("present");
            container_target(cx, v, "in", p.names).map(ExecTarget::In)
        }
        (None, Some(_)) => {
            let v = f.get("image").expect("present");
            parse_image(cx, v, "`image`").map(|image| ExecTarget::Image {
                image,
                at: v.pos.into(),
            })
        }
        (None, None) if f.misspelt("in") || f.misspelt("image") => None,
        (None, None) => {
            let e = cx
                .err(
                    p.kind_key.pos,
                    "this `exec` step has neither `in` nor `image`",
                    "where does the command run?",
                )
                .help(format!(
                    "add `in: <container>` (a running container of the stack, e.g. `{EXAMPLE}`) \
                     or `image: <image>` (a new container from that image, on the stack's \
                     network, e.g. `exec: {{image: simonsobs/ocs:latest, cmd: [python3, -c, \
                     'print(1)']}}`)"
                ));
            cx.fail(e)
        }
    };
    let cmd = match f.get("cmd") {
        Some(v) => command(cx, v),
        None => missing(cx, p, "cmd", "cmd: [ocsbow, status]"),
    };
    let user = match f.get("user") {
        Some(v) => Some(cx.nonempty_string(v, "`user`", "user: ocs")?),
        None => None,
    };
    let env = match f.get("env") {
        Some(v) => parse_env_map(cx, v, "`env`", true)?,
        None => Default::default(),
    };
    let timeout = match f.get("timeout") {
        Some(v) => parse_duration(cx, v, "`timeout`", false)?,
        None => DEFAULT_EXEC_TIMEOUT,
    };
    let expect = match p.fields.get("expect") {
        Some(v) => exec_expect(cx, v)?,
        None => ExecExpect::default(),
    };
    Some(ExecStep {
        target: target?,
        cmd: cmd?,
        user,
        env,
        timeout,
        expect,
    })
}

/// The error for a required key of the `exec` mapping.
fn missing<T>(cx: &mut Cx, p: &StepParts, key: &str, example: &str) -> Option<T> {
    let e = cx
        .err(
            p.kind_key.pos,
            format!("this `exec` step has no `{key}`"),
            format!("`{key}` is required here"),
        )
        .help(format!(
            "add `{example}` to the `exec` mapping, e.g. `{EXAMPLE}`"
        ));
    cx.fail(e)
}

/// `cmd`: a list of arguments, or a string run by `/bin/sh -c`.
fn command(cx: &mut Cx, v: &Node) -> Option<Vec<String>> {
    let example = "cmd: [python3, -c, 'print(1)']";
    let cmd = match &v.kind {
        Kind::Seq(_) => cx.strings(v, "`cmd`", example, false)?,
        _ => {
            let script = cx.nonempty_string(v, "`cmd`", example)?;
            vec!["/bin/sh".into(), "-c".into(), script]
        }
    };
    if cmd.first().is_none_or(|c| c.trim().is_empty()) {
        let e = cx
            .err(v.pos, "`cmd` names no program", "empty command")
            .help(format!(
                "give the program and its arguments, e.g. `{example}`, or a shell command as a \
                 string"
            ));
        return cx.fail(e);
    }
    Some(cmd)
}

/// `expect: {exit, stdout, stderr, within}`.
fn exec_expect(cx: &mut Cx, node: &Node) -> Option<ExecExpect> {
    let f = cx.fields(
        node,
        "an `expect` of `exec`",
        EXPECT_KEYS,
        "expect: {exit: 0, stdout: {contains: ok}}",
    )?;
    let mut out = ExecExpect::default();
    let mut ok = true;
    if let Some(v) = f.get("exit") {
        out.exit = exit_code(cx, v)?;
    }
    for (key, slot) in [("stdout", &mut out.stdout), ("stderr", &mut out.stderr)] {
        if let Some(v) = f.get(key) {
            let example = format!("{key}: {{contains: ok}}");
            match string_matcher(cx, v, &format!("`{key}`"), &example) {
                Ok(m) => *slot = Some(m),
                Err(true) => ok = false,
                Err(false) => return None,
            }
        }
    }
    if let Some(v) = f.get("within") {
        out.within = Some(parse_duration(cx, v, "`within`", false)?);
    }
    ok.then_some(out)
}

/// `exit`: a whole number, or matcher operators (`{"!=": 0}`).
fn exit_code(cx: &mut Cx, v: &Node) -> Option<Matcher> {
    match &v.kind {
        Kind::Num(n) if n.as_i64().is_some() => Some(Matcher::Equals(v.to_json())),
        Kind::Map(_) => match parse_matcher(cx, v)? {
            m @ Matcher::Ops(_) => Some(m),
            _ => cx.type_error(
                v,
                "`exit`",
                "a whole number or matcher operators",
                "exit: {\"!=\": 0}",
            ),
        },
        _ => cx.type_error(
            v,
            "`exit`",
            "a whole number or matcher operators",
            "exit: 0",
        ),
    }
}
