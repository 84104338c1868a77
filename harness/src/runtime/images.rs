//! Building images with no image registry: the Debian rootfs (debootstrap + import), the ocs
//! and crossbar base images (local wheelhouses + Dockerfile builds), and agent images from a
//! plugin's own Dockerfile with the image overrides applied to its `FROM` lines.
//!
//! Every build is skipped when its content-hash tag is already present; builds from several
//! processes at once (nextest) are serialised by a lock file in the cache directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use testcontainers::bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateImageOptionsBuilder,
};
use testcontainers::bollard::{body_full, body_try_stream, Docker};
use tokio::process::Command;

use crate::imageset::ImageSet;
use crate::overrides::{ImageOverrides, ImageRef};
use crate::plan::{LABEL_MANAGED, LABEL_RECIPE};
use crate::recipes::{short_hash, DebRecipe, OsRecipe, PythonRecipe};
use crate::runtime::dockerignore::{self, DockerIgnore, Entry, EntryKind};
pub use crate::runtime::engine::image_exists;
use crate::runtime::engine::{Doing, EngineError};
use crate::runtime::{notice, progress};

mod debs;
mod tool;

pub(crate) use tool::{lock_file, run_tool};

/// What can go wrong while checking or building images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The Docker engine did not answer or refused a request.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An `OCS_HARNESS_*` variable is unreadable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A host tool could not be run.
    #[error("{step} failed: could not run it")]
    Spawn {
        /// The step, e.g. `debootstrap bookworm`.
        step: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A host tool failed (debootstrap, pip, tar).
    #[error("{step} failed: {detail}")]
    Tool {
        /// The step, e.g. `debootstrap bookworm`.
        step: String,
        /// Exit status and the last lines of output.
        detail: String,
    },
    /// A host tool or a build printed nothing for too long and was stopped.
    #[error(
        "{step} stalled: it printed nothing for {quiet}, so it was stopped. Check what it \
         reaches (a package index, a registry, the engine) and run again.\n\
         --- its output (last lines) ---\n{log}"
    )]
    Stalled {
        /// The step, e.g. `pip wheel for crossbar 26.10.1` or `building image x`.
        step: String,
        /// How long it was quiet.
        quiet: String,
        /// The last lines it printed.
        log: String,
    },
    /// Another process held the image build lock past the deadline.
    #[error("{0}. Let that process finish (or stop it) and run again")]
    Lock(String),
    /// A Docker build failed; the log is the builder's output.
    #[error("building image {image} failed: {message}\n--- build log (last lines) ---\n{log}")]
    Build {
        /// The image being built.
        image: String,
        /// The builder's error message.
        message: String,
        /// The last lines of the build log.
        log: String,
    },
    /// An agent build context is unusable.
    #[error("build context {path}: {problem}")]
    Context {
        /// The context directory.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// An image a run needs is missing and cannot be pulled.
    #[error("{0}")]
    Missing(String),
    /// Pulling a published image failed.
    #[error(
        "pulling {image} failed: {detail}. Check the registry's address, that it is up and \
         reachable, and your credentials (docker login); or work offline: give the image as \
         an archive, use the recipe set (--images local), or --pull never with the image present"
    )]
    Pull {
        /// The image.
        image: String,
        /// The engine's or registry's answer.
        detail: String,
    },
    /// A `docker save` archive could not be loaded.
    #[error("archive {path}: {detail}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Local file I/O failed.
    #[error("{doing}")]
    Io {
        /// What the harness was doing.
        doing: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

pub(super) fn io_err(doing: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let doing = doing.into();
    move |source| ImageError::Io { doing, source }
}

/// The local base images of an [`ImageSet`], once present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImages {
    /// The ocs base image.
    pub ocs: ImageRef,
    /// The crossbar image.
    pub crossbar: ImageRef,
    /// What was built and how long each step took (empty when everything was cached).
    pub built: Vec<(String, Duration)>,
    /// Total time spent on images, cache checks included.
    pub elapsed: Duration,
}

/// What to tell a user whose image is absent under `--pull never` (part of the image
/// errors' messages; `pull` re-exports it).
pub fn ways_out(image: &str) -> String {
    format!(
        "The pull policy is `never`. Pull it (`docker pull {image}`, or run with `--pull \
         missing`), give it as an archive (`{{archive: FILE.tar}}` in an image set), or use \
         the recipe set (`--images local`); or add an image override mapping {image} to a \
         local image."
    )
}

