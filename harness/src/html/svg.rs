//! A scenario's timeline drawing (inline SVG): the steps as bars on one lane, then one lane
//! per container with its boot or registration, its ready mark, faults, exits, the session
//! messages of its operations and its log lines; every mark has a `<title>` tooltip, every step
//! bar links to the step's entry below. Times are when the harness saw each event (session
//! messages at the agent's own time, log lines when received).

use std::collections::BTreeMap;

use super::text::{cut, esc, secs};
use super::ScenarioRun;
use crate::runner::event::Outcome;
use crate::runner::RunEvent;

const WIDTH: f64 = 1200.0;
const LABEL: f64 = 170.0;
const PAD: f64 = 24.0;
const LANE: f64 = 30.0;
const TOP: f64 = 26.0;
/// Log lines drawn as ticks per lane (evenly sampled beyond that).
const TICKS: usize = 300;
/// Log lines with their own tooltip per lane (selected by a step, or errors).
const NOTABLE: usize = 40;

/// What one container's lane shows.
#[derive(Default)]
struct Lane {
    /// Boot or registration: how long, and what it measures.
    boot: Option<(f64, &'static str)>,
    /// When it ended (Unix seconds), when the run knows.
    ready_at: Option<f64>,
    /// Times of its log lines.
    logs: Vec<f64>,
    /// Log lines worth a tooltip: (time, text).
    notable: Vec<(f64, String)>,
    /// Marks: (time, kind, tooltip).
    marks: Vec<(f64, Mark, String)>,
}

#[derive(Clone, Copy)]
enum Mark {
    Fault,
    Exit,
    Session,
    /// Ready again after a fault.
    Ready,
}

/// Whether a log line reads like trouble (drawn with a tooltip).
fn notable(text: &str) -> bool {
    [
        "Traceback",
        "ERROR",
        "Error",
        "error",
        "CRITICAL",
        "exception",
        "Exception",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// What part of a run a drawing shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum View {
    /// All of it, bring-up included.
    Whole,
    /// From the stack being ready to the end, when that is well under the whole run.
    Steps,
    /// From the stack being ready, this many seconds (two runs drawn on one time axis).
    StepsFor(f64),
}

/// The drawing of `view`; `None` when the run has no events to place, or nothing to zoom
/// into (the stack never became ready, or the steps take most of the run anyway).
pub(crate) fn timeline(run: &ScenarioRun, view: View) -> Option<String> {
    let t0 = run.events.first()?.at;
    let mut end = run.events.last()?.at;
    let mut order: Vec<String> = Vec::new();
    let mut lanes: BTreeMap<String, Lane> = BTreeMap::new();
    let mut steps: Vec<(f64, f64, usize, String, bool)> = Vec::new();
    let mut started: BTreeMap<usize, f64> = BTreeMap::new();
    let mut ready: Option<f64> = None;
    let mut selected: Vec<(String, String)> = Vec::new();
    for s in &run.events {
        match &s.event {
            RunEvent::StackReady {
                stack,
                crossbar_boot,
                registration,
                marks,
                ..
            } => {
                ready = Some(s.at);
                for entry in stack {
                    let name = entry.split(" (").next().unwrap_or(entry).to_string();
                    if !order.contains(&name) {
                        order.push(name);
                    }
                }
                let crossbar = lanes.entry("crossbar".into()).or_default();
                crossbar.boot = Some((
                    crossbar_boot.as_secs_f64(),
                    "boot: running to its bridge answering",
                ));
                crossbar.ready_at = (marks.bridge_ready > 0.0).then_some(marks.bridge_ready);
                for (agent, d) in registration {
                    let lane = lanes.entry(agent.clone()).or_default();
                    lane.boot = Some((
                        d.as_secs_f64(),
                        "registration: running to its first get_api answer",
                    ));
                    lane.ready_at = marks.agent_ready.get(agent).copied();
                }
            }
            RunEvent::StepStarted { step, .. } => {
                started.insert(*step, s.at);
            }
            RunEvent::StepFinished {
                step,
                line,
                action,
                passed,
                outcome,
                ..
            } => {
                let from = started.get(step).copied().unwrap_or(s.at);
                steps.push((
                    from,
                    s.at,
                    *step,
                    format!("step {step} (line {line}): {action}"),
                    *passed,
                ));
                if let Outcome::Fault {
                    fault,
                    container,
                    ready_again: Some(true),
                } = outcome
                {
                    lanes.entry(container.clone()).or_default().marks.push((
                        s.at,
                        Mark::Ready,
                        format!("{container} answered again after the {fault} (step {step})"),
                    ));
                }
                if let Outcome::Exited { code } = outcome {
                    let target = order
                        .iter()
                        .filter(|c| action.contains(c.as_str()))
                        .max_by_key(|c| c.len());
                    if let Some(c) = target {
                        lanes.entry(c.clone()).or_default().marks.push((
                            s.at,
                            Mark::Exit,
                            format!("{c} exited with code {code} (step {step})"),
                        ));
                    }
                }
            }
            RunEvent::FaultInjected {
                step,
                fault,
                container,
                at,
            } => lanes.entry(container.clone()).or_default().marks.push((
                *at,
                Mark::Fault,
                format!("fault {fault} on {container} (step {step})"),
            )),
            RunEvent::SessionMessage {
                instance,
                op,
                session_id,
                time,
                text,
                ..
            } => lanes.entry(instance.clone()).or_default().marks.push((
                *time,
                Mark::Session,
                format!("{instance}.{op}:{session_id} {}", cut(text, 300)),
            )),
            RunEvent::LogLineSelected {
                container, text, ..
            } => selected.push((container.clone(), text.clone())),
            _ => {}
        }
    }
    for l in &run.logs {
        let at = l
            .received
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if !order.contains(&l.container) {
            order.push(l.container.clone());
        }
        let lane = lanes.entry(l.container.clone()).or_default();
        lane.logs.push(at);
        let chosen = selected
            .iter()
            .any(|(c, t)| *c == l.container && *t == l.text);
        if (chosen || notable(&l.text)) && lane.notable.len() < NOTABLE {
            lane.notable.push((at, cut(&l.text, 300)));
        }
        end = end.max(at);
    }
    for lane in lanes.values() {
        for (at, _, _) in &lane.marks {
            end = end.max(*at);
        }
    }
    for name in lanes.keys() {
        if !order.contains(name) {
            order.push(name.clone());
        }
    }
    let (lo, hi) = match (view, ready) {
        (View::Whole, _) => (t0, end),
        (View::Steps, Some(r)) if end - r < 0.6 * (end - t0) => (r - 0.03 * (end - r), end),
        (View::StepsFor(span), Some(r)) => (r - 0.03 * span, r + span),
        (View::StepsFor(span), None) => (t0, t0 + span),
        (View::Steps, _) => return None,
    };
    let inside = |t: f64| (lo..=hi).contains(&t);
    let span = (hi - lo).max(0.001);
    let plot = WIDTH - LABEL - PAD;
    let x = |t: f64| LABEL + ((t - lo).clamp(0.0, span) / span) * plot;
    let height = TOP + LANE * (1 + order.len()) as f64 + 8.0;
    let mut out = format!(
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} \
         {height}\" role=\"img\" aria-label=\"timeline of the run\">\n"
    );
    // lanes' backgrounds and labels
    for (i, name) in std::iter::once("steps")
        .chain(order.iter().map(|s| s.as_str()))
        .enumerate()
    {
        let y = TOP + LANE * i as f64;
        let fill = if i % 2 == 0 { "#f6f8fa" } else { "#ffffff" };
        out.push_str(&format!(
            "<rect x=\"0\" y=\"{y}\" width=\"{WIDTH}\" height=\"{LANE}\" fill=\"{fill}\"/>\
             <text class=\"lane\" x=\"8\" y=\"{:.1}\">{}</text>\n",
            y + LANE / 2.0 + 4.0,
            esc(&cut(name, 22))
        ));
    }
    // time axis
    let step = tick_step(span);
    // Two runs on one axis count from their stacks being ready; one run from its start.
    let origin = match view {
        View::StepsFor(_) => ready.unwrap_or(t0),
        _ => t0,
    };
    let first = ((lo - origin) / step - 1e-6).ceil();
    let mut t = if first > 0.0 { first * step } else { 0.0 };
    while t <= hi - origin + 1e-6 {
        let xt = x(origin + t);
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{xt:.1}\" y1=\"{:.1}\" x2=\"{xt:.1}\" y2=\"{height}\"/>\
             <text class=\"axis\" x=\"{xt:.1}\" y=\"16\">{}</text>\n",
            TOP - 4.0,
            tick_label(t, step)
        ));
        t += step;
    }
    if let Some(r) = ready {
        let xr = x(r);
        out.push_str(&format!(
            "<line class=\"ready\" x1=\"{xr:.1}\" y1=\"{TOP}\" x2=\"{xr:.1}\" y2=\"{height}\">\
             <title>stack ready at +{}</title></line>\n",
            secs(r - t0)
        ));
    }
    // steps
    let y = TOP + 5.0;
    for (from, to, n, what, passed) in &steps {
        let (x1, x2) = (x(*from), x(*to));
        let w = (x2 - x1).max(3.0);
        let class = if *passed { "ok" } else { "bad" };
        out.push_str(&format!(
            "<a href=\"#step-{n}\"><rect class=\"step {class}\" x=\"{x1:.1}\" y=\"{y}\" \
             width=\"{w:.1}\" height=\"{:.1}\" rx=\"3\"><title>{} — {} ({}), at +{}</title></rect>",
            LANE - 10.0,
            esc(what),
            secs(to - from),
            if *passed { "passed" } else { "FAILED" },
            secs(from - t0)
        ));
        if w > 22.0 {
            out.push_str(&format!(
                "<text class=\"steplabel\" x=\"{:.1}\" y=\"{:.1}\">{n}</text>",
                x1 + w / 2.0,
                y + LANE / 2.0 - 1.0
            ));
        }
        out.push_str("</a>\n");
    }
    // containers
    for (i, name) in order.iter().enumerate() {
        let Some(lane) = lanes.get(name) else {
            continue;
        };
        let mid = TOP + LANE * (i + 1) as f64 + LANE / 2.0;
        let first = lane.logs.iter().copied().reduce(f64::min);
        let start = first.unwrap_or(t0).max(lo);
        out.push_str(&format!(
            "<line class=\"life\" x1=\"{:.1}\" y1=\"{mid}\" x2=\"{:.1}\" y2=\"{mid}\"/>\n",
            x(start),
            x(end)
        ));
        if let Some((d, what)) = lane.boot {
            // Ending when it answered, when the run knows; else from its first output, else
            // ending when the stack was ready.
            let (b0, b1) = match (lane.ready_at, first, ready) {
                (Some(r), _, _) => (r - d, r),
                (None, Some(f), _) => (f, f + d),
                (None, None, Some(r)) => (r - d, r),
                (None, None, None) => (t0, t0 + d),
            };
            if b1 >= lo {
                out.push_str(&format!(
                    "<rect class=\"boot\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" \
                 rx=\"2\"><title>{} {what}: {}</title></rect>\
                 <path class=\"readymark\" d=\"M{:.1} {:.1} l5 6 l-5 6 l-5 -6 z\">\
                 <title>{} ready at +{}</title></path>\n",
                    x(b0),
                    mid - 6.0,
                    (x(b1) - x(b0)).max(2.0),
                    esc(name),
                    secs(d),
                    x(b1),
                    mid - 6.0,
                    esc(name),
                    secs(b1 - t0)
                ));
            }
        }
        let sample = lane.logs.len().div_ceil(TICKS).max(1);
        let mut ticks = String::new();
        for at in lane.logs.iter().step_by(sample).filter(|t| inside(**t)) {
            ticks.push_str(&format!("M{:.1} {:.1}v8", x(*at), mid + 3.0));
        }
        if !ticks.is_empty() {
            out.push_str(&format!(
                "<path class=\"logtick\" d=\"{ticks}\"><title>{} log lines of {}</title></path>\n",
                lane.logs.len(),
                esc(name)
            ));
        }
        for (at, text) in lane.notable.iter().filter(|(t, _)| inside(*t)) {
            out.push_str(&format!(
                "<rect class=\"notable\" x=\"{:.1}\" y=\"{:.1}\" width=\"3\" height=\"12\">\
                 <title>+{} {}: {}</title></rect>\n",
                x(*at) - 1.5,
                mid + 1.0,
                secs(at - t0),
                esc(name),
                esc(text)
            ));
        }
        for (at, mark, title) in lane.marks.iter().filter(|(t, _, _)| inside(*t)) {
            let xm = x(*at);
            let title = format!("+{} {}", secs(at - t0), esc(title));
            out.push_str(&match mark {
                Mark::Session => format!(
                    "<circle class=\"session\" cx=\"{xm:.1}\" cy=\"{:.1}\" r=\"4\"><title>{title}</title></circle>\n",
                    mid - 7.0
                ),
                Mark::Fault => format!(
                    "<path class=\"fault\" d=\"M{xm:.1} {:.1} l7 13 h-14 z\"><title>{title}</title></path>\n",
                    mid - 8.0
                ),
                Mark::Ready => format!(
                    "<path class=\"readymark\" d=\"M{xm:.1} {:.1} l5 6 l-5 6 l-5 -6 z\"><title>{title}</title></path>\n",
                    mid - 6.0
                ),
                Mark::Exit => format!(
                    "<rect class=\"exit\" x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\"><title>{title}</title></rect>\n",
                    xm - 5.0,
                    mid - 5.0
                ),
            });
        }
    }
    out.push_str("</svg>\n");
    Some(out)
}

/// Seconds from the stack being ready to the run's last event, when it became ready.
pub(crate) fn steps_span(run: &ScenarioRun) -> Option<f64> {
    let ready = run.events.iter().find_map(|s| match s.event {
        RunEvent::StackReady { .. } => Some(s.at),
        _ => None,
    })?;
    Some(run.events.last()?.at - ready)
}

/// A tick every 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10 min: at most 12 of them.
fn tick_step(span: f64) -> f64 {
    [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    ]
    .into_iter()
    .find(|s| span / s <= 12.0)
    .unwrap_or(1800.0)
}

fn tick_label(t: f64, step: f64) -> String {
    if step < 1.0 {
        format!("{t:.1}s")
    } else if step < 60.0 {
        format!("{t:.0}s")
    } else {
        format!("{:.0}m", t / 60.0)
    }
}
