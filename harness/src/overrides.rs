//! Image overrides: a mapping `upstream image -> local image` applied to every image the
//! harness starts and to the `FROM` lines of every Dockerfile it builds. This is how a
//! Dockerfile written for the real world (`FROM simonsobs/ocs:latest`) builds here unchanged,
//! and how a base-image upgrade is tested (swap the mapping, keep the scenarios).
//!
//! Pure data: no I/O.

use std::collections::BTreeMap;
use std::fmt;

/// Why a text is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// The text is empty.
    #[error("an image reference must not be empty")]
    Empty,
    /// The text contains whitespace.
    #[error("image reference {0:?} contains whitespace")]
    Whitespace(String),
    /// The repository or the tag is empty (`ocs:`).
    #[error("image reference {0:?} has an empty name or tag")]
    EmptyPart(String),
}

/// A parsed image reference `[registry/]repository[:tag]` (digests are kept in `tag`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    /// Repository including any registry host, e.g. `simonsobs/ocs`.
    pub repository: String,
    /// Tag, `latest` when the reference names none.
    pub tag: String,
}

impl ImageRef {
    /// Parse `repo[:tag]`; a missing tag means `latest`. A `:` inside a registry host
    /// (`host:5000/repo`) is not mistaken for a tag.
    pub fn parse(s: &str) -> Result<Self, ImageRefError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if s.chars().any(char::is_whitespace) {
            return Err(ImageRefError::Whitespace(s.to_string()));
        }
        if let Some((repo, digest)) = s.split_once('@') {
            return Ok(Self {
                repository: repo.to_string(),
                tag: format!("@{digest}"),
            });
        }
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        match s[last_slash..].rfind(':') {
            Some(i) => {
                let (repo, tag) = s.split_at(last_slash + i);
                let tag = &tag[1..];
                if tag.is_empty() || repo.is_empty() {
                    return Err(ImageRefError::EmptyPart(s.to_string()));
                }
                Ok(Self {
                    repository: repo.to_string(),
                    tag: tag.to_string(),
                })
            }
            None => Ok(Self {
                repository: s.to_string(),
                tag: "latest".to_string(),
            }),
        }
    }

    /// Repository and tag, as testcontainers' `GenericImage::new` wants them.
    pub fn name_and_tag(&self) -> (&str, &str) {
        (&self.repository, &self.tag)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tag.starts_with('@') {
            write!(f, "{}{}", self.repository, self.tag)
        } else {
            write!(f, "{}:{}", self.repository, self.tag)
        }
    }
}

/// The override table. A key with a tag (`simonsobs/ocs:latest`) matches that exact image; a
/// key without a tag (`simonsobs/ocs`) matches every tag of the repository. Exact keys win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageOverrides {
    exact: BTreeMap<ImageRef, ImageRef>,
    any_tag: BTreeMap<String, ImageRef>,
}

impl ImageOverrides {
    /// An empty table: every image stays as written.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `from -> to`. `from` without a `:tag` matches any tag of that repository.
    pub fn insert(&mut self, from: &str, to: &str) -> Result<(), ImageRefError> {
        let target = ImageRef::parse(to)?;
        let from = from.trim();
        let has_tag =
            from.contains('@') || from[from.rfind('/').map_or(0, |i| i + 1)..].contains(':');
        if has_tag {
            self.exact.insert(ImageRef::parse(from)?, target);
        } else {
            ImageRef::parse(from)?;
            self.any_tag.insert(from.to_string(), target);
        }
        Ok(())
    }

    /// Builder form of [`insert`](Self::insert).
    pub fn with(mut self, from: &str, to: &str) -> Result<Self, ImageRefError> {
        self.insert(from, to)?;
        Ok(self)
    }

