//! An agent's (or a service's) `files:`: files and directories of this machine copied into
//! its container, read-only, before it starts. An entry is `{source, target, mode}`, or, for
//! an agent, just a source, which goes into the config directory next to the site config
//! (`ocs-access.yaml` becomes `/config/ocs-access.yaml`, where ocs resolves a relative
//! `--config-file`). Sources must exist; targets must be absolute, distinct, and leave an
//! agent's site config alone.

use std::path::{Path, PathBuf};

use crate::plan::{FileSpec, CONFIG_DIR, SCF_PATH};
use crate::scenario::node::{Cx, Kind, Node};

use super::super::resolve_path;
use super::super::values::absolute_path;

const FILE_KEYS: &[&str] = &["source", "target", "mode"];
const EXAMPLE: &str = "files: [ocs-access.yaml, {source: ./data, target: /data/in}]";

/// `files:` of an agent (of a service when `service`), relative to the scenario `file`.
pub(super) fn decode_files(
    cx: &mut Cx,
    node: &Node,
    file: &Path,
    service: bool,
) -> Option<Vec<FileSpec>> {
    let Kind::Seq(items) = &node.kind else {
        return cx.type_error(node, "`files`", "a list", EXAMPLE);
    };
    let mut out: Vec<FileSpec> = Vec::new();
    let mut ok = true;
    for item in items {
        match decode_file(cx, item, file, service) {
            Some((spec, at)) if distinct(cx, &out, &spec, at) => out.push(spec),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// One entry, and the node its target is written at.
fn decode_file<'n>(
    cx: &mut Cx,
    item: &'n Node,
    file: &Path,
    service: bool,
) -> Option<(FileSpec, &'n Node)> {
    if service && !matches!(item.kind, Kind::Map(_)) {
        let e = cx
            .err(
                item.pos,
                "a service's `files` entry needs a `target`",
                "where in the container?",
            )
            .help(
                "a service has no site config to put files next to: write `{source: <path \
                 relative to this file>, target: /absolute/path/in/the/container}`",
            );
        return cx.fail(e);
    }
    if !matches!(item.kind, Kind::Map(_)) {
        let name = cx.nonempty_string(item, "a `files` entry", EXAMPLE)?;
        let source = existing_source(cx, item, &name, file)?;
        let base = source.file_name().map(|n| n.to_string_lossy().to_string());
        let target = format!("{CONFIG_DIR}/{}", base.unwrap_or_default());
        let spec = FileSpec::read_only(source, &target);
        return check_target(cx, item, spec).map(|s| (s, item));
    }
    let f = cx.fields(
        item,
        "a `files` entry",
        FILE_KEYS,
        "- {source: ./data, target: /data/in, mode: \"0444\"}",
    )?;
    let (Some(src), Some(tgt)) = (f.get("source"), f.get("target")) else {
        let missing = if f.get("source").is_none() {
            "source"
        } else {
            "target"
        };
        if f.misspelt(missing) {
            return None;
        }
        let e = cx
            .err(f.pos(), format!("this `files` entry has no `{missing}`"), "incomplete")
            .help("write `{source: <path relative to this file>, target: /absolute/path/in/the/container}`");
        return cx.fail(e);
    };
    let name = cx.nonempty_string(src, "`source`", "source: ocs-access.yaml")?;
    let source = existing_source(cx, src, &name, file);
    let target = absolute_path(cx, tgt, "`target`", "target: /config/ocs-access.yaml");
    let mode = match f.get("mode") {
        Some(v) => Some(file_mode(cx, v)?),
        None => None,
    };
    let mut spec = FileSpec::read_only(source?, &target?);
    spec.mode = mode;
    if service {
        return Some((spec, tgt));
    }
    check_target(cx, tgt, spec).map(|s| (s, tgt))
}

/// `name` resolved against the scenario `file`, when it exists.
fn existing_source(cx: &mut Cx, node: &Node, name: &str, file: &Path) -> Option<PathBuf> {
    let path = resolve_path(file, name);
    match std::fs::metadata(&path) {
        Ok(_) => Some(path),
        Err(err) => {
            let e = cx
                .err(
                    node.pos,
                    format!(
                        "cannot copy `{name}` into the container: {}: {err}",
                        path.display()
                    ),
                    "no such file or directory",
                )
                .help("`files` sources are relative to the scenario file; check the path");
            cx.fail(e)
        }
    }
}

/// The target must not replace the site config (or the directory holding it).
fn check_target(cx: &mut Cx, at: &Node, spec: FileSpec) -> Option<FileSpec> {
    let target = spec.target.trim_end_matches('/');
    let source = spec.source.as_deref().unwrap_or(Path::new(""));
    let replaces_scf = target == SCF_PATH
        || (target == CONFIG_DIR && (source.is_file() || source.join("default.yaml").exists()));
    if !replaces_scf {
        return Some(spec);
    }
    let e = cx
        .err(
            at.pos,
            format!(
                "target `{}` would replace the site config, which the harness writes there",
                spec.target
            ),
            "collides with the site config",
        )
        .help(format!(
            "the site config is generated (or taken from `stack.site-config`); copy other \
             config files next to it, e.g. `target: {CONFIG_DIR}/ocs-access.yaml`"
        ));
    cx.fail(e)
}

/// `spec`'s target is not one of `earlier`'s.
fn distinct(cx: &mut Cx, earlier: &[FileSpec], spec: &FileSpec, at: &Node) -> bool {
    let same = |a: &str| a.trim_end_matches('/') == spec.target.trim_end_matches('/');
    if !earlier.iter().any(|e| same(&e.target)) {
        return true;
    }
    let e = cx
        .err(
            at.pos,
            format!("two `files` entries copy to `{}`", spec.target),
            "second copy to this target",
        )
        .help("give each entry its own `target`");
    cx.errors.push(e);
    false
}

/// `mode`: octal digits, as a string (`"0444"`) or a number (`444`), at most `7777`.
fn file_mode(cx: &mut Cx, v: &Node) -> Option<u32> {
    let text = v.scalar_text().unwrap_or_default();
    let digits = text.trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 && matches!(v.kind, Kind::Str(_) | Kind::Num(_)) => Some(m),
        _ => {
            let e = cx
                .err(
                    v.pos,
                    format!("`mode` must be an octal file mode, not {}", v.describe()),
                    "not an octal mode",
                )
                .help("write the mode in octal, quoted, e.g. `mode: \"0444\"` (read-only for all) or `mode: \"0555\"`");
            cx.fail(e)
        }
    }
}
