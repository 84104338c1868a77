//! `ocs-harness bench --what images|compare|shards|suite|crossbar|shared|reuse`: the measurements of issues 11, 12
//! and 14, each a few timed commands of this very binary (what a user runs), one after
//! another, with a Markdown table of their wall times. Run once each on a shared machine:
//! the numbers are single samples, and the report says so.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use crate::runtime::notice;

/// Which measurement (`--what`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// Stack readiness split, bridge latency, parallel scenarios (the default).
    Stacks,
    /// From no images at all to the barebones scenario green: the recipes against published
    /// images pulled from a registry (needs an engine without those images).
    Images,
    /// `compare` with the sides one after another (`-j 1`) against concurrently (`-j 2`).
    Compare,
    /// The scenarios as 1 shard against 2 shards run side by side.
    Shards,
    /// `ocs-harness test DIR` against `cargo test --test scenarios` against one by one.
    Suite,
    /// Crossbar's own boot (its container's start to its readiness line), the baseline image
    /// set's crossbar against the candidate's, `--runs` boots each.
    Crossbar,
    /// The scenarios with a crossbar per scenario (`test --crossbar private`) against one per
    /// worker (`--crossbar shared`).
    Shared,
    /// One scenario (default barebones) cold against re-run on a crossbar kept by `--reuse`.
    Reuse,
}

/// What the modes measure on.
#[derive(Debug, Clone)]
pub struct ModeOptions {
    /// `images`: the registry serving `<registry>/simonsobs/ocs:v0.12.1` and
    /// `<registry>/simonsobs/ocs-crossbar:latest` (`.ci/registry.sh start` pushes them).
    pub registry: Option<String>,
    /// `compare`: the two image sets.
    pub baseline: PathBuf,
    /// `compare`: the image set under test.
    pub candidate: PathBuf,
    /// `compare`: the scenario files; `shards` and `suite`: one directory or files.
    pub scenarios: Vec<PathBuf>,
    /// Where each command's output goes (`<dir>/<label>.log`).
    pub logs: PathBuf,
    /// `crossbar`: boots per image set.
    pub runs: usize,
    /// The harness's settings (read once by the caller).
    pub settings: crate::config::Settings,
}

/// One timed command.
#[derive(Debug, Clone)]
struct Timed {
    /// The command as a user would type it.
    shown: String,
    /// Seconds.
    wall: f64,
    /// Its exit code (`None`: killed by a signal).
    exit: Option<i32>,
    /// `stack_ready` of every `scenario_finished` JSON event, seconds.
    ready: Vec<f64>,
}

impl Timed {
    fn status(&self) -> String {
        match self.exit {
            Some(0) => "passed".into(),
            Some(c) => format!("**exit {c}**"),
            None => "**killed**".into(),
        }
    }
}

/// A command to time: program, arguments, extra environment, its log's name.
struct Cmd {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: String,
}

impl Cmd {
    fn harness(args: &[&str], log: &str) -> anyhow::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            log: log.into(),
        })
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn log_path(&self, logs: &Path) -> PathBuf {
        logs.join(format!("{}.log", self.log))
    }

    fn shown(&self) -> String {
        let program = match self.program.file_name() {
            Some(n) if self.program.is_absolute() => n.to_string_lossy().into_owned(),
            _ => self.program.display().to_string(),
        };
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        format!("{}{program} {}", env.concat(), self.args.join(" "))
    }
}

