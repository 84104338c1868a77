//! Image policy, the pure part: which image set a run uses and its pull policy, and the
//! overrides an image goes through, decided without an engine ([`resolve`]). `launch`
//! (`runtime`) and `plan` (the CLI's `plan`) share it; making the images present (build,
//! pull, load, provenance) is the runtime's (`runtime::images`, `runtime::pull`).

pub mod resolve;

pub use resolve::planned_overrides;
