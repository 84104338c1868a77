//! Compose files as the stack: the seed's own files, merging, interpolation, and one test per
//! refusal (the rendered message is the interface).

use std::path::{Path, PathBuf};

use super::env::{parse_env_file, split_command};
use crate::plan::ImageSource;
use crate::scenario::{Scenario, ScenarioErrors};

const SCF: &str = "hub: {wamp_server: 'ws://crossbar:8001/ws', wamp_http: 'http://crossbar:8001/call', \
                   wamp_realm: test_realm, address_root: observatory}\n\
                   hosts:\n  ocs-docker:\n    agent-instances:\n      \
                   - {agent-class: BarebonesAgent, instance-id: barebones1, arguments: [--mode, idle]}\n";

/// A throwaway plugin directory, removed when dropped.
struct Plugin(PathBuf);

impl std::ops::Deref for Plugin {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway plugin directory holding `files`.
fn plugin(name: &str, files: &[(&str, &str)]) -> Plugin {
    let dir = std::env::temp_dir().join(format!("ocsh-compose-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (f, text) in files {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    Plugin(dir)
}

fn scenario(dir: &Path, stack: &str) -> Result<Scenario, String> {
    let text = format!("stack:\n{stack}steps:\n  - api: barebones1\n");
    Scenario::parse_all(&text, &dir.join("scenarios/s.yaml"), &|_| None).map_err(|e| {
        ScenarioErrors(e)
            .to_string()
            .replace(&dir.display().to_string(), "<dir>")
    })
}

const STACK: &str = "  compose: ../docker-compose.yml\n  site-config: ../default.yaml\n";

#[test]
fn the_seed_files_are_a_stack() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/agents/barebones");
    let text = "stack:\n  compose: docker-compose.yml\n  site-config: default.yaml\n";
    let s = Scenario::parse_all(text, &root.join("s.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("{}", ScenarioErrors(e)));
    assert_eq!(s.stack.agents.len(), 1);
    let a = &s.stack.agents[0];
    assert_eq!(a.instance_id, "barebones1");
    assert_eq!(a.hostname, "ocs-docker");
    assert_eq!(
        a.environment.get("LOGLEVEL").map(String::as_str),
        Some("info")
    );
    assert!(
        matches!(&a.image, ImageSource::Build { context, .. } if context.ends_with("barebones"))
    );
    assert_eq!(s.stack.crossbar_image.repository, "simonsobs/ocs-crossbar");
    assert!(s.site_config.is_some());
}

#[test]
fn files_merge_and_interpolate_as_compose_does() {
    let dir = plugin(
        "merge",
        &[
            ("default.yaml", SCF),
            (".env", "OCS_TAG=v0.11.3\n# a comment\nLEVEL='debug'\n"),
            (
                "docker-compose.yml",
                "services:\n  agent:\n    image: simonsobs/ocs:${OCS_TAG}\n    hostname: ocs-docker\n    \
                 environment: {INSTANCE_ID: barebones1, LOGLEVEL: info, MODE: '${MODE:-fast}'}\n    \
                 command: --agent 'my agent.py' --entrypoint main\n",
            ),
            (
                "docker-compose.override.yml",
                "services:\n  agent:\n    environment:\n      - LOGLEVEL=${LEVEL}\n    ports: ['8080:80']\n",
            ),
        ],
    );
    let s = scenario(
        &dir,
        "  compose: [../docker-compose.yml, ../docker-compose.override.yml]\n  site-config: ../default.yaml\n",
    )
    .unwrap();
    let a = &s.stack.agents[0];
    assert_eq!(
        a.image,
        ImageSource::Image(crate::overrides::ImageRef::parse("simonsobs/ocs:v0.11.3").unwrap())
    );
    assert_eq!(
        a.environment.get("LOGLEVEL").map(String::as_str),
        Some("debug")
    );
    assert_eq!(a.environment.get("MODE").map(String::as_str), Some("fast"));
    assert_eq!(
        a.command.as_deref().unwrap(),
        ["--agent", "my agent.py", "--entrypoint", "main"]
    );
}

#[test]
fn an_unsupported_key_is_an_error_in_the_compose_file() {
    let dir = plugin(
        "refused",
        &[
            ("default.yaml", SCF),
            (
                "docker-compose.yml",
                "services:\n  barebones1:\n    build: .\n    hostname: ocs-docker\n    privileged: true\n",
            ),
        ],
    );
    insta::assert_snapshot!(scenario(&dir, STACK).unwrap_err(), @r"
    error: compose key `privileged` of service `barebones1` is not supported by ocs-harness
     --> <dir>/docker-compose.yml:5:5
      |
    5 |     privileged: true
      |     ^^^^^^^^^^ not supported
      |
      = help: the harness uses build, image, environment, env_file, command, entrypoint, hostname, volumes, depends_on, user, working_dir, labels, healthcheck, profiles, extends, rewrites ports, expose, container_name, networks and accepts restart, logging, stop_grace_period, stop_signal, init, tty, stdin_open, pull_policy (docs/notes/compose.md says how); remove `privileged` (or keep it in a compose override file that the scenario does not name)
    ");
}

#[test]
fn volumes_are_copied_in_and_named_ones_are_an_error() {
    let dir = plugin(
        "volume",
        &[
            ("default.yaml", SCF),
            ("ocs-access.yaml", "passwords: []\n"),
            ("cal/gains.txt", "1\n"),
            (
                "docker-compose.yml",
                "services:\n  barebones1:\n    build: .\n    hostname: ocs-docker\n    \
                 entrypoint: dumb-init ocs-agent-cli\n    volumes:\n      \
                 - ./default.yaml:/config/default.yaml:ro\n      \
                 - ./ocs-access.yaml:/config/ocs-access.yaml:ro\n      \
                 - {type: bind, source: ./cal, target: /cal, read_only: true}\n      \
                 - ./data/:/data\n      - /scratch\n",
            ),
        ],
    );
    let s = scenario(&dir, STACK).unwrap_or_else(|e| panic!("{e}"));
    let a = &s.stack.agents[0];
    assert_eq!(
        a.entrypoint.as_deref().unwrap(),
        ["dumb-init", "ocs-agent-cli"]
    );
    let got: Vec<(&str, bool, bool)> = a
        .files
        .iter()
        .map(|f| (f.target.as_str(), f.source.is_some(), f.writable))
        .collect();
    assert_eq!(
        got,
        [
            ("/config/ocs-access.yaml", true, false),
            ("/cal", true, false),
            ("/data", false, true),
            ("/scratch", false, true),
        ]
    );

    let named = dir.join("docker-compose.yml");
    let text = std::fs::read_to_string(&named).unwrap();
    std::fs::write(&named, text.replace("- /scratch", "- cache:/scratch")).unwrap();
    let e = scenario(&dir, STACK).unwrap_err();
    assert!(e.contains("docker-compose.yml:11:9"), "{e}");
    assert!(e.contains("mounts the named volume `cache`"), "{e}");
    std::fs::write(&named, text.replace("./cal,", "./calibration,")).unwrap();
    let e = scenario(&dir, STACK).unwrap_err();
    assert!(e.contains("docker-compose.yml:9:9"), "{e}");
    assert!(
        e.contains("calibration read-only, but it does not exist"),
        "{e}"
    );
}

#[test]
fn a_service_naming_an_instance_the_site_config_does_not_list_is_an_error() {
    let dir = plugin(
        "unknown",
        &[
            ("default.yaml", SCF),
            (
                "docker-compose.yml",
                "services:\n  crossbar:\n    image: simonsobs/ocs-crossbar:v0.11.3\n    ports: ['8001:8001']\n  \
                 barebones1:\n    build: .\n    hostname: elsewhere\n  fake:\n    image: simonsobs/ocs:latest\n    \
                 environment: [INSTANCE_ID=fake-data9]\n",
            ),
        ],
    );
    let e = scenario(&dir, STACK).unwrap_err();
    assert!(e.contains("docker-compose.yml:5:3"), "{e}");
    assert!(e.contains("hostname `elsewhere`"), "{e}");
    assert!(e.contains("docker-compose.yml:8:3"), "{e}");
    assert!(
        e.contains(
            "service `fake` runs instance `fake-data9`, which the site config does not list"
        ),
        "{e}"
    );
}

/// The ocs documentation's InfluxDB service, with what compose adds to it.
const INFLUXDB: &str = "  influxdb:\n    image: influxdb:1.7\n    container_name: \"influxdb-1\"\n    \
    restart: always\n    ports: ['8086:8086']\n    environment:\n      - INFLUXDB_HTTP_LOG_ENABLED=false\n    \
    volumes:\n      - /srv/influxdb:/var/lib/influxdb\n      - ./default.yaml:/etc/site.yaml:ro\n    \
    user: root\n    working_dir: /var/lib/influxdb\n    labels: {org.example.team: daq}\n    \
    logging: {driver: json-file}\n    stop_grace_period: 30s\n    stop_signal: SIGINT\n    init: true\n    \
    tty: true\n    stdin_open: true\n    pull_policy: missing\n    \
    healthcheck: {test: influx -execute 'SHOW DATABASES', interval: 2s, retries: 10, start_period: 1m}\n";

#[test]
fn services_that_are_not_agents_are_the_stacks_services() {
    let agent = "  barebones1:\n    build: .\n    hostname: ocs-docker\n    user: \"9000\"\n    \
                 working_dir: /app\n    restart: always\n    labels: [org.example.role=agent]\n    \
                 healthcheck: {disable: true}\n    depends_on:\n      influxdb: {condition: service_healthy}\n      \
                 crossbar: {condition: service_started, required: true}\n    volumes: [/data:/data]\n  \
                 crossbar:\n    image: simonsobs/ocs-crossbar:latest\n  \
                 grafana:\n    image: grafana/grafana:latest\n    depends_on: [influxdb]\n";
    let compose = format!("services:\n{INFLUXDB}{agent}");
    let dir = plugin(
        "services",
        &[("default.yaml", SCF), ("docker-compose.yml", &compose)],
    );
    let s = scenario(&dir, STACK).unwrap_or_else(|e| panic!("{e}"));
    let a = &s.stack.agents[0];
    assert_eq!(a.container.user.as_deref(), Some("9000"));
    assert_eq!(a.container.working_dir.as_deref(), Some("/app"));
    assert_eq!(a.container.labels["org.example.role"], "agent");
    assert!(a.container.healthcheck.as_ref().unwrap().disabled());
    // a site's own writable directory starts empty, even where this machine has one
    assert_eq!(a.files.len(), 1);
    assert!(a.files[0].source.is_none() && a.files[0].writable);

    let names: Vec<&str> = s.stack.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["influxdb", "grafana"]);
    let db = &s.stack.services[0];
    assert_eq!(db.image.to_string(), "influxdb:1.7");
    assert_eq!(db.aliases, ["influxdb-1"]);
    assert!(db.ports.is_empty(), "host ports are not published");
    assert_eq!(db.environment["INFLUXDB_HTTP_LOG_ENABLED"], "false");
    assert_eq!(db.container.user.as_deref(), Some("root"));
    assert_eq!(
        db.container.working_dir.as_deref(),
        Some("/var/lib/influxdb")
    );
    assert_eq!(db.container.labels["org.example.team"], "daq");
    let files: Vec<(&str, bool, bool)> = db
        .files
        .iter()
        .map(|f| (f.target.as_str(), f.source.is_some(), f.writable))
        .collect();
    assert_eq!(
        files,
        [
            ("/var/lib/influxdb", false, true),
            ("/etc/site.yaml", true, false)
        ]
    );
    let h = db.container.healthcheck.as_ref().unwrap();
    assert_eq!(h.test, ["CMD-SHELL", "influx -execute 'SHOW DATABASES'"]);
    let ready = db.ready.as_ref().unwrap();
    assert_eq!(ready.check, crate::service::ReadyCheck::Healthy);
    // 1 min grace + 10 x (2 s + the default 30 s timeout)
    assert_eq!(ready.timeout, std::time::Duration::from_secs(60 + 10 * 32));
    assert_eq!(s.stack.services[1].depends_on, ["influxdb"]);
    assert!(db.build.is_none());
    assert!(
        s.stack.services[1].ready.is_none(),
        "no healthcheck: ready when it runs"
    );
}

#[test]
fn what_cannot_work_in_an_isolated_run_is_an_error_where_it_is_written() {
    let compose = "services:\n  barebones1:\n    build: .\n    hostname: ocs-docker\n  \
                   lakeshore:\n    image: simonsobs/ocs-lakeshore372-agent:latest\n    network_mode: \"host\"\n  \
                   web:\n    build: ./web\n    depends_on: [barebones1]\n";
    let dir = plugin(
        "isolated",
        &[("default.yaml", SCF), ("docker-compose.yml", compose)],
    );
    insta::assert_snapshot!(scenario(&dir, STACK).unwrap_err(), @r#"
    error: service `lakeshore` has `network_mode: host`, which an isolated run cannot give it
     --> <dir>/docker-compose.yml:7:5
      |
    7 |     network_mode: "host"
      |     ^^^^^^^^^^^^ not supported
      |
      = help: every container of a run is on the run's own network, reached by its service name (a run must not share the host's network or another container's); remove `network_mode`, or keep this service (e.g. an agent for hardware on the host's network) in a compose file the scenario does not name

    error: service `web` depends on `barebones1`, which the harness starts after the services
      --> <dir>/docker-compose.yml:10:18
       |
    10 |     depends_on: [barebones1]
       |                  ^^^^^^^^^^ starts later
       |
       = help: the harness starts the services first, then crossbar, then the agents: a service cannot wait for crossbar or an agent; remove this dependency

    2 errors in this scenario
    "#);
}

#[test]
fn keys_compose_would_refuse_are_errors_where_they_are_written() {
    let compose = "services:\n  barebones1:\n    build: .\n    hostname: ocs-docker\n  \
                   db:\n    image: influxdb:1.7\n    restart: sometimes\n    \
                   healthcheck: {interval: 5s}\n    depends_on:\n      web: {condition: service_completed_successfully}\n  \
                   web:\n    image: nginx:1\n";
    let dir = plugin(
        "refuse",
        &[("default.yaml", SCF), ("docker-compose.yml", compose)],
    );
    insta::assert_snapshot!(scenario(&dir, STACK).unwrap_err(), @r#"
    error: `restart: sometimes` is not a restart policy
     --> <dir>/docker-compose.yml:7:14
      |
    7 |     restart: sometimes
      |              ^^^^^^^^^ unknown policy
      |
      = help: compose knows `no`, `always`, `on-failure[:N]` and `unless-stopped`

    error: `healthcheck` has no `test`
     --> <dir>/docker-compose.yml:8:18
      |
    8 |     healthcheck: {interval: 5s}
      |                  ^ what shows it healthy?
      |
      = help: write e.g. `healthcheck: {test: [CMD, curl, -f, http://localhost:8086/ping], interval: 5s}`

    error: `depends_on` `condition: service_completed_successfully` is not supported by ocs-harness
      --> <dir>/docker-compose.yml:10:13
       |
    10 |       web: {condition: service_completed_successfully}
       |             ^^^^^^^^^ not supported
       |
       = help: the harness starts the services first (each once those it depends on are ready: healthy, when they have a healthcheck), then crossbar, then every agent, and waits until each agent has registered; write `condition: service_started` or `service_healthy`

    3 errors in this scenario
    "#);
}

#[test]
fn profiles_leave_services_out_unless_active() {
    let compose = "services:\n  barebones1:\n    build: .\n    hostname: ocs-docker\n  \
         db:\n    image: influxdb:1.7\n    profiles: [influx]\n  \
         debug:\n    image: busybox:1\n    profiles: [debug]\n    depends_on: [db]\n";
    let dir = plugin(
        "profiles",
        &[("default.yaml", SCF), ("docker-compose.yml", compose)],
    );
    let names =
        |s: &Scenario| -> Vec<String> { s.stack.services.iter().map(|s| s.name.clone()).collect() };
    let s = scenario(&dir, STACK).unwrap();
    assert!(names(&s).is_empty());
    let with = |profiles: &str| {
        format!("  compose: {{files: [../docker-compose.yml], profiles: [{profiles}]}}\n  site-config: ../default.yaml\n")
    };
    let s = scenario(&dir, &with("influx")).unwrap();
    assert_eq!(names(&s), ["db"]);
    // COMPOSE_PROFILES from the .env file counts too
    std::fs::write(dir.join(".env"), "COMPOSE_PROFILES=influx,debug\n").unwrap();
    let s = scenario(&dir, STACK).unwrap();
    assert_eq!(names(&s), ["db", "debug"]);
    std::fs::remove_file(dir.join(".env")).unwrap();
    let e = scenario(&dir, &with("debug")).unwrap_err();
    assert!(e.contains("docker-compose.yml:11:18"), "{e}");
    assert!(
        e.contains("`depends_on` names `db`, which runs only with profile influx"),
        "{e}"
    );
}

#[test]
fn extends_and_include_build_services_as_compose_does() {
    let dir = plugin(
        "extends",
        &[
            ("default.yaml", SCF),
            (
                "common.yml",
                "services:\n  ocs-base:\n    image: simonsobs/ocs:${OCS_TAG:-latest}\n    hostname: ocs-docker\n    \
                 user: \"9000\"\n    environment: {LOGLEVEL: debug, SITE: pole}\n",
            ),
            (
                "influxdb/compose.yaml",
                "services:\n  influxdb:\n    image: influxdb:1.7\n    volumes: [./conf:/etc/influxdb:ro]\n",
            ),
            ("influxdb/conf/influxdb.conf", "[http]\n"),
            (
                "docker-compose.yml",
                "include:\n  - influxdb/compose.yaml\nservices:\n  barebones1:\n    \
                 extends: {file: common.yml, service: ocs-base}\n    environment: {LOGLEVEL: info}\n  \
                 helper:\n    extends: influxdb\n    container_name: influx-copy\n  \
                 web:\n    build: {context: ./site/web, args: [MODE=ci]}\n",
            ),
        ],
    );
    let s = scenario(&dir, STACK).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        s.stack.registry,
        "no registry in the compose file: the built-in one"
    );
    let a = &s.stack.agents[0];
    assert_eq!(a.container.user.as_deref(), Some("9000"));
    assert_eq!(a.environment["LOGLEVEL"], "info");
    assert_eq!(a.environment["SITE"], "pole");
    let db = &s.stack.services[0];
    assert_eq!(db.name, "influxdb");
    // an included file's paths are relative to it
    assert!(
        db.files[0]
            .source
            .as_ref()
            .unwrap()
            .ends_with("influxdb/conf"),
        "{:?}",
        db.files
    );
    assert_eq!(s.stack.services[1].name, "helper");
    assert_eq!(s.stack.services[1].image.to_string(), "influxdb:1.7");
    // a built service: its context, and the name compose would tag it with
    let web = &s.stack.services[2];
    assert_eq!(web.image.to_string(), "web:built");
    let b = web.build.as_ref().unwrap();
    assert!(b.context.ends_with("site/web"), "{b:?}");
    assert_eq!(b.args["MODE"], "ci");

    std::fs::write(
        dir.join("docker-compose.yml"),
        "include: [nowhere.yml]\nservices:\n  barebones1:\n    extends: nobody\n",
    )
    .unwrap();
    let e = scenario(&dir, STACK).unwrap_err();
    assert!(e.contains("docker-compose.yml:1:11"), "{e}");
    assert!(e.contains("cannot read included compose file"), "{e}");
    assert!(e.contains("docker-compose.yml:4:14"), "{e}");
    assert!(
        e.contains("service `barebones1` extends `nobody`, which is not a service"),
        "{e}"
    );
}

#[test]
fn env_file_replaces_dot_env_and_required_variables_are_located() {
    let dir = plugin(
        "envfile",
        &[
            ("default.yaml", SCF),
            (".env", "OCS_TAG=from-dot-env\n"),
            ("ci.env", "OCS_TAG=from-ci\n"),
            (
                "docker-compose.yml",
                "services:\n  barebones1:\n    image: simonsobs/ocs:${OCS_TAG:?set OCS_TAG to the ocs release}\n    \
                 hostname: ocs-docker\n    environment: [UNSET_HERE, TAG=$OCS_TAG]\n",
            ),
        ],
    );
    let s = scenario(&dir, STACK).unwrap();
    assert_eq!(s.stack.agents[0].environment["TAG"], "from-dot-env");
    assert!(!s.stack.agents[0].environment.contains_key("UNSET_HERE"));
    let with_env_file =
        "  compose: {files: ../docker-compose.yml, env-file: ../ci.env}\n  site-config: ../default.yaml\n";
    let s = scenario(&dir, with_env_file).unwrap();
    assert_eq!(s.stack.agents[0].environment["TAG"], "from-ci");
    std::fs::remove_file(dir.join(".env")).unwrap();
    insta::assert_snapshot!(scenario(&dir, STACK).unwrap_err(), @r#"
    error: required variable `OCS_TAG` is not set: set OCS_TAG to the ocs release
     --> <dir>/docker-compose.yml:3:26
      |
    3 |     image: simonsobs/ocs:${OCS_TAG:?set OCS_TAG to the ocs release}
      |                          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ required here
      |
      = help: set `OCS_TAG` in the environment or in the `.env` file next to the first compose file (or an `env-file` of `compose`)
    "#);
}

#[test]
fn env_files_and_commands_split_as_compose_does() {
    let vars = parse_env_file("export A=1\nB=\"two words\"\nC=x # note\n\n# c\n");
    assert_eq!(vars.get("A").map(String::as_str), Some("1"));
    assert_eq!(vars.get("B").map(String::as_str), Some("two words"));
    assert_eq!(vars.get("C").map(String::as_str), Some("x"));
    assert_eq!(
        split_command(r#"a "b c" 'd e' f\ g"#).unwrap(),
        ["a", "b c", "d e", "f g"]
    );
    assert_eq!(split_command("a 'b"), None);
}

#[test]
fn a_missing_compose_file_is_one_error_and_the_steps_still_know_the_agents() {
    let dir = plugin("missing", &[("default.yaml", SCF)]);
    let e = scenario(
        &dir,
        "  compose: ../compose.yaml\n  site-config: ../default.yaml\n",
    )
    .unwrap_err();
    assert!(
        e.starts_with("error: cannot read compose file <dir>/compose.yaml"),
        "{e}"
    );
    assert!(!e.contains("no agent"), "{e}");
    let e = scenario(&dir, "  compose: []\n  site-config: ../default.yaml\n").unwrap_err();
    assert!(e.starts_with("error: `compose` names no file"), "{e}");
    assert!(!e.contains("no agent"), "{e}");
}

#[test]
fn a_compose_files_own_registry_is_the_stacks_registry() {
    let scf = SCF.replace(
        "      - {agent-class: BarebonesAgent",
        "      - {agent-class: RegistryAgent, instance-id: registry}\n      - {agent-class: BarebonesAgent",
    );
    let compose = "services:\n  barebones1:\n    build: .\n    hostname: ocs-docker\n  \
                   ocs-registry:\n    image: simonsobs/ocs:latest\n    hostname: ocs-docker\n    \
                   user: \"9000\"\n    environment: [INSTANCE_ID=registry]\n";
    let dir = plugin(
        "registry",
        &[("default.yaml", &scf), ("docker-compose.yml", compose)],
    );
    let s = scenario(&dir, STACK).unwrap_or_else(|e| panic!("{e}"));
    assert!(!s.stack.registry, "the built-in registry steps aside");
    assert_eq!(s.stack.agents[1].instance_id, "registry");
    let e = scenario(&dir, &format!("  registry: true\n{STACK}")).unwrap_err();
    assert!(e.contains("s.yaml:2:3"), "{e}");
    assert!(e.contains("the compose file runs its own registry"), "{e}");
}
