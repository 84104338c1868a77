//! `ocs-harness bench`: where a run's time goes. For stacks of N FakeData agents: time to ready
//! split by phase, the floor (the critical path as the containers themselves report it:
//! crossbar's start to its `Ok, local node configuration ran successfully.` line, then the
//! slowest agent's start to its `session joined` line), the harness's overhead (wall time to
//! ready minus the floor); bridge round-trip latency; scenarios in parallel; peak RSS.
//! Every number is a median over the runs. [`modes`] holds the other measurements
//! (`--what images|compare|shards|suite`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ocs::ResponseCode;
use crate::overrides::ImageRef;
use crate::plan::{AgentSpec, ImageSource, StackSpec};
use crate::runtime::{launch, LaunchOptions};

pub mod modes;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Runs per stack size (medians are reported).
    pub runs: usize,
    /// Stack sizes (number of agents).
    pub agents: Vec<usize>,
    /// Bridge calls per latency measurement.
    pub calls: usize,
    /// Numbers of scenarios run at once.
    pub parallel: Vec<usize>,
    /// The scenario used for the parallel measurement.
    pub scenario: std::path::PathBuf,
    /// Also measure the usual way (docker compose + ocs's own test helpers).
    pub usual_way: bool,
    /// The harness's settings (read once by the caller).
    pub settings: crate::config::Settings,
}

/// The median of `v` (NaN when empty).
pub(crate) fn median_of(v: Vec<f64>) -> f64 {
    median(v)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx.min(v.len() - 1)]
}

fn stack_of(n: usize) -> StackSpec {
    StackSpec {
        registry: false,
        agents: (1..=n)
            .map(|i| {
                AgentSpec::new(
                    &format!("fake{i}"),
                    "FakeDataAgent",
                    ImageSource::Image(ImageRef::parse("simonsobs/ocs:latest").expect("valid")),
                )
                .with_arguments(["--mode", "idle"])
            })
            .collect(),
        ..StackSpec::default()
    }
}

/// One stack bring-up, in seconds.
#[derive(Debug, Clone, Default)]
struct Sample {
    wall: f64,
    images: f64,
    network: f64,
    crossbar_start: f64,
    crossbar_boot: f64,
    agents_start: f64,
    agents_registration: f64,
    floor: f64,
    /// crossbar's part of the floor (start → readiness line).
    crossbar_floor: f64,
    /// Where the overhead went, on the critical path (they add up to wall − floor).
    split: Split,
}

/// The overhead on the critical path, from the harness's and the engine's clocks: the run's
/// start → crossbar's process running; crossbar's readiness line → the harness seeing the
/// bridge answer; that → the last-ready agent's process running; that agent's `session
/// joined` → the harness seeing `get_api` answer.
#[derive(Debug, Clone, Default)]
struct Split {
    to_crossbar_running: f64,
    crossbar_seen: f64,
    to_agent_running: f64,
    agent_seen: f64,
}

use crate::runtime::notice;
use crate::runtime::readiness::{AGENT_JOINED_LINE, CROSSBAR_READY_LINE};
use crate::runtime::Role;

