//! Questions to the engine about a running stack's containers: running or exited (and
//! waiting for an exit), and the engine's own timestamps of a start, a log line, a release.

use std::time::Duration;

use crate::clock::unix_now;
use crate::runtime::engine::{self, Doing};
use crate::runtime::role::Role;
use crate::runtime::stack::{Stack, StackError};
use crate::wait::{poll_until, Backoff, Probe, WaitError};

impl Stack {
    /// As the container of `role` reports it: seconds from its start (the engine's StartedAt)
    /// to the first log line containing `needle` (the engine's own line timestamp). `None`
    /// when there is no such line yet.
    pub async fn engine_time_to_line(&self, role: impl Into<Role>, needle: &str) -> Option<f64> {
        let (started, line) = self.engine_times(role, needle).await?;
        Some(line - started)
    }

    /// The engine's StartedAt of the container of `role` and the engine's timestamp of its
    /// first log line containing `needle`, both in Unix seconds.
    pub async fn engine_times(&self, role: impl Into<Role>, needle: &str) -> Option<(f64, f64)> {
        let id = self.container_id(&role.into()).ok()?;
        let started = engine::started_finished(&self.docker, &id).await.0?;
        let line = engine::first_line_time(&self.docker, &id, needle).await?;
        Some((started, line))
    }

    /// When, by the engine's events, the container of `role` was first unpaused (Unix
    /// seconds): the release of an agent held while crossbar booted. `None` when it never
    /// was (not held) or the engine does not say.
    pub async fn engine_released(&self, role: impl Into<Role>) -> Option<f64> {
        let id = self.container_id(&role.into()).ok()?;
        let since = self.timings.marks.began - 1.0;
        engine::unpaused_at(&self.docker, &id, since, unix_now() + 1.0).await
    }

    /// Whether the container of `role` is running, and its exit code if not.
    pub async fn container_state(
        &self,
        role: impl Into<Role>,
    ) -> Result<(bool, Option<i64>), StackError> {
        let role = role.into();
        let c = self.container(&role)?;
        let doing = || format!("inspecting {}", role.name());
        let running = c.is_running().await.doing(doing())?;
        let code = if running {
            None
        } else {
            c.exit_code().await.doing(doing())?
        };
        Ok((running, code))
    }

    /// Wait until the container of `role` has exited; its exit code.
    pub async fn wait_exit(
        &self,
        role: impl Into<Role>,
        timeout: Duration,
    ) -> Result<i64, WaitError> {
        let role = role.into();
        poll_until(
            format!("the container of {} to exit", role.name()),
            timeout,
            Backoff::default(),
            || async {
                match self.container_state(&role).await {
                    Ok((false, code)) => Probe::Ready(code.unwrap_or(-1)),
                    Ok((true, _)) => Probe::Pending("still running".into()),
                    Err(e) => Probe::Failed(crate::runtime::notice::display_chain(&e)),
                }
            },
        )
        .await
    }
}
