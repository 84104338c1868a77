//! Host tools (debootstrap, pip, apt-get) and the build lock, each with a limit: a tool that
//! prints nothing for [`TOOL_STALL`] has stalled and is stopped; a build lock another process
//! holds for longer than [`LOCK_DEADLINE`] is given up on, naming who holds it.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::{io_err, last_lines, ImageError};
use crate::runtime::progress;
use crate::wait::{fmt_duration, poll_until, Backoff, Probe};

/// A host tool or a build step that prints nothing for this long has stalled (a network that
/// stopped answering, a prompt waiting for input). Generous on purpose: `pip wheel --quiet`
/// prints nothing while it downloads, and a plugin's `RUN` step may compile quietly.
pub const TOOL_STALL: Duration = Duration::from_secs(600);

/// How long a process waits for the image build lock another process holds: that process's
/// builds (the recipe images took 60 s and 47 s for the OS and ocs on the reference machine)
/// each stop at [`TOOL_STALL`] when they hang, so the lock outlives this only when something
/// is wrong with that process.
pub const LOCK_DEADLINE: Duration = Duration::from_secs(1800);

/// Run a host command, failing with its last output lines; stopped (and its error says so)
/// when it prints nothing for [`TOOL_STALL`].
pub(crate) async fn run_tool(step: &str, cmd: &mut Command) -> Result<(), ImageError> {
    run_tool_within(step, cmd, TOOL_STALL).await
}

async fn run_tool_within(step: &str, cmd: &mut Command, stall: Duration) -> Result<(), ImageError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| ImageError::Spawn {
        step: step.to_string(),
        source,
    })?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut text = Vec::new();
    let (mut out_buf, mut err_buf) = (vec![0u8; 8192], vec![0u8; 8192]);
    while out.is_some() || err.is_some() {
        let read = async {
            tokio::select! {
                r = read_some(&mut out, &mut out_buf) => (true, r),
                r = read_some(&mut err, &mut err_buf) => (false, r),
            }
        };
        match tokio::time::timeout(stall, read).await {
            Err(_) => {
                let _ = child.kill().await;
                return Err(ImageError::Stalled {
                    step: step.to_string(),
                    quiet: fmt_duration(stall),
                    log: last_lines(&String::from_utf8_lossy(&text), 30),
                });
            }
            Ok((is_out, Ok(0) | Err(_))) => {
                if is_out {
                    out = None;
                } else {
                    err = None;
                }
            }
            Ok((true, Ok(n))) => text.extend_from_slice(&out_buf[..n]),
            Ok((false, Ok(n))) => text.extend_from_slice(&err_buf[..n]),
        }
    }
    let status = child
        .wait()
        .await
        .map_err(io_err(format!("waiting for {step}")))?;
    if status.success() {
        return Ok(());
    }
    Err(ImageError::Tool {
        step: step.to_string(),
        detail: format!(
            "{status}\n{}",
            last_lines(&String::from_utf8_lossy(&text), 30)
        ),
    })
}

/// Some bytes of `stream`, or never once it is gone (so that `select!` waits on the other).
async fn read_some<R: AsyncRead + Unpin>(
    stream: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match stream {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Take an exclusive lock on `path`, waiting for another harness process to release it (for
/// at most [`LOCK_DEADLINE`]); the holder writes its pid into the file, so a wait names it.
pub(crate) async fn lock_file(path: &Path) -> Result<std::fs::File, ImageError> {
    lock_file_within(path, LOCK_DEADLINE).await
}

async fn lock_file_within(path: &Path, deadline: Duration) -> Result<std::fs::File, ImageError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(format!("opening lock file {}", path.display())))?;
    let started = Instant::now();
    let mut announced = false;
    let condition = format!(
        "the image build lock {} (another ocs-harness process is building images)",
        path.display()
    );
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(1),
    };
    poll_until(&condition, deadline, backoff, || {
        let probe = match file.try_lock() {
            Ok(()) => Probe::Ready(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(path).unwrap_or_default();
                let holder = holder.trim();
                let seen = if holder.is_empty() {
                    "held by another process".to_string()
                } else {
                    format!("held by {holder}")
                };
                if !announced {
                    announced = true;
                    let text = format!("waiting for {condition}, {seen}");
                    progress::announce("images.lock", &text);
                }
                Probe::Pending(seen)
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Probe::Failed(format!("locking {}: {e}", path.display()))
            }
        };
        std::future::ready(probe)
    })
    .await
    .map_err(|e| ImageError::Lock(e.to_string()))?;
    if started.elapsed() > Duration::from_secs(1) {
        tracing::debug!(lock = %path.display(), waited = ?started.elapsed(), "took the build lock");
    }
    // Name this process for whoever waits next (best effort: the lock is what counts).
    let _ = file.set_len(0);
    let _ = write!(file, "ocs-harness pid {}", std::process::id());
    let _ = file.flush();
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tool_that_prints_nothing_is_stopped_at_its_stall_limit() {
        let mut cmd = Command::new("sh");
        // Prints once, then waits on a read that never comes (a prompt, a dead network).
        cmd.args(["-c", "echo fetching; exec cat /dev/zero > /dev/null"]);
        let started = Instant::now();
        let e = run_tool_within("pip wheel x", &mut cmd, Duration::from_millis(400))
            .await
            .expect_err("stalled");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let text = e.to_string();
        assert!(
            text.starts_with("pip wheel x stalled: it printed nothing for 400ms"),
            "{text}"
        );
        assert!(text.contains("fetching"), "{text}");
    }

    #[tokio::test]
    async fn a_tool_that_fails_shows_its_last_lines_and_one_that_talks_runs_on() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one; echo two >&2; exit 3"]);
        let e = run_tool_within("debootstrap", &mut cmd, Duration::from_secs(5))
            .await
            .expect_err("fails");
        let text = e.to_string();
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("one") && text.contains("two"), "{text}");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "for i in 1 2 3 4 5; do echo $i; done"]);
        run_tool_within("quick", &mut cmd, Duration::from_millis(400))
            .await
            .expect("a tool that ends is not stalled");
    }

    #[tokio::test]
    async fn a_lock_held_too_long_is_given_up_naming_its_holder() {
        let dir = std::env::temp_dir().join(format!("ocsh-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("images.lock");
        let held = lock_file_within(&path, Duration::from_secs(5))
            .await
            .unwrap();
        let started = Instant::now();
        let e = lock_file_within(&path, Duration::from_millis(300))
            .await
            .expect_err("held");
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = e.to_string();
        assert!(text.contains("timed out after 300ms"), "{text}");
        assert!(
            text.contains(&format!("held by ocs-harness pid {}", std::process::id())),
            "{text}"
        );
        drop(held);
        lock_file_within(&path, Duration::from_secs(5))
            .await
            .expect("released");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
