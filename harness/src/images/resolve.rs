//! Which image set a run uses, its pull policy and the overrides, from the options, the
//! scenario and (for `auto`) whether a registry serves the published images: no I/O here
//! except reading a set file's name as a word or a path.

use std::path::{Path, PathBuf};

use crate::imageset::{ImageSet, ImagesChoice, OverrideTarget, PullPolicy};
use crate::overrides::{ImageOverrides, ImageRef, ImageRefError};
use crate::plan::{ImageSource, StackSpec};
use crate::role::Role;

/// Which image set a run uses, before anything is asked of an engine.
#[derive(Debug, Clone, PartialEq)]
pub enum SetChoice {
    /// The set given as a value (`LaunchOptions::images`, changed from the default).
    Given,
    /// `--images`/`$OCS_HARNESS_IMAGES`, else the scenario's `images:`: a set file or one of
    /// the words `upstream`, `local`, `auto` ([`ImagesChoice::parse`]).
    Named(PathBuf),
    /// Nothing chosen: `auto` for a run; the default set for `plan` (no engine to ask).
    Unnamed,
}

impl SetChoice {
    /// What a run does with the choice: a set file, a bundled set, or `auto` (`None`: the
    /// given set).
    pub fn for_run(&self) -> Option<ImagesChoice> {
        match self {
            SetChoice::Given => None,
            SetChoice::Named(p) => Some(ImagesChoice::parse(p)),
            SetChoice::Unnamed => Some(ImagesChoice::Auto),
        }
    }
}

/// The set a run uses: `images_file` (`--images`, `$OCS_HARNESS_IMAGES`: a file or
/// `upstream|local|auto`), else `given` when it is not the default set, else the set the stack
/// names (`named`, a scenario's `images:`), else none.
pub fn choose(images_file: Option<&Path>, given: &ImageSet, named: Option<&Path>) -> SetChoice {
    match (images_file, named) {
        (Some(f), _) => SetChoice::Named(f.to_path_buf()),
        (None, _) if *given != ImageSet::default() => SetChoice::Given,
        (None, Some(f)) => SetChoice::Named(f.to_path_buf()),
        (None, None) => SetChoice::Unnamed,
    }
}

/// The set `auto` picks: the published images when `served` (present, or a registry serves
/// them), else the recipes with pulls off (`true`: offline).
pub fn auto_set(served: bool) -> (ImageSet, bool) {
    if served {
        let up = ImageSet::upstream();
        let set = ImageSet {
            name: "upstream (auto)".into(),
            ..up
        };
        (set, false)
    } else {
        let name = "local (auto: no registry serves the published images)".into();
        (
            ImageSet {
                name,
                ..ImageSet::default()
            },
            true,
        )
    }
}

/// The pull policy: `flag` (`--pull`, `$OCS_HARNESS_PULL`), else the set's `pull:`, else
/// `missing` (`never` when `offline`: `auto` found no registry).
pub fn pull_policy(flag: Option<PullPolicy>, set: &ImageSet, offline: bool) -> PullPolicy {
    let fallback = if offline {
        PullPolicy::Never
    } else {
        PullPolicy::Missing
    };
    flag.or(set.pull).unwrap_or(fallback)
}

/// The overrides as `plan` shows them, nothing built: the set's own, its extra ones (an
/// image built from a context is named by a placeholder of the set), then `extra`.
pub fn planned_overrides(
    set: &ImageSet,
    extra: &ImageOverrides,
) -> Result<ImageOverrides, ImageRefError> {
    let mut o = set.overrides();
    for (from, target) in &set.extra {
        let to = match target {
            OverrideTarget::Image(i) => i.clone(),
            OverrideTarget::Build { context, .. } => unbuilt(context).to_string(),
        };
        // A placeholder is no valid reference; show the mapping by repository instead.
        if o.insert(from, &to).is_err() {
            o.insert(from, &format!("ocs-harness/override-build:{}", set.name))?;
        }
    }
    o.extend(extra);
    Ok(o)
}

/// A placeholder for an image built at run time from `context`.
pub fn unbuilt(context: &Path) -> crate::overrides::ImageRef {
    crate::overrides::ImageRef {
        repository: format!("<built from {}>", context.display()),
        tag: "<content hash>".into(),
    }
}

/// The role an `exec` step's image is wanted for (as a missing image's message names it).
pub const EXEC_STEPS: &str = "`exec` steps";

/// The `FROM` images of a build context's Dockerfile (`None`: `Dockerfile`) after the
/// overrides, with their line numbers; none when it cannot be read (the build reports that).
pub type FromLines<'a> = &'a dyn Fn(&Path, Option<&str>, &ImageOverrides) -> Vec<(usize, ImageRef)>;