/// Where base images are built and whether apt-get may install debootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    /// Downloaded wheels, rootfs trees and the build lock (`$OCS_HARNESS_CACHE`).
    pub cache_dir: PathBuf,
    /// Whether debootstrap may be installed with apt-get when missing (as root), unless
    /// `$OCS_HARNESS_NO_APT` is set.
    pub apt_allowed: bool,
    /// Where host tools (debootstrap, apt-get, python3) are looked for: `$PATH`'s directories
    /// (then `/usr/sbin` and `/sbin`).
    pub search_path: Vec<PathBuf>,
}

impl BuildSettings {
    /// The build settings of `settings`.
    pub fn of(settings: &crate::config::Settings) -> Self {
        Self {
            cache_dir: settings.config.cache_dir.clone(),
            apt_allowed: settings.config.apt_allowed,
            search_path: settings
                .env
                .var_os("PATH")
                .map(|p| std::env::split_paths(p).collect())
                .unwrap_or_default(),
        }
    }
}

/// Make sure the base images of `set` exist, building what is missing, with `settings`.
/// Each build shows its progress ([`progress`](crate::runtime::progress)).
pub async fn ensure_base_images(
    docker: &Docker,
    set: &ImageSet,
    settings: &BuildSettings,
) -> Result<BaseImages, ImageError> {
    ensure_recipes(docker, set, settings, (true, true)).await
}

/// Make sure the recipe images of `set` that are `wanted` (ocs, crossbar) exist, building
/// what is missing; the rootfs is built only when one of them must be.
pub async fn ensure_recipes(
    docker: &Docker,
    set: &ImageSet,
    settings: &BuildSettings,
    wanted: (bool, bool),
) -> Result<BaseImages, ImageError> {
    let started = Instant::now();
    let os = set.os_image();
    let ocs = set.ocs.image(&os);
    let crossbar = set.crossbar.image(&os);
    let mut built = Vec::new();
    let missing = |wanted: bool, image: ImageRef| async move {
        Ok::<bool, ImageError>(wanted && !image_exists(docker, &image).await?)
    };

    if !missing(wanted.0, ocs.clone()).await? && !missing(wanted.1, crossbar.clone()).await? {
        return Ok(BaseImages {
            ocs,
            crossbar,
            built,
            elapsed: started.elapsed(),
        });
    }

    let cache = settings.cache_dir.as_path();
    own_cache_dir(cache)?;
    let _lock = lock_file(&cache.join("images.lock")).await?;

    // Another process may have built them while this one waited for the lock.
    let still_missing =
        missing(wanted.0, ocs.clone()).await? || missing(wanted.1, crossbar.clone()).await?;
    if still_missing {
        built.extend(ensure_os(docker, set, settings).await?);
    }
    for (recipe, image, want) in [
        (&set.ocs, &ocs, wanted.0),
        (&set.crossbar, &crossbar, wanted.1),
    ] {
        if !want || image_exists(docker, image).await? {
            continue;
        }
        let (name, version) = (&recipe.name, &recipe.version);
        let source = format!("recipe: {name} {version} from pinned wheels");
        let build = progress::Build::start(&image.to_string(), &source);
        build_python_image(docker, (recipe, &os, image), settings, &build).await?;
        built.push((image.to_string(), build.done()));
    }
    Ok(BaseImages {
        ocs,
        crossbar,
        built,
        elapsed: started.elapsed(),
    })
}

/// Build the set's OS image when it is absent (the caller holds the build lock).
async fn ensure_os(
    docker: &Docker,
    set: &ImageSet,
    settings: &BuildSettings,
) -> Result<Option<(String, Duration)>, ImageError> {
    let os = set.os_image();
    if image_exists(docker, &os).await? {
        return Ok(None);
    }
    let (suite, variant) = (&set.os.suite, &set.os.variant);
    let source = format!("recipe: debootstrap {suite} {variant}, takes about a minute");
    let build = progress::Build::start(&os.to_string(), &source);
    build_os_image(docker, &set.os, &os, settings).await?;
    Ok(Some((os.to_string(), build.done())))
}

