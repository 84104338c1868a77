//! `stack.compose`: the plugin's own compose files (see [`crate::compose`]) and its site config
//! as the stack. A service whose instance (its `INSTANCE_ID`, its command's `--instance-id`, or
//! else its name) is listed in the site config becomes an agent; one that names an instance
//! the site config does not list is an error; a crossbar service gives the run's crossbar its
//! image and is otherwise replaced; every other service is one of the stack's services
//! (started before crossbar, ready by its healthcheck when it has one). The volume that mounts
//! the site config is replaced by the generated one; other files and directories are copied
//! in. Services of a profile that is not active are left out, as compose leaves them out.
//!
//! `compose` is one path, a list, or `{files, env-file, profiles}`: `env-file` is compose's
//! `--env-file` (it replaces the `.env` next to the first file), `profiles` its `--profile`
//! (added to `COMPOSE_PROFILES`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::compose::{Compose, Service};
use crate::plan::{AgentSpec, FileSpec, ImageSource, StackSpec, CONFIG_DIR, SCF_PATH};
use crate::scenario::node::{Cx, Kind, Node};
use crate::scenario::AgentSource;
use crate::service::{ContainerOptions, Readiness, ReadyCheck, ServiceSpec, DEFAULT_SERVICE_READY};

use super::resolve_path;

/// An agent instance of the site config.
struct Instance {
    host: String,
    id: String,
}

/// What `compose` says: the files, the env files (compose's `--env-file`), the profiles.
struct ComposeArgs {
    paths: Vec<PathBuf>,
    env_files: Vec<PathBuf>,
    profiles: Vec<String>,
}

const ARGS_EXAMPLE: &str =
    "compose: {files: [../docker-compose.yml], env-file: ../ci.env, profiles: [influx]}";

/// `compose`: one path, a list, or `{files, env-file, profiles}`; paths relative to the
/// scenario `file`.
fn compose_args(cx: &mut Cx, node: &Node, file: &Path) -> Option<ComposeArgs> {
    if !matches!(node.kind, Kind::Map(_)) {
        let paths = compose_paths(cx, node, file)?;
        return Some(ComposeArgs {
            paths,
            env_files: Vec::new(),
            profiles: Vec::new(),
        });
    }
    let f = cx.fields(
        node,
        "`compose`",
        &["files", "env-file", "profiles"],
        ARGS_EXAMPLE,
    )?;
    let Some(files) = f.get("files") else {
        let e = cx
            .err(node.pos, "`compose` has no `files`", "which compose files?")
            .help(format!("write e.g. `{ARGS_EXAMPLE}`"));
        return cx.fail(e);
    };
    let paths = compose_paths(cx, files, file);
    let env_files = match f.get("env-file") {
        Some(v) => cx
            .strings(v, "`env-file`", "env-file: ../ci.env", true)
            .map(|n| n.iter().map(|n| resolve_path(file, n)).collect()),
        None => Some(Vec::new()),
    };
    let profiles = match f.get("profiles") {
        Some(v) => cx.strings(v, "`profiles`", "profiles: [influx]", true),
        None => Some(Vec::new()),
    };
    Some(ComposeArgs {
        paths: paths?,
        env_files: env_files?,
        profiles: profiles?,
    })
}

/// The compose files named by `node` (one path or a list), relative to the scenario `file`.
fn compose_paths(cx: &mut Cx, node: &Node, file: &Path) -> Option<Vec<PathBuf>> {
    let example = "compose: ../docker-compose.yml";
    let names = match &node.kind {
        Kind::Seq(_) => cx.strings(node, "`compose`", example, false)?,
        _ => vec![cx.nonempty_string(node, "`compose`", example)?],
    };
    if names.is_empty() {
        let e = cx
            .err(node.pos, "`compose` names no file", "empty list")
            .help(format!("write e.g. `{example}`"));
        return cx.fail(e);
    }
    Some(names.iter().map(|n| resolve_path(file, n)).collect())
}

