//! What the runner needs of a live stack, as a small trait: calls to agents through the OCS
//! client, a container's state, log lines since a mark, faults, files fetched out of a
//! container and commands run in one. [`Stack`] implements it with its public methods; the
//! unit tests implement it with a scripted fake, so the runner's decisions are tested without
//! Docker.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::ocs::{AgentApi, ClientError, Reply};
use crate::overrides::ImageRef;
use crate::runtime::exec::{Command, CommandOutput, ExecError};
use crate::runtime::logs::LogLine;
use crate::runtime::stack::{Stack, StackError};
use crate::scenario::{Fault, FaultAction, Fetched, OpAction};

/// The stack as the runner drives it. `role` and `instance` are `crossbar` or an instance-id.
pub(crate) trait StackOps: Send + Sync {
    /// `get_api` of agent `instance`.
    fn get_api(&self, instance: &str)
        -> impl Future<Output = Result<AgentApi, ClientError>> + Send;

    /// One `.ops` action on `instance.op` (`params`: `start` only; `timeout`: `wait` only),
    /// sending `password` as OCS's client does.
    fn op(
        &self,
        action: OpAction,
        instance: &str,
        op: &str,
        params: Option<&Value>,
        timeout: Option<Duration>,
        password: Option<&str>,
    ) -> impl Future<Output = Result<Reply, ClientError>> + Send;

    /// A call of `instance`'s own procedure `procedure` (not an operation); its return value.
    fn call(
        &self,
        instance: &str,
        procedure: &str,
        args: Vec<Value>,
        kwargs: serde_json::Map<String, Value>,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send;

    /// Whether the container of `role` is running, and its exit code if not.
    fn container_state(
        &self,
        role: &str,
    ) -> impl Future<Output = Result<(bool, Option<i64>), StackError>> + Send;

    /// Inject `fault`; for faults that restart something, returns once it answers again.
    fn fault(&mut self, fault: &Fault) -> impl Future<Output = Result<(), StackError>> + Send;

    /// Copy `path` out of the container of `role` into the run's `fetched/<into>/`: where it
    /// went and the files found, or `None` when there is no such path.
    fn fetch(
        &self,
        role: &str,
        path: &str,
        into: &str,
    ) -> impl Future<Output = Result<Option<(PathBuf, Fetched)>, StackError>> + Send;

    /// Run `command` in the container `role` (`exec` steps).
    fn exec(
        &self,
        role: &str,
        command: &Command,
    ) -> impl Future<Output = Result<CommandOutput, ExecError>> + Send;

    /// Run `command` in a new container of `image` on the stack's network, removed
    /// afterwards (`exec: {image: ..}` steps).
    fn exec_in_image(
        &self,
        image: &ImageRef,
        command: &Command,
    ) -> impl Future<Output = Result<CommandOutput, ExecError>> + Send;

    /// The position the next log line (of any container) will have.
    fn log_mark(&self) -> usize;

    /// The log lines of `container` from position `since` on.
    fn log_lines(&self, container: &str, since: usize) -> Vec<LogLine>;

    /// The last `n` log lines of `container`.
    fn log_tail(&self, container: &str, n: usize) -> Vec<String>;
}

impl StackOps for Stack {
    async fn get_api(&self, instance: &str) -> Result<AgentApi, ClientError> {
        self.client().agent(instance).get_api().await
    }

    async fn op(
        &self,
        action: OpAction,
        instance: &str,
        op: &str,
        params: Option<&Value>,
        timeout: Option<Duration>,
        password: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let mut agent = self.client().agent(instance);
        if let Some(pw) = password {
            agent = agent.with_password(pw);
        }
        match action {
            OpAction::Start => agent.start(op, params.cloned()).await,
            OpAction::Status => agent.status(op).await,
            OpAction::Wait => agent.wait(op, timeout).await,
            OpAction::Stop => agent.stop(op).await,
            OpAction::Abort => agent.abort(op).await,
        }
    }

    async fn call(
        &self,
        instance: &str,
        procedure: &str,
        args: Vec<Value>,
        kwargs: serde_json::Map<String, Value>,
    ) -> Result<Value, ClientError> {
        let agent = self.client().agent(instance);
        agent.special(procedure, args, kwargs).await
    }

    async fn container_state(&self, role: &str) -> Result<(bool, Option<i64>), StackError> {
        Stack::container_state(self, self.role_of(role)).await
    }

    async fn fault(&mut self, fault: &Fault) -> Result<(), StackError> {
        // a service's name is its role (a fault drops a device and brings it back)
        let role = self.role_of(fault.container.as_str());
        let role = &role;
        match fault.action {
            FaultAction::Restart => self.restart(role, fault.timeout).await,
            FaultAction::Stop => self.stop(role).await,
            FaultAction::Start => self.start(role, fault.timeout).await,
            FaultAction::Kill => self.kill(role, &fault.signal).await,
            FaultAction::Pause => self.pause(role).await,
            FaultAction::Unpause => self.unpause(role, fault.timeout).await,
            FaultAction::Disconnect => match fault.duration {
                Some(d) => self.disconnect_for(role, d).await,
                None => self.disconnect(role).await,
            },
            FaultAction::Connect => self.connect(role, fault.timeout).await,
        }
    }

    async fn fetch(
        &self,
        role: &str,
        path: &str,
        into: &str,
    ) -> Result<Option<(PathBuf, Fetched)>, StackError> {
        Stack::fetch(self, role, path, into).await
    }

    async fn exec(&self, role: &str, command: &Command) -> Result<CommandOutput, ExecError> {
        Stack::exec(self, self.role_of(role), command).await
    }

    async fn exec_in_image(
        &self,
        image: &ImageRef,
        command: &Command,
    ) -> Result<CommandOutput, ExecError> {
        Stack::exec_in_image(self, image, command).await
    }

    fn log_mark(&self) -> usize {
        self.logs().len()
    }

    fn log_lines(&self, container: &str, since: usize) -> Vec<LogLine> {
        self.logs().lines_of(container, since)
    }

    fn log_tail(&self, container: &str, n: usize) -> Vec<String> {
        self.logs().tail(container, n)
    }
}
