//! A build context as `docker build` sends it: the `.dockerignore` file read and matched with
//! Docker's own rules, and the context walked the way the Docker CLI walks it.
//!
//! The rules (Docker's documentation of `.dockerignore`, and the behaviour of its pattern
//! matcher): a line starting with `#` is a comment; each other line is trimmed, a leading `!`
//! makes it an exception (re-include), and the pattern is cleaned like Go's `filepath.Clean`
//! with one leading `/` dropped. `*` is any run of characters but `/`, `?` one character but
//! `/`, `[...]` a character class, `\` escapes the next character, and `**` any number of
//! directories (zero included). A pattern that matches a directory matches everything below
//! it; the last pattern that matches a path decides. An excluded directory is still entered
//! when an exception pattern starts with its path. The Dockerfile and `.dockerignore` are
//! always sent (the engine drops them again when they are excluded, as for `docker build`).

use std::path::{Path, PathBuf};

use regex::Regex;

/// How a pattern is matched (Docker short-cuts exact, prefix and suffix patterns; the
/// short-cuts are part of its behaviour, e.g. `**foo` matches `barfoo`).
#[derive(Debug, Clone)]
enum Matcher {
    Exact,
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

/// One cleaned `.dockerignore` pattern.
#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern, without its `!`.
    text: String,
    exclusion: bool,
    matcher: Matcher,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|s| path == s)
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }

    /// This pattern matches `path` or one of its parent directories.
    fn matches_or_parent(&self, path: &str) -> bool {
        self.matches(path)
            || path
                .match_indices('/')
                .any(|(i, _)| self.matches(&path[..i]))
    }
}

/// The patterns of a `.dockerignore` file, in order.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parse the text of a `.dockerignore` file. An error names the line and column (1-based)
    /// and what is wrong.
    pub fn parse(text: &str) -> Result<Self, (usize, usize, String)> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let column = raw.len() - raw.trim_start().len() + 1;
            let (exclusion, rest) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern =
                Self::pattern(exclusion, rest).map_err(|problem| (index + 1, column, problem))?;
            patterns.push(pattern);
        }
        Ok(Self { patterns })
    }

    fn pattern(exclusion: bool, text: &str) -> Result<Pattern, String> {
        if exclusion && text.is_empty() {
            return Err("`!` alone is not a pattern; write `!PATTERN` to re-include paths".into());
        }
        let mut cleaned = clean(text);
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
        check_syntax(&cleaned)?;
        let matcher = compile(&cleaned)?;
        Ok(Pattern {
            text: cleaned,
            exclusion,
            matcher,
        })
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded: the last pattern
    /// that matches it or one of its parents decides.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for p in &self.patterns {
            // Only an exception can re-include, only a plain pattern can exclude.
            if p.exclusion == excluded && p.matches_or_parent(path) {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether an excluded directory must still be entered: an exception pattern starts with
    /// its path.
    fn enters(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.text).starts_with(&dir_slash))
    }

    /// Make sure `path` is sent even if a pattern excludes it (the CLI does this for the
    /// Dockerfile and `.dockerignore`).
    pub fn keep(&mut self, path: &str) {
        if self.excludes(path) {
            let pattern = Self::pattern(true, path).expect("a plain path is a valid pattern");
            self.patterns.push(pattern);
        }
    }
}

