//! ocs-harness: integration tests for dockerized OCS agent stacks.
//!
//! The data travels one way: a scenario file ([`Scenario`]) is resolved into a pure-data plan
//! (with image sets, recipes and overrides for images), brought up on Docker (the runtime, the
//! only part that talks to Docker; [`launch`] gives a live [`Stack`]), driven through crossbar's
//! HTTP call bridge ([`ocs`], which knows nothing about Docker) by the runner ([`run`], which
//! emits [`RunEvent`]s), and read back as a normalised transcript, timeline and reports.
//!
//! The public surface is what a plugin's tests need:
//! - [`testing::scenario_test`]: run one scenario file as a test (snapshot, JUnit), the same
//!   checks as `ocs-harness test`;
//! - [`run`] / [`run_observed`] for a [`Scenario`], with [`LaunchOptions`];
//! - [`launch`] a [`StackSpec`] by hand and drive it with its [`OcsClient`];
//! - [`ocs`]: the typed OCS client, and [`wait`]: the one polling primitive;
//! - [`cli::main`]: the command line, which is what the `ocs-harness` binary runs.
//!
//! Settings are read from the environment once, at the edge ([`Settings::from_env`]: the
//! command line's `main`, [`testing`], [`LaunchOptions::new`]), and passed down as values.

mod bench;
mod budget;
pub mod cli;
mod clock;
mod codecov;
mod compare;
mod compose;
mod config;
mod coverage;
mod device;
mod filespec;
mod html;
mod images;
mod imageset;
mod levels;
mod logpolicy;
pub mod ocs;
mod overrides;
mod packages;
mod plan;
mod recipes;
mod report;
mod role;
mod runner;
mod runtime;
mod scenario;
mod service;
mod snapshot;
mod source;
mod suite;
pub mod testing;
mod timeline;
mod transcript;
pub mod wait;

pub use config::{Config, ConfigError, Env, Settings};
pub use ocs::{AgentClient, HttpBridge, OcsClient};
pub use plan::{AgentSpec, HostedAgent, ImageSource, StackSpec};
pub use runner::{
    into_result, run, run_observed, RunError, RunEvent, RunObserver, RunReport, ScenarioFailed,
    StepFailure,
};
pub use runtime::hub::Hub;
pub use runtime::stack::{Stack, StackError};
pub use runtime::{launch, LaunchError, LaunchOptions, LaunchReport, Turn};
pub use scenario::{Scenario, ScenarioError, ScenarioErrors};
pub use service::{Readiness, ReadyCheck, ServiceSpec};
pub use transcript::Transcript;

/// The README's Rust examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The book's Rust examples (docs/src, the pages with ```rust blocks), compiled as doctests so
/// that they stay true. A page that gains a Rust example is added here.
#[cfg(doctest)]
pub mod book_doctests {
    /// docs/src/rust.md
    #[doc = include_str!("../../docs/src/rust.md")]
    pub struct Rust;
    /// docs/src/getting-started.md
    #[doc = include_str!("../../docs/src/getting-started.md")]
    pub struct GettingStarted;
}
