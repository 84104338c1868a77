//! The configuration a published ocs-crossbar image makes for itself. Its `run-crossbar.sh`
//! fills the image's own template from `OCS_ADDRESS_ROOT`, `OCS_REALM` and `OCS_PORT` when no
//! `config.json` is mounted; the harness mounts one, so for a published image it mounts the
//! image's own template filled the same way (valid for the crossbar that image contains),
//! not a config written for the recipe's crossbar 26.

use futures::StreamExt;
use testcontainers::bollard::models::ContainerCreateBody;
use testcontainers::bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;

/// Where ocs-crossbar images keep their template: the published image's, then the layout of
/// the harness's recipe.
const TEMPLATES: &[&str] = &[
    "/ocs/.crossbar/config-with-address.json.template",
    "/ocs/config.json.template",
];

/// The image's own template filled for `realm`, `address_root` and `port`, as its
/// `run-crossbar.sh` does (`sed s/{address_root}/.../g` and so on); `None` when the image
/// holds none of the known templates (then the harness's config is used).
pub async fn own_config(
    docker: &Docker,
    image: &str,
    realm: &str,
    address_root: &str,
    port: u16,
) -> Option<String> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["true".into()]),
        ..Default::default()
    };
    let id = docker.create_container(None, body).await.ok()?.id;
    let mut found = None;
    for path in TEMPLATES {
        if let Some(text) = read_file(docker, &id, path).await {
            found = Some(fill(&text, realm, address_root, port));
            break;
        }
    }
    let remove = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = docker.remove_container(&id, Some(remove)).await;
    found
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
}