/// Make sure the image of service recipe `recipe` exists, building it (and the OS image
/// under it) when missing. Returns what was built.
pub async fn ensure_deb_recipe(
    docker: &Docker,
    set: &ImageSet,
    recipe: &DebRecipe,
    settings: &BuildSettings,
) -> Result<Vec<(String, Duration)>, ImageError> {
    let os = set.os_image();
    let image = recipe.image(&os);
    if image_exists(docker, &image).await? {
        return Ok(Vec::new());
    }
    let cache = settings.cache_dir.as_path();
    own_cache_dir(cache)?;
    let _lock = lock_file(&cache.join("images.lock")).await?;
    if image_exists(docker, &image).await? {
        return Ok(Vec::new());
    }
    let mut built: Vec<_> = ensure_os(docker, set, settings)
        .await?
        .into_iter()
        .collect();
    let source = format!(
        "recipe: {} {} from Debian packages, standing for {}",
        recipe.name, recipe.version, recipe.stands_for
    );
    let build = progress::Build::start(&image.to_string(), &source);
    debs::build_deb_image(docker, (recipe, &os, &image), settings, &build).await?;
    built.push((image.to_string(), build.done()));
    Ok(built)
}

/// Make sure `cache` is this user's: created 0700 when missing; refused when another user owns
/// it, or a symbolic link there, or the directory the link leads to (they could plant the wheels and debs built into images,
/// or `.complete` markers that skip the download).
pub(crate) fn own_cache_dir(cache: &Path) -> Result<(), ImageError> {
    let doing = || format!("creating the cache directory {}", cache.display());
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(cache).map_err(io_err(doing()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // The path itself (a link planted where the cache goes) and what it leads to.
        let link = std::fs::symlink_metadata(cache).map_err(io_err(doing()))?;
        let dir = std::fs::metadata(cache).map_err(io_err(doing()))?;
        let me = crate::config::current_uid();
        let problem = if link.uid() != me {
            Some(format!(
                "is owned by user {}, not by this user ({me})",
                link.uid()
            ))
        } else if dir.uid() != me {
            Some(format!(
                "leads to a directory of user {}, not of this user ({me})",
                dir.uid()
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            let refused = std::io::Error::other(format!(
                "{} {problem}: another user could plant what gets built into images; set \
                 {} to a directory of your own",
                cache.display(),
                crate::config::CACHE
            ));
            return Err(io_err(format!(
                "using the cache directory {}",
                cache.display()
            ))(refused));
        }
    }
    Ok(())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn which(tool: &str, search_path: &[PathBuf]) -> Option<PathBuf> {
    search_path
        .iter()
        .cloned()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// debootstrap, installing it with apt-get first when it is missing and we are root
/// (`apt_allowed` false, from `OCS_HARNESS_NO_APT=1`, forbids that).
async fn debootstrap_path(settings: &BuildSettings) -> Result<PathBuf, ImageError> {
    let path = &settings.search_path;
    if let Some(p) = which("debootstrap", path) {
        return Ok(p);
    }
    if !(is_root() && settings.apt_allowed && which("apt-get", path).is_some()) {
        return Err(ImageError::Tool {
            step: "finding debootstrap".into(),
            detail: "debootstrap is needed once, to build the base root filesystem with no image \
                     registry. Install it (as root: apt-get install -y debootstrap) and run again."
                .into(),
        });
    }
    notice::info("debootstrap is missing; installing it with apt-get (needed once)");
    run_tool(
        "apt-get update",
        Command::new("apt-get").args(["update", "-qq"]),
    )
    .await?;
    run_tool(
        "apt-get install debootstrap",
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "debootstrap"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .await?;
    which("debootstrap", path).ok_or_else(|| ImageError::Tool {
        step: "installing debootstrap".into(),
        detail: "apt-get succeeded but debootstrap is still not on PATH".into(),
    })
}

async fn build_os_image(
    docker: &Docker,
    recipe: &OsRecipe,
    image: &ImageRef,
    settings: &BuildSettings,
) -> Result<(), ImageError> {
    let cache = settings.cache_dir.as_path();
    if !is_root() {
        return Err(ImageError::Tool {
            step: "debootstrap".into(),
            detail: format!(
                "building the base root filesystem {image} needs root (debootstrap creates \
                 device nodes and chroots). Run once as root, or import an equivalent image \
                 under that name."
            ),
        });
    }
    let debootstrap = debootstrap_path(settings).await?;
    let work = cache.join(format!("rootfs-{}", recipe.hash()));
    if work.exists() {
        tokio::fs::remove_dir_all(&work)
            .await
            .map_err(io_err(format!("removing stale {}", work.display())))?;
    }
    let include = format!("--include={}", recipe.include.join(","));
    let result = async {
        run_tool(
            &format!("debootstrap {}", recipe.suite),
            Command::new(&debootstrap)
                .arg(format!("--variant={}", recipe.variant))
                .arg(&include)
                .arg(recipe.suite.as_ref())
                .arg(&work),
        )
        .await?;
        // Package caches are not needed in the image.
        for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
            let d = work.join(dir);
            if let Ok(mut entries) = tokio::fs::read_dir(&d).await {
                while let Ok(Some(e)) = entries.next_entry().await {
                    if e.path().is_file() {
                        let _ = tokio::fs::remove_file(e.path()).await;
                    }
                }
            }
        }
        import_rootfs(docker, &work, image, &recipe.hash()).await
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

/// `tar -C rootfs -c . | docker import`, streamed.
async fn import_rootfs(
    docker: &Docker,
    rootfs: &Path,
    image: &ImageRef,
    hash: &str,
) -> Result<(), ImageError> {
    let mut child = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", "-c", "."])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(io_err("running tar over the rootfs"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stream = tokio_util::io::ReaderStream::new(stdout);
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(&image.repository)
        .tag(&image.tag)
        .changes(vec![
            format!("LABEL {LABEL_MANAGED}=true"),
            format!("LABEL {LABEL_RECIPE}={hash}"),
            "CMD [\"/bin/bash\"]".to_string(),
        ])
        .build();
    let mut import = docker.create_image(Some(options), Some(body_try_stream(stream)), None);
    while let Some(item) = import.next().await {
        item.doing(format!("importing the rootfs as {image}"))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(io_err("waiting for tar"))?;
    if !out.status.success() {
        return Err(ImageError::Tool {
            step: "tar of the rootfs".into(),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(())
}

/// Download (or reuse) the wheels of a pinned requirements file into the cache.
async fn wheelhouse(
    recipe: &PythonRecipe,
    settings: &BuildSettings,
) -> Result<PathBuf, ImageError> {
    let cache = settings.cache_dir.as_path();
    let dir = cache.join("wheels").join(format!(
        "{}-{}",
        recipe.name,
        short_hash([recipe.requirements.as_bytes()])
    ));
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir);
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io_err(format!("creating {}", dir.display())))?;
    let req = dir.join("requirements.txt");
    tokio::fs::write(&req, recipe.requirements.as_bytes())
        .await
        .map_err(io_err(format!("writing {}", req.display())))?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| which(p, &settings.search_path).is_some())
        .ok_or_else(|| ImageError::Tool {
            step: "finding python3".into(),
            detail: "python3 with pip is needed on the host to fetch the pinned wheels".into(),
        })?;
    run_tool(
        &format!("pip wheel for {} {}", recipe.name, recipe.version),
        Command::new(python)
            .args(["-m", "pip", "wheel", "--quiet", "--no-deps", "-r"])
            .arg(&req)
            .arg("-w")
            .arg(&dir),
    )
    .await?;
    tokio::fs::write(&done, b"")
        .await
        .map_err(io_err(format!("writing {}", done.display())))?;
    Ok(dir)
}

async fn build_python_image(
    docker: &Docker,
    (recipe, os, image): (&PythonRecipe, &ImageRef, &ImageRef),
    settings: &BuildSettings,
    progress: &progress::Build,
) -> Result<(), ImageError> {
    let wheels = wheelhouse(recipe, settings).await?;
    let mut ctx = tar::Builder::new(Vec::new());
    let add = |ctx: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        ctx.append_data(&mut header, name, data)
    };
    let dockerfile = recipe.render_dockerfile(os);
    let build = (|| -> std::io::Result<Vec<u8>> {
        add(&mut ctx, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
        add(
            &mut ctx,
            "requirements.txt",
            recipe.requirements.as_bytes(),
            0o644,
        )?;
        for (name, contents) in recipe.files {
            let mode = if name.ends_with(".sh") { 0o755 } else { 0o644 };
            add(&mut ctx, name, contents.as_bytes(), mode)?;
        }
        for entry in std::fs::read_dir(&wheels)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "whl") {
                let name = format!("wheels/{}", path.file_name().unwrap().to_string_lossy());
                ctx.append_path_with_name(&path, name)?;
            }
        }
        ctx.into_inner()
    })()
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
    build_context(docker, image, build, &options)
        .await
        .map(|_| ())
}

/// Build `image` from an in-memory context tar with its `Dockerfile` at the top, showing its
/// progress as built from `source`.
pub(super) async fn build_tar(
    docker: &Docker,
    image: &ImageRef,
    context_tar: Vec<u8>,
    labels: &HashMap<String, String>,
    source: &str,
) -> Result<(), ImageError> {
    let progress = progress::Build::start(&image.to_string(), source);
    let build = ContextBuild {
        dockerfile: "Dockerfile",
        labels,
        build_args: &HashMap::new(),
        progress: &progress,
    };
    build_context(docker, image, context_tar, &build).await?;
    progress.done();
    Ok(())
}

/// What a build of a context tar is told besides the tar.
struct ContextBuild<'a> {
    /// The Dockerfile's path in the tar.
    dockerfile: &'a str,
    labels: &'a HashMap<String, String>,
    build_args: &'a HashMap<String, String>,
    /// Shows the build's last output line.
    progress: &'a progress::Build,
}

/// Run a classic-builder build of an in-memory tar context. Returns the build log.
///
/// The classic builder streams plain text, which the harness shows when a build fails; it
/// also takes labels, and works on engines without buildx.
async fn build_context(
    docker: &Docker,
    image: &ImageRef,
    context_tar: Vec<u8>,
    build: &ContextBuild<'_>,
) -> Result<String, ImageError> {
    let options = BuildImageOptionsBuilder::new()
        .dockerfile(build.dockerfile)
        .t(&image.to_string())
        .rm(true)
        .forcerm(true)
        .labels(build.labels)
        .buildargs(build.build_args)
        .version(BuilderVersion::BuilderV1)
        .build();
    let mut log = String::new();
    let result = run_build(
        docker,
        (image, options),
        context_tar,
        (&mut log, build.progress),
    )
    .await;
    if result.is_err() {
        remove_intermediate_images(docker, &log).await;
    }
    result.map(|()| log)
}

/// Remove the untagged layers a failed build left (` ---> <id>` lines of its log), newest
/// first. Tagged images (the base) and layers other images use refuse removal and stay.
async fn remove_intermediate_images(docker: &Docker, log: &str) {
    let ids: Vec<&str> = log
        .lines()
        .filter_map(|l| l.trim().strip_prefix("---> "))
        .filter(|id| id.len() >= 12 && id.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    for id in ids.iter().rev() {
        let _ = docker
            .remove_image(
                id,
                None::<testcontainers::bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
}

async fn run_build(
    docker: &Docker,
    (image, options): (
        &ImageRef,
        testcontainers::bollard::query_parameters::BuildImageOptions,
    ),
    context_tar: Vec<u8>,
    (log, progress): (&mut String, &progress::Build),
) -> Result<(), ImageError> {
    let mut stream = docker.build_image(options, None, Some(body_full(Bytes::from(context_tar))));
    loop {
        // A build that sends nothing for this long has stalled (a step waiting on a network
        // that no longer answers); dropping the stream ends the request.
        let Ok(next) = tokio::time::timeout(tool::TOOL_STALL, stream.next()).await else {
            return Err(ImageError::Stalled {
                step: format!("building image {image}"),
                quiet: crate::wait::fmt_duration(tool::TOOL_STALL),
                log: last_lines(log, 40),
            });
        };
        let Some(item) = next else { break };
        match item {
            Ok(info) => {
                if let Some(s) = info.stream {
                    progress.output(&s);
                    log.push_str(&s);
                }
                if let Some(detail) = info.error_detail {
                    return Err(ImageError::Build {
                        image: image.to_string(),
                        message: detail.message.unwrap_or_default(),
                        log: last_lines(log, 40),
                    });
                }
            }
            // The build's own failure (a step's exit code), shown with its log.
            Err(testcontainers::bollard::errors::Error::DockerStreamError { error }) => {
                return Err(ImageError::Build {
                    image: image.to_string(),
                    message: error,
                    log: last_lines(log, 40),
                });
            }
            Err(e) => return Err(e).doing(format!("building image {image}"))?,
        }
    }
    Ok(())
}

/// An agent image built from a plugin's own build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentImage {
    /// The local tag (content-addressed).
    pub image: ImageRef,
    /// `FROM` rewrites applied, as `(line, from, to)`.
    pub rewrites: Vec<(usize, String, String)>,
    /// Whether this call built it (false: it was already present).
    pub built: bool,
}

/// Build (or reuse) the image of an agent's build context, applying `overrides` to the
/// Dockerfile's `FROM` lines. `dockerfile` is relative to `context` (default `Dockerfile`).
/// `wheels`, a directory of this host, is sent as the context's `wheels/` (its `*.whl` files).
pub async fn build_agent_image(
    docker: &Docker,
    context: &Path,
    dockerfile: Option<&str>,
    build_args: &HashMap<String, String>,
    overrides: &ImageOverrides,
    wheels: Option<&Path>,
) -> Result<AgentImage, ImageError> {
    let ctx_err = |problem: String| ImageError::Context {
        path: context.to_path_buf(),
        problem,
    };
    let dockerfile_name = dockerfile.unwrap_or("Dockerfile");
    let original = read_dockerfile(context, dockerfile_name)?;
    let (rewritten, rewrites) = overrides.rewrite_dockerfile(&original);
    let path = context.join(dockerfile_name);
    check_base_images(docker, &rewritten, (&path, dockerfile_name), &ctx_err).await?;

    let in_tar = dockerfile_in_context(dockerfile_name);
    let mut entries = context_entries(context, &in_tar).map_err(ctx_err)?;
    if let Some(dir) = wheels {
        add_wheels(&mut entries, dir).map_err(ctx_err)?;
    }
    let hash = context_hash(&rewritten, build_args, &entries).map_err(ctx_err)?;
    let image = agent_image_ref(context, &hash);
    if image_exists(docker, &image).await? {
        return Ok(AgentImage {
            image,
            rewrites,
            built: false,
        });
    }
    let pack = pack_context(&rewritten, &in_tar, &entries)
        .map_err(|e| ctx_err(format!("cannot pack it: {e}")))?;
    let labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_RECIPE.to_string(), hash),
    ]);
    let source = format!("Dockerfile {}", path.display());
    let progress = progress::Build::start(&image.to_string(), &source);
    let build = ContextBuild {
        dockerfile: &in_tar,
        labels: &labels,
        build_args,
        progress: &progress,
    };
    build_context(docker, &image, pack, &build).await?;
    progress.done();
    Ok(AgentImage {
        image,
        rewrites,
        built: true,
    })
}

/// Where host-fetched wheels go in a build context.
const CONTEXT_WHEELS: &str = "wheels";

/// Add the `*.whl` files of `dir` to a context's entries as `wheels/<name>`; the context must
/// not have a `wheels` of its own.
fn add_wheels(entries: &mut Vec<Entry>, dir: &Path) -> Result<(), String> {
    let prefix = format!("{CONTEXT_WHEELS}/");
    if let Some(e) = entries
        .iter()
        .find(|e| e.rel == CONTEXT_WHEELS || e.rel.starts_with(&prefix))
    {
        return Err(format!(
            "it has `{}`, where the wheels fetched on this host (`wheels:`) go; remove it, or \
             list it in .dockerignore",
            e.rel
        ));
    }
    let read = |e: std::io::Error| format!("cannot read the wheels in {}: {e}", dir.display());
    let mut wheels: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.extension().is_some_and(|x| x == "whl") {
            wheels.push(path);
        }
    }
    wheels.sort();
    entries.push(Entry {
        rel: CONTEXT_WHEELS.into(),
        path: dir.to_path_buf(),
        kind: EntryKind::Dir,
    });
    for path in wheels {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        entries.push(Entry {
            rel: format!("{prefix}{name}"),
            path: path.clone(),
            kind: EntryKind::File,
        });
    }
    Ok(())
}

/// The Dockerfile of a build context.
fn read_dockerfile(context: &Path, name: &str) -> Result<String, ImageError> {
    let ctx_err = |problem: String| ImageError::Context {
        path: context.to_path_buf(),
        problem,
    };
    if !context.is_dir() {
        return Err(ctx_err(
            "does not exist or is not a directory; point `build` at the directory that holds \
             the agent's Dockerfile"
                .into(),
        ));
    }
    std::fs::read_to_string(context.join(name)).map_err(|e| {
        ctx_err(format!(
            "cannot read {name} ({e}); every agent build context needs a Dockerfile"
        ))
    })
}

/// The images a Dockerfile's `FROM` lines name, by line number (1-based): not stages, not
/// `scratch`, not built from `ARG`s.
fn base_images(dockerfile: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for (line_no, line) in dockerfile.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
        {
            continue;
        }
        let Some(img) = words.iter().skip(1).find(|w| !w.starts_with("--")) else {
            continue;
        };
        if img.contains('$') || img.eq_ignore_ascii_case("scratch") {
            continue;
        }
        let is_stage = dockerfile.lines().take(line_no).any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= 4
                && w[w.len() - 2].eq_ignore_ascii_case("AS")
                && w[w.len() - 1].eq_ignore_ascii_case(img)
        });
        if !is_stage {
            out.push((line_no + 1, *img));
        }
    }
    out
}