/// Start `cmd` (stdout kept for its JSON events, stderr to its log).
fn spawn(cmd: &Cmd, logs: &Path) -> anyhow::Result<tokio::process::Child> {
    std::fs::create_dir_all(logs)?;
    let log = std::fs::File::create(cmd.log_path(logs))?;
    notice::info(&format!("bench: {}", cmd.shown()));
    let child = tokio::process::Command::new(&cmd.program)
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .env("CI", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", cmd.program.display()))?;
    Ok(child)
}

/// Wait for a started command; its wall time counts from `started`.
async fn finish(
    cmd: &Cmd,
    child: tokio::process::Child,
    started: Instant,
    logs: &Path,
) -> anyhow::Result<Timed> {
    let out = child.wait_with_output().await?;
    let wall = started.elapsed().as_secs_f64();
    // Its stdout (JSON events: the reason of a failure among them) beside its log.
    std::fs::write(cmd.log_path(logs).with_extension("out"), &out.stdout)?;
    // 0 passed, 1 a verdict (a failed scenario, changed behaviour): a time. 2 or 3 (or
    // cargo's 101): the command did not do what is measured.
    if !matches!(out.status.code(), Some(0 | 1))
        || (cmd.program == Path::new("cargo") && !out.status.success())
    {
        anyhow::bail!(
            "`{}` ended with {}: no measurement; its output is in {} (stdout: .out)",
            cmd.shown(),
            out.status,
            cmd.log_path(logs).display()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(Timed {
        shown: cmd.shown(),
        wall,
        exit: out.status.code(),
        ready: stack_ready_of(&stdout),
    })
}

/// Run the commands at the same time; each one's wall time.
async fn together(cmds: &[Cmd], logs: &Path) -> anyhow::Result<Vec<Timed>> {
    let started = Instant::now();
    let mut children = Vec::new();
    for cmd in cmds {
        children.push(spawn(cmd, logs)?);
    }
    let waits = cmds
        .iter()
        .zip(children)
        .map(|(cmd, child)| finish(cmd, child, started, logs));
    futures::future::try_join_all(waits).await
}

async fn one(cmd: Cmd, logs: &Path) -> anyhow::Result<Timed> {
    let mut t = together(std::slice::from_ref(&cmd), logs).await?;
    Ok(t.remove(0))
}

/// The `stack_ready` seconds of the `scenario_finished` events in a `--format json` stream.
fn stack_ready_of(stdout: &str) -> Vec<f64> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "scenario_finished")
        .filter_map(|e| e["stack_ready"].as_f64())
        .collect()
}

fn header(title: &str, what: &str) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "## ocs-harness bench --what {what}\n\n{title} One run each, on {cores} cores shared with \
         other work: single samples, noisy. Commands run with CI=true; their output is in \
         the bench's log directory.\n\n"
    )
}

fn ready_cell(ready: &[f64]) -> String {
    if ready.is_empty() {
        return "-".into();
    }
    let lo = ready.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ready.iter().copied().fold(0.0, f64::max);
    let median = super::median(ready.to_vec());
    match ready.len() {
        1 => format!("{median:.1} (1 scenario)"),
        n => format!("{median:.1} ({lo:.1}–{hi:.1}, {n} scenarios)"),
    }
}

/// Run one mode; its report as Markdown.
pub async fn run(what: What, o: &ModeOptions) -> anyhow::Result<String> {
    match what {
        What::Stacks => anyhow::bail!("`stacks` is the default benchmark, not a mode"),
        What::Images => images(o).await,
        What::Compare => compare(o).await,
        What::Shards => shards(o).await,
        What::Suite => suite(o).await,
        What::Crossbar => crossbar(o).await,
        What::Shared => shared(o).await,
        What::Reuse => reuse(o).await,
    }
}

/// One boot of crossbar alone from `set`: its image, and seconds from its container's start
/// to its readiness line.
async fn crossbar_boot(
    set: &Path,
    settings: &crate::config::Settings,
) -> anyhow::Result<(String, f64)> {
    use crate::runtime::readiness::CROSSBAR_READY_LINE;
    use crate::runtime::{launch, LaunchOptions, Role};
    let spec = crate::plan::StackSpec {
        registry: false,
        ..crate::plan::StackSpec::default()
    };
    let options = LaunchOptions::with_settings("bench-crossbar", settings).with_images_file(set);
    let (stack, _) = launch(&spec, &options).await?;
    // The bridge answers a moment before crossbar logs its readiness line: wait for it.
    let times = crate::wait::poll_until(
        "crossbar's readiness line in its log",
        std::time::Duration::from_secs(30),
        crate::wait::Backoff::default(),
        || async {
            match stack
                .engine_times(Role::Crossbar, CROSSBAR_READY_LINE)
                .await
            {
                Some(t) => crate::wait::Probe::Ready(t),
                None => crate::wait::Probe::Pending("not yet".into()),
            }
        },
    )
    .await;
    let image = stack.plan().crossbar.image.clone();
    stack.teardown().await?;
    let (started, ready) = times?;
    Ok((image, ready - started))
}

