//! One crossbar per worker (`test --crossbar shared`): a worker's runs share a crossbar that
//! booted once, each run in a WAMP realm of its own.
//!
//! Isolation is crossbar's: a session joins one realm and sees only that realm's procedures,
//! topics and sessions, so two runs with the same instance-ids (the same procedure names
//! under the same address root) cannot reach each other. The shared crossbar serves
//! [`REALMS`] realms, each with the roles of the harness's own crossbar config and a call
//! bridge path of its own (`/call-0`, `/call-1`, ...); a worker's runs take the realms in
//! turn, and a realm is handed out only once it holds no session of an earlier run (the
//! realm's session count back to what it was when crossbar had just booted).
//!
//! A run's stack reaches the shared crossbar on its own network: the crossbar container is
//! connected to it with the alias the run's own crossbar would have had, so the site config,
//! the feed tap and commands address it as before; the run's teardown disconnects it before
//! the network goes. What a shared crossbar cannot give (its log, a fault on it, another
//! image or address root) makes a run take a private crossbar: see [`Hub::lease`] and
//! `suite`'s choice.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testcontainers::bollard::Docker;
use testcontainers::core::IntoContainerPort;
use testcontainers::{ContainerAsync, GenericImage};

use crate::clock::unix_now_secs;
use crate::imageset::{BaseFrom, ImageSet};
use crate::ocs::{CallOptions, HttpBridge, OcsClient, Transport};
use crate::plan::{
    ContainerPlan, StackSpec, CROSSBAR, CROSSBAR_PORT, LABEL_CREATED, LABEL_MANAGED, LABEL_ROLE,
    LABEL_RUN, LABEL_SCENARIO,
};
use crate::runtime::bringup::start_crossbar_container;
use crate::runtime::engine::{self, Doing, EngineHost, EngineSettings};
use crate::runtime::lease::Held;
pub use crate::runtime::lease::Lease;
use crate::runtime::logs::LogStore;
use crate::runtime::readiness::wait_bridge;
use crate::runtime::role::Role;
use crate::runtime::stack::StackError;
use crate::runtime::sweep::Owner;
use crate::runtime::watchdog;
use crate::wait::{poll_until, Backoff, Probe};

mod kept;

/// Realms per shared crossbar, taken in turn by a worker's runs.
pub const REALMS: usize = 8;
/// The address root the shared crossbar's realms allow (the default); a stack with another
/// root gets a crossbar of its own.
pub const ROOT: &str = "observatory";
/// How long a realm may take to lose the sessions of the run before (agents stopping).
const REALM_EMPTY: Duration = Duration::from_secs(30);
/// The meta procedure counting a realm's sessions (the controller role may call it).
const SESSION_COUNT: &str = "wamp.session.count";

/// A worker's crossbar, started on the first lease.
#[derive(Default)]
pub struct Hub {
    state: tokio::sync::Mutex<Option<Running>>,
    /// `test --reuse`: the slot of the crossbar kept between invocations that this worker
    /// takes (see [`Hub::kept`]).
    reuse: Option<usize>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hub")
    }
}

/// A shared crossbar that is up.
struct Running {
    /// Its container's id.
    id: String,
    /// The handle of a crossbar this process started and removes at the end (`None`: kept
    /// between invocations).
    container: Option<ContainerAsync<GenericImage>>,
    /// Kept between invocations (`--reuse`): its slot, held by this process.
    kept: Option<kept::Slot>,
    /// Its image: a run on another crossbar image gets a private one.
    image: String,
    run_id: String,
    /// `http://<host>:<port>/`.
    base: reqwest::Url,
    /// Each realm's session count when nothing but crossbar was in it (`None`: unknown,
    /// then the realm is handed out without waiting).
    baseline: Vec<Option<u64>>,
    /// Each realm is taken (a run's stack holds its lease).
    taken: Vec<Arc<AtomicBool>>,
    next: usize,
    logs: LogStore,
    run_dir: PathBuf,
    docker: Docker,
}

/// What starting a shared crossbar needs.
pub(crate) struct Start<'a> {
    pub docker: &'a Docker,
    pub engine: &'a EngineSettings,
    pub runs_dir: &'a std::path::Path,
    pub ready: Duration,
    /// Where a kept crossbar's slot lock and record live (the build cache directory).
    pub cache_dir: &'a std::path::Path,
    /// A kept crossbar older than half of this is replaced (the sweep removes kept resources
    /// older than it).
    pub keep_max_age: Duration,
}

