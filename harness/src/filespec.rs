//! Files crossing a container's boundary, as data: a file or directory copied into a
//! container before it starts ([`FileSpec`]: an agent's or a service's, which `scenario` and
//! `compose` fill in, `plan` describes and the runtime copies), and what a `fetch` step copied
//! out of one ([`Fetched`]: the runtime lists it, the scenario's expectations check it).

use std::path::PathBuf;

use serde::Serialize;

/// A file or directory an agent gets in its container, copied in through the engine's API
/// before the container starts (never bind-mounted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// The file or directory on this machine (resolved); `None` for an empty directory.
    pub source: Option<PathBuf>,
    /// Absolute path in the container.
    pub target: String,
    /// The files' mode; by default each source file's own, without its write bits.
    pub mode: Option<u32>,
    /// Writable (a compose volume without `:ro`): a directory is writable by every user (a
    /// directory the agent writes to, such as a data directory), and files keep their write
    /// bits.
    pub writable: bool,
}

impl FileSpec {
    /// `source` copied read-only to `target`.
    pub fn read_only(source: impl Into<PathBuf>, target: &str) -> Self {
        Self {
            source: Some(source.into()),
            target: target.into(),
            mode: None,
            writable: false,
        }
    }

    /// How the plan shows it: `file ./ocs-access.yaml (read-only)`.
    pub(crate) fn describe(&self) -> String {
        match (&self.source, self.writable) {
            (None, _) => "empty directory (writable)".into(),
            (Some(s), true) => format!("{} (writable directory)", s.display()),
            (Some(s), false) => format!("{} (read-only)", s.display()),
        }
    }
}

/// What a `fetch` step found: the regular files under the fetched path (the path itself when
/// it is a file), by name relative to it (`/` between directories), with their sizes.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Fetched {
    /// Each file's name and size in bytes, sorted by name.
    pub files: Vec<(String, u64)>,
}

/// A file a plan puts into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileCopy {
    /// Absolute path in the container.
    pub path: String,
    /// What it is (`site config`, `crossbar config`, the file it is copied from).
    pub what: String,
    /// The content (the generated ones are shown once, as the plan's `site_config` or
    /// `crossbar_config`).
    #[serde(skip)]
    pub content: CopyContent,
}

/// What a [`FileCopy`] puts at its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyContent {
    /// A generated file, readable by everyone (0644).
    Text(String),
    /// A file or directory of this machine, read by the runtime when the container is created.
    Host(FileSpec),
}

impl FileCopy {
    /// `content` as the file `path`.
    pub fn new(path: &str, what: &str, content: String) -> Self {
        Self {
            path: path.into(),
            what: what.into(),
            content: CopyContent::Text(content),
        }
    }

    /// The copy of a user's file or directory.
    pub fn host(spec: &FileSpec) -> Self {
        Self {
            path: spec.target.clone(),
            what: spec.describe(),
            content: CopyContent::Host(spec.clone()),
        }
    }
}
