//! A private Docker engine for fault tests: a `dockerd` of its own, in a network
//! namespace of its own, with its own data root, exec root, pid file, socket and
//! cgroup parent under one folder, started fail-closed. A test can kill it as a crash
//! would and start it again on the same data, without touching the machine's engine
//! that every other test and build shares.
//!
//! Needs root, `ip` (iproute2), `nsenter` (util-linux), `dockerd` and `docker`; a
//! missing one fails the test with what to install, never a skip. Everything an
//! engine made — its processes, its containers' processes, mounts (the tmpfs disks a
//! test asked it for too), cgroups, the namespace and the folder — goes when it is
//! dropped, even when the test failed; and whatever a test run that was itself killed
//! left behind is cleared by the next [`PrivateEngine::start`].
//!
//! Names are `handoff-t-<pid>-<n>` (namespace, folder `/tmp/handoff-t-<pid>-<n>`,
//! cgroup parent), so engines of tests running in parallel, in one process or
//! several, never meet.

use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{handoff_command, image, json_of_success, Repo};

/// The prefix of every name an engine of these tests takes.
const PREFIX: &str = "handoff-t-";

/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/var/run/netns";

/// Where an engine started with [`PrivateEngine::start_with_tls`] listens, inside its
/// own network namespace (so only processes in that namespace reach it).
pub const TLS_ADDR: &str = "127.0.0.1:2376";

/// The port [`PrivateEngine::start_sshd`]'s sshd listens on, on 127.0.0.1 inside the
/// engine's namespace.
pub const SSH_PORT: u16 = 2222;

/// An sshd in front of a private engine; stopped when dropped.
pub struct SshAccess {
    /// The ssh configuration that reaches it (host `engine`).
    pub config: PathBuf,
    log: PathBuf,
    sshd: Child,
}

impl SshAccess {
    /// sshd's log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SshAccess {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

pub struct PrivateEngine {
    name: String,
    root: PathBuf,
    /// The engine's process: dockerd, or `podman system service`.
    dockerd: Option<Child>,
    /// Also listening on [`TLS_ADDR`] with TLS, verifying clients.
    tls: bool,
    /// `podman system service` rather than dockerd (Podman's Docker API).
    podman: bool,
}

impl PrivateEngine {
    /// Starts an engine with the test image ([`image`]) loaded. Clears what killed
    /// earlier runs left first.
    pub fn start() -> PrivateEngine {
        Self::start_with(false)
    }

    /// [`PrivateEngine::start`], the engine also listening on `tcp://` [`TLS_ADDR`]
    /// with `--tlsverify`: its certificate (for `IP:127.0.0.1`) and the clients' are
    /// signed by a CA the test makes with openssl. [`PrivateEngine::client_certs`]
    /// holds a client's `ca.pem`, `cert.pem` and `key.pem`;
    /// [`PrivateEngine::stranger_certs`] the same made by another CA.
    pub fn start_with_tls() -> PrivateEngine {
        Self::start_with(true)
    }

    /// Podman's Docker API instead of dockerd: `podman system service` on the unix
    /// socket of [`PrivateEngine::docker_host`], in the engine's namespace, with its
    /// own storage and run folders under the engine's folder; the test image arrives
    /// by `docker save | docker load` into it, as into dockerd.
    pub fn start_podman() -> PrivateEngine {
        Self::start_kind(false, true)
    }

    fn start_with(tls: bool) -> PrivateEngine {
        Self::start_kind(tls, false)
    }

    fn start_kind(tls: bool, podman: bool) -> PrivateEngine {
        require_tools();
        if podman {
            require_podman();
        }
        sweep_stale();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let root = std::env::temp_dir().join(&name);
        // A folder or namespace of this name belongs to a dead process that had our
        // pid (the sweep cleared those whose owner it could tell): clear it too.
        if root.exists() || Path::new(NETNS_DIR).join(&name).exists() {
            clean_up(&name, &root);
        }
        fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        // From here on, a panic drops the engine and so clears what it made.
        let mut engine = PrivateEngine {
            name,
            root,
            dockerd: None,
            tls,
            podman,
        };
        fs::write(engine.root.join("owner"), Owner::me().to_line()).unwrap();
        fs::write(engine.root.join("daemon.json"), "{}\n").unwrap();
        if tls {
            make_certificates(&engine.root.join("tls"));
        }
        run(Command::new("ip").args(["netns", "add", &engine.name]));
        engine.in_netns(&["ip", "link", "set", "lo", "up"]);
        engine.spawn_dockerd();
        engine.load_test_image();
        engine
    }

