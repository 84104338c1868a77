//! Scenario parsing: a full valid example, the reference example, one snapshot per error case
//! (the rendered message is the interface), matchers and variable expansion.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::expect::DEFAULT_LOGS_TIMEOUT;
use super::matcher::{MatchOp, Matcher};
use super::*;
use crate::ocs::{AgentApi, OpCode, Reply, ResponseCode, SessionStatus};
use crate::overrides::ImageRef;
use crate::plan::{AgentSpec, ImageSource};

const FILE: &str = "scenarios/test.yaml";

/// Variables visible to the scenarios of these tests (the real environment is not used).
fn vars(name: &str) -> Option<String> {
    match name {
        "OCSH_TEST_LEVEL" => Some("debug".into()),
        "OCSH_TEST_EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Scenario, Vec<ScenarioError>> {
    Scenario::parse_all(text, Path::new(FILE), &vars)
}

/// The first error, rendered.
fn err(text: &str) -> String {
    match parse(text) {
        Ok(s) => panic!("expected an error, got {s:#?}"),
        Err(errors) => errors[0].to_string(),
    }
}

/// A valid stack header; tests append steps or agents.
const STACK: &str = "\
stack:
  agents:
    - instance-id: barebones1
      agent-class: BarebonesAgent
      build: ../fixtures/agents/barebones
    - instance-id: fake1
      agent-class: FakeDataAgent
      image: simonsobs/ocs:latest
steps:
";

fn with_steps(steps: &str) -> String {
    format!("{STACK}{steps}")
}

const EXAMPLE: &str = r#"
name: barebones
description: The documented dockerized barebones agent.
stack:
  crossbar:
    image: simonsobs/ocs-crossbar:v0.7.0
    realm: my_realm
    address-root: obs
  registry: {image: "simonsobs/ocs:v0.12.1"}
  agents:
    - instance-id: barebones1
      agent-class: BarebonesAgent
      build: ../fixtures/agents/barebones
      arguments: [--mode, idle, --rate, 1.50]
      environment: {LOGLEVEL: info}
      command: --agent x.py
    - instance-id: fake1
      agent-class: FakeDataAgent
      build: {context: ./agents/fake, dockerfile: Dockerfile.dev, args: {V: 1}}
      environment: ["A=1", "B=x=y"]
      hostname: other-host
      command: [--agent, fake.py]
steps:
  - api: barebones1
    expect:
      agent-class: BarebonesAgent
      tasks: [print]
      processes: [count]
  - name: start the count
    start: barebones1.count
    params: {text: hi}
    expect: {status: ok, message: 'Started process "count".'}
  - status: barebones1.count
  - wait: barebones1.count
    timeout: 20s
    expect: {status: timeout}
  - stop: barebones1.count
  - abort: fake1.delay_task
  - until: barebones1.count
    timeout: 500ms
    expect: {session: {status: running, data: {value: {">=": 2}}}}
  - until: registry
    timeout: 2m
    expect: {data: {"observatory.barebones1": {expired: false}}}
  - logs: barebones1
    window: step
    contains: "count:0 Acquisition exited cleanly."
    regex: 'count:\d+ Status is now "done"\.'
    lines: ["Starting the count!", "count:0 Status is now \"done\"."]
    absent: [Traceback]
    allow: ["_ARRAY_API not found"]
"#;

#[test]
fn full_example_stack() {
    let s = parse(EXAMPLE).unwrap_or_else(|e| panic!("{}", ScenarioErrors(e)));
    assert_eq!(s.name, "barebones");
    assert_eq!(
        s.description.as_deref(),
        Some("The documented dockerized barebones agent.")
    );
    assert_eq!(s.site_config, None);

    let spec = s.stack_spec();
    let mut bare = AgentSpec::new(
        "barebones1",
        "BarebonesAgent",
        ImageSource::Build {
            context: "fixtures/agents/barebones".into(),
            dockerfile: None,
            args: BTreeMap::new(),
        },
    )
    .with_arguments(["--mode", "idle", "--rate", "1.50"])
    .with_env("LOGLEVEL", "info");
    bare.command = Some(vec!["--agent".into(), "x.py".into()]);
    let mut fake = AgentSpec::new(
        "fake1",
        "FakeDataAgent",
        ImageSource::Build {
            context: "scenarios/agents/fake".into(),
            dockerfile: Some("Dockerfile.dev".into()),
            args: BTreeMap::from([("V".into(), "1".into())]),
        },
    )
    .with_env("A", "1")
    .with_env("B", "x=y");
    fake.hostname = "other-host".into();
    fake.command = Some(vec!["--agent".into(), "fake.py".into()]);
    assert_eq!(
        spec,
        StackSpec {
            realm: "my_realm".into(),
            address_root: "obs".into(),
            bridge_path: "call".into(),
            crossbar_image: ImageRef::parse("simonsobs/ocs-crossbar:v0.7.0").unwrap(),
            registry: true,
            registry_image: ImageRef::parse("simonsobs/ocs:v0.12.1").unwrap(),
            agents: vec![bare, fake],
            hosted: Vec::new(),
            site_config: None,
            services: Vec::new(),
            devices: Vec::new(),
            exec_images: Vec::new(),
            image_set: None,
            code_coverage: None,
        }
    );
}

#[test]
fn full_example_steps() {
    let s = parse(EXAMPLE).unwrap_or_else(|e| panic!("{}", ScenarioErrors(e)));
    let kinds: Vec<&StepKind> = s.steps.iter().map(|s| &s.kind).collect();
    assert_eq!(s.steps.len(), 9);
    assert_eq!(s.steps[0].index, 1);
    assert_eq!(s.steps[0].line, 24);
    assert_eq!(s.steps[1].name.as_deref(), Some("start the count"));
    assert_eq!(
        kinds[0],
        &StepKind::Api {
            instance: "barebones1".into(),
            expect: ApiExpect {
                agent_class: Some("BarebonesAgent".into()),
                tasks: vec!["print".into()],
                processes: vec!["count".into()],
                feeds: vec![],
                pid: None,
                fields: None,
            },
            timeout: None,
        }
    );
    assert_eq!(
        kinds[1],
        &StepKind::Op {
            action: OpAction::Start,
            instance: "barebones1".into(),
            op: "count".into(),
            params: Some(json!({"text": "hi"})),
            timeout: None,
            expect: ReplyExpect {
                status: Some(ResponseCode::Ok),
                message: Some(Matcher::Equals(json!("Started process \"count\"."))),
                ..ReplyExpect::default()
            },
        }
    );
    assert!(matches!(
        kinds[3],
        StepKind::Op { action: OpAction::Wait, timeout: Some(t), .. } if *t == Duration::from_secs(20)
    ));
    assert!(matches!(
        kinds[5],
        StepKind::Op { action: OpAction::Abort, instance, op, .. } if instance == "fake1" && op == "delay_task"
    ));
    match kinds[6] {
        StepKind::Until {
            target: UntilTarget::Op { instance, op },
            timeout,
            expect,
        } => {
            assert_eq!((instance.as_str(), op.as_str()), ("barebones1", "count"));
            assert_eq!(*timeout, Duration::from_millis(500));
            let session = expect.session.as_ref().unwrap();
            assert_eq!(session.status, Some(SessionStatus::Running));
            assert_eq!(
                session.data,
                Some(Matcher::Object(vec![(
                    "value".into(),
                    Matcher::Ops(vec![MatchOp::Ge(2.0)])
                )]))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        kinds[7],
        StepKind::Until { target: UntilTarget::Registry, timeout, .. } if *timeout == Duration::from_secs(120)
    ));
    match kinds[8] {
        StepKind::Logs(l) => {
            assert_eq!(l.container, "barebones1");
            assert_eq!(l.window, LogWindow::Step);
            assert_eq!(l.timeout, DEFAULT_LOGS_TIMEOUT);
            assert_eq!(l.contains, vec!["count:0 Acquisition exited cleanly."]);
            assert_eq!(l.regex[0].as_str(), r#"count:\d+ Status is now "done"\."#);
            assert_eq!(l.lines.len(), 2);
            assert_eq!(l.absent, vec!["Traceback"]);
            assert_eq!(l.allow, vec!["_ARRAY_API not found"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn minimal_scenario_gets_defaults() {
    let s =
        parse("stack:\n  agents:\n    - {instance-id: a1, agent-class: X, image: simonsobs/ocs}\n")
            .unwrap();
    assert_eq!(s.name, "test");
    assert!(s.steps.is_empty());
    let spec = s.stack_spec();
    assert_eq!(spec, {
        let mut d = StackSpec::default();
        d.agents.push(AgentSpec::new(
            "a1",
            "X",
            ImageSource::Image(ImageRef::parse("simonsobs/ocs:latest").unwrap()),
        ));
        d
    });
    let s = parse("stack:\n  registry: false\n").unwrap();
    assert!(!s.stack.registry);
}

/// The book shows the reference file whole by including it (mdBook `{{#include}}`), so it is the
/// file as it is; no page may paste a copy that could go stale.
#[test]
fn the_book_includes_the_reference_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let page = std::fs::read_to_string(root.join("docs/src/reference.md")).unwrap();
    assert!(
        page.contains("{{#include ../../scenarios/reference.yaml.example}}"),
        "docs/src/reference.md must include scenarios/reference.yaml.example whole"
    );
    let reference = std::fs::read_to_string(root.join("scenarios/reference.yaml.example")).unwrap();
    let first = reference.lines().find(|l| l.starts_with("name:")).unwrap();
    for doc in [
        "README.md",
        "docs/src/reference.md",
        "docs/src/scenarios.md",
    ] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        assert!(
            !text.contains(first),
            "{doc} pastes the reference file; include it instead"
        );
    }
}

#[test]
fn reference_example_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/reference.yaml.example");
    let s =
        check_file(&path, &Default::default()).unwrap_or_else(|e| panic!("{}", ScenarioErrors(e)));
    assert_eq!(s.name, "reference");
    assert_eq!(s.stack.agents.len(), 3);
    assert_eq!(s.stack.agents[2].agent_class, "HostManager");
    assert_eq!(s.stack.hosted.len(), 1);
    assert_eq!(
        (s.stack.hosted[0].instance_id.as_str(), s.stack.hosted[0].up),
        ("fake2", false)
    );
    assert!(
        s.steps.iter().any(|st| !st.redact.is_empty()),
        "a step shows `redact`"
    );
    assert_eq!(
        s.stack.agents[1].arguments,
        ["--mode", "idle", "--num-channels", "2"]
    );
    match &s.stack.agents[0].image {
        ImageSource::Build { context, .. } => {
            assert!(context.is_absolute(), "{context:?}");
            assert!(
                context.ends_with("fixtures/agents/barebones"),
                "{context:?}"
            );
            assert!(!context.to_string_lossy().contains(".."), "{context:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.path, path);
    // every step kind appears
    let mut seen = std::collections::BTreeSet::new();
    for step in &s.steps {
        seen.insert(match &step.kind {
            StepKind::Api { .. } => "api",
            StepKind::Op { action, .. } => action.as_str(),
            StepKind::Until { .. } => "until",
            StepKind::Logs(_) => "logs",
            StepKind::Fault(_) => "fault",
            StepKind::Exits { .. } => "exits",
            StepKind::Fetch(_) => "fetch",
            StepKind::Exec(_) => "exec",
            StepKind::Call(_) => "call",
            StepKind::Feed(_) => "feed",
            StepKind::Device(_) => "device",
        });
    }
    assert_eq!(seen.len(), 15, "{seen:?}");
}

#[test]
fn build_paths_resolve_against_the_scenario_directory() {
    let text = "stack:\n  agents:\n    - {instance-id: a, agent-class: X, build: ../x/./y}\n    \
                - {instance-id: b, agent-class: X, build: /abs/z}\n    \
                - {instance-id: c, agent-class: X, build: {context: sub}}\n";
    let contexts = |file: &str| -> Vec<String> {
        Scenario::parse_all(text, Path::new(file), &vars)
            .unwrap()
            .stack
            .agents
            .iter()
            .map(|a| match &a.image {
                ImageSource::Build { context, .. } => context.display().to_string(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(
        contexts("/w/scenarios/s.yaml"),
        ["/w/x/y", "/abs/z", "/w/scenarios/sub"]
    );
    assert_eq!(
        contexts("scenarios/s.yaml"),
        ["x/y", "/abs/z", "scenarios/sub"]
    );
    assert_eq!(contexts("s.yaml"), ["../x/y", "/abs/z", "sub"]);
    // not checked for existence here
    assert!(!Path::new("/w/x/y").exists());
}

#[test]
fn site_config_replaces_classes_and_arguments() {
    let s = parse(
        "stack:\n  site-config: ../fixtures/scf.yaml\n  agents:\n    - {instance-id: a, image: x}\n",
    )
    .unwrap();
    assert_eq!(
        s.site_config.as_deref(),
        Some(Path::new("fixtures/scf.yaml"))
    );
    assert_eq!(s.stack.agents[0].agent_class, "");
    insta::assert_snapshot!(
        "site_config_forbids_arguments",
        err("stack:\n  site-config: scf.yaml\n  agents:\n    - instance-id: a\n      image: x\n      arguments: [--mode, idle]\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 1. YAML syntax

#[test]
fn syntax_unclosed_bracket() {
    insta::assert_snapshot!(
        "syntax_unclosed_bracket",
        err("stack:\n  agents: [\n    {instance-id: a\n")
    );
}

#[test]
fn syntax_tab_indentation() {
    insta::assert_snapshot!("syntax_tab", err("stack:\n\tagents: []\n"));
}

#[test]
fn syntax_bad_indentation() {
    insta::assert_snapshot!(
        "syntax_bad_indentation",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n     image: x\n")
    );
}

#[test]
fn syntax_duplicate_key() {
    insta::assert_snapshot!(
        "syntax_duplicate_key",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n      agent-class: Y\n      image: x\n")
    );
}

#[test]
fn syntax_two_documents_and_empty_file() {
    insta::assert_snapshot!("syntax_two_documents", err("stack: {}\n---\nstack: {}\n"));
    insta::assert_snapshot!("empty_file", err("# nothing yet\n"));
}

// ---------------------------------------------------------------------------------------------
// 2. Unknown keys

#[test]
fn unknown_key_with_suggestion() {
    insta::assert_snapshot!(
        "unknown_key_suggestion",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n      image: x\n      argumnts: [--mode, idle]\n")
    );
}

#[test]
fn unknown_key_lists_valid_keys() {
    insta::assert_snapshot!(
        "unknown_key_list",
        err("stack:\n  agents: []\n  volumes: [a:b]\n")
    );
}

#[test]
fn unknown_key_at_top_and_in_expectations() {
    insta::assert_snapshot!("unknown_key_top", err("stak:\n  agents: []\n"));
    insta::assert_snapshot!(
        "unknown_key_session",
        err(&with_steps(
            "  - status: fake1.acq\n    expect:\n      session: {opcode: RUNNING}\n"
        ))
    );
    insta::assert_snapshot!(
        "unknown_key_step",
        err(&with_steps("  - wait: fake1.acq\n    timout: 5s\n"))
    );
    insta::assert_snapshot!(
        "key_of_another_step_kind",
        err(&with_steps("  - status: fake1.acq\n    params: {a: 1}\n"))
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Wrong types

#[test]
fn wrong_type_arguments() {
    insta::assert_snapshot!(
        "wrong_type_arguments",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n      image: x\n      arguments: 3\n")
    );
}

#[test]
fn wrong_type_timeout() {
    insta::assert_snapshot!(
        "wrong_type_timeout",
        err(&with_steps("  - wait: fake1.acq\n    timeout: fast\n"))
    );
}

#[test]
fn wrong_type_agents_and_registry() {
    insta::assert_snapshot!("wrong_type_agents", err("stack:\n  agents: {a: 1}\n"));
    insta::assert_snapshot!("wrong_type_registry", err("stack:\n  registry: maybe\n"));
    insta::assert_snapshot!(
        "wrong_type_environment_value",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n      image: x\n      environment: {LOGLEVEL: [info]}\n")
    );
    insta::assert_snapshot!(
        "environment_value_missing",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n      image: x\n      environment:\n        LOGLEVEL:\n")
    );
    insta::assert_snapshot!(
        "environment_item_without_value",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n      image: x\n      environment: [LOGLEVEL]\n")
    );
}

#[test]
fn absurd_timeouts() {
    insta::assert_snapshot!(
        "absurd_timeout_negative",
        err(&with_steps("  - wait: fake1.acq\n    timeout: -5s\n"))
    );
    insta::assert_snapshot!(
        "absurd_timeout_zero",
        err(&with_steps(
            "  - until: fake1.acq\n    timeout: 0\n    expect: {status: ok}\n"
        ))
    );
    insta::assert_snapshot!(
        "absurd_timeout_too_long",
        err(&with_steps("  - wait: fake1.acq\n    timeout: 2h\n"))
    );
    // zero is fine for logs (check once)
    parse(&with_steps(
        "  - logs: fake1\n    timeout: 0s\n    absent: [Traceback]\n",
    ))
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 4. Missing required fields

#[test]
fn missing_instance_id() {
    insta::assert_snapshot!(
        "missing_instance_id",
        err("stack:\n  agents:\n    - agent-class: X\n      image: x\n")
    );
}

#[test]
fn missing_agent_class() {
    insta::assert_snapshot!(
        "missing_agent_class",
        err("stack:\n  agents:\n    - instance-id: a\n      image: x\n")
    );
}

#[test]
fn neither_build_nor_image() {
    insta::assert_snapshot!(
        "neither_build_nor_image",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n")
    );
}

#[test]
fn both_build_and_image() {
    insta::assert_snapshot!(
        "both_build_and_image",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n      build: ./a\n      image: x\n")
    );
}

#[test]
fn wait_without_timeout() {
    insta::assert_snapshot!(
        "wait_without_timeout",
        err(&with_steps(
            "  - wait: fake1.acq\n    expect: {status: ok}\n"
        ))
    );
}

#[test]
fn until_without_timeout_or_expect() {
    insta::assert_snapshot!(
        "until_without_timeout",
        err(&with_steps(
            "  - until: fake1.acq\n    expect: {status: ok}\n"
        ))
    );
    insta::assert_snapshot!(
        "until_without_expect",
        err(&with_steps("  - until: fake1.acq\n    timeout: 5s\n"))
    );
    insta::assert_snapshot!(
        "until_with_empty_expect",
        err(&with_steps(
            "  - until: fake1.acq\n    timeout: 5s\n    expect: {}\n"
        ))
    );
}

#[test]
fn missing_stack() {
    insta::assert_snapshot!("missing_stack", err("name: x\nsteps: []\n"));
}

// ---------------------------------------------------------------------------------------------
// 5./6. Instance-ids

#[test]
fn duplicate_instance_id() {
    insta::assert_snapshot!(
        "duplicate_instance_id",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n      image: x\n    - instance-id: a\n      agent-class: Y\n      image: x\n")
    );
}

#[test]
fn invalid_instance_id() {
    insta::assert_snapshot!(
        "invalid_instance_id",
        err("stack:\n  agents:\n    - instance-id: bare.bones\n      agent-class: X\n      image: x\n")
    );
}

#[test]
fn registry_as_instance_id() {
    insta::assert_snapshot!(
        "registry_instance_id",
        err("stack:\n  agents:\n    - instance-id: registry\n      agent-class: RegistryAgent\n      image: x\n")
    );
    // fine once the built-in registry is off
    parse("stack:\n  registry: false\n  agents:\n    - {instance-id: registry, agent-class: RegistryAgent, image: x}\n")
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 7. Step targets and kinds

#[test]
fn step_names_unknown_agent() {
    insta::assert_snapshot!(
        "unknown_agent",
        err(&with_steps("  - start: barebone1.count\n"))
    );
}

#[test]
fn step_target_without_op() {
    insta::assert_snapshot!(
        "target_without_op",
        err(&with_steps(
            "  - api: barebones1\n    expect: {processes: [count]}\n  - start: barebones1\n"
        ))
    );
    insta::assert_snapshot!(
        "api_target_with_op",
        err(&with_steps("  - api: barebones1.count\n"))
    );
    insta::assert_snapshot!(
        "logs_target_with_op",
        err(&with_steps("  - logs: barebones1.count\n    contains: x\n"))
    );
}

#[test]
fn unknown_step_kind() {
    insta::assert_snapshot!(
        "unknown_step_kind",
        err(&with_steps("  - strat: barebones1.count\n"))
    );
    insta::assert_snapshot!(
        "step_without_kind",
        err(&with_steps(
            "  - name: just a name\n    expect: {status: ok}\n"
        ))
    );
}

#[test]
fn step_with_two_kinds() {
    insta::assert_snapshot!(
        "two_step_kinds",
        err(&with_steps(
            "  - start: barebones1.count\n    stop: barebones1.count\n"
        ))
    );
}

// ---------------------------------------------------------------------------------------------
// 8. sleep

#[test]
fn sleep_is_not_offered() {
    insta::assert_snapshot!("sleep", err(&with_steps("  - sleep: 5\n")));
    assert!(err(&with_steps("  - sleep 5\n")).contains("there is no `sleep` step"));
}

// ---------------------------------------------------------------------------------------------
// 9. Bad matchers

#[test]
fn unknown_matcher_operator() {
    insta::assert_snapshot!(
        "unknown_operator",
        err(&with_steps(
            "  - status: fake1.acq\n    expect: {data: {value: {\"=>\": 2}}}\n"
        ))
    );
}

#[test]
fn regex_does_not_compile() {
    insta::assert_snapshot!(
        "bad_regex",
        err(&with_steps(
            "  - status: fake1.acq\n    expect: {message: {regex: 'count(\\d+'}}\n"
        ))
    );
}

#[test]
fn comparison_on_a_non_number() {
    insta::assert_snapshot!(
        "ge_on_string",
        err(&with_steps(
            "  - status: fake1.acq\n    expect: {data: {value: {\">=\": two}}}\n"
        ))
    );
}

#[test]
fn operators_mixed_with_keys() {
    insta::assert_snapshot!(
        "mixed_operator_keys",
        err(&with_steps(
            "  - status: fake1.acq\n    expect:\n      data: {name: {regex: '^a', containz: b}}\n"
        ))
    );
}

#[test]
fn bad_expectation_values() {
    insta::assert_snapshot!(
        "bad_reply_status",
        err(&with_steps(
            "  - status: fake1.acq\n    expect: {status: done}\n"
        ))
    );
    insta::assert_snapshot!(
        "bad_session_status",
        err(&with_steps(
            "  - status: fake1.acq\n    expect: {session: {status: succeeded}}\n"
        ))
    );
    insta::assert_snapshot!(
        "bad_op_code",
        err(&with_steps(
            "  - status: fake1.acq\n    expect: {session: {op_code: SUCEEDED}}\n"
        ))
    );
    insta::assert_snapshot!(
        "no_session_contradiction",
        err(&with_steps(
            "  - start: fake1.acq\n    expect: {no-session: true, data: {a: 1}}\n"
        ))
    );
}

// ---------------------------------------------------------------------------------------------
// Variables

#[test]
fn variables_expand_from_the_environment() {
    let env = crate::config::Env::from_vars(
        [
            ("OCSH_SCENARIO_TEST_ID", "fake9"),
            ("OCSH_SCENARIO_TEST_EMPTY", ""),
        ],
        None,
    );
    let text = "stack:\n  agents:\n    - instance-id: ${OCSH_SCENARIO_TEST_ID}\n      \
                agent-class: ${OCSH_SCENARIO_TEST_UNSET_CLASS:-FakeDataAgent}\n      \
                image: simonsobs/ocs:${OCSH_SCENARIO_TEST_EMPTY:-latest}\n      \
                environment: {PRICE: $$5}\n";
    let s = Scenario::from_str(text, Path::new(FILE), &env).unwrap();
    let a = &s.stack.agents[0];
    assert_eq!(a.instance_id, "fake9");
    assert_eq!(a.agent_class, "FakeDataAgent");
    assert_eq!(
        a.image,
        ImageSource::Image(ImageRef::parse("simonsobs/ocs:latest").unwrap())
    );
    assert_eq!(a.environment["PRICE"], "$5");
}

#[test]
fn unset_variable_is_an_error() {
    insta::assert_snapshot!(
        "unset_variable",
        err("stack:\n  agents:\n    - instance-id: a\n      agent-class: X\n      image: simonsobs/ocs:${OCSH_TEST_TAG}\n")
    );
}

#[test]
fn errors_in_expanded_values_point_at_the_reference() {
    // the value `bad id` comes from a default: the caret covers `${...}` in the file
    insta::assert_snapshot!(
        "error_in_expanded_value",
        err("stack:\n  agents:\n    - instance-id: ${OCSH_TEST_ID:-bad id}\n      agent-class: X\n      image: x\n")
    );
    // a later error on a line with an expansion keeps its column in the file
    let e = parse(
        "stack:\n  agents:\n    - {instance-id: ${OCSH_TEST_LEVEL}, agent-class: X, imag: x}\n",
    )
    .unwrap_err();
    assert_eq!((e[0].line(), e[0].column()), (3, 57));
    assert_eq!(e[0].message(), "unknown key `imag` in an agent");
}

#[test]
fn columns_count_characters() {
    let e = parse("stack:\n  agents:\n    - {agent-class: \"Ünïcødé\", instance-id: a, imag: x}\n")
        .unwrap_err();
    assert_eq!((e[0].line(), e[0].column()), (3, 48));
    assert!(
        e[0].to_string().ends_with(
            "3 |     - {agent-class: \"Ünïcødé\", instance-id: a, imag: x}\n  \
             |                                                ^^^^ did you mean `image`?"
        ),
        "{}",
        e[0]
    );
}

#[test]
fn registry_steps_need_the_registry() {
    let text = "stack:\n  registry: false\nsteps:\n  - until: registry\n    timeout: 5s\n    expect: {data: {}}\n";
    insta::assert_snapshot!("until_registry_without_registry", err(text));
}

#[test]
fn several_errors_are_collected_in_file_order() {
    let errors = parse(&with_steps(
        "  - start: nope.count\n  - wait: fake1.acq\n  - sleep: 1\n",
    ))
    .unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.line()).collect();
    assert_eq!(lines, [10, 11, 12], "{}", ScenarioErrors(errors));
}

// ---------------------------------------------------------------------------------------------
// Checks

fn reply(v: serde_json::Value) -> Reply {
    Reply::from_value(v).unwrap()
}

fn session(status: &str, success: serde_json::Value, data: serde_json::Value) -> serde_json::Value {
    let code = match (status, &success) {
        ("running", _) => 3,
        ("done", serde_json::Value::Bool(true)) => 5,
        ("done", _) => 6,
        _ => 2,
    };
    json!({
        "session_id": 0, "op_name": "count", "op_code": code, "status": status,
        "degraded": false, "success": success, "start_time": 1.0, "end_time": null,
        "data": data,
        "messages": [[1.0, "Status is now \"starting\"."], [1.1, "Status is now \"running\"."],
                     [2.0, "Acquisition exited cleanly."], [2.1, "Status is now \"done\"."]]
    })
}

fn expect_of(step_yaml: &str) -> ReplyExpect {
    let s = parse(&with_steps(step_yaml)).unwrap_or_else(|e| panic!("{}", ScenarioErrors(e)));
    match &s.steps[0].kind {
        StepKind::Op { expect, .. } | StepKind::Until { expect, .. } => expect.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reply_checks_report_every_mismatch() {
    let e = expect_of(
        "  - status: barebones1.count\n    expect:\n      status: ok\n      message: {regex: '^Session'}\n      session:\n        status: running\n        op_code: running\n        success: null\n        data: {value: {\">=\": 2}, name: {type: string}}\n",
    );
    let ok = reply(json!([
        0,
        "Session active.",
        session("running", json!(null), json!({"value": 3, "name": "x"}))
    ]));
    assert_eq!(e.check_reply(&ok), vec![]);
    let bad = reply(json!([
        -1,
        "Nope.",
        session("done", json!(true), json!({"value": 1}))
    ]));
    let text: Vec<String> = e
        .check_reply(&bad)
        .iter()
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!("reply_mismatches", text.join("\n"));
    let none = reply(json!([0, "No session active.", {}]));
    let text: Vec<String> = e
        .check_reply(&none)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        text,
        [
            "message: expected a string matching /^Session/, got \"No session active.\"",
            "session: expected a session, got none (reply: ok \"No session active.\")"
        ]
    );
}

#[test]
fn no_session_and_data_shortcut() {
    let e =
        expect_of("  - start: fake1.delay_task\n    expect: {status: error, no-session: true}\n");
    assert!(e
        .check_reply(&reply(json!([-1, "Param 'delay' failed", {}])))
        .is_empty());
    let with = reply(json!([
        -1,
        "Operation \"count\" already in progress.",
        session("running", json!(null), json!({}))
    ]));
    assert_eq!(
        e.check_reply(&with)[0].to_string(),
        "session: expected no session, got session 0 of `count` (RUNNING, status running)"
    );
    let e = expect_of("  - until: registry\n    timeout: 5s\n    expect: {data: {\"observatory.fake1\": {expired: false}}}\n");
    let r = reply(json!([
        0,
        "Session active.",
        session(
            "running",
            json!(null),
            json!({"observatory.fake1": {"expired": true}})
        )
    ]));
    assert_eq!(
        e.check_reply(&r)[0].to_string(),
        "session.data[\"observatory.fake1\"].expired: expected false, got true"
    );
}

#[test]
fn messages_checks() {
    let texts = [
        "Status is now \"starting\".",
        "Status is now \"running\".",
        "Status is now \"stopping\".",
        "Aborted after 0.0 seconds",
        "Status is now \"done\".",
    ];
    let exact = expect_of(
        "  - status: fake1.x\n    expect:\n      messages:\n        exact:\n          - Status is now \"starting\".\n          - Status is now \"running\".\n          - {regex: '^Exited after'}\n          - Status is now \"done\".\n",
    );
    let m = exact.messages.unwrap().check(&texts);
    insta::assert_snapshot!("messages_exact_diff", m[0].to_string());

    let ordered = expect_of(
        "  - status: fake1.x\n    expect:\n      messages:\n        ordered: [Status is now \"done\".,  {contains: Aborted}]\n        absent: [{contains: stopping}]\n",
    );
    let m = ordered.messages.unwrap().check(&texts);
    insta::assert_snapshot!(
        "messages_ordered_and_absent",
        m.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );

    let contains = expect_of(
        "  - status: fake1.x\n    expect: {messages: {contains: [{regex: 'Aborted after [0-9.]+ seconds'}, Status is now \"done\".]}}\n",
    );
    assert!(contains.messages.unwrap().check(&texts).is_empty());
}

#[test]
fn api_checks() {
    let raw = json!({
        "agent_class": "BarebonesAgent", "instance_hostname": "ocs-docker", "instance_pid": 7,
        "feeds": [["feed_name", {}]],
        "tasks": [["print", {"op_name": "print", "status": "no_history"},
                   {"op_type": "task", "blocking": true, "abortable": false, "min_privs": 1}]],
        "processes": [["count", {"op_name": "count", "status": "no_history"},
                       {"op_type": "process", "blocking": true, "min_privs": 1}]],
        "access_control": {}
    });
    let api = AgentApi::from_value(raw).unwrap();
    let good = ApiExpect {
        agent_class: Some("BarebonesAgent".into()),
        tasks: vec!["print".into()],
        processes: vec!["count".into()],
        feeds: vec!["feed_name".into()],
        pid: None,
        fields: None,
    };
    assert!(good.check_api(&api).is_empty());
    let bad = ApiExpect {
        agent_class: Some("FakeDataAgent".into()),
        tasks: vec!["count".into(), "nope".into()],
        processes: vec![],
        feeds: vec!["x".into()],
        pid: None,
        fields: None,
    };
    let text: Vec<String> = bad
        .check_api(&api)
        .iter()
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!("api_mismatches", text.join("\n"));
}

#[test]
fn logs_checks() {
    let s = parse(&with_steps(
        "  - logs: barebones1\n    contains: [Starting the count!, never]\n    regex: 'count:\\d+ Status'\n    lines: [Starting the count!, count:0 Status is now \"done\".]\n    absent: [Traceback]\n    allow: [harmless]\n",
    ))
    .unwrap();
    let StepKind::Logs(check) = &s.steps[0].kind else {
        panic!()
    };
    let good = [
        "Starting the count!",
        "count:0 Status is now \"running\".",
        "Traceback (harmless)",
        "count:0 Status is now \"done\".",
    ];
    let m = check.check(&good);
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0]
        .to_string()
        .starts_with("contains: expected a line containing \"never\""));
    let bad = [
        "count:0 Status is now \"done\".",
        "Starting the count!",
        "Traceback (most recent call last):",
    ];
    let text: Vec<String> = check.check(&bad).iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("logs_mismatches", text.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Matchers

fn matcher(yaml: &str) -> Matcher {
    let e = expect_of(&format!(
        "  - status: fake1.x\n    expect: {{data: {yaml}}}\n"
    ));
    e.session.unwrap().data.unwrap()
}

#[test]
fn matcher_operators() {
    let cases: &[(&str, serde_json::Value, bool)] = &[
        ("{v: {'>=': 2}}", json!({"v": 2}), true),
        ("{v: {'>=': 2}}", json!({"v": 1.5}), false),
        ("{v: {'>': 2, '<': 3}}", json!({"v": 2.5}), true),
        ("{v: {'<=': 0}}", json!({"v": "0"}), false),
        ("{v: {'==': [1, 2]}}", json!({"v": [1.0, 2]}), true),
        ("{v: {'!=': null}}", json!({"v": null}), false),
        ("{v: {regex: '^a.c$'}}", json!({"v": "abc"}), true),
        ("{v: {regex: '^a.c$'}}", json!({"v": 5}), false),
        ("{v: {contains: ell}}", json!({"v": "hello"}), true),
        ("{v: {contains: 3}}", json!({"v": [1, 2, 3]}), true),
        ("{v: {contains: 4}}", json!({"v": [1, 2, 3]}), false),
        ("{v: {type: int}}", json!({"v": 3}), true),
        ("{v: {type: int}}", json!({"v": 3.0}), false),
        ("{v: {type: float}}", json!({"v": 3.5}), true),
        ("{v: {type: number}}", json!({"v": 3}), true),
        ("{v: {type: list}}", json!({"v": []}), true),
        ("{v: {type: object}}", json!({"v": {}}), true),
        ("{v: {type: null}}", json!({"v": null}), true),
        ("{v: {exists: true}}", json!({"v": null}), true),
        ("{v: {exists: false}}", json!({}), true),
        ("{v: {exists: false}}", json!({"v": 1}), false),
        ("{v: {len: 2}}", json!({"v": "ab"}), true),
        ("{v: {len: 2}}", json!({"v": {"a": 1}}), false),
        ("{v: [1, {'>': 1}]}", json!({"v": [1, 5]}), true),
        ("{v: [1]}", json!({"v": [1, 5]}), false),
        ("{v: 2}", json!({"v": 2.0}), true),
        ("{v: yes}", json!({"v": "yes"}), true),
        ("{a: {b: 1}}", json!({"a": {"b": 1, "c": 2}, "d": 3}), true),
        ("{}", json!({"anything": 1}), true),
        ("{v: {some: {'>': 2}}}", json!({"v": [1, 3]}), true),
        ("{v: {some: {'>': 3}}}", json!({"v": [1, 3]}), false),
        ("{v: {some: 1}}", json!({"v": []}), false),
        (
            "{v: {some: {a: 1}}}",
            json!({"v": [{"a": 2}, {"a": 1, "b": 0}]}),
            true,
        ),
        ("{v: {some: 1}}", json!({"v": {"a": 1}}), false),
        ("{v: {every: {type: int}}}", json!({"v": [1, 2]}), true),
        ("{v: {every: {type: int}}}", json!({"v": [1, "2"]}), false),
        ("{v: {every: {type: int}}}", json!({"v": []}), true),
        (
            "{v: {by-key: {id: {a: {s: up}, b: {s: down}}}}}",
            json!({"v": [{"id": "b", "s": "down"}, {"id": "a", "s": "up"}]}),
            true,
        ),
        (
            "{v: {by-key: {id: {a: {s: up}}}}}",
            json!({"v": [{"id": "a", "s": "down"}]}),
            false,
        ),
        (
            "{v: {by-key: {n: {3: {}}}}}",
            json!({"v": [{"n": 3}]}),
            true,
        ),
        ("{v: {by-key: {id: {a: {}}}}}", json!({"v": []}), false),
        ("{v: {some: 1, len: 2}}", json!({"v": [1, 2]}), true),
    ];
    for (yaml, actual, want) in cases {
        let m = matcher(yaml);
        assert_eq!(m.matches(Some(actual)).is_ok(), *want, "{yaml} vs {actual}");
    }
}

#[test]
fn mismatch_texts() {
    let show = |yaml: &str, actual: serde_json::Value| {
        matcher(yaml)
            .matches(Some(&actual))
            .unwrap_err()
            .under("session.data")
            .to_string()
    };
    assert_eq!(
        show("{value: {'>=': 2}}", json!({"value": 1})),
        "session.data.value: expected >= 2, got 1"
    );
    assert_eq!(
        show("{value: {'>=': 2}}", json!({})),
        "session.data.value: expected >= 2, got nothing (no such key)"
    );
    assert_eq!(
        show("{a: [1, {b: x}]}", json!({"a": [1, {"b": "y"}]})),
        "session.data.a[1].b: expected \"x\", got \"y\""
    );
    assert_eq!(
        show("{a: [1]}", json!({"a": [1, 2]})),
        "session.data.a: expected a list of 1 items, got 2 items: [1,2]"
    );
    assert_eq!(
        show("{a: {b: 1}}", json!({"a": 3})),
        "session.data.a: expected an object with keys `b`, got 3"
    );
    assert_eq!(
        show("{s: {len: 3}}", json!({"s": "ab"})),
        "session.data.s: expected len 3, got len 2 (\"ab\")"
    );
    assert_eq!(
        show("{s: {regex: '^x'}}", json!({"s": "ab"})),
        "session.data.s: expected a string matching /^x/, got \"ab\""
    );
    assert_eq!(
        show("{s: {exists: false}}", json!({"s": 1})),
        "session.data.s: expected no such key, got 1"
    );
    assert_eq!(
        show(
            "{c: {by-key: {id: {a: {s: up}}}}}",
            json!({"c": [{"id": "a", "s": "down"}]})
        ),
        "session.data.c[id=a].s: expected \"up\", got \"down\""
    );
    assert_eq!(
        show(
            "{c: {by-key: {id: {z: {}}}}}",
            json!({"c": [{"id": "a"}, {"id": "b"}]})
        ),
        "session.data.c[id=z]: no element has id \"z\"; the elements' ids are `a`, `b`"
    );
    assert_eq!(
        show("{c: {some: {s: up}}}", json!({"c": [{"s": "down"}]})),
        "session.data.c: expected some element to match, but none of the 1 does; the first \
         element: s: expected \"up\", got \"down\"; the list is [{\"s\":\"down\"}]"
    );
    assert_eq!(
        show("{c: {every: {'>': 0}}}", json!({"c": [1, 0]})),
        "session.data.c[1]: expected > 0, got 0"
    );
    assert_eq!(
        show("{c: {some: 1}}", json!({"c": 1})),
        "session.data.c: expected a list with an element matching, got 1"
    );
}

#[test]
fn op_codes_parse_case_insensitively() {
    for (name, code) in [
        ("none", OpCode::None),
        ("Starting", OpCode::Starting),
        ("RUNNING", OpCode::Running),
        ("stopping", OpCode::Stopping),
        ("succeeded", OpCode::Succeeded),
        ("FAILED", OpCode::Failed),
        ("expired", OpCode::Expired),
        ("degraded", OpCode::Degraded),
    ] {
        let e = expect_of(&format!(
            "  - status: fake1.x\n    expect: {{session: {{op_code: {name}}}}}\n"
        ));
        assert_eq!(e.session.unwrap().op_code, Some(code));
    }
}

#[test]
fn from_file_reports_unreadable_files() {
    let e =
        Scenario::from_file(Path::new("/nonexistent/ocsh.yaml"), &Default::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("error: cannot read the scenario file: "),
        "{e}"
    );
    assert!(
        e.to_string().ends_with("\n --> /nonexistent/ocsh.yaml"),
        "{e}"
    );
}

#[test]
fn agent_files_and_entrypoint() {
    let text = "\
stack:
  agents:
    - instance-id: b1
      agent-class: BarebonesAgent
      image: simonsobs/ocs:latest
      entrypoint: [dumb-init, ocs-agent-cli]
      files:
        - ../fixtures/files/ocs-access.yaml
        - {source: ../fixtures/files/data, target: /data/in/, mode: \"0440\"}
        - {source: ../fixtures/files/data/readme.txt, target: /x, mode: 555}
steps:
  - api: b1
";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/t.yaml");
    let s = Scenario::parse_all(text, &path, &|_| None).unwrap_or_else(|e| panic!("{}", e[0]));
    let a = &s.stack.agents[0];
    assert_eq!(
        a.entrypoint.as_deref(),
        Some(&["dumb-init".to_string(), "ocs-agent-cli".to_string()][..])
    );
    let got: Vec<(&str, Option<u32>, bool)> = a
        .files
        .iter()
        .map(|f| {
            let exists = f.source.as_ref().is_some_and(|p| p.exists());
            (f.target.as_str(), f.mode, exists)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/config/ocs-access.yaml", None, true),
            ("/data/in/", Some(0o440), true),
            ("/x", Some(0o555), true),
        ]
    );
    let twice = text.replace("target: /x", "target: /data/in");
    let e = Scenario::parse_all(&twice, &path, &|_| None).unwrap_err();
    assert!(
        e[0].to_string()
            .contains("two `files` entries copy to `/data/in`"),
        "{}",
        e[0]
    );
    let bad_mode = text.replace("mode: 555", "mode: 9");
    let e = Scenario::parse_all(&bad_mode, &path, &|_| None).unwrap_err();
    assert!(e[0].to_string().contains("octal file mode"), "{}", e[0]);
}

#[test]
fn time_budgets_are_read_with_where_they_are_written() {
    let text = "\
stack:
  ready-within: 40s
  agents:
    - instance-id: barebones1
      agent-class: BarebonesAgent
      build: ../fixtures/agents/barebones
      ready-within: 20s
    - instance-id: fake1
      agent-class: FakeDataAgent
      image: simonsobs/ocs:latest
steps:
  - status: fake1.acq
    within: 500ms
  - wait: fake1.acq
    timeout: 20s
    within: 5s
  - api: fake1
";
    let s = parse(text).unwrap_or_else(|e| panic!("{}", ScenarioErrors(e)));
    let own = s.checks.ready_budget("barebones1").unwrap();
    assert_eq!(own.limit, Duration::from_secs(20));
    assert_eq!((own.at.line, own.at.column), (7, 21));
    // the stack's budget for an agent without its own
    let stack = s.checks.ready_budget("fake1").unwrap();
    assert_eq!(stack.limit, Duration::from_secs(40));
    assert_eq!(stack.at.line, 2);
    let within: Vec<Option<Duration>> = s.steps.iter().map(|s| s.within.map(|b| b.limit)).collect();
    assert_eq!(
        within,
        [
            Some(Duration::from_millis(500)),
            Some(Duration::from_secs(5)),
            None
        ]
    );
    assert_eq!(s.steps[1].within.unwrap().at.line, 16);
    // no budget written: none
    let s = parse(&with_steps("  - api: fake1\n")).unwrap();
    assert_eq!(s.checks.ready_budget("fake1"), None);
    assert_eq!(s.steps[0].within, None);
}

#[test]
fn shutdown_is_graceful_by_default_and_can_be_tuned_or_turned_off() {
    let base = "stack:\n  agents:\n    - {instance-id: a1, agent-class: X, image: simonsobs/ocs}\n";
    let s = parse(base).unwrap();
    assert!(s.checks.shutdown.graceful);
    assert_eq!(s.checks.shutdown.within, Duration::from_secs(10));
    assert_eq!(s.checks.shutdown.signal, None);
    let s = parse(&format!("shutdown: {{within: 20s, signal: int}}\n{base}")).unwrap();
    assert!(s.checks.shutdown.graceful);
    assert_eq!(s.checks.shutdown.within, Duration::from_secs(20));
    assert_eq!(s.checks.shutdown.signal.as_deref(), Some("SIGINT"));
    assert!(
        !parse(&format!("shutdown: kill\n{base}"))
            .unwrap()
            .checks
            .shutdown
            .graceful
    );
    let e = err(&format!("shutdown: gentle\n{base}"));
    assert!(
        e.contains("unknown shutdown `gentle`") && e.contains("`kill` removes"),
        "{e}"
    );
    let e = err(&format!("shutdown: {{within: 5s, signal: SIGFOO}}\n{base}"));
    assert!(e.contains("unknown signal `SIGFOO`"), "{e}");
    let e = err(&format!("shutdown: {{budget: 5s}}\n{base}"));
    assert!(e.contains("budget"), "{e}");
}

#[test]
fn a_service_is_built_from_its_own_dockerfile_and_takes_faults() {
    let text = "stack:\n  registry: false\n  services:\n    - name: device\n      build: ../fixtures/services/device\n  agents:\n    - {instance-id: a1, agent-class: X, image: simonsobs/ocs}\nsteps:\n  - fault: restart\n    container: device\n";
    let s = parse(text).unwrap();
    let b = s.stack.services[0].build.as_ref().expect("built");
    assert!(b.context.ends_with("fixtures/services/device"), "{b:?}");
    assert_eq!(s.stack.services[0].image.to_string(), "device:built");
    let e = err(&text.replace(
        "      build: ../fixtures/services/device\n",
        "      build: ../fixtures/services/device\n      image: x:1\n",
    ));
    assert!(
        e.contains("this service has both `build` and `image`"),
        "{e}"
    );
    let e = err(&text.replace("      build: ../fixtures/services/device\n", ""));
    assert!(
        e.contains("this service has neither `build` nor `image`"),
        "{e}"
    );
}

#[test]
fn a_step_on_crossbars_container_asks_for_a_crossbar_of_its_own() {
    let stack = "name: s\nstack:\n  agents:\n    - {instance-id: fake1, agent-class: FakeDataAgent, image: simonsobs/ocs:latest}\nsteps:\n";
    let on_agent = format!("{stack}  - api: fake1\n  - logs: fake1\n    contains: [x]\n");
    assert_eq!(parse(&on_agent).unwrap().own_crossbar(), None);
    let on_crossbar = format!("{stack}  - api: fake1\n  - logs: crossbar\n    contains: [x]\n");
    let why = parse(&on_crossbar).unwrap().own_crossbar();
    assert_eq!(
        why.as_deref(),
        Some("step 2 (line 7) reaches crossbar's container")
    );
    let exec = format!("{stack}  - exec: {{in: crossbar, cmd: \"true\"}}\n");
    assert!(parse(&exec).unwrap().own_crossbar().is_some());
}
