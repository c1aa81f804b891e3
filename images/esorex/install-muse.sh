#!/bin/sh
# Install ESO's MUSE pipeline into the image from one of two sources (see the Dockerfile).
# Usage: install-muse.sh SOURCE PIPELINE_VERSION KIT_URL KIT_SHA256
# Writes /opt/muse/VERSION (pipeline version) and /opt/muse/SOURCE, and fills $MUSE_STATIC_CALIB_DIR.
set -eu
source=$1 kit_version=$2  # for debian: the version Debian must ship kit_url=$3 kit_sha256=$4
mkdir -p "$MUSE_ROOT" "$MUSE_STATIC_CALIB_DIR"
export DEBIAN_FRONTEND=noninteractive

case "$source" in
debian)
    apt-get update
    apt-get install -y --no-install-recommends esorex cpl-plugin-muse
    # esorex warns once per call about this default plugin directory if it does not exist.
    mkdir -p /usr/lib/cpl/plugins
    installed=$(dpkg-query -W -f='${Version}' cpl-plugin-muse | sed 's/[-+].*//')
    if [ "$installed" != "$kit_version" ]; then
        echo "install-muse.sh: Debian ships cpl-plugin-muse $installed, the build declares" >&2
        echo "MUSE_PIPELINE_VERSION=$kit_version; pass --build-arg MUSE_PIPELINE_VERSION=$installed" >&2
        exit 4
    fi
    echo "$installed" > "$MUSE_ROOT/VERSION"
    rm -rf /var/lib/apt/lists/*
    ;;
eso-kit)
    if [ -z "$kit_sha256" ]; then
        echo "install-muse.sh: MUSE_KIT_SHA256 is empty. Pass --build-arg MUSE_KIT_SHA256=<the SHA-256 ESO" >&2
        echo "publishes for muse-kit-$kit_version.tar.gz>, or build the offline variant with" >&2
        echo "--build-arg MUSE_SOURCE=debian." >&2
        exit 2
    fi
    build_deps="curl ca-certificates gcc g++ make perl file bzip2 xz-utils pkg-config"
    apt-get update
    apt-get install -y --no-install-recommends $build_deps libgomp1 zlib1g-dev
    work=$(mktemp -d)
    curl --fail --location --retry 3 -o "$work/kit.tar.gz" "$kit_url"
    echo "$kit_sha256  $work/kit.tar.gz" | sha256sum -c -
    tar -C "$work" -xzf "$work/kit.tar.gz"
    kit=$(find "$work" -maxdepth 1 -type d -name "muse-kit-*" | head -n 1)
    prefix=/opt/eso
    # The kit bundles the sources of every library in dependency order; build them without the
    # interactive install_pipeline script so the build is reproducible.
    for component in cfitsio wcslib fftw gsl erfa curl cpl esorex muse; do
        for archive in "$kit"/$component-[0-9]*.tar.*; do
            [ -e "$archive" ] || continue
            case "$archive" in *calib*) continue ;; esac
            src="$work/src-$component"; mkdir -p "$src"
            tar -C "$src" -xf "$archive"
            dir=$(find "$src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
            (cd "$dir" && ./configure --prefix="$prefix" --with-cpl="$prefix" \
                 --with-cfitsio="$prefix" --with-wcslib="$prefix" --with-fftw="$prefix" \
                 --with-gsl="$prefix" --with-erfa="$prefix" --enable-openmp \
             && make -j"$(nproc)" && make install)
        done
    done
    calib=$(find "$kit" -maxdepth 1 -name "muse-calib-$kit_version*.tar.*" | head -n 1)
    if [ -z "$calib" ]; then
        echo "install-muse.sh: no muse-calib-$kit_version archive in the kit $kit_url" >&2
        exit 3
    fi
    mkdir -p "$work/calib"
    tar -C "$work/calib" -xf "$calib"
    caldir=$(find "$work/calib" -type d -path "*muse-$kit_version/cal" | head -n 1)
    cp -a "$caldir"/. "$MUSE_STATIC_CALIB_DIR"/
    ln -sf "$prefix/bin/esorex" /usr/local/bin/esorex
    mkdir -p /usr/lib/cpl/plugins
    ln -sf "$prefix/lib/esopipes-plugins/muse-$kit_version" "/usr/lib/cpl/plugins/muse-$kit_version"
    echo "$kit_version" > "$MUSE_ROOT/VERSION"
    apt-get purge -y --auto-remove $build_deps
    rm -rf "$work" /var/lib/apt/lists/*
    ;;
*)
    echo "install-muse.sh: unknown MUSE_SOURCE '$source' (use eso-kit or debian)" >&2
    exit 2
    ;;
esac
echo "$source" > "$MUSE_ROOT/SOURCE"
esorex --version
