//! Commands run in a container of the stack through the engine's exec API: the request
//! ([`Command`]), what came back ([`CommandOutput`]) and why it could not run
//! ([`ExecError`]). The output of each command is also written to the run directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use testcontainers::bollard::Docker;

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
    let saved = save(dir, &command.label, &out).map_err(|source| StackError::Io {
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
fn save(dir: &Path, label: &str, out: &(Vec<u8>, Vec<u8>)) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stdout = dir.join(format!("{label}.stdout"));
    std::fs::write(&stdout, &out.0)?;
    std::fs::write(dir.join(format!("{label}.stderr")), &out.1)?;
    Ok(stdout)
}