async fn sample(
    label: &str,
    spec: &StackSpec,
    hold: bool,
    settings: &crate::config::Settings,
) -> anyhow::Result<Sample> {
    let mut options = LaunchOptions::with_settings(&format!("bench-{label}"), settings);
    options.hold_agents = hold;
    let t = Instant::now();
    let (stack, report) = launch(spec, &options).await?;
    let wall = t.elapsed().as_secs_f64();
    let tm = stack.timings().clone();
    let crossbar = stack
        .engine_times(Role::Crossbar, CROSSBAR_READY_LINE)
        .await;
    let mut agent_floor: f64 = 0.0;
    let mut last = None::<(f64, (f64, f64))>;
    for a in &stack.plan().agents {
        if let Some((started, joined)) = stack.engine_times(&a.instance_id, AGENT_JOINED_LINE).await
        {
            // A held agent's own time starts at its release (the engine's unpause event).
            let started = match stack.engine_released(&a.instance_id).await {
                Some(released) => released.max(started),
                None => started,
            };
            agent_floor = agent_floor.max(joined - started);
            let ready = tm.marks.agent_ready.get(&a.instance_id).copied();
            if let Some(ready) = ready {
                if last.is_none_or(|(r, _)| ready > r) {
                    last = Some((ready, (started, joined)));
                }
            }
        }
    }
    stack.teardown().await?;
    let max = |m: &std::collections::BTreeMap<String, Duration>| {
        m.values().map(|d| d.as_secs_f64()).fold(0.0, f64::max)
    };
    let split = match (crossbar, last) {
        (Some((cb_started, cb_ready)), Some((ready, (started, joined)))) => Split {
            to_crossbar_running: cb_started - tm.marks.began,
            crossbar_seen: tm.marks.bridge_ready - cb_ready,
            to_agent_running: started - tm.marks.bridge_ready,
            agent_seen: ready - joined,
        },
        _ => Split {
            to_crossbar_running: f64::NAN,
            crossbar_seen: f64::NAN,
            to_agent_running: f64::NAN,
            agent_seen: f64::NAN,
        },
    };
    Ok(Sample {
        wall,
        images: report.images.as_secs_f64(),
        network: tm.network.as_secs_f64(),
        crossbar_start: tm.crossbar_start.as_secs_f64(),
        crossbar_boot: tm.crossbar_boot.as_secs_f64(),
        agents_start: max(&tm.agent_start),
        agents_registration: max(&tm.agent_registration),
        floor: crossbar.map_or(f64::NAN, |(s, r)| r - s) + agent_floor,
        crossbar_floor: crossbar.map_or(f64::NAN, |(s, r)| r - s),
        split,
    })
}

/// Round trips on a one-agent stack: `status`, and `start` + `wait` of a zero-delay task.
async fn latency(
    calls: usize,
    settings: &crate::config::Settings,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let options = LaunchOptions::with_settings("bench-latency", settings);
    let (stack, _) = launch(&stack_of(1), &options).await?;
    let agent = stack.client().agent("fake1");
    let mut status = Vec::with_capacity(calls);
    let mut start_wait = Vec::with_capacity(calls);
    let result: anyhow::Result<()> = async {
        for _ in 0..calls {
            let t = Instant::now();
            agent.status("delay_task").await?;
            status.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        for _ in 0..calls {
            let t = Instant::now();
            let r = agent
                .start("delay_task", Some(serde_json::json!({"delay": 0})))
                .await?;
            anyhow::ensure!(r.status == ResponseCode::Ok, "start failed: {r}");
            agent
                .wait("delay_task", Some(Duration::from_secs(10)))
                .await?;
            start_wait.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(())
    }
    .await;
    stack.teardown().await?;
    result?;
    Ok((status, start_wait))
}

/// The usual way's script (compose up + ocs's own test helpers), compiled in.
const USUAL_WAY: &str = include_str!("../bench/usual_way.py");

/// A host venv with the pinned ocs client, installed from the image build's wheelhouse.
async fn ocs_client_python(
    settings: &crate::config::Settings,
) -> anyhow::Result<std::path::PathBuf> {
    let cache = settings.cache_dir();
    let venv = cache.join("bench-venv");
    let python = venv.join("bin/python");
    let done = venv.join(".complete");
    if done.is_file() {
        return Ok(python);
    }
    // The wheelhouse of the default ocs recipe (the image build made it).
    let recipe = crate::recipes::OCS_0_12_1;
    let wheels = cache.join("wheels").join(format!(
        "{}-{}",
        recipe.name,
        crate::recipes::short_hash([recipe.requirements.as_bytes()])
    ));
    anyhow::ensure!(
        wheels.join(".complete").is_file(),
        "no ocs wheelhouse at {}; run `ocs-harness images` first",
        wheels.display()
    );
    let ok = tokio::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .await?
        .success()
        && tokio::process::Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-index",
                "--no-deps",
                "--find-links",
            ])
            .arg(&wheels)
            .arg("-r")
            .arg(wheels.join("requirements.txt"))
            .status()
            .await?
            .success()
        // ocs.testing, whose helpers the usual way uses, imports pytest and coverage.
        && tokio::process::Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "pytest", "coverage"])
            .status()
            .await?
            .success();
    anyhow::ensure!(
        ok,
        "could not install the ocs client into {}",
        venv.display()
    );
    Ok(python)
}