/// The variables of the env files, or of the `.env` file next to the first compose file.
fn env_file_vars(cx: &mut Cx, node: &Node, args: &ComposeArgs) -> Option<BTreeMap<String, String>> {
    if args.env_files.is_empty() {
        let dir = args.paths[0].parent().unwrap_or(Path::new("."));
        return Some(crate::compose::dotenv(&dir.join(".env")).unwrap_or_default());
    }
    let mut vars = BTreeMap::new();
    for p in &args.env_files {
        match std::fs::read_to_string(p) {
            Ok(_) => vars.extend(crate::compose::dotenv(p).unwrap_or_default()),
            Err(err) => {
                let e = cx
                    .err(
                        node.pos,
                        format!("cannot read env file {}: {err}", p.display()),
                        "unreadable",
                    )
                    .help("`env-file` paths are relative to the scenario file");
                return cx.fail(e);
            }
        }
    }
    Some(vars)
}

/// Read and merge the compose files, with the variables of the environment and of the env
/// files; the compose files and the active profiles.
fn load(cx: &mut Cx, node: &Node, args: &ComposeArgs) -> Option<(Compose, Vec<String>)> {
    let paths = &args.paths;
    let mut files = Vec::new();
    for p in paths {
        match std::fs::read_to_string(p) {
            Ok(text) => files.push((p.clone(), text)),
            Err(err) => {
                let e = cx
                    .err(
                        node.pos,
                        format!("cannot read compose file {}: {err}", p.display()),
                        "unreadable",
                    )
                    .help("`compose` paths are relative to the scenario file");
                return cx.fail(e);
            }
        }
    }
    let vars = env_file_vars(cx, node, args)?;
    // As compose: the environment (the scenario's variables) wins over the env files.
    let environment = cx.lookup;
    let lookup = |name: &str| {
        environment
            .and_then(|get| get(name))
            .or_else(|| vars.get(name).cloned())
    };
    let mut profiles: Vec<String> = lookup("COMPOSE_PROFILES")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    profiles.extend(args.profiles.iter().cloned());
    match Compose::parse(&files, &lookup) {
        Ok(c) => Some((c, profiles)),
        Err(errors) => {
            cx.errors.extend(errors);
            None
        }
    }
}

/// The instances of the site config at `path` (`node` is the `site-config` value).
fn instances(cx: &mut Cx, node: &Node, path: &Path) -> Option<Vec<Instance>> {
    let problem = match std::fs::read_to_string(path) {
        Ok(text) => match serde_saphyr::from_str::<serde_json::Value>(&text) {
            Ok(scf) => {
                let mut out = Vec::new();
                let hosts = scf.get("hosts").and_then(|h| h.as_object());
                for (host, entry) in hosts.into_iter().flatten() {
                    let list = entry.get("agent-instances").and_then(|i| i.as_array());
                    for inst in list.into_iter().flatten() {
                        if let Some(id) = inst.get("instance-id").and_then(|i| i.as_str()) {
                            out.push(Instance {
                                host: host.clone(),
                                id: id.to_string(),
                            });
                        }
                    }
                }
                return Some(out);
            }
            Err(e) => format!("is not valid YAML: {e}"),
        },
        Err(e) => format!("cannot be read: {e}"),
    };
    let e = cx
        .err(
            node.pos,
            format!("site config {} {problem}", path.display()),
            "this site config",
        )
        .help("`site-config` is relative to the scenario file; with `compose` it is required");
    cx.fail(e)
}

/// The instance-id a service runs: `INSTANCE_ID`, `--instance-id` in its command, its name.
fn instance_of(s: &Service) -> String {
    named_instance(s).unwrap_or_else(|| s.name.clone())
}

/// The instance-id a service says it runs (`INSTANCE_ID`, `--instance-id` in its command).
fn named_instance(s: &Service) -> Option<String> {
    if let Some(id) = s.environment.get("INSTANCE_ID") {
        return Some(id.clone());
    }
    let cmd = s.command.as_deref().unwrap_or_default();
    cmd.iter()
        .position(|w| w == "--instance-id")
        .and_then(|i| cmd.get(i + 1))
        .cloned()
}

/// Whether `s` runs: it has no profile, or one of `active`.
fn enabled(s: &Service, active: &[String]) -> bool {
    s.profiles.is_empty() || s.profiles.iter().any(|p| active.contains(p))
}