/// The base images (`FROM`) of a build context's Dockerfile after `overrides`, by line.
pub fn context_base_images(
    context: &Path,
    dockerfile: Option<&str>,
    overrides: &ImageOverrides,
) -> Result<Vec<(usize, ImageRef)>, ImageError> {
    let name = dockerfile.unwrap_or("Dockerfile");
    let original = read_dockerfile(context, name)?;
    let (rewritten, _) = overrides.rewrite_dockerfile(&original);
    base_images(&rewritten)
        .into_iter()
        .map(|(line, img)| {
            ImageRef::parse(img)
                .map(|r| (line, r))
                .map_err(|e| ImageError::Context {
                    path: context.to_path_buf(),
                    problem: format!("{name}:{line}: {e}"),
                })
        })
        .collect()
}

/// Base images must be local by now (the launch pulled what its policy allows).
async fn check_base_images(
    docker: &Docker,
    dockerfile: &str,
    (path, name): (&Path, &str),
    ctx_err: &impl Fn(String) -> ImageError,
) -> Result<(), ImageError> {
    for (line, img) in base_images(dockerfile) {
        let r = ImageRef::parse(img).map_err(|e| ctx_err(format!("{name}:{line}: {e}")))?;
        if !image_exists(docker, &r).await? {
            return Err(ImageError::Missing(format!(
                "{}:{line}: base image {r} is not present locally and no image registry \
                 can be reached. {}",
                path.display(),
                ways_out(&r.to_string()),
            )));
        }
    }
    Ok(())
}

