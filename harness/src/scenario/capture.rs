//! Captures: a value a step saves from what it got back (`capture: {file: data.current_file}`)
//! for later steps, which use it as `"{{file}}"` in `params`, `args`, `kwargs`, `password` and
//! expectation values. This module owns the path syntax, the `{{name}}` reference syntax, and
//! [`Bindings`]: what the runner knows when a step starts (captured values, fault times),
//! applied to a step by [`StepKind::resolve`](super::StepKind::resolve).
//!
//! A reference that is the whole string (`"{{file}}"`) stands for the captured value with its
//! JSON type (a number stays a number); inside a longer string it is replaced by the value's
//! text. That a name is captured by an earlier step is checked when the file is parsed.
//!
//! Times ([`TimeValue`]): a mapping `{now: OFFSET}` stands for the unix time at which the step
//! started plus OFFSET (`+100s`, `-5s`, `1m`, or a number of seconds), and `{at: NAME, plus:
//! OFFSET}` for the time captured as NAME plus OFFSET. One step has one `now`, so a step that
//! sends `expire_at: {now: +100s}` can expect the same value back. A step captures its time
//! with `capture: {t0: {now: 0s}}`.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// One `capture:` entry: save the value at `path` as `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// The name later steps use (`{{name}}`).
    pub name: String,
    /// Where the value comes from.
    pub from: CaptureFrom,
}

/// Where a captured value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureFrom {
    /// A path in what the step got back.
    Path(ValuePath),
    /// A time (`capture: {t0: {now: 0s}}`): the step's start, or another capture, plus an offset.
    Time(TimeValue),
}

impl CaptureFrom {
    /// The path, when the value comes from what the step got back.
    pub fn path(&self) -> Option<&ValuePath> {
        match self {
            CaptureFrom::Path(p) => Some(p),
            CaptureFrom::Time(_) => None,
        }
    }
}

impl fmt::Display for CaptureFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureFrom::Path(p) => write!(f, "{p}"),
            CaptureFrom::Time(t) => write!(f, "{t}"),
        }
    }
}

/// A time a scenario writes as a value (see the module docs), resolved when the step starts.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeValue {
    /// `{now: OFFSET}`: the step's start (unix seconds) plus this many seconds.
    Now(f64),
    /// `{at: NAME, plus: OFFSET}`: the time captured as NAME plus this many seconds.
    At(String, f64),
}

impl TimeValue {
    /// The time `v` stands for, if it has a time's shape: exactly the key `now`, or the key
    /// `at` with an optional `plus`. `Err` says what is wrong with one that has the shape.
    pub fn of(v: &Value) -> Option<Result<TimeValue, String>> {
        let Value::Object(o) = v else {
            return None;
        };
        if o.len() == 1 {
            if let Some(off) = o.get("now") {
                return Some(offset_seconds(off).map(TimeValue::Now));
            }
        }
        let at = o.get("at")?;
        if !o.keys().all(|k| k == "at" || k == "plus") {
            return None;
        }
        let Value::String(name) = at else {
            return Some(Err(format!(
                "`at` names a capture holding a time, e.g. `{{at: t0, plus: 100s}}`; got {at}"
            )));
        };
        let plus = match o.get("plus") {
            Some(p) => match offset_seconds(p) {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            },
            None => 0.0,
        };
        Some(Ok(TimeValue::At(name.trim().to_string(), plus)))
    }
}

impl fmt::Display for TimeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off = |x: f64| {
            if x < 0.0 {
                format!("{x}s")
            } else {
                format!("+{x}s")
            }
        };
        match self {
            TimeValue::Now(x) => write!(f, "{{now: {}}}", off(*x)),
            TimeValue::At(n, x) => write!(f, "{{at: {n}, plus: {}}}", off(*x)),
        }
    }
}

/// The seconds of a time offset: a number, or a signed duration (`+100s`, `-5s`, `1m 30s`).
pub fn offset_seconds(v: &Value) -> Result<f64, String> {
    let bad = || {
        format!(
            "a time offset is a signed duration such as `+100s`, `-5s` or `1m`, or a number \
             of seconds; got {v}"
        )
    };
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(bad),
        Value::String(s) => {
            let t = s.trim();
            let (sign, body) = match (t.strip_prefix('-'), t.strip_prefix('+')) {
                (Some(rest), _) => (-1.0, rest.trim_start()),
                (_, Some(rest)) => (1.0, rest.trim_start()),
                _ => (1.0, t),
            };
            let secs = match body.parse::<f64>() {
                Ok(x) if x.is_finite() => x,
                _ => humantime::parse_duration(body)
                    .map_err(|_| bad())?
                    .as_secs_f64(),
            };
            Ok(sign * secs)
        }
        _ => Err(bad()),
    }
}

/// A path into a JSON value: keys separated by `.`, list indexes as `[0]`, and keys that are
/// not plain words as `["observatory.fake1"]`, e.g. `session.data.channels[0].name`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuePath {
    parts: Vec<PathPart>,
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum PathPart {
    Key(String),
    Index(usize),
}

