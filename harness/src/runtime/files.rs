//! Files in and out of containers, always through the engine's archive API (never bind
//! mounts: the engine need not share the harness's filesystem). In: a plan's [`FileCopy`]s
//! as the copies the engine receives before a container starts (a directory file by file,
//! read-only unless a mode is given; a writable one as an empty directory that every user
//! may write to, then its files with their modes as they are). Out: a path of a container, running or exited, unpacked into the run
//! directory, with the files found there.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use testcontainers::bollard::query_parameters::DownloadFromContainerOptionsBuilder;
use testcontainers::{CopyDataSource, CopyTargetOptions};

use super::engine::Doing;
use super::role::Role;
use super::stack::{io_err, Stack, StackError};
use crate::filespec::Fetched;
use crate::plan::{CopyContent, FileCopy, FileSpec};

/// The directory under the run directory that fetched paths go to.
pub const FETCHED_DIR: &str = "fetched";
/// The most a fetch copies out (it is held in memory before it is unpacked).
const MAX_FETCH: usize = 1 << 30;

/// What the engine receives for `file`: (target with mode, data), in order. `run_dir` holds
/// the empty directory a writable directory is copied from.
pub(crate) fn copies(
    file: &FileCopy,
    run_dir: &Path,
) -> Result<Vec<(CopyTargetOptions, CopyDataSource)>, StackError> {
    let spec = match &file.content {
        CopyContent::Text(text) => {
            let target = CopyTargetOptions::new(&file.path).with_mode(0o644);
            return Ok(vec![(target, text.clone().into_bytes().into())]);
        }
        CopyContent::Host(spec) => spec,
    };
    let mut out = Vec::new();
    if spec.writable {
        let empty = empty_dir(run_dir)?;
        out.push((CopyTargetOptions::new(&spec.target), empty.into()));
    }
    if let Some(source) = &spec.source {
        for (rel, path) in files_under(source)? {
            out.push(read_only(spec, &rel, &path)?);
        }
    }
    Ok(out)
}

/// The copy of host file `path`, at `rel` under the spec's target (`rel` empty: the target).
fn read_only(
    spec: &FileSpec,
    rel: &str,
    path: &Path,
) -> Result<(CopyTargetOptions, CopyDataSource), StackError> {
    let doing = || format!("reading {} to copy it to {}", path.display(), spec.target);
    let data = std::fs::read(path).map_err(io_err(doing()))?;
    let keep = if spec.writable { 0o7777 } else { 0o555 };
    let mode = match spec.mode {
        Some(m) => m,
        None => host_mode(path).map_err(io_err(doing()))? & keep,
    };
    let target = match rel {
        "" => spec.target.clone(),
        rel => format!("{}/{rel}", spec.target.trim_end_matches('/')),
    };
    Ok((CopyTargetOptions::new(target).with_mode(mode), data.into()))
}

#[cfg(unix)]
fn host_mode(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn host_mode(_: &Path) -> std::io::Result<u32> {
    Ok(0o444)
}

/// The regular files of `source` (itself when it is a file, with an empty name), by name
/// relative to it, sorted; symbolic links are followed, and a link that leads back into a
/// directory it is in (a loop) is an error naming both.
fn files_under(source: &Path) -> Result<Vec<(String, PathBuf)>, StackError> {
    let doing = || format!("listing {} to copy it into a container", source.display());
    let meta = std::fs::metadata(source).map_err(io_err(doing()))?;
    if !meta.is_dir() {
        return Ok(vec![(String::new(), source.to_path_buf())]);
    }
    let mut out = Vec::new();
    let real = std::fs::canonicalize(source).map_err(io_err(doing()))?;
    // Each directory to list with the real paths of the directories it is in (itself too).
    let mut dirs = vec![(String::new(), source.to_path_buf(), vec![real])];
    while let Some((prefix, dir, above)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io_err(doing()))? {
            let entry = entry.map_err(io_err(doing()))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let path = entry.path();
            if !std::fs::metadata(&path).map_err(io_err(doing()))?.is_dir() {
                out.push((name, path));
                continue;
            }
            let real = std::fs::canonicalize(&path).map_err(io_err(doing()))?;
            if above.contains(&real) {
                let looped = std::io::Error::other(format!(
                    "{} is a symbolic link loop: it leads back to {}, which it is in; remove \
                     the link, or copy a directory without it",
                    path.display(),
                    real.display()
                ));
                return Err(io_err(doing())(looped));
            }
            let mut above = above.clone();
            above.push(real);
            dirs.push((format!("{name}/"), path, above));
        }
    }
    out.sort();
    Ok(out)
}