/// Seconds to ready the usual way for `n` FakeData agents: `(ready, first status, down)`.
async fn usual_way(
    n: usize,
    python: &Path,
    settings: &crate::config::Settings,
) -> anyhow::Result<(f64, f64, f64)> {
    const PORT: u16 = 18001;
    let engine = crate::runtime::engine::EngineSettings::of(settings);
    let docker = crate::runtime::engine::docker(&engine).await?;
    let set = crate::imageset::ImageSet::default();
    settings.config()?;
    let build = crate::runtime::images::BuildSettings::of(settings);
    crate::runtime::images::ensure_base_images(&docker, &set, &build).await?;
    let dir = settings.runs_dir().join("bench-usual-way");
    std::fs::create_dir_all(dir.join("config"))?;
    let ids: Vec<String> = (1..=n).map(|i| format!("fake{i}")).collect();
    let mut compose = format!(
        "version: '2.4'\nservices:\n  crossbar:\n    image: {}\n    ports: [\"127.0.0.1:{PORT}:8001\"]\n    \
         volumes: [\"./crossbar-config.json:/ocs/.crossbar/config.json:ro\"]\n",
        set.crossbar_image()
    );
    let mut instances = String::new();
    for id in &ids {
        compose.push_str(&format!(
            "  {id}:\n    image: {}\n    hostname: ocs-docker\n    environment: {{INSTANCE_ID: {id}}}\n    \
             volumes: [\"./config:/config:ro\"]\n",
            set.ocs_image()
        ));
        instances.push_str(&format!(
            "    - {{agent-class: FakeDataAgent, instance-id: {id}, arguments: [--mode, idle]}}\n"
        ));
    }
    let hub = |host: &str, port: u16| {
        format!(
            "hub:\n  wamp_server: ws://{host}:{port}/ws\n  wamp_http: http://{host}:{port}/call\n  \
             wamp_realm: test_realm\n  address_root: observatory\nhosts:\n  ocs-docker:\n    \
             agent-instances:\n{instances}"
        )
    };
    std::fs::write(dir.join("docker-compose.yml"), compose)?;
    std::fs::write(
        dir.join("crossbar-config.json"),
        crate::plan::crossbar_config("test_realm", "observatory"),
    )?;
    std::fs::write(dir.join("config/default.yaml"), hub("crossbar", 8001))?;
    std::fs::write(dir.join("default.yaml"), hub("localhost", PORT))?;
    let script = dir.join("usual_way.py");
    std::fs::write(&script, USUAL_WAY)?;
    let out = tokio::process::Command::new(python)
        .arg(&script)
        .arg(&dir)
        .arg(PORT.to_string())
        .args(&ids)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "the usual way failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or("{}"))?;
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok((f("ready"), f("first_status"), f("down")))
}

/// Peak resident set size of this process, in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// A stack measured: its label, its number of FakeData agents (`None`: the scenario's
/// stack), its spec, and whether its agents are held while crossbar boots.
type Measured = (String, Option<usize>, StackSpec, bool);