impl ValuePath {
    /// Parse `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<ValuePath, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('[') {
                let end = r
                    .find(']')
                    .ok_or_else(|| format!("`[` without `]` in `{text}`"))?;
                let inside = &r[..end];
                parts.push(bracket(inside).ok_or_else(|| {
                    format!("`[{inside}]` is neither an index (`[0]`) nor a quoted key")
                })?);
                rest = &r[end + 1..];
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                if end == 0 {
                    return Err(format!("an empty key in `{text}`"));
                }
                parts.push(PathPart::Key(rest[..end].to_string()));
                rest = &rest[end..];
            }
            if let Some(r) = rest.strip_prefix('.') {
                if r.is_empty() || r.starts_with(['.', '[']) {
                    return Err(format!("an empty key in `{text}`"));
                }
                rest = r;
            }
        }
        match parts.first() {
            Some(PathPart::Key(_)) => Ok(ValuePath {
                parts,
                text: text.to_string(),
            }),
            _ => Err("a path starts with a key, e.g. `data.current_file`".into()),
        }
    }

    /// Its first key (what the step got back has these at the top).
    pub fn first(&self) -> &str {
        match &self.parts[0] {
            PathPart::Key(k) => k,
            PathPart::Index(_) => unreachable!("parse requires a key first"),
        }
    }

    /// Replace the value at this path in `v`, when there is one, by `with`; whether it was.
    pub fn replace(&self, v: &mut Value, with: Value) -> bool {
        let found = self.parts.iter().try_fold(v, |v, p| match p {
            PathPart::Key(k) => v.get_mut(k.as_str()),
            PathPart::Index(i) => v.get_mut(*i),
        });
        match found {
            Some(slot) => {
                *slot = with;
                true
            }
            None => false,
        }
    }

    /// The value at this path in `v`, if there is one.
    pub fn get<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.parts.iter().try_fold(v, |v, p| match p {
            PathPart::Key(k) => v.get(k.as_str()),
            PathPart::Index(i) => v.get(*i),
        })
    }
}

fn bracket(inside: &str) -> Option<PathPart> {
    if let Ok(i) = inside.parse::<usize>() {
        return Some(PathPart::Index(i));
    }
    let quoted = inside
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| inside.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))?;
    Some(PathPart::Key(quoted.to_string()))
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether `name` can name a capture: a letter or `_`, then letters, digits, `_` or `-`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A `{{name}}` reference in a text: the name, and where the reference is (character offset
/// and length of the whole `{{...}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The name, spaces trimmed.
    pub name: String,
    /// Character offset of `{{`.
    pub at: usize,
    /// Length in characters of `{{...}}`.
    pub len: usize,
}

/// Every `{{name}}` in `text`, in order.
pub fn references(text: &str) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("{{").map(|i| i + from) {
        let Some(end) = text[start + 2..].find("}}").map(|i| i + start + 2) else {
            break;
        };
        out.push(Reference {
            name: text[start + 2..end].trim().to_string(),
            at: text[..start].chars().count(),
            len: text[start..end + 2].chars().count(),
        });
        from = end + 2;
    }
    out
}

/// What the runner knows when a step starts, for resolving the step's values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bindings {
    /// Unix time of the last fault step (what `after-last-fault` refers to).
    pub last_fault: Option<f64>,
    /// Unix time the stack was ready again after the last fault (what `after-ready-again`
    /// refers to); `None` when the last fault did not wait for readiness.
    pub ready_again: Option<f64>,
    /// Every value captured so far, by name.
    pub captured: BTreeMap<String, Value>,
    /// Unix time at which the current step started (what `{now: OFFSET}` refers to).
    pub now: Option<f64>,
}

impl Bindings {
    /// `v` with every `{{name}}` in its strings replaced (see the module docs); unknown names
    /// (the parser rejects them) stay as written.
    pub fn value(&self, v: &Value) -> Value {
        if let Some(Ok(t)) = TimeValue::of(v) {
            if let Some(x) = self.time(&t) {
                return serde_json::json!(x);
            }
        }
        match v {
            Value::String(s) => self.string(s),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), self.value(v))).collect())
            }
            other => other.clone(),
        }
    }

    /// The unix time `t` stands for (to the millisecond), when its base is known: the step's
    /// start, or a captured number.
    pub fn time(&self, t: &TimeValue) -> Option<f64> {
        let x = match t {
            TimeValue::Now(off) => self.now? + off,
            TimeValue::At(name, off) => self.captured.get(name)?.as_f64()? + off,
        };
        Some((x * 1000.0).round() / 1000.0)
    }

    /// A string with its references replaced: the captured value itself when the reference
    /// is the whole string, else a string.
    pub fn string(&self, s: &str) -> Value {
        let refs = references(s);
        if refs.is_empty() {
            return Value::String(s.to_string());
        }
        if let [r] = refs.as_slice() {
            if r.len == s.chars().count() {
                if let Some(v) = self.captured.get(&r.name) {
                    return v.clone();
                }
            }
        }
        Value::String(self.text(s))
    }

    /// A string with its references replaced by the captured values' text.
    pub fn text(&self, s: &str) -> String {
        let mut out = String::new();
        let chars: Vec<char> = s.chars().collect();
        let mut at = 0;
        for r in references(s) {
            out.extend(&chars[at..r.at]);
            match self.captured.get(&r.name) {
                Some(Value::String(v)) => out.push_str(v),
                Some(v) => out.push_str(&v.to_string()),
                None => out.extend(&chars[r.at..r.at + r.len]),
            }
            at = r.at + r.len;
        }
        out.extend(&chars[at..]);
        out
    }
}

