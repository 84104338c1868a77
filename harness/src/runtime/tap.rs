//! The feed tap: a small subscriber container on the stack's network that prints, as one
//! JSON line on stdout, every message published on the feeds a scenario observes. It runs
//! the stack's own OCS image (the registry's, else the first agent's: python with autobahn,
//! as every OCS image has), so it works with published images as well as the recipes. Its
//! lines are followed into the stack's log store under [`TAP`]; it carries the run's
//! labels, so teardown (and every sweep) removes it with the rest of the run.
//!
//! Line format: `{"tap": "subscribed", "topics": N}` once subscribed (again after a
//! reconnect), then `{"tap": "message", "agent": A, "feed": F, "received": T, "message": M}`
//! per publication, `M` the message OCS publishes (the agent's message, or a recorded feed's
//! blocks) without the feed's description that comes with it.

use std::time::Duration;

use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::overrides::ImageRef;
use crate::plan::{CROSSBAR_PORT, LABEL_ROLE};
use crate::runtime::engine::Doing;
use crate::runtime::role::Role;
use crate::runtime::stack::{Stack, StackError};
use crate::wait::{poll_until, Backoff, Probe};

/// The tap's name in the log store, its role label and its container name's suffix.
pub const TAP: &str = "feed-tap";

/// How long the tap may take to start and subscribe.
const TAP_READY: Duration = Duration::from_secs(60);

/// The subscriber, run with `python3 -c`; arguments: url, realm, address root, then one
/// `agent/feed` per feed.
const SCRIPT: &str = r#"
import json, sys, time
from autobahn.asyncio.component import Component, run
url, realm, root = sys.argv[1:4]
pairs = [a.split("/", 1) for a in sys.argv[4:]]
def out(obj):
    sys.stdout.write(json.dumps(obj, default=repr) + "\n")
    sys.stdout.flush()
tap = Component(transports=[{"url": url, "max_retries": -1, "initial_retry_delay": 0.2,
                             "max_retry_delay": 1.0}], realm=realm)
@tap.on_join
async def joined(session, details):
    for agent, feed in pairs:
        def on_message(*args, _a=agent, _f=feed, **kwargs):
            # OCS publishes one argument, (message, feed info)
            m = args[0] if args else None
            if isinstance(m, (list, tuple)) and len(m) == 2 and isinstance(m[1], dict):
                m = m[0]
            out({"tap": "message", "agent": _a, "feed": _f, "received": time.time(),
                 "message": m})
        await session.subscribe(on_message, "%s.%s.feeds.%s" % (root, agent, feed))
    out({"tap": "subscribed", "topics": len(pairs)})
run([tap], log_level="warn")
"#;

impl Stack {
    /// Start the feed tap subscribed to `feeds` (`(agent, feed)` pairs) and wait until it
    /// says it is subscribed. Messages published before that are not seen.
    pub(crate) async fn start_feed_tap(
        &mut self,
        feeds: &[(String, String)],
    ) -> Result<(), StackError> {
        let t = std::time::Instant::now();
        let container = self
            .tap_request(feeds)?
            .start()
            .await
            .doing(format!("starting the feed tap ({})", self.tap_name()))?;
        let ready = wait_subscribed(self, &container).await;
        tracing::debug!(run = %self.plan.run_id, took = ?t.elapsed(), ok = ready.is_ok(), "feed tap started");
        self.helpers.push(container);
        ready
    }

    fn tap_name(&self) -> String {
        format!("ocsh-{}-{TAP}", self.plan.run_id)
    }

    /// The tap's container: the stack's OCS image, its network and labels, `python3 -c`.
    fn tap_request(
        &self,
        feeds: &[(String, String)],
    ) -> Result<testcontainers::core::ContainerRequest<GenericImage>, StackError> {
        let plan = &self.plan;
        let agent = plan
            .agents
            .iter()
            .find(|a| a.instance_id == Role::REGISTRY)
            .or(plan.agents.first())
            .ok_or_else(|| StackError::NoSuchContainer(Role::registry()))?;
        let image =
            ImageRef::parse(&agent.container.image).map_err(|source| StackError::BadImage {
                role: Role::agent(&agent.instance_id),
                source,
            })?;
        let (name, tag) = image.name_and_tag();
        let mut labels = plan.labels.clone();
        labels.insert(LABEL_ROLE.into(), TAP.into());
        let url = format!("ws://{}:{CROSSBAR_PORT}/ws", plan.crossbar.name);
        let mut cmd = vec!["-c".to_string(), SCRIPT.into(), url, plan.realm.clone()];
        cmd.push(plan.address_root.clone());
        cmd.extend(feeds.iter().map(|(a, f)| format!("{a}/{f}")));
        Ok(GenericImage::new(name, tag)
            .with_entrypoint("python3")
            .with_container_name(self.tap_name())
            .with_network(&plan.network)
            .with_labels(labels)
            .with_log_consumer(self.logs.consumer(TAP))
            .with_cmd(cmd))
    }
}

/// Wait for the tap's `subscribed` line; fail at once when its container has exited.
async fn wait_subscribed(
    stack: &Stack,
    container: &ContainerAsync<GenericImage>,
) -> Result<(), StackError> {
    let logs = &stack.logs;
    let condition = "the feed tap to subscribe (its line {\"tap\": \"subscribed\", ...})";
    let waited = poll_until(condition, TAP_READY, Backoff::default(), || async {
        if logs
            .lines_of(TAP, 0)
            .iter()
            .any(|l| l.text.contains("\"tap\": \"subscribed\""))
        {
            return Probe::Ready(());
        }
        match container.is_running().await {
            Ok(false) => Probe::Failed("the feed tap's container exited".into()),
            _ => Probe::Pending(match logs.tail(TAP, 1).pop() {
                Some(l) => format!("last line {l:?}"),
                None => "no output yet".into(),
            }),
        }
    })
    .await;
    waited.map_err(|error| StackError::TapNotReady {
        error,
        log_tail: logs.tail(TAP, 30),
    })
}