/// The content hash of a build: the rewritten Dockerfile, the build arguments, and every
/// entry of the context with its path, kind, content (a link: its target) and mode.
fn context_hash(
    dockerfile: &str,
    build_args: &HashMap<String, String>,
    entries: &[Entry],
) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut hash_parts: Vec<Vec<u8>> = vec![dockerfile.as_bytes().to_vec()];
    let mut args: Vec<_> = build_args.iter().collect();
    args.sort();
    for (k, v) in args {
        hash_parts.push(format!("{k}={v}").into_bytes());
    }
    for entry in entries {
        let rel = &entry.rel;
        let meta =
            std::fs::symlink_metadata(&entry.path).map_err(|e| format!("reading {rel}: {e}"))?;
        hash_parts.push(format!("{rel} {:o}", meta.permissions().mode()).into_bytes());
        hash_parts.push(match &entry.kind {
            EntryKind::File => {
                std::fs::read(&entry.path).map_err(|e| format!("reading {rel}: {e}"))?
            }
            EntryKind::Dir => b"/".to_vec(),
            EntryKind::Symlink(target) => format!("-> {}", target.display()).into_bytes(),
        });
    }
    Ok(short_hash(hash_parts.iter().map(|p| p.as_slice())))
}

/// `ocs-harness/agent-<context directory name>:<hash>`.
fn agent_image_ref(context: &Path, hash: &str) -> ImageRef {
    let name = context
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .unwrap_or_else(|| "agent".into());
    ImageRef {
        repository: format!("ocs-harness/agent-{}", crate::plan::docker_name_part(&name)),
        tag: hash.to_string(),
    }
}