impl Hub {
    /// A worker's crossbar kept between invocations (`test --reuse`) in slot `slot` (one per
    /// worker): a later invocation's worker with the same slot finds it running and uses it
    /// instead of booting one. Kept crossbars are labelled as kept: `clean` removes them,
    /// and so does a later run's sweep once they are older than the keep limit.
    pub fn kept(slot: usize) -> Self {
        Self {
            state: Default::default(),
            reuse: Some(slot),
        }
    }

    /// A realm for a run whose crossbar image is `image`: the shared crossbar is started on
    /// the first lease. `None` when this hub runs another image, or when every realm is
    /// taken (runs still stopping): the run takes a private crossbar.
    pub(crate) async fn lease(
        &self,
        image: &str,
        start: Start<'_>,
    ) -> Result<Option<Lease>, StackError> {
        let mut state = self.state.lock().await;
        // A shared crossbar that exited (killed, crashed) failed the run on it; the next run
        // gets a new one.
        if let Some(running) = state.as_ref() {
            if !kept::is_running(start.docker, &running.id).await {
                crate::runtime::notice::warn(&format!(
                    "the shared crossbar {} is not running any more; starting a new one",
                    running.run_id
                ));
                if let Some(gone) = state.take() {
                    gone.stop().await;
                }
            }
        }
        if state.is_none() {
            *state = Some(match self.reuse {
                Some(slot) => Running::kept(slot, image, &start).await?,
                None => Running::start(image, &start, None).await?,
            });
        }
        let running = state.as_mut().expect("started above");
        if running.image != image {
            tracing::debug!(shared = %running.image, image, "a crossbar of its own: another crossbar image");
            return Ok(None);
        }
        let free = (0..REALMS)
            .map(|i| (running.next + i) % REALMS)
            .find(|&k| !running.taken[k].swap(true, Ordering::SeqCst));
        let Some(k) = free else {
            tracing::debug!("a crossbar of its own: every realm of the shared one is taken");
            return Ok(None);
        };
        running.next = (k + 1) % REALMS;
        let held = Arc::new(Held::new(running.taken[k].clone()));
        running.lease(k, held).await.map(Some)
    }

    /// Remove the shared crossbar (its log saved in its run directory).
    pub async fn stop(&self) {
        if let Some(running) = self.state.lock().await.take() {
            running.stop().await;
        }
    }
}

impl Running {
    /// The crossbar kept in slot `slot`, or a new one kept there (or, when another process
    /// holds the slot, one of this process's own).
    async fn kept(slot: usize, image: &str, start: &Start<'_>) -> Result<Running, StackError> {
        let Some(held) = kept::Slot::take(slot, start.cache_dir) else {
            crate::runtime::notice::info(&format!(
                "another ocs-harness process uses the kept crossbar of slot {slot}; this \
                 worker boots its own"
            ));
            return Running::start(image, start, None).await;
        };
        match held.adopt(image, start).await {
            Ok(running) => Ok(running),
            Err(held) => {
                let _ = engine::remove_run(start.docker, &held.run_id()).await;
                Running::start(image, start, Some(held)).await
            }
        }
    }

