#!/usr/bin/env bash
# Build time (no cache) and size of the offline esorex image.
#   benchmarks/image_build.sh            (needs debian:bookworm-slim; scripts/setup.sh makes it)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=muse-esorex:bench-nocache
start=$(date +%s%N)
docker build -q --no-cache --build-arg MUSE_SOURCE=debian --build-arg MUSE_PIPELINE_VERSION=2.8.7 -t "$tag" images/esorex >/dev/null
end=$(date +%s%N)
size=$(docker image inspect -f '{{.Size}}' "$tag")
base=$(docker image inspect -f '{{.Size}}' debian:bookworm-slim)
echo "build (no cache): $(( (end - start) / 1000000 )) ms"
echo "image size: $(( size / 1000000 )) MB (base debian:bookworm-slim $(( base / 1000000 )) MB, MUSE layers $(( (size - base) / 1000000 )) MB)"
docker rmi "$tag" >/dev/null
