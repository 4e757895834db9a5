#!/usr/bin/env bash
# Build the local images hepx's container tests need, without any registry (`make images`):
#   hepx/busybox:local     2 MB, from Debian's busybox-static (docker import)
#   hepx/python-hep:local  Debian bookworm (debootstrap) + a venv with hepx's dependencies
#                          (core, hep and containers extras) at /opt/hepx
#   hepx:local             hepx itself on top: the agent/API image and the image hep.pythia
#                          jobs run in (entry point `hepx`)
# Cached: each image is rebuilt only when missing or when its inputs changed (a hash of
# pyproject.toml for python-hep; of the Python sources for hepx). Needs root for debootstrap
# and an engine on DOCKER_HOST (scripts/dockerd.sh). Prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "images.sh: $*" >&2; }
have_label() { # image label value -> true if the image exists with that label value
    [[ $(docker image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null) == "$3" ]]
}
need() {
    command -v "$1" >/dev/null && return
    say "installing $2 ..."
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "$2" >&2
}

workdir=$(mktemp -d)
cleanup() {
    umount -l "$workdir"/rootfs/proc "$workdir"/rootfs/root/.cache/pip 2>/dev/null || true
    rm -rf --one-file-system "$workdir"
}
trap cleanup EXIT

# --- busybox -------------------------------------------------------------------------------
started=$(date +%s)
if docker image inspect hepx/busybox:local >/dev/null 2>&1; then
    say "hepx/busybox:local is cached"
else
    need busybox busybox-static
    root=$workdir/busybox
    mkdir -p "$root"/{bin,tmp,inputs,outputs,etc}
    cp "$(command -v busybox)" "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    echo "nobody:x:65534:65534:nobody:/tmp:/bin/sh" >"$root/etc/passwd"
    tar -C "$root" -c . | docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
        --change 'CMD ["/bin/sh"]' - hepx/busybox:local >/dev/null
    say "built hepx/busybox:local in $(( $(date +%s) - started )) s"
fi

# --- python-hep: Debian + Python + hepx's dependencies ---------------------------------------
# The dependencies pyproject.toml lists for the image (hepx itself comes in the next image),
# plus the build requirements so hepx installs offline there. They and the recipe's version
# are the cache key: other changes to pyproject.toml (dev tools, other extras) keep the image.
RECIPE=3
requirements=$workdir/requirements.txt
.venv/bin/python - "$requirements" <<'EOF'
import sys, tomllib
doc = tomllib.load(open("pyproject.toml", "rb"))
extras = doc["project"].get("optional-dependencies", {})
deps = doc["project"]["dependencies"] + extras.get("hep", []) + extras.get("containers", [])
deps += doc["build-system"]["requires"]
open(sys.argv[1], "w").write("\n".join(deps) + "\n")
EOF
deps_hash=$( (cat "$requirements"; echo "recipe $RECIPE") | sha256sum | cut -c1-16)
started=$(date +%s)
if have_label hepx/python-hep:local org.hepx.deps "$deps_hash"; then
    say "hepx/python-hep:local is cached (deps $deps_hash)"
else
    need debootstrap debootstrap
    root=$workdir/rootfs
    cache=${HEPX_DEBOOTSTRAP_CACHE:-/var/cache/hepx-docker/debootstrap}
    mkdir -p "$cache"
    say "debootstrap bookworm (about 2-4 min) ..."
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        --cache-dir="$cache" bookworm "$root" http://deb.debian.org/debian >"$workdir/debootstrap.log" 2>&1 \
        || { tail -n 20 "$workdir/debootstrap.log" >&2; exit 1; }
    say "debootstrap done after $(( $(date +%s) - started )) s; installing Python dependencies ..."
    cp "$requirements" "$root/tmp/requirements.txt"
    # pip's download cache, shared with the host's (the .venv install has fetched the same wheels).
    pip_cache=${PIP_CACHE_DIR:-$HOME/.cache/pip}
    mkdir -p "$pip_cache" "$root/root/.cache/pip"
    mount --bind "$pip_cache" "$root/root/.cache/pip"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    cert=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
    cp "$cert" "$root/tmp/ca.crt"
    mount -t proc proc "$root/proc"
    chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root PIP_CERT=/tmp/ca.crt \
        PIP_DISABLE_PIP_VERSION_CHECK=1 sh -c \
        'python3 -m venv /opt/hepx && /opt/hepx/bin/pip install -q -r /tmp/requirements.txt' >&2
    umount -l "$root/proc" "$root/root/.cache/pip"
    rm -rf "$root"/tmp/* "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    : >"$root/etc/resolv.conf"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/opt/hepx/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV PYTHIA8DATA=/opt/hepx/share/Pythia8/xmldoc' \
        --change 'ENV PYTHONUNBUFFERED=1' \
        --change "LABEL org.hepx.deps=$deps_hash" \
        --change 'CMD ["python3"]' - hepx/python-hep:local >/dev/null
    say "built hepx/python-hep:local in $(( $(date +%s) - started )) s"
fi

# --- hepx: the project on top (seconds; rebuilt whenever the sources change) -----------------
# Keyed by every file the image gets (what is copied below, in a stable order).
src_hash=$(find pyproject.toml README.md hepx agent api -type f -not -path '*/__pycache__/*' \
    -not -name '*.pyc' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)
started=$(date +%s)
if have_label hepx:local org.hepx.source "$src_hash"; then
    say "hepx:local is cached (source $src_hash)"
else
    ctx=$workdir/hepx
    mkdir -p "$ctx"
    cp pyproject.toml README.md "$ctx/"
    cp -r hepx agent api "$ctx/"
    find "$ctx" \( -name __pycache__ -o -name '*.pyc' \) -prune -exec rm -rf {} +
    cat >"$ctx/Dockerfile" <<EOF
FROM hepx/python-hep:local
COPY . /src
RUN pip install -q --no-cache-dir --no-deps --no-build-isolation /src && rm -rf /src \
    && mkdir -p /data && hepx --help >/dev/null
ENV HEPX_HOME=/data
LABEL org.hepx.source=$src_hash
ENTRYPOINT ["hepx"]
CMD ["agent", "run"]
EOF
    docker build -q --network none -t hepx:local "$ctx" >/dev/null
    say "built hepx:local in $(( $(date +%s) - started )) s"
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' | grep -E '^hepx' >&2
