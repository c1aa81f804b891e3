#!/usr/bin/env bash
# Set up what a fresh machine lacks to run muse-airflow: a Docker engine, chromium for the browser tests, the debian:bookworm-slim base
# image (pulled, or made offline with debootstrap), the esorex image, and the Python venv in .venv.
# Idempotent: every step is skipped when its result is already there, so it is cheap to run again.
#
#   MUSE_ESOREX_IMAGE   tag of the esorex image to build (default muse-esorex:2.8.7-debian)
#   MUSE_DEBIAN_MIRROR  Debian mirror for debootstrap (default http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

image=${MUSE_ESOREX_IMAGE:-muse-esorex:2.8.7-debian}
mirror=${MUSE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# 1. Docker engine, debootstrap, chromium (Debian packages).
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
# the web UI tests drive Debian's headless chromium through its chromedriver (tests/browser.py)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# docker-compose v1 is what Debian packages; the v2 plugin (`docker compose`) works as well.
if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    missing+=(docker-compose)
fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. A running engine.
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: /tmp/muse-airflow-dockerd.log)"
    as_root sh -c 'nohup setsid dockerd >/tmp/muse-airflow-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { log "dockerd did not come up, see /tmp/muse-airflow-dockerd.log"; exit 1; }
fi

# 3. The base image: from a registry if one answers, else built offline from Debian's mirror.
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    if ! docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
        log "no registry: making debian:bookworm-slim with debootstrap from $mirror"
        root=$(mktemp -d)
        as_root debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/muse-airflow-debootstrap.log 2>&1
        as_root tar -C "$root" -c . | docker import - debian:bookworm-slim >/dev/null
        as_root rm -rf "$root"
    fi
fi

# 4. The esorex image (offline variant); docker's layer cache makes a rebuild of an unchanged file ~1 s.
log "building $image (images/esorex, MUSE_SOURCE=debian)"
docker build -q --build-arg MUSE_SOURCE=debian --build-arg MUSE_PIPELINE_VERSION=2.8.7 \
    -t "$image" images/esorex >/dev/null

# 5. The venv, re-installed only when requirements.txt or pyproject.toml changed.
stamp=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.muse-airflow-stamp 2>/dev/null)" != "$stamp" ]; then
    log "creating .venv (requirements.txt)"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import airflow, muse_operators" >/dev/null
    echo "$stamp" > .venv/.muse-airflow-stamp
fi
log "ready: $(docker image inspect -f '{{index .Config.Labels "eso.muse.pipeline-version"}}' "$image") image $image, venv .venv"
