#!/usr/bin/env bash
# A real single-node Kubernetes 1.20 for Handoff's tests, from Debian packages only.
#
#   scripts/k8s-node.sh build              build the node's binaries (or find them cached); prints their folder
#   scripts/k8s-node.sh start [STATE]      start a node; prints the path of its kubeconfig
#   scripts/k8s-node.sh load STATE IMAGE…  copy images from the machine's Docker engine into the node's
#   scripts/k8s-node.sh stop [STATE]       stop the node and remove everything it made
#
# No registry holds an apiserver or a kubelet for Debian, so `build` fetches Debian's
# *source* package `kubernetes` (1.20.2) through a deb-src line in an apt sources file
# of its own, and builds only kube-apiserver, kube-controller-manager, kube-scheduler
# and kubelet with Debian's golang-go (`make WHAT=…`), with two kubelet patches kept in
# scripts/k8s/patches (kernel settings warn only; OOM score adjustments 0: this machine
# shares its kernel and has no CAP_SYS_RESOURCE). The result is cached under
# ~/.cache/handoff/k8s/<key>/, the key a hash of the Debian version, the patches, the
# Go toolchain and this recipe: a fresh machine builds for ~10–12 minutes, a re-run
# starts at once. The pause image is compiled from the tree's pause.c.
#
# `start` runs everything inside a network namespace it creates: etcd (Debian
# etcd-server), the apiserver, controller-manager, scheduler, and kubelet on a
# dedicated dockerd (dockershim) with no iptables, no forwarding and no masquerade:
# its pods get an address on a bridge that exists only inside the namespace (kubelet
# 1.20 replaces a pod sandbox that has no IP, and with restartPolicy Never never
# starts the replacement, so a pod with an init container would hang). Certificates and keys are made with openssl. A small forwarder on the
# host's loopback (scripts/k8s/forward.py) is the only way in, so the kubeconfig
# works from the host: `KUBECONFIG=$(scripts/k8s-node.sh start)`.
#
# STATE defaults to /tmp/handoff-k8s; keep it short (unix socket paths live in it).
# See docs/engines.md and notes on how this was measured in docs/benchmarks.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
log() { printf '\033[1m[k8s-node]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[k8s-node] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

CACHE="${HANDOFF_K8S_CACHE:-${HOME:-/root}/.cache/handoff/k8s}"
TARGETS=(cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet)
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
UPSTREAM_VERSION=1.20.2
# Bump when the build steps below change in a way that changes the binaries.
RECIPE="make-what-cgo0-reflect2-debian-pause-gcc-static-v1"
PAUSE_IMAGE="k8s.gcr.io/pause:3.2"

# --- what the machine must have ---------------------------------------------------

# Fails with the packages to install for every command that is missing.
require() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd="${pair%%:*}"
    pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg (for $cmd)")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  die "missing: ${missing[*]}. Install with: apt-get install $(printf '%s\n' "${missing[@]}" | cut -d' ' -f1 | sort -u | tr '\n' ' ')(or run scripts/setup.sh)"
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root (network namespaces, a Docker engine of its own, kubelet)"
}

# --- build --------------------------------------------------------------------------

# apt, reading only our own deb-src line and keeping its lists in our cache, so the
# machine's apt configuration and lists are left as they are.
apt_src() {
  local cmd="$1"
  shift
  "$cmd" -o Dir::Etc::SourceList="$CACHE/apt/debian-src.sources" -o Dir::Etc::SourceParts=- \
    -o Dir::State::Lists="$CACHE/apt/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o APT::Sandbox::User=root -o Acquire::Retries=3 "$@"
}

write_apt_sources() {
  local codename uri
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  [ -n "$codename" ] || die "cannot tell this machine's Debian release from /etc/os-release (VERSION_CODENAME)"
  uri="${HANDOFF_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  mkdir -p "$CACHE/apt/lists/partial"
  cat >"$CACHE/apt/debian-src.sources.tmp" <<EOF
# Written by Handoff's scripts/k8s-node.sh: Debian's source packages, read only by it.
Types: deb-src
URIs: $uri
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  mv "$CACHE/apt/debian-src.sources.tmp" "$CACHE/apt/debian-src.sources"
}

