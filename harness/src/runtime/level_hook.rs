//! The log-level hook in every agent container (see [`crate::levels`]): its file, copied in
//! through the engine's archive API like any planned file, and its directory appended to the
//! `PYTHONPATH` the agent would have had (the plan's, else its image's).

use testcontainers::bollard::Docker;

use crate::levels::{self, HOOK, HOOK_DIR};
use crate::plan::{ContainerPlan, FileCopy, StackPlan};

/// Put the hook into the container plan of every agent of `plan`. An agent whose image the
/// engine cannot describe is left as it is (its `PYTHONPATH` is unknown, and replacing it
/// could hide the agent's own modules): its lines then have no level.
pub(crate) async fn add_level_hook(docker: &Docker, plan: &mut StackPlan) {
    for agent in &mut plan.agents {
        let container = &mut agent.container;
        let Ok(image) = docker.inspect_image(&container.image).await else {
            tracing::debug!(
                "no log levels for {}: its image {} cannot be inspected",
                agent.instance_id,
                container.image
            );
            continue;
        };
        let env = image.config.and_then(|c| c.env).unwrap_or_default();
        hook_into(container, levels::env_value(&env, "PYTHONPATH"));
    }
}

/// Add the hook's file and `PYTHONPATH` (with `image_path`, the image's own, kept) to
/// `container`.
fn hook_into(container: &mut ContainerPlan, image_path: Option<&str>) {
    let path = levels::python_path(
        container.env.get("PYTHONPATH").map(String::as_str),
        image_path,
    );
    container.env.insert("PYTHONPATH".into(), path);
    let file = format!("{HOOK_DIR}/sitecustomize.py");
    if !container.files.iter().any(|f| f.path == file) {
        let what = "the log-level hook of ocs-harness";
        container
            .files
            .push(FileCopy::new(&file, what, HOOK.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_is_added_once_and_keeps_the_python_path() {
        let mut c = ContainerPlan {
            role: "fake1".into(),
            name: "ocsh-x-fake1".into(),
            image: "simonsobs/ocs:latest".into(),
            hostname: None,
            env: Default::default(),
            cmd: None,
            entrypoint: None,
            labels: Default::default(),
            files: vec![],
            user: None,
            working_dir: None,
            healthcheck: None,
            wrap: vec![],
        };
        hook_into(&mut c, Some("/app"));
        hook_into(&mut c, Some("/app"));
        assert_eq!(c.env["PYTHONPATH"], format!("/app:{HOOK_DIR}"));
        assert_eq!(c.files.len(), 1);
        assert_eq!(c.files[0].path, format!("{HOOK_DIR}/sitecustomize.py"));
    }
}