/// Run the benchmark; the report as Markdown, and every sample as CSV.
pub async fn run(options: &BenchOptions) -> anyhow::Result<(String, String)> {
    let scenario = crate::scenario::Scenario::from_file(&options.scenario, &options.settings.env)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stacks = stacks_to_measure(options, &scenario);
    let python = if options.usual_way {
        Some(ocs_client_python(&options.settings).await?)
    } else {
        None
    };
    let (all, usual) = rounds(options, &scenario.name, &stacks, python.as_deref()).await?;
    let csv = samples_csv(&stacks, &all);
    let mut md = stack_header(options);
    let harness_walls = stack_tables(&mut md, &stacks, all);
    if options.usual_way {
        usual_way_table(&mut md, &harness_walls, &usual);
    }
    latency_table(&mut md, options.calls, &options.settings).await?;
    parallel_table(&mut md, options, &scenario).await?;
    if let Some(rss) = peak_rss_mib() {
        let _ = writeln!(md, "\nPeak RSS of the harness process: {rss:.1} MiB.");
    }
    Ok((md, csv))
}

/// Every stack twice: agents held while crossbar boots (the default) and not held.
fn stacks_to_measure(
    options: &BenchOptions,
    scenario: &crate::scenario::Scenario,
) -> Vec<Measured> {
    let mut stacks = Vec::new();
    let mut specs = vec![(
        format!("`{}`", options.scenario.display()),
        None,
        scenario.stack_spec(),
    )];
    for &n in &options.agents {
        specs.push((format!("{n} FakeData"), Some(n), stack_of(n)));
    }
    for (label, n, spec) in specs {
        stacks.push((label.clone(), n, spec.clone(), true));
        stacks.push((format!("{label}, not held"), n, spec, false));
    }
    stacks
}

/// The samples of every stack, and of the usual way per stack size.
type Rounds = (Vec<Vec<Sample>>, Vec<Vec<(f64, f64, f64)>>);

/// Runs go round the stacks in turn, so a drift of the machine's speed (crossbar's boot
/// varies by a second between minutes) hits every stack alike. The usual way takes its turn
/// in the same rounds, for the same reason.
async fn rounds(
    options: &BenchOptions,
    scenario_name: &str,
    stacks: &[Measured],
    python: Option<&Path>,
) -> anyhow::Result<Rounds> {
    let mut usual: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); options.agents.len()];
    let mut all: Vec<Vec<Sample>> = vec![Vec::new(); stacks.len()];
    for r in 0..options.runs {
        for ((label, n, spec, hold), samples) in stacks.iter().zip(all.iter_mut()) {
            notice::info(&format!("bench: {label}, run {}/{}", r + 1, options.runs));
            let tag = n.map_or_else(|| scenario_name.to_string(), |n| n.to_string());
            samples.push(sample(&tag, spec, *hold, &options.settings).await?);
        }
        if let Some(python) = python {
            for (&n, runs) in options.agents.iter().zip(usual.iter_mut()) {
                notice::info(&format!(
                    "bench: the usual way, {n} agent(s), run {}/{}",
                    r + 1,
                    options.runs
                ));
                runs.push(usual_way(n, python, &options.settings).await?);
            }
        }
    }
    Ok((all, usual))
}

/// Every sample, for a closer look (written next to the report by the CLI).
fn samples_csv(stacks: &[Measured], all: &[Vec<Sample>]) -> String {
    let mut csv = String::from(
        "stack,run,wall,floor,crossbar_floor,overhead,to_crossbar_running,crossbar_seen,to_agent_running,agent_seen\n",
    );
    for ((label, _, _, _), samples) in stacks.iter().zip(all) {
        for (r, s) in samples.iter().enumerate() {
            let _ = writeln!(
                csv,
                "\"{}\",{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}",
                label.replace('`', ""),
                r + 1,
                s.wall,
                s.floor,
                s.crossbar_floor,
                s.wall - s.floor,
                s.split.to_crossbar_running,
                s.split.crossbar_seen,
                s.split.to_agent_running,
                s.split.agent_seen
            );
        }
    }
    csv
}

/// The report's title and the head of the stacks' table.
fn stack_header(options: &BenchOptions) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## ocs-harness bench\n\nMedians of {} runs; seconds unless marked. FakeData agents from \
         the local ocs image, registry off. floor = crossbar start → `Ok, local node \
         configuration ran successfully.` + slowest agent start → `session joined` (engine \
         timestamps); overhead = wall − floor.\n",
        options.runs
    );
    let _ = writeln!(
        md,
        "| stack | wall to ready | images | network | crossbar start | crossbar boot | agents start | agents registration | floor | overhead | overhead % |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    md
}

