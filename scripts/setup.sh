#!/usr/bin/env bash
# Prepares this machine for Handoff's demo and tests: installs what is missing (Docker
# engine, busybox for the offline test image, git, mmdebstrap and npm for the agent
# images, Neovim and Emacs with Eglot for the editor tests, Go, etcd and the rest of
# what scripts/k8s-node.sh needs to build and run a Kubernetes node) and starts a Docker engine
# if none answers. Safe to run again; fails loudly if a required part cannot be had.
#
# The engine is started fail-closed: no bridge, no iptables, no forwarding, so no
# container can reach beyond the machine (tests use network `none` or `host`).
set -euo pipefail

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "$1 needs root; run as root or install sudo"
    sudo "$@"
  else
    "$@"
  fi
}

apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "cannot install ${missing[*]}: no apt-get on this machine; install them by hand"
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    need_root apt-get update -qq || die "apt-get update failed"
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# --- packages -----------------------------------------------------------------
apt_install git busybox-static ca-certificates python3 python3-pip time iproute2 util-linux
# The built-in agents' images (`handoff image build`): mmdebstrap makes the Debian base
# with no registry; npm resolves the agent CLIs on the host.
apt_install mmdebstrap
command -v npm >/dev/null 2>&1 || apt_install npm
if ! command -v dockerd >/dev/null 2>&1; then
  apt_install docker.io
fi
command -v docker >/dev/null || die "the docker CLI is missing after install"
command -v dockerd >/dev/null || die "dockerd is missing after install"
[ -x /bin/busybox ] || die "/bin/busybox is missing after installing busybox-static"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing after install"
command -v npm >/dev/null || die "npm is missing after install"

# --- Kubernetes (scripts/k8s-node.sh) ------------------------------------------
# The single-node cluster of server/tests/k8s_e2e.rs is built from Debian's source
# package with Debian's Go; etcd comes from Debian too; curl and openssl make and
# probe it. The vendored reflect2 is replaced by Debian's (Go >= 1.18).
apt_install golang-go rsync make gcc libc6-dev patch dpkg-dev golang-github-modern-go-reflect2-dev \
  etcd-server curl openssl
for cmd in go rsync etcd curl openssl; do
  command -v "$cmd" >/dev/null || die "$cmd is missing after install"
done

# --- Docker engine ------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  log "Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
else
  [ "$(id -u)" -eq 0 ] || die "no Docker engine answers and starting one needs root"
  # A previous engine killed with its session leaves pid files behind.
  for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      rm -f "$pidfile"
    fi
  done
  log "starting dockerd (fail-closed: --bridge=none --iptables=false)"
  nohup dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    >/tmp/handoff-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { tail -20 /tmp/handoff-dockerd.log >&2; die "dockerd did not come up (log: /tmp/handoff-dockerd.log)"; }
  log "Docker engine started"
fi

# --- An ordinary user for the security tests -----------------------------------
# The security suite runs a second time with the front-end as this user (the usual
# desktop case, where the agent has the user's own uid), with access to Docker.
if ! id handoff-tester >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "creating the test user handoff-tester needs root"
  need_root useradd --create-home --shell /bin/sh handoff-tester || die "useradd handoff-tester failed"
fi
if getent group docker >/dev/null && ! id -nG handoff-tester | tr ' ' '\n' | grep -qx docker; then
  need_root usermod -aG docker handoff-tester || die "cannot add handoff-tester to the docker group"
fi
command -v runuser >/dev/null || die "runuser (util-linux) is missing"

# --- Engines beyond the local one (server/tests/remote_e2e.rs) --------------------
# The remote-engine tests start a second dockerd in its own network namespace,
# listening on TCP with TLS, with certificates they make with openssl, and an sshd of
# their own in front of it.
apt_install openssl openssh-server openssh-client
for tool in openssl ssh ssh-keygen /usr/sbin/sshd; do
  command -v "$tool" >/dev/null || die "$tool is missing after install"
done
# Podman as a second Docker-API engine: the tests run `podman system service` on a
# unix socket of their own, in a network namespace of their own.
apt_install podman
command -v podman >/dev/null || die "podman is missing after install"

# --- Emacs with Eglot (the second LSP client of the editor tests) ---------------
# server/tests/emacs_e2e.rs drives `handoff lsp` from `emacs --batch` with Eglot.
apt_install emacs-nox elpa-eglot
command -v emacs >/dev/null || die "emacs is missing after installing emacs-nox"

# --- Neovim (a current build, for the editor tests) -----------------------------
nvim=$("$(dirname "$0")/../tests/nvim/install-nvim.sh") || die "installing Neovim failed"
log "Neovim: $nvim"
