//! Waiting on a condition with a deadline, never a fixed sleep. A probe says whether the
//! condition holds, what it saw, or that waiting is pointless (fail fast); a timeout names
//! the condition, the deadline and the last thing seen.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// One look at the condition.
#[derive(Debug)]
pub enum Probe<T> {
    /// The condition holds.
    Ready(T),
    /// Not yet; the text says what was seen, for the timeout message.
    Pending(String),
    /// It never will (e.g. the container exited); stop waiting at once.
    Failed(String),
}

/// Why a wait ended without the condition holding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed.
    #[error("timed out after {} waiting for {condition}; last seen: {last_seen}", fmt_duration(*timeout))]
    Timeout {
        /// The condition waited for.
        condition: String,
        /// The deadline.
        timeout: Duration,
        /// The last observation.
        last_seen: String,
    },
    /// The probe said the condition can no longer become true.
    #[error("gave up waiting for {condition} after {}: {reason}", fmt_duration(*after))]
    Failed {
        /// The condition waited for.
        condition: String,
        /// Why it cannot happen.
        reason: String,
        /// How long the wait had lasted.
        after: Duration,
    },
}

/// `1.5s`, `250ms`, `2m03s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = d.as_secs_f64();
        if (s - s.round()).abs() < 0.05 {
            format!("{}s", s.round() as u64)
        } else {
            format!("{s:.1}s")
        }
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// Polling intervals: start fast (readiness is noticed within ~100 ms of being true), back
/// off to `max` for long waits.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First interval.
    pub initial: Duration,
    /// Largest interval.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
        }
    }
}

/// Poll `probe` until it is ready, fails, or `timeout` passes.
pub async fn poll_until<T, F, Fut>(
    condition: impl fmt::Display,
    timeout: Duration,
    backoff: Backoff,
    probe: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe<T>>,
{
    poll_until_hinted(
        condition,
        timeout,
        backoff,
        std::future::pending(),
        backoff,
        probe,
    )
    .await
}

/// Like [`poll_until`], and when `hint` completes (a sign that the condition is about to
/// hold, such as a log line) the current wait is cut short: the probe runs at once, and from
/// then on at the intervals of `hinted`. The deadline stays the same.
pub async fn poll_until_hinted<T, F, Fut, H>(
    condition: impl fmt::Display,
    timeout: Duration,
    backoff: Backoff,
    hint: H,
    hinted: Backoff,
    mut probe: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe<T>>,
    H: Future<Output = ()>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    let mut backoff = backoff;
    let mut interval = backoff.initial;
    let mut last_seen = String::from("nothing yet");
    let mut hint = std::pin::pin!(futures::FutureExt::fuse(hint));
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining.max(Duration::from_millis(1)), probe()).await {
            Ok(Probe::Ready(v)) => return Ok(v),
            Ok(Probe::Pending(seen)) => last_seen = seen,
            Ok(Probe::Failed(reason)) => {
                return Err(WaitError::Failed {
                    condition: condition.to_string(),
                    reason,
                    after: start.elapsed(),
                })
            }
            Err(_) => last_seen = format!("{last_seen} (the last check did not finish in time)"),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitError::Timeout {
                condition: condition.to_string(),
                timeout,
                last_seen,
            });
        }
        let sleep = tokio::time::sleep(interval.min(deadline - now));
        tokio::select! {
            _ = sleep => interval = (interval * 2).min(backoff.max),
            _ = &mut hint => {
                backoff = hinted;
                interval = hinted.initial;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_after_a_few_polls() {
        let mut n = 0;
        let v = poll_until(
            "n reaches 3",
            Duration::from_secs(5),
            Backoff::default(),
            || {
                n += 1;
                let n = n;
                async move {
                    if n >= 3 {
                        Probe::Ready(n)
                    } else {
                        Probe::Pending(format!("n = {n}"))
                    }
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(v, 3);
    }

    #[tokio::test]
    async fn timeout_names_condition_deadline_and_last_value() {
        let err = poll_until(
            "the agent to register",
            Duration::from_millis(50),
            Backoff::default(),
            || async { Probe::<()>::Pending("no_such_procedure".into()) },
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 50ms waiting for the agent to register; last seen: no_such_procedure"
        );
    }

    #[tokio::test]
    async fn failed_probe_stops_at_once() {
        let start = Instant::now();
        let err = poll_until("x", Duration::from_secs(30), Backoff::default(), || async {
            Probe::<()>::Failed("container exited with code 1".into())
        })
        .await
        .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(matches!(err, WaitError::Failed { .. }));
        assert!(err.to_string().contains("container exited with code 1"));
    }

    #[tokio::test]
    async fn a_hint_cuts_the_wait_short() {
        let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hint = {
            let ready = ready.clone();
            async move {
                tokio::task::yield_now().await;
                ready.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        };
        let start = Instant::now();
        // Without the hint the second probe would come after 10 s.
        let slow = Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(10),
        };
        let fast = Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        };
        poll_until_hinted(
            "the flag",
            Duration::from_secs(30),
            slow,
            hint,
            fast,
            || {
                let ready = ready.load(std::sync::atomic::Ordering::SeqCst);
                async move {
                    if ready {
                        Probe::Ready(())
                    } else {
                        Probe::Pending("not yet".into())
                    }
                }
            },
        )
        .await
        .unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_secs(123)), "2m03s");
    }
}