/// Crossbar's boot, the baseline set's against the candidate's: a warm-up boot of each (it
/// builds what is missing), then `--runs` boots of each taken in turn, so that a change of the
/// machine's load falls on both alike.
async fn crossbar(o: &ModeOptions) -> anyhow::Result<String> {
    let runs = o.runs.max(1);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut md = format!(
        "## ocs-harness bench --what crossbar\n\nCrossbar alone, {runs} boots per image set \
         (after a warm-up boot of each, the two sets in turn), on {cores} cores: its \
         container's start to its readiness line (`Ok, local node configuration ran \
         successfully.`), by the engine's clocks.\n\n"
    );
    let sets = [&o.baseline, &o.candidate];
    let mut images = [String::new(), String::new()];
    let mut boots: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (i, set) in sets.iter().enumerate() {
        images[i] = crossbar_boot(set, &o.settings).await?.0;
    }
    for _ in 0..runs {
        for (i, set) in sets.iter().enumerate() {
            boots[i].push(crossbar_boot(set, &o.settings).await?.1);
        }
    }
    md.push_str("| image set | crossbar image | median (s) | min–max (s) |\n|---|---|---|---|\n");
    let mut medians = Vec::new();
    for i in 0..2 {
        let median = crate::bench::median_of(boots[i].clone());
        let lo = boots[i].iter().copied().fold(f64::INFINITY, f64::min);
        let hi = boots[i].iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            md,
            "| `{}` | `{}` | {median:.2} | {lo:.2}–{hi:.2} |",
            sets[i].display(),
            images[i]
        );
        medians.push(median);
    }
    let _ = writeln!(
        md,
        "\ncandidate / baseline: **{:.2}×**",
        medians[1] / medians[0]
    );
    Ok(md)
}

/// Scenario paths as arguments (default `scenarios/`).
fn scenario_args(o: &ModeOptions, default: &[&str]) -> Vec<String> {
    if o.scenarios.is_empty() {
        return default.iter().map(|s| s.to_string()).collect();
    }
    o.scenarios
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}

/// The published-style names `.ci/registry.sh start` pushes.
fn published(registry: &str) -> [String; 2] {
    [
        format!("{registry}/simonsobs/ocs:v0.12.1"),
        format!("{registry}/simonsobs/ocs-crossbar:latest"),
    ]
}

/// Refuse an engine that has any image either path would make: this measures from none, and
/// removing images others use is not the bench's business.
async fn ensure_no_images(
    names: &[String],
    engine: &crate::runtime::engine::EngineSettings,
) -> anyhow::Result<()> {
    let docker = crate::runtime::engine::docker(engine).await?;
    let local = crate::imageset::ImageSet::default();
    let mut wanted = vec![local.os_image(), local.ocs_image(), local.crossbar_image()];
    for n in names {
        wanted.push(crate::overrides::ImageRef::parse(n)?);
    }
    let mut present = Vec::new();
    for image in wanted {
        if crate::runtime::images::image_exists(&docker, &image).await? {
            present.push(image.to_string());
        }
    }
    anyhow::ensure!(
        present.is_empty(),
        "the engine already has {}; `--what images` measures from no images at all. Point \
         DOCKER_HOST at an empty engine (`bench/empty-engine.sh start` starts one beside the \
         usual one and prints its DOCKER_HOST) instead of removing images others use",
        present.join(", ")
    );
    Ok(())
}

