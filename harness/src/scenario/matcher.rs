//! Matchers: partial matching of JSON values (`session.data`, messages) against expectations
//! written in the scenario, and [`Mismatch`], the readable "expected vs got" they report.
//!
//! An expectation value means:
//! - a mapping: the actual value is an object with at least these keys, each matching;
//! - a list: the actual value is a list of the same length, element-wise matching;
//! - a scalar: equality (numbers by value, so `2` matches `2.0`);
//! - a *matcher mapping* (every key an operator): all operators hold. Operators: `>=`, `>`,
//!   `<=`, `<`, `==`, `!=`, `regex`, `contains`, `type`, `exists`, `len`, and on lists
//!   `some` (an element matches), `every` (each element matches) and `by-key` (elements looked
//!   up by the value of one of their fields, each found one matching).
//!
//! To match an object that really has a key named like an operator (`type`), compare the
//! whole value with `{"==": {type: ...}}`.

use std::fmt;

use serde_json::Value;

use super::capture::{references, Bindings, TimeValue};
use super::error::{closest, list_names};
use super::node::{Cx, Key, Kind, Node};

/// The matcher operators.
pub const OPERATORS: &[&str] = &[
    ">=",
    ">",
    "<=",
    "<",
    "==",
    "!=",
    "regex",
    "contains",
    "type",
    "exists",
    "len",
    "after-last-fault",
    "after-ready-again",
    "some",
    "every",
    "by-key",
];

/// A compiled regular expression that compares by its source text.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl Pattern {
    /// Compile `source`.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(source).map(Self)
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }

    /// The pattern's source.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A JSON type name for the `type` operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// An integer number.
    Int,
    /// A number with a fractional part or exponent (as JSON wrote it).
    Float,
    /// Any number.
    Number,
    /// A string.
    String,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
    /// An array.
    List,
    /// An object.
    Object,
}

impl JsonType {
    const NAMES: &'static [&'static str] = &[
        "int", "float", "number", "string", "bool", "null", "list", "object",
    ];

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "int" => Self::Int,
            "float" => Self::Float,
            "number" => Self::Number,
            "string" => Self::String,
            "bool" => Self::Bool,
            "null" => Self::Null,
            "list" => Self::List,
            "object" => Self::Object,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    fn of(v: &Value) -> Self {
        match v {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Bool,
            Value::Number(n) if n.is_f64() => Self::Float,
            Value::Number(_) => Self::Int,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::List,
            Value::Object(_) => Self::Object,
        }
    }

    fn holds(self, v: &Value) -> bool {
        match self {
            Self::Number => v.is_number(),
            t => Self::of(v) == t,
        }
    }
}

/// One operator of a matcher mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum MatchOp {
    /// `>=`: a number at least this.
    Ge(f64),
    /// `>`: a number above this.
    Gt(f64),
    /// `<=`: a number at most this.
    Le(f64),
    /// `<`: a number below this.
    Lt(f64),
    /// `==`: equal to this whole value (numbers by value).
    Eq(Value),
    /// `!=`: not equal to this value.
    Ne(Value),
    /// `regex`: a string the pattern matches (somewhere; anchor with `^...$`).
    Regex(Pattern),
    /// `contains`: a string containing this substring, or a list with this element.
    Contains(Value),
    /// `type`: a value of this JSON type.
    Type(JsonType),
    /// `exists`: whether the key is present at all.
    Exists(bool),
    /// `len`: a string (characters), list or object of this length.
    Len(usize),
    /// `after-last-fault: true`: a unix time later than the scenario's last fault step (the
    /// runner replaces it with `>` that time before checking; see [`Matcher::resolve`]).
    AfterLastFault,
    /// `after-ready-again: true`: a unix time later than the moment the stack was ready again
    /// after the last fault (the end of the last `restart`/`start`/`unpause`/`connect` fault
    /// step, which waits for readiness); resolved like `after-last-fault`.
    AfterReadyAgain,
    /// `>`, `>=`, `<` or `<=` (the operator) against a number known when the step starts: a
    /// time (`{now: -5s}`, `{at: t0, plus: 100s}`) or a whole `"{{name}}"` reference; the
    /// runner turns it into the plain operator (see [`Matcher::resolve`]).
    Deferred(&'static str, Value),
    /// `some`: a list with at least one element matching.
    Some(Box<Matcher>),
    /// `every`: a list whose elements all match (an empty list does).
    Every(Box<Matcher>),
    /// `by-key: {FIELD: {VALUE: MATCHER, ..}}`: a list of objects in which, for each VALUE,
    /// exactly one element has `FIELD` equal to VALUE, and that element matches MATCHER.
    ByKey {
        /// The field that identifies an element (e.g. `instance_id`).
        field: String,
        /// Each identifying value, with what its element must match.
        items: Vec<(String, Matcher)>,
    },
}

