//! A real single-node Kubernetes for the tests: `scripts/k8s-node.sh` (Debian's 1.20
//! built from source, on a Docker engine of its own inside a network namespace the
//! script creates). [`Node::start`] starts it; dropping the [`Node`] stops it and
//! removes everything it made, even when the test panics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub struct Node {
    pub state: PathBuf,
    pub kubeconfig: PathBuf,
    /// How long `start` took (binaries cached), for the benchmarks.
    pub start_secs: f64,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/k8s-node.sh")
}

impl Node {
    /// Starts a node with its state in a fresh folder (short: unix sockets live there).
    pub fn start() -> Node {
        let state = PathBuf::from(format!("/tmp/hk8s-{}", std::process::id()));
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&state)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
        let start_secs = started.elapsed().as_secs_f64();
        // From here on the node may be partly up: the guard stops whatever started.
        let node = Node {
            state: state.clone(),
            kubeconfig: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
            start_secs,
        };
        assert!(
            out.status.success(),
            "scripts/k8s-node.sh start {} failed (it needs root, Debian's golang-go, rsync, \
             etcd-server, golang-github-modern-go-reflect2-dev: scripts/setup.sh installs them):\n{}",
            state.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        node
    }

    /// Copies images from the machine's Docker engine into the node's.
    pub fn load(&self, images: &[&str]) {
        let out = Command::new("bash")
            .arg(script())
            .arg("load")
            .arg(&self.state)
            .args(images)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "loading {images:?} into the node failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The netns the node's addresses live in.
    pub fn netns(&self) -> String {
        std::fs::read_to_string(self.state.join("netns"))
            .map(|n| n.trim().to_string())
            .unwrap_or_default()
    }

    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    fn stop(&self) -> std::process::Output {
        Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.state)
            .output()
            .unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let netns = self.netns();
        let out = self.stop();
        if std::thread::panicking() {
            return;
        }
        assert!(
            out.status.success(),
            "stopping the node failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!self.state.exists(), "{} is left", self.state.display());
        assert!(
            netns.is_empty() || !Path::new("/var/run/netns").join(&netns).exists(),
            "the network namespace {netns} is left"
        );
        assert!(
            !Path::new("/var/log/pods").exists() && !Path::new("/var/log/containers").exists(),
            "kubelet's /var/log/pods or /var/log/containers is left"
        );
    }
}

/// An image of the machine's static busybox alone, at `path` in it, made with
/// `docker import`; removed from the machine's engine when dropped.
pub struct OneFileImage(pub String);

impl OneFileImage {
    pub fn new(tag: &str, path: &str) -> OneFileImage {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join(path);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::copy("/bin/busybox", &at).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -c {path} | docker import - {tag}",
                dir.path().display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        OneFileImage(tag.to_string())
    }
}

impl Drop for OneFileImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}
