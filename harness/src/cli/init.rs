//! `ocs-harness init`: a plugin repository's first scenarios. It finds the plugin's agents
//! (from its compose file and site config, or from `--build DIR --agent-class C --instance-id
//! I`), writes a starter scenario per agent under `scenarios/`, the snapshot directory, and
//! `.github/workflows/ocs-harness.yml` calling the reusable workflow, then prints the next
//! two commands. Every scenario is checked with the parser before anything is written.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use clap::Args;

use crate::compose::Compose;
use crate::scenario::Scenario;

use super::exit::{CliError, Exit};

mod record;

/// Where the harness lives: the repository of its releases and of the reusable workflow that
/// `init`'s workflow calls. `simonsobs/ocs-harness` is a placeholder until it is published
/// there; a fork builds with `OCS_HARNESS_REPOSITORY=<owner>/<name>`. The README and the
/// workflows name the same repository (a test checks they agree).
pub const WORKFLOW_REPOSITORY: &str = match option_env!("OCS_HARNESS_REPOSITORY") {
    Some(repository) => repository,
    None => "simonsobs/ocs-harness",
};
/// The compose file names compose itself looks for, in its order.
const COMPOSE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// `init`'s arguments.
#[derive(Args)]
pub struct InitArgs {
    /// The plugin repository.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The compose file (default: compose.yaml, docker-compose.yml, ... in DIR).
    #[arg(long, conflicts_with = "build")]
    compose: Option<PathBuf>,
    /// The site config (default: the file the compose file mounts at /config, else
    /// default.yaml in DIR).
    #[arg(long = "site-config", conflicts_with = "build")]
    site_config: Option<PathBuf>,
    /// Without a compose file: the directory with the agent's Dockerfile.
    #[arg(long, requires_all = ["agent_class", "instance_id"])]
    build: Option<PathBuf>,
    /// With --build: the agent's class (as in a site config).
    #[arg(long)]
    agent_class: Option<String>,
    /// With --build: the agent's instance-id.
    #[arg(long)]
    instance_id: Option<String>,
    /// The harness release the workflow installs (a git tag).
    #[arg(long, default_value = concat!("v", env!("CARGO_PKG_VERSION")))]
    harness_version: String,
    /// Overwrite files that exist.
    #[arg(long)]
    force: bool,
    /// Start the stack, read each agent's get_api, fill the scenarios with its tasks and
    /// processes, and record the first snapshots (needs a Docker engine).
    #[arg(long)]
    record: bool,
}

/// A file to write, relative to the repository.
struct Output {
    path: PathBuf,
    text: String,
}

/// Run `init`.
pub async fn init(
    args: &InitArgs,
    verbosity: super::reporter::Verbosity,
    style: super::output::Style,
) -> Result<Exit, CliError> {
    let mut outputs = match &args.build {
        Some(build) => from_build(args, build),
        None => from_compose(args),
    }?;
    if args.record {
        for out in &mut outputs {
            out.text = record::fill(&args.dir.join(&out.path), &out.text).await?;
        }
    }
    let scenarios: Vec<String> = outputs
        .iter()
        .map(|o| args.dir.join(&o.path).display().to_string())
        .collect();
    write_all(args, outputs)?;
    if args.record {
        let reporter = super::reporter::reporter(super::output::Format::Human, verbosity, style);
        let test = super::test::TestArgs {
            paths: scenarios,
            filters: Vec::new(),
            jobs: None,
            partition: None,
            snapshots: crate::snapshot::Mode::from_flags(true, false),
            junit: None,
            html: None,
            images: None,
            code_coverage_dir: None,
            list: false,
            coverage_all: false,
            log_allow: None,
            baseline_run: None,
            budget_rule: Default::default(),
            github: Default::default(),
            shared_crossbar: false,
            reuse_crossbar: false,
        };
        let exit =
            super::test::test(&test, std::sync::Arc::new(std::sync::Mutex::new(reporter))).await?;
        if exit != Exit::Passed {
            return Ok(exit);
        }
    }
    next_steps(args);
    Ok(Exit::Passed)
}