impl MatchOp {
    /// This operator as the runner checks it (see [`Matcher::resolve`]).
    fn resolve(&self, b: &Bindings) -> MatchOp {
        match self {
            MatchOp::AfterLastFault => match b.last_fault {
                Some(t) => MatchOp::Gt(t),
                None => MatchOp::AfterLastFault,
            },
            MatchOp::AfterReadyAgain => match b.ready_again {
                Some(t) => MatchOp::Gt(t),
                None => MatchOp::AfterReadyAgain,
            },
            MatchOp::Deferred(op, v) => match b.value(v).as_f64() {
                Some(x) => match *op {
                    ">=" => MatchOp::Ge(x),
                    ">" => MatchOp::Gt(x),
                    "<=" => MatchOp::Le(x),
                    _ => MatchOp::Lt(x),
                },
                None => self.clone(),
            },
            MatchOp::Eq(v) => MatchOp::Eq(b.value(v)),
            MatchOp::Ne(v) => MatchOp::Ne(b.value(v)),
            MatchOp::Contains(v) => MatchOp::Contains(b.value(v)),
            MatchOp::Some(m) => MatchOp::Some(Box::new(m.resolve(b))),
            MatchOp::Every(m) => MatchOp::Every(Box::new(m.resolve(b))),
            MatchOp::ByKey { field, items } => MatchOp::ByKey {
                field: field.clone(),
                items: items
                    .iter()
                    .map(|(k, m)| (b.text(k), m.resolve(b)))
                    .collect(),
            },
            other => other.clone(),
        }
    }
}

impl fmt::Display for MatchOp {
    /// The expectation as it reads in "expected ..., got ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ge(n) => write!(f, ">= {n}"),
            Self::Gt(n) => write!(f, "> {n}"),
            Self::Le(n) => write!(f, "<= {n}"),
            Self::Lt(n) => write!(f, "< {n}"),
            Self::Eq(v) => write!(f, "== {}", show(v)),
            Self::Ne(v) => write!(f, "!= {}", show(v)),
            Self::Regex(p) => write!(f, "a string matching /{}/", p.as_str()),
            Self::Contains(v) => write!(f, "something containing {}", show(v)),
            Self::Type(t) => write!(f, "type {}", t.name()),
            Self::Exists(true) => write!(f, "the key to exist"),
            Self::Exists(false) => write!(f, "no such key"),
            Self::Len(n) => write!(f, "len {n}"),
            Self::Deferred(op, v) => {
                write!(f, "{op} {} (a number known when the step starts)", show(v))
            }
            Self::AfterLastFault => write!(f, "a time after the last fault"),
            Self::AfterReadyAgain => write!(
                f,
                "a time after the stack was ready again (no fault step has waited for that yet)"
            ),
            Self::Some(_) => write!(f, "a list with an element matching"),
            Self::Every(_) => write!(f, "a list whose every element matches"),
            Self::ByKey { field, .. } => write!(f, "a list of objects with a `{field}`"),
        }
    }
}

/// An expectation on a JSON value (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// Equality with a scalar (numbers by value).
    Equals(Value),
    /// An object with at least these keys, each matching.
    Object(Vec<(String, Matcher)>),
    /// A list of exactly these elements, each matching.
    List(Vec<Matcher>),
    /// Every operator holds.
    Ops(Vec<MatchOp>),
}

/// Why an actual value does not meet an expectation: where (`session.data.value`) and
/// what (`expected >= 2, got 1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Path of the value, e.g. `session.data.value` or `messages`; empty for the root.
    pub path: String,
    /// What was expected and what was found.
    pub detail: String,
}

impl Mismatch {
    /// A mismatch at `path`.
    pub fn new(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// The same mismatch seen from `prefix` (`value` under `session.data` is
    /// `session.data.value`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = join_path(prefix, &self.path);
        self
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.detail)
        } else {
            write!(f, "{}: {}", self.path, self.detail)
        }
    }
}

impl std::error::Error for Mismatch {}

fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ if rest.starts_with('[') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{rest}"),
    }
}

/// A key as a path component: `value`, or `["observatory.fake1"]` when it is not a plain word.
fn key_path(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        key.to_string()
    } else {
        format!("[{key:?}]")
    }
}

/// Compact JSON, cut to 200 characters.
pub(crate) fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 {
        let cut: String = s.chars().take(200).collect();
        format!("{cut}…")
    } else {
        s
    }
}

fn show_actual(actual: Option<&Value>) -> String {
    actual.map_or_else(|| "nothing (no such key)".to_string(), show)
}

