//! A corpus of broken scenario files, each next to the exact error text it must produce:
//! `bad-input/parse/<case>.yaml` holds a realistic scenario with one mistake (its first comment
//! line says which), `<case>.err` the full rendering of every error the parser reports for it,
//! as [`ScenarioErrors`] displays them, plus a final newline.
//!
//! A new `.yaml` file is a new test (`build.rs` watches the directory). To create or update the
//! `.err` files, run
//!
//! ```text
//! BAD_INPUT_BLESS=1 cargo test -p ocs-harness-tests --test bad_input
//! ```
//!
//! and read every changed `.err` file: it is the message a user will see.

use std::path::{Path, PathBuf};

use ocs_harness::{Scenario, ScenarioErrors};
use rstest::rstest;

/// Fewer cases than this means files went missing.
const MIN_CASES: usize = 20;

/// Where the cases are, as written in messages (relative to the workspace root).
const SHOWN_DIR: &str = "tests/bad-input/parse";

/// The environment the scenarios see: only these variables are set, so every other `${VAR}`
/// without a default is reported as unset, whatever the real environment holds.
fn lookup(name: &str) -> Option<String> {
    match name {
        "OCS_TAG" => Some("v0.12.1".into()),
        "FAKE_INSTANCE_ID" => Some("fake data 1".into()),
        _ => None,
    }
}

/// Paths in the cases resolve as shown (relative to the workspace root), as they do when a
/// user runs the harness there: every case sets the same directory, so the cases may run in
/// parallel.
fn from_workspace_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root)
        .unwrap_or_else(|e| panic!("cannot change to {}: {e}", root.display()));
}

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bad-input/parse")
}

fn blessing() -> bool {
    std::env::var_os("BAD_INPUT_BLESS").is_some_and(|v| v == "1")
}

#[rstest]
fn bad_input(#[files("bad-input/parse/*.yaml")] path: PathBuf) {
    let file_name = path
        .file_name()
        .expect("a case file has a name")
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let shown = Path::new(SHOWN_DIR).join(&file_name);
    from_workspace_root();

    // A panic in the parser fails this test with its message; reaching the next line means the
    // parse returned.
    let result = Scenario::parse_all(&text, &shown, &lookup);
    let errors = match result {
        Ok(_) => panic!(
            "{} parsed without an error, but it is a broken case",
            shown.display()
        ),
        Err(errors) => errors,
    };
    assert!(
        !errors.is_empty(),
        "{}: the parse failed with an empty error list",
        shown.display()
    );
    let actual = format!("{}\n", ScenarioErrors(errors));

    let err_path = path.with_extension("err");
    if blessing() {
        std::fs::write(&err_path, &actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", err_path.display()));
        eprintln!("wrote {}", err_path.display());
        return;
    }
    let expected = match std::fs::read_to_string(&err_path) {
        Ok(s) => s,
        Err(e) => panic!(
            "cannot read {}: {e}\n\nthe parser says:\n\n{actual}\nto record this as the expected \
             text, run with BAD_INPUT_BLESS=1 and read the new file",
            err_path.display()
        ),
    };
    if actual != expected {
        panic!(
            "the errors for {} differ from {}\n\n{}\nif the new text is right, run with \
             BAD_INPUT_BLESS=1 to record it, and read the changed file",
            shown.display(),
            err_path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            line_diff(&expected, &actual),
        );
    }
}

/// Every case has its expected text, every expected text its case, and there are enough.
#[test]
fn the_corpus_is_complete() {
    let mut yaml = Vec::new();
    let mut err = Vec::new();
    for entry in std::fs::read_dir(case_dir()).expect("bad-input/parse is readable") {
        let path = entry.expect("a directory entry").path();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml") => yaml.push(stem),
            Some("err") => err.push(stem),
            _ => panic!(
                "unexpected file {} (cases are <case>.yaml with <case>.err)",
                path.display()
            ),
        }
    }
    yaml.sort();
    err.sort();
    assert!(
        yaml.len() >= MIN_CASES,
        "only {} cases in bad-input/parse, expected at least {MIN_CASES}",
        yaml.len()
    );
    if !blessing() {
        let no_err: Vec<_> = yaml.iter().filter(|s| !err.contains(s)).collect();
        assert!(
            no_err.is_empty(),
            "cases without a .err file (run with BAD_INPUT_BLESS=1): {no_err:?}"
        );
    }
    let no_yaml: Vec<_> = err.iter().filter(|s| !yaml.contains(s)).collect();
    assert!(
        no_yaml.is_empty(),
        ".err files without their case: {no_yaml:?}"
    );
}

/// Each case says what is wrong with it in its first line.
#[rstest]
fn each_case_starts_with_a_comment(#[files("bad-input/parse/*.yaml")] path: PathBuf) {
    let text = std::fs::read_to_string(&path).expect("readable");
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("# ") && first.len() > 10,
        "{}: the first line should be a comment saying what is wrong, not {first:?}",
        path.display()
    );
}

/// A line diff of `expected` and `actual` (longest common subsequence), `-` for expected lines
/// that are missing, `+` for actual lines that are new.
fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..]
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::from("--- expected\n+++ actual\n");
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        out.push_str("(the two differ in their final newline)\n");
    }
    out
}