/// Whether `s` is the crossbar service (replaced by the run's own).
fn is_crossbar(s: &Service) -> bool {
    s.name == "crossbar"
        || s.image
            .as_ref()
            .is_some_and(|i| i.repository.ends_with("ocs-crossbar"))
}

/// Decode `stack.compose` into the agents and services of `spec` (and crossbar's image).
pub(super) fn decode_compose(
    cx: &mut Cx,
    node: &Node,
    site_config: Option<(&Node, &Path)>,
    file: &Path,
    spec: &mut StackSpec,
) -> Option<()> {
    let Some((scf_node, scf)) = site_config else {
        return no_site_config(cx, node, file);
    };
    let loaded = compose_args(cx, node, file).and_then(|a| load(cx, node, &a));
    let Some((compose, active)) = loaded else {
        // the steps still know the site config's agents
        let mut quiet = Cx::new(cx.src);
        quiet.lookup = cx.lookup;
        if let Some(found) = instances(&mut quiet, scf_node, scf) {
            known(cx, node, found.into_iter().map(|i| i.id));
        }
        return None;
    };
    let instances = instances(cx, scf_node, scf)?;
    let mut ok = true;
    let mut services = Vec::new();
    for s in compose.services.iter().filter(|s| enabled(s, &active)) {
        if is_crossbar(s) {
            if let Some(image) = &s.image {
                spec.crossbar_image = image.clone();
            }
            continue;
        }
        let id = instance_of(s);
        let Some(inst) = instances.iter().find(|i| i.id == id) else {
            if named_instance(s).is_some() {
                cx.errors.push(not_listed(&compose, s, &id, &instances));
                ok = false;
            } else {
                services.push(s);
            }
            continue;
        };
        // known to the steps even when the service has errors
        known(cx, node, [inst.id.clone()]);
        match agent(cx, &compose, s, inst, scf) {
            Some(a) => spec.agents.push(a),
            None => ok = false,
        }
    }
    cx.compose_services
        .extend(services.iter().map(|s| s.name.clone()));
    for s in services {
        match service(cx, &compose, s, spec, &active) {
            Some(svc) => spec.services.push(svc),
            None => ok = false,
        }
    }
    ok &= depends_on(cx, &compose, &active);
    ok.then_some(())
}

/// The options of service `s`'s container.
fn options(s: &Service) -> ContainerOptions {
    ContainerOptions {
        user: s.user.clone(),
        working_dir: s.working_dir.clone(),
        labels: s.labels.clone(),
        healthcheck: s.healthcheck.clone(),
    }
}

