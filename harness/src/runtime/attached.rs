//! Containers created already attached to the stack's network under their name and network
//! aliases, their files copied in, and only then started: the process never runs a moment
//! without its network (a reconnect after the start, the old way to give aliases, left a
//! service's first request with "Network is unreachable").
//!
//! testcontainers cannot set a create call's endpoint configuration (no network aliases:
//! testcontainers-rs #252), so the harness makes the create call itself and hands the created
//! container to testcontainers through its reuse lookup (by name and labels), which starts it
//! and follows its output like any other: every later step sees the usual handle. Removal
//! stays the run's one path, by label.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use testcontainers::bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, NetworkingConfig, PortBinding,
};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use testcontainers::bollard::{body_full, Docker};
use testcontainers::runners::AsyncRunner;
use testcontainers::{
    ContainerAsync, CopyDataSource, CopyTargetOptions, GenericImage, ImageExt, ReuseDirective,
};

use crate::overrides::ImageRef;
use crate::plan::ContainerPlan;
use crate::runtime::engine::Doing;
use crate::runtime::files;
use crate::runtime::logs::LogStore;
use crate::runtime::role::Role;
use crate::runtime::stack::{io_err, StackError};

/// The label testcontainers puts on its containers and looks for when it reuses one.
const MANAGED_BY: (&str, &str) = ("org.testcontainers.managed-by", "testcontainers");

/// How a container is reached: its aliases on the network (besides its name) and the
/// container ports published on the engine's host, on `publish_ip` (the address the harness
/// dials; see [`crate::runtime::engine::EngineHost::publish_ip`]).
pub(crate) struct Reach<'a> {
    pub aliases: &'a [String],
    pub ports: Vec<u16>,
    pub publish_ip: &'a str,
}

/// Create the container of `plan` attached to `network` as `reach` says, copy its files in,
/// then start it; the started container's handle, its output followed into `logs`.
pub(crate) async fn start_attached(
    docker: &Docker,
    plan: &ContainerPlan,
    network: &str,
    reach: &Reach<'_>,
    logs: &LogStore,
    run_dir: &Path,
) -> Result<ContainerAsync<GenericImage>, StackError> {
    let role = Role::from(&plan.role);
    let image = ImageRef::parse(&plan.image).map_err(|source| StackError::BadImage {
        role: role.clone(),
        source,
    })?;
    let options = CreateContainerOptionsBuilder::new()
        .name(&plan.name)
        .build();
    let id = docker
        .create_container(Some(options), create_body(plan, network, reach))
        .await
        .doing(format!("creating {role} ({})", plan.name))?
        .id;
    let mut copies = Vec::new();
    for file in &plan.files {
        copies.extend(files::copies(file, run_dir)?);
    }
    if !copies.is_empty() {
        let doing = format!("copying the files of {role} into its container");
        let archive = tar_of(&copies).map_err(io_err(doing.clone()))?;
        let options = UploadToContainerOptionsBuilder::new().path("/").build();
        docker
            .upload_to_container(&id, Some(options), body_full(archive.into()))
            .await
            .doing(doing)?;
    }
    let (name, tag) = image.name_and_tag();
    let container = GenericImage::new(name, tag)
        .with_container_name(&plan.name)
        .with_labels(plan.labels.clone())
        .with_log_consumer(logs.consumer(&plan.role))
        .with_reuse(ReuseDirective::Always)
        .start()
        .await
        .doing(format!("starting {role} ({})", plan.name))?;
    if container.id() != id {
        // Another container matched the lookup: never drive the wrong one.
        return Err(StackError::Io {
            doing: format!("starting {role} ({})", plan.name),
            source: std::io::Error::other(format!(
                "the engine handed back container {} for the one just created ({id})",
                container.id()
            )),
        });
    }
    Ok(container)
}

/// The create call's body: the plan's image, command, environment and labels, the network
/// endpoint with the aliases, the ports published on `reach.publish_ip` (ephemeral).
fn create_body(plan: &ContainerPlan, network: &str, reach: &Reach<'_>) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = plan.labels.clone().into_iter().collect();
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    let ports: Vec<String> = reach.ports.iter().map(|p| format!("{p}/tcp")).collect();
    let bindings = ports
        .iter()
        .map(|p| {
            let binding = PortBinding {
                host_ip: Some(reach.publish_ip.into()),
                host_port: Some(String::new()),
            };
            (p.clone(), Some(vec![binding]))
        })
        .collect();
    let endpoint = EndpointSettings {
        aliases: Some(reach.aliases.to_vec()),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(plan.image.clone()),
        hostname: plan.hostname.clone(),
        env: Some(plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        entrypoint: plan.entrypoint.clone(),
        cmd: plan.cmd.clone(),
        user: plan.user.clone(),
        working_dir: plan.working_dir.clone(),
        healthcheck: plan.healthcheck.as_ref().map(health_config),
        labels: Some(labels),
        exposed_ports: Some(ports),
        host_config: Some(HostConfig {
            network_mode: Some(network.into()),
            publish_all_ports: Some(false),
            port_bindings: Some(bindings),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_string(), endpoint)])),
        }),
        ..Default::default()
    }
}

