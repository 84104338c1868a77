//! Commands run in a container of the stack through the engine's exec API, or in a one-off
//! container from an image on the stack's network (removed when the command ends, labelled
//! like the rest of the run so that an interrupted run's sweep removes it too): the request
//! ([`Command`]), what came back ([`CommandOutput`]) and why it could not run
//! ([`ExecError`]). The output of each command is also written to the run directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::errors::Error as BollardError;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use testcontainers::bollard::models::{ContainerCreateBody, HostConfig};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions, WaitContainerOptions,
};
use testcontainers::bollard::Docker;

use crate::overrides::ImageRef;
use crate::plan::{docker_name_part, LABEL_ROLE};
use crate::runtime::engine::{Doing, EngineError};
use crate::runtime::role::Role;
use crate::runtime::stack::{Stack, StackError};
use crate::wait::fmt_duration;

/// A command to run in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The program and its arguments.
    pub cmd: Vec<String>,
    /// Who runs it (`name`, `uid`, `uid:gid`); the container's user when `None`.
    pub user: Option<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// How long it may run.
    pub timeout: Duration,
    /// The name its output files get in the run directory (`exec/<label>.stdout`).
    pub label: String,
    /// Texts written as `<redacted>` in those files (the run's secrets).
    pub hidden: Vec<String>,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Its exit code.
    pub exit: i64,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
    /// From the exec's start to its end.
    pub duration: Duration,
}

/// Why a command could not be run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The container is not running (it exited, was stopped or killed).
    #[error("the container of {role} is not running{}; cannot run `{cmd}` in it", exited(.code))]
    NotRunning {
        /// The container.
        role: Role,
        /// Its exit code, when it exited.
        code: Option<i64>,
        /// The command.
        cmd: String,
    },
    /// The command did not end within its timeout (it may still run in the container).
    #[error(
        "`{cmd}` in {role} did not finish within its timeout of {}; output so far is in {}",
        fmt_duration(*.timeout), .saved.display()
    )]
    TimedOut {
        /// The container.
        role: Role,
        /// The command.
        cmd: String,
        /// Its timeout.
        timeout: Duration,
        /// Where its output so far was written.
        saved: PathBuf,
    },
    /// The stack has no such container, or the engine failed.
    #[error(transparent)]
    Stack(#[from] StackError),
}

fn exited(code: &Option<i64>) -> String {
    code.map(|c| format!(" (it exited with code {c})"))
        .unwrap_or_default()
}

impl From<EngineError> for ExecError {
    fn from(e: EngineError) -> Self {
        ExecError::Stack(e.into())
    }
}

impl Stack {
    /// Run `command` in the container of `role` and collect its output (also written to
    /// `<run_dir>/exec/<label>.stdout` and `.stderr`).
    pub async fn exec(
        &self,
        role: impl Into<Role>,
        command: &Command,
    ) -> Result<CommandOutput, ExecError> {
        let role = role.into();
        let shown = command.cmd.join(" ");
        if let (false, code) = self.container_state(&role).await? {
            return Err(ExecError::NotRunning {
                role,
                code,
                cmd: shown,
            });
        }
        let id = self.container_id(&role)?;
        let dir = self.run_dir.join("exec");
        run_in(&self.docker, &id, &role, command, &dir).await
    }
}

