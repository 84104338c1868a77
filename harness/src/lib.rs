//! ocs-harness: integration tests for dockerized OCS agent stacks.
//!
//! The data travels one way: a scenario file is parsed (`scenario`), resolved into a
//! pure-data stack description (`plan`), brought up on Docker (`runtime`, the only module
//! that talks to Docker) and driven through crossbar's HTTP call bridge (`ocs`, which knows
//! nothing about Docker).

pub mod ocs;