    /// Whether this is Podman's service rather than dockerd.
    pub fn is_podman(&self) -> bool {
        self.podman
    }

    /// `podman ARGS` on this engine's storage (for what its Docker API cannot do).
    pub fn podman(&self, args: &[&str]) -> Output {
        assert!(self.podman, "start the engine with start_podman()");
        Command::new("podman")
            .args(self.podman_globals())
            .args(args)
            .output()
            .unwrap()
    }

    fn podman_globals(&self) -> Vec<String> {
        let dir = |name: &str| self.root.join(name).display().to_string();
        vec![
            "--root".into(),
            dir("podman-root"),
            "--runroot".into(),
            dir("podman-run"),
            "--tmpdir".into(),
            dir("podman-tmp"),
            "--cgroup-manager=cgroupfs".into(),
            "--events-backend=file".into(),
        ]
    }

    /// The `DOCKER_HOST` value that reaches this engine.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The `DOCKER_HOST` value of the engine's TLS listener (reached from inside its
    /// namespace only).
    pub fn tls_host(&self) -> String {
        assert!(self.tls, "start the engine with start_with_tls()");
        format!("tcp://{TLS_ADDR}")
    }

    /// A client's `ca.pem`, `cert.pem` and `key.pem` for the TLS listener (as
    /// `DOCKER_CERT_PATH` holds them).
    pub fn client_certs(&self) -> PathBuf {
        self.root.join("tls/client")
    }

    /// The same files made by a CA the engine does not know, and knowing only it.
    pub fn stranger_certs(&self) -> PathBuf {
        self.root.join("tls/stranger")
    }

    /// The engine's network namespace, for `nsenter --net=…`.
    pub fn netns(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// The engine's log (dockerd's or Podman's), for failure messages.
    pub fn log(&self) -> String {
        let text = fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Kills the engine as a crash would: SIGKILL to dockerd and its containerd, no
    /// cleanup. The containers' shims, and so the agents, live on (as they do when a
    /// real engine dies); their pid files and mounts stay behind.
    pub fn kill(&mut self) {
        let containerd = self.containerd_pid();
        if let Some(mut dockerd) = self.dockerd.take() {
            let _ = dockerd.kill();
            let _ = dockerd.wait();
        }
        if let Some(pid) = containerd {
            kill_and_wait(pid);
        }
    }

    /// Kills the engine and everything it ran: dockerd, containerd, the shims and
    /// every process of every container (a crash that takes the agents with it).
    pub fn kill_with_containers(&mut self) {
        self.kill();
        for pid in container_pids(&self.name) {
            kill_and_wait(pid);
        }
        for pid in netns_pids(&self.name) {
            if comm(pid).is_some_and(|c| c.starts_with("containerd-shim")) {
                kill_and_wait(pid);
            }
        }
        remove_shim_sockets(&self.root);
    }

    /// Processes running in this engine's containers (found by their cgroups, so
    /// also while the engine is dead).
    pub fn container_processes(&self) -> Vec<u32> {
        container_pids(&self.name)
    }

    /// Starts the engine again on the same data after [`PrivateEngine::kill`],
    /// clearing what the killed one left: its pid files, and a containerd that
    /// outlived it.
    pub fn restart(&mut self) {
        assert!(
            self.dockerd.is_none(),
            "restart() an engine that runs: kill() it first"
        );
        if let Some(pid) = self.containerd_pid() {
            kill_and_wait(pid);
        }
        let _ = fs::remove_file(self.containerd_pidfile());
        let _ = fs::remove_file(self.root.join("docker.pid"));
        self.spawn_dockerd();
    }

    /// A new tmpfs of `size` (as `mount -o size=` takes it: `48m`), mounted in the
    /// engine's folder: it goes with the engine, and with the sweep after a killed run.
    pub fn tmpfs(&self, size: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = self
            .root
            .join(format!("disk-{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
        fs::create_dir(&dir).unwrap();
        run(Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&dir));
        dir
    }

    /// The docker CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(self.docker_host())
            .args(args)
            .output()
            .unwrap()
    }

    /// Every container on this engine, running or not.
    pub fn containers(&self) -> Vec<String> {
        self.lines(&["ps", "-a", "-q"])
    }

    /// Every volume on this engine.
    pub fn volumes(&self) -> Vec<String> {
        self.lines(&["volume", "ls", "-q"])
    }

    fn lines(&self, args: &[&str]) -> Vec<String> {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} on the private engine failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The command that runs `handoff` in `dir` inside the engine's namespace and
    /// against it (the egress proxy a front-end starts must live beside its engine),
    /// with the tests' user configuration, as the test user when there is one.
    pub fn handoff_command(&self, dir: &Path) -> Command {
        let inner = handoff_command();
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.netns().display()))
            .arg("--")
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(dir)
            .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
            .env("DOCKER_HOST", self.docker_host());
        cmd
    }

