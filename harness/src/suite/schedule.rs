//! Scheduling: the suite's runs, `jobs` at a time and as many prepared ahead (each run is
//! isolated: its own network and names, its own realm on a shared crossbar), each one's
//! events passed to the reporter as they happen and each one judged as it finishes.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::join_all;

use crate::html;
use crate::runner::{self, RunError, RunEvent, RunReport};
use crate::runtime::hub::Hub;
use crate::runtime::{LaunchOptions, Slot, Turn};
use crate::scenario::Scenario;

use super::event::{emit, Built, Event, SharedReporter};
use super::verdict::{self, Images};
use super::{Finished, SuiteOptions};

/// One run of a suite: a scenario, on an image set of its own when given (`compare` runs each
/// scenario on two).
#[derive(Debug, Clone)]
pub struct Planned {
    /// The scenario.
    pub scenario: Scenario,
    /// Its image set, instead of the suite's.
    pub images: Option<PathBuf>,
    /// A notice printed when the run gets its turn (`compare`: which side).
    pub note: Option<String>,
}

impl Planned {
    /// `scenario` on the suite's image set.
    pub fn new(scenario: Scenario) -> Self {
        Self {
            scenario,
            images: None,
            note: None,
        }
    }
}

/// Run `scenario`, passing its events to `reporter` as they happen; the stack's images and
/// every event, stamped (for the HTML report).
pub async fn run_reported(
    scenario: &Scenario,
    options: &LaunchOptions,
    reporter: &SharedReporter,
) -> (Result<RunReport, RunError>, Images, Vec<html::Stamped>) {
    let mut images = Images::default();
    let mut recorder = html::Recorder::default();
    let mut observer = |e: &RunEvent| {
        crate::runner::RunObserver::on_event(&mut recorder, e);
        if let RunEvent::StackReady {
            images: used,
            built,
            ..
        } = e
        {
            images.used = used.clone();
            images.built = built
                .iter()
                .map(|(image, seconds)| Built {
                    image: image.clone(),
                    seconds: *seconds,
                })
                .collect();
        }
        if let Some(event) = Event::run(&scenario.name, e) {
            emit(reporter, event);
        }
    };
    let result = runner::run_observed(scenario, options, &mut observer).await;
    (result, images, recorder.events)
}

/// A started run's result, as its task hands it back.
type Ran = (
    usize,
    Planned,
    Result<RunReport, RunError>,
    Images,
    Vec<html::Stamped>,
);

/// Run `planned`, `options.jobs` at a time, as many more prepared ahead (images, network,
/// services, a crossbar of their own: see [`Turn`]); each run judged (snapshot, case, page) as
/// it finishes, in the order they finish. An error only when a run's task panicked.
pub async fn run_all(
    planned: Vec<Planned>,
    options: &SuiteOptions,
    reporter: &SharedReporter,
) -> anyhow::Result<Vec<Finished>> {
    let jobs = options.jobs.max(1);
    let workers = Arc::new(tokio::sync::Semaphore::new(jobs));
    let ahead = Arc::new(tokio::sync::Semaphore::new(jobs));
    let shared = Arc::new(options.clone());
    // One crossbar per worker: a run taking its turn takes an idle one, and gives it back.
    let hubs: Vec<Arc<Hub>> = match (options.shared_crossbar, options.reuse_crossbar) {
        (_, true) => (0..jobs).map(|k| Arc::new(Hub::kept(k))).collect(),
        (true, false) => (0..jobs).map(|_| Arc::new(Hub::default())).collect(),
        (false, false) => Vec::new(),
    };
    // Taken from the end: the first worker gets slot 0.
    let idle = Arc::new(std::sync::Mutex::new(
        hubs.iter().rev().cloned().collect::<Vec<_>>(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, run) in planned.into_iter().enumerate() {
        let (workers, ahead) = (workers.clone(), ahead.clone());
        let reporter = reporter.clone();
        let shared = shared.clone();
        let idle = idle.clone();
        tasks.spawn(async move {
            let preparing = ahead
                .acquire_owned()
                .await
                .expect("the semaphore stays open");
            let slot = Slot::default();
            let filled = slot.clone();
            // The run's turn: a worker, and the worker's crossbar; its place among the runs
            // prepared ahead goes to the next one.
            let turn = async move {
                let worker = workers
                    .acquire_owned()
                    .await
                    .expect("the semaphore stays open");
                drop(preparing);
                let hub = idle.lock().expect("idle hubs").pop();
                let give_back = hub.clone();
                filled.fill(move || {
                    idle.lock().expect("idle hubs").extend(give_back);
                    drop(worker);
                });
                hub
            };
            let ran = start(index, run, &shared, turn, slot.clone(), &reporter).await;
            slot.release();
            ran
        });
    }
    let mut finished = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, run, result, images, events) =
            joined.map_err(|e| anyhow::anyhow!("a scenario run panicked: {e}"))?;
        let scenario = run.scenario;
        let (case, snapshot, diff) =
            verdict::finish(&scenario, &result, images, options.snapshots, reporter);
        let page = options
            .pages
            .then(|| verdict::scenario_page(&scenario, &result, &case, diff, events));
        finished.push(Finished {
            index,
            scenario,
            result,
            snapshot,
            case,
            page,
        });
    }
    join_all(hubs.iter().map(|h| h.stop())).await;
    Ok(finished)
}

