//! A suite run's turn on a worker, and what it may prepare before it (stacks prepared ahead,
//! issue 27).
//!
//! A suite runs `jobs` scenarios at a time; each of those holds a worker (its [`Slot`]) from
//! its turn until its steps are over. The next runs do not wait idle for a worker: they build
//! or check their images, create their network and service containers and boot their own
//! crossbar first (a crossbar of their own: a worker's shared one comes with the turn), and
//! take their turn only to start their agents. What a run waited for its turn is not its own
//! time: [`Turn::waited`] is taken off its stack's and its duration's figures.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::runtime::hub::Hub;

/// What grants a turn: the worker's shared crossbar, if it has one.
type Grant = Pin<Box<dyn Future<Output = Option<Arc<Hub>>> + Send>>;

/// A run's turn on a worker: taken once, by the first [`Turn::take`]; clones share it.
#[derive(Clone)]
pub struct Turn(Arc<Inner>);

struct Inner {
    /// Whether the turn comes with a shared crossbar (known before it is taken).
    shared: bool,
    /// What grants it, until it has been taken.
    grant: tokio::sync::Mutex<Option<Grant>>,
    /// Once taken: the worker's shared crossbar, when the turn was taken and how long it
    /// was waited for.
    taken: Mutex<Option<Taken>>,
}

#[derive(Clone)]
struct Taken {
    hub: Option<Arc<Hub>>,
    at: Instant,
    waited: Duration,
}

impl Turn {
    /// A turn that is already the run's (a single run, a test of one's own), with `hub`, a
    /// shared crossbar, if any.
    pub fn now(hub: Option<Arc<Hub>>) -> Self {
        let shared = hub.is_some();
        let taken = Taken {
            hub,
            at: Instant::now(),
            waited: Duration::ZERO,
        };
        Self(Arc::new(Inner {
            shared,
            grant: tokio::sync::Mutex::new(None),
            taken: Mutex::new(Some(taken)),
        }))
    }

    /// A turn that `grant` gives (a suite's worker, and its shared crossbar when `shared`).
    pub fn later(
        shared: bool,
        grant: impl Future<Output = Option<Arc<Hub>>> + Send + 'static,
    ) -> Self {
        Self(Arc::new(Inner {
            shared,
            grant: tokio::sync::Mutex::new(Some(Box::pin(grant))),
            taken: Mutex::new(None),
        }))
    }

    /// Whether the turn comes with a worker's shared crossbar.
    pub fn shared(&self) -> bool {
        self.0.shared
    }

    /// Whether the turn has been taken (a run holding it starts its agents at once).
    pub fn is_taken(&self) -> bool {
        self.taken().is_some()
    }

    /// Wait for the turn (the first call; later ones return at once): the worker's shared
    /// crossbar, if the turn comes with one.
    pub async fn take(&self) -> Option<Arc<Hub>> {
        if let Some(taken) = self.taken() {
            return taken.hub;
        }
        let mut grant = self.0.grant.lock().await;
        // Another clone may have taken it while this one waited for the lock.
        if let Some(taken) = self.taken() {
            return taken.hub;
        }
        let t = Instant::now();
        let hub = match grant.take() {
            Some(grant) => grant.await,
            None => None,
        };
        self.store(hub.clone(), t.elapsed());
        hub
    }

    /// Take the turn if it is free now (a worker idle), without waiting: whether the run
    /// holds it. When it is not, the run keeps its place in the queue for it.
    pub async fn try_take(&self) -> bool {
        if self.is_taken() {
            return true;
        }
        let Ok(mut grant) = self.0.grant.try_lock() else {
            return false;
        };
        let Some(pending) = grant.as_mut() else {
            return self.is_taken();
        };
        match futures::poll!(pending.as_mut()) {
            std::task::Poll::Ready(hub) => {
                *grant = None;
                self.store(hub, Duration::ZERO);
                true
            }
            std::task::Poll::Pending => false,
        }
    }

    fn store(&self, hub: Option<Arc<Hub>>, waited: Duration) {
        let taken = Taken {
            hub,
            at: Instant::now(),
            waited,
        };
        *self.0.taken.lock().unwrap_or_else(|e| e.into_inner()) = Some(taken);
    }