    /// `handoff ARGS` in `repo`, against this engine.
    pub fn handoff(&self, repo: &Repo, args: &[&str]) -> Output {
        self.handoff_env(repo, args, &[])
    }

    pub fn handoff_env(&self, repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.handoff_command(repo.path());
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// `handoff ARGS` that must succeed and print JSON.
    pub fn json(&self, repo: &Repo, args: &[&str]) -> Value {
        let out = self.handoff(repo, args);
        if !out.stderr.is_empty() {
            // Shown only when the test fails: warnings on the way to its outcome.
            eprintln!(
                "handoff {args:?} said: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        json_of_success(args, &out)
    }

    /// `handoff show ID --json`.
    pub fn task(&self, repo: &Repo, id: u64) -> Value {
        self.json(repo, &["show", &id.to_string(), "--json"])
    }

    fn socket(&self) -> PathBuf {
        self.root.join("docker.sock")
    }

    fn containerd_pidfile(&self) -> PathBuf {
        self.root.join("exec/containerd/containerd.pid")
    }

    /// The engine's containerd, if it is alive.
    fn containerd_pid(&self) -> Option<u32> {
        let pid = fs::read_to_string(self.containerd_pidfile())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // Only a containerd of this engine: a stale pid file may name a recycled pid.
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(self.root.to_str()?)
            .then_some(pid)
    }

    /// `ARGV` inside the namespace; panics on failure.
    pub fn in_netns(&self, argv: &[&str]) {
        run(Command::new("nsenter")
            .arg(format!("--net={}", self.netns().display()))
            .arg("--")
            .args(argv));
    }

    /// Starts dockerd in the namespace (`nsenter`, not `ip netns exec`, which
    /// remounts /sys and so hides the cgroup mounts from dockerd) and waits until it
    /// answers.
    fn spawn_dockerd(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("dockerd.log"))
            .unwrap();
        let root = &self.root;
        if self.podman {
            let child = Command::new("nsenter")
                .arg(format!("--net={}", self.netns().display()))
                .arg("--")
                .arg("podman")
                .args(self.podman_globals())
                .args(["system", "service", "--time=0"])
                .arg(self.docker_host())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run nsenter … podman system service: {e}"));
            self.dockerd = Some(child);
            return self.wait_until_it_answers();
        }
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.netns().display()))
            .arg("--")
            .arg("dockerd")
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("docker.pid"))
            .arg("-H")
            .arg(self.docker_host())
            .args(self.tls_args())
            .arg(format!("--cgroup-parent=/{}", self.name))
            // Fail-closed: no bridge, no NAT, no forwarding; containers get `none`.
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nsenter … dockerd: {e}"));
        self.dockerd = Some(child);
        self.wait_until_it_answers();
    }