    /// Merge `other` into `self`; entries of `other` win.
    pub fn extend(&mut self, other: &ImageOverrides) {
        self.exact
            .extend(other.exact.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.any_tag
            .extend(other.any_tag.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// The image to use for `image` (itself when no override matches).
    pub fn resolve(&self, image: &ImageRef) -> ImageRef {
        self.exact
            .get(image)
            .or_else(|| self.any_tag.get(&image.repository))
            .cloned()
            .unwrap_or_else(|| image.clone())
    }

    /// Every mapping as `(from, to)` strings, for display.
    pub fn entries(&self) -> Vec<(String, String)> {
        let exact = self
            .exact
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let any = self
            .any_tag
            .iter()
            .map(|(k, v)| (format!("{k} (any tag)"), v.to_string()));
        exact.chain(any).collect()
    }

    /// Rewrite the `FROM` lines of a Dockerfile. Stage names (`FROM builder`, after
    /// `FROM x AS builder`), `scratch` and references built from `ARG`s (`$VAR`) are left as
    /// written. Returns the new text and the rewrites made, as `(line number, from, to)`.
    pub fn rewrite_dockerfile(&self, dockerfile: &str) -> (String, Vec<(usize, String, String)>) {
        let mut stages: Vec<String> = Vec::new();
        let mut rewrites = Vec::new();
        let mut out = String::with_capacity(dockerfile.len());
        for (idx, line) in dockerfile.split_inclusive('\n').enumerate() {
            match self.rewrite_from_line(line, &stages) {
                Some((new_line, from, to, stage)) => {
                    if from != to {
                        rewrites.push((idx + 1, from, to));
                    }
                    if let Some(stage) = stage {
                        stages.push(stage);
                    }
                    out.push_str(&new_line);
                }
                None => {
                    if let Some(stage) = stage_name_of(line) {
                        stages.push(stage);
                    }
                    out.push_str(line);
                }
            }
        }
        (out, rewrites)
    }

    /// `Some((line, from, to, stage name))` when `line` is a FROM line naming a real image.
    fn rewrite_from_line(
        &self,
        line: &str,
        stages: &[String],
    ) -> Option<(String, String, String, Option<String>)> {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let mut words = trimmed.split_whitespace();
        if !words.next()?.eq_ignore_ascii_case("FROM") {
            return None;
        }
        let rest: Vec<&str> = words.collect();
        let image_pos = rest.iter().position(|w| !w.starts_with("--"))?;
        let image = rest[image_pos];
        let lower = image.to_ascii_lowercase();
        if image.contains('$') || lower == "scratch" || stages.contains(&lower) {
            return None;
        }
        let parsed = ImageRef::parse(image).ok()?;
        let target = self.resolve(&parsed);
        let stage = match rest.get(image_pos + 1) {
            Some(kw) if kw.eq_ignore_ascii_case("AS") => {
                rest.get(image_pos + 2).map(|s| s.to_ascii_lowercase())
            }
            _ => None,
        };
        if target == parsed {
            return Some((line.to_string(), image.into(), image.into(), stage));
        }
        let mut words: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
        words[image_pos] = target.to_string();
        let ending = if line.ends_with("\r\n") {
            "\r\n"
        } else if line.ends_with('\n') {
            "\n"
        } else {
            ""
        };
        let keyword = trimmed.split_whitespace().next().unwrap_or("FROM");
        let new_line = format!("{indent}{keyword} {}{ending}", words.join(" "));
        Some((new_line, image.to_string(), target.to_string(), stage))
    }
}

fn stage_name_of(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first()?.eq_ignore_ascii_case("FROM") {
        let as_pos = words.iter().position(|w| w.eq_ignore_ascii_case("AS"))?;
        return words.get(as_pos + 1).map(|s| s.to_ascii_lowercase());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ImageOverrides {
        ImageOverrides::new()
            .with("simonsobs/ocs:latest", "ocs-harness/ocs:0.12.1-abc")
            .unwrap()
            .with("simonsobs/ocs-crossbar", "ocs-harness/crossbar:26.10.1-def")
            .unwrap()
    }

    #[test]
    fn parses_references() {
        assert_eq!(
            ImageRef::parse("simonsobs/ocs").unwrap().to_string(),
            "simonsobs/ocs:latest"
        );
        let r = ImageRef::parse("localhost:5000/ocs:v1").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_str()),
            ("localhost:5000/ocs", "v1")
        );
        let r = ImageRef::parse("localhost:5000/ocs").unwrap();
        assert_eq!(r.tag, "latest");
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("a b").is_err());
        assert!(ImageRef::parse("ocs:").is_err());
    }

    #[test]
    fn exact_and_any_tag_matches() {
        let t = table();
        let r = |s: &str| t.resolve(&ImageRef::parse(s).unwrap()).to_string();
        assert_eq!(r("simonsobs/ocs:latest"), "ocs-harness/ocs:0.12.1-abc");
        assert_eq!(r("simonsobs/ocs"), "ocs-harness/ocs:0.12.1-abc");
        assert_eq!(r("simonsobs/ocs:v0.11.3"), "simonsobs/ocs:v0.11.3");
        assert_eq!(
            r("simonsobs/ocs-crossbar:v0.7.0"),
            "ocs-harness/crossbar:26.10.1-def"
        );
    }

    #[test]
    fn rewrites_from_lines_only_for_real_images() {
        let df = "# syntax note\nFROM --platform=linux/amd64 simonsobs/ocs:latest AS base\n\
                  RUN echo FROM simonsobs/ocs:latest\nfrom base\nFROM scratch\n\
                  FROM $BASE\nFROM simonsobs/ocs-crossbar:v1\n";
        let (out, rewrites) = table().rewrite_dockerfile(df);
        assert_eq!(
            out,
            "# syntax note\nFROM --platform=linux/amd64 ocs-harness/ocs:0.12.1-abc AS base\n\
             RUN echo FROM simonsobs/ocs:latest\nfrom base\nFROM scratch\n\
             FROM $BASE\nFROM ocs-harness/crossbar:26.10.1-def\n"
        );
        assert_eq!(
            rewrites,
            vec![
                (
                    2,
                    "simonsobs/ocs:latest".into(),
                    "ocs-harness/ocs:0.12.1-abc".into()
                ),
                (
                    7,
                    "simonsobs/ocs-crossbar:v1".into(),
                    "ocs-harness/crossbar:26.10.1-def".into()
                ),
            ]
        );
    }

    #[test]
    fn documented_agent_dockerfile_is_rewritten() {
        let df = include_str!("../../fixtures/agents/barebones/Dockerfile");
        let (out, rewrites) = table().rewrite_dockerfile(df);
        assert_eq!(rewrites.len(), 1);
        assert!(out.contains("FROM ocs-harness/ocs:0.12.1-abc"));
        assert!(!out
            .lines()
            .any(|l| l.starts_with("FROM") && l.contains("simonsobs/ocs:latest")));
    }
}
