//! Snapshots with `cargo test`'s semantics: the same `<scenario dir>/snapshots/<name>.snap`
//! files that `tests/scenarios.rs` checks with `insta::assert_yaml_snapshot!`, the transcript
//! serialised by insta's own YAML writer (so an unchanged run gives byte-identical content),
//! compared by insta's rules, and a missing or changed one left as `<name>.snap.new` for
//! `cargo insta review` (not under CI). `--accept` writes `.snap` instead.

use std::path::{Path, PathBuf};

use insta::internals::{SnapshotContents, TextSnapshotContents};
use insta::TextSnapshotKind;
use serde::Serialize;

/// What to do with a missing or changed snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A failure; nothing is written (`CI=true` or `--ci`).
    Ci,
    /// A failure; the new content is left as `.snap.new` for review.
    Review,
    /// Written as `.snap`; passes.
    Accept,
}

impl Mode {
    /// `--accept` wins, then `ci` (`--ci`, or insta's own reading of `$CI`:
    /// [`Settings::in_ci`](crate::config::Settings::in_ci)), else review.
    pub fn from_flags(accept: bool, ci: bool) -> Self {
        if accept {
            Mode::Accept
        } else if ci {
            Mode::Ci
        } else {
            Mode::Review
        }
    }
}

/// The result of checking one transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Same content as the `.snap`.
    Matched,
    /// Written to `.snap` (`--accept`); `created` when there was none.
    Accepted { path: PathBuf, created: bool },
    /// No `.snap`; `pending` is the `.snap.new` written for review, if any.
    Missing {
        path: PathBuf,
        pending: Option<PathBuf>,
    },
    /// Different content: a unified diff, old to new.
    Changed {
        path: PathBuf,
        diff: String,
        pending: Option<PathBuf>,
    },
}

impl Outcome {
    /// Whether the scenario fails because of its snapshot.
    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Missing { .. } | Outcome::Changed { .. })
    }

    /// One line for the console and reports.
    pub fn summary(&self) -> String {
        let hint = |p: &Option<PathBuf>| match p {
            Some(p) => format!(
                "; the new one is in {} (`cargo insta review`, or run again with --accept)",
                p.display()
            ),
            None => "; run with --accept to record it".into(),
        };
        match self {
            Outcome::Matched => "snapshot matched".into(),
            Outcome::Accepted { path, created } => format!(
                "snapshot {} {}",
                if *created {
                    "recorded in"
                } else {
                    "updated in"
                },
                path.display()
            ),
            Outcome::Missing { path, pending } => {
                format!("snapshot {} is missing{}", path.display(), hint(pending))
            }
            Outcome::Changed { path, pending, .. } => {
                format!("snapshot {} changed{}", path.display(), hint(pending))
            }
        }
    }
}

/// `<dir of the scenario file>/snapshots/<name>.snap`, named as insta names it.
pub fn snapshot_path(scenario_file: &Path, name: &str) -> PathBuf {
    scenario_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("snapshots")
        .join(format!("{}.snap", name.replace(['/', '\\'], "__")))
}

/// The snapshot content of `value`, exactly as `assert_yaml_snapshot!` writes it.
pub fn content<T: Serialize>(value: &T) -> String {
    insta::_macro_support::serialize_value(value, insta::_macro_support::SerializationFormat::Yaml)
}

#[derive(Serialize)]
struct Meta<'a> {
    source: &'a str,
    input_file: &'a str,
}

/// A whole `.snap` file: insta's metadata header, then the content.
fn file_text(source: &str, input_file: &str, content: &str) -> String {
    let meta = content_of(&Meta { source, input_file });
    format!("---\n{}\n---\n{}\n", meta.trim_end(), content.trim_end())
}

fn content_of<T: Serialize>(v: &T) -> String {
    content(v)
}