    fn wait_until_it_answers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.dockerd.as_mut().unwrap().try_wait().unwrap() {
                self.dockerd = None;
                panic!(
                    "the private engine exited ({status}) before it answered; its log:\n{}",
                    self.log()
                );
            }
            let answered = Command::new("docker")
                .arg("-H")
                .arg(self.docker_host())
                .args(["version", "--format", "{{.Server.Version}}"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the private engine did not answer within 60 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// An sshd of the test's own in the engine's namespace on 127.0.0.1:[`SSH_PORT`],
    /// whose sessions reach this engine (`SetEnv DOCKER_HOST`), with a key pair, the
    /// host's key known, and an ssh configuration naming it all: host `engine` is
    /// this sshd as root, and so is `root@127.0.0.1:2222` (every host gets the key
    /// and the known hosts file). It ends with the returned value, or with the
    /// engine.
    pub fn start_sshd(&self) -> SshAccess {
        let dir = self.root.join("ssh");
        fs::create_dir_all(&dir).unwrap();
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(dir.join(key)));
        }
        let public = |key: &str| fs::read_to_string(dir.join(format!("{key}.pub"))).unwrap();
        fs::write(dir.join("authorized_keys"), public("client_key")).unwrap();
        fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{SSH_PORT} {}", public("host_key")),
        )
        .unwrap();
        let path = |name: &str| dir.join(name).display().to_string();
        fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {SSH_PORT}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nSetEnv DOCKER_HOST={}\n",
                path("host_key"),
                path("sshd.pid"),
                path("authorized_keys"),
                self.docker_host()
            ),
        )
        .unwrap();
        let config = dir.join("ssh_config");
        fs::write(
            &config,
            format!(
                "Host engine\n  HostName 127.0.0.1\n  Port {SSH_PORT}\n  User root\n\
                 Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n\
                 StrictHostKeyChecking yes\n",
                path("client_key"),
                path("known_hosts")
            ),
        )
        .unwrap();
        // sshd's privilege separation folder (made by the package's service otherwise).
        fs::create_dir_all("/run/sshd").unwrap();
        let log = fs::File::create(dir.join("sshd.log")).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.netns().display()))
            .args(["--", "/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sshd: {e}"));
        let access = SshAccess {
            config,
            log: dir.join("sshd.log"),
            sshd: child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answered = Command::new("nsenter")
                .arg(format!("--net={}", self.netns().display()))
                .args(["--", "ssh", "-F"])
                .arg(&access.config)
                .args(["-o", "BatchMode=yes", "engine", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return access;
            }
            assert!(
                Instant::now() < deadline,
                "the test's sshd did not let us in within 20 s; its log:\n{}",
                fs::read_to_string(&access.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// dockerd's arguments for the TLS listener, if it has one.
    fn tls_args(&self) -> Vec<String> {
        if !self.tls {
            return vec![];
        }
        let file = |name: &str| self.root.join("tls").join(name).display().to_string();
        vec![
            "-H".into(),
            format!("tcp://{TLS_ADDR}"),
            "--tlsverify".into(),
            format!("--tlscacert={}", file("ca.pem")),
            format!("--tlscert={}", file("server-cert.pem")),
            format!("--tlskey={}", file("server-key.pem")),
        ]
    }

    /// `docker save` from the machine's engine into `docker load` of this one (the
    /// image keeps its id and tag).
    fn load_test_image(&self) {
        let tag = image();
        let mut save = Command::new("docker")
            .args(["save", tag])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let load = Command::new("docker")
            .arg("-H")
            .arg(self.docker_host())
            .args(["load", "-q"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        let mut save_err = String::new();
        save.stderr
            .take()
            .unwrap()
            .read_to_string(&mut save_err)
            .unwrap();
        let saved = save.wait().unwrap();
        assert!(
            saved.success() && load.status.success(),
            "copying {tag} into the private engine failed: save: {save_err}; load: {}",
            String::from_utf8_lossy(&load.stderr)
        );
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.podman && self.dockerd.is_some() {
            // Podman's containers live outside the engine's namespace and cgroup
            // parent: remove them through Podman before it goes.
            let _ = Command::new("podman")
                .args(self.podman_globals())
                .args(["rm", "--all", "--force", "--time", "0"])
                .output();
        }
        if let Some(mut dockerd) = self.dockerd.take() {
            let _ = dockerd.kill();
            let _ = dockerd.wait();
        }
        clean_up(&self.name, &self.root);
    }
}

/// Makes, with openssl, in `dir`: a CA (`ca.pem`), the engine's certificate for
/// `IP:127.0.0.1` (`server-cert.pem`, `server-key.pem`), a client's files signed by
/// that CA (`client/{ca,cert,key}.pem`) and a stranger's, made by a CA of its own
/// (`stranger/…`). P-256 keys: quick to make.
fn make_certificates(dir: &Path) {
    let openssl = |dir: &Path, args: &[&str]| {
        run(Command::new("openssl").args(args).current_dir(dir));
    };
    let ca = |dir: &Path, name: &str| {
        fs::create_dir_all(dir).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
            ],
        );
    };
    // A key and a certificate `out` (in `out_dir`) signed by the CA in `ca_dir`.
    let signed = |ca_dir: &Path, out_dir: &Path, cn: &str, ext: &str, key: &str, cert: &str| {
        fs::create_dir_all(out_dir).unwrap();
        let ext_file = out_dir.join(format!("{cert}.ext"));
        fs::write(&ext_file, ext).unwrap();
        let csr = out_dir.join(format!("{cert}.csr"));
        openssl(
            out_dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                key,
                "-out",
                csr.to_str().unwrap(),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        openssl(
            ca_dir,
            &[
                "x509",
                "-req",
                "-in",
                csr.to_str().unwrap(),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext_file.to_str().unwrap(),
                "-out",
                out_dir.join(cert).to_str().unwrap(),
            ],
        );
    };
    ca(dir, "handoff-test-ca");
    signed(
        dir,
        dir,
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        "server-key.pem",
        "server-cert.pem",
    );
    let client_ext = "extendedKeyUsage=clientAuth\n";
    let client = dir.join("client");
    signed(dir, &client, "client", client_ext, "key.pem", "cert.pem");
    fs::copy(dir.join("ca.pem"), client.join("ca.pem")).unwrap();
    let stranger = dir.join("stranger");
    ca(&stranger, "someone-else-ca");
    signed(
        &stranger, &stranger, "client", client_ext, "key.pem", "cert.pem",
    );
    // The client's files are read by the front-end, which may run as the test user.
    for d in [dir, &client, &stranger] {
        for entry in fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            let mode = if path.is_dir() { 0o755 } else { 0o644 };
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        }
    }
}

/// Fails, saying what to do, when the fixture cannot work here.
fn require_tools() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the fault tests start their own Docker engines in network namespaces and mount \
         file systems: run them as root (as .ci/run does)"
    );
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nsenter", "util-linux"),
        ("dockerd", "docker.io"),
        ("docker", "docker.io (or the docker CLI)"),
        ("openssl", "openssl"),
    ] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()));
        assert!(
            found,
            "`{tool}` is not on PATH; the fault tests need it: apt-get install {package} \
             (scripts/setup.sh installs what the tests need)"
        );
    }
}

