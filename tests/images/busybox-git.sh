#!/bin/sh
# Builds a small agent image with no registry: busybox (static) plus the host's git
# and the shared libraries it needs, in a `FROM scratch` image built with no network.
# The tag carries a hash of the image's inputs, so it is rebuilt only when they change.
# Prints the tag. Needs: docker (engine reachable), /bin/busybox (Debian busybox-static),
# /usr/bin/git.
set -eu
busybox=/bin/busybox
git=/usr/bin/git
for f in "$busybox" "$git"; do
  [ -x "$f" ] || { echo "busybox-git.sh: $f is missing (apt-get install busybox-static git)" >&2; exit 1; }
done
"$busybox" --list >/dev/null 2>&1 || { echo "busybox-git.sh: $busybox is not busybox" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/bin" "$root/usr/bin" "$root/tmp" "$root/etc" "$root/workspace"
# The engine mounts a tmpfs on /tmp with the image folder's mode: writable by all.
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
cp "$git" "$root/usr/bin/git"
for lib in $(ldd "$git" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nagent:x:1000:\nnogroup:x:65534:\n' > "$root/etc/group"
printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/bin:/bin\nCMD ["sh"]\n' > "$ctx/Dockerfile"

hash=$(cd "$ctx" && { cat Dockerfile; find rootfs -type d -printf "%m %p\n" | sort; find rootfs -type f | sort | xargs sha256sum; find rootfs -type l | sort; } | sha256sum | cut -c1-16)
tag="handoff-test/busybox-git:$hash"
if ! docker image inspect "$tag" >/dev/null 2>&1; then
  docker build --network none -q -t "$tag" "$ctx" >&2
fi
echo "$tag"
