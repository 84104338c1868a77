//! The offline recipes for the base images (a Debian rootfs, the ocs image, the crossbar
//! image) and their content-hash tags. A recipe's tag changes whenever anything that goes
//! into it changes, so "is the image there?" is the whole cache check.
//!
//! Pure data: the recipe files are compiled into the crate, so the harness builds the same
//! images from any working directory and as a dependency of a plugin's tests.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::overrides::ImageRef;

/// The Debian release and packages of the root filesystem every base image starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRecipe {
    /// Debian suite given to debootstrap.
    pub suite: Cow<'static, str>,
    /// debootstrap variant.
    pub variant: &'static str,
    /// Packages added to the minimal base.
    pub include: &'static [&'static str],
}

/// The default OS recipe: Debian bookworm (CPython 3.11, the ABI the wheels are built for).
pub const OS_BOOKWORM: OsRecipe = OsRecipe {
    suite: Cow::Borrowed("bookworm"),
    variant: "minbase",
    include: &["python3", "python3-venv", "dumb-init", "ca-certificates"],
};

/// A Dockerfile-based recipe: a Dockerfile template (`@BASE_IMAGE@` is the OS image), a pinned
/// requirements file turned into a local wheelhouse, and extra files of the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonRecipe {
    /// Short name, used in tags and cache paths: `ocs` or `crossbar`.
    pub name: &'static str,
    /// The version of the main package, part of the tag.
    pub version: Cow<'static, str>,
    /// Dockerfile template.
    pub dockerfile: &'static str,
    /// Fully pinned requirements (every dependency).
    pub requirements: Cow<'static, str>,
    /// Other context files: `(name, contents)`.
    pub files: &'static [(&'static str, &'static str)],
}

/// ocs 0.12.1 with every dependency pinned.
pub const OCS_0_12_1: PythonRecipe = PythonRecipe {
    name: "ocs",
    version: Cow::Borrowed("0.12.1"),
    dockerfile: include_str!("../recipes/ocs/Dockerfile"),
    requirements: Cow::Borrowed(include_str!("../recipes/ocs/requirements.txt")),
    files: &[],
};

/// crossbar 26.10.1 with every dependency pinned, laid out like simonsobs/ocs-crossbar.
pub const CROSSBAR_26_10_1: PythonRecipe = PythonRecipe {
    name: "crossbar",
    version: Cow::Borrowed("26.10.1"),
    dockerfile: include_str!("../recipes/crossbar/Dockerfile"),
    requirements: Cow::Borrowed(include_str!("../recipes/crossbar/requirements.txt")),
    files: &[
        (
            "config.json.template",
            include_str!("../recipes/crossbar/config.json.template"),
        ),
        (
            "run-crossbar.sh",
            include_str!("../recipes/crossbar/run-crossbar.sh"),
        ),
    ],
};

/// A service image built from Debian packages installed with dpkg on the OS image, standing
/// for a published image (`stands_for`) when no registry serves it. The `.deb` files are
/// fetched on the host (`apt-get download` of the pinned `packages`), never in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebRecipe {
    /// Short name, used in tags and cache paths.
    pub name: &'static str,
    /// The packaged version, part of the tag.
    pub version: &'static str,
    /// The published image it stands for (the name scenarios and compose files write).
    pub stands_for: &'static str,
    /// Pinned packages (`name=version`) missing from the OS image.
    pub packages: &'static [&'static str],
    /// Dockerfile template (`@BASE_IMAGE@` is the OS image); the debs are in `debs/`.
    pub dockerfile: &'static str,
}

/// `influxdb:1.7`, offline: bookworm's influxdb 1.6.7 (same 1.x HTTP API). `lsb-base` is the
/// one dependency the minbase rootfs lacks.
pub const INFLUXDB_1_6: DebRecipe = DebRecipe {
    name: "influxdb",
    version: "1.6.7",
    stands_for: "influxdb:1.7",
    packages: &["influxdb=1.6.7~rc0-1+b13", "lsb-base=11.6"],
    dockerfile: include_str!("../recipes/influxdb/Dockerfile"),
};

/// The service recipes, each used for the image it stands for unless the set is upstream.
pub const SERVICE_RECIPES: &[DebRecipe] = &[INFLUXDB_1_6];

/// Bumped when the way recipes are turned into images changes.
const RECIPE_FORMAT: &str = "ocs-harness-recipes-v1";

/// First 12 hex digits of the SHA-256 of `parts`, each length-prefixed.
pub fn short_hash<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl OsRecipe {
    /// The recipe's content hash.
    pub fn hash(&self) -> String {
        let include = self.include.join(",");
        short_hash([
            RECIPE_FORMAT.as_bytes(),
            b"debootstrap",
            self.suite.as_bytes(),
            self.variant.as_bytes(),
            include.as_bytes(),
        ])
    }

    /// `ocs-harness/os:<suite>-<hash>`.
    pub fn image(&self) -> ImageRef {
        ImageRef {
            repository: "ocs-harness/os".into(),
            tag: format!("{}-{}", self.suite, self.hash()),
        }
    }
}

