//! The `steps:` list: what makes a step (one kind key from the [`StepKeyword`] table, only the
//! keys of that kind) and what a step may name (an agent's `instance.op`, a container). Each
//! kind's own keys are decoded in [`super::step_kinds`].

use super::super::error::{closest, list_names};
use super::super::keyword::StepKeyword;
use super::super::node::{Cx, Fields, Key, Kind, Node, Pos};
use super::super::{Budget, Step, StepKind};
use super::values::parse_duration;
use super::{captures, step_kinds, Names};

/// A step being decoded: its keys, its kind and its target, for the kind's decoder.
pub(super) struct StepParts<'n, 'a> {
    /// The step's keys (already checked against its kind).
    pub fields: Fields<'n>,
    /// The kind key (`start`, `fault`, ...).
    pub kind_key: &'n Key,
    /// The kind.
    pub keyword: StepKeyword,
    /// The value of the kind key: the step's target.
    pub target: &'n Node,
    /// The stack's agents and ops.
    pub names: &'a Names,
}

impl StepParts<'_, '_> {
    /// The error for a required key `key` the step lacks (unless a misspelling of it was
    /// reported already).
    pub fn missing<T>(&self, cx: &mut Cx, key: &str, example: &str) -> Option<T> {
        if self.fields.misspelt(key) {
            return None;
        }
        let why = match (self.keyword, key) {
            (StepKeyword::Wait, "timeout") => "; OCS would otherwise wait forever",
            (StepKeyword::Until, "timeout") => "; it says how long to keep polling",
            (StepKeyword::Until, "expect") => "; it is the condition to poll for",
            _ => "",
        };
        let kind = self.keyword;
        let e = cx
            .err(
                self.kind_key.pos,
                format!("this `{kind}` step has no `{key}`"),
                format!("`{key}` is required here"),
            )
            .help(format!("add `{example}` to the step{why}"));
        cx.fail(e)
    }
}

/// Every key some step accepts (kind keys excepted).
fn any_step_key(key: &str) -> bool {
    StepKeyword::from_keyword(key).is_none() && StepKeyword::all().any(|k| k.keys().contains(&key))
}

/// Record the ops each instance is known to have, for "e.g. barebones1.count" hints.
fn collect_ops(items: &[Node], names: &mut Names) {
    let mut add = |inst: &str, op: &str| {
        let ops = names.ops.entry(inst.to_string()).or_default();
        if !op.is_empty() && !ops.iter().any(|o| o == op) {
            ops.push(op.to_string());
        }
    };
    for item in items {
        let Kind::Map(entries) = &item.kind else {
            continue;
        };
        for (k, v) in entries {
            if StepKeyword::from_keyword(&k.name).is_some() {
                if let Some((inst, op)) = v.scalar_text().as_deref().and_then(|t| t.split_once('.'))
                {
                    add(inst, op);
                }
            }
            if k.name != "expect" {
                continue;
            }
            let api = entries
                .iter()
                .find(|(k, _)| k.name == "api")
                .and_then(|(_, v)| v.scalar_text());
            let (Some(inst), Kind::Map(ex)) = (api, &v.kind) else {
                continue;
            };
            for (ek, ev) in ex {
                if let ("tasks" | "processes", Kind::Seq(ops)) = (ek.name.as_str(), &ev.kind) {
                    for op in ops.iter().filter_map(Node::scalar_text) {
                        add(&inst, &op);
                    }
                }
            }
        }
    }
}