/// JSON equality with numbers compared by value.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

impl Matcher {
    /// This matcher as the runner checks it: `after-last-fault` turned into `>` the last
    /// fault's unix time (when there was one), and `{{name}}` references replaced by the
    /// captured values.
    pub fn resolve(&self, b: &Bindings) -> Matcher {
        match self {
            Matcher::Equals(v) => Matcher::Equals(b.value(v)),
            Matcher::Object(fields) => Matcher::Object(
                fields
                    .iter()
                    .map(|(k, m)| (k.clone(), m.resolve(b)))
                    .collect(),
            ),
            Matcher::List(items) => Matcher::List(items.iter().map(|m| m.resolve(b)).collect()),
            Matcher::Ops(ops) => Matcher::Ops(ops.iter().map(|op| op.resolve(b)).collect()),
        }
    }

    /// Check `actual` (`None`: the key is absent). The mismatch's path is relative to this
    /// matcher (empty at the top); see [`Mismatch::under`].
    pub fn matches(&self, actual: Option<&Value>) -> Result<(), Mismatch> {
        match self {
            Self::Equals(want) => match actual {
                Some(got) if json_eq(want, got) => Ok(()),
                got => Err(Mismatch::new(
                    "",
                    format!("expected {}, got {}", show(want), show_actual(got)),
                )),
            },
            Self::Object(fields) => {
                let Some(Value::Object(obj)) = actual else {
                    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
                    return Err(Mismatch::new(
                        "",
                        format!(
                            "expected an object with keys {}, got {}",
                            list_names(&keys),
                            show_actual(actual)
                        ),
                    ));
                };
                for (k, m) in fields {
                    m.matches(obj.get(k)).map_err(|e| e.under(&key_path(k)))?;
                }
                Ok(())
            }
            Self::List(items) => {
                let Some(Value::Array(list)) = actual else {
                    return Err(Mismatch::new(
                        "",
                        format!(
                            "expected a list of {} items, got {}",
                            items.len(),
                            show_actual(actual)
                        ),
                    ));
                };
                if list.len() != items.len() {
                    return Err(Mismatch::new(
                        "",
                        format!(
                            "expected a list of {} items, got {} items: {}",
                            items.len(),
                            list.len(),
                            show(actual.unwrap_or(&Value::Null))
                        ),
                    ));
                }
                for (i, (m, v)) in items.iter().zip(list).enumerate() {
                    m.matches(Some(v)).map_err(|e| e.under(&format!("[{i}]")))?;
                }
                Ok(())
            }
            Self::Ops(ops) => ops.iter().try_for_each(|op| check_op(op, actual)),
        }
    }

    /// Check a whole string (`message:` expectations).
    pub fn matches_str(&self, actual: &str) -> Result<(), Mismatch> {
        self.matches(Some(&Value::String(actual.to_string())))
    }
}

/// Check one operator against `actual`.
fn check_op(op: &MatchOp, actual: Option<&Value>) -> Result<(), Mismatch> {
    if let Some(checked) = list_op(op, actual) {
        return checked;
    }
    if op_holds(op, actual) {
        return Ok(());
    }
    let got = match (op, actual) {
        (MatchOp::Len(_), Some(v)) => match len_of(v) {
            Some(n) => format!("len {n} ({})", show(v)),
            None => format!("{} (it has no length)", show(v)),
        },
        _ => show_actual(actual),
    };
    Err(Mismatch::new("", format!("expected {op}, got {got}")))
}

fn len_of(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    }
}