/// The scenario file as insta records it: relative to the working directory when below it,
/// with `/` separators.
fn input_file(scenario_file: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let rel = match (scenario_file.is_absolute(), &cwd) {
        (true, Some(cwd)) => scenario_file.strip_prefix(cwd).unwrap_or(scenario_file),
        _ => scenario_file,
    };
    let s = rel.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// Check `value` against the snapshot of scenario `name` in `scenario_file`'s directory.
pub fn check<T: Serialize>(
    scenario_file: &Path,
    name: &str,
    value: &T,
    mode: Mode,
) -> std::io::Result<Outcome> {
    let path = snapshot_path(scenario_file, name);
    let new = content(value);
    let old = if path.exists() {
        Some(
            insta::Snapshot::from_file(&path)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?,
        )
    } else {
        None
    };
    let new_contents = SnapshotContents::Text(TextSnapshotContents::new(
        new.clone(),
        TextSnapshotKind::File,
    ));
    if let Some(old) = &old {
        if old.contents() == &new_contents {
            return Ok(Outcome::Matched);
        }
    }
    // Keep the header of the snapshot being replaced; a new one names this command.
    let source = old
        .as_ref()
        .and_then(|o| o.metadata().source().map(str::to_string))
        .unwrap_or_else(|| "ocs-harness test".into());
    let text = file_text(&source, &input_file(scenario_file), &new);
    let write = |to: &Path| -> std::io::Result<()> {
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(to, &text)
    };
    let pending_path = path.with_extension("snap.new");
    match mode {
        Mode::Accept => {
            write(&path)?;
            let _ = std::fs::remove_file(&pending_path);
            Ok(Outcome::Accepted {
                created: old.is_none(),
                path,
            })
        }
        Mode::Review | Mode::Ci => {
            let pending = if mode == Mode::Review {
                write(&pending_path)?;
                Some(pending_path)
            } else {
                None
            };
            Ok(match old {
                None => Outcome::Missing { path, pending },
                Some(old) => {
                    let old_text = old.as_text().map(|t| t.to_string()).unwrap_or_default();
                    Outcome::Changed {
                        diff: diff(&old_text, new.trim_end()),
                        path,
                        pending,
                    }
                }
            })
        }
    }
}

/// A unified diff, old snapshot to new result.
pub fn diff(old: &str, new: &str) -> String {
    let old = format!("{}\n", old.trim_end());
    let new = format!("{}\n", new.trim_end());
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header("old snapshot", "new result")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transcripts in `scenarios/snapshots/` come out of this module byte for byte.
    #[test]
    fn the_header_and_content_are_the_ones_insta_writes() {
        #[derive(Serialize)]
        struct T {
            scenario: String,
            stack: Vec<String>,
            message: String,
        }
        let t = T {
            scenario: "barebones".into(),
            stack: vec!["barebones1 (BarebonesAgent)".into(), "crossbar".into()],
            message: "Started process \"count\".".into(),
        };
        let text = file_text(
            "tests/scenarios.rs",
            "scenarios/barebones.yaml",
            &content(&t),
        );
        assert_eq!(
            text,
            "---\nsource: tests/scenarios.rs\ninput_file: scenarios/barebones.yaml\n---\n\
             scenario: barebones\nstack:\n  - barebones1 (BarebonesAgent)\n  - crossbar\n\
             message: \"Started process \\\"count\\\".\"\n"
        );
    }

    #[test]
    fn missing_changed_accepted_and_matched() {
        let dir = std::env::temp_dir().join(format!("ocsh-snap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.yaml");
        let v = vec!["a", "b"];

        let missing = check(&file, "s", &v, Mode::Ci).unwrap();
        assert!(matches!(missing, Outcome::Missing { pending: None, .. }));
        let review = check(&file, "s", &v, Mode::Review).unwrap();
        let Outcome::Missing {
            pending: Some(p), ..
        } = &review
        else {
            panic!("{review:?}")
        };
        let pending = insta::Snapshot::from_file(p).unwrap();
        assert_eq!(pending.as_text().unwrap().to_string(), "- a\n- b");

        let accepted = check(&file, "s", &v, Mode::Accept).unwrap();
        assert!(matches!(accepted, Outcome::Accepted { created: true, .. }));
        assert!(!p.exists(), "accepting removes the pending file");
        assert_eq!(check(&file, "s", &v, Mode::Ci).unwrap(), Outcome::Matched);

        let changed = check(&file, "s", &vec!["a", "c"], Mode::Ci).unwrap();
        let Outcome::Changed { diff, .. } = &changed else {
            panic!("{changed:?}")
        };
        assert!(diff.contains("-- b\n+- c"), "{diff}");
        assert!(changed.failed());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Every snapshot the repository holds reads back, with its header, exactly as written.
    #[test]
    fn the_repository_snapshots_round_trip_through_the_header_writer() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/snapshots");
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "snap") {
                continue;
            }
            let raw = std::fs::read_to_string(&path).unwrap();
            let snap = insta::Snapshot::from_file(&path).unwrap();
            let meta = snap.metadata();
            let body = snap.as_text().unwrap().to_string();
            let text = file_text(meta.source().unwrap(), meta.input_file().unwrap(), &body);
            assert_eq!(text, raw, "{}", path.display());
        }
    }
}
