#!/usr/bin/env bash
# Build (once) the Debian 13 "trixie" root filesystem the Quadlet test boots with
# systemd-nspawn: systemd 257 as PID 1 and podman 5 with its Quadlet generator,
# which Debian 12 cannot install (podman 4.3 has no Quadlet).
#
#   scripts/trixie-rootfs.sh            build it if missing; print its path
#
# The tarball is cached under ~/.cache/flotta/nspawn/, named by a hash of this
# recipe (suite, packages, options): a changed recipe builds a new one. The
# current one is also linked as trixie-podman.tar, where the test looks.
# Needs root (mmdebstrap as root) and the Debian archive (deb.debian.org, or
# FLOTTA_DEBIAN_MIRROR). Fails loudly: nothing is skipped.
set -euo pipefail
exec </dev/null

SUITE=trixie
MIRROR="${FLOTTA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES=systemd,systemd-sysv,dbus,podman,runc,conmon,catatonit,busybox-static
RECIPE="suite=$SUITE variant=minbase packages=$PACKAGES nodoc=1"
CACHE="${FLOTTA_CACHE_DIR:-$HOME/.cache/flotta}/nspawn"
KEY="$(printf '%s' "$RECIPE" | sha256sum | cut -c1-16)"
TAR="$CACHE/trixie-podman-$KEY.tar"

say() { printf 'trixie-rootfs: %s\n' "$*" >&2; }

mkdir -p "$CACHE"
if [ ! -s "$TAR" ]; then
    command -v mmdebstrap >/dev/null || { say "mmdebstrap missing (scripts/setup.sh installs it)"; exit 1; }
    say "building $TAR ($RECIPE) from $MIRROR"
    started=$SECONDS
    rm -rf "$TAR.part"
    mmdebstrap --quiet --format=tar --variant=minbase --include="$PACKAGES" \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        "$SUITE" "$TAR.part" "$MIRROR"
    mv "$TAR.part" "$TAR"
    say "built in $((SECONDS - started)) s: $(du -h "$TAR" | cut -f1)"
fi
ln -sfn "$(basename "$TAR")" "$CACHE/trixie-podman.tar"
printf '%s\n' "$TAR"