/// A healthcheck as the engine takes it (durations in nanoseconds).
pub(crate) fn health_config(h: &crate::service::Healthcheck) -> HealthConfig {
    let nanos = |d: Option<std::time::Duration>| d.map(|d| d.as_nanos() as i64);
    HealthConfig {
        test: Some(h.test.clone()),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        retries: h.retries.map(i64::from),
        start_period: nanos(h.start_period),
        start_interval: nanos(h.start_interval),
    }
}

/// One tar archive of `copies`, each at its target (relative to `/`) with its mode: a file's
/// bytes, a host file, or a host directory with what it holds.
pub(crate) fn tar_of(copies: &[(CopyTargetOptions, CopyDataSource)]) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(true);
    for (target, source) in copies {
        let path = target.target().trim_start_matches('/');
        match source {
            CopyDataSource::Data(data) => {
                append(&mut archive, path, target.mode(), data.as_slice())?;
            }
            CopyDataSource::File(host) if host.is_dir() => {
                archive.append_dir_all(path, host)?;
            }
            CopyDataSource::File(host) => {
                let file = std::fs::File::open(host)?;
                let len = file.metadata()?.len();
                let mode = match target.mode() {
                    Some(m) => Some(m),
                    None => Some(host_mode(host)?),
                };
                append(&mut archive, path, mode, file.take(len))?;
            }
        }
    }
    archive.into_inner()
}

fn append(
    archive: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: Option<u32>,
    data: impl Read,
) -> std::io::Result<()> {
    let mut data = data;
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode.unwrap_or(0o644));
    header.set_mtime(0);
    header.set_cksum();
    archive.append_data(&mut header, path, bytes.as_slice())
}

#[cfg(unix)]
fn host_mode(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn host_mode(_: &Path) -> std::io::Result<u32> {
    Ok(0o644)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn plan() -> ContainerPlan {
        ContainerPlan {
            role: "web".into(),
            name: "ocsh-r1-web".into(),
            image: "mirror:1".into(),
            hostname: Some("web".into()),
            env: BTreeMap::from([("A".into(), "1".into())]),
            cmd: Some(vec!["serve".into()]),
            entrypoint: Some(vec!["python3".into(), "-u".into()]),
            wrap: Vec::new(),
            labels: BTreeMap::from([("org.ocs-harness.run".into(), "r1".into())]),
            files: Vec::new(),
            user: Some("9000".into()),
            working_dir: Some("/app".into()),
            healthcheck: Some(crate::service::Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                interval: Some(std::time::Duration::from_secs(2)),
                timeout: None,
                retries: Some(5),
                start_period: None,
                start_interval: None,
            }),
        }
    }

    #[test]
    fn the_create_call_attaches_the_network_with_the_aliases() {
        let aliases = vec!["web".to_string(), "www".to_string()];
        let reach = Reach {
            aliases: &aliases,
            ports: vec![8080],
            publish_ip: "127.0.0.1",
        };
        let body = create_body(&plan(), "ocsh-r1", &reach);
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["ocsh-r1"].aliases.as_deref(), Some(&aliases[..]));
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("ocsh-r1"));
        assert_eq!(host.publish_all_ports, Some(false));
        let bound = &host.port_bindings.unwrap()["8080/tcp"];
        assert_eq!(
            bound.as_ref().unwrap()[0].host_ip.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(body.exposed_ports.unwrap(), ["8080/tcp"]);
        assert_eq!(body.entrypoint.unwrap(), ["python3", "-u"]);
        assert_eq!(body.cmd.unwrap(), ["serve"]);
        assert_eq!(body.env.unwrap(), ["A=1"]);
        assert_eq!(body.user.as_deref(), Some("9000"));
        assert_eq!(body.working_dir.as_deref(), Some("/app"));
        let health = body.healthcheck.unwrap();
        assert_eq!(health.test.unwrap(), ["CMD", "true"]);
        assert_eq!(health.interval, Some(2_000_000_000));
        assert_eq!(health.retries, Some(5));
        let labels = body.labels.unwrap();
        assert_eq!(labels["org.ocs-harness.run"], "r1");
        assert_eq!(labels[MANAGED_BY.0], MANAGED_BY.1);
    }

    #[test]
    fn the_archive_holds_each_copy_at_its_target_with_its_mode() {
        let dir = std::env::temp_dir().join(format!("ocsh-attached-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        let host = dir.join("host.txt");
        std::fs::write(&host, "from the host").unwrap();
        let copies = vec![
            (
                CopyTargetOptions::new("/config/default.yaml").with_mode(0o644),
                CopyDataSource::Data(b"hub: {}".to_vec()),
            ),
            (
                CopyTargetOptions::new("/data/in.txt").with_mode(0o444),
                CopyDataSource::File(host.clone()),
            ),
            (
                CopyTargetOptions::new("/work"),
                CopyDataSource::File(dir.join("empty")),
            ),
        ];
        let bytes = tar_of(&copies).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mode = entry.header().mode().unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            seen.push((path, mode, text));
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            seen[0],
            ("config/default.yaml".into(), 0o644, "hub: {}".into())
        );
        assert_eq!(
            seen[1],
            ("data/in.txt".into(), 0o444, "from the host".into())
        );
        assert!(seen[2].0.trim_end_matches('/') == "work", "{seen:?}");
    }
}
