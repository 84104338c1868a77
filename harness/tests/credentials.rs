//! Credentials never appear in clear in anything a run writes:
//! `harness/tests/data/credentials.yaml` runs through the binary (`ocs-harness test`, JSON events on
//! stdout, the debug log on stderr, a JUnit file, the HTML report, the snapshot, the run directory) with
//! passwords only this test knows, and none of it holds them. The agent's own level-2 password
//! is one of its arguments, so it is in the site config the run records (`config/`), by
//! design; the client's password and every step's are nowhere.
//!
//! The same holds for a password the run learns: ocs's exclusive-access test, ported
//! (`scenarios/upstream/access-exclusive.yaml`), captures the password the Access Director hands
//! out with a grant and sends it from later steps.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ocs-harness");

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn passwords_are_sent_and_never_written_in_clear() {
    let id = std::process::id();
    let client_pw = format!("client-secret-{id}-x");
    let pw2 = format!("level2-secret-{id}-y");
    let project = std::env::temp_dir().join(format!("ocsh-credentials-{id}"));
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(project.join("scenarios")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/credentials.yaml"),
        project.join("scenarios/credentials.yaml"),
    )
    .unwrap();
    let junit = project.join("junit.xml");
    let out = Command::new(BIN)
        .args([
            "test",
            "scenarios/credentials.yaml",
            "--accept",
            "--format",
            "json",
        ])
        .arg("--junit")
        .arg(&junit)
        .arg("--html")
        .arg(project.join("report"))
        .arg("-vv")
        .current_dir(&project)
        .env("OCS_HARNESS_RUNS_DIR", project.join("runs"))
        .env("OCSH_CLIENT_PW", &client_pw)
        .env("OCSH_FAKE_PW2", &pw2)
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the scenario passes (so the passwords were sent and checked):\n{stdout}\n{stderr}"
    );
    // the debug log shows each bridge call, its `password` kwarg masked
    assert!(
        stderr.contains(r#""password":"<redacted>""#),
        "the calls carry a password: {stderr}"
    );

    let mut files = Vec::new();
    files_under(&project, &mut files);
    let runs = project.join("runs");
    assert!(
        files.iter().any(|f| f.starts_with(&runs)),
        "a run directory"
    );
    assert!(files.contains(&junit), "a JUnit file");
    assert!(
        files.iter().any(|f| f.starts_with(project.join("report"))),
        "an HTML report"
    );
    let mut looked = vec![("stdout".to_string(), stdout.to_string())];
    looked.push(("stderr".to_string(), stderr.to_string()));
    for f in files.iter().filter(|f| !f.ends_with("credentials.yaml")) {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        looked.push((f.display().to_string(), text));
    }
    for (name, text) in &looked {
        assert!(
            !text.contains(&client_pw),
            "the client password is in {name}"
        );
        let scf = name.contains("/config/");
        assert!(
            scf || !text.contains(&pw2),
            "the level-2 password is in {name}"
        );
    }
    std::fs::remove_dir_all(&project).unwrap();
}

/// The text of an HTML page as it reads (`&quot;` as `"`), so a password in it is seen; any
/// other file as it is.
fn unescape_html(file: &Path, text: String) -> String {
    if file.extension().is_none_or(|e| e != "html") {
        return text;
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every `password` value written in `text` (`"password": "x"`, `password: x`, `password=x`).
fn password_values(text: &str) -> Vec<String> {
    static PASSWORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"\bpassword\b["']?\s*[:=]\s*["']?([^"'\s,}\]]*)"#).expect("a regex")
    });
    PASSWORD
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

#[test]
fn a_password_from_a_reply_is_never_written_in_clear() {
    let id = std::process::id();
    let project = std::env::temp_dir().join(format!("ocsh-credentials-grant-{id}"));
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(project.join("scenarios/files")).unwrap();
    let upstream = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/upstream");
    for file in ["access-exclusive.yaml", "files/ocs-access.yaml"] {
        std::fs::copy(upstream.join(file), project.join("scenarios").join(file)).unwrap();
    }
    let junit = project.join("junit.xml");
    let out = Command::new(BIN)
        .args([
            "test",
            "scenarios/access-exclusive.yaml",
            "--accept",
            "--format",
            "json",
        ])
        .arg("--junit")
        .arg(&junit)
        .arg("--html")
        .arg(project.join("report"))
        .arg("-v")
        .current_dir(&project)
        .env("OCS_HARNESS_RUNS_DIR", project.join("runs"))
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the scenario passes (so the grant's password was captured and sent):\n{stdout}\n{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("grant acquired") && l.contains(r#""password":"<redacted>""#)),
        "the director's reply is recorded, its password redacted: {stdout}"
    );

    // The grant's password is random: every password written anywhere must be redacted (or
    // none sent). The super-user's is known, and only in the director's configuration.
    let mut files = Vec::new();
    files_under(&project, &mut files);
    let mut looked = vec![("stdout".to_string(), stdout.to_string())];
    looked.push(("stderr".to_string(), stderr.to_string()));
    for f in files
        .iter()
        .filter(|f| !f.starts_with(project.join("scenarios/")))
    {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        looked.push((f.display().to_string(), unescape_html(f, text)));
    }
    assert!(
        files.iter().any(|f| f.starts_with(project.join("runs"))),
        "a run directory"
    );
    assert!(files.contains(&junit), "a JUnit file");
    assert!(
        files.iter().any(|f| f.starts_with(project.join("report"))),
        "an HTML report"
    );
    let mut sent = 0;
    for (name, text) in &looked {
        assert!(
            !text.contains("superuser"),
            "the super-user's password is in {name}"
        );
        for value in password_values(text) {
            assert!(
                ["<redacted>", "null", "~", ""].contains(&value.as_str()),
                "a password in clear in {name}: {value}"
            );
            sent += usize::from(value == "<redacted>");
        }
    }
    assert!(sent > 0, "the passwords sent are shown, redacted");
    std::fs::remove_dir_all(&project).unwrap();
}
