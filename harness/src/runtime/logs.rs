//! Container logs as they arrive: every line of every container of a stack, with the time it
//! was received and the stream it came on, in one store that waiters can watch.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use testcontainers::core::logs::LogFrame;
use tokio::sync::Notify;

use crate::levels::{self, Level};
use crate::wait::{poll_until, Backoff, Probe, WaitError};

/// Which output stream a line came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output (where OCS agents and crossbar log everything).
    Stdout,
    /// Standard error (config errors before logging starts).
    Stderr,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Position in the store (0-based, in arrival order).
    pub seq: usize,
    /// The container's logical name (`crossbar`, an instance-id).
    pub container: String,
    /// When the harness received it.
    pub received: SystemTime,
    /// Stream.
    pub stream: Stream,
    /// The text, without the newline (and without the level tag the agent's logger wrote).
    pub text: String,
    /// The level the agent's logger gave it (`None`: output with no level, see
    /// [`crate::levels`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The namespace of the logger that logged it, when it has a level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Default)]
struct Inner {
    lines: Vec<LogLine>,
    partial: Vec<(String, Stream, String)>,
}

/// Every container's log lines, shared between the log consumers and the runner.
#[derive(Clone, Default)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("lines", &self.len())
            .finish()
    }
}

impl LogStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append raw output of `container`; complete lines are stored, a trailing partial line
    /// waits for the rest.
    pub fn push_bytes(&self, container: &str, stream: Stream, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut inner = self.inner.lock().expect("log store lock");
        let idx = match inner
            .partial
            .iter()
            .position(|(c, s, _)| c == container && *s == stream)
        {
            Some(i) => i,
            None => {
                inner
                    .partial
                    .push((container.to_string(), stream, String::new()));
                inner.partial.len() - 1
            }
        };
        let mut buf = std::mem::take(&mut inner.partial[idx].2);
        buf.push_str(&text);
        let mut rest = buf.as_str();
        let now = SystemTime::now();
        let mut complete = Vec::new();
        while let Some(pos) = rest.find('\n') {
            complete.push(rest[..pos].trim_end_matches('\r').to_string());
            rest = &rest[pos + 1..];
        }
        inner.partial[idx].2 = rest.to_string();
        for line in complete {
            let seq = inner.lines.len();
            let (tag, text) = levels::strip(&line);
            inner.lines.push(LogLine {
                seq,
                container: container.to_string(),
                received: now,
                stream,
                text: text.to_string(),
                level: tag.as_ref().and_then(|t| t.level),
                namespace: tag.map(|t| t.namespace),
            });
        }
        drop(inner);
        self.notify.notify_waiters();
    }

    /// Flush partial lines (at container exit).
    pub fn flush(&self, container: &str) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.push_bytes(container, stream, b"\n");
            // push_bytes of "\n" on an empty partial adds an empty line; drop it again.
            let mut inner = self.inner.lock().expect("log store lock");
            if inner.lines.last().is_some_and(|l| {
                l.container == container && l.stream == stream && l.text.is_empty()
            }) {
                inner.lines.pop();
            }
        }
    }

    /// A consumer for testcontainers' `with_log_consumer`, filing lines under `container`.
    pub fn consumer(&self, container: &str) -> impl Fn(&LogFrame) + Send + Sync + 'static {
        let store = self.clone();
        let container = container.to_string();
        move |frame: &LogFrame| match frame {
            LogFrame::StdOut(b) => store.push_bytes(&container, Stream::Stdout, b),
            LogFrame::StdErr(b) => store.push_bytes(&container, Stream::Stderr, b),
        }
    }

    /// Number of complete lines so far.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("log store lock").lines.len()
    }

    /// Whether no line has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of every line so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.inner.lock().expect("log store lock").lines.clone()
    }

    /// The lines of one container, from position `since` on.
    pub fn lines_of(&self, container: &str, since: usize) -> Vec<LogLine> {
        let inner = self.inner.lock().expect("log store lock");
        inner
            .lines
            .get(since..)
            .unwrap_or(&[])
            .iter()
            .filter(|l| l.container == container)
            .cloned()
            .collect()
    }

    /// The last `n` lines of `container`, as text.
    pub fn tail(&self, container: &str, n: usize) -> Vec<String> {
        let inner = self.inner.lock().expect("log store lock");
        let mut out: Vec<String> = inner
            .lines
            .iter()
            .rev()
            .filter(|l| l.container == container)
            .take(n)
            .map(|l| l.text.clone())
            .collect();
        out.reverse();
        out
    }

    /// Completes when a line of `container` at position `since` or later contains `needle`;
    /// never otherwise (race it against a deadline). Used as a readiness hint.
    pub async fn appeared(&self, container: &str, needle: &str, since: usize) {
        let mut from = since;
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before looking, so a line pushed in between still wakes us.
            notified.as_mut().enable();
            {
                let inner = self.inner.lock().expect("log store lock");
                let lines = inner.lines.get(from..).unwrap_or(&[]);
                if lines
                    .iter()
                    .any(|l| l.container == container && l.text.contains(needle))
                {
                    return;
                }
                from = from.max(inner.lines.len());
            }
            notified.await;
        }
    }

    /// Write the lines to `<run_dir>/logs/<container>.log`; the directory written.
    pub fn save(&self, run_dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        let dir = run_dir.join("logs");
        std::fs::create_dir_all(&dir)?;
        let mut files: std::collections::BTreeMap<String, String> = Default::default();
        for line in self.lines() {
            let f = files.entry(line.container.clone()).or_default();
            f.push_str(&line.text);
            f.push('\n');
        }
        for (container, text) in files {
            std::fs::write(dir.join(log_file_name(&container)), text)?;
        }
        Ok(dir)
    }

    /// Wait until a line of `container` (at position `since` or later) contains `needle`.
    pub async fn wait_for(
        &self,
        container: &str,
        needle: &str,
        since: usize,
        timeout: Duration,
    ) -> Result<LogLine, WaitError> {
        let condition = format!("{container}'s log to contain {needle:?}");
        poll_until(condition, timeout, Backoff::default(), || {
            let notified = self.notify.notified();
            let found = self
                .lines_of(container, since)
                .into_iter()
                .find(|l| l.text.contains(needle));
            let last = self.tail(container, 1).pop();
            async move {
                match found {
                    Some(l) => Probe::Ready(l),
                    None => {
                        // Wake on the next line rather than on the poll interval alone.
                        let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
                        Probe::Pending(match last {
                            Some(l) => format!("last line {l:?}"),
                            None => "no output yet".into(),
                        })
                    }
                }
            }
        })
        .await
    }
}

