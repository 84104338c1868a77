//! A plugin's own compose files as a scenario's stack: this module owns reading them (one file
//! or a list, merged as compose merges them), compose's interpolation (`${VAR}`,
//! `${VAR:-default}`, `$$`, from the environment and the `.env` file of the project directory),
//! and the decision, key by key, of what the harness honours, rewrites or refuses. Every key it
//! cannot honour is an error at file:line:column that says what to do; nothing is dropped
//! silently (the keys the harness rewrites are listed in [`REWRITTEN_KEYS`] and documented).
//!
//! It knows nothing about site configs or plans: the scenario's `stack` decoder matches the
//! [`Service`]s to the site config's instances and turns them into agents.

mod decode;
mod env;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::overrides::ImageRef;
use crate::source::node::{Cx, Pos, Source};
use crate::source::ScenarioError;

pub use env::dotenv;

/// Service keys whose values the harness uses.
pub const HONOURED_KEYS: &[&str] = &[
    "build",
    "image",
    "environment",
    "env_file",
    "command",
    "entrypoint",
    "hostname",
    "volumes",
    "depends_on",
];
/// Service keys the harness accepts and rewrites so that runs stay isolated and can run in
/// parallel: host ports are not published (the harness reaches crossbar on its own network),
/// container names carry the run's id, and every container joins the run's own network.
pub const REWRITTEN_KEYS: &[&str] = &["ports", "expose", "container_name", "networks"];
/// Top-level keys besides `services` that the harness accepts: `version` and `name` (obsolete
/// or replaced by the run's id), `networks` (the run has its own), `volumes` (named volumes;
/// a service that mounts one is an error).
pub const TOP_KEYS: &[&str] = &["services", "version", "name", "networks", "volumes"];

/// A place in one of the compose files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Index of the file in the list given to [`Compose::parse`].
    pub file: usize,
    pub(crate) pos: Pos,
}

/// A service's `build`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The context directory, resolved against the compose file's directory.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context.
    pub dockerfile: Option<String>,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
}

/// One entry of a service's `volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// A bind mount's host path (resolved against the compose file's directory), or `None`
    /// for a named or anonymous volume.
    pub source: Option<PathBuf>,
    /// The named volume, if it is one.
    pub named: Option<String>,
    /// Mounted read-only (`:ro`, `read_only: true`).
    pub read_only: bool,
    /// The path in the container.
    pub target: String,
    /// Where it is written.
    pub at: Loc,
}

/// A service after merging every compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service's name.
    pub name: String,
    /// Where the service is (first) defined: its name.
    pub at: Loc,
    /// `image`.
    pub image: Option<ImageRef>,
    /// `build`.
    pub build: Option<Build>,
    /// `env_file` contents, then `environment` (which wins), as compose combines them.
    pub environment: BTreeMap<String, String>,
    /// `command`, split into words.
    pub command: Option<Vec<String>>,
    /// `entrypoint`, split into words.
    pub entrypoint: Option<Vec<String>>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `volumes`, by target (a later file replaces an entry with the same target).
    pub volumes: Vec<Volume>,
    /// `depends_on`: the services this one starts after.
    pub depends_on: Vec<(String, Loc)>,
    /// Keys that only the crossbar service may carry (it is replaced by the run's own), with
    /// their error should this service turn out to be an agent.
    pub(crate) refused: Vec<ScenarioError>,
}

/// The merged compose files.
pub struct Compose {
    sources: Vec<Source>,
    /// The services, in order of first definition.
    pub services: Vec<Service>,
}

impl Compose {
    /// Parse and merge `files` (each with its text), interpolating with `lookup`. Every
    /// problem found is returned, each at its file:line:column.
    pub fn parse(
        files: &[(PathBuf, String)],
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Compose, Vec<ScenarioError>> {
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        let mut services: Vec<Service> = Vec::new();
        for (index, (path, text)) in files.iter().enumerate() {
            let (src, root) = match Source::parse(path, text, lookup) {
                Ok(parsed) => parsed,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let mut cx = Cx::new(&src);
            // As compose: paths in every file are relative to the first file's directory.
            let first = &files[0].0;
            let dir = first.parent().unwrap_or(Path::new(""));
            for s in decode::file(&mut cx, root.as_ref(), index, dir, lookup) {
                merge(&mut services, s);
            }
            errors.append(&mut cx.errors);
            sources.push(src);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Compose { sources, services })
    }

    /// An error at `at`, rendered like every scenario error.
    pub fn error(
        &self,
        at: Loc,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> ScenarioError {
        self.sources[at.file].error(at.pos, message, label)
    }
}

/// Merge `s` into `into` as compose merges a later file into an earlier one: single values
/// are replaced, `environment` and `build.args` are merged by key, `volumes` by target,
/// `depends_on` by name.
fn merge(into: &mut Vec<Service>, s: Service) {
    let Some(old) = into.iter_mut().find(|o| o.name == s.name) else {
        into.push(s);
        return;
    };
    if s.image.is_some() {
        old.image = s.image;
    }
    match (&mut old.build, s.build) {
        (Some(b), Some(n)) => {
            b.context = n.context;
            if n.dockerfile.is_some() {
                b.dockerfile = n.dockerfile;
            }
            b.args.extend(n.args);
        }
        (b, n @ Some(_)) => *b = n,
        _ => {}
    }
    old.environment.extend(s.environment);
    if s.command.is_some() {
        old.command = s.command;
    }
    if s.entrypoint.is_some() {
        old.entrypoint = s.entrypoint;
    }
    if s.hostname.is_some() {
        old.hostname = s.hostname;
    }
    for v in s.volumes {
        old.volumes.retain(|o| o.target != v.target);
        old.volumes.push(v);
    }
    for d in s.depends_on {
        if !old.depends_on.iter().any(|(n, _)| *n == d.0) {
            old.depends_on.push(d);
        }
    }
    old.refused.extend(s.refused);
}

#[cfg(test)]
mod tests;
