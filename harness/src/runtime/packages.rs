//! An agent's image with extra Python packages (`packages:`): the wheels fetched by the host's
//! pip (which has the package index and its certificates; a build container may have
//! neither) into the cache, then a one-layer derived image that installs them offline.
//! Cached by content: the tag covers the base image's id and the packages as written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use testcontainers::bollard::Docker;
use tokio::process::Command;

use super::images::{build_tar, image_exists, io_err, lock_file, run_tool, ImageError};
use crate::overrides::ImageRef;
use crate::packages::{derived_image, dockerfile};
use crate::plan::{LABEL_MANAGED, LABEL_RECIPE};
use crate::recipes::short_hash;
use crate::runtime::engine::Doing;

/// `base` with `packages` installed (built unless present); whether this call built it.
pub async fn with_packages(
    docker: &Docker,
    base: &ImageRef,
    packages: &[String],
    cache: &Path,
) -> Result<(ImageRef, bool), ImageError> {
    let base_id = docker
        .inspect_image(&base.to_string())
        .await
        .doing(format!("inspecting image {base}"))?
        .id
        .unwrap_or_default();
    let image = derived_image(&base_id, packages);
    if image_exists(docker, &image).await? {
        return Ok((image, false));
    }
    let wheels = wheels(packages, cache).await?;
    let context = pack(&dockerfile(base, packages), &wheels)
        .map_err(io_err(format!("packing the build context of {image}")))?;
    let labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_RECIPE.to_string(), image.tag.clone()),
    ]);
    let source = format!("{base} with {}", packages.join(" "));
    build_tar(docker, &image, context, &labels, &source).await?;
    Ok((image, true))
}

/// The wheels of `packages` and their dependencies, fetched once into the cache.
async fn wheels(packages: &[String], cache: &Path) -> Result<PathBuf, ImageError> {
    let key = short_hash(packages.iter().map(|p| p.as_bytes()));
    fetch_wheels(packages, &format!("packages-{key}"), cache).await
}

/// The wheels of a requirements file's packages (pinned, one a line: see
/// `crate::packages::check_requirements`) and their dependencies, fetched once into the
/// cache, keyed by the packages as written.
pub async fn requirement_wheels(packages: &[String], cache: &Path) -> Result<PathBuf, ImageError> {
    let key = short_hash(packages.iter().map(|p| p.as_bytes()));
    fetch_wheels(packages, &format!("requirements-{key}"), cache).await
}

/// `pip wheel` of `packages` on this host into `<cache>/wheels/<dir>`, once (a `.complete`
/// marker says it finished); concurrent runs serialise on a lock file.
async fn fetch_wheels(packages: &[String], dir: &str, cache: &Path) -> Result<PathBuf, ImageError> {
    tokio::fs::create_dir_all(cache)
        .await
        .map_err(io_err(format!("creating {}", cache.display())))?;
    let _lock = lock_file(&cache.join("packages.lock")).await?;
    let dir = cache.join("wheels").join(dir);
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir);
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io_err(format!("creating {}", dir.display())))?;
    run_tool(
        &format!("pip wheel {} (on this host)", packages.join(" ")),
        Command::new("python3")
            .args(["-m", "pip", "wheel", "--quiet", "-w"])
            .arg(&dir)
            .args(packages),
    )
    .await?;
    tokio::fs::write(&done, b"")
        .await
        .map_err(io_err(format!("writing {}", done.display())))?;
    Ok(dir)
}

/// The build context: the Dockerfile and every wheel under `wheels/`.
fn pack(dockerfile: &str, wheels: &Path) -> std::io::Result<Vec<u8>> {
    let mut ctx = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    ctx.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    for entry in std::fs::read_dir(wheels)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "whl") {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            ctx.append_path_with_name(&path, format!("wheels/{name}"))?;
        }
    }
    ctx.into_inner()
}
