//! The harness's settings: the process environment, read once at the edge
//! ([`Settings::from_env`], the only reader of the process environment in the library), and
//! every `OCS_HARNESS_*` variable parsed from it with one rule ([`Config::from_lookup`]).
//!
//! - An unset or empty variable means its default.
//! - Yes/no variables accept `1`, `true`, `yes`, `on` and `0`, `false`, `no`, `off` (any case);
//!   anything else is an error naming the variable and the accepted values.
//! - Durations are a number of seconds (`3600`) or a `humantime` duration (`90s`, `30m`,
//!   `1h 30m`); anything else is an error, never a silent default.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `OCS_HARNESS_IMAGES` | `auto`, `upstream`, `local` or an image set file | `auto` |
//! | `OCS_HARNESS_KEEP_ON_FAILURE` | leave a failed run's stack running | no |
//! | `OCS_HARNESS_HOLD_AGENTS` | start agents paused while crossbar boots | yes |
//! | `OCS_HARNESS_RUNS_DIR` | where runs keep their files | `<target>/ocs-harness/runs` |
//! | `OCS_HARNESS_KEEP_MAX_AGE` | age after which a kept stack is removed | `1h` |
//! | `OCS_HARNESS_CACHE` | wheels, rootfs trees, the build lock | `$XDG_CACHE_HOME/ocs-harness` |
//! | `OCS_HARNESS_NO_APT` | never install debootstrap with apt-get | no |
//! | `OCS_HARNESS_JUNIT_DIR` | write a JUnit file per scenario there | none |
//! | `OCS_HARNESS_HTML_DIR` | `cargo test`: write an HTML page per scenario there | none |
//! | `OCS_HARNESS_HOST` | the address crossbar's published port is reached at | from the engine |
//! | `OCS_HARNESS_PULL` | pull policy: `missing`, `never`, `always` | the set's, else `missing` |

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Image set file used instead of the default images.
pub const IMAGES: &str = "OCS_HARNESS_IMAGES";
/// Leave a failed run's stack running for inspection.
pub const KEEP_ON_FAILURE: &str = "OCS_HARNESS_KEEP_ON_FAILURE";
/// Start the agents paused while crossbar boots.
pub const HOLD_AGENTS: &str = "OCS_HARNESS_HOLD_AGENTS";
/// Where runs keep their files.
pub const RUNS_DIR: &str = "OCS_HARNESS_RUNS_DIR";
/// How long a kept stack may stay before a later run removes it.
pub const KEEP_MAX_AGE: &str = "OCS_HARNESS_KEEP_MAX_AGE";
/// Where downloaded wheels, rootfs trees and the build lock live.
pub const CACHE: &str = "OCS_HARNESS_CACHE";
/// Forbid installing debootstrap with apt-get.
pub const NO_APT: &str = "OCS_HARNESS_NO_APT";
/// Where a JUnit file per scenario is written.
pub const JUNIT_DIR: &str = "OCS_HARNESS_JUNIT_DIR";
/// Where `cargo test` (the Rust entry points) writes an HTML page per scenario.
pub const HTML_DIR: &str = "OCS_HARNESS_HTML_DIR";
/// For `cargo test` (the Rust entry points): an earlier run whose times a run is held to, as
/// `ocs-harness test --baseline-run` takes it (a run directory, a directory of runs, ...).
pub const BASELINE_RUN: &str = "OCS_HARNESS_BASELINE_RUN";

/// The address the engine's published ports are reached at (instead of the one derived from
/// the engine, see [`crate::runtime::engine::EngineHost`]).
pub const HOST: &str = "OCS_HARNESS_HOST";
/// Pull policy for published images.
pub const PULL: &str = "OCS_HARNESS_PULL";

/// The accepted yes/no spellings, for messages.
const BOOL_WORDS: &str = "1, true, yes or on to turn it on; 0, false, no or off to turn it off";

/// A variable the harness cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A yes/no variable with another value.
    #[error("{var}={value:?} is not a yes/no value: use {BOOL_WORDS}")]
    Bool {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// A duration variable that is not a duration.
    #[error(
        "{var}={value:?} is not a duration ({problem}): write seconds (3600) or a duration \
         such as 90s, 30m or 1h 30m"
    )]
    Duration {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What the duration parser said.
        problem: String,
    },
    /// A variable with a value outside its choices.
    #[error("{var}={value:?}: {problem}")]
    Choice {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        problem: String,
    },
    /// A variable whose value is not UTF-8 where text is needed.
    #[error("{var} is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        var: &'static str,
    },
}

