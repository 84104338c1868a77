//! The end of a stack: torn down (logs saved, everything labelled with the run removed) or
//! kept for inspection after a failure (logs saved, a marker network with the time, and the
//! commands to reach and remove it).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::clock::unix_now_secs;
use crate::plan::LABEL_KEPT;
use crate::runtime::engine::{self, Doing, EngineError};
use crate::runtime::notice::display_chain;
use crate::runtime::stack::{io_err, Stack, StackError};
use crate::runtime::watchdog;

/// What a teardown of `run` returns: what was removed, or every failure (with what was).
fn teardown_result(
    run: &str,
    removed: Vec<String>,
    failures: Vec<String>,
) -> Result<Vec<String>, StackError> {
    if failures.is_empty() {
        Ok(removed)
    } else {
        Err(StackError::Teardown {
            run: run.to_string(),
            removed,
            failures,
        })
    }
}

impl Stack {
    /// Save the logs, remove every container and the network. Returns what was removed.
    /// Everything is removed whatever fails on the way (saving the logs, one removal); the
    /// error then says every failure ([`StackError::Teardown`]).
    pub async fn teardown(mut self) -> Result<Vec<String>, StackError> {
        self.torn_down = true;
        watchdog::wait_if_shutting_down().await;
        for task in self.background.drain(..) {
            task.abort();
        }
        let mut failures = Vec::new();
        if let Err(e) = self.save_engine_logs().await {
            failures.push(display_chain(&e));
        }
        // One removal path for everything labelled with the run (it tolerates containers
        // that are already gone); the handles must not remove them again on drop.
        self.forget_containers();
        let removed = match engine::remove_run(&self.docker, &self.plan.run_id).await {
            Ok(removed) => removed,
            Err(EngineError::Leftovers {
                removed,
                failures: left,
                ..
            }) => {
                failures.extend(left);
                removed
            }
            Err(e) => {
                failures.push(display_chain(&e));
                Vec::new()
            }
        };
        watchdog::unregister(&self.plan.run_id);
        teardown_result(&self.plan.run_id, removed, failures)
    }

    /// Leave the stack running for inspection (after a failure): logs saved, a marker
    /// network records when it was kept (a later run removes it once older than
    /// `OCS_HARNESS_KEEP_MAX_AGE`), and the returned text says how to reach and remove it.
    pub async fn keep(mut self) -> Result<String, StackError> {
        self.torn_down = true;
        watchdog::wait_if_shutting_down().await;
        // The stack is kept (and marked) even when its logs cannot be saved; the text says so.
        let saved = self.save_engine_logs().await;
        let mut labels: HashMap<String, String> = self.plan.labels.clone().into_iter().collect();
        labels.insert(LABEL_KEPT.into(), unix_now_secs().to_string());
        let marker = format!("{}-kept", self.plan.network);
        let marked = engine::create_network(&self.docker, &marker, labels, true)
            .await
            .doing("marking the stack as kept");
        watchdog::unregister(&self.plan.run_id);
        // Keep the containers: their handles must not remove them on drop.
        self.forget_containers();
        match (marked, saved) {
            (Ok(()), Ok(logs_dir)) => Ok(self.kept_text(&logs_dir)),
            (Ok(()), Err(e)) => Ok(format!(
                "{}\n  saving its logs failed: {}",
                self.kept_text(&self.run_dir.join("logs")),
                display_chain(&e)
            )),
            (Err(e), saved) => {
                let mut failures = vec![display_chain(&e)];
                failures.extend(saved.err().map(|e| display_chain(&e)));
                teardown_result(&self.plan.run_id, Vec::new(), failures).map(|_| String::new())
            }
        }
    }

    /// How to reach and remove a kept stack.
    fn kept_text(&self, logs_dir: &std::path::Path) -> String {
        let run = &self.plan.run_id;
        let url = &self.bridge_url;
        let mut text =
            format!("the stack of run {run} was kept for inspection:\n  bridge: {url}\n");
        if let Some(a) = self.plan.agents.last() {
            text.push_str(&format!(
                "  curl -s -X POST -H 'Content-Type: application/json' \\\n    \
                 -d '{{\"procedure\":\"{root}.{id}\",\"args\":[\"get_api\"]}}' {url}\n",
                root = self.plan.address_root,
                id = a.instance_id,
            ));
        }
        for c in std::iter::once(&self.plan.crossbar)
            .chain(self.plan.agents.iter().map(|a| &a.container))
        {
            text.push_str(&format!(
                "  docker logs -f {n}    docker exec -it {n} bash\n",
                n = c.name
            ));
        }
        text.push_str(&format!(
            "  logs so far: {}\n  remove it: ocs-harness clean --run {run}\n  \
             (a later run removes it after OCS_HARNESS_KEEP_MAX_AGE, default 1h)",
            logs_dir.display()
        ));
        text
    }

    /// Write every container's complete log, as the engine has it, to
    /// `<run_dir>/logs/<role>.log`: unlike the followed stream, it cannot miss the last lines.
    /// Falls back to the followed lines for a container the engine cannot give.
    pub async fn save_engine_logs(&self) -> Result<PathBuf, StackError> {
        let dir = self.save_logs()?;
        for role in self.roles() {
            let Ok(id) = self.container_id(&role) else {
                continue;
            };
            if let Some(text) = engine::full_log(&self.docker, &id).await {
                let text = crate::levels::strip_bytes(text);
                let path = dir.join(crate::runtime::logs::log_file_name(role.name()));
                std::fs::write(&path, text)
                    .map_err(io_err(format!("writing {}", path.display())))?;
            }
        }
        Ok(dir)
    }
}