impl Stack {
    /// Run `command` in a new container of `image` (as a scenario writes it; the plan holds
    /// it after the image overrides) on the stack's network: `cmd` replaces the image's
    /// ENTRYPOINT and CMD. The container carries the run's labels and is removed when the
    /// command ends, whatever happened.
    pub async fn exec_in_image(
        &self,
        image: &ImageRef,
        command: &Command,
    ) -> Result<CommandOutput, ExecError> {
        let written = image.to_string();
        let resolved = self
            .plan
            .exec_images
            .get(&written)
            .cloned()
            .unwrap_or_else(|| written.clone());
        let name = format!("exec-{}", docker_name_part(&command.label));
        let role = Role::Exec(name.clone());
        let mut labels = self.plan.labels.clone();
        labels.insert(LABEL_ROLE.into(), name.clone());
        // crossbar's addresses on the network, as ocs-agent-cli's variables name them
        let crossbar = &self.plan.crossbar.name;
        let port = crate::plan::CROSSBAR_PORT;
        let mut env = BTreeMap::from([
            ("SITE_HUB".to_string(), format!("ws://{crossbar}:{port}/ws")),
            (
                "SITE_HTTP".to_string(),
                format!("http://{crossbar}:{port}/call"),
            ),
        ]);
        env.extend(command.env.clone());
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let (entrypoint, cmd) = match command.cmd.split_first() {
            Some((first, rest)) => (vec![first.clone()], rest.to_vec()),
            None => (Vec::new(), Vec::new()),
        };
        let body = ContainerCreateBody {
            image: Some(resolved.clone()),
            entrypoint: Some(entrypoint),
            cmd: Some(cmd),
            env: Some(env),
            user: command.user.clone(),
            labels: Some(labels.into_iter().collect()),
            host_config: Some(HostConfig {
                network_mode: Some(self.plan.network.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container_name = format!("ocsh-{}-{name}", self.plan.run_id);
        let options = CreateContainerOptionsBuilder::new()
            .name(&container_name)
            .build();
        let shown = command.cmd.join(" ");
        let id = self
            .docker
            .create_container(Some(options), body)
            .await
            .doing(format!(
                "creating a container of {resolved} to run `{shown}` in"
            ))?
            .id;
        let dir = self.run_dir.join("exec");
        let ran = run_one_off(&self.docker, &id, &role, command, &dir).await;
        let remove = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        let removed = self
            .docker
            .remove_container(&id, Some(remove))
            .await
            .doing(format!("removing {role} ({container_name})"));
        let out = ran?;
        removed?;
        Ok(out)
    }
}

/// Start the created container `id` (of `role`) and wait, up to the command's timeout, for
/// it to exit; its output (also written to `dir`) and exit code.
async fn run_one_off(
    docker: &Docker,
    id: &str,
    role: &Role,
    command: &Command,
    dir: &Path,
) -> Result<CommandOutput, ExecError> {
    let doing = || format!("running `{}` in {role}", command.cmd.join(" "));
    let started = Instant::now();
    docker
        .start_container(id, None::<StartContainerOptions>)
        .await
        .doing(doing())?;
    let exited = tokio::time::timeout(command.timeout, exit_code(docker, id)).await;
    let duration = started.elapsed();
    let mut out = (Vec::new(), Vec::new());
    let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
    let mut logs = docker.logs(id, Some(options));
    while let Some(frame) = logs.next().await {
        match frame.doing(doing())? {
            LogOutput::StdErr { message } => out.1.extend_from_slice(&message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                out.0.extend_from_slice(&message)
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    let saved = save(dir, command, &out).map_err(|source| StackError::Io {
        doing: format!(
            "saving the output of `{}` in {}",
            command.cmd.join(" "),
            dir.display()
        ),
        source,
    })?;
    let exit = match exited {
        Err(_) => {
            return Err(ExecError::TimedOut {
                role: role.clone(),
                cmd: command.cmd.join(" "),
                timeout: command.timeout,
                saved,
            })
        }
        Ok(code) => code.doing(doing())?,
    };
    Ok(CommandOutput {
        exit,
        stdout: String::from_utf8_lossy(&out.0).into_owned(),
        stderr: String::from_utf8_lossy(&out.1).into_owned(),
        duration,
    })
}

/// Wait for container `id` to exit; its exit code (the engine reports a non-zero one as an
/// error of the wait, which is not one here).
async fn exit_code(docker: &Docker, id: &str) -> Result<i64, BollardError> {
    let mut wait = docker.wait_container(id, None::<WaitContainerOptions>);
    match wait.next().await {
        Some(Ok(r)) => Ok(r.status_code),
        Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(e),
        None => Err(BollardError::DockerContainerWaitError {
            error: "the engine ended the wait without an exit code".into(),
            code: -1,
        }),
    }
}

/// Run `command` in container `id` (of `role`); its output goes to `dir` too.
async fn run_in(
    docker: &Docker,
    id: &str,
    role: &Role,
    command: &Command,
    dir: &Path,
) -> Result<CommandOutput, ExecError> {
    let doing = || format!("running `{}` in {role}", command.cmd.join(" "));
    let env: Vec<String> = command
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let options = CreateExecOptions {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(command.cmd.clone()),
        env: (!env.is_empty()).then_some(env),
        user: command.user.clone(),
        ..Default::default()
    };
    let started = Instant::now();
    let exec = docker.create_exec(id, options).await.doing(doing())?;
    let results = docker.start_exec(&exec.id, None).await.doing(doing())?;
    let mut out = (Vec::new(), Vec::new());
    let collected = tokio::time::timeout(command.timeout, collect(results, &mut out)).await;
    let duration = started.elapsed();
    // A Python command in an agent's container runs with the log-level hook too.
    let out = (
        crate::levels::strip_bytes(out.0),
        crate::levels::strip_bytes(out.1),
    );
    let saved = save(dir, command, &out).map_err(|source| StackError::Io {
        doing: format!(
            "saving the output of `{}` in {}",
            command.cmd.join(" "),
            dir.display()
        ),
        source,
    })?;
    match collected {
        Err(_) => {
            return Err(ExecError::TimedOut {
                role: role.clone(),
                cmd: command.cmd.join(" "),
                timeout: command.timeout,
                saved,
            })
        }
        Ok(r) => r.doing(doing())?,
    }
    let inspect = docker.inspect_exec(&exec.id).await.doing(doing())?;
    Ok(CommandOutput {
        exit: inspect.exit_code.unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.0).into_owned(),
        stderr: String::from_utf8_lossy(&out.1).into_owned(),
        duration,
    })
}

/// Read the exec's output stream to its end, into `(stdout, stderr)`.
async fn collect(
    results: StartExecResults,
    out: &mut (Vec<u8>, Vec<u8>),
) -> Result<(), testcontainers::bollard::errors::Error> {
    let StartExecResults::Attached { mut output, .. } = results else {
        return Ok(());
    };
    while let Some(chunk) = output.next().await {
        match chunk? {
            LogOutput::StdErr { message } => out.1.extend_from_slice(&message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                out.0.extend_from_slice(&message)
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok(())
}

/// Write `(stdout, stderr)` to `dir/<label>.stdout` and `.stderr`; the first path.
fn save(dir: &Path, command: &Command, out: &(Vec<u8>, Vec<u8>)) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let label = &command.label;
    let stdout = dir.join(format!("{label}.stdout"));
    std::fs::write(&stdout, hide(&out.0, &command.hidden))?;
    std::fs::write(
        dir.join(format!("{label}.stderr")),
        hide(&out.1, &command.hidden),
    )?;
    Ok(stdout)
}

/// `bytes` with every text of `hidden` written as `<redacted>` (as it is, when none occurs).
fn hide(bytes: &[u8], hidden: &[String]) -> Vec<u8> {
    let found = |h: &String| !h.is_empty() && bytes.windows(h.len()).any(|w| w == h.as_bytes());
    if !hidden.iter().any(found) {
        return bytes.to_vec();
    }
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    for h in hidden.iter().filter(|h| !h.is_empty()) {
        text = text.replace(h.as_str(), "<redacted>");
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::hide;

    #[test]
    fn secrets_are_hidden_in_saved_output() {
        let hidden = vec!["s3cret".to_string(), String::new()];
        assert_eq!(
            hide(b"pw=s3cret; again s3cret\n", &hidden),
            b"pw=<redacted>; again <redacted>\n"
        );
        // nothing to hide: the bytes as they are, even when not UTF-8
        assert_eq!(hide(b"\xff\xfe plain", &hidden), b"\xff\xfe plain");
    }
}