/// Every setting the harness takes from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `OCS_HARNESS_IMAGES`.
    pub images_file: Option<PathBuf>,
    /// `OCS_HARNESS_KEEP_ON_FAILURE`.
    pub keep_on_failure: bool,
    /// `OCS_HARNESS_HOLD_AGENTS`.
    pub hold_agents: bool,
    /// `OCS_HARNESS_RUNS_DIR`, else `<cargo target dir>/ocs-harness/runs`: `$CARGO_TARGET_DIR`
    /// or `target` next to the nearest `Cargo.lock` above the working directory.
    pub runs_dir: PathBuf,
    /// `OCS_HARNESS_KEEP_MAX_AGE`.
    pub keep_max_age: Duration,
    /// `OCS_HARNESS_CACHE`, else `$XDG_CACHE_HOME/ocs-harness`, else `~/.cache/ocs-harness`.
    pub cache_dir: PathBuf,
    /// Not `OCS_HARNESS_NO_APT`: debootstrap may be installed with apt-get (as root).
    pub apt_allowed: bool,
    /// `OCS_HARNESS_JUNIT_DIR`.
    pub junit_dir: Option<PathBuf>,
    /// `OCS_HARNESS_HOST`.
    pub host: Option<String>,
    /// `OCS_HARNESS_PULL`.
    pub pull: Option<crate::imageset::PullPolicy>,
}

impl Default for Config {
    /// The settings with nothing set, the environment unread.
    fn default() -> Self {
        Self {
            images_file: None,
            keep_on_failure: false,
            hold_agents: true,
            runs_dir: PathBuf::from("target").join("ocs-harness").join("runs"),
            keep_max_age: Duration::from_secs(3600),
            cache_dir: PathBuf::from(".cache").join("ocs-harness"),
            apt_allowed: true,
            junit_dir: None,
            host: None,
            pull: None,
        }
    }
}

/// The process environment as read once, at the edge (the CLI's `main`, or
/// [`Settings::from_env`] for the Rust entry points): every variable and the working directory.
/// Below the edge the harness looks variables up here, never in the process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: HashMap<String, OsString>,
    cwd: Option<PathBuf>,
}

impl Env {
    /// An environment of these variables, with `cwd` as the working directory (tests, or a
    /// caller that builds its own).
    pub fn from_vars<K: Into<String>, V: Into<OsString>>(
        vars: impl IntoIterator<Item = (K, V)>,
        cwd: Option<PathBuf>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            cwd,
        }
    }

    /// A variable's value as set (empty included), `None` when unset.
    pub fn var_os(&self, name: &str) -> Option<&OsString> {
        self.vars.get(name)
    }

    /// A variable's value as text: `None` when unset or not UTF-8 (as `std::env::var(..).ok()`).
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .and_then(|v| v.to_str())
            .map(str::to_string)
    }

    /// A variable's value when set and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&OsString> {
        self.var_os(name).filter(|v| !v.is_empty())
    }

    /// The working directory when the environment was read.
    pub fn cwd(&self) -> Option<&PathBuf> {
        self.cwd.as_ref()
    }

    /// Set (or replace) a variable: how a command-line flag that has a variable (`--pull`,
    /// `OCS_HARNESS_PULL`) takes precedence over it.
    pub fn set(&mut self, name: &str, value: impl Into<OsString>) {
        self.vars.insert(name.to_string(), value.into());
    }
}

/// The one options value the harness runs with: the environment as read once, and the
/// `OCS_HARNESS_*` settings parsed from it. Built at the edge and passed down.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The variables (for `${VAR}` in scenario and compose files, the engine's `DOCKER_*`,
    /// `GITHUB_*`, `CI`, ...).
    pub env: Env,
    /// The `OCS_HARNESS_*` settings (their defaults when one is unreadable, see `error`).
    pub config: Config,
    /// An unreadable `OCS_HARNESS_*` variable, reported by whatever needs the settings.
    pub error: Option<ConfigError>,
}