/// A path cleaned like Go's `filepath.Clean` on Unix: no empty or `.` elements, `..` resolved
/// where it can be, no trailing `/`; `.` when nothing is left.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The syntax errors Docker reports for a pattern (those of Go's `filepath.Match`): an
/// unclosed or empty `[...]`, a bad range, a trailing `\`.
fn check_syntax(pattern: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "syntax error in pattern `{pattern}`: {why} (Docker rejects it too); fix or remove the line"
        ))
    };
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return bad("a trailing `\\`"),
            '[' => {
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                let mut ranges = 0;
                loop {
                    match chars.next() {
                        None => return bad("an unclosed `[`"),
                        Some(']') if ranges > 0 => break,
                        Some(']' | '-') => return bad("an empty or malformed `[...]`"),
                        Some(lo) => {
                            if lo == '\\' && chars.next().is_none() {
                                return bad("an unclosed `[`");
                            }
                            if chars.peek() == Some(&'-') {
                                chars.next();
                                match chars.next() {
                                    None | Some(']') => return bad("a range without its end"),
                                    Some('\\') if chars.next().is_none() => {
                                        return bad("an unclosed `[`")
                                    }
                                    Some(_) => {}
                                }
                            }
                            ranges += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// How far a pattern's translation has got: Docker's match types.
#[derive(PartialEq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

type Chars<'a> = std::iter::Peekable<std::iter::Enumerate<std::str::Chars<'a>>>;

/// After a `**` (at `first`, the pattern's start): one `/` is eaten; at the end of the
/// pattern it matches everything below (a prefix match), elsewhere any number of directories.
fn double_star(chars: &mut Chars, first: bool, kind: &mut Kind, re: &mut String) {
    chars.next();
    if chars.peek().is_some_and(|(_, n)| *n == '/') {
        chars.next();
    }
    if chars.peek().is_none() {
        if *kind == Kind::Exact {
            *kind = Kind::Prefix;
        } else {
            re.push_str(".*");
            *kind = Kind::Regex;
        }
    } else {
        re.push_str("(.*/)?");
        *kind = Kind::Regex;
    }
    if first {
        *kind = Kind::Suffix;
    }
}

/// Translate a cleaned pattern as Docker does: to a plain comparison where it can, else to an
/// anchored regular expression.
fn compile(pattern: &str) -> Result<Matcher, String> {
    let mut kind = Kind::Exact;
    let mut re = String::from("^");
    let mut chars = pattern.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '*' if chars.peek().is_some_and(|(_, n)| *n == '*') => {
                double_star(&mut chars, i == 0, &mut kind, &mut re);
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(c);
            }
            '\\' => match chars.next() {
                Some((_, n)) => {
                    re.push_str(&regex::escape(&n.to_string()));
                    kind = Kind::Regex;
                }
                None => re.push_str("\\\\"),
            },
            '[' | ']' => {
                re.push(c);
                kind = Kind::Regex;
            }
            c => re.push(c),
        }
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact,
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        Kind::Regex => {
            re.push('$');
            Matcher::Regex(Regex::new(&re).map_err(|e| {
                format!("pattern `{pattern}` cannot be matched ({e}); fix or remove the line")
            })?)
        }
    })
}

/// What a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory (sent even when empty, as Docker does).
    Dir,
    /// A symbolic link, sent as a link with this target.
    Symlink(PathBuf),
}

/// One path of a build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context, `/`-separated.
    pub rel: String,
    /// Where it is on disk.
    pub path: PathBuf,
    /// File, directory or link.
    pub kind: EntryKind,
}

/// Every path of the context `dir` that `docker build` would send with `ignore`, sorted by
/// relative path (directories before their contents).
pub fn walk(dir: &Path, ignore: &DockerIgnore) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk_into(dir, "", ignore, &mut out)?;
    Ok(out)
}

