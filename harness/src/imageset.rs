//! Image set files: which ocs, crossbar and OS the base images are built from (the offline
//! recipe, parameterised), and extra overrides for any other upstream image, so the same
//! scenarios run on two image sets and `compare` can diff what changed.
//!
//! ```yaml
//! name: ocs-0.11.3
//! os: bookworm                        # debootstrap suite (default bookworm)
//! ocs:
//!   version: 0.11.3
//!   requirements: ../harness/recipes/ocs/requirements-0.11.3.txt   # fully pinned
//! crossbar:                           # optional; default crossbar 26.10.1
//!   version: 26.10.1
//!   requirements: ../harness/recipes/crossbar/requirements.txt
//! overrides:                          # optional, applied after the set's own
//!   some/agent-base:latest: local/agent-base:dev
//!   simonsobs/ocs:latest: {build: ../fixtures/images/ocs-patched}  # built on this set
//!   simonsobs/socs:v0.6.4: {build: ., wheels: requirements.txt}   # wheels in its context
//! ```
//!
//! `wheels:` names a requirements file (pinned packages, one a line): the host's pip fetches
//! their wheels and the build context gets them under `wheels/`, for a Dockerfile that installs
//! them with `pip install --no-index --find-links` (a build container may reach no index).
//!
//! `ocs` and `crossbar` can also name a published image (`{image: simonsobs/ocs:v0.12.1}`,
//! pulled when absent, see `pull:`) or a `docker save` archive (`{archive: ocs.tar}`, loaded
//! through the engine; `image:` beside it picks one of its tags). A recipe is built only when
//! something refers to its image: a set of published images never runs debootstrap or pip.
//!
//! ```yaml
//! name: published
//! pull: missing                       # missing (default) | never | always
//! ocs: {image: simonsobs/ocs:v0.12.1}
//! crossbar: {archive: ../crossbar.tar}
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::overrides::{ImageOverrides, ImageRef};
use crate::recipes::{
    DebRecipe, OsRecipe, PythonRecipe, CROSSBAR_26_10_1, OCS_0_12_1, OS_BOOKWORM, SERVICE_RECIPES,
};

/// The set of base images a run uses, and the recipes to build each when missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// A name for reports (`default`, `ocs-0.11.3`, ...).
    pub name: String,
    /// Root filesystem recipe.
    pub os: OsRecipe,
    /// ocs base image recipe.
    pub ocs: PythonRecipe,
    /// crossbar image recipe.
    pub crossbar: PythonRecipe,
    /// Extra overrides, in order, applied after the set's own (see the module documentation).
    pub extra: Vec<(String, OverrideTarget)>,
    /// Where the ocs base image comes from (default: the `ocs` recipe).
    pub ocs_from: BaseFrom,
    /// Where the crossbar image comes from (default: the `crossbar` recipe).
    pub crossbar_from: BaseFrom,
    /// The set's pull policy (`pull:`); a run's `--pull` / `OCS_HARNESS_PULL` wins.
    pub pull: Option<PullPolicy>,
    /// Every image name as written: the set adds no override (the `upstream` set).
    pub as_written: bool,
    /// `code-coverage: {source: [...]}`: Python code coverage in the agents' containers of
    /// every run with this set (a scenario's own `code-coverage:` wins).
    pub code_coverage: Option<crate::codecov::CodeCoverage>,
}

/// Where one of a set's base images comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BaseFrom {
    /// Built from the set's recipe when absent.
    #[default]
    Recipe,
    /// A published image, used as is (pulled when absent, by the pull policy).
    Image(ImageRef),
    /// A `docker save` archive, loaded through the engine when the image is absent.
    Archive {
        /// The archive file.
        path: PathBuf,
        /// The tag used from it (`image:` beside `archive:`, else its first tag).
        image: ImageRef,
    },
}

/// When to pull an image, as compose spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Pull an image that is not present (default).
    #[default]
    Missing,
    /// Never pull: an absent image is an error (offline).
    Never,
    /// Pull every published image, present or not.
    Always,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "missing" => Ok(Self::Missing),
            "never" => Ok(Self::Never),
            "always" => Ok(Self::Always),
            _ => Err(format!(
                "{s:?} is not a pull policy: use missing, never or always"
            )),
        }
    }
}

