//! `feed: {agent, feed, within}` and its `expect: {count, blocks, fields, timestamps}`.

use super::super::error::{closest, list_names};
use super::super::feed::{FeedCheck, DEFAULT_FEED_WITHIN};
use super::super::matcher::{parse_matcher, type_matcher, Matcher};
use super::super::node::{Cx, Fields, Kind, Node};
use super::step_kinds::log_window;
use super::steps::StepParts;
use super::values::parse_duration;
use super::Names;

const TARGET_KEYS: &[&str] = &["agent", "feed", "within"];
const EXPECT_KEYS: &[&str] = &["count", "blocks", "fields", "timestamps"];
const EXAMPLE: &str = "feed: {agent: fake1, feed: false_temperatures, within: 10s}";

/// A `feed` step.
pub(super) fn feed(cx: &mut Cx, p: &StepParts) -> Option<FeedCheck> {
    let t = cx.fields(p.target, "the target of `feed`", TARGET_KEYS, EXAMPLE)?;
    let agent = match t.get("agent") {
        Some(v) => agent_name(cx, v, p.names)?,
        None => return missing(cx, &t, "agent", "the publishing agent's instance-id"),
    };
    let feed = match t.get("feed") {
        Some(v) => feed_name(cx, v)?,
        None => return missing(cx, &t, "feed", "the feed's name"),
    };
    let within = match t.get("within") {
        Some(v) => parse_duration(cx, v, "`within`", false)?,
        None => DEFAULT_FEED_WITHIN,
    };
    let window = log_window(cx, &p.fields)?;
    let mut check = FeedCheck {
        agent,
        feed,
        within,
        window,
        count: None,
        blocks: Vec::new(),
        fields: Vec::new(),
        timestamps_increasing: false,
    };
    if let Some(e) = p.fields.get("expect") {
        feed_expect(cx, e, &mut check)?;
    }
    Some(check)
}

/// The error for a required key of the target mapping.
fn missing<T>(cx: &mut Cx, t: &Fields, key: &str, what: &str) -> Option<T> {
    if t.misspelt(key) {
        return None;
    }
    let e = cx
        .err(
            t.pos(),
            format!("the target of `feed` has no `{key}`"),
            format!("`{key}` ({what}) is required"),
        )
        .help(format!("write e.g. `{EXAMPLE}`"));
    cx.fail(e)
}

/// `expect:` of a `feed` step.
fn feed_expect(cx: &mut Cx, node: &Node, check: &mut FeedCheck) -> Option<()> {
    let example = "expect: {count: {\">=\": 2}, fields: {value: int}}";
    let f = cx.fields(node, "the `expect` of `feed`", EXPECT_KEYS, example)?;
    if let Some(v) = f.get("count") {
        check.count = Some(parse_matcher(cx, v)?);
    }
    if let Some(v) = f.get("blocks") {
        check.blocks = cx.strings(v, "`blocks`", "blocks: [temps]", true)?;
    }
    if let Some(v) = f.get("fields") {
        check.fields = fields(cx, v)?;
    }
    if let Some(v) = f.get("timestamps") {
        match v.scalar_text().as_deref() {
            Some("increasing") => check.timestamps_increasing = true,
            _ => {
                let e = cx
                    .err(
                        v.pos,
                        "`timestamps` takes only `increasing`",
                        "not `increasing`",
                    )
                    .help("write `timestamps: increasing`, or leave it out");
                return cx.fail(e);
            }
        }
    }
    Some(())
}

/// `fields: {name: matcher}`; a bare type name (`int`, `float`, `number`, `string`, `bool`,
/// ...) is short for `{type: ...}`.
fn fields(cx: &mut Cx, node: &Node) -> Option<Vec<(String, Matcher)>> {
    let Kind::Map(entries) = &node.kind else {
        return cx.type_error(node, "`fields`", "a mapping", "fields: {value: int}");
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let by_type = match &v.kind {
            Kind::Str(s) => type_matcher(s),
            _ => None,
        };
        let m = match by_type {
            Some(m) => m,
            None => parse_matcher(cx, v)?,
        };
        out.push((k.name.clone(), m));
    }
    Some(out)
}

/// `agent:`: an agent of the stack (or the registry).
fn agent_name(cx: &mut Cx, v: &Node, names: &Names) -> Option<String> {
    let agent = cx.nonempty_string(v, "`agent`", "agent: fake1")?;
    let known = names.op_targets();
    if known.contains(&agent) {
        return Some(agent);
    }
    let e = cx
        .err(
            v.pos,
            format!("no agent `{agent}` in the stack"),
            match closest(&agent, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "unknown agent".into(),
            },
        )
        .note(format!("the stack's agents are {}", list_names(&known)));
    cx.fail(e)
}

/// `feed:`: a feed name (one WAMP URI component).
fn feed_name(cx: &mut Cx, v: &Node) -> Option<String> {
    let feed = cx.nonempty_string(v, "`feed`", "feed: false_temperatures")?;
    if feed
        .chars()
        .any(|c| c.is_whitespace() || c == '.' || c == '#')
    {
        let e = cx
            .err(
                v.pos,
                format!("`{feed}` is not a feed name"),
                "invalid feed name",
            )
            .help("write the feed's name as the agent registers it, e.g. `feed_name`");
        return cx.fail(e);
    }
    Some(feed)
}