/// Write the scenarios, the snapshot directory and the workflow; nothing when a file exists
/// (without `--force`).
fn write_all(args: &InitArgs, outputs: Vec<Output>) -> Result<(), CliError> {
    let mut files = outputs;
    files.push(Output {
        path: "scenarios/snapshots/.gitkeep".into(),
        text: String::new(),
    });
    files.push(Output {
        path: ".github/workflows/ocs-harness.yml".into(),
        text: workflow(&args.harness_version),
    });
    for f in &files {
        let path = args.dir.join(&f.path);
        if path.exists() && !args.force && !f.text.is_empty() {
            return Err(CliError::new(
                Exit::BadInput,
                anyhow!("{} exists; pass --force to overwrite it", path.display()),
            ));
        }
    }
    for f in &files {
        let path = args.dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))
                .map_err(|e| CliError::new(Exit::BadInput, e))?;
        }
        std::fs::write(&path, &f.text)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(|e| CliError::new(Exit::BadInput, e))?;
        println!("wrote {}", f.path.display());
    }
    Ok(())
}

/// The next two commands.
fn next_steps(args: &InitArgs) {
    let cd = if args.dir == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", args.dir.display())
    };
    let first = if args.record {
        format!(
            "{cd}ocs-harness test scenarios/             # run them against the recorded snapshots"
        )
    } else {
        format!(
            "{cd}ocs-harness test --accept scenarios/   # run them and record the first snapshots"
        )
    };
    println!("\nNext:");
    println!("  {first}");
    println!("  {cd}git add scenarios .github/workflows/ocs-harness.yml && git commit -m 'ocs-harness scenarios'");
}

/// The agents of the compose file and site config: one scenario each.
fn from_compose(args: &InitArgs) -> Result<Vec<Output>, CliError> {
    let bad = |e: anyhow::Error| CliError::new(Exit::BadInput, e);
    let compose = match &args.compose {
        Some(c) => c.clone(),
        None => COMPOSE_NAMES
            .iter()
            .map(|n| args.dir.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                bad(anyhow!(
                    "no compose file in {} (looked for {}); pass --compose FILE, or \
                     --build DIR --agent-class C --instance-id I",
                    args.dir.display(),
                    COMPOSE_NAMES.join(", ")
                ))
            })?,
    };
    let scf = match &args.site_config {
        Some(s) => s.clone(),
        None => mounted_site_config(&compose).unwrap_or_else(|| args.dir.join("default.yaml")),
    };
    let stack = format!(
        "stack:\n  compose: {}\n  site-config: {}\n",
        from_scenarios(&args.dir, &compose),
        from_scenarios(&args.dir, &scf)
    );
    let probe = args.dir.join("scenarios/init.yaml");
    let scenario = Scenario::from_str(&stack, &probe, &super::settings().env)
        .map_err(|e| bad(anyhow!("{e}")))?;
    if scenario.stack.agents.is_empty() {
        return Err(bad(anyhow!(
            "{} has no service whose instance the site config {} lists",
            compose.display(),
            scf.display()
        )));
    }
    Ok(scenario
        .stack
        .agents
        .iter()
        .map(|a| starter(&a.instance_id, &stack))
        .collect())
}

/// One agent from `--build`.
fn from_build(args: &InitArgs, build: &Path) -> Result<Vec<Output>, CliError> {
    let id = args.instance_id.as_deref().unwrap_or_default();
    let class = args.agent_class.as_deref().unwrap_or_default();
    let stack = format!(
        "stack:\n  agents:\n    - instance-id: {id}\n      agent-class: {class}\n      build: {}\n",
        from_scenarios(&args.dir, &args.dir.join(build))
    );
    let out = starter(id, &stack);
    Scenario::from_str(&out.text, &args.dir.join(&out.path), &super::settings().env)
        .map_err(|e| CliError::new(Exit::BadInput, anyhow!("{e}")))?;
    Ok(vec![out])
}

/// The starter scenario of agent `id` in `stack`.
fn starter(id: &str, stack: &str) -> Output {
    let text = format!(
        "# Starter scenario for agent `{id}`, written by `ocs-harness init`. Every key is in the\n\
         # harness's README (\"Scenario files\"); `ocs-harness check` validates this file.\n\
         name: {id}\n\
         {stack}\n\
         steps:\n  \
           # The agent came up, registered on crossbar and answers get_api. Add its tasks and\n  \
           # processes, e.g.\n  \
           #   expect: {{tasks: [print], processes: [count]}}\n  \
           # then steps such as\n  \
           #   - start: {id}.<task>\n  \
           #     params: {{...}}\n  \
           #   - wait: {id}.<task>\n  \
           #     timeout: 10s\n  \
           #     expect: {{session: {{success: true}}}}\n  \
           - api: {id}\n"
    );
    Output {
        path: PathBuf::from("scenarios").join(format!("{id}.yaml")),
        text,
    }
}

