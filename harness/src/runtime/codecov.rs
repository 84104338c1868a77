//! Python code coverage from inside the containers, the runtime part (the pure part is
//! [`crate::codecov`]): once the agents stopped cleanly, their data files are copied out of
//! each agent's container through the engine's archive API (the engine may be remote: no bind
//! mount), into `<run_dir>/code-coverage/<instance>/`; at the end of a suite they are combined
//! in a one-off container of the agents' image (which has coverage.py and the measured
//! packages), with the packages' paths mapped to their source (`socs/...`), and the reports
//! (Cobertura XML, LCOV and the text summary) are copied back out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::models::ContainerCreateBody;
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, UploadToContainerOptionsBuilder,
    WaitContainerOptions,
};
use testcontainers::bollard::{body_full, Docker};

use crate::codecov::{CodeCoverage, Totals, DATA_DIR, MISSING};
use crate::runtime::engine::{self, Doing, EngineError};
use crate::runtime::stack::Stack;

/// Where a run keeps the data files it collected.
pub const RUN_DIR: &str = "code-coverage";

/// What a run collected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Collected {
    /// The measured packages.
    pub coverage: CodeCoverage,
    /// The image the data comes from (the first agent's): it has the packages' source.
    pub image: String,
    /// The data files.
    pub files: Vec<PathBuf>,
    /// Agents that left no data, and why.
    pub problems: Vec<String>,
}

impl Stack {
    /// Copy every agent's coverage data files out of its container (run after the agents
    /// stopped: coverage.py writes them as a process exits) into
    /// `<run_dir>/code-coverage/<instance>/`. `None` when the run measures no code coverage.
    pub async fn collect_code_coverage(&self) -> Option<Collected> {
        let coverage = self.plan.code_coverage.clone()?;
        let mut out = Collected {
            coverage,
            image: self.plan.agents.first()?.container.image.clone(),
            files: Vec::new(),
            problems: Vec::new(),
        };
        for agent in &self.plan.agents {
            let id = &agent.instance_id;
            let dest = self.run_dir.join(RUN_DIR).join(id);
            let got = match self.agents.get(id) {
                Some(c) => download(&self.docker, c.id(), DATA_DIR, &dest).await,
                None => Err(format!("agent {id} has no container")),
            };
            match got {
                Ok(files) if files.is_empty() => {
                    let missing = self
                        .logs
                        .lines_of(id, 0)
                        .iter()
                        .any(|l| l.text.contains(MISSING));
                    out.problems.push(if missing {
                        format!(
                            "agent {id}: its image ({}) has no Python module `coverage`: add \
                             coverage to the image's requirements (or the agent's \
                             `packages: [coverage]`)",
                            agent.container.image
                        )
                    } else {
                        format!(
                            "agent {id} left no coverage data: it did not exit cleanly (a \
                             process killed or still running at the end writes none), or ran \
                             no Python"
                        )
                    });
                }
                Ok(files) => out.files.extend(files),
                Err(e) => out.problems.push(format!("agent {id}: {e}")),
            }
        }
        Some(out)
    }
}

/// Copy `path` out of container `id` into `dest` (emptied first); the regular files there.
async fn download(
    docker: &Docker,
    id: &str,
    path: &str,
    dest: &Path,
) -> Result<Vec<PathBuf>, String> {
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(id, Some(options));
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => tar.extend_from_slice(&bytes),
            Err(e) if engine::is_status(&e, &[404]) => return Ok(Vec::new()),
            Err(e) => return Err(format!("copying {path} out of its container: {e}")),
        }
    }
    let _ = std::fs::remove_dir_all(dest);
    let unpacked = std::fs::create_dir_all(dest)
        .and_then(|()| tar::Archive::new(tar.as_slice()).unpack(dest))
        .map_err(|e| format!("unpacking {path} into {}: {e}", dest.display()));
    unpacked?;
    let mut files = Vec::new();
    walk(dest, &mut files).map_err(|e| format!("listing {}: {e}", dest.display()))?;
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".coverage"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Why the data files could not be combined.
#[derive(Debug, thiserror::Error)]
pub enum CombineError {
    /// The engine failed a request.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A local file could not be read or written.
    #[error("{doing}: {source}")]
    Io {
        /// What the harness was doing.
        doing: String,
        /// The error.
        source: std::io::Error,
    },
    /// The combining commands failed in the container.
    #[error(
        "combining the coverage data in a container of {image} failed (exit code {code}):\n{output}"
    )]
    Failed {
        /// The image.
        image: String,
        /// Its exit code.
        code: i64,
        /// What it printed.
        output: String,
    },
    /// The combining did not finish in time.
    #[error("combining the coverage data in a container of {image} did not finish within {}", crate::wait::fmt_duration(*.timeout))]
    TimedOut {
        /// The image.
        image: String,
        /// The deadline.
        timeout: Duration,
    },
}

/// The reports written.
#[derive(Debug, Clone)]
pub struct Combined {
    /// The directory they are in.
    pub dir: PathBuf,
    /// Lines covered and measured.
    pub totals: Option<Totals>,
}

