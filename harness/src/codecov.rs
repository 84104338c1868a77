//! Python code coverage measured inside the agents' containers (`code-coverage: {source:
//! [socs]}` in a scenario or an image set), not to be confused with the operation coverage of
//! `coverage:` ([`crate::coverage`]). This module is the pure part: what a planned agent
//! container gets (`plan` puts it there) so that every Python process in it runs under coverage.py (a
//! `sitecustomize.py` calling `coverage.process_startup()`, found through `PYTHONPATH`, and a
//! configuration that names the measured packages and where the data files go), and the
//! configuration that combines the data files with their paths mapped to the packages'
//! sources (`socs/...`, as in the plugin's repository). The runtime collects the data files
//! through the engine's archive API once the agents stopped cleanly, and combines them in a
//! container of the agents' image (`runtime::codecov`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// Where the harness puts its coverage files in an agent's container.
pub const DIR: &str = "/ocs-harness-coverage";
/// Where the agents' data files go (a directory every user may write to).
pub const DATA_DIR: &str = "/ocs-harness-coverage/data";
/// What the agents' `sitecustomize.py` prints when the image has no coverage.py.
pub const MISSING: &str = "ocs-harness code coverage: this image has no Python module `coverage`";

/// `code-coverage: {source: [...]}`: the packages (importable names, e.g. `socs`) whose code
/// is measured in every agent's container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CodeCoverage {
    /// The packages measured.
    pub source: Vec<String>,
    /// File patterns left out (coverage.py's `omit`, e.g. `*/_version.py`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omit: Vec<String>,
}

/// Each item on a line of its own, indented (a coverage.py list).
fn lines(items: &[String]) -> String {
    items.iter().map(|s| format!("    {s}\n")).collect()
}

/// The combining script's body; `main([...packages])` runs it.
const COMBINE: &str = r#"# Written by ocs-harness (code-coverage): combine the data files, reports with the
# packages' paths relative to this directory (as in the plugin's repository).
import importlib.util
import os
import shutil

import coverage


def main(packages):
    for pkg in packages:
        spec = importlib.util.find_spec(pkg)
        if spec is None or spec.origin is None:
            raise SystemExit("code-coverage: package %s is not installed in this image" % pkg)
        dest = pkg.replace(".", "/")
        if spec.submodule_search_locations:
            shutil.copytree(os.path.dirname(spec.origin), dest,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            shutil.copy(spec.origin, dest + ".py")
    os.makedirs("out", exist_ok=True)
    cov = coverage.Coverage(config_file=".coveragerc")
    cov.combine(["data"], strict=True)
    cov.save()
    cov.load()
    cov.xml_report(outfile="out/coverage.xml")
    cov.lcov_report(outfile="out/coverage.lcov")
    with open("out/summary.txt", "w") as f:
        cov.report(file=f)
"#;

/// The `sitecustomize.py` the agents' containers get: coverage starts in every Python process.
pub const SITECUSTOMIZE: &str = r#"# Written by ocs-harness (code-coverage): every Python process of this container runs under
# coverage.py, configured by $COVERAGE_PROCESS_START; the data is saved when the process exits.
# Then the sitecustomize this one hides (the harness's log-level hook, the image's own) runs;
# this directory leaves sys.path first, so that one does not find this file again.
import os
import sys

try:
    import coverage
except ImportError:
    sys.stderr.write(
        "ocs-harness code coverage: this image has no Python module `coverage`; add coverage "
        "to the image's requirements (or the agent's packages:)\n")
else:
    coverage.process_startup()


def _chain():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    spec = PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None:
        return
    module = module_from_spec(spec)
    sys.modules["_ocsh_coverage_next_sitecustomize"] = module
    spec.loader.exec_module(module)


try:
    _chain()
except Exception:
    pass
"#;

impl CodeCoverage {
    /// The configuration the agents run with.
    pub fn agent_rcfile(&self) -> String {
        format!(
            "# Written by ocs-harness (code-coverage)\n[run]\nparallel = true\n\
             data_file = {DATA_DIR}/.coverage\nsource =\n{}{}",
            lines(&self.source),
            self.omit_lines()
        )
    }

    /// `omit =` and its patterns, when there are any.
    fn omit_lines(&self) -> String {
        if self.omit.is_empty() {
            String::new()
        } else {
            format!("omit =\n{}", lines(&self.omit))
        }
    }

    /// The Python script that combines the data files of `data/` and writes the reports to
    /// `out/`, in a directory holding the combine configuration: it first copies each
    /// package's installed source there under its name (what the reports' paths name).
    pub fn combine_script(&self) -> String {
        let packages: Vec<String> = self.source.iter().map(|s| format!("{s:?}")).collect();
        format!("{COMBINE}\nmain([{}])\n", packages.join(", "))
    }

    /// The configuration the data files are combined and reported with, in a directory that
    /// holds a copy of each package's source under its name: paths in the reports are
    /// relative (`socs/agents/...`), as in the plugin's repository.
    pub fn combine_rcfile(&self) -> String {
        let mut text = String::from(
            "# Written by ocs-harness (code-coverage)\n[run]\nrelative_files = true\n\
             data_file = out/.coverage\n",
        );
        text.push_str(&self.omit_lines());
        text.push_str("\n[paths]\n");
        for s in &self.source {
            text.push_str(&format!("{s} =\n    {s}/\n    */site-packages/{s}/\n"));
        }
        text.push_str("\n[report]\nskip_empty = true\n");
        text
    }
}

/// `COVERAGE_PROCESS_START` and `PYTHONPATH` (the harness's directory first, before any the
/// scenario gives).
pub fn add_env(env: &mut BTreeMap<String, String>) {
    env.insert(
        "COVERAGE_PROCESS_START".into(),
        format!("{DIR}/.coveragerc"),
    );
    let path = match env.get("PYTHONPATH").filter(|p| !p.is_empty()) {
        Some(p) => format!("{DIR}:{p}"),
        None => DIR.to_string(),
    };
    env.insert("PYTHONPATH".into(), path);
}

/// The lines covered and measured, from the Cobertura XML report's root element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Totals {
    /// Statements run.
    pub covered_lines: u64,
    /// Statements measured.
    pub num_statements: u64,
}

