//! The log policy: what in an agent's or crossbar's log fails a run that passed its steps
//! (tracebacks, unhandled errors, crashes, `ERROR`/`CRITICAL` lines, and under `warnings`
//! also warnings), and what is allowed anyway: the built-in allow-list of the bundled images'
//! known harmless lines (`log-allow.txt`, each with its reason), a suite's own allow-list
//! file, and a scenario's `log-policy: {allow: [...]}`. Pure: the runner hands it the lines.
//!
//! A line whose level the agent's own logger gave (see [`crate::levels`]) is judged by that
//! level: `error` and `critical` are errors, `warn` a warning; words that name a level
//! (`ERROR`, `warning`) in its text do not count. Output with no level (crossbar, services,
//! plain prints, lines from before logging starts, an image the hook does not load in) is
//! judged by its words. Tracebacks, unhandled errors and crashed operations are caught by
//! their text whatever the level (ocs logs a crashed operation's `CRASH:` at `info`).

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crate::levels::Level;

/// How strict the policy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    /// No check.
    Off,
    /// Tracebacks, unhandled errors, crashes, `ERROR` and `CRITICAL` (the default).
    #[default]
    Errors,
    /// `errors`, and warnings.
    Warnings,
}

impl Strictness {
    /// `off`, `errors` or `warnings`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "errors" => Some(Self::Errors),
            "warnings" => Some(Self::Warnings),
            _ => None,
        }
    }
}

/// The built-in allow-list: lines the bundled images print in every healthy run.
pub const BUILT_IN: &str = include_str!("log-allow.txt");

/// A policy: a strictness and the substrings that allow an offending line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogPolicy {
    /// How strict.
    pub strictness: Strictness,
    /// A line (or a line of its traceback) containing one of these is allowed.
    pub allow: Vec<String>,
}

/// A line the policy does not allow.
#[derive(Debug, Clone, PartialEq)]
pub struct Offence {
    /// The container (`crossbar`, an instance-id).
    pub container: String,
    /// What it is (`a traceback`, `a warning`, ...).
    pub what: &'static str,
    /// The offending line, then the lines that continue it (a traceback's).
    pub lines: Vec<String>,
}

/// The patterns of failures, most telling first, with what a line matching one is: they
/// count at every level.
static FAILURES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"Traceback", "a traceback"),
        (r"Unhandled [Ee]rror", "an unhandled error"),
        (r"CRASH:", "a crashed operation"),
    ]
    .into_iter()
    .map(|(p, w)| (Regex::new(p).expect("a valid pattern"), w))
    .collect()
});

/// What an error or critical line is.
const ERROR_LINE: &str = "an ERROR or CRITICAL line";

/// The words of an error line, for output with no level.
static ERROR_WORDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(ERROR|CRITICAL|FATAL)\b").expect("a valid pattern"));

/// The words of a warning, for output with no level.
static WARNINGS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bwarn(ing)?\b|Warning:").expect("a valid pattern"));

/// The start of a line that begins a log event: an ISO timestamp, and the `[Router  11]`
/// tag crossbar adds.
static EVENT_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d\S*\s(\[[^\]]*\]\s)?").expect("a valid pattern")
});

impl LogPolicy {
    /// The offences in `lines` (`(container, text)` in arrival order), none with a level.
    #[cfg(test)]
    pub fn check<'a>(&self, lines: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Offence> {
        self.check_levels(lines.into_iter().map(|(c, t)| (c, None, t)))
    }

    /// The offences in `lines` (`(container, level, text)` in arrival order).
    pub fn check_levels<'a>(
        &self,
        lines: impl IntoIterator<Item = (&'a str, Option<Level>, &'a str)>,
    ) -> Vec<Offence> {
        events(lines)
            .into_iter()
            .filter_map(|e| self.offence(e.container, e.level, &e.lines))
            .collect()
    }

    /// The offence in one log event (its first line and its continuation lines), if any.
    fn offence(&self, container: &str, level: Option<Level>, lines: &[&str]) -> Option<Offence> {
        let what = self.classify(level, lines)?;
        if lines
            .iter()
            .any(|l| self.allow.iter().any(|a| l.contains(a.as_str())))
        {
            return None;
        }
        Some(Offence {
            container: container.to_string(),
            what,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        })
    }

    /// What the event is, if it offends: by its level when it has one, else by its words.
    fn classify(&self, level: Option<Level>, lines: &[&str]) -> Option<&'static str> {
        if self.strictness == Strictness::Off {
            return None;
        }
        let says = |re: &Regex| lines.iter().any(|l| re.is_match(l));
        let failure = FAILURES
            .iter()
            .find(|(re, _)| says(re))
            .map(|(_, what)| *what);
        let (error, warning) = match level {
            Some(level) => (level >= Level::Error, level == Level::Warn),
            None => (says(&ERROR_WORDS), says(&WARNINGS)),
        };
        let warning = self.strictness == Strictness::Warnings && warning;
        failure
            .or(error.then_some(ERROR_LINE))
            .or(warning.then_some("a warning"))
    }
}

