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
      = help: the harness uses build, image, environment, env_file, command, entrypoint, hostname, volumes, depends_on and rewrites ports, expose, container_name, networks; remove `privileged` (or keep it in a compose override file that the scenario does not name)
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
fn a_service_the_site_config_does_not_list_is_an_error() {
    let dir = plugin(
        "unknown",
        &[
            ("default.yaml", SCF),
            (
                "docker-compose.yml",
                "services:\n  crossbar:\n    image: simonsobs/ocs-crossbar:v0.11.3\n    ports: ['8001:8001']\n  \
                 barebones1:\n    build: .\n    hostname: elsewhere\n  db:\n    image: postgres:16\n",
            ),
        ],
    );
    let e = scenario(&dir, STACK).unwrap_err();
    assert!(e.contains("docker-compose.yml:5:3"), "{e}");
    assert!(e.contains("hostname `elsewhere`"), "{e}");
    assert!(e.contains("docker-compose.yml:8:3"), "{e}");
    assert!(
        e.contains("service `db` runs instance `db`, which the site config does not list"),
        "{e}"
    );
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