/// Every image the stack refers to, after `overrides`, with the role that needs it and
/// whether it is a Dockerfile's `FROM` image (`from_lines` reads those).
pub fn wanted_images(
    spec: &StackSpec,
    images: &ImageSet,
    overrides: &ImageOverrides,
    from_lines: FromLines<'_>,
) -> Vec<(ImageRef, Role, bool)> {
    // What the stack refers to, after the set's overrides: (image, for whom, a FROM line).
    let mut wanted: Vec<(ImageRef, Role, bool)> = vec![(
        overrides.resolve(&spec.crossbar_image),
        Role::Crossbar,
        false,
    )];
    if spec.registry {
        wanted.push((
            overrides.resolve(&spec.registry_image),
            Role::registry(),
            false,
        ));
    }
    for agent in &spec.agents {
        let role = Role::agent(&agent.instance_id);
        match &agent.image {
            ImageSource::Image(i) => wanted.push((overrides.resolve(i), role, false)),
            ImageSource::Build {
                context,
                dockerfile,
                ..
            } => {
                for (_, base) in from_lines(context, dockerfile.as_deref(), overrides) {
                    wanted.push((base, role.clone(), true));
                }
            }
        }
    }
    for s in &spec.services {
        let role = Role::Service(s.name.clone());
        let Some(b) = &s.build else {
            wanted.push((overrides.resolve(&s.image), role, false));
            continue;
        };
        for (_, base) in from_lines(&b.context, b.dockerfile.as_deref(), overrides) {
            wanted.push((base, role.clone(), true));
        }
    }
    for image in &spec.exec_images {
        let role = Role::Exec(EXEC_STEPS.into());
        wanted.push((overrides.resolve(image), role, false));
    }
    // An image a `{build: ..}` override makes is built, not pulled.
    let mut built_here = ImageOverrides::new();
    for (from, target) in &images.extra {
        if let OverrideTarget::Build { .. } = target {
            built_here
                .insert(from, BUILT_BY_OVERRIDE)
                .expect("override keys are checked when the set is read");
        }
    }
    wanted.retain(|(image, _, _)| built_here.resolve(image) == *image);
    for (from, target) in &images.extra {
        if let OverrideTarget::Build { context, .. } = target {
            let role = Role::agent(format!("(image set override {from})"));
            for (_, base) in from_lines(context, None, overrides) {
                wanted.push((base, role.clone(), true));
            }
        }
    }
    wanted
}

/// A stand-in for the image a `{build: ..}` override makes (see `wanted_images`).
const BUILT_BY_OVERRIDE: &str = "ocs-harness/built-by-override:placeholder";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_wins_then_a_given_set_then_the_scenarios_then_auto() {
        let default = ImageSet::default();
        let given = ImageSet::upstream();
        let (f, n) = (Path::new("local"), Path::new("upstream"));
        let chosen = choose(Some(f), &given, Some(n));
        assert_eq!(chosen, SetChoice::Named(f.into()));
        assert_eq!(chosen.for_run(), Some(ImagesChoice::Local));
        let chosen = choose(None, &given, Some(n));
        assert_eq!(chosen, SetChoice::Given);
        assert_eq!(chosen.for_run(), None);
        let chosen = choose(None, &default, Some(n));
        assert_eq!(chosen.for_run(), Some(ImagesChoice::Upstream));
        let none = choose(None, &default, None);
        assert_eq!(none, SetChoice::Unnamed);
        assert_eq!(none.for_run(), Some(ImagesChoice::Auto));
    }

    #[test]
    fn the_flag_wins_then_the_set_then_missing_or_never_offline() {
        let mut set = ImageSet::default();
        assert_eq!(pull_policy(None, &set, false), PullPolicy::Missing);
        assert_eq!(pull_policy(None, &set, true), PullPolicy::Never);
        set.pull = Some(PullPolicy::Always);
        assert_eq!(pull_policy(None, &set, true), PullPolicy::Always);
        let flag = Some(PullPolicy::Never);
        assert_eq!(pull_policy(flag, &set, false), PullPolicy::Never);
        assert!(auto_set(false).1 && !auto_set(true).1);
    }

    #[test]
    fn an_image_a_build_override_makes_is_not_wanted_from_elsewhere() {
        let socs = ImageRef::parse("simonsobs/socs:v0.6.4").unwrap();
        let other = ImageRef::parse("simonsobs/socs:v0.6.3").unwrap();
        let spec = StackSpec {
            exec_images: vec![socs.clone(), other.clone()],
            ..StackSpec::default()
        };
        let mut set = ImageSet::default();
        set.extra.push((
            socs.to_string(),
            OverrideTarget::Build {
                context: "no-such-context".into(),
                wheels: Vec::new(),
            },
        ));
        let none = |_: &Path, _: Option<&str>, _: &ImageOverrides| Vec::new();
        let wanted = wanted_images(&spec, &set, &set.overrides(), &none);
        let images: Vec<&ImageRef> = wanted.iter().map(|(i, _, _)| i).collect();
        assert!(!images.contains(&&socs), "{images:?}");
        assert!(images.contains(&&other), "{images:?}");
        assert!(images.contains(&&set.crossbar_image()), "{images:?}");
    }
}