fn op_holds(op: &MatchOp, actual: Option<&Value>) -> bool {
    if let MatchOp::Exists(want) = op {
        return actual.is_some() == *want;
    }
    let Some(v) = actual else {
        return false;
    };
    let num = v.as_f64();
    match op {
        MatchOp::Ge(n) => num.is_some_and(|x| x >= *n),
        MatchOp::Gt(n) => num.is_some_and(|x| x > *n),
        MatchOp::Le(n) => num.is_some_and(|x| x <= *n),
        MatchOp::Lt(n) => num.is_some_and(|x| x < *n),
        MatchOp::Eq(w) => json_eq(w, v),
        MatchOp::Ne(w) => !json_eq(w, v),
        MatchOp::Regex(p) => v.as_str().is_some_and(|s| p.is_match(s)),
        MatchOp::Contains(w) => match (v, w) {
            (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
            (Value::Array(items), w) => items.iter().any(|i| json_eq(i, w)),
            _ => false,
        },
        MatchOp::Type(t) => t.holds(v),
        MatchOp::Exists(_) => unreachable!("handled above"),
        MatchOp::Len(n) => len_of(v) == Some(*n),
        // Resolved by the runner; with no fault yet, any number is after it.
        MatchOp::AfterLastFault => num.is_some(),
        // Unresolved: no fault step has waited for readiness, so nothing is after it.
        MatchOp::AfterReadyAgain => false,
        // Unresolved: the number it compares with was not known (not a number).
        MatchOp::Deferred(..) => false,
        MatchOp::Some(_) | MatchOp::Every(_) | MatchOp::ByKey { .. } => {
            unreachable!("checked by list_op")
        }
    }
}

/// The check of a list operator (`some`, `every`, `by-key`), `None` for the others.
fn list_op(op: &MatchOp, actual: Option<&Value>) -> Option<Result<(), Mismatch>> {
    let (MatchOp::Some(_) | MatchOp::Every(_) | MatchOp::ByKey { .. }) = op else {
        return None;
    };
    let Some(Value::Array(list)) = actual else {
        return Some(Err(Mismatch::new(
            "",
            format!("expected {op}, got {}", show_actual(actual)),
        )));
    };
    Some(match op {
        MatchOp::Some(m) => some_element(m, list),
        MatchOp::Every(m) => list
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| m.matches(Some(v)).map_err(|e| e.under(&format!("[{i}]")))),
        MatchOp::ByKey { field, items } => items
            .iter()
            .try_for_each(|(key, m)| by_key(field, key, m, list)),
        _ => unreachable!("list operators only"),
    })
}

/// `some`: an element of `list` matches `m`; else why the first element did not.
fn some_element(m: &Matcher, list: &[Value]) -> Result<(), Mismatch> {
    let mut first = None;
    for v in list {
        match m.matches(Some(v)) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    let why = first.map_or(String::new(), |e| format!("; the first element: {e}"));
    Err(Mismatch::new(
        "",
        format!(
            "expected some element to match, but none of the {} does{why}; the list is {}",
            list.len(),
            show(&Value::Array(list.to_vec()))
        ),
    ))
}

/// The text of a scalar as `by-key` compares it (`fake1`, `3`, `true`).
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// `by-key`: the one element of `list` whose `field` is `key` matches `m`.
fn by_key(field: &str, key: &str, m: &Matcher, list: &[Value]) -> Result<(), Mismatch> {
    let path = format!("[{field}={key}]");
    let found: Vec<&Value> = list
        .iter()
        .filter(|v| v.get(field).and_then(key_text).as_deref() == Some(key))
        .collect();
    match found.as_slice() {
        [one] => m.matches(Some(one)).map_err(|e| e.under(&path)),
        [] => {
            let have: Vec<String> = list
                .iter()
                .filter_map(|v| v.get(field).and_then(key_text))
                .collect();
            let have: Vec<&str> = have.iter().map(String::as_str).collect();
            Err(Mismatch::new(
                path,
                format!(
                    "no element has {field} {key:?}; the elements' {field}s are {}",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        list_names(&have)
                    }
                ),
            ))
        }
        many => Err(Mismatch::new(
            path,
            format!(
                "{} elements have {field} {key:?}; `by-key` needs it to identify one",
                many.len()
            ),
        )),
    }
}

/// An expectation on one text (a session message, a log line).
#[derive(Debug, Clone, PartialEq)]
pub enum TextMatcher {
    /// The whole text equals this.
    Equals(String),
    /// The text contains this.
    Contains(String),
    /// The pattern matches somewhere in the text.
    Regex(Pattern),
}

impl TextMatcher {
    /// This matcher with `{{name}}` references replaced (a regex stays as written).
    pub fn resolve(&self, b: &Bindings) -> TextMatcher {
        match self {
            Self::Equals(s) => Self::Equals(b.text(s)),
            Self::Contains(s) => Self::Contains(b.text(s)),
            Self::Regex(p) => Self::Regex(p.clone()),
        }
    }

    /// Whether `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        match self {
            Self::Equals(s) => text == s,
            Self::Contains(s) => text.contains(s.as_str()),
            Self::Regex(p) => p.is_match(text),
        }
    }
}

impl TextMatcher {
    /// `message "x"`, `message containing "x"`, `message matching /x/`.
    fn phrase(&self) -> String {
        match self {
            Self::Equals(s) => format!("message {s:?}"),
            Self::Contains(s) => format!("message containing {s:?}"),
            Self::Regex(p) => format!("message matching /{}/", p.as_str()),
        }
    }
}

impl fmt::Display for TextMatcher {
    /// The text for equality, `containing "x"` or `matching /x/` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Equals(s) => f.write_str(s),
            Self::Contains(s) => write!(f, "(containing {s:?})"),
            Self::Regex(p) => write!(f, "(matching /{}/)", p.as_str()),
        }
    }
}