impl Default for Settings {
    /// The settings of an empty environment (every documented default).
    fn default() -> Self {
        Self::from_vars(Env::default())
    }
}

impl Settings {
    /// Read the process environment: the one place the harness does (the CLI's `main` and
    /// the Rust entry points of [`crate::testing`] call it once).
    pub fn from_env() -> Self {
        Self::from_vars(Env::from_vars(
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))),
            std::env::current_dir().ok(),
        ))
    }

    /// The settings of `env`.
    pub fn from_vars(env: Env) -> Self {
        let cwd = env.cwd().cloned();
        let (config, error) = match Config::from_lookup(|name| env.var_os(name).cloned(), cwd) {
            Ok(config) => (config, None),
            Err(e) => (Config::default(), Some(e)),
        };
        Self { env, config, error }
    }

    /// The same settings with the variable `name` set to `value` (and the settings re-read).
    pub fn with_var(mut self, name: &str, value: impl Into<OsString>) -> Self {
        self.env.set(name, value);
        Self::from_vars(self.env)
    }

    /// The `OCS_HARNESS_*` settings, or the first unreadable variable.
    pub fn config(&self) -> Result<&Config, ConfigError> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(&self.config),
        }
    }

    /// The cache directory, read even when another variable is unreadable (see
    /// [`Config::cache_dir`]).
    pub fn cache_dir(&self) -> PathBuf {
        let var = |name: &str| self.env.non_empty(name).cloned();
        cache_dir_of(var(CACHE), var("XDG_CACHE_HOME"), var("HOME"))
    }

    /// The runs directory, read even when another variable is unreadable (see
    /// [`Config::runs_dir`]).
    pub fn runs_dir(&self) -> PathBuf {
        match self.env.non_empty(RUNS_DIR) {
            Some(d) => d.into(),
            None => runs_dir_below(
                self.env.non_empty("CARGO_TARGET_DIR").map(PathBuf::from),
                self.env.cwd().cloned(),
            ),
        }
    }

    /// `OCS_HARNESS_HOST` alone (unset, empty or not UTF-8 counts as unset: this cannot fail).
    pub fn host(&self) -> Option<String> {
        self.env
            .var(HOST)
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
    }

    /// `OCS_HARNESS_JUNIT_DIR`: where `cargo test` writes a JUnit file per scenario.
    pub fn junit_dir(&self) -> Option<PathBuf> {
        self.env.non_empty(JUNIT_DIR).map(PathBuf::from)
    }

    /// `OCS_HARNESS_BASELINE_RUN`: the run whose times `cargo test` holds a run to.
    pub fn baseline_run(&self) -> Option<PathBuf> {
        self.env.non_empty(BASELINE_RUN).map(PathBuf::from)
    }

    /// `OCS_HARNESS_HTML_DIR`: where `cargo test` writes an HTML page per scenario.
    pub fn html_dir(&self) -> Option<PathBuf> {
        self.env.non_empty(HTML_DIR).map(PathBuf::from)
    }

    /// insta's rule for "running in CI": `CI` set to anything but `false`, `0` or empty (or
    /// Azure's `TF_BUILD`).
    pub fn in_ci(&self) -> bool {
        match self.env.var("CI").as_deref() {
            Some("false") | Some("0") | Some("") => false,
            None => self.env.var_os("TF_BUILD").is_some(),
            Some(_) => true,
        }
    }

    /// `INSTA_UPDATE=always`: accept changed snapshots.
    pub fn insta_accept(&self) -> bool {
        self.env.var("INSTA_UPDATE").is_some_and(|v| v == "always")
    }

    /// A lookup of the variables, for `${VAR}` in scenario and compose files.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.env.var(name)
    }
}

