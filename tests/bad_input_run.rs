//! Bad input that only Docker can reveal (a missing build context, a failing Dockerfile, an
//! image that is not there, an agent-class the image lacks, an SCF host that matches no
//! container, an unknown operation, which counts as a failure since the live agent is what
//! lacks it): each case in `bad-input/run/` lists the text its error must contain (`# expect:`
//! lines), and must leave no container or network behind.

use std::path::{Path, PathBuf};

use ocs_harness::testing::{docker, list_labelled, LABEL_SCENARIO};
use ocs_harness::{LaunchOptions, Scenario};
use rstest::rstest;

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_run_input(#[files("bad-input/run/*.yaml")] path: PathBuf) {
    let text = std::fs::read_to_string(&path).expect("case is readable");
    let expected: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .collect();
    assert!(
        !expected.is_empty(),
        "{}: no `# expect:` line",
        path.display()
    );
    let file = path.file_name().expect("file name").to_string_lossy();
    let shown = Path::new("tests/bad-input/run").join(&*file);

    let mut scenario = Scenario::from_str(&text, &path, &ocs_harness::testing::settings().env)
        .unwrap_or_else(|e| panic!("{e}"));
    scenario.path = shown;
    // A unique name, so the leak check below sees only this case's resources.
    scenario.name = format!("bad-{}-{}", scenario.name, std::process::id());
    let result = ocs_harness::run(&scenario, &LaunchOptions::new(&scenario.name)).await;
    // Either the run could not run (an error), or it ran and failed (a verdict: a step, or a
    // check of the whole run such as the clean shutdown); never a pass.
    let error = match result {
        Ok(report) => match &report.failure {
            Some(f) => f.to_string(),
            None => panic!("{}: expected an error, but the run passed", path.display()),
        },
        Err(e) => e.to_string(),
    };
    for want in &expected {
        assert!(
            error.contains(want),
            "{}: the error does not contain {want:?}; it is:\n{error}",
            path.display()
        );
    }

    let docker = docker().await.expect("a Docker engine");
    let (containers, networks) =
        list_labelled(&docker, &format!("{LABEL_SCENARIO}={}", scenario.name))
            .await
            .expect("list by label");
    assert!(
        containers.is_empty() && networks.is_empty(),
        "{}: left {} containers and {} networks behind",
        path.display(),
        containers.len(),
        networks.len()
    );
}
