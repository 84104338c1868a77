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
    /// Its image (overrides apply); with `build`, the name the built image stands for.
    pub image: ImageRef,
    /// Built from this context (a compose file's `build`) instead of using `image`.
    pub build: Option<ServiceBuild>,
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
    /// Files and directories copied into its container (read-only) before it starts.
    pub files: Vec<crate::filespec::FileSpec>,
    /// The services that must be ready before it starts (`depends-on`).
    pub depends_on: Vec<String>,
    /// User, working directory, labels and healthcheck (from a compose file).
    pub container: ContainerOptions,
}

/// A service's build context (compose's `build`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBuild {
    /// The directory with the Dockerfile.
    pub context: std::path::PathBuf,
    /// The Dockerfile relative to the context; `Dockerfile` when `None`.
    pub dockerfile: Option<String>,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
}

/// What a compose file can say about any container (an agent's or a service's) beyond its
/// image, command and environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerOptions {
    /// The user the process runs as (`user: "9000"`).
    pub user: Option<String>,
    /// The working directory (`working_dir`).
    pub working_dir: Option<String>,
    /// Labels, besides the run's own (which win).
    pub labels: BTreeMap<String, String>,
    /// The engine's healthcheck of the container.
    pub healthcheck: Option<Healthcheck>,
}

/// A container's healthcheck, as the engine takes it (compose's `healthcheck`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// `["CMD", ...]` or `["CMD-SHELL", "..."]`; `["NONE"]` turns the image's own off.
    pub test: Vec<String>,
    /// Between two checks (the engine's default 30 s).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_secs")]
    pub interval: Option<Duration>,
    /// One check's limit (default 30 s).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_secs")]
    pub timeout: Option<Duration>,
    /// Failures in a row that make it unhealthy (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The grace period after the start (default 0).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_secs")]
    pub start_period: Option<Duration>,
    /// Between two checks during the grace period (default 5 s).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_secs")]
    pub start_interval: Option<Duration>,
}

impl Healthcheck {
    /// Whether it turns the check off (`disable: true`, `test: [NONE]`).
    pub fn disabled(&self) -> bool {
        self.test.first().map(String::as_str) == Some("NONE")
    }

    /// How long to wait for the container to be healthy: the grace period plus every
    /// retry's interval and timeout (the engine's defaults where not given), and never less
    /// than `floor`.
    pub fn deadline(&self, floor: Duration) -> Duration {
        let interval = self.interval.unwrap_or(Duration::from_secs(30));
        let timeout = self.timeout.unwrap_or(Duration::from_secs(30));
        let retries = self.retries.unwrap_or(3).max(1);
        let start = self.start_period.unwrap_or_default();
        (start + (interval + timeout) * retries).max(floor)
    }
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// Why services cannot be started in an order their `depends-on` allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartOrderError {
    /// A service depends on a name no service of the stack has.
    #[error("service {service:?} depends on {missing:?}, which is no service of the stack")]
    Unknown {
        /// The service.
        service: String,
        /// The name it gives.
        missing: String,
    },
    /// The dependencies go round in a circle.
    #[error("the services' depends-on go round in a circle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// The order services start in: the order given, except that each comes after the services
/// it depends on (each then starts once those are ready). A stable topological order.
pub fn start_order(services: &[ServiceSpec]) -> Result<Vec<usize>, StartOrderError> {
    let index = |name: &str| position(services, name);
    for s in services {
        if let Some(missing) = s.depends_on.iter().find(|d| index(d.as_str()).is_none()) {
            return Err(StartOrderError::Unknown {
                service: s.name.clone(),
                missing: missing.clone(),
            });
        }
    }
    let mut order: Vec<usize> = Vec::new();
    while order.len() < services.len() {
        let next = (0..services.len()).find(|i| {
            !order.contains(i)
                && services[*i]
                    .depends_on
                    .iter()
                    .all(|d| index(d.as_str()).is_some_and(|j| order.contains(&j)))
        });
        match next {
            Some(i) => order.push(i),
            None => {
                let left: Vec<usize> = (0..services.len()).filter(|i| !order.contains(i)).collect();
                return Err(StartOrderError::Cycle(cycle(services, &left)));
            }
        }
    }
    Ok(order)
}

/// The index of the service named `name`.
fn position(services: &[ServiceSpec], name: &str) -> Option<usize> {
    services.iter().position(|s| s.name == name)
}

/// A circle among the services `left` (each depends on one of them): its names, the first
/// one repeated at the end.
fn cycle(services: &[ServiceSpec], left: &[usize]) -> Vec<String> {
    let mut path: Vec<usize> = vec![left[0]];
    loop {
        let here = *path.last().expect("the path is never empty");
        let next = services[here]
            .depends_on
            .iter()
            .filter_map(|d| position(services, d))
            .find(|j| left.contains(j))
            .expect("a service left over depends on another one left over");
        if let Some(start) = path.iter().position(|p| *p == next) {
            let mut names: Vec<String> = path[start..]
                .iter()
                .map(|i| services[*i].name.clone())
                .collect();
            names.push(services[next].name.clone());
            return names;
        }
        path.push(next);
    }
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
    /// The engine reports the container healthy (its compose `healthcheck` passes).
    Healthy,
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
            ReadyCheck::Log(_) | ReadyCheck::Healthy => None,
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
            ReadyCheck::Healthy => write!(f, "its healthcheck passing"),
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

    fn service(name: &str, depends_on: &[&str]) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            image: ImageRef::parse("simonsobs/ocs:latest").unwrap(),
            build: None,
            environment: BTreeMap::new(),
            command: None,
            entrypoint: None,
            hostname: None,
            aliases: Vec::new(),
            ports: Vec::new(),
            ready: None,
            files: Vec::new(),
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
            container: ContainerOptions::default(),
        }
    }

    #[test]
    fn services_start_in_file_order_after_what_they_depend_on() {
        let s = [
            service("a", &["c"]),
            service("b", &[]),
            service("c", &[]),
            service("d", &["a", "b"]),
        ];
        let names: Vec<&str> = start_order(&s)
            .unwrap()
            .into_iter()
            .map(|i| s[i].name.as_str())
            .collect();
        assert_eq!(names, ["b", "c", "a", "d"]);
        assert_eq!(start_order(&[]).unwrap(), Vec::<usize>::new());
    }

    #[test]
    fn unknown_names_and_circles_are_errors() {
        let s = [service("a", &["x"])];
        assert_eq!(
            start_order(&s).unwrap_err().to_string(),
            "service \"a\" depends on \"x\", which is no service of the stack"
        );
        let s = [
            service("a", &[]),
            service("b", &["c"]),
            service("c", &["d"]),
            service("d", &["b"]),
        ];
        assert_eq!(
            start_order(&s).unwrap_err(),
            StartOrderError::Cycle(vec!["b".into(), "c".into(), "d".into(), "b".into()])
        );
        let s = [service("a", &["a"])];
        assert_eq!(
            start_order(&s).unwrap_err().to_string(),
            "the services' depends-on go round in a circle: a -> a"
        );
    }

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
