//! Service containers: non-OCS containers of a stack (a database, a web server) on the stack's
//! network, as a scenario describes them (compose-like keys), and the condition that says one
//! is ready. Pure data: `plan` names their containers, the runtime starts them (before
//! crossbar and the agents) and waits for their readiness.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::overrides::ImageRef;

/// How long a service may take to become ready when its `ready` gives no `timeout`.
pub const DEFAULT_SERVICE_READY: Duration = Duration::from_secs(60);

/// One service as the user describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Its name in the stack: the network alias other containers reach it by, the name its
    /// logs are filed under, what `exec: {in: ..}` and `logs:` steps name.
    pub name: String,
    /// Its image (overrides apply).
    pub image: ImageRef,
    /// Environment.
    pub environment: BTreeMap<String, String>,
    /// Overrides the image's CMD.
    pub command: Option<Vec<String>>,
    /// Overrides the image's ENTRYPOINT.
    pub entrypoint: Option<Vec<String>>,
    /// Container hostname (default: the name).
    pub hostname: Option<String>,
    /// More network aliases, besides the name.
    pub aliases: Vec<String>,
    /// Container ports published on the engine's host (none unless listed).
    pub ports: Vec<u16>,
    /// When it is ready (`None`: as soon as it runs).
    pub ready: Option<Readiness>,
}

/// A service's readiness condition and its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// What must hold.
    pub check: ReadyCheck,
    /// Until when.
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
}

/// What makes a service ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadyCheck {
    /// A line of its output matches this regular expression.
    Log(String),
    /// This container port accepts a TCP connection.
    Tcp(u16),
    /// An HTTP GET of `path` on `port` answers with `status`.
    Http {
        /// The container port.
        port: u16,
        /// The path (starting with `/`).
        path: String,
        /// The expected status code.
        status: u16,
    },
}

impl ReadyCheck {
    /// The container port the harness must reach to check, if any.
    pub fn port(&self) -> Option<u16> {
        match self {
            ReadyCheck::Log(_) => None,
            ReadyCheck::Tcp(p) | ReadyCheck::Http { port: p, .. } => Some(*p),
        }
    }
}

impl fmt::Display for ReadyCheck {
    /// `a log line matching /regex/`, `TCP port 8086 accepting connections`, `HTTP GET
    /// :8086/ping answering 204`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyCheck::Log(r) => write!(f, "a log line matching /{r}/"),
            ReadyCheck::Tcp(p) => write!(f, "TCP port {p} accepting connections"),
            ReadyCheck::Http { port, path, status } => {
                write!(f, "HTTP GET :{port}{path} answering {status}")
            }
        }
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_read_well() {
        let http = ReadyCheck::Http {
            port: 8086,
            path: "/ping".into(),
            status: 204,
        };
        assert_eq!(http.to_string(), "HTTP GET :8086/ping answering 204");
        assert_eq!(http.port(), Some(8086));
        assert_eq!(ReadyCheck::Log("x".into()).port(), None);
        assert_eq!(
            ReadyCheck::Tcp(5432).to_string(),
            "TCP port 5432 accepting connections"
        );
    }
}