/// Combine `files` (data files of runs measuring `cc`) in a one-off container of `image`, and
/// write the reports to `out`: `coverage.xml`, `coverage.lcov`, `summary.txt` and the combined `.coverage`.
pub async fn combine(
    cc: &CodeCoverage,
    image: &str,
    files: &[PathBuf],
    out: &Path,
    timeout: Duration,
    settings: &engine::EngineSettings,
) -> Result<Combined, CombineError> {
    let docker = engine::docker(settings).await?;
    let io = |doing: String| move |source| CombineError::Io { doing, source };
    // The archive: the configuration, the script and the data files (numbered: two runs'
    // files may share a name), under directories every user may write to.
    let mut tar = tar::Builder::new(Vec::new());
    let dir = |tar: &mut tar::Builder<Vec<u8>>, name: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_cksum();
        tar.append_data(&mut h, name, std::io::empty())
    };
    let file = |tar: &mut tar::Builder<Vec<u8>>, name: &str, body: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o666);
        h.set_size(body.len() as u64);
        h.set_cksum();
        tar.append_data(&mut h, name, body)
    };
    let packed = (|| {
        dir(&mut tar, "ocs-harness-combine/")?;
        dir(&mut tar, "ocs-harness-combine/data/")?;
        file(
            &mut tar,
            "ocs-harness-combine/.coveragerc",
            cc.combine_rcfile().as_bytes(),
        )?;
        file(
            &mut tar,
            "ocs-harness-combine/combine.py",
            cc.combine_script().as_bytes(),
        )?;
        for (i, f) in files.iter().enumerate() {
            let body = std::fs::read(f)?;
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rest = name.strip_prefix(".coverage").unwrap_or(&name);
            file(
                &mut tar,
                &format!("ocs-harness-combine/data/.coverage.r{i}{rest}"),
                &body,
            )?;
        }
        tar.into_inner()
    })();
    let archive = packed.map_err(io("packing the coverage data files".into()))?;

    let run = crate::plan::new_run_id();
    let labels = BTreeMap::from([
        (crate::plan::LABEL_MANAGED.to_string(), "true".to_string()),
        (crate::plan::LABEL_RUN.to_string(), run.clone()),
        (
            crate::plan::LABEL_SCENARIO.to_string(),
            "code-coverage".to_string(),
        ),
        (
            crate::plan::LABEL_CREATED.to_string(),
            crate::clock::unix_now_secs().to_string(),
        ),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["python3".into()]),
        cmd: Some(vec!["combine.py".into()]),
        working_dir: Some("/tmp/ocs-harness-combine".into()),
        labels: Some(labels.into_iter().collect()),
        ..Default::default()
    };
    let name = format!("ocsh-{run}-code-coverage");
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    let doing =
        |what: &str| format!("{what} the container that combines the coverage data ({image})");
    let id = docker
        .create_container(Some(options), body)
        .await
        .doing(doing("creating"))?
        .id;
    let result = run_combine(&docker, &id, image, archive, out, timeout).await;
    let remove = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    let _ = docker.remove_container(&id, Some(remove)).await;
    result
}

async fn run_combine(
    docker: &Docker,
    id: &str,
    image: &str,
    archive: Vec<u8>,
    out: &Path,
    timeout: Duration,
) -> Result<Combined, CombineError> {
    let doing =
        |what: &str| format!("{what} the container that combines the coverage data ({image})");
    let options = UploadToContainerOptionsBuilder::new().path("/tmp").build();
    docker
        .upload_to_container(id, Some(options), body_full(archive.into()))
        .await
        .doing(doing("copying the data files into"))?;
    docker
        .start_container(id, None::<StartContainerOptions>)
        .await
        .doing(doing("starting"))?;
    let mut wait = docker.wait_container(id, None::<WaitContainerOptions>);
    let code = match tokio::time::timeout(timeout, wait.next()).await {
        Err(_) => {
            return Err(CombineError::TimedOut {
                image: image.to_string(),
                timeout,
            })
        }
        Ok(Some(Ok(r))) => r.status_code,
        Ok(Some(Err(testcontainers::bollard::errors::Error::DockerContainerWaitError {
            code,
            ..
        }))) => code,
        Ok(Some(Err(e))) => {
            return Err(Err::<(), _>(e)
                .doing(doing("waiting for"))
                .unwrap_err()
                .into())
        }
        Ok(None) => -1,
    };
    if code != 0 {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
        let mut logs = docker.logs(id, Some(options));
        let mut output = Vec::new();
        while let Some(Ok(frame)) = logs.next().await {
            if let LogOutput::StdOut { message } | LogOutput::StdErr { message } = frame {
                output.extend_from_slice(&message);
            }
        }
        return Err(CombineError::Failed {
            image: image.to_string(),
            code,
            output: String::from_utf8_lossy(&output).into_owned(),
        });
    }
    let got = download(docker, id, "/tmp/ocs-harness-combine/out", out)
        .await
        .map_err(|e| CombineError::Io {
            doing: "copying the coverage reports out".into(),
            source: std::io::Error::other(e),
        })?;
    let _ = got;
    // The archive's top entry is `out/`: move its files up into `out`.
    let inner = out.join("out");
    if inner.is_dir() {
        for entry in std::fs::read_dir(&inner).map_err(|source| CombineError::Io {
            doing: format!("listing {}", inner.display()),
            source,
        })? {
            let p = entry
                .map_err(|source| CombineError::Io {
                    doing: format!("listing {}", inner.display()),
                    source,
                })?
                .path();
            if let Some(n) = p.file_name() {
                let _ = std::fs::rename(&p, out.join(n));
            }
        }
        let _ = std::fs::remove_dir_all(&inner);
    }
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap_or_default();
    Ok(Combined {
        dir: out.to_path_buf(),
        totals: Totals::from_xml(&read("coverage.xml")),
    })
}
