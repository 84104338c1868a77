//! A run's realm on a worker's shared crossbar (see `runtime::hub`): what the bring-up and the
//! stack need of it, held by the stack until it is gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A run's realm on a shared crossbar.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The realm.
    pub realm: String,
    /// Its call bridge path (`call-2`), in the site config's `wamp_http` too.
    pub path: String,
    /// Its call bridge URL, as the harness reaches it.
    pub bridge_url: reqwest::Url,
    /// The shared crossbar's container id.
    pub container_id: String,
    /// Until the realm held no session of an earlier run.
    pub waited: Duration,
    /// The realm is the run's while any clone of the lease lives (the stack holds one).
    pub(crate) _held: Arc<Held>,
}

/// Marks a realm taken while it lives.
#[derive(Debug)]
pub(crate) struct Held(Arc<AtomicBool>);

impl Held {
    /// Hold the realm whose flag is `taken` (already set).
    pub(crate) fn new(taken: Arc<AtomicBool>) -> Self {
        Self(taken)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}