/// Service `s`, neither crossbar nor an agent, as one of the stack's services.
fn service(
    cx: &mut Cx,
    compose: &Compose,
    s: &Service,
    spec: &StackSpec,
    active: &[String],
) -> Option<ServiceSpec> {
    let mut ok = s.refused.is_empty();
    cx.errors.extend(s.refused.iter().cloned());
    let taken = spec.agents.iter().map(|a| a.instance_id.as_str());
    let taken = taken.chain(spec.registry.then_some("registry"));
    if let Some(clash) = taken.clone().find(|t| *t == s.name) {
        let e = compose
            .error(s.at, format!("service `{}` has the name of agent `{clash}`", s.name), "name taken")
            .help("every container of a run is named by its service or instance-id; rename the service");
        cx.errors.push(e);
        ok = false;
    }
    let name_ok = s
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        let e = compose
            .error(s.at, format!("service name `{}` is not a host name", s.name), "invalid name")
            .help("other containers reach a service by its name: use letters, digits, '-', '_' and '.'");
        cx.errors.push(e);
        ok = false;
    }
    // As compose: a built service's image is tagged `image` when given, else by its name.
    let image = match (&s.build, &s.image) {
        (_, Some(i)) => Some(i.clone()),
        (Some(_), None) => {
            let tag = format!("{}:built", s.name.to_ascii_lowercase());
            let parsed = crate::overrides::ImageRef::parse(&tag);
            if parsed.is_err() {
                let e = compose
                    .error(
                        s.at,
                        format!("service `{}` is built but has no `image` to name it", s.name),
                        "no image name",
                    )
                    .help("add `image: <name:tag>` beside `build` (its name is not one an image can have)");
                cx.errors.push(e);
            }
            parsed.ok()
        }
        (None, None) => {
            let e = compose
                .error(
                    s.at,
                    format!("service `{}` has neither `build` nor `image`", s.name),
                    "no image",
                )
                .help("add `image: <name:tag>` or `build: <dir>`");
            cx.errors.push(e);
            None
        }
    };
    let build = s.build.as_ref().map(|b| crate::service::ServiceBuild {
        context: b.context.clone(),
        dockerfile: b.dockerfile.clone(),
        args: b.args.clone(),
    });
    let agents: Vec<&str> = spec.agents.iter().map(|a| a.instance_id.as_str()).collect();
    let mut depends = Vec::new();
    for (dep, at) in &s.depends_on {
        let other = compose.services.iter().find(|o| o.name == *dep);
        let starts_later =
            other.is_some_and(|o| is_crossbar(o) || agents.contains(&instance_of(o).as_str()));
        if starts_later {
            let e = compose
                .error(*at, format!("service `{}` depends on `{dep}`, which the harness starts after the services", s.name), "starts later")
                .help("the harness starts the services first, then crossbar, then the agents: a service cannot wait for crossbar or an agent; remove this dependency");
            cx.errors.push(e);
            ok = false;
        } else if other.is_some_and(|o| enabled(o, active)) {
            depends.push(dep.clone());
        }
    }
    let files = service_files(cx, compose, s);
    ok &= files.is_some();
    let ready = s
        .healthcheck
        .as_ref()
        .filter(|h| !h.disabled())
        .map(|h| Readiness {
            check: ReadyCheck::Healthy,
            timeout: h.deadline(DEFAULT_SERVICE_READY),
        });
    let svc = ServiceSpec {
        name: s.name.clone(),
        image: image?,
        build,
        environment: s.environment.clone(),
        command: s.command.clone(),
        entrypoint: s.entrypoint.clone(),
        hostname: s.hostname.clone(),
        aliases: s
            .container_name
            .iter()
            .filter(|c| **c != s.name)
            .cloned()
            .collect(),
        ports: Vec::new(),
        ready,
        files: files.unwrap_or_default(),
        depends_on: depends,
        container: options(s),
    };
    ok.then_some(svc)
}

/// What the volumes of service `s` (not an agent) copy into its container.
fn service_files(cx: &mut Cx, compose: &Compose, s: &Service) -> Option<Vec<FileSpec>> {
    let mut files = Vec::new();
    let mut ok = true;
    for v in &s.volumes {
        match volume(cx, compose, s, v, None) {
            Some(copy) => files.extend(copy),
            None => ok = false,
        }
    }
    ok.then_some(files)
}

/// The error for `compose` without `site-config`. The steps still know the compose file's
/// agents; its own problems can wait.
fn no_site_config(cx: &mut Cx, node: &Node, file: &Path) -> Option<()> {
    let mut quiet = Cx::new(cx.src);
    quiet.lookup = cx.lookup;
    let args = compose_args(&mut quiet, node, file);
    if let Some(c) = args.and_then(|a| load(&mut quiet, node, &a)) {
        let ids: Vec<String> =
            c.0.services
                .iter()
                .filter(|s| !is_crossbar(s))
                .map(instance_of)
                .collect();
        known(cx, node, ids);
    }
    let e = cx
        .err(
            node.pos,
            "`compose` needs `site-config` next to it",
            "which agents does this stack run?",
        )
        .help(
            "add `site-config: <file>`, the SCF your compose file mounts (e.g. \
             `site-config: ../default.yaml`): its instances say which services are agents",
        );
    cx.fail(e)
}

/// The error for service `s`, whose instance `id` the site config does not list.
fn not_listed(
    compose: &Compose,
    s: &Service,
    id: &str,
    instances: &[Instance],
) -> crate::scenario::ScenarioError {
    let listed: Vec<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    compose
        .error(
            s.at,
            format!(
                "service `{}` runs instance `{id}`, which the site config does not list",
                s.name
            ),
            "neither an agent of the site config nor crossbar",
        )
        .help(format!(
            "the site config lists {}; add `{id}` to it, or keep this service in a compose file \
             the scenario does not name",
            if listed.is_empty() {
                "no instances".to_string()
            } else {
                listed.join(", ")
            }
        ))
}

