//! Which scenario files a `test` run takes: paths (files, or directories meaning their
//! `*.yaml` files, not `*.yaml.example`), name filters (a substring of the scenario name, as
//! `cargo test NAME`), and deterministic partitions by file (`--partition k/N`, like
//! nextest's `count:k/N`: the selected files, sorted, file i goes to shard i % N + 1).

use std::path::{Path, PathBuf};
use std::str::FromStr;

/// `k/N`: this shard of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based shard.
    pub shard: usize,
    /// Number of shards.
    pub of: usize,
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.strip_prefix("count:").unwrap_or(s);
        let bad = || format!("{s:?} is not a partition; write k/N with 1 <= k <= N, e.g. 1/2");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (shard, of): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if of == 0 || shard == 0 || shard > of {
            return Err(bad());
        }
        Ok(Partition { shard, of })
    }
}

impl Partition {
    /// Keep this shard's items of `sorted` (already in a stable order).
    pub fn apply<T>(&self, sorted: Vec<T>) -> Vec<T> {
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.of + 1 == self.shard)
            .map(|(_, t)| t)
            .collect()
    }
}

/// The files and the name filters a command line names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Scenario files, sorted, without duplicates.
    pub files: Vec<PathBuf>,
    /// Name filters (any of them matches).
    pub filters: Vec<String>,
}

/// Sort `args` into paths and name filters: an argument naming an existing file or directory
/// is a path; one that names nothing and does not look like a path (no `/`, no `.yaml`) is a
/// name filter; anything else is a mistake. No path at all means `default_dir`.
pub fn select(
    args: &[String],
    filters: &[String],
    default_dir: &Path,
) -> Result<Selection, String> {
    let mut paths = Vec::new();
    let mut out = Selection {
        filters: filters.to_vec(),
        ..Selection::default()
    };
    for a in args {
        let p = Path::new(a);
        if p.exists() {
            paths.push(p.to_path_buf());
        } else if a.contains('/') || a.contains(std::path::MAIN_SEPARATOR) || a.ends_with(".yaml") {
            return Err(format!("{a}: no such file or directory"));
        } else {
            out.filters.push(a.clone());
        }
    }
    if paths.is_empty() {
        if !default_dir.is_dir() {
            return Err(format!(
                "no scenario files given and {} is not a directory; name files or directories",
                default_dir.display()
            ));
        }
        paths.push(default_dir.to_path_buf());
    }
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "yaml"))
                .collect();
            found.sort();
            out.files.extend(found);
        } else {
            out.files.push(p);
        }
    }
    out.files.sort();
    out.files.dedup();
    Ok(out)
}

/// Whether a scenario called `name` passes the filters (no filter: every scenario).
pub fn matches(filters: &[String], name: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_disjoint_and_cover_everything() {
        let all: Vec<usize> = (0..7).collect();
        let mut seen = Vec::new();
        for k in 1..=3 {
            let p: Partition = format!("{k}/3").parse().unwrap();
            seen.extend(p.apply(all.clone()));
        }
        seen.sort();
        assert_eq!(seen, all);
        assert_eq!(
            "1/2".parse::<Partition>().unwrap().apply(all.clone()),
            [0, 2, 4, 6]
        );
        assert_eq!(
            "count:2/2".parse::<Partition>().unwrap().apply(all),
            [1, 3, 5]
        );
        for bad in ["0/2", "3/2", "1/0", "x", "1/"] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn directories_mean_their_yaml_files_and_unknown_words_are_filters() {
        let dir = std::env::temp_dir().join(format!("ocsh-select-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["b.yaml", "a.yaml", "ref.yaml.example", "notes.md"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let d = dir.display().to_string();
        let s = select(
            &[d.clone(), "count".into()],
            &["x".into()],
            Path::new("none"),
        )
        .unwrap();
        assert_eq!(s.files, [dir.join("a.yaml"), dir.join("b.yaml")]);
        assert_eq!(s.filters, ["x", "count"]);
        assert!(select(&["missing.yaml".into()], &[], &dir).is_err());
        let default = select(&[], &[], &dir).unwrap();
        assert_eq!(default.files.len(), 2);
        assert!(matches(&[], "any"));
        assert!(matches(&["bare".into()], "barebones"));
        assert!(!matches(&["zzz".into()], "barebones"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