impl std::fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Missing => "missing",
            Self::Never => "never",
            Self::Always => "always",
        })
    }
}

/// Which images a run uses: `--images upstream|local|auto|FILE` (`OCS_HARNESS_IMAGES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImagesChoice {
    /// The published images if they are present or a registry serves them, else `Local`.
    Auto,
    /// The published images, names as written in Dockerfiles and scenarios.
    Upstream,
    /// The offline recipes ([`ImageSet::default`]).
    Local,
    /// An image set file.
    File(PathBuf),
}

impl ImagesChoice {
    /// `upstream`, `local` and `auto` are words unless a file of that name exists; anything
    /// else is a set file.
    pub fn parse(value: &Path) -> Self {
        if value.exists() {
            return Self::File(value.to_path_buf());
        }
        match value.to_str() {
            Some("auto") => Self::Auto,
            Some("upstream") => Self::Upstream,
            Some("local") => Self::Local,
            _ => Self::File(value.to_path_buf()),
        }
    }
}

impl Default for ImageSet {
    fn default() -> Self {
        Self {
            name: "default".into(),
            os: OS_BOOKWORM,
            ocs: OCS_0_12_1,
            crossbar: CROSSBAR_26_10_1,
            extra: Vec::new(),
            ocs_from: BaseFrom::Recipe,
            crossbar_from: BaseFrom::Recipe,
            pull: None,
            as_written: false,
            code_coverage: None,
        }
    }
}

/// The published ocs image the `upstream` set uses.
pub const UPSTREAM_OCS: &str = "simonsobs/ocs:latest";
/// The published crossbar image the `upstream` set uses.
pub const UPSTREAM_CROSSBAR: &str = "simonsobs/ocs-crossbar:latest";

impl ImageSet {
    /// The bundled `upstream` set: the published images under the names Dockerfiles and
    /// scenarios write (no override at all), pulled when missing.
    pub fn upstream() -> Self {
        let parse = |s: &str| ImageRef::parse(s).expect("the upstream names are valid");
        Self {
            name: "upstream".into(),
            ocs_from: BaseFrom::Image(parse(UPSTREAM_OCS)),
            crossbar_from: BaseFrom::Image(parse(UPSTREAM_CROSSBAR)),
            as_written: true,
            ..Self::default()
        }
    }

    /// Whether the set is the published images as written (no name is redirected).
    pub fn is_upstream(&self) -> bool {
        self.overrides().entries().is_empty()
    }

    /// Local OS image.
    pub fn os_image(&self) -> ImageRef {
        self.os.image()
    }

    /// The ocs base image: the recipe's tag, the published name, or the archive's tag.
    pub fn ocs_image(&self) -> ImageRef {
        match &self.ocs_from {
            BaseFrom::Recipe => self.ocs.image(&self.os_image()),
            BaseFrom::Image(i) | BaseFrom::Archive { image: i, .. } => i.clone(),
        }
    }

    /// The crossbar image: the recipe's tag, the published name, or the archive's tag.
    pub fn crossbar_image(&self) -> ImageRef {
        match &self.crossbar_from {
            BaseFrom::Recipe => self.crossbar.image(&self.os_image()),
            BaseFrom::Image(i) | BaseFrom::Archive { image: i, .. } => i.clone(),
        }
    }

    /// The overrides that make real-world image names point at the set's images:
    /// `simonsobs/ocs:latest` and `simonsobs/ocs:v<version>` (a recipe's version) to the ocs
    /// image, `simonsobs/ocs-crossbar:latest` to the crossbar image, and each service recipe's
    /// published name (`influxdb:1.7`) to its image.
    pub fn overrides(&self) -> ImageOverrides {
        let ocs = self.ocs_image().to_string();
        let crossbar = self.crossbar_image().to_string();
        let mut o = ImageOverrides::new();
        if self.as_written {
            return o;
        }
        let mut pairs = vec![("simonsobs/ocs:latest".to_string(), &ocs)];
        if self.ocs_from == BaseFrom::Recipe {
            pairs.push((format!("simonsobs/ocs:v{}", self.ocs.version), &ocs));
        }
        pairs.push(("simonsobs/ocs-crossbar:latest".to_string(), &crossbar));
        for (from, to) in pairs {
            if from != *to {
                o.insert(&from, to)
                    .expect("built-in override references are valid");
            }
        }
        for (recipe, image) in self.service_recipes() {
            o.insert(recipe.stands_for, &image.to_string())
                .expect("built-in override references are valid");
        }
        o
    }