impl Offence {
    /// A substring that allows this offence: from its last telling line (not a stack
    /// frame), the text after its last `: ` (a traceback's exception message), at most 80
    /// characters, without the timestamp and tag.
    pub fn allow_hint(&self) -> String {
        let telling = |b: &str| {
            b.trim().len() >= 8
                && !b.starts_with([' ', '\t', '/', '[', ']'])
                && !b.starts_with("File ")
        };
        let bodies: Vec<String> = self
            .lines
            .iter()
            .map(|l| EVENT_START.replace(l, "").into_owned())
            .collect();
        let line = bodies
            .iter()
            .rev()
            .find(|b| telling(b))
            .or(bodies.first())
            .map_or("", String::as_str);
        let text = match line.rsplit_once(": ") {
            Some((_, message)) if message.trim().len() >= 8 => message,
            _ => line,
        };
        text.trim().chars().take(80).collect()
    }
}

/// One log event of one container: its first line and the lines that continue it.
struct Event<'a> {
    container: &'a str,
    /// The level of its first line.
    level: Option<Level>,
    lines: Vec<&'a str>,
    /// A traceback whose frames are still coming.
    open_traceback: bool,
    /// Lines of other output printed since this traceback's last frame (a process that writes
    /// its traceback to stderr and its log to stdout interleaves the two).
    interleaved: usize,
}

/// The most lines of other output an open traceback lets pass before its exception line.
const MAX_INTERLEAVED: usize = 20;

/// A traceback's last line: the exception's (dotted) name, alone or before `: message`
/// (`AttributeError: _ARRAY_API not found`, `KeyboardInterrupt`).
static EXCEPTION_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_.]*(:(\s|$)|$)").expect("a valid regex"));

/// `lines` grouped into events. A line with a level always starts one. A line continues its
/// container's last event when it has no timestamp (a multi-line message), or when that
/// event is a traceback printed one timestamped line per frame (crossbar's): indented lines
/// are its frames, and the exception line (`Name: message`) ends it. Other lines of the same
/// container in between are events of their own, and the traceback stays open for its
/// exception (up to [`MAX_INTERLEAVED`] of them): crossbar's router prints its log between a
/// traceback's frames and its exception.
fn events<'a>(
    lines: impl IntoIterator<Item = (&'a str, Option<Level>, &'a str)>,
) -> Vec<Event<'a>> {
    let mut events: Vec<Event<'a>> = Vec::new();
    for (container, level, text) in lines {
        let body = EVENT_START.replace(text, "");
        if level.is_some() {
            events.push(Event::new(container, level, text, &body));
            continue;
        }
        let stamped = body.len() != text.len();
        let last = events.iter().rposition(|e| e.container == container);
        let open = events
            .iter()
            .rposition(|e| e.container == container && e.open_traceback);
        match (last, open) {
            (Some(i), _) if !stamped && !text.trim().is_empty() => events[i].lines.push(text),
            (_, Some(i)) if !body.trim().is_empty() => {
                let e = &mut events[i];
                if body.starts_with(char::is_whitespace) || EXCEPTION_LINE.is_match(&body) {
                    e.lines.push(text);
                    e.open_traceback = body.starts_with(char::is_whitespace);
                } else {
                    e.interleaved += 1;
                    e.open_traceback = e.interleaved < MAX_INTERLEAVED;
                    events.push(Event::new(container, None, text, &body));
                }
            }
            _ => events.push(Event::new(container, None, text, &body)),
        }
    }
    events
}

impl<'a> Event<'a> {
    fn new(container: &'a str, level: Option<Level>, text: &'a str, body: &str) -> Self {
        Event {
            container,
            level,
            lines: vec![text],
            open_traceback: body.contains("Traceback (most recent call last)"),
            interleaved: 0,
        }
    }
}