pub(super) fn decode_steps(cx: &mut Cx, node: &Node, names: &mut Names) -> Option<Vec<Step>> {
    let Kind::Seq(items) = &node.kind else {
        return cx.type_error(
            node,
            "`steps`",
            "a list",
            "steps: [{start: barebones1.count}]",
        );
    };
    collect_ops(items, names);
    let mut out = Vec::new();
    let mut ok = true;
    let mut captured = std::collections::BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        captures::check_references(cx, item, &captured);
        match decode_step(cx, item, i + 1, names) {
            Some(s) => {
                captured.extend(s.captures.iter().map(|c| c.name.clone()));
                out.push(s);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn decode_step(cx: &mut Cx, node: &Node, index: usize, names: &Names) -> Option<Step> {
    let Kind::Map(entries) = &node.kind else {
        if let Some(text) = node.scalar_text() {
            if text.trim_start().starts_with("sleep") {
                return sleep_error(cx, node.pos);
            }
        }
        return cx.type_error(
            node,
            &format!("Step {index}"),
            "a mapping",
            "- start: barebones1.count",
        );
    };
    if let Some((k, _)) = entries.iter().find(|(k, _)| k.name == "sleep") {
        return sleep_error(cx, k.pos);
    }
    let (kind_key, keyword, target) = step_kind(cx, node, entries, index)?;
    let (ok, suggested) = check_step_keys(cx, entries, keyword);
    let fields = Fields::unchecked(node, entries, suggested);
    let name = match fields.get("name") {
        Some(v) => Some(cx.string(v, "`name`", "name: the count runs")?),
        None => None,
    };
    let line = entries.first().map_or(node.pos.line, |(k, _)| k.pos.line);
    let parts = StepParts {
        fields,
        kind_key,
        keyword,
        target,
        names,
    };
    let expect = parts.fields.key("expect").map(|k| k.pos.into());
    let captures = match parts.fields.get("capture") {
        Some(v) => captures::decode_captures(cx, v, keyword)?,
        None => Vec::new(),
    };
    let redact = match parts.fields.get("redact") {
        Some(v) => captures::decode_redactions(cx, v, keyword)?,
        None => Vec::new(),
    };
    let password = match parts.fields.get("password") {
        Some(v) => Some(cx.string(v, "`password`", "password: ${FAKE_PASSWORD}")?),
        None => None,
    };
    let within = match parts.fields.get("within") {
        Some(v) => Some(Budget {
            limit: parse_duration(cx, v, "`within`", false)?,
            at: v.pos.into(),
        }),
        None => None,
    };
    let step_kind = decode_kind(cx, &parts)?;
    if !ok {
        return None;
    }
    if let Some(budget) = within {
        within_applies(cx, &parts, &step_kind, budget)?;
    }
    Some(Step {
        index,
        line,
        name,
        kind: step_kind,
        target: target.pos.into(),
        expect,
        captures,
        password,
        within,
        redact,
    })
}

/// A step's `within` must be able to fail the step by itself: shorter than the step's own
/// `timeout` (which fails it first otherwise), and not given twice on an `exec` step.
fn within_applies(cx: &mut Cx, p: &StepParts, kind: &StepKind, budget: Budget) -> Option<()> {
    let shown = crate::wait::fmt_duration;
    if let StepKind::Exec(e) = kind {
        if e.expect.within.is_some() {
            let e = cx
                .err(
                    budget.at.into(),
                    "this `exec` step has `within` twice: here and in its `expect`",
                    "second budget",
                )
                .help(
                    "`expect: {within}` bounds the command alone, a step's `within` the whole \
                     step (the command and its checks); keep one",
                );
            return cx.fail(e);
        }
    }
    let timeout = match kind {
        StepKind::Api {
            timeout: Some(t), ..
        }
        | StepKind::Op {
            timeout: Some(t), ..
        }
        | StepKind::Until { timeout: t, .. }
        | StepKind::Exits { timeout: t, .. } => Some(*t),
        StepKind::Fetch(f) if !f.timeout.is_zero() => Some(f.timeout),
        StepKind::Logs(l) if p.fields.get("timeout").is_some() => Some(l.timeout),
        _ => None,
    };
    let Some(timeout) = timeout.filter(|t| budget.limit >= *t) else {
        return Some(());
    };
    let e = cx
        .err(
            budget.at.into(),
            format!(
                "`within: {}` is not shorter than the step's `timeout: {}`",
                shown(budget.limit),
                shown(timeout)
            ),
            "this budget can never fail the step",
        )
        .help(
            "the timeout fails the step first; make `within` shorter than the timeout (how \
             long the step should take), or remove it",
        );
    cx.fail(e)
}

/// Hand the step to its kind's decoder.
fn decode_kind(cx: &mut Cx, p: &StepParts) -> Option<StepKind> {
    match p.keyword {
        StepKeyword::Api => step_kinds::api(cx, p),
        StepKeyword::Logs => step_kinds::logs(cx, p).map(StepKind::Logs),
        StepKeyword::Fault => step_kinds::fault(cx, p).map(StepKind::Fault),
        StepKeyword::Exits => step_kinds::exits(cx, p),
        StepKeyword::Fetch => step_kinds::fetch(cx, p),
        StepKeyword::Call => step_kinds::call(cx, p),
        StepKeyword::Until => step_kinds::until(cx, p),
        StepKeyword::Exec => super::exec::exec(cx, p).map(StepKind::Exec),
        StepKeyword::Feed => super::feed::feed(cx, p).map(StepKind::Feed),
        StepKeyword::Device => super::device::device(cx, p).map(StepKind::Device),
        StepKeyword::Start
        | StepKeyword::Status
        | StepKeyword::Wait
        | StepKeyword::Stop
        | StepKeyword::Abort => step_kinds::op(cx, p),
    }
}

/// The step's one kind key, its kind and its target; an error if it has none or several.
fn step_kind<'n>(
    cx: &mut Cx,
    node: &Node,
    entries: &'n [(Key, Node)],
    index: usize,
) -> Option<(&'n Key, StepKeyword, &'n Node)> {
    let mut kinds = entries
        .iter()
        .filter_map(|(k, v)| StepKeyword::from_keyword(&k.name).map(|kw| (k, kw, v)));
    match (kinds.next(), kinds.next()) {
        (None, _) => no_kind(cx, node, entries, index),
        (Some(one), None) => Some(one),
        (Some((first, _, _)), Some((second, _, _))) => {
            let e = cx
                .err(
                    second.pos,
                    format!(
                        "step {index} has two kinds: `{}` (line {}) and `{}`",
                        first.name, first.pos.line, second.name
                    ),
                    "second kind",
                )
                .help("a step does one thing; split this into two steps, each its own `- ` item");
            cx.fail(e)
        }
    }
}

/// The error for a step without a kind key: an unknown kind, or none at all.
fn no_kind<T>(cx: &mut Cx, node: &Node, entries: &[(Key, Node)], index: usize) -> Option<T> {
    let kinds = StepKeyword::names();
    let stray = entries.iter().find(|(k, _)| !any_step_key(&k.name));
    let e = match stray {
        Some((k, _)) => {
            let msg = format!("unknown step kind `{}`", k.name);
            match closest(&k.name, kinds.iter().copied()) {
                Some(s) => cx
                    .err(k.pos, msg, format!("did you mean `{s}`?"))
                    .note(format!("the step kinds are {}", list_names(&kinds))),
                None => cx.err(k.pos, msg, "not a step kind").help(format!(
                    "a step starts with its kind, one of {}",
                    list_names(&kinds)
                )),
            }
        }
        None => {
            let pos = entries.first().map_or(node.pos, |(k, _)| k.pos);
            cx.err(
                pos,
                format!("step {index} has no kind"),
                "what does this step do?",
            )
            .help(format!(
                "start the step with one of {}, e.g. `- status: barebones1.count`",
                list_names(&kinds)
            ))
        }
    };
    cx.fail(e)
}

/// Report every key a `keyword` step does not take; whether there were none, and the keys
/// suggested for misspelt ones.
fn check_step_keys(
    cx: &mut Cx,
    entries: &[(Key, Node)],
    keyword: StepKeyword,
) -> (bool, Vec<&'static str>) {
    let allowed = keyword.keys();
    let mut ok = true;
    let mut suggested = Vec::new();
    for (k, _) in entries {
        if allowed.contains(&k.name.as_str()) {
            continue;
        }
        ok = false;
        if keyword == StepKeyword::Feed && k.name == "within" {
            let e = cx
                .err(
                    k.pos,
                    "a `feed` step's `within` goes in its `feed` mapping",
                    "not a key of the step",
                )
                .help(
                    "write `feed: {agent: fake1, feed: false_temperatures, within: 10s}`: it is \
                     how long the step waits for its messages, so it bounds the whole step",
                );
            cx.errors.push(e);
            continue;
        }
        if let Some(s) = closest(&k.name, allowed.iter().copied()) {
            suggested.push(s);
        }
        let users: Vec<&str> = StepKeyword::all()
            .filter(|kw| kw.keys().contains(&k.name.as_str()))
            .map(StepKeyword::as_str)
            .collect();
        let e = if !users.is_empty() && StepKeyword::from_keyword(&k.name).is_none() {
            cx.err(
                k.pos,
                format!("`{}` does not apply to a `{keyword}` step", k.name),
                format!("only for {}", list_names(&users)),
            )
            .help(format!(
                "the keys of a `{keyword}` step are {}",
                list_names(allowed)
            ))
        } else {
            cx.unknown_key(k, &format!("a `{keyword}` step"), allowed)
        };
        cx.errors.push(e);
    }
    (ok, suggested)
}

fn sleep_error<T>(cx: &mut Cx, pos: Pos) -> Option<T> {
    let e = cx
        .err(pos, "there is no `sleep` step", "sleeping is not offered")
        .help(
            "say what you are waiting for instead: `until: <instance>.<op>` with a `timeout` and \
             an `expect` polls until the condition holds (e.g. `expect: {session: {data: \
             {value: {\">=\": 2}}}}`), `wait: <instance>.<op>` with a `timeout` waits for an \
             operation to finish, and `logs` checks wait for their lines",
        );
    cx.fail(e)
}

/// Decode a step target: `instance` or `instance.op` (when `need_op`).
pub(super) fn op_target(
    cx: &mut Cx,
    node: &Node,
    kind: StepKeyword,
    names: &Names,
    need_op: bool,
) -> Option<(String, Option<String>)> {
    let t = cx.nonempty_string(node, &format!("the target of `{kind}`"), "barebones1.count")?;
    let (instance, op) = match t.split_once('.') {
        Some((i, o)) => (i.to_string(), Some(o.to_string())),
        None => (t.clone(), None),
    };
    let known = names.op_targets();
    // A target naming an agent whose (invalid) id was already reported gets no second error.
    if known.contains(&t) && t.contains('.') {
        return None;
    }
    if instance == "registry" && !names.registry && !known.contains(&instance) {
        let e = cx
            .err(
                node.pos,
                "the stack runs no registry (`registry: false` under `stack`)",
                "no registry",
            )
            .help("remove `registry: false` to run the registry agent, or drop this step");
        return cx.fail(e);
    }
    if !known.contains(&instance) {
        let mut e = cx.err(
            node.pos,
            format!("no agent `{instance}` in the stack"),
            match closest(&instance, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "unknown agent".into(),
            },
        );
        e = if known.is_empty() {
            e.help("the stack has no agents; add them under `stack.agents`")
        } else {
            e.note(format!("the stack's agents are {}", list_names(&known)))
        };
        return cx.fail(e);
    }
    let op = op_part(cx, node, kind, names, (&t, &instance, op), need_op)?;
    Some((instance, op))
}

/// The `.op` part of target `t` (of a known `instance`): required and valid when `need_op`,
/// absent otherwise.
fn op_part(
    cx: &mut Cx,
    node: &Node,
    kind: StepKeyword,
    names: &Names,
    (t, instance, op): (&str, &str, Option<String>),
    need_op: bool,
) -> Option<Option<String>> {
    let e = match (op, need_op) {
        (None, false) => return Some(None),
        (None, true) => {
            let until = if kind == StepKeyword::Until && names.registry {
                ", or `until: registry` to poll the registry"
            } else {
                ""
            };
            cx.err(
                node.pos,
                format!("`{kind}` needs an operation, but `{t}` names only an agent"),
                "expected instance.op",
            )
            .help(format!(
                "write instance.op, e.g. `{kind}: {}`{until}",
                names.example_op(instance)
            ))
        }
        (Some(op), false) => cx
            .err(
                node.pos,
                format!("`{kind}` takes an agent, not an operation (`{t}`)"),
                "expected an instance-id",
            )
            .help(format!(
                "write `{kind}: {instance}`{}",
                if kind == StepKeyword::Api {
                    format!(", and check the op with `expect: {{tasks: [{op}]}}` or `processes`")
                } else {
                    String::new()
                }
            )),
        (Some(op), true) if is_op_name(&op) => return Some(Some(op)),
        (Some(op), true) => cx
            .err(
                node.pos,
                format!("`{op}` is not an operation name"),
                "invalid operation",
            )
            .help(format!(
                "write instance.op with the task or process name, e.g. `{}`",
                names.example_op(instance)
            )),
    };
    cx.fail(e)
}

/// Whether `op` can name a task or process (a WAMP URI component).
fn is_op_name(op: &str) -> bool {
    !op.is_empty()
        && !op
            .chars()
            .any(|c| c.is_whitespace() || c == '.' || c == '#')
}

/// A container of the stack named by a step: `crossbar` or an agent's instance-id (or, for
/// `logs` and `exec`'s `in`, a service's name). `kind` is the key naming it (`logs`,
/// `exits`, `container`, `in`).
pub(super) fn container_target(
    cx: &mut Cx,
    target: &Node,
    kind: &str,
    names: &Names,
) -> Option<String> {
    let container = cx.nonempty_string(
        target,
        &format!("the target of `{kind}`"),
        &format!("{kind}: barebones1"),
    )?;
    let mut known: Vec<String> = vec![crate::plan::CROSSBAR.into()];
    known.extend(names.op_targets());
    // commands, log checks and faults reach service containers too
    if matches!(kind, "in" | "logs" | "container") {
        known.extend(names.services.iter().cloned());
    }
    if let Some(hm) = names.hosted.get(&container) {
        let e = cx
            .err(
                target.pos,
                format!(
                    "agent `{container}` has no container of its own: a HostManager runs it, as \
                     a process in the HostManager's container"
                ),
                "no container",
            )
            .help(match hm {
                Some(hm) => format!(
                    "name the HostManager's container, `{kind}: {hm}` (its own log holds what \
                     it reports of its agents), or remove the agent's `manage` to run it in a \
                     container of its own"
                ),
                None => "remove the agent's `manage` to run it in a container of its own".into(),
            });
        return cx.fail(e);
    }
    if known.contains(&container) {
        return Some(container);
    }
    let e = if let Some((inst, _)) = container
        .split_once('.')
        .filter(|(i, _)| known.iter().any(|k| k == i))
    {
        cx.err(
            target.pos,
            format!("`{kind}` takes a container, not an operation (`{container}`)"),
            "expected a container name",
        )
        .help(format!("write `{kind}: {inst}`"))
    } else {
        cx.err(
            target.pos,
            format!("no container `{container}` in the stack"),
            match closest(&container, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "unknown container".into(),
            },
        )
        .note(format!(
            "the containers are {} (an agent's instance-id, or `crossbar`{})",
            list_names(&known),
            if matches!(kind, "in" | "logs") {
                ", or a service's name"
            } else {
                ""
            }
        ))
    };
    cx.fail(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_names() {
        assert!(is_op_name("count"));
        assert!(is_op_name("acq_2"));
        assert!(!is_op_name(""));
        assert!(!is_op_name("a.b"));
        assert!(!is_op_name("a b"));
        assert!(!is_op_name("a#b"));
    }

    #[test]
    fn step_keys_outside_kinds() {
        assert!(any_step_key("name"));
        assert!(any_step_key("timeout"));
        assert!(any_step_key("allow"));
        assert!(!any_step_key("start"), "a kind key is not a plain step key");
        assert!(!any_step_key("sleep"));
    }
}
