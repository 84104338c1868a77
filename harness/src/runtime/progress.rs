//! Live progress of image builds and pulls.
//!
//! Live (the command line turns it on when stderr is a terminal, colour is allowed and the
//! output is for people): each build is an indicatif spinner showing what is being built and
//! its last build-log line, each pull a bar per layer; whatever else the program writes to the
//! terminal meanwhile goes above the bars ([`AboveBars`]). Otherwise (CI, `cargo test`, the
//! library's default) plain notices: one line when a build starts (`building X (from ...)`)
//! and one when it is done, with its duration. With no `tracing` subscriber (`cargo test`)
//! the start line of each image also goes to the process's real stderr, once per image,
//! past the test harness's output capture, so a first multi-minute build does not look hung.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::runtime::notice;

static LIVE: AtomicBool = AtomicBool::new(false);
static BARS: LazyLock<MultiProgress> =
    LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));

/// How often a spinner turns without news.
const TICK: Duration = Duration::from_millis(120);

/// Turn the live display on or off (off by default).
pub fn set_live(on: bool) {
    LIVE.store(on, Ordering::Relaxed);
}

fn live() -> bool {
    LIVE.load(Ordering::Relaxed)
}

/// Run `f`, which writes to the terminal, with the bars cleared, so its output goes above them.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    if live() {
        BARS.suspend(f)
    } else {
        f()
    }
}

/// A writer that writes whole lines above the live bars (a partial line waits for its end,
/// or for `flush` or drop).
pub struct AboveBars<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> AboveBars<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    fn write_out(&mut self, upto: usize) -> std::io::Result<()> {
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        let inner = &mut self.inner;
        suspend(|| inner.write_all(&chunk).and_then(|()| inner.flush()))
    }
}

impl<W: Write> Write for AboveBars<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.write_out(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.write_out(self.pending.len())
    }
}

impl<W: Write> Drop for AboveBars<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Say `text` when a long task starts: a notice, and, with no subscriber, once per `key` on
/// the real stderr (the `eprintln!` of a notice is captured under `cargo test`).
pub(crate) fn announce(key: &str, text: &str) {
    static SAID: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);
    notice::info(text);
    if notice::unobserved() {
        let first = SAID
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
        if first {
            let _ = writeln!(std::io::stderr(), "ocs-harness: {text}");
        }
    }
}

/// One image being built: a spinner when live, a start and an end line otherwise.
pub struct Build {
    image: String,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Build {
    /// The build of `image` from `source` (`recipe ...`, `Dockerfile ...`) starts.
    pub fn start(image: &str, source: &str) -> Self {
        let text = format!("building {image} (from {source})");
        let bar = live().then(|| {
            let style =
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed}]\n    {wide_msg}")
                    .expect("a valid template");
            let bar = BARS.add(ProgressBar::new_spinner().with_style(style));
            bar.set_prefix(text.clone());
            bar.enable_steady_tick(TICK);
            bar
        });
        if bar.is_none() {
            announce(image, &text);
        }
        Self {
            image: image.to_string(),
            started: Instant::now(),
            bar,
        }
    }

    /// The build's output so far ends with `text`: show its last non-empty line.
    pub fn output(&self, text: &str) {
        if let (Some(bar), Some(line)) = (&self.bar, last_line(text)) {
            bar.set_message(line.to_string());
        }
    }

    /// The build succeeded: the end line, with its duration, which is returned.
    pub fn done(self) -> Duration {
        let took = self.started.elapsed();
        notice::info(&format!(
            "built {} in {:.1}s",
            self.image,
            took.as_secs_f64()
        ));
        took
    }
}

impl Drop for Build {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            BARS.remove(&bar);
        }
    }
}

/// The last non-empty line of `text`, trimmed.
fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// One image being pulled: a bar per layer when live (nothing otherwise; the pull's own
/// start and end lines are notices).
#[derive(Default)]
pub struct Pull {
    layers: BTreeMap<String, ProgressBar>,
}

impl Pull {
    /// The engine reported `status` for layer `id`, with bytes `current` of `total`.
    pub fn layer(&mut self, id: &str, status: &str, current: Option<i64>, total: Option<i64>) {
        if !live() {
            return;
        }
        let bar = self.layers.entry(id.to_string()).or_insert_with(|| {
            let style = ProgressStyle::with_template(
                "  {prefix} {msg:<12} [{bar:30}] {bytes}/{total_bytes}",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            let bar = BARS.add(ProgressBar::new(0).with_style(style));
            bar.set_prefix(id.to_string());
            bar
        });
        bar.set_message(status.to_string());
        if let (Some(current), Some(total)) = (current, total) {
            bar.set_length(u64::try_from(total).unwrap_or(0));
            bar.set_position(u64::try_from(current).unwrap_or(0));
        }
        if matches!(status, "Pull complete" | "Already exists") {
            bar.finish_and_clear();
            BARS.remove(bar);
        }
    }
}

impl Drop for Pull {
    fn drop(&mut self) {
        for bar in self.layers.values() {
            bar.finish_and_clear();
            BARS.remove(bar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_skips_blank_tail() {
        assert_eq!(
            last_line("Step 1/3 : FROM x\n ---> abc\n\n"),
            Some("---> abc")
        );
        assert_eq!(last_line("\n \n"), None);
    }

    #[test]
    fn above_bars_writes_whole_lines_and_the_rest_on_flush() {
        let mut out = AboveBars::new(Vec::new());
        out.write_all(b"one\ntw").unwrap();
        assert_eq!(out.inner, b"one\n");
        out.write_all(b"o\nthr").unwrap();
        assert_eq!(out.inner, b"one\ntwo\n");
        out.flush().unwrap();
        assert_eq!(out.inner, b"one\ntwo\nthr");
    }

    /// A subscriber writing plain text into a buffer.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_build_is_a_start_and_an_end_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let build = Build::start("ocs-harness/agent-x:1", "Dockerfile ctx/Dockerfile");
            build.output("Step 1/2 : FROM scratch\n");
            build.done();
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("building ocs-harness/agent-x:1 (from Dockerfile ctx/Dockerfile)"),
            "{text}"
        );
        assert!(text.contains("built ocs-harness/agent-x:1 in "), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }

    #[test]
    fn not_live_means_no_bars() {
        // The library's default: plain notices, no escape codes anywhere.
        assert!(!live());
        let build = Build::start("ocs-harness/x:1", "Dockerfile ctx/Dockerfile");
        assert!(build.bar.is_none());
        build.output("Step 1/2 : FROM scratch\n");
        build.done();
        let mut pull = Pull::default();
        pull.layer("abc", "Downloading", Some(1), Some(2));
        assert!(pull.layers.is_empty());
    }
}
