//! Compose's text rules: the `.env` file (and `env_file`s), and the splitting of a `command`
//! string into words.

use std::collections::BTreeMap;
use std::path::Path;

/// The variables of an env file (`.env`, or a service's `env_file`): `KEY=VALUE` lines, `#`
/// comments, blank lines, an optional `export ` prefix, values optionally in single or double
/// quotes. A missing file is an empty map; `Err` carries the I/O problem otherwise.
pub fn dotenv(path: &Path) -> Result<BTreeMap<String, String>, std::io::Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_env_file(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

/// The variables of an env file's text.
pub(crate) fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = match (v.chars().next(), v.chars().last()) {
            (Some(q @ ('"' | '\'')), Some(e)) if q == e && v.len() >= 2 => &v[1..v.len() - 1],
            _ => v.split(" #").next().unwrap_or(v).trim_end(),
        };
        out.insert(k.trim().to_string(), v.to_string());
    }
    out
}

/// A `command` string split into words as compose splits it (shell-like: whitespace
/// separates, single and double quotes group, a backslash escapes the next character).
/// `None` when a quote is not closed.
pub fn split_command(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// `rel` resolved against `dir`, with `.` and `a/..` removed (compose's relative paths are
/// relative to the compose file's directory).
pub(crate) fn resolve(dir: &Path, rel: &str) -> std::path::PathBuf {
    use std::path::Component;
    let joined = dir.join(rel);
    let mut out: Vec<Component> = Vec::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return ".".into();
    }
    out.iter().collect()
}
