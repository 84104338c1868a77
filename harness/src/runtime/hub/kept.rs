//! Crossbars kept between invocations (`test --reuse`): a developer re-running one scenario
//! after editing an agent pays the agent's image and its steps, not crossbar's boot.
//!
//! Each worker takes a slot (0, 1, ...): an exclusive lock on `<cache>/hub-reuse-<slot>.lock`
//! for as long as it runs, so two processes never share a kept crossbar's realms, and a
//! record beside it (`.json`: the container's id, each realm's empty session count, when it
//! was booted). A worker adopts the container `ocsh-hub-reuse-<key>-<slot>` (`key`: from the
//! cache directory's path) when it is the recorded one, running, from the same image, younger than half the keep limit and answering;
//! otherwise it removes it and boots a new one there. Kept crossbars carry the kept marker
//! (`clean` removes them; a later run's sweep removes them once older than the keep limit)
//! and no owner: they outlive the process on purpose.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};
use testcontainers::bollard::query_parameters::InspectContainerOptions;
use testcontainers::bollard::Docker;

use super::{client, session_count, Running, Start, REALMS};
use crate::clock::unix_now_secs;
use crate::plan::{CROSSBAR_PORT, LABEL_KEPT, LABEL_SCENARIO};
use crate::runtime::engine::{self, SHARED_CROSSBAR_PREFIX};
use crate::runtime::logs::LogStore;

/// The image a kept crossbar runs (a run on another image does not adopt it).
const LABEL_REUSE_IMAGE: &str = "org.ocs-harness.reuse-image";

/// A kept crossbar's slot, held by this process while the lock file stays open.
pub(super) struct Slot {
    /// `<cache key>-<slot>`: the cache directory's key keeps two cache directories (two users,
    /// two test runs) off each other's kept crossbars.
    key: String,
    _lock: File,
    record: PathBuf,
}

impl Slot {
    /// Take slot `slot`; `None` when another process holds it (or the lock cannot be made).
    pub(super) fn take(slot: usize, cache_dir: &Path) -> Option<Slot> {
        std::fs::create_dir_all(cache_dir).ok()?;
        let path = cache_dir.join(format!("hub-reuse-{slot}.lock"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ok()?;
        lock.try_lock().ok()?;
        let dir = cache_dir.canonicalize().ok()?;
        let digest = Sha256::digest(dir.to_string_lossy().as_bytes());
        let cache_key: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Some(Slot {
            key: format!("{cache_key}-{slot}"),
            _lock: lock,
            record: path.with_extension("json"),
        })
    }

    /// The run id its resources are labelled with.
    pub(super) fn run_id(&self) -> String {
        format!("hub-reuse-{}", self.key)
    }

    /// Its container's name.
    pub(super) fn name(&self) -> String {
        format!("{SHARED_CROSSBAR_PREFIX}reuse-{}", self.key)
    }

    /// The labels of a kept crossbar of `image` booted at `now` (besides every run's).
    pub(super) fn labels(&self, image: &str, now: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_KEPT.to_string(), now.to_string()),
            (LABEL_REUSE_IMAGE.to_string(), image.to_string()),
            (
                LABEL_SCENARIO.to_string(),
                "(shared crossbar kept for --reuse)".to_string(),
            ),
        ])
    }

    /// Record the booted container `id` and its realms' empty session counts.
    pub(super) fn record(&self, id: &str, baseline: &[Option<u64>]) {
        let text = json!({"id": id, "baseline": baseline, "created": unix_now_secs()});
        if let Err(e) = std::fs::write(&self.record, text.to_string()) {
            tracing::warn!("cannot write {}: {e}", self.record.display());
        }
    }

    /// The recorded container: its id, its realms' empty session counts, its boot time.
    fn recorded(&self) -> Option<(String, Vec<Option<u64>>, u64)> {
        let text = std::fs::read_to_string(&self.record).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let baseline: Vec<Option<u64>> = serde_json::from_value(v["baseline"].clone()).ok()?;
        (baseline.len() == REALMS).then_some(())?;
        Some((
            v["id"].as_str()?.to_string(),
            baseline,
            v["created"].as_u64()?,
        ))
    }

    /// The kept crossbar as this worker's, when it can be: the recorded container, running
    /// `image`, young enough, its bridge answering. Else the slot back.
    pub(super) async fn adopt(self, image: &str, start: &Start<'_>) -> Result<Running, Slot> {
        match self.usable(image, start).await {
            Some((id, base, baseline)) => {
                tracing::debug!(run = %self.run_id(), %base, "kept crossbar adopted");
                let run_id = self.run_id();
                Ok(Running {
                    id,
                    container: None,
                    kept: Some(self),
                    image: image.to_string(),
                    run_dir: start.runs_dir.join(&run_id),
                    run_id,
                    base,
                    baseline,
                    taken: (0..REALMS).map(|_| Arc::default()).collect(),
                    next: 0,
                    logs: LogStore::new(),
                    docker: start.docker.clone(),
                })
            }
            None => Err(self),
        }
    }

    /// The recorded container's id, bridge base URL and baseline, when it can be adopted.
    async fn usable(
        &self,
        image: &str,
        start: &Start<'_>,
    ) -> Option<(String, reqwest::Url, Vec<Option<u64>>)> {
        let (id, baseline, created) = self.recorded()?;
        let young = unix_now_secs().saturating_sub(created) < start.keep_max_age.as_secs() / 2;
        let info = start
            .docker
            .inspect_container(&self.name(), None::<InspectContainerOptions>)
            .await
            .ok()?;
        let running = info.state.as_ref().and_then(|s| s.running) == Some(true);
        let labels = info.config.as_ref().and_then(|c| c.labels.as_ref());
        let same_image = labels.and_then(|l| l.get(LABEL_REUSE_IMAGE)) == Some(&image.to_string());
        if info.id.as_deref() != Some(id.as_str()) || !running || !same_image || !young {
            return None;
        }
        let port = info
            .network_settings?
            .ports?
            .get(&format!("{CROSSBAR_PORT}/tcp"))?
            .as_ref()?
            .first()?
            .host_port
            .clone()?;
        let host = engine::engine_host(start.docker, start.engine).await;
        let base: reqwest::Url = format!("http://{}:{port}/", host.url_host()).parse().ok()?;
        session_count(&client(&base, 0).ok()?).await?;
        Some((id, base, baseline))
    }
}

/// Whether container `id` runs.
pub(super) async fn is_running(docker: &Docker, id: &str) -> bool {
    docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()
        .and_then(|i| i.state)
        .and_then(|s| s.running)
        == Some(true)
}