/// Make `ids` known to the steps as agents written at `node` (the `compose` value).
fn known(cx: &mut Cx, node: &Node, ids: impl IntoIterator<Item = String>) {
    for id in ids {
        let at = AgentSource {
            entry: node.pos.into(),
            image: node.pos.into(),
            packages: node.pos.into(),
        };
        cx.agent_sources.insert(id, at);
    }
}

/// The agent of service `s`, which runs `inst`.
fn agent(
    cx: &mut Cx,
    compose: &Compose,
    s: &Service,
    inst: &Instance,
    scf: &Path,
) -> Option<AgentSpec> {
    let mut ok = s.refused.is_empty();
    cx.errors.extend(s.refused.iter().cloned());
    let image = match (&s.build, &s.image) {
        (Some(b), _) => Some(ImageSource::Build {
            context: b.context.clone(),
            dockerfile: b.dockerfile.clone(),
            args: b.args.clone(),
        }),
        (None, Some(i)) => Some(ImageSource::Image(i.clone())),
        (None, None) => {
            let e = compose
                .error(s.at, format!("service `{}` has neither `build` nor `image`", s.name), "no image")
                .help("add `build: .` (the directory with the agent's Dockerfile) or `image: <name:tag>`");
            cx.errors.push(e);
            None
        }
    };
    let hostname = s.hostname.clone().unwrap_or_else(|| inst.host.clone());
    if hostname != inst.host {
        let e = compose
            .error(
                s.at,
                format!(
                    "service `{}` has hostname `{hostname}`, but the site config lists `{}` under \
                     host `{}`",
                    s.name, inst.id, inst.host
                ),
                "hostname and site config disagree",
            )
            .help(format!(
                "an agent finds its entry in the site config by its hostname: set `hostname: {}` \
                 or move the instance to host `{hostname}` in the site config",
                inst.host
            ));
        cx.errors.push(e);
        ok = false;
    }
    let files = agent_files(cx, compose, s, scf);
    ok &= files.is_some();
    let mut environment = s.environment.clone();
    environment.remove("INSTANCE_ID");
    let agent = AgentSpec {
        instance_id: inst.id.clone(),
        agent_class: String::new(),
        arguments: Vec::new(),
        image: image?,
        hostname,
        environment,
        command: s.command.clone(),
        entrypoint: s.entrypoint.clone(),
        files: files.unwrap_or_default(),
        packages: Vec::new(),
        container: options(s),
    };
    ok.then_some(agent)
}

/// What the volumes of service `s` copy into its container (`None` after an error).
fn agent_files(cx: &mut Cx, compose: &Compose, s: &Service, scf: &Path) -> Option<Vec<FileSpec>> {
    let mut files = Vec::new();
    let mut ok = true;
    for v in &s.volumes {
        match volume(cx, compose, s, v, Some(scf)) {
            Some(copy) => files.extend(copy),
            None => ok = false,
        }
    }
    ok.then_some(files)
}