/// `<container>.log`, with a `/` or `\\` in the name (an instance-id given through the API)
/// made `_`, so that the file stays in the logs directory.
pub(crate) fn log_file_name(container: &str) -> String {
    let safe: String = container
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("{safe}.log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_files_stay_in_the_logs_directory() {
        let dir = std::env::temp_dir().join(format!("ocsh-logs-{}", std::process::id()));
        let store = LogStore::new();
        store.push_bytes("a/b", Stream::Stdout, b"one\n");
        store.push_bytes("..", Stream::Stdout, b"two\n");
        let logs = store.save(&dir).unwrap();
        let a = std::fs::read_to_string(logs.join("a_b.log")).unwrap();
        let dots = std::fs::read_to_string(logs.join("...log")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((a.as_str(), dots.as_str()), ("one\n", "two\n"));
    }

    #[test]
    fn a_level_tag_is_kept_apart_from_the_text() {
        let store = LogStore::new();
        store.push_bytes(
            "barebones1",
            Stream::Stdout,
            b"\x1eocsh:warn:ocs.Agent\x1f2026-12-07T01:04:03+0000 count: slow\nplain\n",
        );
        let lines = store.lines();
        assert_eq!(lines[0].text, "2026-12-07T01:04:03+0000 count: slow");
        assert_eq!(lines[0].level, Some(Level::Warn));
        assert_eq!(lines[0].namespace.as_deref(), Some("ocs.Agent"));
        assert_eq!((lines[1].text.as_str(), lines[1].level), ("plain", None));
        assert_eq!(lines[1].namespace, None);
    }

    #[test]
    fn joins_partial_frames_into_lines() {
        let store = LogStore::new();
        store.push_bytes("a", Stream::Stdout, b"hel");
        store.push_bytes("b", Stream::Stdout, b"other\n");
        store.push_bytes("a", Stream::Stdout, b"lo\nwor");
        assert_eq!(store.tail("a", 5), vec!["hello"]);
        store.flush("a");
        assert_eq!(store.tail("a", 5), vec!["hello", "wor"]);
        assert_eq!(store.tail("b", 5), vec!["other"]);
        store.flush("b");
        assert_eq!(store.len(), 3);
    }

    #[tokio::test]
    async fn appeared_completes_on_a_later_line_only() {
        let store = LogStore::new();
        store.push_bytes("agent", Stream::Stdout, b"session joined: {old}\n");
        let s2 = store.clone();
        let writer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            s2.push_bytes("crossbar", Stream::Stdout, b"session joined elsewhere\n");
            s2.push_bytes("agent", Stream::Stdout, b"session joined: {new}\n");
        });
        // Lines before `since` do not count.
        tokio::time::timeout(
            Duration::from_secs(5),
            store.appeared("agent", "session joined", 1),
        )
        .await
        .expect("the later line completes it");
        writer.await.unwrap();
        assert!(tokio::time::timeout(
            Duration::from_millis(20),
            store.appeared("agent", "never", 0)
        )
        .await
        .is_err());
    }

    #[tokio::test]
    async fn wait_for_sees_later_lines() {
        let store = LogStore::new();
        let s2 = store.clone();
        let writer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            s2.push_bytes(
                "agent",
                Stream::Stdout,
                b"count:0 Acquisition exited cleanly.\n",
            );
        });
        let line = store
            .wait_for(
                "agent",
                "Acquisition exited cleanly.",
                0,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(line.seq, 0);
        writer.await.unwrap();
        let err = store
            .wait_for("agent", "never", 0, Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("agent's log to contain \"never\""));
    }
}