/// Holding the agents, judged by wall time (what a user waits for), run by run: the pairs
/// ran back to back, so the machine's drift cancels.
fn hold_effects(stacks: &[Measured], all: &[Vec<Sample>]) -> String {
    let mut hold_effects = String::from(
        "\nHolding the agents (started while crossbar boots, paused until it is ready) against \
         not holding them: medians of the run-by-run differences (held − not held).\n\n\
         | stack | wall to ready | crossbar's own boot | overhead |\n| --- | --- | --- | --- |\n",
    );
    for pair in stacks.chunks(2).zip(all.chunks(2)) {
        let ([(label, ..), _], [held, not_held]) = pair else {
            continue;
        };
        let paired = |f: fn(&Sample) -> f64| {
            median(
                held.iter()
                    .zip(not_held)
                    .map(|(a, b)| f(a) - f(b))
                    .collect(),
            )
        };
        let _ = writeln!(
            hold_effects,
            "| {label} | {:+.2} | {:+.2} | {:+.2} |",
            paired(|s| s.wall),
            paired(|s| s.crossbar_floor),
            paired(|s| s.wall - s.floor)
        );
    }
    hold_effects
}

/// A row per stack, where the overhead goes, and the effect of holding; the held FakeData
/// stacks' walls by size (for the usual way's table).
fn stack_tables(
    md: &mut String,
    stacks: &[Measured],
    all: Vec<Vec<Sample>>,
) -> Vec<(usize, Vec<f64>)> {
    let hold_effects = hold_effects(stacks, &all);
    let mut harness_walls = Vec::new();
    let mut splits = Vec::new();
    for ((label, n, _, hold), samples) in stacks.iter().zip(all) {
        let m = |f: &dyn Fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        let (wall, floor) = (m(&|s| s.wall), m(&|s| s.floor));
        let overhead = m(&|s| s.wall - s.floor);
        if let (Some(n), true) = (n, hold) {
            harness_walls.push((*n, samples.iter().map(|s| s.wall).collect::<Vec<_>>()));
        }
        let _ = writeln!(
            md,
            "| {label} | {wall:.2} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {floor:.2} | {overhead:.2} | {:.1}% |",
            m(&|s| s.images),
            m(&|s| s.network),
            m(&|s| s.crossbar_start),
            m(&|s| s.crossbar_boot),
            m(&|s| s.agents_start),
            m(&|s| s.agents_registration),
            overhead / floor * 100.0
        );
        splits.push((
            label.clone(),
            m(&|s| s.split.to_crossbar_running),
            m(&|s| s.split.crossbar_seen),
            m(&|s| s.split.to_agent_running),
            m(&|s| s.split.agent_seen),
            overhead,
        ));
    }
    let _ = writeln!(
        md,
        "\nWhere the overhead goes (critical path, harness clock against the engine's timestamps): \
         start → crossbar's process running (images, network, container create and start); \
         crossbar's readiness line → the harness sees the bridge answer; → the last-ready agent's \
         process running (its container create and start); its `session joined` → the harness \
         sees `get_api` answer (the agent registering its operations, and detection).\n\n\
         | stack | → crossbar running | crossbar ready → seen | → agent running | joined → get_api seen | overhead |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    for (label, a, b, c, d, overhead) in splits {
        let _ = writeln!(
            md,
            "| {label} | {a:.3} | {b:.3} | {c:.3} | {d:.3} | {overhead:.3} |"
        );
    }
    md.push_str(&hold_effects);

    harness_walls
}

