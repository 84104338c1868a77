//! What a container is in its stack: crossbar, an agent by its instance-id (the registry
//! is the agent `registry`), or a service container by its name.

use std::fmt;

/// A container's part in a stack.
///
/// [`name`](Role::name) is the logical name logs are filed under (`crossbar`, `fake1`);
/// `Display` is how messages speak of it (`crossbar`, `agent fake1`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The WAMP router with the HTTP call bridge.
    Crossbar,
    /// An OCS agent, by instance-id.
    Agent(String),
    /// A service container (non-OCS), by name.
    Service(String),
    /// A one-off container an `exec` step runs a command in (`exec: {image: ..}`), by its
    /// name in the run (`exec-step-3`), or `` `exec` steps `` for all of them.
    Exec(String),
}

impl Role {
    /// crossbar's logical name, spelled once.
    pub const CROSSBAR: &'static str = crate::plan::CROSSBAR;
    /// The registry agent's instance-id.
    pub const REGISTRY: &'static str = "registry";

    /// The agent `instance_id`.
    pub fn agent(instance_id: impl Into<String>) -> Self {
        Role::Agent(instance_id.into())
    }

    /// The registry agent.
    pub fn registry() -> Self {
        Role::Agent(Self::REGISTRY.into())
    }

    /// The logical name: `crossbar` or the instance-id.
    pub fn name(&self) -> &str {
        match self {
            Role::Crossbar => Self::CROSSBAR,
            Role::Agent(id) | Role::Service(id) | Role::Exec(id) => id,
        }
    }

    /// The instance-id, for an agent.
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            Role::Crossbar | Role::Service(_) | Role::Exec(_) => None,
            Role::Agent(id) => Some(id),
        }
    }

    /// Whether this is crossbar.
    pub fn is_crossbar(&self) -> bool {
        matches!(self, Role::Crossbar)
    }

    /// Whether this is the registry agent.
    pub fn is_registry(&self) -> bool {
        self.instance_id() == Some(Self::REGISTRY)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Crossbar => f.write_str(Self::CROSSBAR),
            Role::Agent(id) => write!(f, "agent {id}"),
            Role::Service(name) => write!(f, "service {name}"),
            Role::Exec(name) => write!(f, "one-off container {name}"),
        }
    }
}

/// A logical name: `crossbar` is crossbar, anything else an instance-id (a stack knows its
/// services' names: see `Stack::role_of`).
impl From<&str> for Role {
    fn from(name: &str) -> Self {
        if name == Self::CROSSBAR {
            Role::Crossbar
        } else {
            Role::Agent(name.to_string())
        }
    }
}

impl From<&String> for Role {
    fn from(name: &String) -> Self {
        Role::from(name.as_str())
    }
}

impl From<String> for Role {
    fn from(name: String) -> Self {
        if name == Self::CROSSBAR {
            Role::Crossbar
        } else {
            Role::Agent(name)
        }
    }
}

impl From<&Role> for Role {
    fn from(role: &Role) -> Self {
        role.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_display() {
        assert_eq!(Role::from("crossbar"), Role::Crossbar);
        assert_eq!(Role::Crossbar.to_string(), "crossbar");
        assert_eq!(Role::Crossbar.name(), "crossbar");
        let a = Role::from("fake1");
        assert_eq!(a, Role::agent("fake1"));
        assert_eq!(a.to_string(), "agent fake1");
        assert_eq!(a.name(), "fake1");
        assert_eq!(a.instance_id(), Some("fake1"));
        assert_eq!(Role::Crossbar.instance_id(), None);
        assert!(Role::from("registry".to_string()).is_registry());
        assert!(!a.is_registry() && !a.is_crossbar());
    }
}
