//! Published images and archives: pulling by policy (through the engine, with the usual Docker
//! config's credentials), loading `docker save` files, probing whether a registry serves an
//! image, and the provenance of every image this process made present (pulled, loaded,
//! recipe-built, local), so each run can say in one line which images it proved.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt;
use testcontainers::bollard::auth::DockerCredentials;
use testcontainers::bollard::models::CreateImageInfo;
use testcontainers::bollard::query_parameters::{
    CreateImageOptionsBuilder, ImportImageOptionsBuilder,
};
use testcontainers::bollard::{body_try_stream, Docker};

use crate::imageset::PullPolicy;
use crate::overrides::ImageRef;
use crate::runtime::engine::image_exists;
pub use crate::runtime::images::ways_out;
use crate::runtime::images::ImageError;
use crate::runtime::{notice, progress};

/// A pull or load that sends nothing for this long has stalled (an unreachable registry
/// answers much sooner: connection refused, no such host).
pub const STALL: Duration = Duration::from_secs(30);
/// How long the registry probe of `--images auto` may take.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(5);

/// Where an image a run used came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Pulled from a registry by this process.
    Pulled,
    /// Loaded from a `docker save` archive by this process.
    Loaded,
    /// Built from the harness's offline recipe (now or by an earlier run).
    RecipeBuilt,
    /// Built from a build context (an agent's Dockerfile) on the named bases.
    Built(Vec<String>),
    /// Already present, put there by something else (a user's pull or build).
    Local,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Pulled => f.write_str("pulled"),
            Origin::Loaded => f.write_str("loaded"),
            Origin::RecipeBuilt => f.write_str("recipe-built"),
            Origin::Local => f.write_str("local"),
            Origin::Built(bases) => {
                f.write_str("built")?;
                for b in bases {
                    write!(f, ", FROM {b} ({})", origin_of(b).unwrap_or(Origin::Local))?;
                }
                Ok(())
            }
        }
    }
}

static PROVENANCE: LazyLock<Mutex<HashMap<String, Origin>>> = LazyLock::new(Default::default);

/// Record where `image` came from (a later, more specific answer replaces `Local`).
pub fn record(image: &str, origin: Origin) {
    let mut map = PROVENANCE.lock().unwrap_or_else(|e| e.into_inner());
    let keep = matches!(map.get(image), Some(o) if *o != Origin::Local) && origin == Origin::Local;
    if !keep {
        map.insert(image.to_string(), origin);
    }
}

/// Where `image` came from, if this process made it present or checked it.
pub fn origin_of(image: &str) -> Option<Origin> {
    let map = PROVENANCE.lock().unwrap_or_else(|e| e.into_inner());
    map.get(image)
        .or_else(|| map.get(&format!("{image}:latest")))
        .cloned()
}

static RUNS: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);

/// Record the proved-images line of run `run_id`.
pub fn record_run(run_id: &str, line: &str) {
    let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    runs.insert(run_id.to_string(), line.to_string());
}

/// The proved-images line of run `run_id` (a run of this process).
pub fn proved_for_run(run_id: &str) -> Option<String> {
    let runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    runs.get(run_id).cloned()
}

/// The registry host of a reference, as Docker's config keys it.
fn registry_host(image: &ImageRef) -> String {
    match image.repository.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "https://index.docker.io/v1/".to_string(),
    }
}

/// Credentials for `image`'s registry from `<config_dir>/config.json` (Docker's client
/// configuration directory, [`EngineSettings::config_dir`](crate::runtime::engine::EngineSettings::config_dir):
/// `$DOCKER_CONFIG`, else `~/.docker`), `auths` entries only (credential helpers are not run).
pub fn credentials(image: &ImageRef, config_dir: Option<&Path>) -> Option<DockerCredentials> {
    let dir = config_dir?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let host = registry_host(image);
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.get(&host).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| {
                k.trim_start_matches("https://")
                    .trim_start_matches("http://")
                    == host
            })
            .map(|(_, v)| v)
    })?;
    let auth = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let (user, pass) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some(DockerCredentials {
        username: Some(user),
        password: Some(pass),
        serveraddress: Some(host),
        ..Default::default()
    })
}

