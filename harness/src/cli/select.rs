//! Which scenario files a command takes (`test`, `check`, `plan`, `run`, `compare` alike):
//! paths (files, or directories meaning their `*.yaml` and `*.yml` files, not
//! `*.yaml.example`), name filters (a substring of the scenario name, as
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
    /// The paths the files came from (the default directory when none was named).
    pub paths: Vec<PathBuf>,
}

/// Sort `args` into paths and name filters: an argument naming an existing file or directory
/// is a path; one that names nothing and does not look like a path (no `/`, no `.yaml` or
/// `.yml`) is a name filter; anything else is a mistake. No path at all means `default_dir`.
/// A directory means its scenario files, `*.yaml` and `*.yml` alike
/// ([`crate::testing::scenario_files`], which `cargo test` uses too).
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
        } else if a.contains('/')
            || a.contains(std::path::MAIN_SEPARATOR)
            || a.ends_with(".yaml")
            || a.ends_with(".yml")
        {
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
    for p in &paths {
        if p.is_dir() {
            let found =
                crate::testing::scenario_files(p).map_err(|e| format!("{}: {e}", p.display()))?;
            out.files.extend(found);
        } else {
            out.files.push(p.clone());
        }
    }
    out.files.sort();
    out.files.dedup();
    out.paths = paths;
    Ok(out)
}

/// The error for a selection of no scenario (as pytest and nextest, a run of nothing is a
/// mistake, not a pass): what was given and what to do. `scenarios` is how many scenario
/// files the paths held (the filters matched none of them).
pub fn none_selected(sel: &Selection, scenarios: usize) -> String {
    let paths = sel
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if scenarios == 0 {
        return format!(
            "no scenario selected: {paths} holds no scenario file (*.yaml or *.yml); name \
             scenario files, or a directory that has some"
        );
    }
    let filters = sel
        .filters
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "no scenario selected: the name filter {filters} matches none of the {scenarios} \
         scenarios in {paths}; `ocs-harness test --list {paths}` lists their names (a filter \
         is a part of a name), or name a file or a directory"
    )
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
    fn directories_mean_their_yaml_and_yml_files_and_unknown_words_are_filters() {
        let dir = std::env::temp_dir().join(format!("ocsh-select-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["b.yaml", "a.yaml", "c.yml", "ref.yaml.example", "notes.md"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let d = dir.display().to_string();
        let s = select(
            &[d.clone(), "count".into()],
            &["x".into()],
            Path::new("none"),
        )
        .unwrap();
        assert_eq!(
            s.files,
            [dir.join("a.yaml"), dir.join("b.yaml"), dir.join("c.yml")]
        );
        assert_eq!(s.filters, ["x", "count"]);
        assert!(select(&["missing.yaml".into()], &[], &dir).is_err());
        assert!(select(&["missing.yml".into()], &[], &dir).is_err());
        let default = select(&[], &[], &dir).unwrap();
        assert_eq!(default.files.len(), 3);
        assert_eq!(default.paths, std::slice::from_ref(&dir));
        let none = none_selected(&s, 3);
        assert!(
            none.contains("`x`, `count`") && none.contains("3 scenarios in"),
            "{none}"
        );
        assert!(none_selected(&default, 0).contains("holds no scenario file"));
        assert!(matches(&[], "any"));
        assert!(matches(&["bare".into()], "barebones"));
        assert!(!matches(&["zzz".into()], "barebones"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