/// The usual way (compose and ocs's own helpers) against the harness, by stack size.
fn usual_way_table(
    md: &mut String,
    harness_walls: &[(usize, Vec<f64>)],
    usual: &[Vec<(f64, f64, f64)>],
) {
    let _ = writeln!(
        md,
        "\n| agents | the usual way: compose up → ready (ocs.testing helpers) | first status | down | harness wall to ready | harness / usual | harness − usual, run by run |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for ((n, harness), runs) in harness_walls.iter().zip(usual) {
        let ready = median(runs.iter().map(|r| r.0).collect());
        let paired = median(harness.iter().zip(runs).map(|(h, u)| h - u.0).collect());
        let harness = median(harness.clone());
        let _ = writeln!(
            md,
            "| {n} | {ready:.2} | {:.2} | {:.2} | {harness:.2} | {:.2} | {paired:+.2} |",
            median(runs.iter().map(|r| r.1).collect()),
            median(runs.iter().map(|r| r.2).collect()),
            harness / ready
        );
    }
}

/// Bridge round trips: `status`, and `start` + `wait` of a zero-delay task.
async fn latency_table(
    md: &mut String,
    calls: usize,
    settings: &crate::config::Settings,
) -> anyhow::Result<()> {
    notice::info(&format!("bench: {} bridge round trips", calls));
    let (status, start_wait) = latency(calls, settings).await?;
    let _ = writeln!(
        md,
        "\n| bridge round trip ({} calls) | median (ms) | p95 (ms) |\n| --- | --- | --- |",
        calls
    );
    let _ = writeln!(
        md,
        "| status | {:.2} | {:.2} |",
        median(status.clone()),
        percentile(status, 0.95)
    );
    let _ = writeln!(
        md,
        "| start + wait (delay_task, delay 0) | {:.2} | {:.2} |",
        median(start_wait.clone()),
        percentile(start_wait, 0.95)
    );
    Ok(())
}

/// The scenario run k times at once: total wall, and the stacks' time to ready.
async fn parallel_table(
    md: &mut String,
    options: &BenchOptions,
    scenario: &crate::scenario::Scenario,
) -> anyhow::Result<()> {
    let _ = writeln!(
        md,
        "\n| `{}` in parallel | total wall | every run | stack ready, median over scenarios |\n| --- | --- | --- | --- |",
        options.scenario.display()
    );
    for &k in &options.parallel {
        let mut walls = Vec::new();
        let mut ready = Vec::new();
        for r in 0..options.runs {
            notice::info(&format!(
                "bench: {k} scenario(s) in parallel, run {}/{}",
                r + 1,
                options.runs
            ));
            let t = Instant::now();
            let runs = together(scenario, k, &options.settings).await?;
            walls.push(t.elapsed().as_secs_f64());
            for run in runs {
                let report = run.result?;
                crate::runner::into_result(&report)?;
                ready.push(report.stack_ready.as_secs_f64());
            }
        }
        let every: Vec<String> = walls.iter().map(|w| format!("{w:.1}")).collect();
        let _ = writeln!(
            md,
            "| {k} | {:.2} | {} | {:.2} |",
            median(walls),
            every.join(", "),
            median(ready)
        );
    }
    Ok(())
}

/// `scenario` run `k` times at once, as one suite (no snapshot check, no pages: judging a
/// run as it finishes is a case built from its report, well under a millisecond).
async fn together(
    scenario: &crate::scenario::Scenario,
    k: usize,
    settings: &crate::config::Settings,
) -> anyhow::Result<Vec<crate::suite::Finished>> {
    let planned = (0..k)
        .map(|_| crate::suite::Planned::new(scenario.clone()))
        .collect();
    let mut suite = crate::suite::SuiteOptions::new(settings.clone());
    suite.jobs = k.max(1);
    let outcome = crate::suite::run(planned, &suite, &crate::suite::silent()).await?;
    Ok(outcome.runs)
}

/// The default scenario for the parallel measurement, relative to the workspace.
pub fn default_scenario() -> &'static Path {
    Path::new("scenarios/barebones.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(v, 0.95), 95.0);
        assert!(peak_rss_mib().is_some_and(|m| m > 0.0));
    }
}