/// Make a published image present by `policy`; `for_what` names its user in messages.
/// An absent image under `never` is [`ImageError::Missing`] with the ways out.
pub async fn ensure_published(
    docker: &Docker,
    image: &ImageRef,
    policy: PullPolicy,
    for_what: &str,
    config_dir: Option<&Path>,
) -> Result<Origin, ImageError> {
    let present = image_exists(docker, image).await?;
    let origin = match (policy, present) {
        (PullPolicy::Never, false) => {
            return Err(ImageError::Missing(format!(
                "image {image} (for {for_what}) is not present locally and no image registry \
                 can be reached; nothing was started. {}",
                ways_out(&image.to_string())
            )))
        }
        (PullPolicy::Never | PullPolicy::Missing, true) => Origin::Local,
        (PullPolicy::Always, _) | (PullPolicy::Missing, false) => {
            pull(docker, image, for_what, config_dir).await?;
            Origin::Pulled
        }
    };
    record(&image.to_string(), origin.clone());
    Ok(origin)
}

/// Pull `image` through the engine: a line when it starts and one when it is done.
pub async fn pull(
    docker: &Docker,
    image: &ImageRef,
    for_what: &str,
    config_dir: Option<&Path>,
) -> Result<(), ImageError> {
    let t = Instant::now();
    notice::info(&format!("pulling {image} (for {for_what})"));
    let options = CreateImageOptionsBuilder::new()
        .from_image(&image.repository)
        .tag(&image.tag)
        .build();
    let fail = |detail: String| ImageError::Pull {
        image: image.to_string(),
        detail,
    };
    let mut stream = docker.create_image(Some(options), None, credentials(image, config_dir));
    let (mut fetched, mut present) = (std::collections::BTreeSet::new(), 0usize);
    let mut layers = progress::Pull::default();
    while let Some(item) = next_or_stall(&mut stream, "the registry", None)
        .await
        .map_err(fail)?
    {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail {
                    return Err(fail(e.message.unwrap_or_default()));
                }
                show_layer(&mut layers, &info);
                match (info.id, info.status.as_deref()) {
                    (Some(id), Some("Pull complete")) => {
                        fetched.insert(id);
                    }
                    (Some(_), Some("Already exists")) => present += 1,
                    _ => {}
                }
            }
            Err(e) => return Err(fail(notice::display_chain(&e))),
        }
    }
    if !image_exists(docker, image).await? {
        return Err(fail(
            "the engine reported no error but the image is absent".into(),
        ));
    }
    notice::info(&format!(
        "pulled {image} in {:.1}s ({} layers fetched, {present} already present)",
        t.elapsed().as_secs_f64(),
        fetched.len(),
    ));
    Ok(())
}

/// A layer's status and bytes, for the live display (not the pull's own `Pulling from` line).
fn show_layer(layers: &mut progress::Pull, info: &CreateImageInfo) {
    let (Some(id), Some(status)) = (&info.id, &info.status) else {
        return;
    };
    if status.starts_with("Pulling from") || status.starts_with("Digest") {
        return;
    }
    let detail = info.progress_detail.as_ref();
    let current = detail.and_then(|d| d.current);
    let total = detail.and_then(|d| d.total);
    layers.layer(id, status, current, total);
}

/// The stream's next item, or an error naming `who` once for [`STALL`] it has sent nothing
/// and (when `taken` holds the last time the engine took some of an upload) taken nothing.
async fn next_or_stall<S: futures::Stream + Unpin>(
    stream: &mut S,
    who: &str,
    taken: Option<&Mutex<Instant>>,
) -> Result<Option<S::Item>, String> {
    let asked = Instant::now();
    loop {
        let last = taken.map_or(asked, |t| {
            (*t.lock().unwrap_or_else(|e| e.into_inner())).max(asked)
        });
        let Some(left) = STALL.checked_sub(last.elapsed()).filter(|d| !d.is_zero()) else {
            return Err(format!("{who} sent nothing for {}s", STALL.as_secs()));
        };
        if let Ok(item) = tokio::time::timeout(left, stream.next()).await {
            return Ok(item);
        }
    }
}

/// Load a `docker save` archive through the engine unless `image` is present already.
pub async fn ensure_archive(
    docker: &Docker,
    path: &Path,
    image: &ImageRef,
) -> Result<Origin, ImageError> {
    let origin = if image_exists(docker, image).await? {
        Origin::Local
    } else {
        load(docker, path, image).await?;
        Origin::Loaded
    };
    record(&image.to_string(), origin.clone());
    Ok(origin)
}