/// `path` as written in a scenario under `<dir>/scenarios/`.
fn from_scenarios(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    let rel = rel.strip_prefix(".").unwrap_or(rel);
    if rel.as_os_str().is_empty() {
        "..".to_string()
    } else if rel.is_absolute() {
        rel.display().to_string()
    } else {
        format!("../{}", rel.display())
    }
}

/// The site config the compose file mounts at `/config` (a file, or `default.yaml` in a
/// mounted directory).
fn mounted_site_config(compose: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(compose).ok()?;
    // As compose: the environment, then the `.env` file next to the compose file.
    let dir = compose.parent().unwrap_or(Path::new("."));
    let dotenv = crate::compose::dotenv(&dir.join(".env")).unwrap_or_default();
    let env = &super::settings().env;
    let lookup = |name: &str| env.var(name).or_else(|| dotenv.get(name).cloned());
    let parsed = Compose::parse(&[(compose.to_path_buf(), text)], &lookup).ok()?;
    parsed
        .services
        .iter()
        .flat_map(|s| &s.volumes)
        .filter(|v| v.target == "/config" || v.target.starts_with("/config/"))
        .find_map(|v| {
            let src = v.source.clone()?;
            Some(if src.is_dir() {
                src.join("default.yaml")
            } else {
                src
            })
        })
}

/// The plugin's workflow: the reusable workflow at `version`.
fn workflow(version: &str) -> String {
    format!(
        "# Runs the scenarios under scenarios/ with ocs-harness (written by `ocs-harness init`).\n\
         name: ocs-harness\n\
         \n\
         on:\n  \
           push:\n  \
           pull_request:\n\
         \n\
         permissions: {{}}\n\
         \n\
         jobs:\n  \
           scenarios:\n    \
             # The most the reusable workflow's jobs may ask for: GitHub checks each of them\n    \
             # against this list when the run starts, a job that will be skipped too. Its\n    \
             # `scenarios` job reads the repository (contents: read); its `compare` job (only\n    \
             # with compare-baseline) also comments on the pull request (pull-requests: write).\n    \
             # A fork's pull request gets a read-only token whatever this says: the comment is\n    \
             # skipped there and the summary stays on the job's page.\n    \
             permissions:\n      \
               contents: read\n      \
               pull-requests: write\n    \
             uses: {WORKFLOW_REPOSITORY}/.github/workflows/plugin.yml@{version}\n    \
             with:\n      \
               harness-version: {version}\n      \
               harness-repository: {WORKFLOW_REPOSITORY}\n      \
               # Each green run of the default branch keeps its times (the Actions cache); a\n      \
               # pull request's run fails a step or registration that takes more than\n      \
               # budget-ratio times as long (or 2 s more), the growth report in its summary.\n      \
               time-budgets: true\n      \
               budget-ratio: \"2\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `<owner>/ocs-harness` the README, the book and the workflows name (as a GitHub
    /// repository, a container image, a reusable workflow or an input default).
    fn named_repositories(text: &str) -> Vec<String> {
        let re = regex::Regex::new(
            r"(?:github\.com/|ghcr\.io/|uses: |default: )([A-Za-z0-9_.<>-]+/ocs-harness)\b",
        )
        .expect("valid");
        re.captures_iter(text).map(|c| c[1].to_string()).collect()
    }

    #[test]
    fn the_readme_and_the_workflows_name_where_the_harness_lives() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut seen = 0;
        let mut files: Vec<String> = vec![
            "README.md".into(),
            ".github/workflows/plugin.yml".into(),
            ".github/workflows/ocs-harness.yml".into(),
        ];
        // The book's pages (docs/src): its install commands and workflow callers.
        let mut pages: Vec<String> = std::fs::read_dir(root.join("docs/src"))
            .expect("the book's pages")
            .map(|e| e.expect("readable").path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .map(|p| format!("docs/src/{}", p.file_name().unwrap().to_string_lossy()))
            .collect();
        pages.sort();
        files.extend(pages);
        for file in &files {
            let text = std::fs::read_to_string(root.join(file)).expect("readable");
            for named in named_repositories(&text) {
                seen += 1;
                if option_env!("OCS_HARNESS_REPOSITORY").is_none() {
                    assert_eq!(named, WORKFLOW_REPOSITORY, "in {file}");
                }
            }
        }
        assert!(seen >= 5, "only {seen} mentions found");
        let caller = workflow("v9.9.9");
        assert!(caller.contains(&format!("uses: {WORKFLOW_REPOSITORY}/.github/workflows/")));
        assert!(caller.contains(&format!("harness-repository: {WORKFLOW_REPOSITORY}\n")));
    }
}
