//! `feed` steps: what an agent publishes on one of its OCS feeds, as the run's feed tap saw
//! it, and the checks a scenario makes on it (how many messages, which blocks, the data
//! fields' values and types, increasing timestamps).
//!
//! OCS publishes `(message, feed_info)` on `<address-root>.<instance-id>.feeds.<feed>`. A
//! recorded feed (`record=True`, e.g. FakeData's `false_temperatures`) sends buffered
//! blocks: `{block_name: {block_name, data: {field: [values]}, timestamps: [...]}}`; an
//! unrecorded one sends the message as the agent gave it, often one sample
//! `{block_name, timestamp, data: {field: value}}`. [`FeedMessage::decode`] reads all of
//! these as blocks of fields, so the checks need not care.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::expect::LogWindow;
use super::matcher::{Matcher, Mismatch};

/// Default for `within:`.
pub const DEFAULT_FEED_WITHIN: Duration = Duration::from_secs(10);

/// A `feed` step.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedCheck {
    /// The publishing agent (an instance-id, or `registry`).
    pub agent: String,
    /// The feed's name.
    pub feed: String,
    /// How long to wait for the messages the step expects.
    pub within: Duration,
    /// Which messages count: since the tap subscribed (`run`) or since the previous step
    /// began (`step`).
    pub window: LogWindow,
    /// How many messages (default: at least one).
    pub count: Option<Matcher>,
    /// Block names that must appear.
    pub blocks: Vec<String>,
    /// Data fields every message must carry, each value matching.
    pub fields: Vec<(String, Matcher)>,
    /// Each block's timestamps strictly increase across the messages.
    pub timestamps_increasing: bool,
}

/// One block of a feed message: its name, its fields' values and its timestamps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedBlock {
    /// `block_name` (empty when the message has none).
    pub name: String,
    /// Each data field's values, in order.
    pub fields: BTreeMap<String, Vec<Value>>,
    /// The samples' timestamps.
    pub timestamps: Vec<Value>,
}

/// One published message, as blocks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedMessage {
    /// Its blocks (one for an unrecorded message).
    pub blocks: Vec<FeedBlock>,
}

impl FeedMessage {
    /// Read the first argument of a feed publication (see the module docs).
    pub fn decode(message: &Value) -> FeedMessage {
        let Value::Object(obj) = message else {
            return FeedMessage {
                blocks: vec![FeedBlock::default()],
            };
        };
        let is_block = |v: &Value| v.get("block_name").is_some() && v.get("data").is_some();
        let blocks = if !obj.is_empty() && !is_block(message) && obj.values().all(is_block) {
            obj.values().map(block).collect()
        } else {
            vec![block(message)]
        };
        FeedMessage { blocks }
    }
}

/// A block (or a bare message) as a [`FeedBlock`]: single samples become one-value lists.
fn block(v: &Value) -> FeedBlock {
    let name = v
        .get("block_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let data = match v.get("data") {
        Some(Value::Object(d)) => d.clone(),
        Some(_) => serde_json::Map::new(),
        None => v.as_object().cloned().unwrap_or_default(),
    };
    let many = v.get("timestamps").is_some();
    let fields = data
        .into_iter()
        .map(|(k, val)| match (many, val) {
            (true, Value::Array(items)) => (k, items),
            (_, val) => (k, vec![val]),
        })
        .collect();
    let timestamps = match (v.get("timestamps"), v.get("timestamp")) {
        (Some(Value::Array(ts)), _) => ts.clone(),
        (_, Some(t)) => vec![t.clone()],
        _ => Vec::new(),
    };
    FeedBlock {
        name,
        fields,
        timestamps,
    }
}

/// What a look at the messages found: `wait` may still be met by later messages; `fail`
/// cannot (a message already there is wrong).
#[derive(Debug, Default, PartialEq)]
pub struct FeedVerdict {
    /// Not (yet) met: the count, a block not seen.
    pub wait: Vec<Mismatch>,
    /// Broken for good: a field missing or wrong, timestamps not increasing.
    pub fail: Vec<Mismatch>,
}