fn walk_into(
    dir: &Path,
    prefix: &str,
    ignore: &DockerIgnore,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        let file_type = entry.file_type()?;
        if ignore.excludes(&rel) {
            if file_type.is_dir() && ignore.enters(&rel) {
                walk_into(&path, &format!("{rel}/"), ignore, out)?;
            }
            continue;
        }
        let kind = if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_symlink() {
            EntryKind::Symlink(std::fs::read_link(&path)?)
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            continue; // sockets, fifos, devices: the CLI cannot send them either
        };
        let is_dir = kind == EntryKind::Dir;
        out.push(Entry {
            rel: rel.clone(),
            path: path.clone(),
            kind,
        });
        if is_dir {
            walk_into(&path, &format!("{rel}/"), ignore, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"))
    }

    /// Cases from Docker's documentation of `.dockerignore` and of its pattern matcher:
    /// (patterns, path, excluded).
    const CASES: &[(&str, &str, bool)] = &[
        // The documented example file.
        ("*/temp*", "somedir/temporary.txt", true),
        ("*/temp*", "somedir/temp", true),
        ("*/temp*", "temp.txt", false),
        ("*/temp*", "a/b/temp.txt", false),
        ("*/*/temp*", "somedir/subdir/temporary.txt", true),
        ("*/*/temp*", "somedir/temporary.txt", false),
        ("temp?", "tempa", true),
        ("temp?", "tempab", false),
        ("temp?", "temp", false),
        // `**` any number of directories, zero included.
        ("**/*.go", "main.go", true),
        ("**/*.go", "a/b/c/main.go", true),
        ("**/*.go", "a/b/c/main.gox", false),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/**", "a/x", true),
        ("**", "anything/at/all", true),
        ("**/node_modules", "x/node_modules/pkg/index.js", true),
        // Docker's suffix short-cut: `**foo` matches `barfoo`.
        ("**foo", "barfoo", true),
        // Exceptions, last match wins.
        ("*.md\n!README.md", "README.md", false),
        ("*.md\n!README.md", "CHANGES.md", true),
        (
            "*.md\n!README*.md\nREADME-secret.md",
            "README-secret.md",
            true,
        ),
        (
            "*.md\nREADME-secret.md\n!README*.md",
            "README-secret.md",
            false,
        ),
        // A directory's pattern covers its contents; an exception inside re-includes.
        ("docs", "docs/index.md", true),
        ("docs\n!docs/keep.md", "docs/keep.md", false),
        ("docs\n!docs/keep.md", "docs/other.md", true),
        // Not anchored anywhere but at the root: a plain name is a top-level path.
        ("secret", "sub/secret", false),
        ("secret", "secret", true),
        // Cleaned like filepath.Clean, leading `/` dropped, comments and blanks skipped.
        ("/build/", "build/out.o", true),
        ("./build//x/../out", "build/out", true),
        ("# secret\n\n   \n", "# secret", false),
        ("  spaced  ", "spaced", true),
        // Character classes and escapes.
        ("[a-c]at", "bat", true),
        ("[a-c]at", "dat", false),
        ("[^a-c]at", "dat", true),
        ("\\*star", "*star", true),
        ("\\*star", "xstar", false),
        ("file.txt", "fileatxt", false),
    ];

    #[test]
    fn docker_documented_cases() {
        for (patterns, path, want) in CASES {
            assert_eq!(
                ignore(patterns).excludes(path),
                *want,
                "patterns {patterns:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let (line, column, problem) = DockerIgnore::parse("ok\n# c\n  [ab\n").unwrap_err();
        assert_eq!((line, column), (3, 3));
        assert!(problem.contains("unclosed `[`"), "{problem}");
        assert_eq!(DockerIgnore::parse("a\n!\n").unwrap_err().0, 2);
        assert!(DockerIgnore::parse("[]a]").is_err());
        assert!(DockerIgnore::parse("x\\").is_err());
        assert!(DockerIgnore::parse("[a-]").is_err());
    }

    #[test]
    fn clean_is_go_filepath_clean() {
        for (input, want) in [
            ("a/./b/", "a/b"),
            ("a//b", "a/b"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("./", "."),
            ("a/b/../c", "a/c"),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    #[test]
    fn keep_reincludes_only_what_is_excluded() {
        let mut i = ignore("*\n");
        i.keep("Dockerfile");
        i.keep(".dockerignore");
        assert!(!i.excludes("Dockerfile") && !i.excludes(".dockerignore"));
        assert!(i.excludes("agent.py"));
        let mut none = ignore("");
        none.keep("Dockerfile");
        assert!(none.patterns.is_empty());
    }

    #[test]
    fn walk_enters_excluded_dirs_only_for_exceptions() {
        let dir = std::env::temp_dir().join(format!("ocsh-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for f in [
            "a/keep.txt",
            "a/drop.txt",
            "b/x.txt",
            "c/d/e.txt",
            "top.txt",
        ] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        let rels: Vec<String> = walk(&dir, &ignore("a\n!a/keep.txt\nb\nc/**/e.txt\n"))
            .unwrap()
            .into_iter()
            .map(|e| e.rel)
            .collect();
        assert_eq!(
            rels,
            ["a/keep.txt", "c", "c/d", "empty", "top.txt"].map(String::from)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