/// The build context as a tar, as `docker build` packs it: every entry [`context_entries`]
/// selected, with the Dockerfile's content replaced by the rewritten one.
fn pack_context(
    dockerfile: &str,
    dockerfile_name: &str,
    entries: &[Entry],
) -> std::io::Result<Vec<u8>> {
    let mut ctx = tar::Builder::new(Vec::new());
    ctx.follow_symlinks(false);
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    ctx.append_data(&mut header, dockerfile_name, dockerfile.as_bytes())?;
    for entry in entries {
        if entry.rel != dockerfile_name {
            ctx.append_path_with_name(&entry.path, &entry.rel)?;
        }
    }
    ctx.into_inner()
}

/// Where the Dockerfile goes in the context tar: its path in the context (cleaned), or
/// `Dockerfile` when it lies outside the context.
fn dockerfile_in_context(name: &str) -> String {
    let cleaned: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if name.starts_with('/') || cleaned.is_empty() || cleaned.contains(&"..") {
        "Dockerfile".into()
    } else {
        cleaned.join("/")
    }
}

/// Every path of the context `dir` that `docker build` sends, by Docker's `.dockerignore`
/// rules ([`dockerignore`](crate::runtime::dockerignore)); the Dockerfile and `.dockerignore`
/// are always sent, as the CLI does.
fn context_entries(dir: &Path, dockerfile_name: &str) -> Result<Vec<Entry>, String> {
    let file = dir.join(".dockerignore");
    let mut ignore = match std::fs::read_to_string(&file) {
        Ok(text) => DockerIgnore::parse(&text).map_err(|(line, column, problem)| {
            format!("{}:{line}:{column}: {problem}", file.display())
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(format!("cannot read {} ({e})", file.display())),
    };
    ignore.keep(".dockerignore");
    ignore.keep(dockerfile_name);
    dockerignore::walk(dir, &ignore).map_err(|e| format!("cannot read it: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_skip_stages_scratch_and_args() {
        let df = "ARG BASE=x\nFROM --platform=linux/amd64 simonsobs/ocs:latest AS build\n\
                  RUN make\nFROM build\nFROM scratch\nFROM $BASE\nfrom other/img:1 as final\n";
        assert_eq!(
            base_images(df),
            vec![(2, "simonsobs/ocs:latest"), (7, "other/img:1")]
        );
    }

    #[test]
    fn wheels_join_the_context_under_wheels_unless_it_has_its_own() {
        let dir = std::env::temp_dir().join(format!("ocsh-wheels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b-1.0-py3-none-any.whl"), "b").unwrap();
        std::fs::write(dir.join("a-1.0-py3-none-any.whl"), "a").unwrap();
        std::fs::write(dir.join(".complete"), "").unwrap();
        let file = |rel: &str| Entry {
            rel: rel.into(),
            path: dir.join(rel),
            kind: EntryKind::File,
        };
        let mut entries = vec![file("Dockerfile")];
        add_wheels(&mut entries, &dir).unwrap();
        let rels: Vec<&str> = entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                "Dockerfile",
                "wheels",
                "wheels/a-1.0-py3-none-any.whl",
                "wheels/b-1.0-py3-none-any.whl"
            ]
        );
        let mut own = vec![file("wheels/x.whl")];
        let e = add_wheels(&mut own, &dir).unwrap_err();
        assert!(e.contains("it has `wheels/x.whl`"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn context_hash_covers_dockerfile_args_and_files() {
        let dir = std::env::temp_dir().join(format!("ocsh-ctx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("agent.py");
        std::fs::write(&file, "print(1)\n").unwrap();
        let files = vec![Entry {
            rel: "agent.py".to_string(),
            path: file.clone(),
            kind: EntryKind::File,
        }];
        let none = HashMap::new();
        let a = context_hash("FROM x\n", &none, &files).unwrap();
        assert_eq!(a, context_hash("FROM x\n", &none, &files).unwrap());
        assert_ne!(a, context_hash("FROM y\n", &none, &files).unwrap());
        let args = HashMap::from([("K".to_string(), "v".to_string())]);
        assert_ne!(a, context_hash("FROM x\n", &args, &files).unwrap());
        std::fs::write(&file, "print(2)\n").unwrap();
        assert_ne!(a, context_hash("FROM x\n", &none, &files).unwrap());
        assert_eq!(agent_image_ref(&dir, &a).tag, a);
        assert!(agent_image_ref(&dir, &a)
            .repository
            .starts_with("ocs-harness/agent-ocsh-ctx-"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
