//! Faults a scenario injects into a running stack: restart, stop, start, kill, pause,
//! unpause, disconnect (for a while) and connect. The ones that bring a container back wait
//! until the stack is ready again.

use std::time::Duration;

use crate::runtime::bringup::bridge_of;
use crate::runtime::engine::{self, Doing};
use crate::runtime::readiness::{wait_agent, wait_bridge};
use crate::runtime::role::Role;
use crate::runtime::stack::{Stack, StackError};
use crate::wait::WaitError;

impl Stack {
    /// Stop and start the container of `role` again, then wait until the stack is ready
    /// (crossbar: its bridge, on its possibly new port, and every running agent registered;
    /// an agent: its `get_api`).
    pub async fn restart(
        &mut self,
        role: impl Into<Role>,
        timeout: Duration,
    ) -> Result<(), StackError> {
        let role = role.into();
        let id = self.container_id(&role)?;
        engine::restart(&self.docker, &id)
            .await
            .doing(format!("restarting {}", role.name()))?;
        self.after_start(&role, &id, timeout).await
    }

    /// Stop the container of `role` (SIGTERM, SIGKILL after 10 s).
    pub async fn stop(&mut self, role: impl Into<Role>) -> Result<(), StackError> {
        let role = role.into();
        let id = self.container_id(&role)?;
        engine::stop(&self.docker, &id)
            .await
            .doing(format!("stopping {}", role.name()))?;
        Ok(())
    }

    /// Start the (stopped) container of `role`, then wait until the stack is ready.
    pub async fn start(
        &mut self,
        role: impl Into<Role>,
        timeout: Duration,
    ) -> Result<(), StackError> {
        let role = role.into();
        let id = self.container_id(&role)?;
        engine::start(&self.docker, &id)
            .await
            .doing(format!("starting {}", role.name()))?;
        self.after_start(&role, &id, timeout).await
    }

    /// Send `signal` (e.g. `SIGKILL`) to the container of `role`.
    pub async fn kill(&mut self, role: impl Into<Role>, signal: &str) -> Result<(), StackError> {
        let role = role.into();
        let id = self.container_id(&role)?;
        engine::kill(&self.docker, &id, signal)
            .await
            .doing(format!("sending {signal} to {}", role.name()))?;
        Ok(())
    }

    /// Freeze the container of `role`.
    pub async fn pause(&mut self, role: impl Into<Role>) -> Result<(), StackError> {
        let role = role.into();
        let id = self.container_id(&role)?;
        self.docker
            .pause_container(&id)
            .await
            .doing(format!("pausing {}", role.name()))?;
        Ok(())
    }

    /// Thaw the container of `role`, then wait until it answers again.
    pub async fn unpause(
        &mut self,
        role: impl Into<Role>,
        timeout: Duration,
    ) -> Result<(), StackError> {
        let role = role.into();
        let id = self.container_id(&role)?;
        self.docker
            .unpause_container(&id)
            .await
            .doing(format!("unpausing {}", role.name()))?;
        self.wait_ready(&role, timeout).await
    }

    /// Cut the container of `role` off the stack's network.
    pub async fn disconnect(&mut self, role: impl Into<Role>) -> Result<(), StackError> {
        let role = role.into();
        let id = self.container_id(&role)?;
        let network = &self.plan.network;
        engine::disconnect(&self.docker, network, &id)
            .await
            .doing(format!("disconnecting {} from {network}", role.name()))?;
        Ok(())
    }

    /// Cut the container of `role` off the stack's network for `duration`, then put it back
    /// (in the background: the run goes on meanwhile).
    pub async fn disconnect_for(
        &mut self,
        role: impl Into<Role>,
        duration: Duration,
    ) -> Result<(), StackError> {
        let role = role.into();
        self.disconnect(&role).await?;
        let id = self.container_id(&role)?;
        let (docker, network) = (self.docker.clone(), self.plan.network.clone());
        self.background.push(tokio::spawn(async move {
            // The partition's length is the fault itself, not a wait for a condition.
            tokio::time::sleep(duration).await;
            let _ = engine::connect(&docker, &network, &id).await;
        }));
        Ok(())
    }

    /// Put the container of `role` back on the stack's network, then wait until it answers.
    pub async fn connect(
        &mut self,
        role: impl Into<Role>,
        timeout: Duration,
    ) -> Result<(), StackError> {
        let role = role.into();
        let id = self.container_id(&role)?;
        let network = &self.plan.network;
        engine::connect(&self.docker, network, &id)
            .await
            .doing(format!("connecting {} to {network}", role.name()))?;
        self.wait_ready(&role, timeout).await
    }

    /// After a (re)start: follow the new run's logs, re-resolve crossbar's port, wait.
    async fn after_start(
        &mut self,
        role: &Role,
        id: &str,
        timeout: Duration,
    ) -> Result<(), StackError> {
        // The new run's lines come after this mark (its follower skips the old run's).
        let mark = self.logs.len();
        let (started_at, _) = engine::started_finished(&self.docker, id).await;
        self.background.push(tokio::spawn(engine::follow_logs(
            self.docker.clone(),
            id.to_string(),
            role.name().to_string(),
            self.logs.clone(),
            started_at.unwrap_or(0.0),
        )));
        if role.is_crossbar() {
            let crossbar = self.container(role)?;
            let doing = "reading crossbar's published port after a restart";
            (self.bridge_url, self.client) =
                bridge_of(crossbar, &self.host, &self.plan.address_root, doing).await?;
        }
        self.wait_ready_since(role, timeout, mark).await
    }

    /// Wait until `role` answers: crossbar's bridge and then every running agent, one
    /// agent's `get_api`, or a service's readiness condition (its own, with `timeout`).
    async fn wait_ready(&self, role: &Role, timeout: Duration) -> Result<(), StackError> {
        self.wait_ready_since(role, timeout, self.logs.len()).await
    }

    /// [`Stack::wait_ready`], a log line counting from position `since` of the store on.
    async fn wait_ready_since(
        &self,
        role: &Role,
        timeout: Duration,
        since: usize,
    ) -> Result<(), StackError> {
        let not_ready = |role: Role, error: WaitError| StackError::NotReady {
            log_tail: self.logs.tail(role.name(), 30),
            role,
            error: Box::new(error),
        };
        let (client, logs) = (&self.client, &self.logs);
        if let Role::Service(name) = role {
            let c = self.container(role)?;
            let Some(s) = self.plan.services.iter().find(|s| &s.name == name) else {
                return Err(StackError::NoSuchContainer(role.clone()));
            };
            let Some(ready) = &s.ready else {
                return Ok(());
            };
            let ready = crate::service::Readiness {
                check: ready.check.clone(),
                timeout,
            };
            let at = crate::runtime::services::Probed {
                docker: &self.docker,
                host: &self.host,
                logs,
                since,
            };
            return crate::runtime::services::wait_ready(c, s, &ready, &at)
                .await
                .map_err(|e| not_ready(role.clone(), e));
        }
        let Role::Agent(instance_id) = role else {
            let crossbar = self.container(role)?;
            wait_bridge(client, logs, since, crossbar, timeout)
                .await
                .map_err(|e| not_ready(Role::Crossbar, e))?;
            for (id, c) in &self.agents {
                if c.is_running().await.unwrap_or(false) {
                    wait_agent(client, logs, since, id, c, timeout)
                        .await
                        .map_err(|e| not_ready(Role::agent(id), e))?;
                }
            }
            return Ok(());
        };
        let c = self.container(role)?;
        wait_agent(client, logs, since, instance_id, c, timeout)
            .await
            .map_err(|e| not_ready(role.clone(), e))
    }
}