/// Fails, saying what to install, when Podman is missing.
fn require_podman() {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("podman").is_file()));
    assert!(
        found,
        "`podman` is not on PATH; the Podman engine tests need it: apt-get install podman \
         (scripts/setup.sh installs what the tests need)"
    );
}

/// Clears engines whose test process is gone (killed before its engines were
/// dropped): their processes, mounts, cgroups, namespaces and folders.
fn sweep_stale() {
    let mut names: Vec<String> = Vec::new();
    for dir in [Path::new(NETNS_DIR).to_path_buf(), std::env::temp_dir()] {
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(PREFIX) && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    for name in names {
        let root = std::env::temp_dir().join(&name);
        let owner = fs::read_to_string(root.join("owner"))
            .ok()
            .and_then(|s| Owner::parse(&s));
        let stale = match owner {
            Some(owner) => !owner.is_alive(),
            // A namespace whose folder is not in our temp folder may belong to a live
            // engine of a run with another TMPDIR (its owner file is there): judged
            // stale only once nothing runs in it.
            None if !root.exists() && !netns_pids(&name).is_empty() => false,
            // An engine being started right now may not have written its owner yet;
            // one that never did is long dead.
            None => [root.clone(), Path::new(NETNS_DIR).join(&name)]
                .iter()
                .filter_map(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
                .all(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60))),
        };
        if stale {
            clean_up(&name, &root);
        }
    }
}

/// Everything engine `name` made, gone: processes in its namespace (dockerd,
/// containerd, shims, front-ends a test started there) and in its containers'
/// cgroups, mounts under `root`, the cgroups, `root`, the namespace. Never panics
/// (it runs in `Drop`); says what it could not remove.
fn clean_up(name: &str, root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids: Vec<u32> = container_pids(name)
            .into_iter()
            .chain(netns_pids(name))
            .collect();
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("private engine {name}: processes {pids:?} would not die");
            break;
        }
        for pid in pids {
            kill_and_wait(pid);
        }
    }
    remove_shim_sockets(root);
    unmount_under(root);
    remove_cgroups(name);
    if root.exists() {
        if let Err(e) = fs::remove_dir_all(root) {
            eprintln!(
                "private engine {name}: cannot remove {}: {e}",
                root.display()
            );
        }
    }
    if Path::new(NETNS_DIR).join(name).exists() {
        let out = Command::new("ip").args(["netns", "delete", name]).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("private engine {name}: `ip netns delete {name}` failed: {out:?}");
        }
    }
}