    /// The service recipes with their images: each stands for its published image
    /// (`influxdb:1.7`) in every set but the upstream one, built only when a stack refers to it.
    pub fn service_recipes(&self) -> Vec<(&'static DebRecipe, ImageRef)> {
        if self.as_written {
            return Vec::new();
        }
        let os = self.os_image();
        SERVICE_RECIPES.iter().map(|r| (r, r.image(&os))).collect()
    }
}

impl ImageSet {
    /// The base images this set builds from its recipes (none for published or archived
    /// images): what a CI cache keeps between runs.
    pub fn recipe_images(&self) -> Vec<ImageRef> {
        let mut out = Vec::new();
        if self.ocs_from == BaseFrom::Recipe {
            out.push(self.ocs_image());
        }
        if self.crossbar_from == BaseFrom::Recipe {
            out.push(self.crossbar_image());
        }
        out
    }

    /// A cache key for [`ImageSet::recipe_images`]: `ocs-harness-images-<arch>-<hash>`, the
    /// hash taken over their content-hash tags (so any recipe change is a new key); `None`
    /// when the set builds nothing.
    pub fn cache_key(&self) -> Option<String> {
        let names: Vec<String> = self.recipe_images().iter().map(|i| i.to_string()).collect();
        if names.is_empty() {
            return None;
        }
        let hash = crate::recipes::short_hash(names.iter().map(|n| n.as_bytes()));
        Some(format!(
            "ocs-harness-images-{}-{hash}",
            std::env::consts::ARCH
        ))
    }
}