/// The entries of an allow-list file: one substring per line; blank lines and lines starting
/// with `#` (the reasons) are skipped; surrounding whitespace is dropped.
pub fn parse_allow_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The allow-list file `path`, read.
pub fn read_allow_list(path: &Path) -> Result<Vec<String>, String> {
    std::fs::read_to_string(path)
        .map(|t| parse_allow_list(&t))
        .map_err(|e| {
            format!(
                "cannot read the log allow-list {}: {e}; give a text file with one allowed \
                 substring per line (`#` starts a comment)",
                path.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[(&str, &str)] = &[
        (
            "fake1",
            "2026-11-27T12:51:26+0000 startup-op: launching acq",
        ),
        (
            "fake1",
            "2026-11-27T12:51:27+0000 Unhandled error in Deferred:",
        ),
        (
            "crossbar",
            "2026-11-27T12:51:27+0000 [Router] session joined",
        ),
        ("fake1", "Traceback (most recent call last):"),
        ("fake1", "ValueError: boom"),
        (
            "barebones1",
            "2026-11-27T12:51:28+0000 Warning!!! deprecated",
        ),
    ];

    #[test]
    fn a_traceback_is_one_offence_with_its_lines_and_allow_matches_any_of_them() {
        let policy = LogPolicy::default();
        let found = policy.check(LOG.iter().copied());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].container, "fake1");
        assert_eq!(found[0].what, "a traceback");
        assert_eq!(found[0].lines.len(), 3);
        assert_eq!(found[0].allow_hint(), "ValueError: boom");
        let allowed = LogPolicy {
            allow: vec!["ValueError: boom".into()],
            ..LogPolicy::default()
        };
        assert!(allowed.check(LOG.iter().copied()).is_empty());
    }

    #[test]
    fn a_traceback_with_other_output_between_its_frames_and_its_exception_is_one_offence() {
        // crossbar's router, as a suite round logged it: its log between the traceback's
        // frames (stderr) and the exception line.
        let t = "2026-12-07T03:55:06+0000 [Router          9] ";
        let lines: Vec<String> = [
            "Traceback (most recent call last):  File \"<frozen runpy>\", line 198",
            "  File \"/opt/venv/lib/python3.11/site-packages/bjdata/__init__.py\", line 31",
            "    from _bjdata import dump, dumpb, load, loadb",
            "Starting router-worker \"worker001\" on node \"c329207fce81-6\" (personality)",
            "Running as PID 9 on CPython-EPollReactor",
            "Entering event reactor ...",
            "AttributeError: _ARRAY_API not found",
        ]
        .iter()
        .map(|l| format!("{t}{l}"))
        .collect();
        let policy = LogPolicy {
            allow: Vec::new(),
            ..LogPolicy::default()
        };
        let found = policy.check(lines.iter().map(|l| ("crossbar", l.as_str())));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].lines.len(), 4, "{found:?}");
        assert_eq!(found[0].allow_hint(), "_ARRAY_API not found");
        let allowed = LogPolicy {
            allow: vec!["_ARRAY_API not found".into()],
            ..LogPolicy::default()
        };
        assert!(allowed
            .check(lines.iter().map(|l| ("crossbar", l.as_str())))
            .is_empty());
    }

    #[test]
    fn a_traceback_of_one_timestamped_line_per_frame_is_one_offence() {
        let t = "2026-12-02T13:08:07+0000 [Router         11] ";
        let lines: Vec<String> = [
            "Traceback (most recent call last):  File \"<frozen runpy>\", line 198",
            "  File \"x.py\", line 1, in <module>",
            "    import bjdata",
            "AttributeError: _ARRAY_API not found",
            "Starting router-worker",
        ]
        .iter()
        .map(|l| format!("{t}{l}"))
        .collect();
        let policy = LogPolicy::default();
        let found = policy.check(lines.iter().map(|l| ("crossbar", l.as_str())));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].lines.len(), 4);
        assert_eq!(found[0].allow_hint(), "_ARRAY_API not found");
        let allowed = LogPolicy {
            allow: vec!["_ARRAY_API not found".into()],
            ..LogPolicy::default()
        };
        assert!(allowed
            .check(lines.iter().map(|l| ("crossbar", l.as_str())))
            .is_empty());
    }

    #[test]
    fn a_crash_is_allowed_by_its_message() {
        let lines = [
            "2026-12-02T13:25:42+0000 fail:3 CRASH: [Failure instance: Traceback: <class \
             'ValueError'>: widget failed on purpose",
            "/opt/venv/lib/python3.11/site-packages/ocs/ocs_agent.py:1074:_running_wrapper",
            "]",
        ];
        let found = LogPolicy::default().check(lines.iter().map(|l| ("widget1", *l)));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].what, "a traceback");
        assert_eq!(found[0].allow_hint(), "widget failed on purpose");
    }

    #[test]
    fn warnings_only_under_warnings_and_off_checks_nothing() {
        let warnings = LogPolicy {
            strictness: Strictness::Warnings,
            allow: vec!["boom".into()],
        };
        let found = warnings.check(LOG.iter().copied());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].container.as_str(), found[0].what),
            ("barebones1", "a warning")
        );
        let off = LogPolicy {
            strictness: Strictness::Off,
            allow: vec![],
        };
        assert!(off.check(LOG.iter().copied()).is_empty());
    }

    /// barebones' seeded warning (issue 30), as the agent's txaio logger writes it.
    const SLOW: &str = "2026-12-07T01:04:03+0000 count: buffer_time=1.0 s is below the \
                        recommended 5 s; feed frames may be dropped";

    fn warnings() -> LogPolicy {
        LogPolicy {
            strictness: Strictness::Warnings,
            allow: vec![],
        }
    }

    #[test]
    fn a_warning_is_judged_by_its_level_when_it_has_one() {
        let leveled = [("barebones1", Some(Level::Warn), SLOW)];
        let found = warnings().check_levels(leveled);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].what, "a warning");
        assert_eq!(found[0].lines, vec![SLOW]);
        assert_eq!(
            found[0].allow_hint(),
            "buffer_time=1.0 s is below the recommended 5 s; feed frames may be dropped"
        );
        // Not an error, and allowed by a substring like any other.
        assert!(LogPolicy::default().check_levels(leveled).is_empty());
        let allowed = LogPolicy {
            allow: vec!["buffer_time".into()],
            ..warnings()
        };
        assert!(allowed.check_levels(leveled).is_empty());
        // The same line with no level (what the harness saw before levels): no word, no offence.
        assert!(warnings().check([("barebones1", SLOW)]).is_empty());
    }

    #[test]
    fn level_words_count_only_in_output_with_no_level() {
        let info = "2026-12-07T01:04:03+0000 Warning: ERROR counts are reset each hour";
        for level in [Level::Debug, Level::Info] {
            assert!(warnings()
                .check_levels([("a1", Some(level), info)])
                .is_empty());
        }
        let found = warnings().check_levels([("a1", None, info)]);
        assert_eq!(found[0].what, ERROR_LINE);
        let error = "2026-12-07T01:04:03+0000 lost the device";
        for level in [Level::Error, Level::Critical] {
            let found = LogPolicy::default().check_levels([("a1", Some(level), error)]);
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].what, ERROR_LINE);
        }
        let off = LogPolicy {
            strictness: Strictness::Off,
            allow: vec![],
        };
        assert!(off
            .check_levels([("a1", Some(Level::Critical), error)])
            .is_empty());
    }

    #[test]
    fn failures_count_at_every_level() {
        // ocs logs a crashed operation's message at info.
        let crash = "2026-12-02T13:25:42+0000 fail:3 CRASH: [Failure instance: Traceback: \
                     <class 'ValueError'>: widget failed on purpose";
        let found = LogPolicy::default().check_levels([("widget1", Some(Level::Info), crash)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].what, "a traceback");
    }

    #[test]
    fn a_line_with_a_level_starts_an_event_of_its_own() {
        // Python logging's default format has no timestamp; its level still counts, and the
        // line does not join the event before it.
        let lines = [
            ("a1", Some(Level::Info), "2026-12-07T01:04:03+0000 starting"),
            ("a1", Some(Level::Warn), "WARNING:drivers:slow device"),
            ("a1", None, "  a continuation"),
        ];
        let found = warnings().check_levels(lines);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].lines,
            vec!["WARNING:drivers:slow device", "  a continuation"]
        );
    }

    #[test]
    fn the_built_in_list_has_a_reason_for_every_entry() {
        let mut reason = false;
        for line in BUILT_IN.lines().map(str::trim) {
            if line.starts_with('#') {
                reason = true;
            } else if !line.is_empty() {
                assert!(reason, "no reason above {line:?}");
            } else {
                reason = false;
            }
        }
    }
}