/// `<run_dir>/.empty-dir`, writable by every user with the sticky bit (01777, as `/tmp`: a
/// user removes only their own files): what a writable directory is copied from.
fn empty_dir(run_dir: &Path) -> Result<PathBuf, StackError> {
    let dir = run_dir.join(".empty-dir");
    let doing = || format!("creating {}", dir.display());
    std::fs::create_dir_all(&dir).map_err(io_err(doing()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let all = std::fs::Permissions::from_mode(0o1777);
        std::fs::set_permissions(&dir, all).map_err(io_err(doing()))?;
    }
    Ok(dir)
}

impl Stack {
    /// Copy `path` out of the container of `role` (running or exited) into
    /// `<run_dir>/fetched/<into>/` (replacing what an earlier fetch put there). `None` when
    /// the container has no such path.
    pub async fn fetch(
        &self,
        role: impl Into<Role>,
        path: &str,
        into: &str,
    ) -> Result<Option<(PathBuf, Fetched)>, StackError> {
        let role = role.into();
        let id = self.container_id(&role)?;
        let doing = format!("copying {path} out of the container of {}", role.name());
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(&id, Some(options));
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            let bytes = match chunk {
                Err(e) if super::engine::is_status(&e, &[404]) => return Ok(None),
                chunk => chunk.doing(doing.clone())?,
            };
            tar.extend_from_slice(&bytes);
            if tar.len() > MAX_FETCH {
                let too_big = std::io::Error::other(
                    "it is larger than 1 GiB; fetch a smaller path (a file or a subdirectory)",
                );
                return Err(io_err(doing)(too_big));
            }
        }
        let dest = self.run_dir.join(FETCHED_DIR).join(into);
        unpack(&tar, &dest).map_err(io_err(format!("{doing} into {}", dest.display())))?;
        let fetched = listing(&dest).map_err(io_err(format!("listing {}", dest.display())))?;
        Ok(Some((dest, fetched)))
    }
}

/// Unpack `tar` into `dest`, emptied first; entries cannot leave it.
fn unpack(tar: &[u8], dest: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dest) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(dest)?;
    tar::Archive::new(tar).unpack(dest)
}

/// The regular files under `dest`, by name relative to the fetched path: the archive's one
/// top entry (the fetched file or directory) is the root the names start under.
fn listing(dest: &Path) -> std::io::Result<Fetched> {
    let top: Vec<_> = std::fs::read_dir(dest)?.collect::<Result<_, _>>()?;
    let mut files = Vec::new();
    for entry in top {
        let root = entry.path();
        let meta = std::fs::symlink_metadata(&root)?;
        if meta.is_file() {
            files.push((entry.file_name().to_string_lossy().to_string(), meta.len()));
        } else if meta.is_dir() {
            walk(&root, "", &mut files)?;
        }
    }
    files.sort();
    Ok(Fetched { files })
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, u64)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.is_dir() {
            walk(&entry.path(), &format!("{name}/"), out)?;
        } else if meta.is_file() {
            out.push((name, meta.len()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_copied_file_by_file_read_only() {
        let dir = std::env::temp_dir().join(format!("ocsh-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src/sub")).unwrap();
        std::fs::write(dir.join("src/a.yaml"), "a: 1\n").unwrap();
        std::fs::write(dir.join("src/sub/b.txt"), "b").unwrap();
        let spec = FileSpec::read_only(dir.join("src"), "/data/in/");
        let all = copies(&FileCopy::host(&spec), &dir).unwrap();
        let got: Vec<(String, Option<u32>)> = all
            .iter()
            .map(|(t, _)| (t.target().to_string(), t.mode()))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "/data/in/a.yaml");
        assert_eq!(got[1].0, "/data/in/sub/b.txt");
        assert!(got.iter().all(|(_, m)| m.unwrap() & 0o222 == 0), "{got:?}");

        let mut writable = FileSpec::read_only(dir.join("src/a.yaml"), "/x/a.yaml");
        writable.mode = Some(0o600);
        let c = copies(&FileCopy::host(&writable), &dir).unwrap();
        assert_eq!(c[0].0.mode(), Some(0o600));
        let empty = FileSpec {
            source: None,
            target: "/data".into(),
            mode: None,
            writable: true,
        };
        let c = copies(&FileCopy::host(&empty), &dir).unwrap();
        assert_eq!(c.len(), 1);
        assert!(matches!(&c[0].1, CopyDataSource::File(p) if p.ends_with(".empty-dir")));
        #[cfg(unix)]
        assert_eq!(
            host_mode(&dir.join(".empty-dir")).unwrap(),
            0o1777,
            "world-writable with the sticky bit"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_loop_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("ocsh-loop-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src/sub")).unwrap();
        std::fs::write(dir.join("src/sub/a.txt"), "a").unwrap();
        // A link to a directory elsewhere is followed; one back up to its parent is a loop.
        std::os::unix::fs::symlink(dir.join("src/sub"), dir.join("src/again")).unwrap();
        let spec = FileSpec::read_only(dir.join("src"), "/data/");
        let names: Vec<String> = copies(&FileCopy::host(&spec), &dir)
            .unwrap()
            .iter()
            .map(|(t, _)| t.target().to_string())
            .collect();
        assert_eq!(names, ["/data/again/a.txt", "/data/sub/a.txt"]);
        std::os::unix::fs::symlink("..", dir.join("src/sub/up")).unwrap();
        let e = copies(&FileCopy::host(&spec), &dir).unwrap_err();
        let text = crate::runtime::notice::display_chain(&e);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            text.contains("sub/up is a symbolic link loop: it leads back to")
                && text.contains("remove the link"),
            "{text}"
        );
    }

    #[test]
    fn fetched_files_are_named_under_the_fetched_path() {
        let dir = std::env::temp_dir().join(format!("ocsh-fetch-{}", std::process::id()));
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in [("data/1765/a.g3", "xyz"), ("data/b.g3", "")] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o444);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        let tar = b.into_inner().unwrap();
        unpack(&tar, &dir).unwrap();
        let f = listing(&dir).unwrap();
        assert_eq!(
            f.files,
            [("1765/a.g3".to_string(), 3), ("b.g3".to_string(), 0)]
        );
        // a second fetch into the same place replaces the first
        unpack(&tar[..0], &dir).ok();
        assert!(listing(&dir).unwrap().files.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
