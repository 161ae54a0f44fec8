#!/bin/bash
# Build a minimal no-registry test image with both agent CLIs from host binaries:
# rootfs dir -> tar -> `docker import`. ~10 s, ~730 MB (claude binary alone is 402 MB).
set -euo pipefail
TAG=${1:-agent-research/clis:test}
CODEX=$(readlink -f /tmp/agent-research/codex-bin)     # static-pie musl binary, no libs needed
CLAUDE=$(readlink -f /tmp/agent-research/claude-bin)   # glibc dynamic binary
R=/tmp/agent-research/img/rootfs
rm -rf "$R"; mkdir -p $R/{bin,usr/bin,usr/local/bin,usr/local/libexec,lib/x86_64-linux-gnu,lib64,etc,tmp,home/agent,workspace,usr/lib/locale}
chmod 1777 $R/tmp
# glibc libs for claude (ldd: libc, libm, libpthread, libdl, librt), bash (libtinfo), git (libpcre2-8, libz)
for l in libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libtinfo.so.6 libpcre2-8.so.0 libz.so.1; do
  cp -L /lib/x86_64-linux-gnu/$l $R/lib/x86_64-linux-gnu/; done
cp -L /lib64/ld-linux-x86-64.so.2 $R/lib64/
cp -a /usr/lib/locale/C.utf8 $R/usr/lib/locale/      # codex runs commands with LC_ALL=C.UTF-8
cp /bin/bash $R/bin/bash                              # both CLIs run commands via bash
cp /usr/bin/busybox $R/usr/bin/busybox                # static; provides coreutils-ish applets
for a in $(/usr/bin/busybox --list); do [ "$a" = bash ] || [ -e $R/usr/bin/$a ] || ln -s busybox $R/usr/bin/$a; done
ln -s ../usr/bin/busybox $R/bin/sh
cp /usr/local/bin/git $R/usr/local/bin/git
cp -al /usr/local/libexec/git-core $R/usr/local/libexec/ 2>/dev/null || cp -a /usr/local/libexec/git-core $R/usr/local/libexec/
ln "$CODEX" $R/usr/local/bin/codex 2>/dev/null || cp "$CODEX" $R/usr/local/bin/codex
ln "$CLAUDE" $R/usr/local/bin/claude 2>/dev/null || cp "$CLAUDE" $R/usr/local/bin/claude
printf 'root:x:0:0:root:/root:/bin/bash\nagent:x:1000:1000:agent:/home/agent:/bin/bash\n' > $R/etc/passwd
printf 'root:x:0:\nagent:x:1000:\n' > $R/etc/group
chown 1000:1000 $R/home/agent $R/workspace
tar -C $R -c . | docker import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$TAG"
docker images "$TAG"
