//! Any Docker engine, for real on this machine: the harness binary inside a container (the
//! engine's socket mounted; on the host network, and on the default bridge dialling crossbar at
//! `OCS_HARNESS_HOST`), an engine reached over `tcp://` through socat, the same over TLS
//! with certificates made here by openssl (the bridge is dialled at the engine's host), and two
//! harnesses in two containers on the host network (same host name, other PID namespaces) that
//! run together and do not sweep each other. Each runs `scenarios/barebones.yaml` and leaves
//! nothing behind. socat and openssl are required (`.ci/engines.sh` installs them): without
//! them the tests fail saying so.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ocs_harness::testing::{
    LABEL_BOOT, LABEL_HOST, LABEL_OWNER, LABEL_PID, LABEL_PID_NS, LABEL_RUN,
};

const BIN: &str = env!("CARGO_BIN_EXE_ocs-harness");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A tool the test needs: a clear failure when it is missing, never a silent skip.
fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is not installed; the engine tests need it (run .ci/engines.sh, which installs \
         socat and openssl with apt-get)"
    );
}

fn show(what: &str, out: &Output) -> String {
    let text = format!(
        "$ {what} -> {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    text
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    let text = show(&format!("docker {}", args.join(" ")), &out);
    assert!(out.status.success(), "{text}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What a test started, removed at its end whatever happens.
#[derive(Default)]
struct Cleanup {
    children: Vec<Child>,
    containers: Vec<String>,
    images: Vec<String>,
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        for i in &self.images {
            let _ = docker(&["rmi", "-f", i]);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A throwaway project: the barebones agent, its scenario and its snapshot.
fn project(tag: &str, cleanup: &mut Cleanup) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ocsh-engines-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    cleanup.dirs.push(dir.clone());
    let agent = dir.join("agent");
    std::fs::create_dir_all(&agent).unwrap();
    for f in ["Dockerfile", "barebones_agent.py"] {
        let from = repo().join("fixtures/agents/barebones").join(f);
        std::fs::copy(from, agent.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(repo().join("scenarios/barebones.yaml")).unwrap();
    let text = text.replace("build: ../fixtures/agents/barebones", "build: ../agent");
    assert!(text.contains("build: ../agent"));
    std::fs::create_dir_all(dir.join("scenarios/snapshots")).unwrap();
    std::fs::write(dir.join("scenarios/barebones.yaml"), text).unwrap();
    std::fs::copy(
        repo().join("scenarios/snapshots/barebones.snap"),
        dir.join("scenarios/snapshots/barebones.snap"),
    )
    .unwrap();
    dir
}

/// Run the binary on the project's barebones scenario with `env`.
fn run_on_host(project: &Path, env: &[(&str, &str)]) -> (Output, String, u32) {
    let mut c = Command::new(BIN);
    c.args(["-v", "test", "scenarios/barebones.yaml"])
        .current_dir(project)
        .env("OCS_HARNESS_RUNS_DIR", project.join("runs"))
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().expect("the binary runs");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = show(&format!("ocs-harness test ({env:?})"), &out);
    (out, text, pid)
}

/// Every managed container and network whose labels match `keep`: (run, labels).
fn labelled(
    keep: impl Fn(&HashMap<String, String>) -> bool,
) -> Vec<(String, HashMap<String, String>)> {
    let mut found = Vec::new();
    for kind in [&["ps", "-aq"][..], &["network", "ls", "-q"][..]] {
        let mut args = kind.to_vec();
        args.extend(["--filter", "label=org.ocs-harness.managed=true"]);
        let ids = docker_ok(&args);
        for id in ids.lines().filter(|l| !l.is_empty()) {
            let fmt = if kind[0] == "ps" {
                "{{json .Config.Labels}}"
            } else {
                "{{json .Labels}}"
            };
            let inspect = if kind[0] == "ps" {
                "container"
            } else {
                "network"
            };
            let out = docker(&[inspect, "inspect", "-f", fmt, id]);
            let Ok(labels) = serde_json::from_slice::<HashMap<String, String>>(&out.stdout) else {
                continue; // removed meanwhile
            };
            if keep(&labels) {
                found.push((labels.get(LABEL_RUN).cloned().unwrap_or_default(), labels));
            }
        }
    }
    found
}

fn assert_nothing_left(label: &str, value: &str) {
    let left = labelled(|l| l.get(label).map(String::as_str) == Some(value));
    assert!(left.is_empty(), "left behind ({label}={value}): {left:?}");
}

fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start socat with `args` and wait (5 s at most) until it listens on `ip:port`.
fn socat(args: &[String], ip: &str, port: u16, cleanup: &mut Cleanup) {
    need("socat");
    let child = Command::new("socat")
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("socat starts");
    cleanup.children.push(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect((ip, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "socat did not listen on {ip}:{port} within 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn docker_socket() -> String {
    "/var/run/docker.sock".into()
}

#[test]
fn an_engine_over_tcp_through_socat() {
    let mut cleanup = Cleanup::default();
    let project = project("tcp", &mut cleanup);
    let port = free_port("127.0.0.1");
    let listen = format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork");
    let args = [listen, format!("UNIX-CONNECT:{}", docker_socket())];
    socat(&args, "127.0.0.1", port, &mut cleanup);
    let host = format!("tcp://127.0.0.1:{port}");
    let (out, text, pid) = run_on_host(&project, &[("DOCKER_HOST", &host)]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("from=DOCKER_HOST={host}")), "{text}");
    assert!(text.contains("bridge=http://127.0.0.1:"), "{text}");
    assert_nothing_left(LABEL_PID, &pid.to_string());
}

/// The default bridge's gateway: an address of the engine's host other than loopback.
fn bridge_gateway() -> String {
    let ipam = docker_ok(&[
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}",
    ]);
    let mut parts = ipam.split_whitespace();
    let first = parts.next().expect("the bridge network has a subnet");
    if !first.contains('/') {
        return first.to_string();
    }
    // No gateway listed: Docker gives the subnet's first address to the bridge.
    let net = first.split('/').next().unwrap();
    let mut octets: Vec<&str> = net.split('.').collect();
    octets[3] = "1";
    octets.join(".")
}

/// A CA, a server certificate for `ip` and a client certificate, as Docker expects them in
/// `DOCKER_CERT_PATH` (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path, ip: &str) {
    need("openssl");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        let text = show(&format!("openssl {}", args.join(" ")), &out);
        assert!(out.status.success(), "{text}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "1",
        "-subj",
        "/CN=ocs-harness test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca-key.pem", "-out", "ca.pem"]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(&ca);
    for (name, ext) in [
        (
            "server",
            format!("subjectAltName=IP:{ip},DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ),
        ("client", "extendedKeyUsage=clientAuth\n".to_string()),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let mut req = vec!["req", "-subj", "/CN=ocs-harness test"];
        req.extend(ec);
        let (key, csr, cert) = (
            format!("{name}-key.pem"),
            format!("{name}.csr"),
            format!("{name}-cert.pem"),
        );
        req.extend(["-keyout", &key, "-out", &csr]);
        openssl(&req);
        let ext = format!("{name}.ext");
        openssl(&[
            "x509",
            "-req",
            "-days",
            "1",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ]);
    }
    std::fs::copy(dir.join("client-cert.pem"), dir.join("cert.pem")).unwrap();
    std::fs::copy(dir.join("client-key.pem"), dir.join("key.pem")).unwrap();
}

#[test]
fn a_tls_engine_at_another_address() {
    let mut cleanup = Cleanup::default();
    let project = project("tls", &mut cleanup);
    let ip = bridge_gateway();
    let certs = project.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    certificates(&certs, &ip);
    let port = free_port(&ip);
    let c = |f: &str| certs.join(f).display().to_string();
    // The harness verifies the engine's certificate against the CA (DOCKER_TLS_VERIFY) and
    // offers its client certificate; socat does not demand it (`verify=0`): with it, OpenSSL
    // refuses rustls's session resumption ("session id context uninitialized").
    let listen = format!(
        "OPENSSL-LISTEN:{port},bind={ip},reuseaddr,fork,cert={},key={},verify=0",
        c("server-cert.pem"),
        c("server-key.pem"),
    );
    let args = [listen, format!("UNIX-CONNECT:{}", docker_socket())];
    socat(&args, &ip, port, &mut cleanup);
    let host = format!("tcp://{ip}:{port}");
    let cert_path = certs.display().to_string();
    let env = [
        ("DOCKER_HOST", host.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", cert_path.as_str()),
    ];
    let (out, text, pid) = run_on_host(&project, &env);
    assert!(out.status.success(), "{text}");
    // The bridge is dialled at the engine's host, not at a fixed address, and crossbar's port
    // is published on that one address, not on every interface (it was before).
    assert!(text.contains(&format!("bridge=http://{ip}:")), "{text}");
    assert!(text.contains(&format!("published={ip} ")), "{text}");
    assert_nothing_left(LABEL_PID, &pid.to_string());
}

/// The harness image: the binary on the local OS image (docker/harness/Dockerfile).
fn harness_image(cleanup: &mut Cleanup) -> String {
    let os = docker_ok(&[
        "images",
        "ocs-harness/os",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    let os = os
        .lines()
        .next()
        .expect("the local OS image ocs-harness/os:bookworm-* (any scenario run builds it)")
        .to_string();
    // One directory per call: the tests of this file build in parallel in one process.
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ctx = std::env::temp_dir().join(format!("ocsh-engines-image-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ctx);
    std::fs::create_dir_all(&ctx).unwrap();
    cleanup.dirs.push(ctx.clone());
    std::fs::copy(BIN, ctx.join("ocs-harness")).unwrap();
    std::fs::copy(
        repo().join("docker/harness/Dockerfile"),
        ctx.join("Dockerfile"),
    )
    .unwrap();
    let tag = format!("ocs-harness/harness-test:{}-{n}", std::process::id());
    let out = Command::new("docker")
        .args([
            "build",
            "-q",
            "--build-arg",
            &format!("OS_IMAGE={os}"),
            "-t",
            &tag,
        ])
        .arg(&ctx)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build runs");
    let text = show("docker build (harness image)", &out);
    assert!(out.status.success(), "{text}");
    cleanup.images.push(tag.clone());
    tag
}

/// A container of the harness image with the engine's socket, the project copied in, running
/// `ocs-harness -v test scenarios/barebones.yaml`; `options` go to `docker create` (the
/// network, `--init` so that the harness's pid is not 1, `-e` variables).
fn harness_container(
    image: &str,
    project: &Path,
    name: &str,
    options: &[&str],
    cleanup: &mut Cleanup,
) -> String {
    let socket = format!("{0}:{0}", docker_socket());
    let name = format!("ocsh-engines-{}-{name}", std::process::id());
    cleanup.containers.push(name.clone());
    let mut args = vec!["create", "--name", &name, "-v", &socket, "-w", "/project"];
    args.extend(["--label", "org.ocs-harness.engines-test=true"]);
    args.extend(options);
    args.extend([image, "-v", "test", "scenarios/barebones.yaml"]);
    docker_ok(&args);
    let src = format!("{}/.", project.display());
    docker_ok(&["cp", &src, &format!("{name}:/project")]);
    name
}

/// The PID namespace of a running container's main process, as the labels write it.
fn pid_ns(container: &str) -> String {
    let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", container]);
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .unwrap_or_else(|e| panic!("the PID namespace of {container} (host pid {pid}): {e}"))
        .to_string_lossy()
        .into_owned()
}

/// On the host network (crossbar on loopback, as for a local engine), on the default bridge
/// with `OCS_HARNESS_HOST` set to the bridge's gateway (crossbar published there and dialled
/// there), and on the default bridge with nothing set, all at once.
#[test]
fn the_harness_in_a_container() {
    let mut cleanup = Cleanup::default();
    let project = project("in-container", &mut cleanup);
    let image = harness_image(&mut cleanup);
    let gateway = bridge_gateway();
    let host_env = format!("OCS_HARNESS_HOST={gateway}");
    let cases = [
        // On the host network the harness dials loopback, or the default bridge's gateway when
        // the engine lists one (the harness sees /.dockerenv; the gateway is a host address).
        (
            vec!["--network", "host"],
            vec!["127.0.0.1".to_string(), gateway.clone()],
        ),
        (
            vec!["--network", "bridge", "-e", &host_env],
            vec![gateway.clone()],
        ),
        // On the default bridge with nothing set: the listed gateway, or, where the engine lists
        // a subnet and no gateway (this project's machine), the container's default route; it
        // dialled 127.0.0.1 there before, and failed with crossbar up.
        (vec!["--network", "bridge"], vec![gateway.clone()]),
    ];
    let mut started = Vec::new();
    for (i, (options, bridge_host)) in cases.iter().enumerate() {
        let name = format!("solo{i}");
        let name = harness_container(&image, &project, &name, options, &mut cleanup);
        docker_ok(&["start", &name]);
        started.push((pid_ns(&name), name, bridge_host));
    }
    for (ns, name, bridge_hosts) in started {
        let code = docker_ok(&["wait", &name]);
        let text = show(&format!("docker logs {name}"), &docker(&["logs", &name]));
        assert_eq!(code, "0", "{text}");
        assert!(
            bridge_hosts
                .iter()
                .any(|h| text.contains(&format!("bridge=http://{h}:"))),
            "the bridge URL is none of {bridge_hosts:?}: {text}"
        );
        // Published on the address dialled (loopback, or the gateway), never on every interface.
        assert!(
            bridge_hosts
                .iter()
                .any(|h| text.contains(&format!("bridge=http://{h}:"))
                    && text.contains(&format!("published={h} "))),
            "crossbar was not published on the address dialled ({bridge_hosts:?}): {text}"
        );
        assert_nothing_left(LABEL_PID_NS, &ns);
    }
}

#[test]
fn two_harnesses_in_containers_on_the_host_network() {
    let mut cleanup = Cleanup::default();
    let project = project("pair", &mut cleanup);
    let image = harness_image(&mut cleanup);
    // b's harness runs under an init, so its pid (not 1) does not exist in a's namespace: a
    // rule comparing pids on the same host name would take b's live run for a dead one.
    let a = harness_container(&image, &project, "a", &["--network", "host"], &mut cleanup);
    let b_options = ["--network", "host", "--init"];
    let b = harness_container(&image, &project, "b", &b_options, &mut cleanup);
    docker_ok(&["start", &a, &b]);
    let (ns_a, ns_b) = (pid_ns(&a), pid_ns(&b));
    assert_ne!(ns_a, ns_b);

    // Both runs live at once.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (run_a, run_b) = loop {
        let runs = labelled(|l| {
            l.get(LABEL_PID_NS)
                .is_some_and(|n| *n == ns_a || *n == ns_b)
        });
        let of = |ns: &str| {
            runs.iter()
                .find(|(_, l)| l.get(LABEL_PID_NS).map(String::as_str) == Some(ns))
                .cloned()
        };
        if let (Some(ra), Some(rb)) = (of(&ns_a), of(&ns_b)) {
            break (ra, rb);
        }
        let running = docker_ok(&["inspect", "-f", "{{.State.Running}}", &a, &b]);
        assert!(
            Instant::now() < deadline && !running.contains("false"),
            "the two runs were never up together (running: {running}); logs:\n{}\n{}",
            show("logs a", &docker(&["logs", &a])),
            show("logs b", &docker(&["logs", &b]))
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Same host name and kernel, other PID namespaces and owners.
    let (la, lb) = (&run_a.1, &run_b.1);
    assert_eq!(la.get(LABEL_HOST), lb.get(LABEL_HOST));
    assert_eq!(la.get(LABEL_BOOT), lb.get(LABEL_BOOT));
    assert_ne!(la.get(LABEL_OWNER), lb.get(LABEL_OWNER));
    assert_ne!(la.get(LABEL_PID_NS), lb.get(LABEL_PID_NS));
    assert_ne!(la.get(LABEL_PID), lb.get(LABEL_PID));

    // A sweep in each container, while both run, keeps the other's run and says why.
    for (me, other) in [(&a, &run_b.0), (&b, &run_a.0)] {
        let out = docker(&["exec", me, "ocs-harness", "-v", "clean"]);
        let text = show(&format!("docker exec {me} ocs-harness -v clean"), &out);
        assert!(out.status.success(), "{text}");
        let kept = format!("sweep keeps run {other} (scenario barebones): its harness process");
        assert!(text.contains(&kept), "{text}");
        assert!(text.contains("in another PID namespace"), "{text}");
        assert!(!text.contains(&format!("removes run {other}")), "{text}");
    }
    let codes = docker_ok(&["wait", &a, &b]);
    for (name, other) in [(&a, &run_b.0), (&b, &run_a.0)] {
        let out = docker(&["logs", name]);
        let text = show(&format!("docker logs {name}"), &out);
        assert!(!text.contains(&format!("removes run {other}")), "{text}");
        assert!(!text.contains(&format!("removed run {other}")), "{text}");
    }
    assert_eq!(
        codes.split_whitespace().collect::<Vec<_>>(),
        ["0", "0"],
        "exit codes"
    );
    assert_nothing_left(LABEL_PID_NS, &ns_a);
    assert_nothing_left(LABEL_PID_NS, &ns_b);
}