/// `docker load < path`, streamed; `image` must be among what it loaded.
pub async fn load(docker: &Docker, path: &Path, image: &ImageRef) -> Result<(), ImageError> {
    let t = Instant::now();
    let fail = |detail: String| ImageError::Archive {
        path: path.to_path_buf(),
        detail,
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    notice::info(&format!("loading {image} from {}", path.display()));
    // The engine answers only once it has the whole archive (it reads the manifest at the
    // end) and then reports each layer it registers; while it still takes the upload, the
    // bytes it takes are the progress.
    let taken = Arc::new(Mutex::new(Instant::now()));
    let reader = tokio_util::io::ReaderStream::new(file).inspect({
        let taken = Arc::clone(&taken);
        move |_| *taken.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now()
    });
    let body = body_try_stream(reader);
    let options = ImportImageOptionsBuilder::new().quiet(false).build();
    let mut stream = docker.import_image(options, body, None);
    while let Some(item) = next_or_stall(
        &mut stream,
        "the engine took none of the archive and",
        Some(&taken),
    )
    .await
    .map_err(fail)?
    {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail {
                    return Err(fail(e.message.unwrap_or_default()));
                }
            }
            Err(e) => return Err(fail(notice::display_chain(&e))),
        }
    }
    if !image_exists(docker, image).await? {
        return Err(fail(format!(
            "it loaded, but holds no image {image}; name one of its tags with `image:`"
        )));
    }
    notice::info(&format!(
        "loaded {image} in {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Whether `image` is present or a registry would serve it (the engine asks the registry
/// for its manifest, nothing is downloaded). Answered once per process and image; never
/// longer than [`PROBE_DEADLINE`].
pub async fn available(docker: &Docker, image: &ImageRef, config_dir: Option<&Path>) -> bool {
    static CACHE: LazyLock<Mutex<HashMap<String, bool>>> = LazyLock::new(Default::default);
    let key = image.to_string();
    if let Some(v) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return *v;
    }
    let t = Instant::now();
    let answer = match image_exists(docker, image).await {
        Ok(true) => true,
        _ => matches!(
            tokio::time::timeout(
                PROBE_DEADLINE,
                docker.inspect_registry_image(&key, credentials(image, config_dir)),
            )
            .await,
            Ok(Ok(_))
        ),
    };
    tracing::debug!(image = %key, answer, took = ?t.elapsed(), "registry probe");
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, answer);
    answer
}

/// The image's digest: its repository digest for the image's own repository (a pulled
/// image has one), else its image id.
pub async fn digest(docker: &Docker, image: &str) -> Option<String> {
    let inspect = docker.inspect_image(image).await.ok()?;
    let repo = ImageRef::parse(image).ok()?.repository;
    inspect
        .repo_digests
        .and_then(|d| d.into_iter().find(|d| d.starts_with(&format!("{repo}@"))))
        .or(inspect.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_as_docker_config_keys_them() {
        let r = |s: &str| registry_host(&ImageRef::parse(s).unwrap());
        assert_eq!(r("simonsobs/ocs:v0.12.1"), "https://index.docker.io/v1/");
        assert_eq!(r("127.0.0.1:5000/simonsobs/ocs:v0.12.1"), "127.0.0.1:5000");
        assert_eq!(r("ghcr.io/a/b"), "ghcr.io");
    }

    #[test]
    fn provenance_line_names_every_image_and_origin() {
        record("x/recipe:1", Origin::RecipeBuilt);
        record("x/recipe:1", Origin::Local);
        record("x/agent:2", Origin::Built(vec!["x/recipe:1".into()]));
        assert_eq!(origin_of("x/recipe:1"), Some(Origin::RecipeBuilt));
        assert_eq!(
            origin_of("x/agent:2").unwrap().to_string(),
            "built, FROM x/recipe:1 (recipe-built)"
        );
    }

    #[test]
    fn never_names_the_three_ways_out() {
        let w = ways_out("a/b:1");
        for s in [
            "docker pull a/b:1",
            "archive",
            "--images local",
            "override mapping a/b:1",
        ] {
            assert!(w.contains(s), "{w}");
        }
    }
}
