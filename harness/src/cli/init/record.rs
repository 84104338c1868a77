//! `init --record`: start a starter scenario's stack, read its agent's `get_api`, and write
//! the steps it documents: the `api` expectations, then one block per task and process. An op
//! whose documented signature (the docstring's first line, `op(a, b=1)`) has a parameter
//! without a default is written commented out, with `params` to fill in.

use std::path::Path;

use anyhow::anyhow;

use crate::ocs::protocol::{AgentApi, OpInfo, OpType};
use crate::runtime::{launch, LaunchOptions};
use crate::scenario::Scenario;

use crate::cli::exit::{CliError, Exit};

/// `text` (a starter scenario at `path`) with its steps recorded from the live agent.
pub(super) async fn fill(path: &Path, text: &str) -> Result<String, CliError> {
    let scenario = Scenario::from_str(text, path, &crate::cli::settings().env)
        .map_err(|e| CliError::new(Exit::BadInput, anyhow!("{e}")))?;
    let infra = |e: anyhow::Error| CliError::new(Exit::Infrastructure, e);
    let options =
        LaunchOptions::with_settings(&format!("init-{}", scenario.name), crate::cli::settings());
    let (stack, _) = launch(&scenario.stack_spec(), &options)
        .await
        .map_err(|e| infra(anyhow!("the stack did not come up: {e}")))?;
    let api = stack.client().agent(scenario.name.clone()).get_api().await;
    let _ = stack.teardown().await;
    let api = api.map_err(|e| infra(anyhow!("get_api of {}: {e}", scenario.name)))?;
    let head = text.split("\nsteps:\n").next().unwrap_or(text);
    Ok(format!("{head}\nsteps:\n{}", steps(&scenario.name, &api)))
}

/// The recorded steps of agent `id`.
fn steps(id: &str, api: &AgentApi) -> String {
    let names = |ops: &[OpInfo]| {
        ops.iter()
            .map(|o| o.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut expect = Vec::new();
    if let Some(class) = &api.agent_class {
        expect.push(format!("agent-class: {class}"));
    }
    if !api.tasks.is_empty() {
        expect.push(format!("tasks: [{}]", names(&api.tasks)));
    }
    if !api.processes.is_empty() {
        expect.push(format!("processes: [{}]", names(&api.processes)));
    }
    let mut out = format!(
        "  # Recorded by `ocs-harness init --record` from the agent's get_api.\n  - api: {id}\n    \
         expect: {{{}}}\n",
        expect.join(", ")
    );
    for op in api.tasks.iter().chain(&api.processes) {
        out.push('\n');
        out.push_str(&op_block(id, op));
    }
    out
}

/// The steps of one op: start, (stop,) wait; commented out when a parameter needs a value.
fn op_block(id: &str, op: &OpInfo) -> String {
    let signature = op
        .docstring
        .as_deref()
        .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("");
    let needed = needed_params(&op.name, signature);
    let kind = match op.op_type {
        OpType::Task => "task",
        OpType::Process => "process",
    };
    let mut lines = vec![format!("# {kind} {}: {signature}", op.name)];
    lines.push(format!("- start: {id}.{}", op.name));
    if !needed.is_empty() {
        let params: Vec<String> = needed.iter().map(|p| format!("{p}: <value>")).collect();
        lines.push(format!("  params: {{{}}}", params.join(", ")));
    }
    if op.op_type == OpType::Process {
        lines.push(format!("- stop: {id}.{}", op.name));
    }
    lines.push(format!("- wait: {id}.{}", op.name));
    lines.push("  timeout: 30s".into());
    let comment = if needed.is_empty() { "" } else { "# " };
    let mut block = String::new();
    for (i, l) in lines.iter().enumerate() {
        let prefix = if i == 0 { "" } else { comment };
        block.push_str(&format!("  {prefix}{l}\n"));
    }
    block
}

/// The parameters of `signature` (`name(a, b=1)`) that have no default.
fn needed_params(name: &str, signature: &str) -> Vec<String> {
    let Some(args) = signature
        .strip_prefix(name)
        .and_then(|s| s.trim_start().strip_prefix('('))
        .and_then(|s| s.rsplit_once(')'))
        .map(|(a, _)| a)
    else {
        return Vec::new();
    };
    args.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('=') && !a.starts_with('*'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::needed_params;

    #[test]
    fn parameters_without_defaults_are_needed() {
        assert_eq!(
            needed_params("greet", "greet(name='world')"),
            Vec::<String>::new()
        );
        assert_eq!(needed_params("set", "set(value, rate=1.0)"), ["value"]);
        assert_eq!(
            needed_params("acq", "**Process** - acquire"),
            Vec::<String>::new()
        );
    }
}
