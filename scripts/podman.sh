#!/usr/bin/env bash
# Start (or reuse) Podman's Docker-compatible API for hepx's container tests; print its DOCKER_HOST.
#
#   eval "$(scripts/podman.sh)"   # exports DOCKER_HOST=unix://.../podman.sock, CONTAINERS_CONF
#
# Installs Debian's podman and runc when missing (root). As installed, Podman 4.3 fails here
# (crun setrlimit and cgroup errors); runc and explicit ulimits make it work (TOOLCHAIN.md).
# Imports the same busybox test image that scripts/images.sh makes for dockerd.
set -euo pipefail

if [[ $(id -u) -eq 0 ]]; then default_dir=/var/cache/hepx-podman; else default_dir=$HOME/.cache/hepx/podman; fi
DIR=${HEPX_PODMAN_DIR:-$default_dir}
SOCK=$DIR/podman.sock
say() { echo "podman.sh: $*" >&2; }

if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    [[ $(id -u) -eq 0 ]] || { say "podman/runc missing and this is not root: install them first"; exit 1; }
    say "installing podman and runc from Debian ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq podman runc busybox-static >&2
fi

mkdir -p "$DIR"
cat > "$DIR/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$DIR/containers.conf

if ! [[ -S $SOCK ]] || ! timeout 5 curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null; then
    rm -f "$SOCK"
    # From its own folder: conmon needs the service's working directory for as long as it runs,
    # and a caller's checkout may be deleted first (it also drops an `oom` file there).
    (cd "$DIR" && exec nohup podman system service --time=0 "unix://$SOCK" \
        >"$DIR/service.log" 2>&1) &
    for _ in $(seq 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
    [[ -S $SOCK ]] || { say "the Podman API did not start (log: $DIR/service.log)"; exit 1; }
fi

if ! podman image exists hepx/busybox:local; then
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp"
    cp "$(command -v busybox)" "$root/bin/busybox"
    # Debian's busybox lists itself among its applets: linking that would replace the binary
    # with a link to itself.
    for tool in $("$root/bin/busybox" --list); do
        [[ $tool == busybox ]] || ln -sf busybox "$root/bin/$tool"
    done
    tar -C "$root" -c . | podman import - hepx/busybox:local >/dev/null
    rm -rf "$root"
    say "imported hepx/busybox:local"
fi
echo "export DOCKER_HOST=unix://$SOCK CONTAINERS_CONF=$CONTAINERS_CONF"