/// How `messages` must relate to the session's message texts.
#[derive(Debug, Clone, PartialEq)]
pub enum MessagesMode {
    /// Exactly these messages, in this order.
    Exact(Vec<TextMatcher>),
    /// These messages in this order, others may come between.
    Ordered(Vec<TextMatcher>),
    /// Each of these somewhere.
    Contains(Vec<TextMatcher>),
}

/// The `messages` expectation on a session's message texts.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesExpect {
    /// `exact`, `ordered` or `contains`, if given.
    pub mode: Option<MessagesMode>,
    /// No message may match any of these.
    pub absent: Vec<TextMatcher>,
}

fn numbered(texts: &[&str]) -> String {
    if texts.is_empty() {
        return "\n  (no messages)".into();
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| format!("\n  {}. {t}", i + 1))
        .collect()
}

impl MessagesExpect {
    /// This expectation with `{{name}}` references replaced.
    pub fn resolve(&self, b: &Bindings) -> MessagesExpect {
        let all = |list: &[TextMatcher]| list.iter().map(|m| m.resolve(b)).collect();
        MessagesExpect {
            mode: self.mode.as_ref().map(|mode| match mode {
                MessagesMode::Exact(l) => MessagesMode::Exact(all(l)),
                MessagesMode::Ordered(l) => MessagesMode::Ordered(all(l)),
                MessagesMode::Contains(l) => MessagesMode::Contains(all(l)),
            }),
            absent: all(&self.absent),
        }
    }

    /// Check message texts, oldest first. Paths are `messages`.
    pub fn check(&self, texts: &[&str]) -> Vec<Mismatch> {
        let mut out = Vec::new();
        match &self.mode {
            Some(MessagesMode::Exact(want))
                if want.len() != texts.len()
                    || want.iter().zip(texts).any(|(m, t)| !m.is_match(t)) =>
            {
                out.push(Mismatch::new(
                    "messages",
                    format!(
                        "not the expected messages (- expected, + actual):{}",
                        diff(want, texts)
                    ),
                ));
            }
            Some(MessagesMode::Exact(_)) => {}
            Some(MessagesMode::Ordered(want)) => out.extend(check_ordered(want, texts)),
            Some(MessagesMode::Contains(want)) => {
                let missing: Vec<String> = want
                    .iter()
                    .filter(|m| !texts.iter().any(|t| m.is_match(t)))
                    .map(|m| format!("a {}", m.phrase()))
                    .collect();
                if !missing.is_empty() {
                    out.push(Mismatch::new(
                        "messages",
                        format!(
                            "expected {}; the messages are:{}",
                            missing.join(" and "),
                            numbered(texts)
                        ),
                    ));
                }
            }
            None => {}
        }
        for m in &self.absent {
            if let Some(i) = texts.iter().position(|t| m.is_match(t)) {
                out.push(Mismatch::new(
                    "messages",
                    format!(
                        "expected no {}, but message {} is {:?}",
                        m.phrase(),
                        i + 1,
                        texts[i]
                    ),
                ));
            }
        }
        out
    }
}

/// The first matcher of `want` not matched, in order, by `texts`.
fn check_ordered(want: &[TextMatcher], texts: &[&str]) -> Option<Mismatch> {
    let mut at = 0;
    for (wi, m) in want.iter().enumerate() {
        if let Some(p) = texts[at..].iter().position(|t| m.is_match(t)) {
            at += p + 1;
            continue;
        }
        let after = if wi == 0 {
            String::new()
        } else {
            format!(" after message {at} (which matched the item before)")
        };
        let hint = match texts.iter().position(|t| m.is_match(t)) {
            Some(i) => format!("; it is message {}, too early for this order", i + 1),
            None => String::new(),
        };
        return Some(Mismatch::new(
            "messages",
            format!(
                "expected a {}{after}{hint}; the messages are:{}",
                m.phrase(),
                numbered(texts)
            ),
        ));
    }
    None
}

