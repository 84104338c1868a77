//! The harness's device emulator (harness/src/device/emulator.py) on this host, without
//! Docker: socs's semantics (a response per command, a list given in turn then nothing, no
//! reply, a delay, a default), its control commands (define, update, received), every
//! connection served, and the serial framing (lines in, CRLF after each reply).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn emulator() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/device/emulator.py")
}

/// A running emulator, stopped when dropped.
struct Device {
    child: Child,
    port: u16,
    control: PathBuf,
    dir: PathBuf,
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(config: serde_json::Value) -> Device {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ocsh-device-test-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = config;
    config["port"] = port.into();
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let control = dir.join("control.sock");
    let child = Command::new("python3")
        .arg("-u")
        .arg(emulator())
        .arg("serve")
        .arg(&path)
        .env("OCS_HARNESS_DEVICE_CONTROL", &control)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("python3 runs");
    Device {
        child,
        port,
        control,
        dir,
    }
}

impl Device {
    /// A connection, once the emulator listens (deadline 10 s).
    fn connect(&self) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_millis(700)))
                        .unwrap();
                    return s;
                }
                Err(e) if Instant::now() > deadline => {
                    panic!(
                        "the emulator did not listen on {} within 10 s: {e}",
                        self.port
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)), // poll again
            }
        }
    }

    /// The emulator's control command `args`; its JSON answer.
    fn control(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new("python3")
            .arg(emulator())
            .args(args)
            .env("OCS_HARNESS_DEVICE_CONTROL", &self.control)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// Send `msg`; what comes back within the read timeout (`None`: nothing).
fn ask(s: &mut TcpStream, msg: &str) -> Option<String> {
    s.write_all(msg.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

#[test]
fn tcp_device_answers_as_socs_emulator_does() {
    let d = start(serde_json::json!({
        "name": "t", "serial": false, "encoding": "utf-8", "default": null,
        "responses": {"*IDN?": "LSCI", "SEQ": ["1", "2"], "NONE": null,
                      "SLOW": {"reply": "late", "delay": 0.3}}
    }));
    let mut s = d.connect();
    assert_eq!(ask(&mut s, "*IDN?\r\n").as_deref(), Some("LSCI"));
    assert_eq!(ask(&mut s, "SEQ").as_deref(), Some("1"));
    assert_eq!(ask(&mut s, "SEQ").as_deref(), Some("2"));
    assert_eq!(ask(&mut s, "SEQ"), None, "a used-up list gives nothing");
    assert_eq!(ask(&mut s, "NONE"), None);
    assert_eq!(ask(&mut s, "UNKNOWN"), None, "no default: nothing");
    let t = Instant::now();
    assert_eq!(ask(&mut s, "SLOW").as_deref(), Some("late"));
    assert!(t.elapsed() >= Duration::from_millis(300));

    let define = r#"{"responses": {"B": "b"}, "default": "dflt"}"#;
    assert_eq!(d.control(&["define", define])["responses"], 1);
    assert_eq!(ask(&mut s, "B").as_deref(), Some("b"));
    assert_eq!(
        ask(&mut s, "*IDN?").as_deref(),
        Some("dflt"),
        "define replaces all"
    );
    d.control(&["update", r#"{"responses": {"C": "c"}}"#]);
    assert_eq!(
        ask(&mut s, "B").as_deref(),
        Some("b"),
        "update keeps the others"
    );
    // a second connection while the first is open is served too
    let mut other = d.connect();
    assert_eq!(ask(&mut other, "C").as_deref(), Some("c"));

    let received = d.control(&["received"]);
    assert_eq!(
        received["received"],
        serde_json::json!([
            "*IDN?", "SEQ", "SEQ", "SEQ", "NONE", "UNKNOWN", "SLOW", "B", "*IDN?", "B", "C"
        ])
    );
}

#[test]
fn serial_device_reads_lines_and_ends_replies_with_crlf() {
    let d = start(serde_json::json!({
        "name": "s", "serial": true, "encoding": "utf-8", "default": null,
        "responses": {"*IDN?": "LSCI,MODEL425", "ZCLEAR": ""}
    }));
    let mut s = d.connect();
    // two commands in one write are two messages
    let answer = ask(&mut s, "ZCLEAR\r\n*IDN?\r\n").unwrap();
    let mut all = answer;
    while all.len() < "\r\nLSCI,MODEL425\r\n".len() {
        all.push_str(&ask(&mut s, "").expect("the rest of the replies"));
    }
    assert_eq!(all, "\r\nLSCI,MODEL425\r\n");
    assert_eq!(
        d.control(&["received"])["received"],
        serde_json::json!(["ZCLEAR", "*IDN?"])
    );
}

#[test]
fn raw_device_speaks_hex() {
    let d = start(serde_json::json!({
        "name": "r", "serial": false, "encoding": null, "default": null,
        "responses": {"0999": "0a0b"}
    }));
    let mut s = d.connect();
    s.write_all(&[0x09, 0x99]).unwrap();
    let mut buf = [0u8; 8];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x0a, 0x0b]);
    assert_eq!(
        d.control(&["received"])["received"],
        serde_json::json!(["0999"])
    );
}
