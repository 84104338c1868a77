//! Python packages added to an agent's image (`packages: [so3g==0.2.9]` in a scenario): what
//! a package spec may be, and the derived image's recipe (its Dockerfile and content-hash
//! tag). Pure data; the runtime fetches the wheels with the host's pip and builds the image.
//!
//! A spec is pinned (`name==version`, extras allowed: `name[extra]==version`): the derived
//! image is cached by the text of its packages and the id of its base image, so an unpinned
//! spec would never follow a new release.

use crate::overrides::ImageRef;
use crate::recipes::short_hash;

/// Bumped when the way a derived image is built changes.
const PACKAGES_FORMAT: &str = "ocs-harness-packages-v1";

/// Where the wheels are copied inside the build (the `RUN` that installs them removes them).
const WHEELS_DIR: &str = "/tmp/ocs-harness-wheels";

/// Why `spec` is not a pinned package spec, with what to write instead.
pub fn check_spec(spec: &str) -> Result<(), String> {
    let example = "write `name==version`, e.g. `so3g==0.2.9`";
    if spec.trim().is_empty() {
        return Err(format!("a package must not be empty; {example}"));
    }
    if spec.starts_with('-') {
        return Err(format!(
            "`{spec}` is a pip option, not a package; {example} (the packages come from the \
             host's pip configuration)"
        ));
    }
    if spec.contains("://") || spec.contains('@') || spec.contains('/') {
        return Err(format!(
            "`{spec}` is a URL or a path; only packages from the package index can be added: \
             {example}"
        ));
    }
    if spec.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{spec}` contains whitespace; {example}, without spaces"
        ));
    }
    let Some((name, version)) = spec.split_once("==") else {
        let name = spec
            .split(|c: char| "<>=!~;".contains(c))
            .next()
            .unwrap_or(spec);
        return Err(format!(
            "`{spec}` is not pinned; write `{name}==<version>` (the image is cached by its \
             packages' text, so an unpinned package would not follow new releases)"
        ));
    };
    check_name(name, spec)?;
    let version_ok = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+!_-".contains(c));
    if !version_ok {
        return Err(format!(
            "`{spec}`: `{version}` is not one exact version; {example}"
        ));
    }
    Ok(())
}

/// The specs of a requirements file whose wheels the host fetches for a build (an image set
/// override's `wheels:`): one pinned spec per line (see [`check_spec`]), `#` comments and
/// blank lines skipped. An error gives the 1-based line and what is wrong with it.
pub fn check_requirements(text: &str) -> Result<Vec<String>, (usize, String)> {
    let mut specs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let spec = line.split('#').next().unwrap_or("").trim();
        if spec.is_empty() {
            continue;
        }
        check_spec(spec).map_err(|problem| (i + 1, problem))?;
        specs.push(spec.to_string());
    }
    if specs.is_empty() {
        return Err((
            1,
            "it names no package; write one `name==version` a line".into(),
        ));
    }
    Ok(specs)
}

/// `name` or `name[extra,...]`, as the package index spells names.
fn check_name(name: &str, spec: &str) -> Result<(), String> {
    let (bare, extras) = match name.split_once('[') {
        Some((bare, rest)) => match rest.strip_suffix(']') {
            Some(extras) => (bare, Some(extras)),
            None => return Err(format!("`{spec}`: `[` without a closing `]`")),
        },
        None => (name, None),
    };
    let word = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
    };
    if !word(bare) {
        return Err(format!(
            "`{spec}`: `{bare}` is not a package name (letters, digits, `.`, `_`, `-`)"
        ));
    }
    if let Some(extras) = extras {
        if !extras.split(',').all(word) {
            return Err(format!("`{spec}`: `[{extras}]` is not a list of extras"));
        }
    }
    Ok(())
}

/// The tag of `base` with `packages` installed: `ocs-harness/with-packages:<hash>`, the hash
/// covering the base image's id (its content, not its name) and the packages as written.
pub fn derived_image(base_id: &str, packages: &[String]) -> ImageRef {
    let dockerfile = dockerfile(&ImageRef::parse("base").expect("valid"), packages);
    let mut parts: Vec<&[u8]> = vec![
        PACKAGES_FORMAT.as_bytes(),
        base_id.as_bytes(),
        dockerfile.as_bytes(),
    ];
    parts.extend(packages.iter().map(|p| p.as_bytes()));
    ImageRef {
        repository: "ocs-harness/with-packages".into(),
        tag: short_hash(parts),
    }
}

/// The Dockerfile of the derived image: the wheels (fetched on the host, in the context's
/// `wheels/`) installed with the image's own pip, offline; what the image already has stays.
pub fn dockerfile(base: &ImageRef, packages: &[String]) -> String {
    format!(
        "FROM {base}\n\
         COPY wheels {WHEELS_DIR}\n\
         RUN python3 -m pip install --no-cache-dir --no-index --find-links {WHEELS_DIR} {} \
         && rm -rf {WHEELS_DIR}\n",
        packages.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_files_are_pinned_specs_a_line() {
        let text = "# socs and what its emulator imports\nsocs==0.6.4\n\npytest==9.2.0  # test\n";
        assert_eq!(
            check_requirements(text),
            Ok(vec!["socs==0.6.4".to_string(), "pytest==9.2.0".to_string()])
        );
        let (line, problem) = check_requirements("socs==0.6.4\npytest\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(problem.contains("`pytest==<version>`"), "{problem}");
        let (line, problem) = check_requirements("socs==1\n-r other.txt\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(problem.contains("pip option"), "{problem}");
        assert!(check_requirements("# nothing\n")
            .unwrap_err()
            .1
            .contains("no package"));
    }

    #[test]
    fn pinned_specs_pass_and_others_say_what_to_write() {
        for ok in [
            "so3g==0.2.9",
            "numpy==2.4.6",
            "a_b.c-d[x,y]==1.0rc1",
            "x==1!2.0+local",
        ] {
            assert_eq!(check_spec(ok), Ok(()), "{ok}");
        }
        let err = |s: &str| check_spec(s).unwrap_err();
        assert!(
            err("so3g").contains("write `so3g==<version>`"),
            "{}",
            err("so3g")
        );
        assert!(err("so3g>=0.2").contains("`so3g==<version>`"));
        assert!(err("--index-url=x").contains("pip option"));
        assert!(err("https://x/y.whl").contains("URL or a path"));
        assert!(err("so3g == 1").contains("whitespace"));
        assert!(err("so3g==").contains("not one exact version"));
        assert!(err("so3g==1.*").contains("not one exact version"));
        assert!(err("==1").contains("not a package name"));
        assert!(err("x[a==1").contains("closing"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn derived_tag_covers_base_and_packages() {
        let p = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = derived_image("sha256:1", &p(&["so3g==0.2.9"]));
        assert_eq!(a.repository, "ocs-harness/with-packages");
        assert_eq!(a, derived_image("sha256:1", &p(&["so3g==0.2.9"])));
        assert_ne!(a, derived_image("sha256:2", &p(&["so3g==0.2.9"])));
        assert_ne!(a, derived_image("sha256:1", &p(&["so3g==0.2.8"])));
        let df = dockerfile(
            &ImageRef::parse("ocs-harness/ocs:1").unwrap(),
            &p(&["a==1", "b==2"]),
        );
        assert!(df.starts_with("FROM ocs-harness/ocs:1\n"), "{df}");
        assert!(
            df.contains("--no-index") && df.contains(" a==1 b==2 "),
            "{df}"
        );
    }
}
