//! `${VAR}` / `${VAR:-default}` expansion on the raw scenario text, before YAML parsing, and the
//! position map that turns positions in the expanded text back into positions in the file.
//!
//! Rules (the scenario dialect; compose files use [`Dialect::Compose`], see there):
//! - `${VAR}` is replaced by the variable's value; unset is an error naming the variable.
//! - `${VAR:-default}` uses `default` when `VAR` is unset or empty (as in the shell).
//! - `$$` is a literal `$`; a `$` followed by anything else stays as written (so regex anchors
//!   like `done\.$` need no escaping).
//! - Comments are left alone: a `#` at the start of a line, or after a space outside a quoted
//!   string on that line, ends the expandable part of the line.
//! - Because expansion works on the text, it reaches every scalar (keys, quoted and plain
//!   strings, numbers). Error positions always point into the file as written: the
//!   [`PosMap`] maps any position inside an expansion to the `${...}` that produced it, so
//!   even a value that expands to several lines is reported at the right place.

/// One replaced piece of text, in character offsets.
#[derive(Debug, Clone, Copy)]
struct Seg {
    exp_start: usize,
    exp_end: usize,
    orig_start: usize,
    orig_end: usize,
}

/// Maps character offsets of the expanded text to character offsets of the original text.
#[derive(Debug, Clone, Default)]
pub(crate) struct PosMap {
    segs: Vec<Seg>,
}

impl PosMap {
    /// The original offset of expanded offset `p` (inside an expansion: its `${`).
    pub(crate) fn start(&self, p: usize) -> usize {
        let mut shift_from = (0, 0);
        for s in &self.segs {
            if p < s.exp_start {
                break;
            }
            if p < s.exp_end {
                return s.orig_start;
            }
            shift_from = (s.exp_end, s.orig_end);
        }
        p - shift_from.0 + shift_from.1
    }

    /// The original offset of the exclusive end offset `p` (inside an expansion: past its `}`).
    pub(crate) fn end(&self, p: usize) -> usize {
        let mut shift_from = (0, 0);
        for s in &self.segs {
            if p <= s.exp_start {
                break;
            }
            if p < s.exp_end {
                return s.orig_end;
            }
            shift_from = (s.exp_end, s.orig_end);
        }
        p - shift_from.0 + shift_from.1
    }
}

/// A problem found while expanding, at a character offset of the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpandError {
    pub offset: usize,
    pub len: usize,
    pub message: String,
    pub label: String,
    pub help: String,
}

/// Which interpolation rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// A scenario file: `${VAR}` (unset is an error), `${VAR:-default}`, `$$`.
    Scenario,
    /// A compose file, as compose interpolates it: `$VAR` and `${VAR}` (unset is empty),
    /// `${VAR:-default}` / `${VAR-default}` (unset or empty / unset), `${VAR:?error}` /
    /// `${VAR?error}` (an error when unset or empty / unset), `${VAR:+replacement}` /
    /// `${VAR+replacement}` (when set and not empty / set), nested references in the default,
    /// and `$$`.
    Compose,
}

/// Expand `text` with `lookup` (normally `std::env::var`), by the scenario rules.
#[cfg(test)]
pub(crate) fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, PosMap), ExpandError> {
    expand_as(text, lookup, Dialect::Scenario)
}

/// Expand `text` with `lookup` by the rules of `dialect`.
pub(crate) fn expand_as(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    dialect: Dialect,
) -> Result<(String, PosMap), ExpandError> {
    let mut x = Expander {
        chars: text.chars().collect(),
        out: String::with_capacity(text.len()),
        out_len: 0,
        map: PosMap::default(),
        lookup,
        dialect,
    };
    let mut i = 0;
    let mut quote: Option<char> = None;
    let mut in_comment = false;
    while i < x.chars.len() {
        let c = x.chars[i];
        let prev = if i == 0 { None } else { Some(x.chars[i - 1]) };
        if c == '\n' {
            quote = None;
            in_comment = false;
            x.push_char(c);
            i += 1;
            continue;
        }
        if in_comment {
            x.push_char(c);
            i += 1;
            continue;
        }
        match (quote, c) {
            (None, '#') if prev.is_none_or(|p| p == ' ' || p == '\t' || p == '\n') => {
                in_comment = true;
            }
            (None, '\'' | '"')
                if prev.is_none_or(|p| p.is_whitespace() || matches!(p, '[' | '{' | ',')) =>
            {
                quote = Some(c);
            }
            (Some('"'), '\\') => {
                i = x.escape(i);
                continue;
            }
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        i = if c == '$' {
            x.dollar(i)?
        } else {
            x.push_char(c);
            i + 1
        };
    }
    Ok((x.out, x.map))
}

/// The state of one expansion: the original text, the output so far and its position map.
struct Expander<'a> {
    chars: Vec<char>,
    out: String,
    /// Length of `out` in characters.
    out_len: usize,
    map: PosMap,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    dialect: Dialect,
}

