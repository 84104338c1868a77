//! Notices a user must see even when the program installed no `tracing` subscriber (a plugin's
//! `cargo test`): "building image X", "removed run Y". Each is a `tracing` event; with no
//! subscriber in effect it is also written to stderr as one `ocs-harness: ...` line. Errors
//! are rendered with their causes by [`display_chain`].

use tracing::subscriber::NoSubscriber;

/// The `tracing` target of notices, so a subscriber can show them while hiding other info
/// events (the command line does by default).
pub(crate) const NOTICE: &str = "ocs_harness::notice";

/// Whether `tracing` events currently go nowhere.
pub(crate) fn unobserved() -> bool {
    tracing::dispatcher::get_default(|d| d.is::<NoSubscriber>())
}

/// An info-level notice.
pub(crate) fn info(text: &str) {
    tracing::info!(target: NOTICE, "{text}");
    if unobserved() {
        eprintln!("ocs-harness: {text}");
    }
}

/// A warning-level notice.
pub(crate) fn warn(text: &str) {
    tracing::warn!(target: NOTICE, "{text}");
    if unobserved() {
        eprintln!("ocs-harness: {text}");
    }
}

/// An error with its causes, `: `-separated, each shown once.
pub fn display_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_subscriber_means_unobserved() {
        assert!(super::unobserved());
        let subscriber = tracing::subscriber::NoSubscriber::default();
        tracing::subscriber::with_default(subscriber, || assert!(super::unobserved()));
    }
}