/// One run, prepared ahead of its `turn` (a worker, with its shared crossbar, if any): its
/// note, its `scenario_started`, the run.
async fn start(
    index: usize,
    run: Planned,
    options: &SuiteOptions,
    turn: impl std::future::Future<Output = Option<Arc<Hub>>> + Send + 'static,
    slot: Slot,
    reporter: &SharedReporter,
) -> Ran {
    if let Some(note) = &run.note {
        crate::runtime::notice::info(note);
    }
    let scenario = &run.scenario;
    emit(
        reporter,
        Event::ScenarioStarted {
            scenario: scenario.name.clone(),
            file: scenario.path.display().to_string(),
            steps: scenario.steps.len(),
        },
    );
    let mut launch = launch_options(&run, options);
    let hubs = options.shared_crossbar || options.reuse_crossbar;
    let own = hubs.then(|| own_crossbar(&run, options)).flatten();
    if let Some(why) = &own {
        tracing::debug!(scenario = %scenario.name, why, "a crossbar of its own");
    }
    launch.turn = Turn::later(hubs && own.is_none(), turn);
    launch.slot = slot;
    let (result, images, events) = run_reported(scenario, &launch, reporter).await;
    (index, run, result, images, events)
}

/// The launch options of `run` in a suite with `options`: the settings' defaults, the run's
/// image set (else the suite's, else the default), the suite's log allow-list and budgets.
pub fn launch_options(run: &Planned, options: &SuiteOptions) -> LaunchOptions {
    let mut launch = LaunchOptions::with_settings(&run.scenario.name, &options.settings);
    if let Some(images) = run.images.as_ref().or(options.images.as_ref()) {
        launch.images_file = Some(images.clone());
    }
    launch.log_allow = options.log_allow.clone();
    launch.budgets = options.budgets.clone();
    launch
}

/// Why `run` needs a crossbar of its own in a suite with a shared one per worker: a step
/// reaches crossbar's container, a failed run is kept for inspection, or the run has an image
/// set of its own (`compare`). The launch adds its own reasons (see `runtime::hub`).
pub fn own_crossbar(run: &Planned, options: &SuiteOptions) -> Option<String> {
    if let Some(why) = run.scenario.own_crossbar() {
        return Some(why);
    }
    if options.settings.config.keep_on_failure {
        return Some("a failed run's stack is kept for inspection".into());
    }
    run.images
        .as_ref()
        .map(|i| format!("it runs on an image set of its own ({})", i.display()))
}
