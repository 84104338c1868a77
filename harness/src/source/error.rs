//! [`ScenarioError`]: one problem in a scenario file, rendered rustc-style with the offending
//! source line and a caret, plus the "did you mean" helper used by every unknown-name error.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a scenario file at `file:line:column`.
///
/// `Display` renders it like rustc (or Hurl):
///
/// ```text
/// error: unknown key `argumnts` in an agent
///  --> scenarios/demo.yaml:9:7
///   |
/// 9 |       argumnts: [--mode, idle]
///   |       ^^^^^^^^ did you mean `arguments`?
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(Box<Inner>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inner {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub label: String,
    pub width: usize,
    pub source_line: String,
    pub notes: Vec<String>,
}

impl ScenarioError {
    pub(crate) fn new(inner: Inner) -> Self {
        Self(Box::new(inner))
    }

    /// An error about the file as a whole (no position), e.g. it cannot be read.
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self::new(Inner {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            label: String::new(),
            width: 0,
            source_line: String::new(),
            notes: Vec::new(),
        })
    }

    /// The scenario file, as given.
    pub fn file(&self) -> &Path {
        &self.0.file
    }

    /// 1-based line; 0 when the error is about the file as a whole (it cannot be read).
    pub fn line(&self) -> usize {
        self.0.line
    }

    /// 1-based column, in characters (0 with line 0).
    pub fn column(&self) -> usize {
        self.0.column
    }

    /// What is wrong (the first line of the rendering, without `error: `).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The `help:` and `note:` lines under the snippet.
    pub fn notes(&self) -> &[String] {
        &self.0.notes
    }

    pub(crate) fn set_file(&mut self, file: &Path) {
        self.0.file = file.to_path_buf();
    }

    /// Add a `help:` line (what to write instead).
    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.0.notes.push(format!("help: {}", text.into()));
        self
    }

    /// Add a `note:` line (context).
    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.0.notes.push(format!("note: {}", text.into()));
        self
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        writeln!(f, "error: {}", e.message)?;
        if e.line == 0 {
            write!(f, " --> {}", e.file.display())?;
            for n in &e.notes {
                write!(f, "\n  = {n}")?;
            }
            return Ok(());
        }
        let num = e.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, "{pad}--> {}:{}:{}", e.file.display(), e.line, e.column)?;
        writeln!(f, "{pad} |")?;
        let shown: String = e
            .source_line
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        writeln!(f, "{num} | {}", shown.trim_end())?;
        let indent = " ".repeat(e.column.saturating_sub(1));
        let carets = "^".repeat(e.width.max(1));
        let label = if e.label.is_empty() {
            String::new()
        } else {
            format!(" {}", e.label)
        };
        write!(f, "{pad} | {indent}{carets}{label}")?;
        if !e.notes.is_empty() {
            write!(f, "\n{pad} |")?;
            for n in &e.notes {
                // continuation lines line up under the text after `help: `
                let indent = n.find(": ").map_or(0, |i| i + 2);
                let mut lines = n.lines();
                write!(f, "\n{pad} = {}", lines.next().unwrap_or_default())?;
                for l in lines {
                    write!(f, "\n{pad}   {}{l}", " ".repeat(indent))?;
                }
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// Several errors of one file, rendered one after the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\n{} errors in this scenario", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

/// Levenshtein distance over characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word` within edit distance 2 (case-insensitive), if any.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `a, b, c` with backticks.
pub(crate) fn list_names<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("argumnts", "arguments"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("strat", "start"), 2);
        assert_eq!(closest("strat", ["stop", "start", "status"]), Some("start"));
        assert_eq!(closest("Agent_Class", ["agent-class"]), Some("agent-class"));
        assert_eq!(closest("zzzzzz", ["start"]), None);
    }

    #[test]
    fn renders_two_digit_gutter_and_notes() {
        let e = ScenarioError::new(Inner {
            file: "s.yaml".into(),
            line: 12,
            column: 3,
            message: "bad".into(),
            label: "here".into(),
            width: 2,
            source_line: "\tab cd".into(),
            notes: vec!["help: fix it\n  like so".into()],
        });
        assert_eq!(
            e.to_string(),
            "error: bad\n  --> s.yaml:12:3\n   |\n12 |  ab cd\n   |   ^^ here\n   |\n   = help: fix it\n             like so"
        );
        let e = ScenarioError::whole_file(Path::new("x.yaml"), "cannot read");
        assert_eq!(e.to_string(), "error: cannot read\n --> x.yaml");
    }
}