/// A line diff of expected matchers against actual texts (longest common subsequence).
fn diff(want: &[TextMatcher], got: &[&str]) -> String {
    let (n, m) = (want.len(), got.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if want[i].is_match(got[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && want[i].is_match(got[j]) {
            out.push_str(&format!("\n    {}", got[j]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("\n  + {}", got[j]));
            j += 1;
        } else {
            out.push_str(&format!("\n  - {}", want[i]));
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Decoding from the scenario

fn is_symbolic(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| "<>=!~".contains(c))
}

/// Decode an expectation value (see the module docs).
pub(crate) fn parse_matcher(cx: &mut Cx, node: &Node) -> Option<Matcher> {
    match &node.kind {
        Kind::Seq(items) => {
            let mut out = Vec::new();
            let mut ok = true;
            for item in items {
                match parse_matcher(cx, item) {
                    Some(m) => out.push(m),
                    None => ok = false,
                }
            }
            ok.then_some(Matcher::List(out))
        }
        // a time (`{now: +100s}`) is a value, resolved when the step starts
        Kind::Map(_) if TimeValue::of(&node.to_json()).is_some() => {
            Some(Matcher::Equals(node.to_json()))
        }
        Kind::Map(entries) => parse_matcher_map(cx, entries),
        _ => Some(Matcher::Equals(node.to_json())),
    }
}

/// `{type: NAME}` for a JSON type name (`int`, `float`, ...), if `name` is one.
pub(crate) fn type_matcher(name: &str) -> Option<Matcher> {
    JsonType::parse(name).map(|t| Matcher::Ops(vec![MatchOp::Type(t)]))
}

fn is_operator(key: &str) -> bool {
    OPERATORS.contains(&key)
}

/// A mapping: all operators (a [`Matcher::Ops`]) or none (a partial [`Matcher::Object`]).
fn parse_matcher_map(cx: &mut Cx, entries: &[(Key, Node)]) -> Option<Matcher> {
    // a symbolic key that is no operator is a typo of one
    if let Some((k, _)) = entries
        .iter()
        .find(|(k, _)| is_symbolic(&k.name) && !is_operator(&k.name))
    {
        return unknown_operator(cx, k);
    }
    let op = entries.iter().find(|(k, _)| is_operator(&k.name));
    let other = entries.iter().find(|(k, _)| !is_operator(&k.name));
    match (op, other) {
        (None, _) => {
            let mut out = Vec::new();
            let mut ok = true;
            for (k, v) in entries {
                match parse_matcher(cx, v) {
                    Some(m) => out.push((k.name.clone(), m)),
                    None => ok = false,
                }
            }
            ok.then_some(Matcher::Object(out))
        }
        (Some((op, _)), Some((other, _))) => mixed_keys(cx, op, other),
        (Some(_), None) => {
            let mut out = Vec::new();
            let mut ok = true;
            for (k, v) in entries {
                match parse_op(cx, &k.name, v) {
                    Some(op) => out.push(op),
                    None => ok = false,
                }
            }
            ok.then_some(Matcher::Ops(out))
        }
    }
}

/// The error for a symbolic key `k` that is no operator (`=>` for `>=`, `=` for `==`).
fn unknown_operator<T>(cx: &mut Cx, k: &Key) -> Option<T> {
    let sorted = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        c.sort_unstable();
        c
    };
    let swapped = OPERATORS
        .iter()
        .copied()
        .find(|op| sorted(op) == sorted(&k.name));
    let label = match swapped.or_else(|| closest(&k.name, OPERATORS.iter().copied())) {
        Some(s) => format!("did you mean `{s}`?"),
        None => "not an operator".into(),
    };
    let e = cx
        .err(
            k.pos,
            format!("unknown matcher operator `{}`", k.name),
            label,
        )
        .help(format!("the operators are {}", list_names(OPERATORS)));
    cx.fail(e)
}

/// The error for a mapping with both an operator key `op` and a plain key `other`.
fn mixed_keys<T>(cx: &mut Cx, op: &Key, other: &Key) -> Option<T> {
    let label = match closest(&other.name, OPERATORS.iter().copied()) {
        Some(s) => format!("not an operator; did you mean `{s}`?"),
        None => "not an operator".into(),
    };
    let e = cx
        .err(
            other.pos,
            format!(
                "this mapping mixes the matcher operator `{}` with the key `{}`",
                op.name, other.name
            ),
            label,
        )
        .help(format!(
            "a mapping is either a matcher (every key one of {}) or a partial \
             object match (no operator keys); to match an object with a key named \
             `{}`, compare it whole with `{{\"==\": {{...}}}}`",
            list_names(OPERATORS),
            op.name
        ));
    cx.fail(e)
}

/// A comparison whose number is known only when the step starts: a time, or a whole
/// `"{{name}}"` reference (bad times are reported with the step's references).
fn deferred_number(op: &str, v: &Node) -> Option<MatchOp> {
    let op: &'static str = match op {
        ">=" => ">=",
        ">" => ">",
        "<=" => "<=",
        "<" => "<",
        _ => return None,
    };
    let whole_reference = |s: &str| {
        let refs = references(s);
        refs.len() == 1 && refs[0].len == s.chars().count()
    };
    match &v.kind {
        Kind::Map(_) if TimeValue::of(&v.to_json()).is_some() => {
            Some(MatchOp::Deferred(op, v.to_json()))
        }
        Kind::Str(s) if whole_reference(s) => Some(MatchOp::Deferred(op, v.to_json())),
        _ => None,
    }
}

fn parse_op(cx: &mut Cx, op: &str, v: &Node) -> Option<MatchOp> {
    let number = |cx: &mut Cx| -> Option<f64> {
        match &v.kind {
            Kind::Num(n) => n.as_f64(),
            _ => {
                let e = cx
                    .err(
                        v.pos,
                        format!("`{op}` compares numbers, but this is {}", v.describe()),
                        "expected a number",
                    )
                    .help(format!(
                        "write e.g. `{{\"{op}\": 2}}`; to compare strings use `==` or `regex`"
                    ));
                cx.fail(e)
            }
        }
    };
    if let Some(deferred) = deferred_number(op, v) {
        return Some(deferred);
    }
    Some(match op {
        ">=" => MatchOp::Ge(number(cx)?),
        ">" => MatchOp::Gt(number(cx)?),
        "<=" => MatchOp::Le(number(cx)?),
        "<" => MatchOp::Lt(number(cx)?),
        "==" => MatchOp::Eq(v.to_json()),
        "!=" => MatchOp::Ne(v.to_json()),
        "regex" => MatchOp::Regex(parse_regex(cx, v, "`regex`")?),
        "contains" => match &v.kind {
            Kind::Seq(_) | Kind::Map(_) => {
                return cx.type_error(
                    v,
                    "`contains`",
                    "a scalar (a substring, or a list element)",
                    "{contains: \"exited\"}",
                )
            }
            _ => MatchOp::Contains(v.to_json()),
        },
        "type" => {
            let name = match v.kind {
                Kind::Null => "null".to_string(),
                _ => cx.string(v, "`type`", "{type: int}")?,
            };
            match JsonType::parse(&name) {
                Some(t) => MatchOp::Type(t),
                None => {
                    let label = match closest(&name, JsonType::NAMES.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "unknown type".into(),
                    };
                    let e = cx
                        .err(v.pos, format!("unknown type `{name}`"), label)
                        .help(format!("the types are {}", list_names(JsonType::NAMES)));
                    return cx.fail(e);
                }
            }
        }
        "exists" => MatchOp::Exists(cx.bool(v, "`exists`", "{exists: true}")?),
        "after-last-fault" => match &v.kind {
            Kind::Bool(true) => MatchOp::AfterLastFault,
            _ => return cx.type_error(v, "`after-last-fault`", "true", "{after-last-fault: true}"),
        },
        "after-ready-again" => match &v.kind {
            Kind::Bool(true) => MatchOp::AfterReadyAgain,
            _ => {
                return cx.type_error(
                    v,
                    "`after-ready-again`",
                    "true",
                    "{after-ready-again: true}",
                )
            }
        },
        "some" => MatchOp::Some(Box::new(parse_matcher(cx, v)?)),
        "every" => MatchOp::Every(Box::new(parse_matcher(cx, v)?)),
        "by-key" => parse_by_key(cx, v)?,
        "len" => match &v.kind {
            Kind::Num(n) if n.as_u64().is_some() => {
                MatchOp::Len(n.as_u64().expect("checked") as usize)
            }
            _ => return cx.type_error(v, "`len`", "a whole number >= 0", "{len: 3}"),
        },
        _ => unreachable!("only operators reach parse_op"),
    })
}

/// `by-key: {FIELD: {VALUE: MATCHER, ..}}`.
fn parse_by_key(cx: &mut Cx, v: &Node) -> Option<MatchOp> {
    const EXAMPLE: &str = "by-key: {instance_id: {fake1: {next_action: up}}}";
    let Kind::Map(entries) = &v.kind else {
        return cx.type_error(v, "`by-key`", "a mapping of one field name", EXAMPLE);
    };
    let [(field, items)] = entries.as_slice() else {
        let at = entries.get(1).map_or(v.pos, |(k, _)| k.pos);
        let e = cx
            .err(
                at,
                "`by-key` names exactly one field (the one that identifies an element)",
                "a second field",
            )
            .help(format!("write e.g. `{EXAMPLE}`"));
        return cx.fail(e);
    };
    let Kind::Map(wanted) = &items.kind else {
        return cx.type_error(
            items,
            &format!("`by-key.{}`", field.name),
            "a mapping from each identifying value to what its element must match",
            EXAMPLE,
        );
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, m) in wanted {
        match parse_matcher(cx, m) {
            Some(m) => out.push((k.name.clone(), m)),
            None => ok = false,
        }
    }
    ok.then_some(MatchOp::ByKey {
        field: field.name.clone(),
        items: out,
    })
}

/// Compile a regex from a string node.
pub(crate) fn parse_regex(cx: &mut Cx, v: &Node, what: &str) -> Option<Pattern> {
    let src = match &v.kind {
        Kind::Str(s) => s.clone(),
        _ => return cx.type_error(v, what, "a string", "regex: 'count:\\d+'"),
    };
    match Pattern::new(&src) {
        Ok(p) => Some(p),
        Err(err) => {
            let detail = err.to_string();
            let last = detail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .trim_start_matches("error: ")
                .to_string();
            let e = cx
                .err(
                    v.pos,
                    format!("{what} does not compile: {last}"),
                    "invalid regular expression",
                )
                .help(
                    "the syntax is Rust's `regex` crate (like Python `re` without look-around); \
                     escape literal characters like `.`, `(` or `[` with `\\`, and prefer \
                     single quotes in YAML so backslashes stay as written",
                );
            cx.fail(e)
        }
    }
}

/// Decode one text matcher: a string (whole-text equality) or `{regex: ..}` / `{contains: ..}`.
pub(crate) fn parse_text_matcher(cx: &mut Cx, node: &Node, what: &str) -> Option<TextMatcher> {
    const EXAMPLE: &str = "- {regex: 'Exited after [0-9.]+ seconds'}";
    match &node.kind {
        Kind::Map(entries) if entries.len() == 1 => {
            let (k, v) = &entries[0];
            match k.name.as_str() {
                "regex" => Some(TextMatcher::Regex(parse_regex(cx, v, "`regex`")?)),
                "contains" => Some(TextMatcher::Contains(cx.string(
                    v,
                    "`contains`",
                    "{contains: exited}",
                )?)),
                _ => {
                    let e = cx.unknown_key(k, "a text matcher", &["regex", "contains"]);
                    cx.fail(e)
                }
            }
        }
        Kind::Map(_) => {
            let e = cx
                .err(
                    node.pos,
                    format!("{what}: a text matcher has exactly one key, `regex` or `contains`"),
                    "expected one key",
                )
                .help(format!("write e.g. `{EXAMPLE}`"));
            cx.fail(e)
        }
        _ => match node.scalar_text() {
            Some(s) => Some(TextMatcher::Equals(s)),
            None => cx.type_error(
                node,
                what,
                "a string or a `{regex: ..}` / `{contains: ..}` mapping",
                EXAMPLE,
            ),
        },
    }
}

/// Decode a list of text matchers.
pub(crate) fn parse_text_matchers(
    cx: &mut Cx,
    node: &Node,
    what: &str,
) -> Option<Vec<TextMatcher>> {
    let Kind::Seq(items) = &node.kind else {
        return cx.type_error(
            node,
            what,
            "a list",
            "[\"Status is now \\\"running\\\".\", {regex: 'Exited after'}]",
        );
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match parse_text_matcher(cx, item, &format!("each item of {what}")) {
            Some(m) => out.push(m),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Decode `messages: {exact|ordered|contains: [..], absent: [..]}`.
pub(crate) fn parse_messages(cx: &mut Cx, node: &Node) -> Option<MessagesExpect> {
    const KEYS: &[&str] = &["exact", "ordered", "contains", "absent"];
    let f = cx.fields(
        node,
        "`messages`",
        KEYS,
        "messages: {ordered: [\"Status is now \\\"running\\\".\"]}",
    )?;
    let modes: Vec<_> = f
        .entries
        .iter()
        .filter(|(k, _)| k.name != "absent" && KEYS.contains(&k.name.as_str()))
        .collect();
    if modes.len() > 1 {
        let e = cx
            .err(
                modes[1].0.pos,
                format!(
                    "`messages` takes one of `exact`, `ordered` or `contains`, but has both \
                     `{}` and `{}`",
                    modes[0].0.name, modes[1].0.name
                ),
                "second mode",
            )
            .help("keep one; `absent` may be added to any of them");
        return cx.fail(e);
    }
    let mode = match modes.first() {
        None => None,
        Some((k, v)) => {
            let what = format!("`messages.{}`", k.name);
            let list = parse_text_matchers(cx, v, &what)?;
            Some(match k.name.as_str() {
                "exact" => MessagesMode::Exact(list),
                "ordered" => MessagesMode::Ordered(list),
                _ => MessagesMode::Contains(list),
            })
        }
    };
    let absent = match f.get("absent") {
        Some(v) => parse_text_matchers(cx, v, "`messages.absent`")?,
        None => Vec::new(),
    };
    if mode.is_none() && absent.is_empty() {
        let e = cx
            .err(f.pos(), "`messages` needs at least one check", "empty")
            .help("add `exact`, `ordered`, `contains` or `absent`, each a list of messages");
        return cx.fail(e);
    }
    Some(MessagesExpect { mode, absent })
}