# The Debian version of the source package `kubernetes`, from our lists (updated
# when they are missing).
debian_version() {
  local v=""
  if [ -f "$CACHE/apt/debian-src.sources" ]; then
    v="$(apt_src apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2; exit}')" || true
  fi
  if [ -z "$v" ]; then
    write_apt_sources
    log "apt-get update (Debian's source index only)"
    apt_src apt-get update -qq >&2 || die "apt-get update of $CACHE/apt/debian-src.sources failed (needs Debian's archive)"
    v="$(apt_src apt-cache showsrc kubernetes | awk '/^Version:/ {print $2; exit}')"
  fi
  [ -n "$v" ] || die "Debian's archive has no source package kubernetes for this release"
  case "$v" in
    *"$UPSTREAM_VERSION"*) ;;
    *) die "Debian's source package kubernetes is $v, not $UPSTREAM_VERSION: the patches in scripts/k8s/patches are made for $UPSTREAM_VERSION" ;;
  esac
  echo "$v"
}

build_key() {
  local version="$1"
  {
    echo "$version"
    echo "$RECIPE"
    echo "${TARGETS[*]}"
    go version
    dpkg-query -W -f '${Version}\n' golang-github-modern-go-reflect2-dev
    cat "$here"/k8s/patches/*.patch
  } | sha256sum | cut -c1-16
}

binaries_ready() {
  local dir="$1" b
  for b in "${BINARIES[@]}" pause; do
    [ -x "$dir/bin/$b" ] || return 1
  done
}

cmd_build() {
  require go:golang-go make:make rsync:rsync gcc:gcc patch:patch dpkg-source:dpkg-dev \
    apt-get:apt sha256sum:coreutils flock:util-linux
  [ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] \
    || die "missing: golang-github-modern-go-reflect2-dev (the vendored reflect2 of Kubernetes 1.20 breaks with Go ≥ 1.18). Install with: apt-get install golang-github-modern-go-reflect2-dev"
  [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -n "$(gcc -print-file-name=libc.a | grep /)" ] \
    || die "missing: libc6-dev (static libc for the pause binary). Install with: apt-get install libc6-dev"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/build.lock"
  flock 9

  local version key out
  version="$(debian_version)"
  key="$(build_key "$version")"
  out="$CACHE/$key"
  if binaries_ready "$out"; then
    log "Kubernetes $version binaries cached in $out/bin"
    echo "$out/bin"
    return 0
  fi

  local work started
  started=$(date +%s)
  work="$(mktemp -d "$CACHE/build.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  log "fetching Debian's source package kubernetes $version"
  (cd "$work" && apt_src apt-get source --download-only -qq "kubernetes=$version" >&2) \
    || die "apt-get source kubernetes=$version failed"
  # apt checked the files against the archive's signed index; dpkg-source has no
  # keyring for the .dsc's own signature and would only warn.
  dpkg-source -x "$work"/kubernetes_*.dsc "$work/src" >"$work/unpack.log" 2>&1 \
    || { cat "$work/unpack.log" >&2; die "dpkg-source -x of kubernetes $version failed"; }
  rm -f "$work"/kubernetes_*

  local src="$work/src"
  # The vendored reflect2 1.0.1 reads Go's runtime maps in a way Go 1.18 changed;
  # Debian's 1.0.2 is the fixed one (same API).
  rm -rf "$src/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"
  local p
  for p in "$here"/k8s/patches/*.patch; do
    patch -d "$src" -p1 --quiet <"$p" || die "patch $(basename "$p") does not apply to kubernetes $version"
  done

  log "building ${BINARIES[*]} with $(go version | cut -d' ' -f3) (about 10–12 minutes on 2 cores)"
  # GOMAXPROCS bounds go's own parallelism (-p) without GOFLAGS, which the build
  # scripts parse for tags. CGO off as Debian builds it: static binaries, no C linker.
  if ! (cd "$src" && env HOME="$work/home" GOMAXPROCS=2 CGO_ENABLED=0 GOFLAGS= GO111MODULE= \
      make WHAT="${TARGETS[*]}" >"$work/build.log" 2>&1); then
    tail -40 "$work/build.log" >&2
    cp "$work/build.log" "$CACHE/build-failed.log"
    die "building Kubernetes failed (whole log: $CACHE/build-failed.log)"
  fi
  mkdir -p "$work/out/bin"
  for p in "${BINARIES[@]}"; do
    cp "$src/_output/bin/$p" "$work/out/bin/$p" || die "the build made no $p"
  done
  gcc -Os -static -o "$work/out/bin/pause" "$src/build/pause/linux/pause.c" \
    || die "compiling the pause binary (build/pause/linux/pause.c) failed"
  local took=$(($(date +%s) - started))
  printf 'debian_version=%s\nkey=%s\nbuild_seconds=%s\nbuilt=%s\n' "$version" "$key" "$took" "$(date -u +%FT%TZ)" \
    >"$work/out/BUILD-INFO"
  rm -rf "$out"
  mv "$work/out" "$out"
  log "built in ${took}s; cached in $out/bin"
  echo "$out/bin"
}

# --- run ----------------------------------------------------------------------------

NODE_NAME=handoff-k8s-node
NODE_IP=10.213.0.1
NODE_PEER=10.213.0.2
# The pods' bridge, inside the namespace.
POD_BRIDGE=10.215.0.1/24
SERVICE_RANGE=10.214.0.0/24
SERVICE_IP=10.214.0.1

state_dir() {
  local s="${1:-${HANDOFF_K8S_STATE:-/tmp/handoff-k8s}}"
  case "$s" in
    /*) ;;
    *) s="$(pwd)/$s" ;;
  esac
  echo "${s%/}"
}

# The network namespace of the node whose state is in $1: one per state folder.
netns_name() {
  echo "handoff-k8s-$(printf '%s' "$1" | sha256sum | cut -c1-8)"
}

in_ns() {
  nsenter --net="/var/run/netns/$NETNS" "$@"
}

# Starts a daemon inside the node's namespace, its output in logs/NAME.log.
daemon() {
  local name="$1"
  shift
  host_daemon "$name" nsenter --net="/var/run/netns/$NETNS" "$@"
}

# Starts a daemon in the host's namespace. exec all the way down (nsenter --net does
# not fork), so that $! is the daemon's pid and the subshell runs no EXIT trap of ours.
host_daemon() {
  local name="$1"
  shift
  (
    trap - EXIT
    exec "$@"
  ) </dev/null >"$S/logs/$name.log" 2>&1 &
  echo $! >"$S/pids/$name"
}

alive() {
  local pid
  pid="$(cat "$S/pids/$1" 2>/dev/null)" || return 1
  kill -0 "$pid" 2>/dev/null
}

# What went wrong with daemon $1: klog's fatal lines if any, else its last lines.
show_log() {
  local f="$S/logs/$1.log"
  [ -f "$f" ] || return 0
  grep -m5 -E '^F[0-9]{4} ' "$f" >&2 || grep -v -E '^(goroutine |	|\s|created by |$)' "$f" | tail -20 >&2 || true
}

# Waits up to $2 seconds for a command to succeed while daemon $1 stays alive.
wait_for() {
  local name="$1" timeout="$2" i
  shift 2
  for ((i = 0; i < timeout * 4; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    if ! alive "$name"; then
      show_log "$name"
      die "$name exited while starting (log: $S/logs/$name.log)"
    fi
    sleep 0.25
  done
  show_log "$name"
  die "$name was not ready after ${timeout}s (log: $S/logs/$name.log)"
}

api() {
  in_ns curl -sf --max-time 5 --cacert "$S/pki/ca.crt" --cert "$S/pki/admin.crt" --key "$S/pki/admin.key" \
    "https://$NODE_IP:6443$1"
}

node_ready() {
  api "/api/v1/nodes/$NODE_NAME" | python3 -c '
import json, sys
conditions = json.load(sys.stdin).get("status", {}).get("conditions", [])
sys.exit(0 if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else 1)'
}

default_service_account() {
  api /api/v1/namespaces/default/serviceaccounts/default | python3 -c '
import json, sys
sys.exit(0 if json.load(sys.stdin).get("secrets") else 1)'
}

# A key and a certificate signed by the node's CA: mkcert NAME CN [O] [SAN].
mkcert() {
  local name="$1" cn="$2" org="${3:-}" san="${4:-}" subj="/CN=$2"
  [ -n "$org" ] && subj="/O=$org/CN=$cn"
  openssl ecparam -name prime256v1 -genkey -noout -out "$S/pki/$name.key" 2>/dev/null
  openssl req -new -key "$S/pki/$name.key" -subj "$subj" -out "$S/pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=clientAuth,serverAuth"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$S/pki/$name.ext"
  openssl x509 -req -in "$S/pki/$name.csr" -CA "$S/pki/ca.crt" -CAkey "$S/pki/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$S/pki/$name.ext" -out "$S/pki/$name.crt" 2>/dev/null \
    || die "openssl could not sign the certificate $name"
  rm -f "$S/pki/$name.csr" "$S/pki/$name.ext"
}

# mkkubeconfig FILE SERVER CERT_NAME: credentials and CA embedded, so the file can be
# copied anywhere.
mkkubeconfig() {
  local file="$1" server="$2" name="$3"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: handoff-k8s
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$S/pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 <"$S/pki/$name.crt")
    client-key-data: $(base64 -w0 <"$S/pki/$name.key")
contexts:
- name: handoff-k8s
  context:
    cluster: handoff-k8s
    user: $name
    namespace: default
current-context: handoff-k8s
EOF
  chmod 600 "$file"
}

make_pki() {
  mkdir -p "$S/pki"
  chmod 700 "$S/pki"
  openssl ecparam -name prime256v1 -genkey -noout -out "$S/pki/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$S/pki/ca.key" -subj "/CN=handoff-k8s-ca" -days 30 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$S/pki/ca.crt" 2>/dev/null || die "openssl could not make the node's CA"
  mkcert apiserver kube-apiserver "" \
    "IP:$NODE_IP,IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  mkcert admin handoff-admin system:masters
  mkcert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  mkcert controller-manager system:kube-controller-manager
  mkcert scheduler system:kube-scheduler
  mkcert kubelet "system:node:$NODE_NAME" system:nodes
  # The service accounts' token signing key.
  openssl ecparam -name prime256v1 -genkey -noout -out "$S/pki/sa.key" 2>/dev/null
  openssl ec -in "$S/pki/sa.key" -pubout -out "$S/pki/sa.pub" 2>/dev/null
}

# The pause container every pod starts with, from the tree's pause.c.
import_pause() {
  local dir
  dir="$(mktemp -d "$S/pause.XXXXXX")"
  cp "$BIN/pause" "$dir/pause"
  tar -C "$dir" -c pause | docker -H "unix://$S/docker.sock" import -c 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null \
    || die "docker import of the pause image failed"
  rm -rf "$dir"
}

cmd_start() {
  require_root "starting a node"
  require ip:iproute2 nsenter:util-linux dockerd:docker.io docker:docker.io etcd:etcd-server \
    openssl:openssl curl:curl python3:python3 base64:coreutils
  S="$(state_dir "${1:-}")"
  if [ -e "$S" ]; then
    log "a node was left in $S: stopping it first"
    cmd_stop "$S"
  fi
  BIN="$(cmd_build)"
  # A node that fails to start is taken down again (its logs are shown first), unless
  # HANDOFF_K8S_KEEP=1 asks to keep it for a look.
  if [ "${HANDOFF_K8S_KEEP:-}" != 1 ]; then
    trap 'code=$?; [ $code -eq 0 ] || cmd_stop "$S" >&2; exit $code' EXIT
  fi
  local started
  started=$(date +%s%N)
  NETNS="$(netns_name "$S")"
  mkdir -p "$S"/{logs,pids,etcd,kubelet,dockershim}
  chmod 700 "$S" "$S/etcd"
  echo "$NETNS" >"$S/netns"

  # A namespace with loopback and a veth pair whose both ends stay inside: the node's
  # address exists only here, and nothing routes out.
  ip netns add "$NETNS" || die "cannot create the network namespace $NETNS"
  ip -n "$NETNS" link set lo up
  ip -n "$NETNS" link add hk8s0 type veth peer name hk8s1 || die "cannot create a veth pair in $NETNS"
  ip -n "$NETNS" addr add "$NODE_IP/24" dev hk8s0
  ip -n "$NETNS" addr add "$NODE_PEER/24" dev hk8s1
  ip -n "$NETNS" link set hk8s0 up
  ip -n "$NETNS" link set hk8s1 up
  ip -n "$NETNS" route add default dev hk8s0

  make_pki

  # The node's own Docker engine; `nsenter --net` rather than `ip netns exec`, which
  # remounts /sys and loses the cgroup mounts. Its bridge (the pods' addresses) is in
  # the namespace: no iptables, no forwarding, no masquerade, so nothing leaves it.
  daemon dockerd dockerd --data-root "$S/docker" --exec-root "$S/de" --pidfile "$S/docker.pid" \
    -H "unix://$S/docker.sock" --bip="$POD_BRIDGE" --iptables=false --ip6tables=false \
    --ip-forward=false --ip-masq=false --log-driver=json-file
  daemon etcd etcd --name node --data-dir "$S/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster node=http://127.0.0.1:2380 --logger=zap
  wait_for etcd 30 in_ns curl -sf http://127.0.0.1:2379/health

  daemon kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port=6443 --insecure-port=0 \
    --cert-dir="$S/apiserver" --client-ca-file="$S/pki/ca.crt" \
    --tls-cert-file="$S/pki/apiserver.crt" --tls-private-key-file="$S/pki/apiserver.key" \
    --kubelet-client-certificate="$S/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$S/pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$S/pki/sa.pub" --service-account-signing-key-file="$S/pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range="$SERVICE_RANGE" --authorization-mode=Node,RBAC \
    --allow-privileged=false --profiling=false
  wait_for kube-apiserver 90 api /readyz

  mkkubeconfig "$S/controller-manager.kubeconfig" "https://$NODE_IP:6443" controller-manager
  mkkubeconfig "$S/scheduler.kubeconfig" "https://$NODE_IP:6443" scheduler
  mkkubeconfig "$S/kubelet.kubeconfig" "https://$NODE_IP:6443" kubelet
  daemon kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$S/controller-manager.kubeconfig" --leader-elect=false --port=0 \
    --bind-address=127.0.0.1 --cert-dir="$S/controller-manager" \
    --service-account-private-key-file="$S/pki/sa.key" --root-ca-file="$S/pki/ca.crt" \
    --use-service-account-credentials=true --profiling=false
  daemon kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$S/scheduler.kubeconfig" \
    --leader-elect=false --port=0 --bind-address=127.0.0.1 --cert-dir="$S/scheduler" --profiling=false

  wait_for dockerd 60 docker -H "unix://$S/docker.sock" info
  import_pause
  # No CNI here (pods get loopback only), no QoS cgroups, no eviction or image
  # collection driven by the machine's disk, which other work fills.
  daemon kubelet "$BIN/kubelet" --kubeconfig="$S/kubelet.kubeconfig" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --address="$NODE_IP" \
    --root-dir="$S/kubelet" --cert-dir="$S/kubelet/pki" --experimental-dockershim-root-directory="$S/dockershim" \
    --container-runtime=docker --docker-endpoint="unix://$S/docker.sock" \
    --container-runtime-endpoint="unix://$S/dockershim.sock" --image-service-endpoint="unix://$S/dockershim.sock" \
    --pod-infra-container-image="$PAUSE_IMAGE" --network-plugin= \
    --cgroups-per-qos=false --enforce-node-allocatable= --fail-swap-on=false \
    --client-ca-file="$S/pki/ca.crt" --anonymous-auth=false --authorization-mode=AlwaysAllow \
    --read-only-port=0 --healthz-port=0 \
    --eviction-hard='memory.available<64Mi,nodefs.available<1%,imagefs.available<1%' \
    --image-gc-high-threshold=100 --image-gc-low-threshold=99 --oom-score-adj=0
  wait_for kubelet 90 node_ready
  wait_for kube-controller-manager 60 default_service_account

  host_daemon forward python3 "$here/k8s/forward.py" "/var/run/netns/$NETNS" "$NODE_IP" 6443 "$S/apiserver.port"
  local i
  for ((i = 0; i < 40; i++)); do
    [ -s "$S/apiserver.port" ] && break
    sleep 0.25
  done
  [ -s "$S/apiserver.port" ] || die "the apiserver's forwarder did not start (log: $S/logs/forward.log)"
  local port
  port="$(cat "$S/apiserver.port")"
  mkkubeconfig "$S/kubeconfig" "https://127.0.0.1:$port" admin
  cat >"$S/node.env" <<EOF
KUBECONFIG=$S/kubeconfig
HANDOFF_K8S_NETNS=/var/run/netns/$NETNS
HANDOFF_K8S_DOCKER_HOST=unix://$S/docker.sock
HANDOFF_K8S_SERVER=https://127.0.0.1:$port
EOF
  local ms=$((($(date +%s%N) - started) / 1000000))
  trap - EXIT
  log "node $NODE_NAME ready in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s; kubeconfig: $S/kubeconfig"
  echo "$S/kubeconfig"
}

cmd_load() {
  S="$(state_dir "${1:-}")"
  shift || true
  [ $# -gt 0 ] || die "usage: k8s-node.sh load STATE IMAGE…"
  [ -S "$S/docker.sock" ] || die "no node runs in $S (start one with: scripts/k8s-node.sh start $S)"
  docker save "$@" | docker -H "unix://$S/docker.sock" load -q >&2 \
    || die "copying $* into the node's Docker engine failed"
}

# Processes started from the node's state folder (containerd and its shims, started by
# the node's dockerd), by pid.
pids_under() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF "$1/" && echo "${p#/proc/}"
  done
  return 0
}

# Sends TERM to every pid given, waits up to 15 s for them all, then KILLs the rest.
stop_pids() {
  local pid i left
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for ((i = 0; i < 60; i++)); do
    left=""
    for pid in "$@"; do
      kill -0 "$pid" 2>/dev/null && left=1
    done
    [ -n "$left" ] || return 0
    sleep 0.25
  done
  for pid in "$@"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

cmd_stop() {
  require_root "stopping a node"
  local S
  S="$(state_dir "${1:-}")"
  [ -e "$S" ] || { log "no node in $S"; return 0; }
  local name pid pids=()
  for name in forward kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do
    pid="$(cat "$S/pids/$name" 2>/dev/null)" || continue
    pids+=("$pid")
  done
  [ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
  if [ -S "$S/docker.sock" ] && docker -H "unix://$S/docker.sock" info >/dev/null 2>&1; then
    local ids
    ids="$(docker -H "unix://$S/docker.sock" ps -aq)"
    [ -z "$ids" ] || docker -H "unix://$S/docker.sock" rm -f $ids >/dev/null 2>&1 || true
  fi
  pid="$(cat "$S/pids/dockerd" 2>/dev/null)" && stop_pids "$pid"
  # shellcheck disable=SC2046
  stop_pids $(pids_under "$S")
  # Mounts the engine and kubelet made under the state folder, deepest first.
  local m
  for m in $(awk -v s="$S/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if [ -f "$S/netns" ]; then
    ip netns del "$(cat "$S/netns")" 2>/dev/null || true
  fi
  # kubelet 1.20 writes pod logs to fixed places.
  rm -rf /var/log/pods /var/log/containers
  rm -rf "$S" || die "cannot remove $S"
  log "stopped; removed $S"
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start "${2:-}" ;;
  load) shift; cmd_load "$@" ;;
  stop) cmd_stop "${2:-}" ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