/// From no images at all to the barebones scenario green: the recipe path (a fresh cache:
/// debootstrap, wheels downloaded, images built) and the published path (pulled from the
/// registry), one after the other on the same engine.
async fn images(o: &ModeOptions) -> anyhow::Result<String> {
    let registry = o.registry.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "`--what images` needs the loopback registry with the published-style images: \
             `export $(.ci/registry.sh start | tail -n 1)` (OCS_HARNESS_TEST_REGISTRY), or \
             --registry HOST:PORT"
        )
    })?;
    let [ocs, crossbar] = published(registry);
    let engine = crate::runtime::engine::EngineSettings::of(&o.settings);
    ensure_no_images(&[ocs.clone(), crossbar.clone()], &engine).await?;
    std::fs::create_dir_all(&o.logs)?;
    let set = o.logs.join("published.yaml");
    std::fs::write(
        &set,
        format!("name: published\npull: missing\nocs: {{image: {ocs}}}\ncrossbar: {{image: {crossbar}}}\n"),
    )?;
    let cache = o.logs.join("fresh-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let scenario = "scenarios/barebones.yaml";
    let cache_text = cache.display().to_string();
    let test = |images: &str, log: &str| {
        Cmd::harness(
            &["test", "--format", "json", "--images", images, scenario],
            log,
        )
    };
    let recipe = one(
        test("local", "images-recipe")?.env("OCS_HARNESS_CACHE", &cache_text),
        &o.logs,
    )
    .await;
    let _ = std::fs::remove_dir_all(&cache);
    let recipe = recipe?;
    let set_text = set.display().to_string();
    let pulled = one(test(&set_text, "images-published")?, &o.logs).await?;
    let mut md = header(
        "From no images at all (an empty engine) to the barebones scenario green. Recipe \
         path: a fresh cache, so debootstrap, the wheel downloads and the image builds all \
         count; published path: the ocs and crossbar images pulled from the loopback registry \
         (layers downloaded and extracted). Both build the agent image.",
        "images",
    );
    timed_rows(
        &mut md,
        "path",
        &[("recipes", &recipe), ("published", &pulled)],
    );
    let _ = writeln!(
        md,
        "\nrecipes / published, wall: {:.1}×.",
        recipe.wall / pulled.wall
    );
    Ok(md)
}

/// `compare`, one run at a time against both sides concurrently.
async fn compare(o: &ModeOptions) -> anyhow::Result<String> {
    let files = scenario_args(o, &["scenarios/barebones.yaml", "scenarios/fake-data.yaml"]);
    let (b, c) = (
        o.baseline.display().to_string(),
        o.candidate.display().to_string(),
    );
    // Untimed first: whatever the scenarios build on either set (agent images) is built
    // once, outside the timings.
    let mut warm = vec!["compare", "--baseline", &b, "--candidate", &c, "-j", "2"];
    let summary = o.logs.join("compare-warm-up.md").display().to_string();
    warm.extend(["--summary", &summary]);
    warm.extend(files.iter().map(String::as_str));
    one(Cmd::harness(&warm, "compare-warm-up")?, &o.logs).await?;
    let mut rows = Vec::new();
    for jobs in ["1", "2"] {
        let mut args = vec!["compare", "--baseline", &b, "--candidate", &c, "-j", jobs];
        let summary = o.logs.join(format!("compare-j{jobs}.md"));
        let summary = summary.display().to_string();
        args.extend(["--summary", &summary]);
        args.extend(files.iter().map(String::as_str));
        rows.push(one(Cmd::harness(&args, &format!("compare-j{jobs}"))?, &o.logs).await?);
    }
    let mut md = header(
        &format!(
            "`compare` of {} scenario(s) × 2 image sets, the sides one after another (`-j 1`) \
             and concurrently (`-j 2`), after an untimed warm-up run that builds what they \
             need. Exit 1 is a verdict (behaviour changed), not a failure.",
            files.len()
        ),
        "compare",
    );
    md.push_str("| command | wall (s) | exit | ratio to `-j 1` |\n| --- | --- | --- | --- |\n");
    for r in &rows {
        let _ = writeln!(
            md,
            "| `{}` | {:.1} | {} | {:.2}× |",
            r.shown,
            r.wall,
            r.exit.map_or("signal".into(), |c| c.to_string()),
            r.wall / rows[0].wall
        );
    }
    Ok(md)
}

/// An untimed run of the same scenarios first, so that whatever they build (agent images) is
/// built once, outside the timings.
async fn warm_up(args: &[&str], log: &str, logs: &Path) -> anyhow::Result<()> {
    one(Cmd::harness(args, log)?, logs).await.map(drop)
}

