//! Placeholder; the typed OCS client lives here.
