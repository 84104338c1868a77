//! A plugin's own compose files as a scenario's stack: this module owns reading them (one file
//! or a list, merged as compose merges them, with compose's top-level `include` and a
//! service's `extends`), compose's interpolation (`$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR:?error}`, `${VAR:+value}` and their forms without `:`, `$$`, from the environment and
//! the `.env` file of the project directory), and the decision, key by key, of what the harness
//! honours, rewrites, accepts with a documented meaning or refuses. Every key it cannot honour
//! is an error at file:line:column that says what to do; nothing is dropped silently (the keys
//! are listed in [`HONOURED_KEYS`], [`REWRITTEN_KEYS`] and [`ACCEPTED_KEYS`] and documented in
//! docs/notes/compose.md).
//!
//! It knows nothing about site configs or plans: the scenario's `stack` decoder matches the
//! [`Service`]s to the site config's instances and turns them into agents, and the others into
//! the stack's services.

mod decode;
mod env;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::overrides::ImageRef;
pub use crate::service::Healthcheck;
use crate::source::node::{Cx, Dialect, Pos, Source};
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
    "user",
    "working_dir",
    "labels",
    "healthcheck",
    "profiles",
    "extends",
];
/// Service keys the harness accepts and rewrites so that runs stay isolated and can run in
/// parallel: host ports are not published (the harness reaches crossbar on its own network),
/// container names carry the run's id, and every container joins the run's own network.
pub const REWRITTEN_KEYS: &[&str] = &["ports", "expose", "container_name", "networks"];
/// Service keys the harness accepts with a meaning of its own (documented): no container of
/// a run is restarted (`restart`: an agent that exits fails the run unless an `exits` step
/// expects it), the harness collects every container's output itself (`logging`), and the
/// rest change nothing a test can see.
pub const ACCEPTED_KEYS: &[&str] = &[
    "restart",
    "logging",
    "stop_grace_period",
    "stop_signal",
    "init",
    "tty",
    "stdin_open",
    "pull_policy",
];
/// Top-level keys besides `services` that the harness accepts: `version` and `name` (obsolete
/// or replaced by the run's id), `networks` (the run has its own), `volumes` (named volumes;
/// a service that mounts one is an error).
pub const TOP_KEYS: &[&str] = &[
    "services", "version", "name", "networks", "volumes", "include",
];

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
    /// The host path is written absolute (`/data`, `~/data`): a place of the site's machine,
    /// not of the project.
    pub host_absolute: bool,
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
    /// `user`.
    pub user: Option<String>,
    /// `working_dir`.
    pub working_dir: Option<String>,
    /// `labels`.
    pub labels: BTreeMap<String, String>,
    /// `healthcheck` (`None` when absent; a test of `["NONE"]` when disabled).
    pub healthcheck: Option<Healthcheck>,
    /// `profiles`: the service runs only when one of them is active (none: always).
    pub profiles: Vec<String>,
    /// `restart`, as written (no container of a run is restarted).
    pub restart: Option<String>,
    /// `container_name`: another name the service is reached by on the run's network.
    pub container_name: Option<String>,
    /// `extends`, until it is resolved.
    pub(crate) extends: Option<Extends>,
    /// Keys that only the crossbar service may carry (it is replaced by the run's own), with
    /// their error should this service turn out to be anything else.
    pub(crate) refused: Vec<ScenarioError>,
}

/// A service's `extends`: the service it starts from, in this file or in `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extends {
    pub service: String,
    pub file: Option<PathBuf>,
    pub at: Loc,
}

/// The merged compose files.
pub struct Compose {
    sources: Vec<Source>,
    /// The services, in order of first definition.
    pub services: Vec<Service>,
}

/// How deep `include` and `extends` may nest (deeper is taken for a circle).
const MAX_DEPTH: usize = 16;

