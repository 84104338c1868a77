//! A clean shutdown of the agents at the end of a run, as `docker stop` and compose do it:
//! each running agent gets its stop signal (the image's `STOPSIGNAL`, else SIGTERM, unless the
//! scenario names one), all at once, and must exit within a budget (ocs's own test runner
//! allows 10 s after SIGINT). One that does not is killed (SIGKILL) and reported as hung. What
//! each agent logged while stopping is read back from the engine (it cannot miss the last
//! lines, as a followed stream may), so the runner can check it for tracebacks.

use std::time::{Duration, Instant};

use futures::StreamExt;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::query_parameters::{InspectContainerOptions, LogsOptionsBuilder};
use testcontainers::bollard::Docker;

use crate::clock::{unix_now, unix_time_of_rfc3339};
use crate::runtime::engine;
use crate::runtime::stack::Stack;
use crate::wait::{poll_until, Backoff, Probe};

/// The default budget: what ocs's test runner allows an agent after SIGINT
/// (`ocs/testing.py`, `SIGINT_TIMEOUT = 10`), and compose's default stop grace period.
pub const DEFAULT_STOP_BUDGET: Duration = Duration::from_secs(10);

/// How one agent's stop went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// It exited by itself within the budget, with this code.
    Exited {
        /// The exit code.
        code: i64,
    },
    /// It was still running when the budget ran out, and was killed.
    Hung,
    /// It was not running when the run ended (stopped, killed or crashed by a step, or
    /// paused): nothing to stop.
    NotRunning,
    /// The engine failed a request on the way (the text says which).
    Failed(String),
}

/// One agent's stop.
#[derive(Debug, Clone)]
pub struct AgentStop {
    /// The agent's instance-id.
    pub instance: String,
    /// The signal sent.
    pub signal: String,
    /// How it went.
    pub outcome: StopOutcome,
    /// From the signal to the exit (or to the kill, when it hung).
    pub took: Duration,
    /// What it logged from the signal on, as the engine has it (the level hook's tags
    /// stripped, each line's level kept).
    pub log: Vec<(Option<crate::levels::Level>, String)>,
}

impl Stack {
    /// Stop every running agent, all at once: `signal` (else its image's `STOPSIGNAL`, else
    /// SIGTERM), then wait up to `budget` for it to exit; one still running then is killed.
    /// Crossbar and the services stay up meanwhile (an agent leaves its realm as it stops).
    pub async fn stop_agents(&self, signal: Option<&str>, budget: Duration) -> Vec<AgentStop> {
        let stops = self.agents.iter().map(|(instance, c)| {
            let docker = self.docker.clone();
            let id = c.id().to_string();
            let instance = instance.clone();
            let signal = signal.map(str::to_string);
            async move { stop_one(&docker, &id, instance, signal, budget).await }
        });
        futures::future::join_all(stops).await
    }
}

/// Stop container `id` (agent `instance`).
async fn stop_one(
    docker: &Docker,
    id: &str,
    instance: String,
    signal: Option<String>,
    budget: Duration,
) -> AgentStop {
    let mut stop = AgentStop {
        instance,
        signal: signal.clone().unwrap_or_else(|| "SIGTERM".into()),
        outcome: StopOutcome::NotRunning,
        took: Duration::ZERO,
        log: Vec::new(),
    };
    let inspected = match docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            stop.outcome = StopOutcome::Failed(format!("inspecting it: {e}"));
            return stop;
        }
    };
    let state = inspected.state.unwrap_or_default();
    if !state.running.unwrap_or(false) || state.paused.unwrap_or(false) {
        return stop;
    }
    if signal.is_none() {
        if let Some(s) = inspected
            .config
            .and_then(|c| c.stop_signal)
            .filter(|s| !s.is_empty())
        {
            stop.signal = s;
        }
    }
    let since = unix_now();
    let t = Instant::now();
    if let Err(e) = engine::kill(docker, id, &stop.signal).await {
        stop.outcome = StopOutcome::Failed(format!("sending {}: {e}", stop.signal));
        return stop;
    }
    let exited = wait_stopped(
        docker,
        id,
        format!("agent {} to exit after {}", stop.instance, stop.signal),
        budget,
    )
    .await
    .map(|(code, _)| code);
    stop.took = t.elapsed();
    stop.outcome = match exited {
        Ok(code) => StopOutcome::Exited { code },
        Err(crate::wait::WaitError::Timeout { .. }) => {
            let (outcome, took) = after_budget(docker, id, since, budget).await;
            if let Some(took) = took {
                stop.took = took;
            }
            outcome
        }
        Err(e) => StopOutcome::Failed(e.to_string()),
    };
    stop.log = log_since(docker, id, since).await;
    stop
}

/// How long the engine may take to report a killed container stopped.
const ENGINE_REPORT: Duration = Duration::from_secs(30);