    /// How long the run waited for its turn (nothing before it is taken).
    pub fn waited(&self) -> Duration {
        self.taken().map_or(Duration::ZERO, |t| t.waited)
    }

    /// Since when the run has held its turn: `since`, or later when the turn came after it.
    pub fn held_since(&self, since: Instant) -> Instant {
        self.taken().map_or(since, |t| t.at.max(since))
    }

    fn taken(&self) -> Option<Taken> {
        self.0
            .taken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Default for Turn {
    fn default() -> Self {
        Self::now(None)
    }
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("shared", &self.0.shared)
            .field("taken", &self.is_taken())
            .finish()
    }
}

/// A suite worker held by a run: given back once the run's steps are over, so that the
/// worker's next run comes up while this one's agents stop and its stack goes (the engine
/// and ocs spend seconds there, mostly waiting). Giving it back twice is giving it back once;
/// a slot given back before it was filled (a run that failed before its turn) holds nothing.
#[derive(Clone, Default)]
pub struct Slot(Arc<Mutex<SlotState>>);

#[derive(Default)]
enum SlotState {
    /// Not filled yet.
    #[default]
    Empty,
    /// Held: what gives the worker back.
    Held(GiveBack),
    /// Given back (or never to be filled).
    Done,
}

/// What ends a [`Slot`].
type GiveBack = Box<dyn FnOnce() + Send>;

impl Slot {
    /// A slot that `give_back` ends.
    pub fn new(give_back: impl FnOnce() + Send + 'static) -> Self {
        let slot = Self::default();
        slot.fill(give_back);
        slot
    }

    /// Hold the worker that `give_back` gives back; after [`Slot::release`], give it back at
    /// once.
    pub fn fill(&self, give_back: impl FnOnce() + Send + 'static) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match *state {
            SlotState::Done => {
                drop(state);
                give_back();
            }
            _ => *state = SlotState::Held(Box::new(give_back)),
        }
    }

    /// Give the worker back (once).
    pub fn release(&self) {
        let state = std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(|e| e.into_inner()),
            SlotState::Done,
        );
        if let SlotState::Held(give_back) = state {
            give_back();
        }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_slot_is_given_back_once() {
        let given = Arc::new(AtomicUsize::new(0));
        let counter = given.clone();
        let slot = Slot::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let copy = slot.clone();
        slot.release();
        copy.release();
        slot.release();
        assert_eq!(given.load(Ordering::SeqCst), 1);
        Slot::default().release();
    }

    #[test]
    fn a_slot_filled_after_its_release_gives_back_at_once() {
        let given = Arc::new(AtomicUsize::new(0));
        let slot = Slot::default();
        slot.release();
        let counter = given.clone();
        slot.fill(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(given.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_turn_is_taken_once_and_its_wait_measured() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let grants = Arc::new(AtomicUsize::new(0));
        let counted = grants.clone();
        let turn = Turn::later(false, async move {
            let _ = rx.await;
            counted.fetch_add(1, Ordering::SeqCst);
            None
        });
        assert!(!turn.is_taken());
        assert_eq!(turn.waited(), Duration::ZERO);
        let since = Instant::now();
        let (hub, ()) = tokio::join!(turn.take(), async {
            assert!(!turn.is_taken(), "taken before it was granted");
            tx.send(()).expect("the grant waits");
        });
        assert!(hub.is_none());
        assert!(turn.take().await.is_none());
        assert_eq!(grants.load(Ordering::SeqCst), 1);
        assert!(turn.waited() > Duration::ZERO);
        assert!(turn.held_since(since) >= since);
        let free = Turn::later(true, async { None });
        assert!(
            free.try_take().await,
            "a free worker is taken without waiting"
        );
        assert!(free.is_taken() && free.shared() && free.waited() == Duration::ZERO);
        let busy = Turn::later(false, futures::future::pending());
        assert!(!busy.try_take().await && !busy.is_taken());
        let now = Turn::default();
        assert!(now.is_taken() && !now.shared());
        assert_eq!(now.waited(), Duration::ZERO);
    }
}
