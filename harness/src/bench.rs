//! `ocs-harness bench`: where a run's time goes. For stacks of N FakeData agents: time to ready
//! split by phase, the floor (the critical path as the containers themselves report it:
//! crossbar's start to its `Ok, local node configuration ran successfully.` line, then the
//! slowest agent's start to its `session joined` line), the harness's overhead (wall time to
//! ready minus the floor); bridge round-trip latency; scenarios in parallel; peak RSS.
//! Every number is a median over the runs.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ocs::ResponseCode;
use crate::overrides::ImageRef;
use crate::plan::{AgentSpec, ImageSource, StackSpec};
use crate::runtime::{launch, LaunchOptions};

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
}

async fn sample(n: usize) -> anyhow::Result<Sample> {
    let t = Instant::now();
    let (stack, report) = launch(&stack_of(n), &LaunchOptions::new(&format!("bench-{n}"))).await?;
    let wall = t.elapsed().as_secs_f64();
    let tm = stack.timings().clone();
    let crossbar_floor = stack
        .engine_time_to_line("crossbar", "Ok, local node configuration ran successfully.")
        .await;
    let mut agent_floor: f64 = 0.0;
    for a in &stack.plan().agents {
        if let Some(s) = stack
            .engine_time_to_line(&a.instance_id, "session joined")
            .await
        {
            agent_floor = agent_floor.max(s);
        }
    }
    stack.teardown().await?;
    let max = |m: &std::collections::BTreeMap<String, Duration>| {
        m.values().map(|d| d.as_secs_f64()).fold(0.0, f64::max)
    };
    Ok(Sample {
        wall,
        images: report.images.as_secs_f64(),
        network: tm.network.as_secs_f64(),
        crossbar_start: tm.crossbar_start.as_secs_f64(),
        crossbar_boot: tm.crossbar_boot.as_secs_f64(),
        agents_start: max(&tm.agent_start),
        agents_registration: max(&tm.agent_registration),
        floor: crossbar_floor.unwrap_or(f64::NAN) + agent_floor,
    })
}

/// Round trips on a one-agent stack: `status`, and `start` + `wait` of a zero-delay task.
async fn latency(calls: usize) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let (stack, _) = launch(&stack_of(1), &LaunchOptions::new("bench-latency")).await?;
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

/// Run the benchmark; the report as Markdown.
pub async fn run(options: &BenchOptions) -> anyhow::Result<String> {
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
        "| agents | wall to ready | images | network | crossbar start | crossbar boot | agents start | agents registration | floor | overhead | overhead % |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for &n in &options.agents {
        let mut samples = Vec::new();
        for r in 0..options.runs {
            eprintln!(
                "ocs-harness bench: {n} agent(s), run {}/{}",
                r + 1,
                options.runs
            );
            samples.push(sample(n).await?);
        }
        let m = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        let (wall, floor) = (m(|s| s.wall), m(|s| s.floor));
        let overhead = m(|s| s.wall - s.floor);
        let _ = writeln!(
            md,
            "| {n} | {wall:.2} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {floor:.2} | {overhead:.2} | {:.0}% |",
            m(|s| s.images),
            m(|s| s.network),
            m(|s| s.crossbar_start),
            m(|s| s.crossbar_boot),
            m(|s| s.agents_start),
            m(|s| s.agents_registration),
            overhead / floor * 100.0
        );
    }

    eprintln!("ocs-harness bench: {} bridge round trips", options.calls);
    let (status, start_wait) = latency(options.calls).await?;
    let _ = writeln!(
        md,
        "\n| bridge round trip ({} calls) | median (ms) | p95 (ms) |\n| --- | --- | --- |",
        options.calls
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

    let scenario = crate::scenario::Scenario::from_file(&options.scenario)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let _ = writeln!(
        md,
        "\n| `{}` in parallel | total wall |\n| --- | --- |",
        options.scenario.display()
    );
    for &k in &options.parallel {
        let mut walls = Vec::new();
        for r in 0..options.runs {
            eprintln!(
                "ocs-harness bench: {k} scenario(s) in parallel, run {}/{}",
                r + 1,
                options.runs
            );
            let t = Instant::now();
            let runs = (0..k).map(|_| async {
                crate::runner::run(&scenario, &LaunchOptions::new(&scenario.name)).await
            });
            for result in futures::future::join_all(runs).await {
                let report = result?;
                crate::runner::into_result(&report).map_err(|e| anyhow::anyhow!(e))?;
            }
            walls.push(t.elapsed().as_secs_f64());
        }
        let _ = writeln!(md, "| {k} | {:.2} |", median(walls));
    }
    if let Some(rss) = peak_rss_mib() {
        let _ = writeln!(md, "\nPeak RSS of the harness process: {rss:.1} MiB.");
    }
    Ok(md)
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
