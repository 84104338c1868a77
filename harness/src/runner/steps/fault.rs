//! `fault: <action>`: inject a fault into a container. Faults that restart something return
//! once it answers again (crossbar on its new port, its agents registered again).

use std::time::Instant;

use super::{Checked, StackOps};
use crate::runner::event::{Emitter, Outcome, RunEvent};
use crate::scenario::capture::Bindings;
use crate::scenario::{Fault, FaultAction};
use crate::wait::fmt_duration;

/// Run a fault step: `times.last_fault` becomes its time (what `after-last-fault` refers to),
/// and `times.ready_again` the time the stack answered again when the fault waits for that
/// (what `after-ready-again` refers to).
pub(super) async fn run(
    stack: &mut impl StackOps,
    step: usize,
    fault: &Fault,
    times: &mut Bindings,
    events: &Emitter<'_>,
) -> Checked {
    let role = fault.container.as_str();
    let at = crate::clock::unix_now();
    times.last_fault = Some(at);
    times.ready_again = None;
    events.emit(RunEvent::FaultInjected {
        step,
        fault: fault.action.as_str().into(),
        container: role.to_string(),
        at,
    });
    let t = Instant::now();
    let result = stack.fault(fault).await;
    let waits_ready = matches!(
        fault.action,
        FaultAction::Restart | FaultAction::Start | FaultAction::Unpause | FaultAction::Connect
    );
    if waits_ready && result.is_ok() {
        times.ready_again = Some(crate::clock::unix_now());
    }
    let outcome = Outcome::Fault {
        fault: fault.action.as_str().into(),
        container: role.to_string(),
        ready_again: waits_ready.then_some(result.is_ok()),
    };
    let problems = result
        .err()
        .map(|e| {
            vec![format!(
                "{} (after {})",
                crate::runtime::display_chain(&e),
                fmt_duration(t.elapsed())
            )]
        })
        .unwrap_or_default();
    Checked::plain(outcome, problems, role)
}