impl PythonRecipe {
    /// The recipe's content hash, which covers the OS image it builds on.
    pub fn hash(&self, os: &ImageRef) -> String {
        let os = os.to_string();
        let mut parts: Vec<&[u8]> = vec![
            RECIPE_FORMAT.as_bytes(),
            os.as_bytes(),
            self.name.as_bytes(),
            self.version.as_bytes(),
            self.dockerfile.as_bytes(),
            self.requirements.as_bytes(),
        ];
        for (name, contents) in self.files {
            parts.push(name.as_bytes());
            parts.push(contents.as_bytes());
        }
        short_hash(parts)
    }

    /// `ocs-harness/<name>:<version>-<hash>`.
    pub fn image(&self, os: &ImageRef) -> ImageRef {
        ImageRef {
            repository: format!("ocs-harness/{}", self.name),
            tag: format!("{}-{}", self.version, self.hash(os)),
        }
    }

    /// The Dockerfile with the OS image filled in.
    pub fn render_dockerfile(&self, os: &ImageRef) -> String {
        self.dockerfile.replace("@BASE_IMAGE@", &os.to_string())
    }
}

impl DebRecipe {
    /// The recipe's content hash, which covers the OS image it builds on.
    pub fn hash(&self, os: &ImageRef) -> String {
        let os = os.to_string();
        let packages = self.packages.join(",");
        short_hash([
            RECIPE_FORMAT.as_bytes(),
            b"debs",
            os.as_bytes(),
            self.name.as_bytes(),
            packages.as_bytes(),
            self.dockerfile.as_bytes(),
        ])
    }

    /// `ocs-harness/<name>:<version>-<hash>`.
    pub fn image(&self, os: &ImageRef) -> ImageRef {
        ImageRef {
            repository: format!("ocs-harness/{}", self.name),
            tag: format!("{}-{}", self.version, self.hash(os)),
        }
    }

    /// The Dockerfile with the OS image filled in.
    pub fn render_dockerfile(&self, os: &ImageRef) -> String {
        self.dockerfile.replace("@BASE_IMAGE@", &os.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imageset::ImageSet;

    #[test]
    fn tags_are_stable_and_content_addressed() {
        let set = ImageSet::default();
        assert_eq!(set.os_image().repository, "ocs-harness/os");
        assert!(set.os_image().tag.starts_with("bookworm-"));
        assert!(set.ocs_image().tag.starts_with("0.12.1-"));
        assert!(set.crossbar_image().tag.starts_with("26.10.1-"));
        assert_eq!(set.ocs_image(), ImageSet::default().ocs_image());

        let mut changed = set.clone();
        changed.ocs.requirements = "ocs==0.12.1\n".into();
        assert_ne!(changed.ocs_image(), set.ocs_image());
        assert_eq!(changed.crossbar_image(), set.crossbar_image());

        let mut other_os = set.clone();
        other_os.os.suite = "trixie".into();
        assert_ne!(other_os.ocs_image(), set.ocs_image());
    }

    #[test]
    fn requirements_are_fully_pinned() {
        for recipe in [OCS_0_12_1, CROSSBAR_26_10_1] {
            let pins: Vec<&str> = recipe
                .requirements
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .collect();
            assert!(pins.len() > 10, "{} has too few pins", recipe.name);
            for line in pins {
                assert!(
                    line.contains("=="),
                    "{}: {line:?} is not pinned",
                    recipe.name
                );
            }
            let main = format!("{}=={}", recipe.name, recipe.version);
            assert!(
                recipe.requirements.lines().any(|l| l == main),
                "{} must pin {main}",
                recipe.name
            );
        }
    }

    #[test]
    fn service_recipes_pin_their_packages_and_stand_for_a_valid_name() {
        let os = ImageSet::default().os_image();
        for r in SERVICE_RECIPES {
            assert!(ImageRef::parse(r.stands_for).is_ok(), "{}", r.stands_for);
            assert!(r.packages.iter().all(|p| p.contains('=')), "{}", r.name);
            assert!(r.image(&os).tag.starts_with(&format!("{}-", r.version)));
            assert!(!r.render_dockerfile(&os).contains("@BASE_IMAGE@"));
        }
    }

    #[test]
    fn dockerfile_template_is_filled() {
        let set = ImageSet::default();
        let df = set.ocs.render_dockerfile(&set.os_image());
        assert!(df.contains(&format!("FROM {}", set.os_image())));
        assert!(!df.contains("@BASE_IMAGE@"));
        assert!(df.contains("ENTRYPOINT [\"dumb-init\", \"ocs-agent-cli\"]"));
    }
}