/// The scenarios as one shard, then as two shards side by side.
async fn shards(o: &ModeOptions) -> anyhow::Result<String> {
    let paths = scenario_args(o, &["scenarios/"]);
    let test = |extra: &[&str], log: &str| {
        let mut args = vec!["test", "--format", "json"];
        args.extend(extra);
        args.extend(paths.iter().map(String::as_str));
        Cmd::harness(&args, log)
    };
    let mut warm = vec!["test", "--format", "json"];
    warm.extend(paths.iter().map(String::as_str));
    warm_up(&warm, "shards-warm-up", &o.logs).await?;
    let single = one(test(&[], "shards-1")?, &o.logs).await?;
    let pair = together(
        &[
            test(&["--partition", "1/2"], "shards-1of2")?,
            test(&["--partition", "2/2"], "shards-2of2")?,
        ],
        &o.logs,
    )
    .await?;
    let mut md = header(
        "The scenarios as 1 shard, and as 2 shards started together on the same machine \
         (what 2 CI runners would run, here sharing the cores), after an untimed warm-up run \
         that builds what they need. Stack ready: median (range) \
         over the scenarios of `stack_ready` in the JSON events.",
        "shards",
    );
    timed_rows(&mut md, "", &[("1 shard", &single)]);
    let wall = pair.iter().map(|t| t.wall).fold(0.0, f64::max);
    let ready: Vec<f64> = pair.iter().flat_map(|t| t.ready.clone()).collect();
    let status: Vec<String> = pair.iter().map(Timed::status).collect();
    let _ = writeln!(
        md,
        "| 2 shards side by side | `{}` and `… 2/2 …` | {wall:.1} (shards {:.1} and {:.1}) | {} | {} |",
        pair[0].shown,
        pair[0].wall,
        pair[1].wall,
        ready_cell(&ready),
        status.join(", ")
    );
    let _ = writeln!(
        md,
        "\n2 shards / 1 shard, wall: {:.2}×.",
        wall / single.wall
    );
    Ok(md)
}

/// A table of `rows`, each a way (the column `what`) and its timed command.
fn timed_rows(md: &mut String, what: &str, rows: &[(&str, &Timed)]) {
    let _ = writeln!(
        md,
        "| {what} | command | wall (s) | stack ready (s) | status |"
    );
    md.push_str("| --- | --- | --- | --- | --- |\n");
    for (label, r) in rows {
        let _ = writeln!(
            md,
            "| {label} | `{}` | {:.1} | {} | {} |",
            r.shown,
            r.wall,
            ready_cell(&r.ready),
            r.status()
        );
    }
}

/// The scenarios with a crossbar of their own each, then with one per worker, after an
/// untimed warm-up run that builds what they need.
async fn shared(o: &ModeOptions) -> anyhow::Result<String> {
    let paths = scenario_args(o, &["scenarios/"]);
    let test = |mode: &str, log: &str| {
        let mut args = vec!["test", "--format", "json", "--crossbar", mode];
        args.extend(paths.iter().map(String::as_str));
        Cmd::harness(&args, log)
    };
    let mut warm = vec!["test", "--format", "json"];
    warm.extend(paths.iter().map(String::as_str));
    warm_up(&warm, "shared-warm-up", &o.logs).await?;
    let private = one(test("private", "shared-private")?, &o.logs).await?;
    let shared = one(test("shared", "shared-shared")?, &o.logs).await?;
    let mut md = header(
        &format!(
            "The scenarios ({}) with a crossbar booted per scenario, then with one crossbar \
             per worker (a realm per scenario; a scenario that needs its own still boots one), \
             after an untimed warm-up run that builds what they need. Stack ready: median \
             (range) over the scenarios of `stack_ready` in the JSON events.",
            paths.join(" ")
        ),
        "shared",
    );
    timed_rows(
        &mut md,
        "crossbar",
        &[("per scenario", &private), ("per worker", &shared)],
    );
    let median = |r: &Timed| super::median(r.ready.clone());
    let _ = writeln!(
        md,
        "
Per worker / per scenario: wall {:.2}×, stack ready (median) {:.2}×.",
        shared.wall / private.wall,
        median(&shared) / median(&private)
    );
    Ok(md)
}

