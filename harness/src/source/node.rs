//! The scenario text as a tree of YAML nodes that each know their position in the file, and
//! the small toolkit the decoder uses on it: typed accessors with precise type errors, and
//! mappings with a fixed key set that reject unknown keys with a suggestion.
//!
//! serde-saphyr parses the (expanded) text into [`RawNode`]s, every node and every key wrapped
//! in [`serde_saphyr::Spanned`]; syntax errors, duplicate keys and bad aliases come from the
//! parser with its position. Everything about the *meaning* of the document is checked on the
//! [`Node`] tree, so every such error can name the exact key or value.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::{Location, MessageFormatter, Spanned};

use super::error::{closest, list_names, Inner, ScenarioError};
pub(crate) use super::expand::Dialect;
use super::expand::{expand_as, ExpandError, PosMap};

/// A YAML value as parsed, before positions are resolved.
enum RawNode {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<String>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_none<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
                RawNode::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
                Ok(RawNode::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
                Ok(RawNode::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
                Ok(RawNode::Num(v.into()))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<RawNode, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<RawNode, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawNode, E> {
                serde_json::Number::from_f64(v)
                    .map(RawNode::Num)
                    .ok_or_else(|| E::custom(format!("value {v} is not a finite number")))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
                Ok(RawNode::Str(v.into()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
                Ok(RawNode::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<RawNode, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = s.next_element()? {
                    out.push(x);
                }
                Ok(RawNode::Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawNode, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    let v = m.next_value()?;
                    out.push((k, v));
                }
                Ok(RawNode::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A position in the file as written (after undoing `${...}` expansion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// Width of the node on its line, in characters (at least 1).
    pub width: usize,
}

/// A mapping key with its position.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub name: String,
    pub pos: Pos,
}

/// What a node holds.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A YAML node with its position and, for plain scalars, the text as written.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub pos: Pos,
    /// Source text of a non-string scalar (`1.50`, `0x10`, `true`), used when it is read as a
    /// string so that `arguments: [--rate, 1.50]` keeps `1.50`.
    pub raw: String,
}

impl Node {
    /// `a string`, `a list`, ... for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Num(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The type and, for scalars, the value: ``a number (`3`)``.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Str(s) => format!("a string ({s:?})"),
            Kind::Num(_) | Kind::Bool(_) => format!("{} (`{}`)", self.type_name(), self.raw),
            _ => self.type_name().to_string(),
        }
    }

    /// The node as JSON.
    pub(crate) fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Num(n) => Value::Number(n.clone()),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A string, or a number/boolean as written (`1.50` stays `1.50`); `None` otherwise.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Num(_) | Kind::Bool(_) => Some(self.raw.clone()),
            _ => None,
        }
    }
}

/// The scenario file: its name, its text as written, the expanded text and the map between.
pub(crate) struct Source {
    pub file: PathBuf,
    original: Vec<char>,
    /// Char offset of each original line start.
    orig_lines: Vec<usize>,
    /// Char offset of each expanded line start.
    exp_lines: Vec<usize>,
    /// Line texts of the original.
    orig_line_text: Vec<String>,
    map: PosMap,
}

impl Source {
    /// Expand `${...}` in `text` and parse it into a node tree (`None` for an empty document).
    pub(crate) fn parse(
        file: &Path,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Source, Option<Node>), ScenarioError> {
        Self::parse_as(file, text, lookup, Dialect::Scenario)
    }

    /// [`Source::parse`] with the interpolation rules of `dialect`.
    pub(crate) fn parse_as(
        file: &Path,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
        dialect: Dialect,
    ) -> Result<(Source, Option<Node>), ScenarioError> {
        let original: Vec<char> = text.chars().collect();
        let line_starts = |chars: &[char]| {
            let mut v = vec![0];
            v.extend(
                chars
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '\n')
                    .map(|(i, _)| i + 1),
            );
            v
        };
        let orig_lines = line_starts(&original);
        let orig_line_text = text.split('\n').map(str::to_string).collect();
        let mut src = Source {
            file: file.to_path_buf(),
            original,
            orig_lines,
            exp_lines: Vec::new(),
            orig_line_text,
            map: PosMap::default(),
        };
        let (expanded, map) = expand_as(text, lookup, dialect).map_err(|e: ExpandError| {
            let pos = src.pos_of_original(e.offset, e.len);
            src.error(pos, e.message, e.label).help(e.help)
        })?;
        let exp_chars: Vec<char> = expanded.chars().collect();
        src.exp_lines = line_starts(&exp_chars);
        src.map = map;

        let options = serde_saphyr::options! {
            strict_booleans: true,
        };
        let raw: Option<Spanned<RawNode>> = serde_saphyr::from_str_with_options(&expanded, options)
            .map_err(|e| src.yaml_error(&e))?;
        let node = raw.map(|r| src.convert(r, &expanded));
        Ok((src, node))
    }

    /// Position of `len` chars at original char offset `offset`.
    fn pos_of_original(&self, offset: usize, len: usize) -> Pos {
        let line_idx = match self.orig_lines.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.orig_lines[line_idx];
        let line_end = self
            .orig_lines
            .get(line_idx + 1)
            .map_or(self.original.len(), |n| n - 1);
        let width = len.min(line_end.saturating_sub(offset)).max(1);
        Pos {
            line: line_idx + 1,
            col: offset - line_start + 1,
            width,
        }
    }

    /// Original position of a parser location with `len` chars in the expanded text.
    fn pos_of_location(&self, loc: &Location, len: usize) -> Pos {
        if loc.line() == 0 {
            return Pos {
                line: 1,
                col: 1,
                width: 1,
            };
        }
        let line = (loc.line() as usize).min(self.exp_lines.len());
        let start = self.exp_lines[line - 1] + (loc.column() as usize).saturating_sub(1);
        let o_start = self.map.start(start);
        let o_end = self.map.end(start + len).max(o_start + 1);
        self.pos_of_original(o_start.min(self.original.len()), o_end - o_start)
    }

    /// Text of the (expanded) source covered by `loc`'s span, if it has byte offsets.
    fn raw_text<'t>(loc: &Location, expanded: &'t str) -> &'t str {
        let span = loc.span();
        match (span.byte_offset(), span.byte_len()) {
            (Some(o), Some(l)) => expanded
                .get(o as usize..(o + l) as usize)
                .unwrap_or_default(),
            _ => "",
        }
    }

    fn convert(&self, raw: Spanned<RawNode>, expanded: &str) -> Node {
        let len = raw.referenced.span().len() as usize;
        let pos = self.pos_of_location(&raw.referenced, len);
        let text = Self::raw_text(&raw.defined, expanded).trim().to_string();
        let kind = match raw.value {
            RawNode::Null => Kind::Null,
            RawNode::Bool(b) => Kind::Bool(b),
            RawNode::Num(n) => Kind::Num(n),
            RawNode::Str(s) => Kind::Str(s),
            RawNode::Seq(items) => Kind::Seq(
                items
                    .into_iter()
                    .map(|i| self.convert(i, expanded))
                    .collect(),
            ),
            RawNode::Map(entries) => Kind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let kpos = self.pos_of_location(
                            &k.referenced,
                            (k.referenced.span().len() as usize).max(k.value.chars().count()),
                        );
                        (
                            Key {
                                name: k.value,
                                pos: kpos,
                            },
                            self.convert(v, expanded),
                        )
                    })
                    .collect(),
            ),
        };
        let raw = match &kind {
            Kind::Num(n) if text.is_empty() => n.to_string(),
            Kind::Bool(b) if text.is_empty() => b.to_string(),
            _ => text,
        };
        Node { kind, pos, raw }
    }

    /// An error at `pos`.
    /// The text of line `line` (1-based) as written.
    pub(crate) fn line_text(&self, line: usize) -> Option<&str> {
        self.orig_line_text
            .get(line.checked_sub(1)?)
            .map(String::as_str)
    }

    pub(crate) fn error(
        &self,
        pos: Pos,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::new(Inner {
            file: self.file.clone(),
            line: pos.line,
            column: pos.col,
            message: message.into(),
            label: label.into(),
            width: pos.width.max(1),
            source_line: self
                .orig_line_text
                .get(pos.line.saturating_sub(1))
                .map(|l| l.trim_end_matches('\r').to_string())
                .unwrap_or_default(),
            notes: Vec::new(),
        })
    }

    /// A parser error, with the parser's position and message.
    fn yaml_error(&self, e: &serde_saphyr::Error) -> ScenarioError {
        let inner = e.without_snippet();
        let loc = e.location().unwrap_or(Location::UNKNOWN);
        let (len, message, label, help) = match inner {
            serde_saphyr::Error::DuplicateMappingKey { key, .. } => {
                let key = key.clone().unwrap_or_default();
                (
                    key.chars().count(),
                    format!("duplicate key `{key}`"),
                    "this key appears earlier in the same mapping".to_string(),
                    "each key may appear once in a mapping; remove or merge one of them"
                        .to_string(),
                )
            }
            serde_saphyr::Error::MultipleDocuments { .. } => (
                3,
                "a scenario file holds one YAML document, but this is a second one".into(),
                "second document starts here".into(),
                "remove this `---` line, or move the second document to its own file".into(),
            ),
            other => {
                let text = serde_saphyr::UserMessageFormatter.format_message(other);
                (
                    1,
                    format!("YAML syntax error: {text}"),
                    String::new(),
                    "check the indentation, quotes and brackets around here (YAML indents with \
                     spaces, never tabs)"
                        .to_string(),
                )
            }
        };
        let pos = self.pos_of_location(&loc, len.max(1));
        self.error(pos, message, label).help(help)
    }
}

