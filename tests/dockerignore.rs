//! The build context the harness sends is the one `docker build` sends: a context with a
//! tricky `.dockerignore` (wildcards, `**`, exceptions, a re-included file inside an excluded
//! directory, an empty directory, a symlink) is built through the harness and with the
//! `docker` CLI (classic builder), and the two images' `/ctx` trees are compared: paths,
//! kinds, modes and link targets. `FROM scratch`, so no base image is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

const DOCKERIGNORE: &str = "\
# a comment, then Docker's pattern forms
*.log
!keep.log
/build/
docs
!docs/README.md
**/__pycache__
**/*.tmp
secret?.txt
[ab]/x
sub/**/deep
./cleaned//away/../gone
.dockerignore
";

const FILES: &[&str] = &[
    "a.log",
    "keep.log",
    "build/out.o",
    "build/nested/x",
    "docs/README.md",
    "docs/other.md",
    "pkg/__pycache__/m.pyc",
    "pkg/mod.py",
    "pkg/sub/t.tmp",
    "secret1.txt",
    "secret12.txt",
    "a/x",
    "a/y",
    "c/x",
    "sub/deep",
    "sub/1/2/deep",
    "sub/1/keep",
    "cleaned/gone",
    "cleaned/kept",
    ".hidden",
];

/// Containers, images and the context directory, removed however the test ends.
struct Cleanup {
    dir: PathBuf,
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        for image in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `docker ARGS` (classic builder), panicking with its stderr on failure; its stdout.
fn docker_cli(args: &[&str]) -> Vec<u8> {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `docker {}`: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "`docker {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn make_context(dir: &Path) {
    for file in FILES {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, file).unwrap();
    }
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::os::unix::fs::symlink("pkg/mod.py", dir.join("link")).unwrap();
    std::fs::write(dir.join(".dockerignore"), DOCKERIGNORE).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY . /ctx/\nCMD [\"/none\"]\n",
    )
    .unwrap();
}

/// The `/ctx` tree of `image`: one line per entry (path, kind, mode, link target), sorted.
fn tree(image: &str, cleanup: &mut Cleanup) -> Vec<String> {
    let id = String::from_utf8(docker_cli(&["create", image]))
        .unwrap()
        .trim()
        .to_string();
    cleanup.containers.push(id.clone());
    let exported = docker_cli(&["export", &id]);
    let mut archive = tar::Archive::new(exported.as_slice());
    let mut lines: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            let h = e.header();
            let kind = h.entry_type();
            let mode = h.mode().unwrap();
            format!("{path} {kind:?} {mode:o} {}", link.unwrap_or_default())
        })
        .filter(|l| l.starts_with("ctx/"))
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_context_equals_docker_build() {
    let dir = std::env::temp_dir().join(format!("ocsh-dockerignore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cleanup = Cleanup {
        dir: dir.clone(),
        containers: Vec::new(),
        images: Vec::new(),
    };
    make_context(&dir);

    let harness_image = ocs_harness::testing::build_context_image(&dir)
        .await
        .unwrap_or_else(|e| panic!("the harness could not build the context: {e}"));
    cleanup.images.push(harness_image.clone());
    let cli_image = format!("ocs-harness-test/dockerignore-cli:{}", std::process::id());
    cleanup.images.push(cli_image.clone());
    docker_cli(&["build", "-q", "-t", &cli_image, &dir.to_string_lossy()]);

    let by_harness = tree(&harness_image, &mut cleanup);
    let by_docker = tree(&cli_image, &mut cleanup);
    assert_eq!(
        by_harness, by_docker,
        "the harness's context differs from docker build's"
    );
    let paths: Vec<&str> = by_docker
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    for kept in [
        "ctx/keep.log",
        "ctx/docs/README.md",
        "ctx/sub/1/keep",
        "ctx/empty/",
        "ctx/link",
    ] {
        assert!(paths.contains(&kept), "{kept} is missing from {paths:#?}");
    }
    for dropped in [
        "ctx/a.log",
        "ctx/docs/other.md",
        "ctx/a/x",
        "ctx/.dockerignore",
    ] {
        assert!(!paths.contains(&dropped), "{dropped} was sent: {paths:#?}");
    }
}
