//! The configuration a published ocs-crossbar image makes for itself. Its `run-crossbar.sh`
//! fills the image's own template from `OCS_ADDRESS_ROOT`, `OCS_REALM` and `OCS_PORT` when no
//! `config.json` is mounted; the harness mounts one, so for a published image it mounts the
//! image's own template filled the same way (valid for the crossbar that image contains),
//! not a config written for the recipe's crossbar 26.

use futures::StreamExt;
use testcontainers::bollard::models::ContainerCreateBody;
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;

/// Where ocs-crossbar images keep their template: the published image's, then the layout of
/// the harness's recipe.
const TEMPLATES: &[&str] = &[
    "/ocs/.crossbar/config-with-address.json.template",
    "/ocs/config.json.template",
];

/// Where the template is read: a container of which run, named what, labelled how.
pub struct Helper<'a> {
    /// The container's name (unique to the run).
    pub name: &'a str,
    /// The run's labels: the sweep, `clean` and the watchdog find it by them if the harness
    /// dies before removing it.
    pub labels: &'a std::collections::BTreeMap<String, String>,
}

/// The image's own template filled for `realm`, `address_root` and `port`, as its
/// `run-crossbar.sh` does (`sed s/{address_root}/.../g` and so on); `None` when the image
/// holds none of the known templates (then the harness's config is used). It is read out of
/// a created (never started) container, labelled with the run from its creation and removed
/// with its anonymous volumes whatever the reads found.
pub async fn own_config(
    docker: &Docker,
    helper: Helper<'_>,
    image: &str,
    (realm, address_root, port): (&str, &str, u16),
) -> Option<String> {
    let body = helper_body(image, helper.labels);
    let options = CreateContainerOptionsBuilder::new()
        .name(helper.name)
        .build();
    let id = docker.create_container(Some(options), body).await.ok()?.id;
    let mut found = None;
    for path in TEMPLATES {
        if let Some(text) = read_file(docker, &id, path).await {
            found = Some(fill(&text, realm, address_root, port));
            break;
        }
    }
    let remove = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    let _ = docker.remove_container(&id, Some(remove)).await;
    found
}

/// The helper container: never started, labelled with the run.
fn helper_body(
    image: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["true".into()]),
        labels: Some(labels.clone().into_iter().collect()),
        ..Default::default()
    }
}

/// One file of a created (not started) container, through the archive API.
async fn read_file(docker: &Docker, id: &str, path: &str) -> Option<String> {
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(id, Some(options));
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk.ok()?);
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).ok()?;
    Some(text)
}

/// The template with its placeholders replaced, like the image's script.
fn fill(template: &str, realm: &str, address_root: &str, port: u16) -> String {
    template
        .replace("{address_root}", address_root)
        .replace("{realm}", realm)
        .replace("{port}", &port.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn fills_like_run_crossbar_sh() {
        let t = r#"{"uri": "{address_root}.", "name": "{realm}", "port": {port}}"#;
        assert_eq!(
            super::fill(t, "test_realm", "observatory", 8001),
            r#"{"uri": "observatory.", "name": "test_realm", "port": 8001}"#
        );
    }

    #[test]
    fn the_helper_container_carries_the_run_s_labels() {
        let labels = std::collections::BTreeMap::from([(
            crate::plan::LABEL_RUN.to_string(),
            "r1".to_string(),
        )]);
        let body = super::helper_body("crossbar:1", &labels);
        assert_eq!(
            body.labels
                .unwrap()
                .get(crate::plan::LABEL_RUN)
                .map(String::as_str),
            Some("r1")
        );
    }
}
