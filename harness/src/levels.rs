//! Log levels from the agents' own loggers. The harness copies a `sitecustomize.py` (the
//! hook, [`HOOK`]) into every agent container and appends its directory to `PYTHONPATH`; it
//! makes txaio's log observer and Python `logging`'s stream handlers write a tag in front
//! of each line: [`MARK`], `<level>:<namespace>`, [`END`]. [`strip`] takes the tag off again
//! as the line is read, so everything downstream (transcripts, log steps, saved logs) sees
//! the line as the agent printed it, and the log store keeps the level and the namespace.
//! Output without a tag (crossbar, services, plain prints, lines from before logging starts,
//! an image where the hook does not load) has no level.

use std::borrow::Cow;

/// The hook's source, copied into agent containers as `sitecustomize.py`.
pub const HOOK: &str = include_str!("levels/sitecustomize.py");

/// The directory of the hook in an agent container (appended to `PYTHONPATH`).
pub const HOOK_DIR: &str = "/opt/ocs-harness/levels";

/// What starts a tag (ASCII record separator, then `ocsh:`).
pub const MARK: &str = "\u{1e}ocsh:";

/// What ends a tag (ASCII unit separator).
pub const END: char = '\u{1f}';

/// A log line's level, as the agent's logger gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `debug` (and txaio's `trace`).
    Debug,
    /// `info`.
    Info,
    /// `warn` (Python `logging`'s `WARNING`).
    Warn,
    /// `error`.
    Error,
    /// `critical` (twisted's failures).
    Critical,
}

impl Level {
    /// A level's name as twisted or Python `logging` spell it (any case); `None` for others.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "trace" | "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" | "warning" => Some(Self::Warn),
            "error" => Some(Self::Error),
            "critical" | "fatal" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// What a tag says: the level (`None` when the tag names none the harness knows) and the
/// logger's namespace (`ocs.ocs_agent.OCSAgent`, a `logging` logger's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The level.
    pub level: Option<Level>,
    /// The namespace (may be empty).
    pub namespace: String,
}

/// `line` without its tag, and what the tag said; a line without one is returned as it is.
pub fn strip(line: &str) -> (Option<Tag>, &str) {
    let Some(rest) = line.strip_prefix(MARK) else {
        return (None, line);
    };
    let Some((tag, text)) = rest.split_once(END) else {
        return (None, line);
    };
    let (level, namespace) = tag.split_once(':').unwrap_or((tag, ""));
    let tag = Tag {
        level: Level::parse(level),
        namespace: namespace.to_string(),
    };
    (Some(tag), text)
}

/// `text` (many lines) with the tag taken off every line that has one.
pub fn strip_all(text: &str) -> Cow<'_, str> {
    if !text.contains(MARK) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.split_inclusive('\n')
            .map(|l| strip(l).1)
            .collect::<String>(),
    )
}

/// [`strip_all`] for raw output bytes.
pub fn strip_bytes(bytes: Vec<u8>) -> Vec<u8> {
    let mark = MARK.as_bytes();
    if !bytes.windows(mark.len()).any(|w| w == mark) {
        return bytes;
    }
    strip_all(&String::from_utf8_lossy(&bytes))
        .into_owned()
        .into_bytes()
}

/// The `PYTHONPATH` an agent container gets: the one the plan sets, else the image's, with
/// the hook's directory appended (the hook never hides a module of theirs).
pub fn python_path(planned: Option<&str>, image: Option<&str>) -> String {
    match planned.or(image).filter(|p| !p.is_empty()) {
        Some(p) if p.split(':').any(|d| d == HOOK_DIR) => p.to_string(),
        Some(p) => format!("{p}:{HOOK_DIR}"),
        None => HOOK_DIR.to_string(),
    }
}

/// The value of variable `name` in an image's `Env` (`NAME=value` items).
pub fn env_value<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_parsed_and_stripped_and_other_lines_stay_as_they_are() {
        let line = "\u{1e}ocsh:warn:ocs.agents.barebones.agent.BarebonesAgent\u{1f}\
                    2026-12-07T01:04:03+0000 count: buffer_time=1.0 s is below";
        let (tag, text) = strip(line);
        assert_eq!(
            text,
            "2026-12-07T01:04:03+0000 count: buffer_time=1.0 s is below"
        );
        let tag = tag.unwrap();
        assert_eq!(tag.level, Some(Level::Warn));
        assert_eq!(tag.namespace, "ocs.agents.barebones.agent.BarebonesAgent");
        for plain in [
            "2026-12-07T01:04:03+0000 plain",
            "",
            "\u{1e}ocsh:warn no end",
            "x\u{1e}ocsh:warn:a\u{1f}not at the start",
        ] {
            assert_eq!(strip(plain), (None, plain));
        }
        let (tag, text) = strip("\u{1e}ocsh:WARNING:x:y\u{1f}WARNING:x:y:m");
        assert_eq!(
            (tag.clone().unwrap().level, text),
            (Some(Level::Warn), "WARNING:x:y:m")
        );
        assert_eq!(tag.unwrap().namespace, "x:y");
        let (tag, text) = strip("\u{1e}ocsh:Level 5:\u{1f}odd");
        assert_eq!((tag.unwrap().level, text), (None, "odd"));
    }

    #[test]
    fn strip_all_strips_every_line_and_keeps_the_rest_byte_for_byte() {
        let text = "\u{1e}ocsh:info:a\u{1f}one\ntwo\r\n\u{1e}ocsh:error:b\u{1f}three";
        assert_eq!(strip_all(text), "one\ntwo\r\nthree");
        assert!(matches!(strip_all("no tags\n"), Cow::Borrowed(_)));
        assert_eq!(strip_bytes(text.as_bytes().to_vec()), b"one\ntwo\r\nthree");
        assert_eq!(strip_bytes(b"\xffraw".to_vec()), b"\xffraw");
    }

    #[test]
    fn the_hook_is_appended_to_the_python_path_of_the_plan_or_the_image() {
        assert_eq!(python_path(None, None), HOOK_DIR);
        assert_eq!(python_path(None, Some("")), HOOK_DIR);
        assert_eq!(
            python_path(None, Some("/app:/lib")),
            format!("/app:/lib:{HOOK_DIR}")
        );
        assert_eq!(
            python_path(Some("/mine"), Some("/app")),
            format!("/mine:{HOOK_DIR}")
        );
        let twice = format!("/app:{HOOK_DIR}");
        assert_eq!(python_path(Some(&twice), None), twice);
        let env = ["PATH=/bin".to_string(), "PYTHONPATH=/a:/b".to_string()];
        assert_eq!(env_value(&env, "PYTHONPATH"), Some("/a:/b"));
        assert_eq!(env_value(&env, "PYTHON"), None);
    }

    #[test]
    fn levels_order_and_names() {
        assert!(Level::Warn < Level::Error && Level::Error < Level::Critical);
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::parse("trace"), Some(Level::Debug));
        assert_eq!(Level::parse("loud"), None);
    }
}