/// Reads compose files into sources and services, collecting every error.
struct Reader<'a> {
    sources: Vec<Source>,
    errors: Vec<ScenarioError>,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Compose {
    /// Parse and merge `files` (each with its text), interpolating with `lookup` (`None`:
    /// unset). Every problem found is returned, each at its file:line:column.
    pub fn parse(
        files: &[(PathBuf, String)],
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Compose, Vec<ScenarioError>> {
        let mut r = Reader {
            sources: Vec::new(),
            errors: Vec::new(),
            lookup,
        };
        let mut services: Vec<Service> = Vec::new();
        // As compose: paths in every file are relative to the first file's directory.
        let dir = files
            .first()
            .and_then(|(p, _)| p.parent())
            .unwrap_or(Path::new(""))
            .to_path_buf();
        for (path, text) in files {
            for s in r.file(path, text, &dir, 0) {
                merge(&mut services, s);
            }
        }
        let pool = services.clone();
        let services = services
            .into_iter()
            .map(|s| r.extend(s, &pool, 0))
            .collect();
        if !r.errors.is_empty() {
            return Err(r.errors);
        }
        Ok(Compose {
            sources: r.sources,
            services,
        })
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

impl Reader<'_> {
    /// The services of one file (paths relative to `dir`) and of the files it includes.
    fn file(&mut self, path: &Path, text: &str, dir: &Path, depth: usize) -> Vec<Service> {
        let (src, root) = match Source::parse_as(path, text, self.lookup, Dialect::Compose) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.errors.push(e);
                return Vec::new();
            }
        };
        let index = self.sources.len();
        let mut cx = Cx::new(&src);
        let (mut services, includes) =
            decode::file(&mut cx, root.as_ref(), index, dir, self.lookup);
        self.errors.append(&mut cx.errors);
        drop(cx);
        self.sources.push(src);
        // included services come first, as an earlier file's would
        let mut out: Vec<Service> = Vec::new();
        for (rel, at) in includes {
            let included = env::resolve(dir, &rel);
            let error = |r: &Self, message: String, help: &str| {
                r.sources[index]
                    .error(at, message, "included here")
                    .help(help.to_string())
            };
            if depth >= MAX_DEPTH {
                let e = error(
                    self,
                    format!(
                        "`include` of {} nests too deep (a circle?)",
                        included.display()
                    ),
                    "a file must not include itself, directly or through others",
                );
                self.errors.push(e);
                continue;
            }
            let text = match std::fs::read_to_string(&included) {
                Ok(t) => t,
                Err(err) => {
                    let e = error(
                        self,
                        format!(
                            "cannot read included compose file {}: {err}",
                            included.display()
                        ),
                        "`include` paths are relative to the including compose file",
                    );
                    self.errors.push(e);
                    continue;
                }
            };
            // As compose: an included file's paths are relative to its own directory.
            let own = included.parent().unwrap_or(Path::new("")).to_path_buf();
            for s in self.file(&included, &text, &own, depth + 1) {
                if let Some(mine) = services.iter().find(|m| m.name == s.name) {
                    let e = self.sources[mine.at.file]
                        .error(
                            mine.at.pos,
                            format!(
                                "service `{}` is also defined by the included file {}",
                                s.name,
                                included.display()
                            ),
                            "defined twice",
                        )
                        .help("compose refuses a service defined both in a file and in a file it includes; rename one, or use `extends` to build on the included one");
                    self.errors.push(e);
                    continue;
                }
                out.push(s);
            }
        }
        out.append(&mut services);
        out
    }

    /// `s` with its `extends` resolved: the base service (from `pool`, or from its file),
    /// itself resolved, with `s` merged over it.
    fn extend(&mut self, mut s: Service, pool: &[Service], depth: usize) -> Service {
        let Some(ext) = s.extends.take() else {
            return s;
        };
        let error = |r: &Self, message: String, help: String| {
            r.sources[ext.at.file]
                .error(ext.at.pos, message, "extends this")
                .help(help)
        };
        if depth >= MAX_DEPTH {
            let e = error(
                self,
                format!("`extends` of service `{}` goes round in a circle", s.name),
                "a service must not extend itself, directly or through others".into(),
            );
            self.errors.push(e);
            return s;
        }
        let other: Vec<Service>;
        let (pool, from) = match &ext.file {
            None => (pool, "the compose files".to_string()),
            Some(file) => match std::fs::read_to_string(file) {
                Ok(text) => {
                    let own = file.parent().unwrap_or(Path::new("")).to_path_buf();
                    other = self.file(file, &text, &own, depth + 1);
                    (&other[..], file.display().to_string())
                }
                Err(err) => {
                    let e = error(
                        self,
                        format!("cannot read {}: {err}", file.display()),
                        "`extends.file` is relative to the compose file".into(),
                    );
                    self.errors.push(e);
                    return s;
                }
            },
        };
        let Some(base) = pool.iter().find(|b| b.name == ext.service).cloned() else {
            let names: Vec<&str> = pool.iter().map(|b| b.name.as_str()).collect();
            let e = error(
                self,
                format!(
                    "service `{}` extends `{}`, which is not a service of {from}",
                    s.name, ext.service
                ),
                format!("the services there are {}", names.join(", ")),
            );
            self.errors.push(e);
            return s;
        };
        let mut out = self.extend(base, pool, depth + 1);
        out.name = s.name.clone();
        out.at = s.at;
        merge_service(&mut out, s);
        out
    }
}

/// Merge `s` into `into` as compose merges a later file into an earlier one.
fn merge(into: &mut Vec<Service>, s: Service) {
    match into.iter_mut().find(|o| o.name == s.name) {
        Some(old) => merge_service(old, s),
        None => into.push(s),
    }
}

/// Merge `s` over `old` as compose does: single values are replaced, `environment`,
/// `labels` and `build.args` are merged by key, `volumes` by target, `depends_on` by name.
fn merge_service(old: &mut Service, s: Service) {
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
    old.labels.extend(s.labels);
    for (slot, new) in [
        (&mut old.command, s.command),
        (&mut old.entrypoint, s.entrypoint),
    ] {
        if new.is_some() {
            *slot = new;
        }
    }
    for (slot, new) in [
        (&mut old.hostname, s.hostname),
        (&mut old.user, s.user),
        (&mut old.working_dir, s.working_dir),
        (&mut old.restart, s.restart),
        (&mut old.container_name, s.container_name),
    ] {
        if new.is_some() {
            *slot = new;
        }
    }
    if s.healthcheck.is_some() {
        old.healthcheck = s.healthcheck;
    }
    if !s.profiles.is_empty() {
        old.profiles = s.profiles;
    }
    if s.extends.is_some() {
        old.extends = s.extends;
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