impl super::StepKind {
    /// This step as the runner runs it: its values resolved against `b` (captured values in
    /// params, arguments and expectations; fault times).
    pub fn resolve(&self, b: &Bindings) -> super::StepKind {
        use super::StepKind;
        let mut kind = self.clone();
        match &mut kind {
            StepKind::Api { expect, .. } => {
                expect.fields = expect.fields.as_ref().map(|m| m.resolve(b));
            }
            StepKind::Op { params, expect, .. } => {
                *params = params.as_ref().map(|p| b.value(p));
                *expect = expect.resolve(b);
            }
            StepKind::Until { expect, .. } => *expect = expect.resolve(b),
            StepKind::Call(c) => {
                c.args = c.args.iter().map(|v| b.value(v)).collect();
                c.kwargs = c
                    .kwargs
                    .iter()
                    .map(|(k, v)| (k.clone(), b.value(v)))
                    .collect();
                c.expect.value = c.expect.value.as_ref().map(|m| m.resolve(b));
                c.expect.error = c.expect.error.as_ref().map(|m| m.resolve(b));
            }
            StepKind::Feed(f) => {
                f.count = f.count.as_ref().map(|m| m.resolve(b));
                for (_, m) in &mut f.fields {
                    *m = m.resolve(b);
                }
            }
            StepKind::Logs(_)
            | StepKind::Fault(_)
            | StepKind::Exits { .. }
            | StepKind::Fetch(_)
            | StepKind::Exec(_)
            | StepKind::Device(_) => {}
        }
        kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_parse_and_find_values() {
        let v = json!({"data": {"a.b": [1, {"c": "x"}]}, "status": "ok"});
        let get = |p: &str| ValuePath::parse(p).unwrap().get(&v).cloned();
        assert_eq!(get("status"), Some(json!("ok")));
        assert_eq!(get(r#"data["a.b"][1].c"#), Some(json!("x")));
        assert_eq!(get("data['a.b'][0]"), Some(json!(1)));
        assert_eq!(get("data.nope"), None);
        assert_eq!(
            ValuePath::parse("session.data.x").unwrap().first(),
            "session"
        );
        for bad in ["", "a..b", "a.", "[0]", "a[x]", "a[0", ".a"] {
            assert!(ValuePath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn references_are_found_and_replaced() {
        let r = references("a {{ x }} b {{y}}");
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].name.as_str(), r[0].at, r[0].len), ("x", 2, 7));
        assert_eq!((r[1].name.as_str(), r[1].at, r[1].len), ("y", 12, 5));
        assert!(references("{{ unclosed").is_empty());
        let mut b = Bindings::default();
        b.captured.insert("n".into(), json!(3));
        b.captured.insert("f".into(), json!("file.g3"));
        assert_eq!(
            b.string("{{n}}"),
            json!(3),
            "a whole reference keeps its type"
        );
        assert_eq!(b.string("n={{n}}, {{f}}"), json!("n=3, file.g3"));
        assert_eq!(b.string("{{other}}"), json!("{{other}}"));
        assert_eq!(
            b.value(&json!({"k": ["{{f}}", 1]})),
            json!({"k": ["file.g3", 1]})
        );
        assert!(valid_name("current_file-2") && !valid_name("2x") && !valid_name("a.b"));
    }

    #[test]
    fn times_resolve_against_the_step_and_captures() {
        let mut b = Bindings {
            now: Some(1000.0),
            ..Bindings::default()
        };
        b.captured.insert("t0".into(), json!(500.25));
        assert_eq!(b.value(&json!({"now": "+100s"})), json!(1100.0));
        assert_eq!(b.value(&json!({"now": "-1m"})), json!(940.0));
        assert_eq!(b.value(&json!({"now": 2.5})), json!(1002.5));
        assert_eq!(b.value(&json!({"at": "t0", "plus": "1s"})), json!(501.25));
        assert_eq!(b.value(&json!({"at": "t0"})), json!(500.25));
        // not a time: other keys, or a name that holds no number
        assert_eq!(
            b.value(&json!({"now": 1, "x": 2})),
            json!({"now": 1, "x": 2})
        );
        assert_eq!(b.value(&json!({"at": "nope"})), json!({"at": "nope"}));
        assert_eq!(
            b.value(&json!({"expire_at": {"now": "+100s"}})),
            json!({"expire_at": 1100.0})
        );
        assert!(TimeValue::of(&json!({"now": "soon"})).unwrap().is_err());
        assert!(TimeValue::of(&json!({"at": 3})).unwrap().is_err());
        assert_eq!(
            TimeValue::of(&json!({"now": "+100s"}))
                .unwrap()
                .unwrap()
                .to_string(),
            "{now: +100s}"
        );
    }
}