impl FeedVerdict {
    /// Whether every check holds.
    pub fn holds(&self) -> bool {
        self.wait.is_empty() && self.fail.is_empty()
    }
}

impl FeedCheck {
    /// Check `messages` (in arrival order).
    pub fn check(&self, messages: &[FeedMessage]) -> FeedVerdict {
        let mut v = FeedVerdict::default();
        let n = Value::from(messages.len());
        match &self.count {
            Some(m) => {
                if let Err(e) = m.matches(Some(&n)) {
                    v.wait.push(e.under("count"));
                }
            }
            None if messages.is_empty() => {
                v.wait.push(Mismatch::new(
                    "count",
                    "expected at least one message, got 0",
                ));
            }
            None => {}
        }
        for b in &self.blocks {
            if !messages
                .iter()
                .any(|m| m.blocks.iter().any(|x| &x.name == b))
            {
                let seen = block_names(messages);
                v.wait.push(Mismatch::new(
                    "blocks",
                    format!("expected a block `{b}`, got {seen}"),
                ));
            }
        }
        for (i, m) in messages.iter().enumerate() {
            v.fail.extend(self.check_fields(i + 1, m));
        }
        if self.timestamps_increasing {
            v.fail.extend(check_increasing(messages));
        }
        v
    }

    /// Every field of `fields` is in some block of message `i`, every value matching.
    fn check_fields(&self, i: usize, m: &FeedMessage) -> Vec<Mismatch> {
        let mut out = Vec::new();
        for (name, matcher) in &self.fields {
            let values: Vec<&Value> = m
                .blocks
                .iter()
                .filter_map(|b| b.fields.get(name))
                .flatten()
                .collect();
            let path = format!("fields.{name}");
            if values.is_empty() {
                let have: Vec<&str> = m
                    .blocks
                    .iter()
                    .flat_map(|b| b.fields.keys().map(String::as_str))
                    .collect();
                out.push(Mismatch::new(
                    path,
                    format!("message {i} has no field `{name}` (its fields: {have:?})"),
                ));
                continue;
            }
            if let Some(e) = values.iter().find_map(|v| matcher.matches(Some(v)).err()) {
                out.push(Mismatch::new(path, format!("message {i}: {}", e.detail)));
            }
        }
        out
    }

    /// The names of the blocks seen, sorted, and the data fields seen, sorted: what the
    /// transcript shows of a passing step (message counts depend on timing).
    pub fn shape(messages: &[FeedMessage]) -> (Vec<String>, Vec<String>) {
        let mut blocks = std::collections::BTreeSet::new();
        let mut fields = std::collections::BTreeSet::new();
        for b in messages.iter().flat_map(|m| &m.blocks) {
            blocks.insert(b.name.clone());
            fields.extend(b.fields.keys().cloned());
        }
        (blocks.into_iter().collect(), fields.into_iter().collect())
    }
}

/// The block names seen, for messages.
fn block_names(messages: &[FeedMessage]) -> String {
    let (blocks, _) = FeedCheck::shape(messages);
    if blocks.is_empty() {
        "none".into()
    } else {
        format!("{blocks:?}")
    }
}