/// One scenario with a crossbar booted for it, then re-run with `--reuse` on the crossbar an
/// untimed `--reuse` run kept; the kept crossbar is removed at the end.
async fn reuse(o: &ModeOptions) -> anyhow::Result<String> {
    let paths = scenario_args(o, &["scenarios/barebones.yaml"]);
    let test = |extra: &[&str], log: &str| {
        let mut args = vec!["test", "--format", "json", "-j", "1"];
        args.extend(extra);
        args.extend(paths.iter().map(String::as_str));
        Cmd::harness(&args, log)
    };
    warm_up(
        &["test", "--format", "json", &paths[0]],
        "reuse-warm-up",
        &o.logs,
    )
    .await?;
    let cold = one(test(&[], "reuse-cold")?, &o.logs).await?;
    let keep = test(&["--reuse"], "reuse-keep")?;
    let kept_log = keep.log_path(&o.logs);
    one(keep, &o.logs).await?;
    let warm = one(test(&["--reuse"], "reuse-warm")?, &o.logs).await?;
    let log = std::fs::read_to_string(&kept_log).unwrap_or_default();
    if let Some(run) = log
        .split_once("clean --run ")
        .and_then(|(_, rest)| rest.split(['`', ' ', '\n']).next())
    {
        one(
            Cmd::harness(&["clean", "--run", run], "reuse-clean")?,
            &o.logs,
        )
        .await?;
    }
    let mut md = header(
        &format!(
            "{} with a crossbar booted for it, then re-run with `--reuse` on the crossbar \
             that an untimed `--reuse` run kept, after an untimed warm-up run that builds what \
             it needs. Both include the agents' clean stop at the end (ocs: about 6 s).",
            paths.join(" ")
        ),
        "reuse",
    );
    timed_rows(
        &mut md,
        "crossbar",
        &[("booted", &cold), ("kept (`--reuse`)", &warm)],
    );
    let _ = writeln!(md, "\nKept / booted: wall {:.2}×.", warm.wall / cold.wall);
    Ok(md)
}

/// `cargo test --test scenarios` of this repository's test package.
fn cargo_test(extra: &[&str], log: &str) -> Cmd {
    let mut args = [
        "test",
        "-q",
        "--locked",
        "-p",
        "ocs-harness-tests",
        "--test",
        "scenarios",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    Cmd {
        program: "cargo".into(),
        args,
        env: Vec::new(),
        log: log.into(),
    }
}

/// The files `ocs-harness test PATHS` selects (its `--list`: name, tab, file).
async fn selected_files(paths: &[String]) -> anyhow::Result<Vec<String>> {
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .arg("test")
        .arg("--list")
        .args(paths)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "ocs-harness test --list {} failed: {}",
        paths.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('\t').nth(1).map(str::to_string))
        .collect())
}

/// The scenarios three ways: `test DIR` (parallel), `cargo test --test scenarios` (when run
/// from this repository), and `test FILE` one by one.
async fn suite(o: &ModeOptions) -> anyhow::Result<String> {
    let paths = scenario_args(o, &["scenarios/"]);
    let mut args = vec!["test", "--format", "json"];
    args.extend(paths.iter().map(String::as_str));
    warm_up(&args, "suite-warm-up", &o.logs).await?;
    let mut rows = vec![one(Cmd::harness(&args, "suite-test")?, &o.logs).await?];
    // `cargo test` runs the same files only for the default selection: `scenarios/*.yaml` is
    // the test binary's `scenario` case list (`scenarios/upstream/` is its `upstream` list).
    if Path::new("tests/scenarios.rs").is_file() && paths == ["scenarios/"] {
        // Compiled first, so that the timing is the run's.
        one(cargo_test(&["--no-run"], "suite-cargo-build"), &o.logs).await?;
        rows.push(
            one(
                cargo_test(&["--", "scenario::"], "suite-cargo-test"),
                &o.logs,
            )
            .await?,
        );
    }
    let files = selected_files(&paths).await?;
    let started = Instant::now();
    let mut exit = Some(0);
    let mut ready = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let cmd = Cmd::harness(&["test", "--format", "json", f], &format!("suite-one-{i}"))?;
        let t = one(cmd, &o.logs).await?;
        if t.exit != Some(0) {
            exit = t.exit;
        }
        ready.extend(t.ready);
    }
    rows.push(Timed {
        shown: format!(
            "ocs-harness test --format json FILE, for each of the {} files",
            files.len()
        ),
        wall: started.elapsed().as_secs_f64(),
        exit,
        ready,
    });
    let mut md = header(
        &format!(
            "The scenarios ({}) three ways, snapshots checked, after an untimed warm-up run \
             that builds what they need.",
            paths.join(" ")
        ),
        "suite",
    );
    md.push_str("| command | wall (s) | stack ready (s) | status |\n| --- | --- | --- | --- |\n");
    for r in &rows {
        let _ = writeln!(
            md,
            "| `{}` | {:.1} | {} | {} |",
            r.shown,
            r.wall,
            ready_cell(&r.ready),
            r.status()
        );
    }
    Ok(md)
}
