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
    fetch_wheels(
        packages,
        Sources::WheelsOnly,
        &format!("packages-{key}"),
        cache,
    )
    .await
}

/// The wheels of a requirements file's packages (pinned, one a line: see
/// `crate::packages::check_requirements`) and their dependencies, fetched once into the
/// cache, keyed by the packages as written. The file is the plugin's own, like its Dockerfile:
/// a package it pins that publishes no wheel (socs's test mock `http-server-mock`) is built
/// from its source distribution; every other package comes as a wheel.
pub async fn requirement_wheels(packages: &[String], cache: &Path) -> Result<PathBuf, ImageError> {
    let key = short_hash(packages.iter().map(|p| p.as_bytes()));
    let dir = format!("requirements-{key}");
    fetch_wheels(packages, Sources::PreferWheels, &dir, cache).await
}

/// What `pip wheel` may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// Wheels only (`--only-binary :all:`): no source distribution is built, running its
    /// code, on this host (a scenario's `packages:`).
    WheelsOnly,
    /// Wheels where there are any (`--prefer-binary`), a source distribution otherwise (a
    /// plugin's own pinned requirements file).
    PreferWheels,
}

/// `pip wheel` of `packages` on this host into `<cache>/wheels/<dir>`, once (a `.complete`
/// marker says it finished); concurrent runs serialise on a lock file.
async fn fetch_wheels(
    packages: &[String],
    sources: Sources,
    dir: &str,
    cache: &Path,
) -> Result<PathBuf, ImageError> {
    super::images::own_cache_dir(cache)?;
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
        Command::new("python3").args(pip_wheel_args(&dir, packages, sources)),
    )
    .await?;
    tokio::fs::write(&done, b"")
        .await
        .map_err(io_err(format!("writing {}", done.display())))?;
    Ok(dir)
}

/// `python3 -m pip wheel` for `packages` into `dir`, taking what `sources` allows (wheels
/// only: a package with no wheel for the image's Python fails with pip's message).
fn pip_wheel_args(dir: &Path, packages: &[String], sources: Sources) -> Vec<std::ffi::OsString> {
    let allowed: &[&str] = match sources {
        Sources::WheelsOnly => &["--only-binary", ":all:"],
        Sources::PreferWheels => &["--prefer-binary"],
    };
    let mut args: Vec<std::ffi::OsString> = ["-m", "pip", "wheel", "--quiet"]
        .into_iter()
        .chain(allowed.iter().copied())
        .chain(["-w"])
        .map(Into::into)
        .collect();
    args.push(dir.into());
    args.extend(packages.iter().map(Into::into));
    args
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_fetches_wheels_only_and_builds_no_source_distribution() {
        let args = pip_wheel_args(
            Path::new("/c/w"),
            &["pyyaml==6.0.2".into()],
            Sources::WheelsOnly,
        );
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--only-binary",
                ":all:",
                "-w",
                "/c/w",
                "pyyaml==6.0.2"
            ]
        );
    }

    #[test]
    fn a_plugins_requirements_file_prefers_wheels_and_may_build_a_pinned_sdist() {
        let args = pip_wheel_args(
            Path::new("/c/w"),
            &["http-server-mock==1.7".into()],
            Sources::PreferWheels,
        );
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--prefer-binary",
                "-w",
                "/c/w",
                "http-server-mock==1.7"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_cache_is_made_private_and_refused_when_it_is_not_this_user_s() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("ocsh-cache-{}", std::process::id()));
        let cache = root.join("c");
        super::super::images::own_cache_dir(&cache).unwrap();
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A link of this user's to a directory of this user's is fine.
        let link = root.join("link");
        std::os::unix::fs::symlink(&cache, &link).unwrap();
        super::super::images::own_cache_dir(&link).unwrap();
        // Another user's directory, or their link planted where the cache goes (as root:
        // hand them to nobody).
        if crate::config::current_uid() == 0 {
            let theirs = root.join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            let e = super::super::images::own_cache_dir(&theirs).unwrap_err();
            let text = crate::runtime::notice::display_chain(&e);
            assert!(
                text.contains("is owned by user 65534") && text.contains("OCS_HARNESS_CACHE"),
                "{text}"
            );
            std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
            let e = super::super::images::own_cache_dir(&link).unwrap_err();
            let text = crate::runtime::notice::display_chain(&e);
            assert!(text.contains("is owned by user 65534"), "{text}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