/// Each block's timestamps, over the messages in order, strictly increase (and are numbers).
fn check_increasing(messages: &[FeedMessage]) -> Option<Mismatch> {
    let mut last: BTreeMap<&str, f64> = BTreeMap::new();
    for (i, m) in messages.iter().enumerate() {
        for b in &m.blocks {
            for t in &b.timestamps {
                let Some(t) = t.as_f64() else {
                    return Some(Mismatch::new(
                        "timestamps",
                        format!("message {}: a timestamp is not a number: {t}", i + 1),
                    ));
                };
                let prev = last.insert(&b.name, t);
                if prev.is_some_and(|p| t <= p) {
                    return Some(Mismatch::new(
                        "timestamps",
                        format!(
                            "expected increasing timestamps, got {} after {} (block `{}`, \
                             message {})",
                            t,
                            prev.unwrap_or_default(),
                            b.name,
                            i + 1
                        ),
                    ));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check() -> FeedCheck {
        FeedCheck {
            agent: "fake1".into(),
            feed: "false_temperatures".into(),
            within: DEFAULT_FEED_WITHIN,
            window: LogWindow::Run,
            count: None,
            blocks: Vec::new(),
            fields: Vec::new(),
            timestamps_increasing: false,
        }
    }

    fn recorded(ts: &[f64], v: Value) -> FeedMessage {
        let values = vec![v; ts.len()];
        FeedMessage::decode(&json!({
            "temps": {"block_name": "temps", "data": {"channel_00": values}, "timestamps": ts}
        }))
    }

    #[test]
    fn decodes_recorded_and_single_sample_messages() {
        let m = recorded(&[1.0, 2.0], json!(0.5));
        assert_eq!(m.blocks.len(), 1);
        assert_eq!(m.blocks[0].name, "temps");
        assert_eq!(
            m.blocks[0].fields["channel_00"],
            vec![json!(0.5), json!(0.5)]
        );
        assert_eq!(m.blocks[0].timestamps, vec![json!(1.0), json!(2.0)]);
        let one = FeedMessage::decode(
            &json!({"block_name": "count", "timestamp": 3.5, "data": {"value": 1}}),
        );
        assert_eq!(one.blocks[0].name, "count");
        assert_eq!(one.blocks[0].fields["value"], vec![json!(1)]);
        assert_eq!(one.blocks[0].timestamps, vec![json!(3.5)]);
        let bare = FeedMessage::decode(&json!({"acq": 3}));
        assert_eq!(bare.blocks[0].name, "");
        assert_eq!(bare.blocks[0].fields["acq"], vec![json!(3)]);
    }

    #[test]
    fn silence_waits_and_wrong_fields_fail() {
        let mut c = check();
        let v = c.check(&[]);
        assert_eq!(v.wait.len(), 1, "{v:?}");
        assert!(v.wait[0].to_string().contains("at least one message"));
        c.fields = vec![(
            "channel_00".into(),
            Matcher::Ops(vec![super::super::matcher::MatchOp::Type(
                super::super::matcher::JsonType::Float,
            )]),
        )];
        c.blocks = vec!["temps".into()];
        assert!(c.check(&[recorded(&[1.0], json!(0.5))]).holds());
        let v = c.check(&[recorded(&[1.0], json!("0.5"))]);
        assert!(v.wait.is_empty());
        assert!(v.fail[0].to_string().contains("message 1"), "{v:?}");
        c.fields = vec![("channel_01".into(), Matcher::Equals(json!(1)))];
        let v = c.check(&[recorded(&[1.0], json!(0.5))]);
        assert!(
            v.fail[0].to_string().contains("no field `channel_01`"),
            "{v:?}"
        );
        c.fields.clear();
        c.blocks = vec!["other".into()];
        let v = c.check(&[recorded(&[1.0], json!(0.5))]);
        assert!(v.wait[0].to_string().contains("[\"temps\"]"), "{v:?}");
    }

    #[test]
    fn timestamps_must_increase_across_messages() {
        let mut c = check();
        c.timestamps_increasing = true;
        let ok = [
            recorded(&[1.0, 2.0], json!(0.5)),
            recorded(&[3.0], json!(0.5)),
        ];
        assert!(c.check(&ok).holds());
        let bad = [
            recorded(&[1.0, 2.0], json!(0.5)),
            recorded(&[2.0], json!(0.5)),
        ];
        let v = c.check(&bad);
        assert!(v.fail[0].to_string().contains("2 after 2"), "{v:?}");
        c.count = Some(Matcher::Ops(vec![super::super::matcher::MatchOp::Ge(3.0)]));
        assert!(c.check(&ok).wait[0].to_string().contains("count"));
    }
}