/// A variable's value by name (`None`: unset).
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The decoding context: the source and the errors found so far (a scenario's decoder adds
/// its own state around it: `scenario::node::Cx`).
pub(crate) struct Cx<'s> {
    pub src: &'s Source,
    pub errors: Vec<ScenarioError>,
    /// The variables the scenario was expanded with (for files it names, e.g. compose
    /// files); `None`: no variable is set.
    pub lookup: Option<Lookup<'s>>,
}

impl<'s> Cx<'s> {
    pub(crate) fn new(src: &'s Source) -> Self {
        Self {
            src,
            errors: Vec::new(),
            lookup: None,
        }
    }

    /// Record an error; always `None`, so decoders can `return cx.fail(..)`.
    pub(crate) fn fail<T>(&mut self, e: ScenarioError) -> Option<T> {
        self.errors.push(e);
        None
    }

    /// An error at `pos` (to be completed with `.help(..)` and recorded with [`Cx::fail`]).
    pub(crate) fn err(
        &self,
        pos: Pos,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> ScenarioError {
        self.src.error(pos, message, label)
    }

    /// A type error: `what` must be `expected`; `example` shows what to write.
    pub(crate) fn type_error<T>(
        &mut self,
        node: &Node,
        what: &str,
        expected: &str,
        example: &str,
    ) -> Option<T> {
        let e = self
            .err(
                node.pos,
                format!("{what} must be {expected}, but this is {}", node.describe()),
                format!("expected {expected}"),
            )
            .help(format!("write e.g. `{example}`"));
        self.fail(e)
    }

    /// A string (numbers and booleans as written are accepted, e.g. `agent-class: 12`).
    pub(crate) fn string(&mut self, node: &Node, what: &str, example: &str) -> Option<String> {
        match node.scalar_text() {
            Some(s) => Some(s),
            None => self.type_error(node, what, "a string", example),
        }
    }

    /// A non-empty string.
    pub(crate) fn nonempty_string(
        &mut self,
        node: &Node,
        what: &str,
        example: &str,
    ) -> Option<String> {
        let s = self.string(node, what, example)?;
        if s.trim().is_empty() {
            let e = self
                .err(node.pos, format!("{what} must not be empty"), "empty")
                .help(format!("write e.g. `{example}`"));
            return self.fail(e);
        }
        Some(s)
    }

    /// A boolean.
    pub(crate) fn bool(&mut self, node: &Node, what: &str, example: &str) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => self.type_error(node, what, "`true` or `false`", example),
        }
    }

    /// A list of strings; a single string is accepted as a one-item list when `single` is set.
    pub(crate) fn strings(
        &mut self,
        node: &Node,
        what: &str,
        example: &str,
        single: bool,
    ) -> Option<Vec<String>> {
        match &node.kind {
            Kind::Seq(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for item in items {
                    match item.scalar_text() {
                        Some(s) => out.push(s),
                        None => {
                            ok = false;
                            let _: Option<()> = self.type_error(
                                item,
                                &format!("each item of {what}"),
                                "a string",
                                example,
                            );
                        }
                    }
                }
                ok.then_some(out)
            }
            _ if single => match node.scalar_text() {
                Some(s) => Some(vec![s]),
                None => self.type_error(node, what, "a string or a list of strings", example),
            },
            _ => self.type_error(node, what, "a list of strings", example),
        }
    }

    /// Open a mapping whose keys must come from `allowed`; unknown keys are reported (with a
    /// suggestion) and skipped. `what` names the mapping in messages (`an agent`).
    pub(crate) fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&'static str],
        example: &str,
    ) -> Option<Fields<'n>> {
        let Kind::Map(entries) = &node.kind else {
            return self.type_error(node, &capitalise(what), "a mapping", example);
        };
        let mut suggested = Vec::new();
        for (k, _) in entries {
            if !allowed.contains(&k.name.as_str()) {
                if let Some(s) = closest(&k.name, allowed.iter().copied()) {
                    suggested.push(s);
                }
                let e = self.unknown_key(k, what, allowed);
                self.errors.push(e);
            }
        }
        Some(Fields {
            node,
            entries,
            suggested,
        })
    }

    /// The error for key `k` not in `allowed`.
    pub(crate) fn unknown_key(&self, k: &Key, what: &str, allowed: &[&str]) -> ScenarioError {
        let message = format!("unknown key `{}` in {what}", k.name);
        match closest(&k.name, allowed.iter().copied()) {
            Some(s) => self.err(k.pos, message, format!("did you mean `{s}`?")),
            None => self
                .err(k.pos, message, "unknown key")
                .help(format!("the keys of {what} are {}", list_names(allowed))),
        }
    }
}

