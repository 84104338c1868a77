//! The scenario decoder's context: the source-text toolkit ([`crate::source::node`], shared
//! with the compose parser) plus what decoding a scenario collects on the way (where each
//! agent is written, passwords, `ready-within`s). Everything else of `source::node` is
//! re-exported here, so the scenario's decoders name it as before.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

pub(crate) use crate::source::node::*;

/// The scenario decoding context: [`crate::source::node::Cx`] (the source, the errors, the
/// variables; reached through `Deref`) and the scenario's own state.
pub(crate) struct Cx<'s> {
    base: crate::source::node::Cx<'s>,
    /// Where each agent is written, by instance-id.
    pub agent_sources: BTreeMap<String, super::AgentSource>,
    /// Each agent's `password`, by instance-id.
    pub passwords: BTreeMap<String, String>,
    /// Each agent's `ready-within`, by instance-id.
    pub ready_within: BTreeMap<String, super::Budget>,
    /// `stack.ready-within`.
    pub stack_ready_within: Option<super::Budget>,
    /// The services of a compose file (not its agents), known to the steps even when the
    /// stack has errors.
    pub compose_services: Vec<String>,
}

impl<'s> Cx<'s> {
    pub(crate) fn new(src: &'s Source) -> Self {
        Self {
            base: crate::source::node::Cx::new(src),
            agent_sources: Default::default(),
            passwords: Default::default(),
            ready_within: Default::default(),
            stack_ready_within: None,
            compose_services: Vec::new(),
        }
    }
}

impl<'s> Deref for Cx<'s> {
    type Target = crate::source::node::Cx<'s>;

    fn deref(&self) -> &Self::Target {
        &self.base
    }
}

impl DerefMut for Cx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.base
    }
}