/// Where an extra override points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideTarget {
    /// An existing local image.
    Image(String),
    /// An image built from this context (its `FROM` lines see the set's overrides).
    Build {
        /// The build context (a directory with a Dockerfile).
        context: PathBuf,
        /// `wheels: FILE`: the pinned packages of that requirements file, whose wheels (with
        /// their dependencies) the host's pip fetches and the build context gets under
        /// `wheels/`, for a Dockerfile that installs them offline (a build container may
        /// reach no package index). Empty: none.
        wheels: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    os: Option<String>,
    ocs: Option<Base>,
    crossbar: Option<Base>,
    pull: Option<PullPolicy>,
    #[serde(default)]
    overrides: BTreeMap<String, Target>,
    #[serde(rename = "code-coverage")]
    code_coverage: Option<crate::codecov::CodeCoverage>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Base {
    Recipe(Package),
    Published(Published),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Package {
    version: String,
    requirements: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Published {
    image: Option<String>,
    archive: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Target {
    Image(String),
    Build {
        build: PathBuf,
        wheels: Option<PathBuf>,
    },
}

/// Why an image set file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("image set {file}: {problem}")]
pub struct ImageSetError {
    /// The file.
    pub file: String,
    /// What is wrong and what to do.
    pub problem: String,
}

/// Read an image set file. Paths in it are relative to the file. The words `upstream`,
/// `local` and `auto` (no such file) are the bundled sets; without Docker, `auto` reads as
/// `local` (the launch decides it: see `runtime::launch`).
pub fn load(path: &Path) -> Result<ImageSet, ImageSetError> {
    match ImagesChoice::parse(path) {
        ImagesChoice::Upstream => return Ok(ImageSet::upstream()),
        ImagesChoice::Local => return Ok(ImageSet::default()),
        ImagesChoice::Auto => {
            return Ok(ImageSet {
                name: "auto".into(),
                ..ImageSet::default()
            })
        }
        ImagesChoice::File(_) => {}
    }
    let err = |problem: String| ImageSetError {
        file: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot be read: {e}")))?;
    let file: File = serde_saphyr::from_str(&text).map_err(|e| err(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut set = ImageSet {
        name: file.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "images".into())
        }),
        ..ImageSet::default()
    };
    if let Some(os) = file.os {
        set.os = OsRecipe {
            suite: Cow::Owned(os),
            ..OS_BOOKWORM
        };
    }
    let package = |p: Package, default: PythonRecipe| package(p, default, dir).map_err(err);
    let published =
        |p: Published, what: &str| published(p, dir).map_err(|e| err(format!("{what}: {e}")));
    match file.ocs {
        Some(Base::Recipe(p)) => set.ocs = package(p, OCS_0_12_1)?,
        Some(Base::Published(p)) => set.ocs_from = published(p, "ocs")?,
        None => {}
    }
    match file.crossbar {
        Some(Base::Recipe(p)) => set.crossbar = package(p, CROSSBAR_26_10_1)?,
        Some(Base::Published(p)) => set.crossbar_from = published(p, "crossbar")?,
        None => {}
    }
    set.pull = file.pull;
    set.code_coverage = file.code_coverage;
    for (from, target) in file.overrides {
        ImageRef::parse(&from).map_err(|e| err(format!("override {from:?}: {e}")))?;
        let target = match target {
            Target::Image(i) => {
                ImageRef::parse(&i).map_err(|e| err(format!("override {from:?} -> {i:?}: {e}")))?;
                OverrideTarget::Image(i)
            }
            Target::Build { build, wheels } => OverrideTarget::Build {
                context: dir.join(build),
                wheels: match wheels {
                    Some(file) => requirements(&dir.join(file))
                        .map_err(|e| err(format!("override {from:?}: {e}")))?,
                    None => Vec::new(),
                },
            },
        };
        set.extra.push((from, target));
    }
    Ok(set)
}

/// The pinned packages of a requirements file an override's `wheels:` names.
fn requirements(file: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("wheels: {} cannot be read: {e}", file.display()))?;
    crate::packages::check_requirements(&text)
        .map_err(|(line, problem)| format!("wheels: {}:{line}: {problem}", file.display()))
}

/// A recipe given as `{version: ..., requirements: ...}` (paths relative to `dir`).
fn package(p: Package, default: PythonRecipe, dir: &Path) -> Result<PythonRecipe, String> {
    let requirements = match &p.requirements {
        Some(r) => {
            let r = dir.join(r);
            std::fs::read_to_string(&r)
                .map_err(|e| format!("requirements {} cannot be read: {e}", r.display()))?
        }
        None if p.version == default.version => default.requirements.to_string(),
        None => {
            return Err(format!(
                "{} {} needs `requirements:` (a fully pinned file: `pip freeze` of a venv \
                 with {}=={} installed), so the image does not drift",
                default.name, p.version, default.name, p.version
            ))
        }
    };
    let wanted = format!("{}=={}", default.name, p.version);
    if !requirements.lines().any(|l| l.trim() == wanted) {
        return Err(format!(
            "the requirements for {} {} do not pin `{wanted}`",
            default.name, p.version
        ));
    }
    Ok(PythonRecipe {
        version: Cow::Owned(p.version),
        requirements: Cow::Owned(requirements),
        ..default
    })
}

/// A base given as `{image: ...}` or `{archive: ..., image: ...}` (paths relative to `dir`).
fn published(p: Published, dir: &Path) -> Result<BaseFrom, String> {
    let image = match &p.image {
        Some(i) => Some(ImageRef::parse(i).map_err(|e| format!("image {i:?}: {e}"))?),
        None => None,
    };
    match (p.archive, image) {
        (None, Some(image)) => Ok(BaseFrom::Image(image)),
        (Some(a), image) => {
            let path = dir.join(a);
            let image = match image {
                Some(i) => i,
                None => archive_first_tag(&path)?,
            };
            Ok(BaseFrom::Archive { path, image })
        }
        (None, None) => Err(
            "needs `version:` (a recipe), `image:` (a published image) or \
             `archive:` (a docker save file)"
                .into(),
        ),
    }
}

/// The first tag in a `docker save` archive's `manifest.json`.
pub fn archive_first_tag(path: &Path) -> Result<ImageRef, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("archive {} cannot be read: {e}", path.display()))?;
    let corrupt = |why: String| {
        format!(
            "archive {} is not a `docker save` file ({why}); make it with \
             `docker save -o FILE IMAGE`",
            path.display()
        )
    };
    let mut archive = tar::Archive::new(file);
    let entries = archive.entries().map_err(|e| corrupt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(e.to_string()))?;
        let is_manifest = entry
            .path()
            .map(|p| p.as_os_str() == "manifest.json")
            .unwrap_or(false);
        if !is_manifest {
            continue;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).map_err(|e| corrupt(e.to_string()))?;
        #[derive(Deserialize)]
        struct Entry {
            #[serde(rename = "RepoTags", default)]
            repo_tags: Option<Vec<String>>,
        }
        let manifest: Vec<Entry> =
            serde_json::from_str(&text).map_err(|e| corrupt(format!("manifest.json: {e}")))?;
        let tag = manifest
            .into_iter()
            .find_map(|e| e.repo_tags.and_then(|t| t.into_iter().next()))
            .ok_or_else(|| {
                format!(
                    "archive {} holds no tagged image; name one with `image:` beside `archive:`",
                    path.display()
                )
            })?;
        return ImageRef::parse(&tag).map_err(|e| corrupt(format!("tag {tag:?}: {e}")));
    }
    Err(corrupt("no manifest.json".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn loads_a_set_with_its_own_pins_and_overrides() {
        let dir = std::env::temp_dir().join(format!("ocsh-imageset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "req.txt", "ocs==0.11.3\nnumpy==1.26.4\n");
        let set = load(&write(
            &dir,
            "old.yaml",
            "name: old\nocs: {version: 0.11.3, requirements: req.txt}\noverrides:\n  \
             a/b:latest: c/d:1\n  simonsobs/ocs:latest: {build: ctx}\n",
        ))
        .unwrap();
        assert_eq!(set.name, "old");
        assert_eq!(set.ocs.version, "0.11.3");
        assert!(set.ocs_image().tag.starts_with("0.11.3-"));
        assert_ne!(set.ocs_image(), ImageSet::default().ocs_image());
        assert_eq!(set.crossbar_image(), ImageSet::default().crossbar_image());
        assert_eq!(
            set.extra,
            vec![
                ("a/b:latest".into(), OverrideTarget::Image("c/d:1".into())),
                (
                    "simonsobs/ocs:latest".into(),
                    OverrideTarget::Build {
                        context: dir.join("ctx"),
                        wheels: Vec::new()
                    }
                ),
            ]
        );

        write(&dir, "wheels.txt", "socs==0.6.4\npytest==9.2.0\n");
        let set = load(&write(
            &dir,
            "wheels.yaml",
            "overrides:\n  simonsobs/socs:v0.6.4: {build: ctx, wheels: wheels.txt}\n",
        ))
        .unwrap();
        assert_eq!(
            set.extra[0].1,
            OverrideTarget::Build {
                context: dir.join("ctx"),
                wheels: vec!["socs==0.6.4".into(), "pytest==9.2.0".into()]
            }
        );
        write(&dir, "loose.txt", "socs\n");
        let e = load(&write(
            &dir,
            "loose.yaml",
            "overrides:\n  simonsobs/socs:v0.6.4: {build: ctx, wheels: loose.txt}\n",
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("loose.txt:1: `socs` is not pinned"),
            "{e}"
        );
        let e = load(&write(
            &dir,
            "nofile.yaml",
            "overrides:\n  simonsobs/socs:v0.6.4: {build: ctx, wheels: none.txt}\n",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("none.txt cannot be read"), "{e}");

        let e = load(&write(&dir, "bad.yaml", "ocs: {version: 0.11.3}\n")).unwrap_err();
        assert!(e.to_string().contains("needs `requirements:`"), "{e}");
        let e = load(&write(&dir, "typo.yaml", "ocss: {version: 1}\n")).unwrap_err();
        assert!(e.to_string().contains("ocss"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn published_images_archives_and_pull_policy() {
        let dir = std::env::temp_dir().join(format!("ocsh-imageset-pub-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A minimal `docker save` layout: manifest.json naming the image's tags.
        let mut tar = tar::Builder::new(Vec::new());
        let manifest = br#"[{"Config":"c.json","RepoTags":["my/crossbar:1"],"Layers":[]}]"#;
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "manifest.json", &manifest[..])
            .unwrap();
        std::fs::write(dir.join("cb.tar"), tar.into_inner().unwrap()).unwrap();
        let set = load(&write(
            &dir,
            "pub.yaml",
            "pull: never
ocs: {image: reg:5000/simonsobs/ocs:v0.12.1}
\
             crossbar: {archive: cb.tar}
",
        ))
        .unwrap();
        assert_eq!(set.pull, Some(PullPolicy::Never));
        assert_eq!(
            set.ocs_image().to_string(),
            "reg:5000/simonsobs/ocs:v0.12.1"
        );
        assert_eq!(set.crossbar_image().to_string(), "my/crossbar:1");
        let entries = set.overrides().entries();
        assert!(entries
            .iter()
            .any(|(from, to)| from == "influxdb:1.7"
                && to.starts_with("ocs-harness/influxdb:1.6.7-")));
        assert_eq!(
            entries
                .into_iter()
                .filter(|(from, _)| from != "influxdb:1.7")
                .collect::<Vec<_>>(),
            vec![
                (
                    "simonsobs/ocs:latest".into(),
                    "reg:5000/simonsobs/ocs:v0.12.1".into()
                ),
                (
                    "simonsobs/ocs-crossbar:latest".into(),
                    "my/crossbar:1".into()
                ),
            ]
        );
        std::fs::write(dir.join("bad.tar"), "not a tar").unwrap();
        let e = load(&write(
            &dir,
            "bad.yaml",
            "crossbar: {archive: bad.tar}
",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("is not a `docker save` file"), "{e}");
        let e = load(&write(
            &dir,
            "none.yaml",
            "ocs: {}
",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("needs `version:`"), "{e}");
        let e = load(&write(
            &dir,
            "pol.yaml",
            "pull: sometimes
",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn upstream_renames_nothing_and_words_choose_bundled_sets() {
        assert!(ImageSet::upstream().overrides().entries().is_empty());
        assert!(ImageSet::upstream().is_upstream());
        assert!(!ImageSet::default().is_upstream());
        assert_eq!(
            ImagesChoice::parse(Path::new("upstream")),
            ImagesChoice::Upstream
        );
        assert_eq!(ImagesChoice::parse(Path::new("local")), ImagesChoice::Local);
        assert_eq!(ImagesChoice::parse(Path::new("auto")), ImagesChoice::Auto);
        assert_eq!(
            ImagesChoice::parse(Path::new("x.yaml")),
            ImagesChoice::File("x.yaml".into())
        );
        assert_eq!(load(Path::new("upstream")).unwrap().name, "upstream");
        assert_eq!("always".parse(), Ok(PullPolicy::Always));
    }

    #[test]
    fn bundled_sets_load() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images");
        for name in [
            "default.yaml",
            "ocs-0.11.3.yaml",
            "crossbar-25.12.1.yaml",
            "seeded-difference.yaml",
        ] {
            let set = load(&root.join(name)).unwrap_or_else(|e| panic!("{e}"));
            assert!(!set.name.is_empty());
        }
    }

    #[test]
    fn the_cache_key_follows_the_recipes_and_is_none_for_published_sets() {
        let local = ImageSet::default();
        assert_eq!(local.recipe_images().len(), 2);
        let key = local.cache_key().expect("a recipe set has a key");
        assert!(key.starts_with("ocs-harness-images-"), "{key}");
        assert_eq!(local.cache_key(), ImageSet::default().cache_key());
        let mut changed = local.clone();
        changed.ocs.requirements = "ocs==0.12.1\n".into();
        assert_ne!(changed.cache_key(), local.cache_key());
        assert_eq!(ImageSet::upstream().cache_key(), None);
        let half = ImageSet {
            ocs_from: ImageSet::upstream().ocs_from,
            ..ImageSet::default()
        };
        assert_eq!(half.recipe_images(), [local.crossbar_image()]);
    }
}