/// The sockets of the engine's containerd shims, which a killed shim leaves in the
/// machine's `/run/containerd/s/` (named, as containerd 1.6 names them, by the hash
/// of containerd's address, namespace and container id). Call once they are dead.
fn remove_shim_sockets(root: &Path) {
    use sha2::{Digest, Sha256};
    let address = root.join("exec/containerd/containerd.sock");
    let Ok(containers) = fs::read_dir(root.join("data/containers")) else {
        return;
    };
    for container in containers.flatten() {
        let id = container.file_name();
        let key = address.join("moby").join(&id);
        let hash = Sha256::digest(key.as_os_str().as_encoded_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let _ = fs::remove_file(Path::new("/run/containerd/s").join(hex));
    }
}

/// Processes whose network namespace is `name`'s.
fn netns_pids(name: &str) -> Vec<u32> {
    if !Path::new(NETNS_DIR).join(name).exists() {
        return vec![];
    }
    let out = Command::new("ip").args(["netns", "pids", name]).output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| p != std::process::id())
            .collect(),
        Err(_) => vec![],
    }
}

/// The cgroup folders of engine `name` (its `--cgroup-parent`), one per hierarchy.
fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for entry in entries.flatten() {
            let Ok(dir) = entry.path().join(name).canonicalize() else {
                continue;
            };
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

/// Processes of every container of engine `name`.
fn container_pids(name: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for dir in cgroup_dirs(name) {
        let Ok(children) = fs::read_dir(&dir) else {
            continue;
        };
        for child in children.flatten().filter(|c| c.path().is_dir()) {
            let procs = fs::read_to_string(child.path().join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|p| p.parse().ok()) {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
    }
    pids
}

fn remove_cgroups(name: &str) {
    for dir in cgroup_dirs(name) {
        if let Ok(children) = fs::read_dir(&dir) {
            for child in children.flatten().filter(|c| c.path().is_dir()) {
                let _ = fs::remove_dir(child.path());
            }
        }
        if let Err(e) = fs::remove_dir(&dir) {
            eprintln!("cannot remove cgroup {}: {e}", dir.display());
        }
    }
}

/// Detaches every mount at or under `root`, deepest first (the engine's own bind
/// mount of its data root, image layers, volumes, namespace files, tmpfs disks).
fn unmount_under(root: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let root = root.to_string_lossy().into_owned();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| *p == root || p.starts_with(&format!("{root}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for point in points {
        let c = std::ffi::CString::new(point.as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; MNT_DETACH has no other requirement.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                eprintln!("cannot unmount {point}: {e}");
            }
        }
    }
}

/// `/proc/self/mountinfo` writes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SIGKILL to `pid`, then waits (up to 5 s) until it is gone or a zombie.
fn kill_and_wait(pid: u32) {
    // SAFETY: kill(2) with a pid and a signal number has no memory effects.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_running(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The test process that owns an engine, named so that a recycled pid is not
/// mistaken for it.
struct Owner {
    pid: u32,
    start_ticks: u64,
    boot_id: String,
}

impl Owner {
    fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
            boot_id: boot_id(),
        }
    }

    fn to_line(&self) -> String {
        format!("{} {} {}\n", self.pid, self.start_ticks, self.boot_id)
    }

    fn parse(s: &str) -> Option<Owner> {
        let mut parts = s.split_whitespace();
        Some(Owner {
            pid: parts.next()?.parse().ok()?,
            start_ticks: parts.next()?.parse().ok()?,
            boot_id: parts.next()?.to_string(),
        })
    }

    fn is_alive(&self) -> bool {
        self.boot_id == boot_id() && start_ticks(self.pid) == Some(self.start_ticks)
    }
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat`, counted after the command name's last `)`.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Runs `cmd`; panics with its output on failure.
fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status.code().map_or_else(
            || format!("signal {:?}", out.status.signal()),
            |c| c.to_string()
        ),
        String::from_utf8_lossy(&out.stderr)
    );
}
