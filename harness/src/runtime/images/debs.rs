//! Service images from Debian packages: the pinned `.deb` files are fetched on the host
//! (`apt-get download`, as the Python recipes fetch their wheels on the host), put into the
//! build context, and installed with `dpkg -i` on the OS image. No container reaches a
//! package mirror.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use testcontainers::bollard::Docker;
use tokio::process::Command;

use super::{build_context, io_err, run_tool, which, BuildSettings, ContextBuild, ImageError};
use crate::overrides::ImageRef;
use crate::plan::{LABEL_MANAGED, LABEL_RECIPE};
use crate::recipes::{short_hash, DebRecipe};
use crate::runtime::progress;

/// Download (or reuse) the recipe's pinned packages into the cache.
async fn debs(recipe: &DebRecipe, settings: &BuildSettings) -> Result<PathBuf, ImageError> {
    let cache = settings.cache_dir.as_path();
    let pins = recipe.packages.join(" ");
    let dir = cache
        .join("debs")
        .join(format!("{}-{}", recipe.name, short_hash([pins.as_bytes()])));
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir);
    }
    if which("apt-get", &settings.search_path).is_none() {
        return Err(ImageError::Tool {
            step: format!("fetching the packages of {}", recipe.name),
            detail: format!(
                "apt-get is needed on the host to download {pins}; on another system put \
                 those .deb files into {} and create {} beside them",
                dir.display(),
                done.display()
            ),
        });
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io_err(format!("creating {}", dir.display())))?;
    run_tool(
        &format!("apt-get download {pins}"),
        Command::new("apt-get")
            .arg("download")
            .args(recipe.packages)
            .current_dir(&dir),
    )
    .await?;
    tokio::fs::write(&done, b"")
        .await
        .map_err(io_err(format!("writing {}", done.display())))?;
    Ok(dir)
}

/// The build context: the rendered Dockerfile and `debs/*.deb`.
fn context(dockerfile: &str, debs: &Path) -> std::io::Result<Vec<u8>> {
    let mut ctx = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    ctx.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    for entry in std::fs::read_dir(debs)? {
        let path = entry?.path();
        if let (Some(name), true) = (
            path.file_name(),
            path.extension().is_some_and(|e| e == "deb"),
        ) {
            ctx.append_path_with_name(&path, format!("debs/{}", name.to_string_lossy()))?;
        }
    }
    ctx.into_inner()
}

/// Build `image` from `recipe` on `os`.
pub(super) async fn build_deb_image(
    docker: &Docker,
    (recipe, os, image): (&DebRecipe, &ImageRef, &ImageRef),
    settings: &BuildSettings,
    progress: &progress::Build,
) -> Result<(), ImageError> {
    let debs = debs(recipe, settings).await?;
    let tar = context(&recipe.render_dockerfile(os), &debs)
        .map_err(io_err(format!("packing the build context of {image}")))?;
    let labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_RECIPE.to_string(), recipe.hash(os)),
    ]);
    let options = ContextBuild {
        dockerfile: "Dockerfile",
        labels: &labels,
        build_args: &HashMap::new(),
        progress,
    };
    build_context(docker, image, tar, &options)
        .await
        .map(|_| ())
}