impl Config {
    /// Read every setting through `lookup` (a variable's value, `None` when unset), with
    /// `cwd` as the working directory for the runs directory's default.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<OsString>,
        cwd: Option<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let defaults = Self::default();
        Ok(Self {
            images_file: var(IMAGES).map(PathBuf::from),
            keep_on_failure: flag(KEEP_ON_FAILURE, var(KEEP_ON_FAILURE))?
                .unwrap_or(defaults.keep_on_failure),
            hold_agents: flag(HOLD_AGENTS, var(HOLD_AGENTS))?.unwrap_or(defaults.hold_agents),
            runs_dir: match var(RUNS_DIR) {
                Some(d) => d.into(),
                None => runs_dir_below(var("CARGO_TARGET_DIR").map(PathBuf::from), cwd),
            },
            keep_max_age: duration(KEEP_MAX_AGE, var(KEEP_MAX_AGE))?
                .unwrap_or(defaults.keep_max_age),
            cache_dir: cache_dir_of(var(CACHE), var("XDG_CACHE_HOME"), var("HOME")),
            apt_allowed: !flag(NO_APT, var(NO_APT))?.unwrap_or(false),
            junit_dir: var(JUNIT_DIR).map(PathBuf::from),
            host: var(HOST)
                .map(|v| text(HOST, v))
                .transpose()?
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty()),
            pull: match var(PULL) {
                None => None,
                Some(v) => {
                    let value = v.to_string_lossy().into_owned();
                    Some(value.parse().map_err(|problem| ConfigError::Choice {
                        var: PULL,
                        value,
                        problem,
                    })?)
                }
            },
        })
    }
}

fn cache_dir_of(own: Option<OsString>, xdg: Option<OsString>, home: Option<OsString>) -> PathBuf {
    if let Some(dir) = own {
        return dir.into();
    }
    if let Some(dir) = xdg {
        return PathBuf::from(dir).join("ocs-harness");
    }
    match home {
        Some(home) => PathBuf::from(home).join(".cache").join("ocs-harness"),
        // No home: a directory of this user's own in the temporary directory (created 0700,
        // refused when another user owns it: see `runtime::images::own_cache_dir`).
        None => std::env::temp_dir().join(format!("ocs-harness-cache-{}", current_uid())),
    }
}

/// This process's user id (the owner of its `/proc/self`), `0` when it cannot be read.
pub(crate) fn current_uid() -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
    }
    #[cfg(not(unix))]
    {
        0
    }
}

