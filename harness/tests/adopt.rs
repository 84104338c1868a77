//! The README's "Adopting it in your plugin", followed by the built binary in a throwaway plugin
//! repository made as the ocs documentation makes one: a Python agent, a Dockerfile `FROM
//! simonsobs/ocs`, a compose file and a site config. `init` writes the scenarios and the
//! workflow, and with `--record` fills them from each agent's `get_api` and records the first
//! snapshot; `test --ci` then passes against it. A compose key
//! the harness cannot honour fails with an error pointing into the compose file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const AGENT: &str = r#""""A plugin's agent: one task that greets."""
import argparse

from ocs import ocs_agent, site_config


class HelloAgent:
    def __init__(self, agent):
        self.agent = agent
        self.log = agent.log

    @ocs_agent.param('name', default='world', type=str)
    def greet(self, session, params):
        """greet(name='world')

        **Task** - Say hello to ``name``.
        """
        session.data = {'greeting': 'hello ' + params['name']}
        return True, 'Greeted.'


def main(args=None):
    parser = argparse.ArgumentParser()
    args = site_config.parse_args(agent_class='HelloAgent', parser=parser, args=args)
    agent, runner = ocs_agent.init_site_agent(args)
    hello = HelloAgent(agent)
    agent.register_task('greet', hello.greet)
    runner.run(agent, auto_reconnect=True)


if __name__ == '__main__':
    main()
"#;

const DOCKERFILE: &str = r#"FROM simonsobs/ocs:latest
WORKDIR /app/agents/hello_agent/
COPY . .
ENTRYPOINT ["dumb-init", "ocs-agent-cli"]
CMD ["--agent", "hello_agent.py", "--entrypoint", "main"]
"#;

const COMPOSE: &str = r#"services:
  crossbar:
    image: simonsobs/ocs-crossbar:latest
    ports:
      - "127.0.0.1:8001:8001"
  hello1:
    build: .
    hostname: ocs-docker
    environment:
      - INSTANCE_ID=hello1
      - LOGLEVEL=info
    volumes:
      - ./default.yaml:/config/default.yaml:ro
"#;

const SCF: &str = r#"hub:
  wamp_server: ws://crossbar:8001/ws
  wamp_http: http://crossbar:8001/call
  wamp_realm: test_realm
  address_root: observatory
hosts:
  ocs-docker:
    'agent-instances': [
      {'agent-class': 'HelloAgent', 'instance-id': 'hello1', 'arguments': []},
    ]
"#;

/// A throwaway plugin repository, removed when dropped (also when a test fails).
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

/// A fresh plugin repository named `name` under the system's temporary directory.
fn plugin(name: &str) -> Plugin {
    // A stable name: the agent image is named after the build directory and tagged by its
    // content, so every run reuses one image instead of leaving one per process id behind.
    let dir = std::env::temp_dir().join(format!("ocsh-adopt-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
    for (file, text) in [
        ("hello_agent.py", AGENT),
        ("Dockerfile", DOCKERFILE),
        ("docker-compose.yml", COMPOSE),
        ("default.yaml", SCF),
    ] {
        std::fs::write(dir.join(file), text).expect("the plugin's files are written");
    }
    Plugin(dir)
}

fn harness(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ocs-harness"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the harness binary runs");
    eprintln!(
        "$ ocs-harness {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn init_record_then_test_pass_in_a_new_plugin() {
    let dir = plugin("pass");
    let init = harness(&dir, &["init", "--record"]);
    assert_eq!(init.status.code(), Some(0), "init --record failed");
    let printed = String::from_utf8_lossy(&init.stdout);
    assert!(printed.contains("ocs-harness test scenarios/"), "{printed}");
    let scenario = std::fs::read_to_string(dir.join("scenarios/hello1.yaml"))
        .expect("init wrote a scenario for the agent");
    assert!(
        scenario.contains("compose: ../docker-compose.yml"),
        "{scenario}"
    );
    assert!(
        scenario.contains("expect: {agent-class: HelloAgent, tasks: [greet]}"),
        "{scenario}"
    );
    assert!(scenario.contains("  - start: hello1.greet\n"), "{scenario}");
    assert!(
        dir.join("scenarios/snapshots/hello1.snap").is_file(),
        "init --record recorded the first snapshot"
    );
    let workflow = std::fs::read_to_string(dir.join(".github/workflows/ocs-harness.yml"))
        .expect("init wrote the workflow");
    assert!(
        workflow.contains("/.github/workflows/plugin.yml@"),
        "{workflow}"
    );

    let test = harness(&dir, &["test", "--ci", "scenarios/"]);
    assert_eq!(test.status.code(), Some(0), "test failed");
}

#[test]
fn an_unsupported_compose_key_fails_with_a_pointed_error() {
    let dir = plugin("refused");
    assert!(harness(&dir, &["init"]).status.success());
    let compose = COMPOSE.replace("    build: .\n", "    build: .\n    privileged: true\n");
    std::fs::write(dir.join("docker-compose.yml"), compose).expect("written");
    let check = harness(&dir, &["check", "scenarios/hello1.yaml"]);
    assert_eq!(check.status.code(), Some(2), "bad input exits 2");
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(
        err.contains("compose key `privileged` of service `hello1` is not supported"),
        "{err}"
    );
    assert!(err.contains("docker-compose.yml:8:5"), "{err}");
}

#[test]
fn init_without_compose_takes_the_agent_from_the_command_line() {
    let dir = plugin("build");
    std::fs::remove_file(dir.join("docker-compose.yml")).expect("removed");
    let none = harness(&dir, &["init"]);
    assert_eq!(none.status.code(), Some(2), "no compose file is bad input");
    assert!(String::from_utf8_lossy(&none.stderr).contains("--build DIR --agent-class C"));
    let init = harness(
        &dir,
        &[
            "init",
            "--build",
            ".",
            "--agent-class",
            "HelloAgent",
            "--instance-id",
            "hello1",
        ],
    );
    assert_eq!(init.status.code(), Some(0), "init --build failed");
    let scenario = std::fs::read_to_string(dir.join("scenarios/hello1.yaml")).expect("written");
    assert!(scenario.contains("agent-class: HelloAgent"), "{scenario}");
    assert!(scenario.contains("      build: ..\n"), "{scenario}");
    let again = harness(
        &dir,
        &[
            "init",
            "--build",
            ".",
            "--agent-class",
            "HelloAgent",
            "--instance-id",
            "hello1",
        ],
    );
    assert_eq!(
        again.status.code(),
        Some(2),
        "existing files are kept without --force"
    );
    let check = harness(&dir, &["check", "scenarios/hello1.yaml"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "the starter scenario is valid"
    );
}
