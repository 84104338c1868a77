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
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::overrides::{ImageOverrides, ImageRef};
use crate::recipes::{OsRecipe, PythonRecipe, CROSSBAR_26_10_1, OCS_0_12_1, OS_BOOKWORM};

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
}

impl Default for ImageSet {
    fn default() -> Self {
        Self {
            name: "default".into(),
            os: OS_BOOKWORM,
            ocs: OCS_0_12_1,
            crossbar: CROSSBAR_26_10_1,
            extra: Vec::new(),
        }
    }
}

impl ImageSet {
    /// Local OS image.
    pub fn os_image(&self) -> ImageRef {
        self.os.image()
    }

    /// Local ocs base image.
    pub fn ocs_image(&self) -> ImageRef {
        self.ocs.image(&self.os_image())
    }

    /// Local crossbar image.
    pub fn crossbar_image(&self) -> ImageRef {
        self.crossbar.image(&self.os_image())
    }

    /// The overrides that make real-world image names point at these local images:
    /// `simonsobs/ocs:latest` and `simonsobs/ocs:v<version>` to the ocs image,
    /// `simonsobs/ocs-crossbar:latest` to the crossbar image.
    pub fn overrides(&self) -> ImageOverrides {
        let ocs = self.ocs_image().to_string();
        let crossbar = self.crossbar_image().to_string();
        let mut o = ImageOverrides::new();
        for (from, to) in [
            ("simonsobs/ocs:latest".to_string(), &ocs),
            (format!("simonsobs/ocs:v{}", self.ocs.version), &ocs),
            ("simonsobs/ocs-crossbar:latest".to_string(), &crossbar),
        ] {
            o.insert(&from, to)
                .expect("built-in override references are valid");
        }
        o
    }
}

/// Where an extra override points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideTarget {
    /// An existing local image.
    Image(String),
    /// An image built from this context (its `FROM` lines see the set's overrides).
    Build(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    os: Option<String>,
    ocs: Option<Package>,
    crossbar: Option<Package>,
    #[serde(default)]
    overrides: BTreeMap<String, Target>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Package {
    version: String,
    requirements: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Target {
    Image(String),
    Build { build: PathBuf },
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

/// Read an image set file. Paths in it are relative to the file.
pub fn load(path: &Path) -> Result<ImageSet, ImageSetError> {
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
    let package = |p: Package, default: PythonRecipe| {
        let requirements = match &p.requirements {
            Some(r) => {
                let r = dir.join(r);
                std::fs::read_to_string(&r)
                    .map_err(|e| err(format!("requirements {} cannot be read: {e}", r.display())))?
            }
            None if p.version == default.version => default.requirements.to_string(),
            None => {
                return Err(err(format!(
                    "{} {} needs `requirements:` (a fully pinned file: `pip freeze` of a venv \
                     with {}=={} installed), so the image does not drift",
                    default.name, p.version, default.name, p.version
                )))
            }
        };
        let wanted = format!("{}=={}", default.name, p.version);
        if !requirements.lines().any(|l| l.trim() == wanted) {
            return Err(err(format!(
                "the requirements for {} {} do not pin `{wanted}`",
                default.name, p.version
            )));
        }
        Ok(PythonRecipe {
            version: Cow::Owned(p.version),
            requirements: Cow::Owned(requirements),
            ..default
        })
    };
    if let Some(p) = file.ocs {
        set.ocs = package(p, OCS_0_12_1)?;
    }
    if let Some(p) = file.crossbar {
        set.crossbar = package(p, CROSSBAR_26_10_1)?;
    }
    for (from, target) in file.overrides {
        ImageRef::parse(&from).map_err(|e| err(format!("override {from:?}: {e}")))?;
        let target = match target {
            Target::Image(i) => {
                ImageRef::parse(&i).map_err(|e| err(format!("override {from:?} -> {i:?}: {e}")))?;
                OverrideTarget::Image(i)
            }
            Target::Build { build } => OverrideTarget::Build(dir.join(build)),
        };
        set.extra.push((from, target));
    }
    Ok(set)
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
                    OverrideTarget::Build(dir.join("ctx"))
                ),
            ]
        );

        let e = load(&write(&dir, "bad.yaml", "ocs: {version: 0.11.3}\n")).unwrap_err();
        assert!(e.to_string().contains("needs `requirements:`"), "{e}");
        let e = load(&write(&dir, "typo.yaml", "ocss: {version: 1}\n")).unwrap_err();
        assert!(e.to_string().contains("ocss"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
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
}