    /// Boot a shared crossbar, kept between invocations in slot `kept` if given.
    async fn start(
        image: &str,
        start: &Start<'_>,
        kept: Option<kept::Slot>,
    ) -> Result<Running, StackError> {
        let id = crate::plan::new_run_id();
        let now = unix_now_secs().to_string();
        let (run_id, name, mut labels) = match &kept {
            None => (
                format!("hub-{id}"),
                format!("{}{id}", engine::SHARED_CROSSBAR_PREFIX),
                Owner::this_process().labels(),
            ),
            Some(slot) => (slot.run_id(), slot.name(), slot.labels(image, &now)),
        };
        labels.extend([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_RUN.to_string(), run_id.clone()),
            (LABEL_CREATED.to_string(), now),
            (LABEL_ROLE.to_string(), CROSSBAR.to_string()),
        ]);
        labels
            .entry(LABEL_SCENARIO.to_string())
            .or_insert_with(|| "(shared crossbar)".to_string());
        let plan = crate::plan::crossbar_container(name, image.to_string(), labels, config(REALMS));
        let logs = LogStore::new();
        let run_dir = start.runs_dir.join(&run_id);
        if kept.is_none() {
            watchdog::register(&run_id, &logs, &run_dir, start.engine);
        }
        let docker = start.docker;
        let host = engine::engine_host(docker, start.engine).await;
        let started = Self::boot(&plan, &host, &logs, &run_dir, start).await;
        match started {
            Ok((container, base, baseline)) => {
                tracing::debug!(run = %run_id, %base, ?baseline, "shared crossbar ready");
                let id = container.id().to_string();
                let container = match &kept {
                    Some(slot) => {
                        slot.record(&id, &baseline);
                        std::mem::forget(container);
                        None
                    }
                    None => Some(container),
                };
                Ok(Running {
                    id,
                    container,
                    kept,
                    image: image.to_string(),
                    run_id,
                    base,
                    baseline,
                    taken: (0..REALMS).map(|_| Arc::default()).collect(),
                    next: 0,
                    logs,
                    run_dir,
                    docker: docker.clone(),
                })
            }
            Err(e) => {
                let _ = logs.save(&run_dir);
                let _ = engine::remove_run(docker, &run_id).await;
                watchdog::unregister(&run_id);
                Err(e)
            }
        }
    }

    /// Start the container and wait until every realm's bridge answers; the base URL and
    /// each realm's session count then.
    async fn boot(
        plan: &ContainerPlan,
        host: &EngineHost,
        logs: &LogStore,
        run_dir: &std::path::Path,
        start: &Start<'_>,
    ) -> Result<(ContainerAsync<GenericImage>, reqwest::Url, Vec<Option<u64>>), StackError> {
        let container = start_crossbar_container(plan, "bridge", host, logs, run_dir).await?;
        let port = container
            .get_host_port_ipv4(CROSSBAR_PORT.tcp())
            .await
            .doing("reading the shared crossbar's published port")?;
        let base = format!("http://{}:{port}/", host.url_host());
        let base: reqwest::Url = base.parse().map_err(|e| StackError::Io {
            doing: format!("making the shared crossbar's URL {base}"),
            source: std::io::Error::other(e),
        })?;
        let mut baseline = Vec::new();
        for k in 0..REALMS {
            let client = client(&base, k)?;
            wait_bridge(&client, logs, 0, &container, start.ready)
                .await
                .map_err(|error| StackError::NotReady {
                    role: Role::Crossbar,
                    error: Box::new(error),
                    log_tail: logs.tail(Role::CROSSBAR, 30),
                })?;
            baseline.push(session_count(&client).await);
        }
        Ok((container, base, baseline))
    }

    /// Realm `k`, once it holds no session of an earlier run.
    async fn lease(&self, k: usize, held: Arc<Held>) -> Result<Lease, StackError> {
        let t = Instant::now();
        let client = client(&self.base, k)?;
        if let Some(empty) = self.baseline[k] {
            let condition = format!(
                "realm {} of the shared crossbar to hold no session of an earlier run ({SESSION_COUNT} back to {empty})",
                realm(k)
            );
            poll_until(condition, REALM_EMPTY, Backoff::default(), || async {
                match session_count(&client).await {
                    Some(n) if n <= empty => Probe::Ready(()),
                    Some(n) => Probe::Pending(format!("{n} sessions")),
                    None => Probe::Pending(format!("{SESSION_COUNT} did not answer")),
                }
            })
            .await
            .map_err(|error| StackError::NotReady {
                role: Role::Crossbar,
                error: Box::new(error),
                log_tail: self.logs.tail(Role::CROSSBAR, 30),
            })?;
        }
        Ok(Lease {
            realm: realm(k),
            path: path(k),
            bridge_url: client.transport().call_url().clone(),
            container_id: self.id.clone(),
            waited: t.elapsed(),
            _held: held,
        })
    }

    /// Remove the crossbar, unless it is kept between invocations.
    async fn stop(self) {
        let _ = self.logs.save(&self.run_dir);
        if self.kept.is_some() {
            crate::runtime::notice::info(&format!(
                "crossbar {} stays up for the next --reuse run (`ocs-harness clean --run {}` \
                 removes it)",
                self.run_id, self.run_id
            ));
            return;
        }
        std::mem::forget(self.container);
        if let Err(e) = engine::remove_run(&self.docker, &self.run_id).await {
            crate::runtime::notice::warn(&crate::runtime::notice::display_chain(&e));
        }
        watchdog::unregister(&self.run_id);
    }
}

