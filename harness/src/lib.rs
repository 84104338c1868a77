//! ocs-harness: integration tests for dockerized OCS agent stacks.
//!
//! The data travels one way: a stack description is resolved into a pure-data plan (`plan`,
//! with `recipes` and `overrides` for images), brought up on Docker (`runtime`, the only
//! module that talks to Docker) and driven through crossbar's HTTP call bridge (`ocs`, which
//! knows nothing about Docker). `wait` holds the one polling primitive every wait uses.

pub mod bench;
pub mod clock;
pub mod compare;
pub mod compose;
pub mod config;
pub mod imageset;
pub mod ocs;
pub mod overrides;
pub mod plan;
pub mod recipes;
pub mod report;
pub mod runner;
pub mod runtime;
pub mod scenario;
pub mod testing;
pub mod timeline;
pub mod transcript;
pub mod wait;
