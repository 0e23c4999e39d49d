#!/usr/bin/env bash
# Install what building, cross-compiling and testing flotta needs on a Debian 12 machine.
#
# Idempotent and non-interactive: safe to run on every CI start. Each part checks first and
# only installs what is missing, so on a machine that already has everything it changes
# nothing and takes a few seconds. Run as root, or as a user with sudo.
#
#   apt:    qemu-user, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, musl-tools, file, binutils,
#           curl, openssl, protobuf-compiler and libprotobuf-dev (protoc and the well-known
#           google/protobuf/*.proto: the chirpstack_api crate compiles ChirpStack's .proto files when
#           it is built), podman, runc, catatonit and busybox-static (the workload tests run a
#           private podman with tests/podman/containers.conf and a busybox image built locally:
#           no registry; /etc/containers is left alone), mmdebstrap and systemd-container (the
#           Quadlet test boots a Debian 13 root with systemd-nspawn: scripts/trixie-rootfs.sh
#           builds it once into ~/.cache/flotta/nspawn), lintian (cargo xtask dist checks the .deb
#           packages), and for the emulated Raspberry Pi Zero of `cargo xtask pi-boot`:
#           qemu-system-arm, qemu-user-static (binfmt for the armel mmdebstrap), arch-test,
#           device-tree-compiler, mtools, dosfstools, e2fsprogs, fdisk, cpio, kmod; etcd-server
#           (the store of the Kubernetes API server for CRDs that the tests start:
#           scripts/kube-crd-server.sh builds that server once into ~/.cache/flotta/kube-crd-server;
#           the tests run their own etcd on free ports: the package's etcd.service, which systemd
#           machines start on localhost:2379, is not used); postgresql (the PostgreSQL store's tests
#           and the replicas e2e test run initdb/pg_ctl from /usr/lib/postgresql/*/bin in temporary
#           directories, as the postgres user when root; the package's own cluster is not used);
#           chromium + chromium-driver (the operator console's browser test drives a headless
#           chromium through chromedriver's WebDriver API);
#           and python3-pip when pip is missing
#   PyPI:   ziglang (zig as C compiler and linker for the ARMv6 agent)
#   rustup: musl targets for the pinned stable toolchain; the dated nightly named in
#           cross/nightly-toolchain, with rust-src (build-std for the ARMv6 agent)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export CI="${CI:-true}"
exec </dev/null

ZIGLANG_VERSION="0.17.1"
RUST_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
APT_PACKAGES=(qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross musl-tools file binutils curl openssl
    protobuf-compiler libprotobuf-dev podman runc catatonit busybox-static mmdebstrap systemd-container lintian
    qemu-system-arm qemu-user-static arch-test device-tree-compiler mtools dosfstools e2fsprogs fdisk cpio kmod
    etcd-server postgresql chromium chromium-driver)
PYTHON="${FLOTTA_PYTHON:-python3}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

say() { printf 'setup: %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        say "need root for: $*  (run as root, or install sudo)" >&2
        exit 1
    fi
}

# --- Debian packages -------------------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    APT_PACKAGES+=(python3 python3-pip)
elif ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    APT_PACKAGES+=(python3-pip)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    say "apt: all ${#APT_PACKAGES[@]} packages present, skipping apt-get"
else
    say "apt: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- zig (PyPI ziglang) ----------------------------------------------------------------
have_zig="$("$PYTHON" -m ziglang version 2>/dev/null || true)"
if [ "$have_zig" = "$ZIGLANG_VERSION" ]; then
    say "zig: $have_zig present ($PYTHON -m ziglang)"
else
    say "zig: installing ziglang==$ZIGLANG_VERSION for $PYTHON (found: ${have_zig:-none})"
    pip_args=(install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION")
    # Debian's own python3 is "externally managed" (PEP 668); only then is the override needed.
    stdlib="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"
    in_venv="$("$PYTHON" -c 'import sys; print(int(sys.prefix != sys.base_prefix))')"
    if [ -f "$stdlib/EXTERNALLY-MANAGED" ] && [ "$in_venv" = 0 ]; then
        pip_args+=(--break-system-packages)
    fi
    if [ -w "$("$PYTHON" -c 'import site; print(site.getsitepackages()[0])')" ]; then
        "$PYTHON" -m pip "${pip_args[@]}"
    else
        as_root "$PYTHON" -m pip "${pip_args[@]}"
    fi
    say "zig: $("$PYTHON" -m ziglang version)"
fi

# --- Rust ------------------------------------------------------------------------------
if ! command -v rustup >/dev/null 2>&1; then
    say "rustup not found: install Rust with rustup first (https://rustup.rs)" >&2
    exit 1
fi
# Inside the repository rustup uses rust-toolchain.toml (stable, with rustfmt and clippy).
unset RUSTUP_TOOLCHAIN
installed_targets="$(rustup target list --installed)"
for target in "${RUST_TARGETS[@]}"; do
    if grep -qx "$target" <<<"$installed_targets"; then
        say "rust: target $target present"
    else
        say "rust: adding target $target"
        rustup target add "$target"
    fi
done
installed_components="$(rustup component list --installed)"
for component in rustfmt clippy; do
    if ! grep -q "^$component" <<<"$installed_components"; then
        say "rust: adding component $component"
        rustup component add "$component"
    fi
done

# The nightly is pinned by date (cross/nightly-toolchain): a moving nightly breaks build-std.
NIGHTLY="$(tr -d '[:space:]' < cross/nightly-toolchain)"
if ! rustup toolchain list | grep -q "^$NIGHTLY-"; then
    say "rust: installing $NIGHTLY (minimal profile, rust-src) for -Zbuild-std"
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
elif ! rustup component list --installed --toolchain "$NIGHTLY" | grep -q '^rust-src'; then
    say "rust: adding rust-src to $NIGHTLY"
    rustup component add rust-src --toolchain "$NIGHTLY"
else
    say "rust: $NIGHTLY with rust-src present ($(rustc "+$NIGHTLY" --version))"
fi

# --- The Debian 13 root the Quadlet test boots (cached; built only when missing) ----------
if [ "$(id -u)" -eq 0 ]; then
    say "nspawn: $(scripts/trixie-rootfs.sh)"
else
    say "nspawn: $(sudo -n env HOME="$HOME" scripts/trixie-rootfs.sh)"
fi

# --- The emulated Raspberry Pi Zero's kernel, initramfs and SD image (cached) -------------
# Cold ~6-10 min (an armel mmdebstrap under qemu-user); warm < 1 s. See the script's header
# for what it changes on the host (a temporary armel apt architecture, binfmt_misc).
if [ "$(id -u)" -eq 0 ]; then
    say "pi-zero: $(scripts/pi-zero-assets.sh)"
else
    say "pi-zero: $(sudo -n env HOME="$HOME" scripts/pi-zero-assets.sh)"
fi

# --- The Kubernetes API server for CRDs (and a kubectl) the tests start (cached) ------------
# Cold ~6 min (Debian sid's Go sources downloaded with apt-get into a temporary directory, the
# host's apt sources untouched; a Go build); warm < 1 s. See the script's header. It needs no
# root: it runs as the user whose ~/.cache the tests read.
say "kube-crd-server: $(scripts/kube-crd-server.sh)"

say "done: stable $(rustc --version | cut -d' ' -f2), $(qemu-arm --version | head -n1 | cut -d' ' -f1-3)"