/// The budget ran out while the engine still called the agent running. It may have exited in
/// time all the same: the engine marks a container stopped only once it has handled the exit
/// (its output copied, its task deleted, its filesystem unmounted), and every inspect waits
/// meanwhile; on a loaded machine that took seconds (a run of the repetition check judged an
/// agent hung whose last line, "Main loop terminated", came 6 s after SIGTERM). So: SIGKILL
/// (refused when it has exited meanwhile), wait for the engine to report it stopped, and
/// judge by how and when the process really exited ([`judge`]). The outcome, and the time
/// from the signal to the exit when the engine says.
async fn after_budget(
    docker: &Docker,
    id: &str,
    since: f64,
    budget: Duration,
) -> (StopOutcome, Option<Duration>) {
    let _ = engine::kill(docker, id, "SIGKILL").await;
    let stopped = wait_stopped(
        docker,
        id,
        "the engine to report the killed agent stopped".into(),
        ENGINE_REPORT,
    )
    .await;
    match stopped {
        Ok((code, finished)) => {
            let took = finished.map(|f| Duration::from_secs_f64((f - since).max(0.0)));
            (judge(code, took, budget), took)
        }
        Err(e) => (StopOutcome::Failed(e.to_string()), None),
    }
}

/// Wait up to `deadline` for the engine to report container `id` not running: its exit code
/// and when its process exited (`State.FinishedAt`, Unix seconds) as the engine recorded it.
async fn wait_stopped(
    docker: &Docker,
    id: &str,
    condition: String,
    deadline: Duration,
) -> Result<(i64, Option<f64>), crate::wait::WaitError> {
    poll_until(condition, deadline, Backoff::default(), || async {
        match docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(i) => {
                let s = i.state.unwrap_or_default();
                if s.running.unwrap_or(false) {
                    Probe::Pending("still running".into())
                } else {
                    let finished = s.finished_at.as_deref().and_then(unix_time_of_rfc3339);
                    Probe::Ready((s.exit_code.unwrap_or(-1), finished))
                }
            }
            Err(e) => Probe::Failed(format!("inspecting it: {e}")),
        }
    })
    .await
}

/// The verdict on an agent the engine reported stopped only after the budget: exited by
/// itself (not SIGKILL's 137) at a time within `budget` of the signal is a stop in time;
/// anything else hung.
fn judge(code: i64, took: Option<Duration>, budget: Duration) -> StopOutcome {
    match took {
        Some(t) if code != 137 && t <= budget => StopOutcome::Exited { code },
        _ => StopOutcome::Hung,
    }
}

/// The log lines of container `id` the engine stamped at `since` (Unix seconds) or later,
/// each with its level when the level hook tagged it.
async fn log_since(
    docker: &Docker,
    id: &str,
    since: f64,
) -> Vec<(Option<crate::levels::Level>, String)> {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .since(since.floor() as i32)
        .build();
    let mut text = Vec::new();
    let mut stream = docker.logs(id, Some(options));
    while let Some(Ok(frame)) = stream.next().await {
        let bytes = match frame {
            LogOutput::StdErr { message }
            | LogOutput::StdOut { message }
            | LogOutput::Console { message } => message,
            LogOutput::StdIn { .. } => continue,
        };
        text.extend_from_slice(&bytes);
    }
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| {
            let (ts, rest) = line.split_once(' ').unwrap_or(("", line));
            match unix_time_of_rfc3339(ts) {
                Some(t) if t + 0.001 < since => None,
                _ => {
                    let (tag, text) = crate::levels::strip(rest);
                    Some((tag.and_then(|t| t.level), text.to_string()))
                }
            }
        })
        .collect()
}

impl AgentStop {
    /// What is wrong with this stop, if anything: hung, or exited with a code other than 0.
    pub fn problem(&self, budget: Duration) -> Option<String> {
        let b = crate::wait::fmt_duration(budget);
        match &self.outcome {
            StopOutcome::Exited { code: 0 } | StopOutcome::NotRunning => None,
            StopOutcome::Exited { code } => Some(format!(
                "agent {} exited with code {code} {} after {} (a clean shutdown exits with 0)",
                self.instance,
                crate::wait::fmt_duration(self.took),
                self.signal
            )),
            StopOutcome::Hung => Some(format!(
                "agent {} did not exit within {b} of {} (the shutdown budget) and was killed",
                self.instance, self.signal
            )),
            StopOutcome::Failed(e) => Some(format!("stopping agent {}: {e}", self.instance)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_reported_late_is_judged_by_when_it_really_exited() {
        let budget = Duration::from_secs(10);
        let at = Duration::from_secs_f64;
        // Exited by itself 6.2 s after the signal; the engine said so only after the budget.
        assert_eq!(
            judge(0, Some(at(6.2)), budget),
            StopOutcome::Exited { code: 0 }
        );
        assert_eq!(
            judge(1, Some(at(9.9)), budget),
            StopOutcome::Exited { code: 1 }
        );
        // Killed by the harness's SIGKILL, or out by itself only after the budget: hung.
        assert_eq!(judge(137, Some(at(10.1)), budget), StopOutcome::Hung);
        assert_eq!(judge(0, Some(at(10.5)), budget), StopOutcome::Hung);
        // No exit time from the engine: nothing proves it stopped in time.
        assert_eq!(judge(0, None, budget), StopOutcome::Hung);
    }
}
