//! `ocs-harness clean --images`: the images the harness built and no longer needs. Every image
//! it builds carries `org.ocs-harness.managed`; agent images (`ocs-harness/agent-*`), images
//! with `packages:` (`ocs-harness/with-packages`) and untagged leftovers pile up with every
//! change of an agent or a scenario, while the recipe base images (`ocs-harness/os`, `ocs`,
//! `crossbar`, ...) are what the next run needs and take minutes to make again: they are removed
//! only when asked (`recipes`). An image a container uses (running or not) is never removed.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
};
use testcontainers::bollard::Docker;

use crate::clock::unix_now_secs;
use crate::runtime::engine::{Doing, EngineError};

/// Which built images `clean --images` removes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageRule {
    /// Only images built longer ago than this.
    pub older_than: Duration,
    /// The recipe base images too.
    pub recipes: bool,
}

/// What was removed (and kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The names (or ids) removed, with their sizes in bytes.
    pub removed: Vec<(String, u64)>,
    /// Harness images kept, and why, one line each.
    pub kept: Vec<String>,
}

impl Pruned {
    /// Bytes freed (the images' own sizes; layers shared with kept images stay).
    pub fn bytes(&self) -> u64 {
        self.removed.iter().map(|(_, b)| b).sum()
    }
}

/// Whether a harness image named `tags` is a derived one (an agent image, one with packages,
/// or untagged), as opposed to a recipe base image.
pub fn is_derived(tags: &[String]) -> bool {
    let named: Vec<&String> = tags.iter().filter(|t| *t != "<none>:<none>").collect();
    named.is_empty()
        || named.iter().all(|t| {
            t.starts_with("ocs-harness/agent-") || t.starts_with("ocs-harness/with-packages:")
        })
}

/// Remove the harness's built images that `rule` selects and no container uses.
pub async fn remove_built_images(docker: &Docker, rule: ImageRule) -> Result<Pruned, EngineError> {
    let filters = HashMap::from([("label", vec!["org.ocs-harness.managed=true"])]);
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .doing("listing the harness's images")?;
    let used: BTreeSet<String> = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).build()))
        .await
        .doing("listing containers")?
        .into_iter()
        .filter_map(|c| c.image_id)
        .collect();
    let now = unix_now_secs() as i64;
    let mut out = Pruned::default();
    for image in images {
        let shown = image
            .repo_tags
            .iter()
            .find(|t| *t != "<none>:<none>")
            .cloned()
            .unwrap_or_else(|| image.id.chars().take(19).collect());
        if used.contains(&image.id) {
            out.kept.push(format!("{shown}: a container uses it"));
            continue;
        }
        if !rule.recipes && !is_derived(&image.repo_tags) {
            out.kept.push(format!(
                "{shown}: a recipe base image (--recipes removes it)"
            ));
            continue;
        }
        let age = now.saturating_sub(image.created).max(0) as u64;
        if age < rule.older_than.as_secs() {
            continue;
        }
        let options = RemoveImageOptionsBuilder::new().force(true).build();
        docker
            .remove_image(&image.id, Some(options), None)
            .await
            .doing(format!("removing image {shown}"))?;
        out.removed.push((shown, image.size.max(0) as u64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::is_derived;

    #[test]
    fn agent_and_package_images_are_derived_recipes_are_not() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_derived(&t(&[
            "ocs-harness/agent-barebones:bff94607a7bb"
        ])));
        assert!(is_derived(&t(&["ocs-harness/with-packages:afa0bf922acb"])));
        assert!(is_derived(&t(&["<none>:<none>"])));
        assert!(is_derived(&t(&[])));
        assert!(!is_derived(&t(&[
            "ocs-harness/crossbar:26.10.1-5dcc274efabb"
        ])));
        assert!(!is_derived(&t(&["ocs-harness/os:bookworm-b72e995225c6"])));
        // a recipe image also tagged as a published name stays a recipe image
        assert!(!is_derived(&t(&[
            "ocs-harness/ocs:0.12.1-907b602ad631",
            "simonsobs/ocs:latest"
        ])));
    }
}
