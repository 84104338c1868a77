//! Console settings: colour (`--color auto|always|never`, `NO_COLOR`), verbosity (`-q`, `-v`)
//! and the tracing subscriber that shows the library's own `tracing` output (`RUST_LOG`,
//! `-v` = debug for the harness, `-vv` = trace).

use std::io::IsTerminal;

use clap::ValueEnum;

use crate::config::Env;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for people.
    Human,
    /// One JSON object per line (see the README's "Machine-readable output").
    Json,
}

/// Whether to colour: `always` and `never` win; `auto` colours a terminal unless `NO_COLOR`
/// is set to anything non-empty (<https://no-color.org>).
pub fn use_color(choice: ColorChoice, terminal: bool, env: &Env) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && env.non_empty("NO_COLOR").is_none(),
    }
}

/// ANSI styles, or nothing.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\u{1b}[{code}m{s}\u{1b}[0m")
        } else {
            s.to_string()
        }
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    /// A unified diff with removed lines red and added lines green.
    pub fn diff(&self, diff: &str) -> String {
        diff.lines()
            .map(|l| {
                if l.starts_with("+++") || l.starts_with("---") {
                    self.bold(l)
                } else if l.starts_with('+') {
                    self.green(l)
                } else if l.starts_with('-') {
                    self.red(l)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Install the tracing subscriber (on stderr). `RUST_LOG` wins; otherwise warnings and the
/// harness's notices ("building image X", "removed run Y"), and `-v`/`-vv` raise the
/// harness's own level to debug/trace; `-q` shows errors only.
pub fn init_tracing(verbose: u8, quiet: bool, color: bool, env: &Env) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,ocs_harness::notice=info",
        (false, 1) => "warn,ocs_harness=debug",
        (false, _) => "info,ocs_harness=trace",
    };
    // As `EnvFilter::try_from_default_env`, from the environment read once.
    let rust_log = env.var(EnvFilter::DEFAULT_ENV);
    let filter = rust_log
        .as_deref()
        .and_then(|v| EnvFilter::builder().parse(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::runtime::progress::AboveBars::new(std::io::stderr()))
        .with_ansi(color);
    // At the default verbosity the lines are notices for a person ("INFO building image X"):
    // no timestamp or module path; -v (a debugging log) gets both.
    let _ = if verbose == 0 && env.var_os(EnvFilter::DEFAULT_ENV).is_none() {
        builder.without_time().with_target(false).try_init()
    } else {
        builder.with_target(true).try_init()
    };
}

/// Whether builds and pulls show live bars: on a terminal's stderr, when colour is allowed
/// (`--color`, `NO_COLOR`: bars are escape codes too) and not under `-q`.
pub fn live_progress(choice: ColorChoice, quiet: bool, stderr_terminal: bool, env: &Env) -> bool {
    !quiet && stderr_terminal && use_color(choice, stderr_terminal, env)
}

/// Whether stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_and_never_win_and_auto_needs_a_terminal() {
        assert!(use_color(ColorChoice::Always, false, &Env::default()));
        assert!(!use_color(ColorChoice::Never, true, &Env::default()));
        assert!(!use_color(ColorChoice::Auto, false, &Env::default()));
        let plain = Style { color: false };
        assert_eq!(plain.diff("-a\n+b"), "-a\n+b");
        assert!(
            !live_progress(ColorChoice::Auto, false, false, &Env::default()),
            "not a terminal"
        );
        assert!(
            !live_progress(ColorChoice::Never, false, true, &Env::default()),
            "--color never"
        );
        assert!(
            !live_progress(ColorChoice::Always, true, true, &Env::default()),
            "-q"
        );
        let c = Style { color: true };
        assert_eq!(c.red("x"), "\u{1b}[31mx\u{1b}[0m");
    }
}