impl Expander<'_> {
    fn push_char(&mut self, c: char) {
        self.out.push(c);
        self.out_len += 1;
    }

    /// Output `value` for the original characters `orig_start..orig_end`.
    fn replace(&mut self, value: &str, orig_start: usize, orig_end: usize) {
        let exp_start = self.out_len;
        self.out.push_str(value);
        self.out_len += value.chars().count();
        self.map.segs.push(Seg {
            exp_start,
            exp_end: self.out_len,
            orig_start,
            orig_end,
        });
    }

    /// A `\` at `i` in a double-quoted string: keep it and the escaped character as written.
    /// Returns where to go on.
    fn escape(&mut self, mut i: usize) -> usize {
        self.push_char('\\');
        i += 1;
        if let Some(&next) = self.chars.get(i) {
            if next != '\n' {
                self.push_char(next);
                i += 1;
            }
        }
        i
    }

    /// A `$` at `i`: `$$`, `${...}`, or a `$` kept as written. Returns where to go on.
    fn dollar(&mut self, i: usize) -> Result<usize, ExpandError> {
        match self.chars.get(i + 1) {
            Some('$') => {
                self.replace("$", i, i + 2);
                Ok(i + 2)
            }
            Some('{') if self.dialect == Dialect::Compose => self.compose_reference(i),
            Some('{') => self.reference(i),
            Some(c)
                if self.dialect == Dialect::Compose && (c.is_ascii_alphabetic() || *c == '_') =>
            {
                let end = self.chars[i + 1..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
                    .map_or(self.chars.len(), |p| i + 1 + p);
                let name: String = self.chars[i + 1..end].iter().collect();
                let value = (self.lookup)(&name).unwrap_or_default();
                self.replace(&value, i, end);
                Ok(end)
            }
            _ => {
                self.push_char('$');
                Ok(i + 1)
            }
        }
    }

    /// `${NAME}` or `${NAME:-default}` starting at `i`. Returns where to go on.
    fn reference(&mut self, i: usize) -> Result<usize, ExpandError> {
        let chars = &self.chars;
        let close = chars[i + 2..]
            .iter()
            .take_while(|c| **c != '\n')
            .position(|c| *c == '}')
            .map(|p| i + 2 + p);
        let Some(close) = close else {
            let line_end = chars[i..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |p| i + p);
            return Err(ExpandError {
                offset: i,
                len: line_end - i,
                message: "unterminated `${`: no `}` on this line".into(),
                label: "opened here".into(),
                help: "write `${NAME}` or `${NAME:-default}`, or `$$` for a literal `$`".into(),
            });
        };
        let inner: String = chars[i + 2..close].iter().collect();
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner.as_str(), None),
        };
        let len = close + 1 - i;
        if !is_variable_name(name) {
            return Err(ExpandError {
                offset: i,
                len,
                message: format!("`${{{inner}}}` is not a variable reference"),
                label: "expected `${NAME}` or `${NAME:-default}`".into(),
                help: "variable names are letters, digits and `_`; only `${NAME}` and \
                       `${NAME:-default}` are supported; write `$$` for a literal `$`"
                    .into(),
            });
        }
        let value = match ((self.lookup)(name), default) {
            (Some(v), Some(d)) if v.is_empty() => d.to_string(),
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(ExpandError {
                    offset: i,
                    len,
                    message: format!("environment variable `{name}` is not set"),
                    label: "used here".into(),
                    help: format!(
                        "set `{name}` in the environment, or give a default: `${{{name}:-value}}`"
                    ),
                })
            }
        };
        self.replace(&value, i, close + 1);
        Ok(close + 1)
    }

    /// A compose `${...}` starting at `i` (see [`Dialect::Compose`]). Returns where to go on.
    fn compose_reference(&mut self, i: usize) -> Result<usize, ExpandError> {
        let help = "write `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, \
                    `${NAME?message}`, `${NAME:+value}` or `${NAME+value}`, or `$$` for a \
                    literal `$`";
        // the matching `}` on this line (nested references in the default count)
        let mut depth = 0usize;
        let mut close = None;
        let mut j = i + 2;
        while let Some(&c) = self.chars.get(j) {
            match c {
                '\n' => break,
                '{' if self.chars.get(j.wrapping_sub(1)) == Some(&'$') => depth += 1,
                '}' if depth == 0 => {
                    close = Some(j);
                    break;
                }
                '}' => depth -= 1,
                _ => {}
            }
            j += 1;
        }
        let Some(close) = close else {
            let line_end = self.chars[i..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(self.chars.len(), |p| i + p);
            return Err(ExpandError {
                offset: i,
                len: line_end - i,
                message: "unterminated `${`: no `}` on this line".into(),
                label: "opened here".into(),
                help: help.into(),
            });
        };
        let inner: String = self.chars[i + 2..close].iter().collect();
        let len = close + 1 - i;
        let name_end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, rest) = inner.split_at(name_end);
        let op = ["", ":-", "-", ":?", "?", ":+", "+"]
            .into_iter()
            .rev()
            .find(|op| rest.starts_with(op))
            .filter(|op| !op.is_empty() || rest.is_empty());
        let (Some(op), true) = (op, is_variable_name(name)) else {
            return Err(ExpandError {
                offset: i,
                len,
                message: format!("`${{{inner}}}` is not a variable reference"),
                label: "not compose interpolation".into(),
                help: help.into(),
            });
        };
        let lookup = self.lookup;
        let arg = || -> Result<String, ExpandError> {
            let text = &rest[op.len()..];
            let (value, _) = expand_as(text, lookup, Dialect::Compose).map_err(|mut e| {
                e.offset = i;
                e.len = len;
                e
            })?;
            Ok(value)
        };
        let value = lookup(name);
        let set = value.is_some();
        let nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
        let value = match op {
            ":-" if !nonempty => arg()?,
            "-" if !set => arg()?,
            ":+" => {
                if nonempty {
                    arg()?
                } else {
                    String::new()
                }
            }
            "+" => {
                if set {
                    arg()?
                } else {
                    String::new()
                }
            }
            ":?" | "?" if !(if op == ":?" { nonempty } else { set }) => {
                let message = arg()?;
                let state = if set { "empty" } else { "not set" };
                return Err(ExpandError {
                    offset: i,
                    len,
                    message: if message.is_empty() {
                        format!("required variable `{name}` is {state}")
                    } else {
                        format!("required variable `{name}` is {state}: {message}")
                    },
                    label: "required here".into(),
                    help: format!(
                        "set `{name}` in the environment or in the `.env` file next to the \
                         first compose file (or an `env-file` of `compose`)"
                    ),
                });
            }
            _ => value.unwrap_or_default(),
        };
        self.replace(&value, i, close + 1);
        Ok(close + 1)
    }
}