/// Why a stack of `spec` on image set `set` cannot take a realm on a shared crossbar, if it
/// cannot: a published crossbar image (it configures itself from its own template, one
/// realm), or an address root other than [`ROOT`] (the shared realms' roles allow that root).
pub fn own_crossbar(spec: &StackSpec, set: &ImageSet) -> Option<String> {
    if set.crossbar_from != BaseFrom::Recipe {
        return Some(format!(
            "the image set {} runs a published crossbar image, which configures itself",
            set.name
        ));
    }
    (spec.address_root != ROOT).then(|| {
        format!(
            "its address root `{}` is not the shared crossbar's `{ROOT}`",
            spec.address_root
        )
    })
}

/// Realm `k`'s name.
fn realm(k: usize) -> String {
    format!("ocsh_realm_{k}")
}

/// Realm `k`'s call bridge path.
fn path(k: usize) -> String {
    format!("call-{k}")
}

/// A client of realm `k`'s bridge.
fn client(base: &reqwest::Url, k: usize) -> Result<OcsClient<HttpBridge>, StackError> {
    let url = base.join(&path(k)).map_err(|e| StackError::Io {
        doing: format!("making the URL of realm {k} on {base}"),
        source: std::io::Error::other(e),
    })?;
    Ok(OcsClient::new(HttpBridge::new(url), ROOT.to_string()))
}

/// The realm's session count, when crossbar answers it.
async fn session_count(client: &OcsClient<HttpBridge>) -> Option<u64> {
    let options = CallOptions::with_timeout(Duration::from_secs(2));
    let reply = client
        .transport()
        .call(SESSION_COUNT, Vec::new(), Default::default(), options)
        .await
        .ok()?;
    reply
        .as_u64()
        .or_else(|| reply.get("args")?.get(0)?.as_u64())
        .or_else(|| reply.get(0)?.as_u64())
}

/// The config of a crossbar serving `realms` realms: the harness's own config (its roles,
/// under [`ROOT`]) for each, the controller role also allowed to count the realm's
/// sessions, and one call bridge path per realm.
pub fn config(realms: usize) -> String {
    let one: Value = serde_json::from_str(&crate::plan::crossbar_config(&realm(0), ROOT))
        .expect("the harness's crossbar config is JSON");
    let mut config = one.clone();
    let worker = &mut config["workers"][0];
    let template = one["workers"][0]["realms"][0].clone();
    let caller = one["workers"][0]["transports"][0]["paths"]["call"].clone();
    let mut all = Vec::new();
    let paths = worker["transports"][0]["paths"]
        .as_object_mut()
        .expect("the config has paths");
    paths.remove("call");
    for k in 0..realms {
        let mut r = template.clone();
        r["name"] = json!(realm(k));
        for role in r["roles"].as_array_mut().into_iter().flatten() {
            if role["name"] == "iocs_controller" {
                if let Some(p) = role["permissions"].as_array_mut() {
                    p.push(json!({
                        "uri": SESSION_COUNT,
                        "match": "exact",
                        "allow": {"call": true, "register": false, "publish": false, "subscribe": false},
                        "disclose": {"caller": false, "publisher": false},
                        "cache": true
                    }));
                }
            }
        }
        all.push(r);
        let mut c = caller.clone();
        c["realm"] = json!(realm(k));
        paths.insert(path(k), c);
    }
    worker["realms"] = Value::Array(all);
    serde_json::to_string_pretty(&config).expect("JSON")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_config_serves_each_realm_on_a_path_of_its_own() {
        let c: serde_json::Value = serde_json::from_str(&super::config(3)).unwrap();
        let realms = c["workers"][0]["realms"].as_array().unwrap();
        assert_eq!(realms.len(), 3);
        assert_eq!(realms[2]["name"], "ocsh_realm_2");
        let paths = &c["workers"][0]["transports"][0]["paths"];
        assert_eq!(paths["call-1"]["realm"], "ocsh_realm_1");
        assert_eq!(paths["call-1"]["type"], "caller");
        assert!(paths.get("call").is_none());
        assert!(paths.get("ws").is_some());
        let agent = &realms[0]["roles"][0];
        assert_eq!(agent["permissions"][0]["uri"], "observatory.");
        let controller = &realms[0]["roles"][1]["permissions"];
        assert_eq!(controller[1]["uri"], "wamp.session.count");
    }
}