/// A mapping being decoded (see [`Cx::fields`]).
pub(crate) struct Fields<'n> {
    pub node: &'n Node,
    pub entries: &'n [(Key, Node)],
    /// Keys suggested for misspelt keys of this mapping: a "missing `x`" error is redundant
    /// when a misspelling of `x` was already reported.
    pub suggested: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    /// A mapping whose keys the caller has already checked against `allowed`.
    pub(crate) fn unchecked(
        node: &'n Node,
        entries: &'n [(Key, Node)],
        suggested: Vec<&'static str>,
    ) -> Self {
        Self {
            node,
            entries,
            suggested,
        }
    }

    /// Whether a misspelling of `key` was reported (so its absence need not be).
    pub(crate) fn misspelt(&self, key: &str) -> bool {
        self.suggested.contains(&key)
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// The key `key` itself (for positions).
    pub(crate) fn key(&self, key: &str) -> Option<&'n Key> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, _)| k)
    }

    /// The position of the mapping: its first key (a block mapping has no token of its own).
    pub(crate) fn pos(&self) -> Pos {
        self.entries.first().map_or(self.node.pos, |(k, _)| k.pos)
    }
}

/// `an agent` -> `An agent`.
pub(crate) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl From<Pos> for super::SourcePos {
    fn from(p: Pos) -> Self {
        Self {
            line: p.line,
            column: p.col,
            width: p.width,
        }
    }
}

impl From<super::SourcePos> for Pos {
    fn from(p: super::SourcePos) -> Self {
        Pos {
            line: p.line,
            col: p.column,
            width: p.width,
        }
    }
}