/// Letters, digits and `_`, not starting with a digit.
fn is_variable_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("ocs-docker".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            _ => None,
        }
    }

    fn ex(s: &str) -> Result<String, ExpandError> {
        expand(s, &env).map(|(t, _)| t)
    }

    #[test]
    fn expands_defaults_and_escapes() {
        assert_eq!(ex("h: ${HOST}\n").unwrap(), "h: ocs-docker\n");
        assert_eq!(ex("h: ${NOPE:-x y}\n").unwrap(), "h: x y\n");
        assert_eq!(ex("h: ${EMPTY:-d}\n").unwrap(), "h: d\n");
        assert_eq!(ex("h: ${EMPTY}\n").unwrap(), "h: \n");
        assert_eq!(ex("h: ${NOPE:-}\n").unwrap(), "h: \n");
        assert_eq!(ex("p: $$HOME and $x\n").unwrap(), "p: $HOME and $x\n");
        assert_eq!(ex("r: 'done\\.$'\n").unwrap(), "r: 'done\\.$'\n");
        assert_eq!(ex("q: \"${HOST}\"\n").unwrap(), "q: \"ocs-docker\"\n");
    }

    #[test]
    fn comments_are_left_alone() {
        assert_eq!(
            ex("# uses ${UNSET}\na: 1 # ${UNSET}\nb: 'x # ${HOST}'\nc: x#${HOST}\n").unwrap(),
            "# uses ${UNSET}\na: 1 # ${UNSET}\nb: 'x # ocs-docker'\nc: x#ocs-docker\n"
        );
    }

    #[test]
    fn errors_point_at_the_reference() {
        let e = ex("a: 1\nb: x${UNSET}y\n").unwrap_err();
        assert_eq!((e.offset, e.len), (9, 8));
        assert_eq!(e.message, "environment variable `UNSET` is not set");
        let e = ex("b: ${UNSET\n").unwrap_err();
        assert!(e.message.contains("unterminated"), "{e:?}");
        let e = ex("b: ${1X}\n").unwrap_err();
        assert!(e.message.contains("not a variable reference"), "{e:?}");
        let e = ex("b: ${X:=y}\n").unwrap_err();
        assert!(e.message.contains("not a variable reference"), "{e:?}");
    }

    fn cx(s: &str) -> Result<String, ExpandError> {
        expand_as(s, &env, Dialect::Compose).map(|(t, _)| t)
    }

    #[test]
    fn compose_interpolation_as_compose_does_it() {
        assert_eq!(
            cx("h: $HOST/${HOST}\n").unwrap(),
            "h: ocs-docker/ocs-docker\n"
        );
        assert_eq!(cx("h: ${UNSET}|$UNSET|\n").unwrap(), "h: ||\n");
        assert_eq!(cx("h: ${EMPTY:-d} ${EMPTY-d}\n").unwrap(), "h: d \n");
        assert_eq!(cx("h: ${UNSET:-d} ${UNSET-d}\n").unwrap(), "h: d d\n");
        assert_eq!(
            cx("h: ${HOST:+on} ${EMPTY:+on} ${EMPTY+on}\n").unwrap(),
            "h: on  on\n"
        );
        assert_eq!(cx("h: ${UNSET:-${HOST}-x}\n").unwrap(), "h: ocs-docker-x\n");
        assert_eq!(
            cx("h: ${HOST:?gone} $$HOST\n").unwrap(),
            "h: ocs-docker $HOST\n"
        );
        assert_eq!(cx("h: ${EMPTY?fine}\n").unwrap(), "h: \n");
        let e =
            cx("a: 1\nb: ${OCS_CONFIG_DIR:?set it to the site config directory}\n").unwrap_err();
        assert_eq!((e.offset, e.len), (8, 54));
        assert_eq!(
            e.message,
            "required variable `OCS_CONFIG_DIR` is not set: set it to the site config directory"
        );
        let e = cx("b: ${EMPTY:?}\n").unwrap_err();
        assert_eq!(e.message, "required variable `EMPTY` is empty");
        let e = cx("b: ${X:=y}\n").unwrap_err();
        assert!(e.message.contains("not a variable reference"), "{e:?}");
        let e = cx("b: ${X:-${Y}\n").unwrap_err();
        assert!(e.message.contains("unterminated"), "{e:?}");
    }

    #[test]
    fn positions_map_back_to_the_file() {
        let (t, map) = expand("a: ${HOST} ${MULTI} $$z\n", &env).unwrap();
        assert_eq!(t, "a: ocs-docker a\nb $z\n");
        // before any expansion: unchanged
        assert_eq!(map.start(1), 1);
        // inside the first expansion -> its `${`
        assert_eq!(map.start(3), 3);
        assert_eq!(map.start(8), 3);
        assert_eq!(map.end(13), 10);
        // the space between: shifted by len("${HOST}") - len("ocs-docker") = -3
        assert_eq!(map.start(13), 10);
        // inside the multi-line expansion
        assert_eq!(map.start(16), 11);
        // `$z`: `$$` is 2 chars in the file, 1 in the text
        assert_eq!(map.start(18), 20);
        assert_eq!(map.start(19), 22);
    }
}