/// A volume of an agent's service, as what is copied into its container: the site config's
/// mount is replaced by the generated SCF (`Some(None)`); a file or directory is copied in
/// (read-only with `:ro`; else a directory stays writable, and one that does not exist is
/// created empty, as compose creates it); an anonymous volume or a tmpfs is an empty writable
/// directory. A named volume, or a read-only source that does not exist, is an error (`None`).
fn volume(
    cx: &mut Cx,
    compose: &Compose,
    s: &Service,
    v: &crate::compose::Volume,
    scf: Option<&Path>,
) -> Option<Option<FileSpec>> {
    // (a service that is not an agent gets what it mounts, the site config too)
    let scf_dir = scf.and_then(Path::parent);
    let is_scf = v
        .source
        .as_deref()
        .is_some_and(|src| Some(src) == scf || Some(src) == scf_dir);
    let under_config = v.target == CONFIG_DIR || v.target.starts_with("/config/");
    let refuse = |cx: &mut Cx, message: String, help: &str| {
        let e = compose.error(v.at, message, "not supported").help(help);
        cx.errors.push(e);
        None
    };
    if is_scf && under_config {
        return Some(None);
    }
    if is_scf || (scf.is_some() && v.target.trim_end_matches('/') == SCF_PATH) {
        let message =
            format!(
            "service `{}` mounts `{}` at `{}`; the harness copies its generated site config to \
             {SCF_PATH}",
            s.name,
            v.source.as_deref().unwrap_or(Path::new("a volume")).display(),
            v.target
        );
        return refuse(cx, message, "mount the site config (or its directory) at /config (the ocs images' OCS_CONFIG_DIR), as the ocs documentation does, and nothing else there");
    }
    if !v.target.starts_with('/') {
        let message = format!(
            "service `{}` mounts at `{}`, which is not an absolute path",
            s.name, v.target
        );
        return refuse(
            cx,
            message,
            "write the path in the container, e.g. `./data:/data`",
        );
    }
    if let Some(name) = &v.named {
        let message = format!(
            "service `{}` mounts the named volume `{name}`, which ocs-harness cannot provide",
            s.name
        );
        return refuse(cx, message, "the harness copies files in and never shares volumes between containers: use a path (`./data:/data`, copied in) or an anonymous volume (`- /data`, an empty writable directory), and `fetch` steps to look at what the agent wrote");
    }
    bind(cx, s, v, refuse)
}

/// A bind mount or an anonymous volume of service `s`, as a copy.
fn bind(
    cx: &mut Cx,
    s: &Service,
    v: &crate::compose::Volume,
    refuse: impl Fn(&mut Cx, String, &str) -> Option<Option<FileSpec>>,
) -> Option<Option<FileSpec>> {
    let Some(source) = &v.source else {
        let empty = FileSpec {
            source: None,
            target: v.target.clone(),
            mode: None,
            writable: true,
        };
        return Some(Some(empty));
    };
    // A site's own writable directory (`/data:/data`, `/srv/influxdb:...`): an isolated run
    // starts with it empty, as on a new machine, and never copies a site's data in (a file,
    // such as `/etc/localtime`, is copied).
    let exists = source.exists() && !(v.host_absolute && !v.read_only && source.is_dir());
    if v.read_only && !exists {
        let message = format!(
            "service `{}` mounts {} read-only, but it does not exist",
            s.name,
            source.display()
        );
        return refuse(
            cx,
            message,
            "paths in a compose file are relative to it; create the file or fix the path",
        );
    }
    let spec = FileSpec {
        source: exists.then(|| source.clone()),
        target: v.target.clone(),
        mode: None,
        writable: !v.read_only && (source.is_dir() || !exists),
    };
    Some(Some(spec))
}

/// Every `depends_on` of a running service names a service of the compose files that runs
/// too. The order is the harness's own: the services first (each after those it depends on),
/// then crossbar, then every agent, each waited for until it has registered.
fn depends_on(cx: &mut Cx, compose: &Compose, active: &[String]) -> bool {
    let names: BTreeMap<&str, ()> = compose
        .services
        .iter()
        .map(|s| (s.name.as_str(), ()))
        .collect();
    let mut ok = true;
    for s in compose.services.iter().filter(|s| enabled(s, active)) {
        for (dep, at) in &s.depends_on {
            let off = compose
                .services
                .iter()
                .find(|o| o.name == *dep)
                .filter(|o| !enabled(o, active));
            if let Some(o) = off {
                let e = compose
                    .error(
                        *at,
                        format!(
                            "`depends_on` names `{dep}`, which runs only with profile {}",
                            o.profiles.join(" or ")
                        ),
                        "not started",
                    )
                    .help(format!(
                        "activate it (`compose: {{files: [...], profiles: [{}]}}` or \
                         `COMPOSE_PROFILES`), or remove the dependency",
                        o.profiles[0]
                    ));
                cx.errors.push(e);
                ok = false;
            } else if !names.contains_key(dep.as_str()) {
                let e = compose
                    .error(
                        *at,
                        format!("`depends_on` names `{dep}`, which is not a service"),
                        "no such service",
                    )
                    .help(format!(
                        "the services are {}",
                        compose
                            .services
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                cx.errors.push(e);
                ok = false;
            }
        }
    }
    ok
}