fn runs_dir_below(target: Option<PathBuf>, cwd: Option<PathBuf>) -> PathBuf {
    let target = target
        .or_else(|| {
            cwd?.ancestors()
                .find(|d| d.join("Cargo.lock").is_file())
                .map(|d| d.join("target"))
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("ocs-harness").join("runs")
}

fn text(var: &'static str, value: OsString) -> Result<String, ConfigError> {
    value
        .into_string()
        .map_err(|_| ConfigError::NotUnicode { var })
}

/// A yes/no variable: `None` when unset.
fn flag(var: &'static str, value: Option<OsString>) -> Result<Option<bool>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let value = text(var, value)?;
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err(ConfigError::Bool { var, value }),
    }
}

/// A duration variable: `None` when unset.
fn duration(var: &'static str, value: Option<OsString>) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let value = text(var, value)?;
    let trimmed = value.trim();
    if let Ok(secs) = trimmed.parse::<u64>() {
        return Ok(Some(Duration::from_secs(secs)));
    }
    humantime::parse_duration(trimmed)
        .map(Some)
        .map_err(|e| ConfigError::Duration {
            var,
            problem: e.to_string(),
            value,
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn without_home_the_cache_is_a_directory_of_this_user_not_tmp_itself() {
        let dir = super::cache_dir_of(None, None, None);
        let uid = super::current_uid();
        assert_eq!(
            dir,
            std::env::temp_dir().join(format!("ocs-harness-cache-{uid}"))
        );
        assert_eq!(
            super::cache_dir_of(None, None, Some("/home/u".into())),
            std::path::Path::new("/home/u/.cache/ocs-harness")
        );
    }

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Config::from_lookup(
            move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            None,
        )
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        let c = read(&[("HOME", "/home/u")]).unwrap();
        assert!(!c.keep_on_failure);
        assert!(c.hold_agents);
        assert!(c.apt_allowed);
        assert_eq!(c.keep_max_age, Duration::from_secs(3600));
        assert_eq!(c.images_file, None);
        assert_eq!(c.junit_dir, None);
        assert_eq!(c.host, None);
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/.cache/ocs-harness"));
        assert_eq!(c.runs_dir, PathBuf::from("target/ocs-harness/runs"));
    }

    #[test]
    fn one_yes_no_rule_for_every_flag() {
        for (value, on) in [
            ("1", true),
            ("true", true),
            ("YES", true),
            (" on ", true),
            ("0", false),
            ("False", false),
            ("no", false),
            ("off", false),
        ] {
            let c = read(&[
                (KEEP_ON_FAILURE, value),
                (HOLD_AGENTS, value),
                (NO_APT, value),
            ])
            .unwrap();
            assert_eq!(c.keep_on_failure, on, "{value}");
            assert_eq!(c.hold_agents, on, "{value}");
            assert_eq!(c.apt_allowed, !on, "{value}");
        }
        // Empty means unset.
        let c = read(&[(HOLD_AGENTS, ""), (NO_APT, "")]).unwrap();
        assert!(c.hold_agents && c.apt_allowed);
    }

    #[test]
    fn no_apt_0_allows_apt() {
        assert!(read(&[(NO_APT, "0")]).unwrap().apt_allowed);
        assert!(!read(&[(NO_APT, "1")]).unwrap().apt_allowed);
    }

    #[test]
    fn other_values_are_errors_naming_the_variable() {
        let e = read(&[(HOLD_AGENTS, "maybe")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "OCS_HARNESS_HOLD_AGENTS=\"maybe\" is not a yes/no value: use 1, true, yes or on \
             to turn it on; 0, false, no or off to turn it off"
        );
    }

    #[test]
    fn durations_in_seconds_or_humantime() {
        let age = |v: &str| read(&[(KEEP_MAX_AGE, v)]).map(|c| c.keep_max_age);
        assert_eq!(age("90").unwrap(), Duration::from_secs(90));
        assert_eq!(age("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(age("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(age("1h 30m").unwrap(), Duration::from_secs(5400));
        let e = age("soon").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("OCS_HARNESS_KEEP_MAX_AGE=\"soon\" is not a duration ("),
            "{e}"
        );
    }

    #[test]
    fn paths_and_their_fallbacks() {
        let c = read(&[
            (CACHE, "/c"),
            (RUNS_DIR, "/r"),
            (IMAGES, "set.yaml"),
            (JUNIT_DIR, "/j"),
            (HOST, " docker "),
        ])
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("docker"));
        assert_eq!(c.cache_dir, PathBuf::from("/c"));
        assert_eq!(c.runs_dir, PathBuf::from("/r"));
        assert_eq!(c.images_file, Some(PathBuf::from("set.yaml")));
        assert_eq!(c.junit_dir, Some(PathBuf::from("/j")));
        let c = read(&[("XDG_CACHE_HOME", "/x"), ("CARGO_TARGET_DIR", "/t")]).unwrap();
        assert_eq!(c.cache_dir, PathBuf::from("/x/ocs-harness"));
        assert_eq!(c.runs_dir, PathBuf::from("/t/ocs-harness/runs"));
    }

    fn settings(vars: &[(&str, &str)]) -> Settings {
        Settings::from_vars(Env::from_vars(vars.iter().copied(), None))
    }

    #[test]
    fn a_flag_overrides_its_variable_in_the_settings_not_the_process() {
        let s = settings(&[(PULL, "bogus")]);
        assert!(s.config().is_err());
        let s = s.with_var(PULL, "never");
        assert_eq!(
            s.config().unwrap().pull,
            Some(crate::imageset::PullPolicy::Never)
        );
        assert_eq!(s.env.var(PULL).as_deref(), Some("never"));
    }

    #[test]
    fn an_unreadable_variable_keeps_the_rest_of_the_settings() {
        let s = settings(&[(HOLD_AGENTS, "maybe"), (RUNS_DIR, "/r"), (HOST, " h ")]);
        assert!(s.config().is_err());
        assert_eq!(s.runs_dir(), PathBuf::from("/r"));
        assert_eq!(s.host().as_deref(), Some("h"));
    }

    #[test]
    fn insta_rules_for_ci_and_update() {
        assert!(!settings(&[]).in_ci());
        assert!(settings(&[("CI", "true")]).in_ci());
        assert!(!settings(&[("CI", "0")]).in_ci());
        assert!(settings(&[("TF_BUILD", "x")]).in_ci());
        assert!(settings(&[("INSTA_UPDATE", "always")]).insta_accept());
        assert!(!settings(&[("INSTA_UPDATE", "no")]).insta_accept());
    }
}
