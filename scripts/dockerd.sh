#!/usr/bin/env bash
# Start (or reuse) a private Docker engine for hepx's container tests and print its DOCKER_HOST.
#
#   eval "$(scripts/dockerd.sh)"      # exports DOCKER_HOST=unix://.../docker.sock
#
# Installs Debian's docker.io when dockerd is missing (needs root and the Debian mirror).
# The engine's data root lives under HEPX_DOCKER_DIR (default /var/cache/hepx-docker as root,
# ~/.cache/hepx/docker otherwise) and is kept between runs, so images built by `make images`
# stay cached. Idempotent: a running engine on that socket is reused.
set -euo pipefail

if [[ $(id -u) -eq 0 ]]; then default_dir=/var/cache/hepx-docker; else default_dir=$HOME/.cache/hepx/docker; fi
DIR=${HEPX_DOCKER_DIR:-$default_dir}
SOCK=$DIR/docker.sock
export DOCKER_HOST=unix://$SOCK

say() { echo "dockerd.sh: $*" >&2; }

answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
        say "dockerd is not installed and this is not root: install docker.io (or Docker) first"
        exit 1
    fi
    say "installing docker.io from Debian ..."
    started=$(date +%s)
    export DEBIAN_FRONTEND=noninteractive
    # Wait for the dpkg lock rather than fail when another install is running.
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        docker.io busybox-static debootstrap docker-compose >&2
    say "installed docker.io in $(( $(date +%s) - started )) s"
fi

mkdir -p "$DIR"
if [[ -S $SOCK ]] && answers; then
    say "reusing the engine on $SOCK"
else
    rm -f "$SOCK" "$DIR/dockerd.pid"
    # exec-root must be short: containerd's socket path under it has a length limit.
    exec_root=/run/hepx-docker-$(id -u)
    say "starting dockerd (data root $DIR/data, log $DIR/dockerd.log) ..."
    started=$(date +%s)
    nohup dockerd --host "unix://$SOCK" --data-root "$DIR/data" --exec-root "$exec_root" \
        --pidfile "$DIR/dockerd.pid" >>"$DIR/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 120); do
        answers && break
        sleep 0.5
    done
    if ! answers; then
        say "dockerd did not answer within 60 s; the end of $DIR/dockerd.log:"
        tail -n 20 "$DIR/dockerd.log" >&2
        exit 1
    fi
    say "dockerd up in $(( $(date +%s) - started )) s"
fi
echo "export DOCKER_HOST=$DOCKER_HOST"