impl Totals {
    /// The totals of a `coverage xml` report (`<coverage lines-valid=".." lines-covered="..">`).
    pub fn from_xml(text: &str) -> Option<Self> {
        let start = text.find("<coverage ")?;
        let tag = &text[start..start + text[start..].find('>')?];
        let attr = |name: &str| -> Option<u64> {
            let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            tag[at..].split('"').next()?.parse().ok()
        };
        Some(Self {
            covered_lines: attr("lines-covered")?,
            num_statements: attr("lines-valid")?,
        })
    }

    /// Covered as a percentage of measured.
    pub fn percent(&self) -> f64 {
        if self.num_statements == 0 {
            0.0
        } else {
            100.0 * self.covered_lines as f64 / self.num_statements as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_name_the_packages_and_map_site_packages_to_their_source() {
        let cc = CodeCoverage {
            source: vec!["socs".into()],
            omit: vec!["*/_version.py".into()],
        };
        let rc = cc.agent_rcfile();
        assert!(rc.contains("parallel = true"), "{rc}");
        assert!(rc.contains("source =\n    socs\n"), "{rc}");
        assert!(rc.contains("data_file = /ocs-harness-coverage/data/.coverage"));
        let rc = cc.combine_rcfile();
        assert!(
            rc.contains("socs =\n    socs/\n    */site-packages/socs/\n"),
            "{rc}"
        );
        assert!(rc.contains("relative_files = true"), "{rc}");
        assert!(rc.contains("omit =\n    */_version.py\n"), "{rc}");
        assert!(cc.combine_script().ends_with("main([\"socs\"])\n"));
        let mut env = BTreeMap::from([("PYTHONPATH".to_string(), "/app".to_string())]);
        add_env(&mut env);
        assert_eq!(env["PYTHONPATH"], "/ocs-harness-coverage:/app");
        assert_eq!(
            env["COVERAGE_PROCESS_START"],
            "/ocs-harness-coverage/.coveragerc"
        );
    }

    #[test]
    fn totals_come_from_the_xml_report() {
        let t = Totals::from_xml(
            "<?xml version=\"1.0\" ?>\n<coverage version=\"7.17.3\" timestamp=\"1\" \
             lines-valid=\"5000\" lines-covered=\"1234\" line-rate=\"0.2468\">\n<sources>",
        )
        .unwrap();
        assert_eq!((t.covered_lines, t.num_statements), (1234, 5000));
        assert!((t.percent() - 24.68).abs() < 0.01);
        assert_eq!(Totals::from_xml("<coverage>"), None);
    }
}
