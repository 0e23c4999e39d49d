#!/usr/bin/env bash
# Build (once) the real Kubernetes API server for CRDs that the tests start on loopback
# (tests/src/kube.rs): `crdtestserver`, the CRD half of kube-apiserver
# (k8s.io/apiextensions-apiserver, tests/kube-crd-server/main.go), run against Debian's
# etcd-server; and a kubectl new enough for it (Debian 12's 1.20 has no --subresource).
#
#   scripts/kube-crd-server.sh          build it if missing; print its directory
#
# Cached under ~/.cache/flotta/kube-crd-server/<key>/ (FLOTTA_CACHE_DIR overrides ~/.cache/flotta),
# key = hash of tests/kube-crd-server/main.go + tests/kube-crd-server/go-packages.txt + this
# script; `current` links to the one in use, where the tests look. A changed input builds a new
# directory; an existing one is never rebuilt, and a warm run touches no network. Earlier
# directories are removed after a build.
#
# What it makes:
#   crdtestserver  main.go built in GOPATH mode (no module proxy) from Debian sid's Go source
#                  packages: golang-$GO_VERSION-go/-src and the golang-*-dev of go-packages.txt
#   kubectl        sid's kubectl (its .deb unpacked with dpkg-deb -x; runs on Debian 12)
#   versions.txt   the key, the mirror, the Kubernetes version stamped in, and every Debian
#                  package used with its version (sid moves: a later cold build of the same key
#                  may take newer versions; this says which ones went in)
#
# Where from: the host's Debian mirror, read from /etc/apt/sources.list and
# /etc/apt/sources.list.d/*.list (one-line format) and *.sources (deb822), the entry for the
# host's own suite (FLOTTA_DEBIAN_MIRROR overrides). apt-get runs with -o options pointing at
# files under the build directory (a one-line sid source list, its own lists, cache and an empty
# dpkg status): the host's apt sources, lists and dpkg database are not touched. Needs neither
# root nor installed Go. Fails loudly when an input cannot be had (a package gone from sid, no
# mirror, no network): nothing is skipped.
#
# Go's build cache is kept in ~/.cache/flotta/kube-crd-server/gocache, across keys: a changed
# input rebuilds in seconds after the downloads. A build runs in a .build-* directory beside the
# cache directories and is moved into place whole; one killed half-way leaves no cache directory
# (its .build-* is removed by the next build). Concurrent runs wait on a lock (.lock).
#
# Timings (2 cores shared with cargo builds, Debian 12, measured 2026-12; sid had Go 1.26.10 and
# Kubernetes 1.36.4), two cold runs:
#   apt-get update (sid's Packages, ~11 MB)                      4-5 s
#   apt-get download: 85 packages, 83 MB                          2 s
#   dpkg-deb -x                                                  10-26 s
#   go build, cold GOCACHE (1.4 GB afterwards)                  240-321 s
#   total cold 282-354 s; a changed input with a warm GOCACHE 26-39 s (go build 6-10 s);
#   warm 0.06 s (no network). Two builds from the same packages give the same binary.
set -euo pipefail
exec </dev/null

# The Go toolchain sid's Kubernetes packages are built with (golang-<version>-go).
GO_VERSION=1.26
SUITE=sid

say() { printf 'kube-crd-server: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$repo_root/tests/kube-crd-server"
SCRIPT="$repo_root/scripts/kube-crd-server.sh"
INPUTS=("$SRC/main.go" "$SRC/go-packages.txt" "$SCRIPT")
for f in "${INPUTS[@]}"; do
    [ -s "$f" ] || die "$f missing"
done

CACHE="${FLOTTA_CACHE_DIR:-$HOME/.cache/flotta}/kube-crd-server"
mkdir -p "$CACHE"
KEY="$(for f in "${INPUTS[@]}"; do printf '== %s\n' "$(basename "$f")"; cat "$f"; done |
    sha256sum | cut -c1-16)"
OUT="$CACHE/$KEY"

complete() { [ -x "$1/crdtestserver" ] && [ -x "$1/kubectl" ] && [ -s "$1/versions.txt" ]; }
# `current` is replaced with a rename: a test reading it never finds it missing.
link_current() {
    if [ "$(readlink "$CACHE/current" 2>/dev/null || true)" != "$KEY" ]; then
        ln -sfn "$KEY" "$CACHE/.current.$$"
        mv -T "$CACHE/.current.$$" "$CACHE/current"
    fi
}

if complete "$OUT"; then
    link_current
    say "cached: $OUT (key $KEY): nothing to build"
    printf '%s\n' "$OUT"
    exit 0
fi

for tool in apt-get apt-cache dpkg-deb sha256sum flock; do
    command -v "$tool" >/dev/null || die "$tool missing"
done

exec 9>"$CACHE/.lock"
if ! flock -n 9; then
    say "another build holds $CACHE/.lock: waiting for it"
    flock 9
fi
if complete "$OUT"; then
    link_current
    say "cached: $OUT (key $KEY): built meanwhile by another run"
    printf '%s\n' "$OUT"
    exit 0
fi

# --- the mirror ----------------------------------------------------------------------------
# "URI SUITE" for each enabled `deb` entry of the host's apt sources, in apt's order.
apt_source_entries() {
    local f
    if [ -f /etc/apt/sources.list ]; then
        sed -nE 's/#.*//; s/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' \
            /etc/apt/sources.list
    fi
    for f in /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -nE 's/#.*//; s/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush(  n, m, i, j, u, s) {
                if ((" " types " ") ~ / deb / && tolower(enabled) != "no") {
                    n = split(uris, u, " "); m = split(suites, s, " ")
                    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j]
                }
                types = uris = suites = enabled = last = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ {
                v = $0; gsub(/[ \t]+/, " ", v)
                if (last == "types") types = types v
                else if (last == "uris") uris = uris v
                else if (last == "suites") suites = suites v
                next
            }
            {
                i = index($0, ":"); if (i == 0) next
                k = tolower(substr($0, 1, i - 1)); v = substr($0, i + 1)
                gsub(/[ \t]+/, " ", v); sub(/^ /, "", v); sub(/ $/, "", v)
                last = k
                if (k == "types") types = v
                else if (k == "uris") uris = v
                else if (k == "suites") suites = v
                else if (k == "enabled") enabled = v
            }
            END { flush() }
        ' "$f"
    done
}

# The entry for the host's own suite (e.g. bookworm, not bookworm-security); else the first
# http(s) entry whose path ends in /debian.
host_mirror() {
    local codename entries
    # shellcheck source=/dev/null
    codename="$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}")"
    entries="$(apt_source_entries | grep -E '^(https?|ftp|file):' || true)"
    if [ -n "$codename" ]; then
        awk -v c="$codename" '$2 == c { print $1; exit }' <<<"$entries" | grep . && return 0
    fi
    awk '$2 !~ /-security$/ && $1 ~ /\/debian\/?$/ { print $1; exit }' <<<"$entries" | grep .
}

MIRROR="${FLOTTA_DEBIAN_MIRROR:-}"
if [ -z "$MIRROR" ]; then
    MIRROR="$(host_mirror)" ||
        die "no Debian mirror found in /etc/apt/sources.list{,.d/*.list,.d/*.sources}: set FLOTTA_DEBIAN_MIRROR (e.g. http://deb.debian.org/debian)"
fi
MIRROR="${MIRROR%/}"

# --- the packages --------------------------------------------------------------------------
mapfile -t GO_PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$SRC/go-packages.txt" | grep .)
[ "${#GO_PACKAGES[@]}" -gt 0 ] || die "$SRC/go-packages.txt lists no package"
PACKAGES=("golang-$GO_VERSION-go" "golang-$GO_VERSION-src" kubectl "${GO_PACKAGES[@]}")

say "building $OUT (key $KEY) from $MIRROR $SUITE: Go $GO_VERSION, ${#GO_PACKAGES[@]} Go source packages, kubectl"
all_started=$SECONDS
rm -rf "$CACHE"/.build-*          # left by a killed build (the lock is ours)
WORK="$(mktemp -d "$CACHE/.build-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/debs" "$WORK/root" "$WORK/out"
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" > "$WORK/apt/sources.list"
: > "$WORK/apt/status"
APT_OPTS=(-q
    -o "Dir::Etc::SourceList=$WORK/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$WORK/apt/lists" -o "Dir::Cache=$WORK/apt/cache"
    -o "Dir::State::Status=$WORK/apt/status"
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/nonexistent
    -o Acquire::Languages=none
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false)
# As root apt downloads as _apt, who cannot write into the build directory.
[ "$(id -u)" -ne 0 ] || APT_OPTS+=(-o APT::Sandbox::User=root)

started=$SECONDS
# apt-get update exits 0 when an index cannot be fetched (it only warns): the lists are checked.
if ! apt-get "${APT_OPTS[@]}" update >"$WORK/apt-update.log" 2>&1 ||
    grep -qE '^(E: |W: Failed to fetch|W: Some index files failed)' "$WORK/apt-update.log" ||
    ! compgen -G "$WORK/apt/lists/*_dists_${SUITE}_main_binary-*_Packages*" >/dev/null; then
    grep -E '^(E|W|Err):? ' "$WORK/apt-update.log" >&2 || cat "$WORK/apt-update.log" >&2
    die "apt-get update could not fetch $SUITE's package lists from $MIRROR (no network? a wrong FLOTTA_DEBIAN_MIRROR?)"
fi
# Every package must have a candidate in sid: name all that do not at once.
missing=()
policy="$(apt-cache "${APT_OPTS[@]}" policy "${PACKAGES[@]}" 2>/dev/null)"
for p in "${PACKAGES[@]}"; do
    candidate="$(awk -v p="$p:" '$1 == p { found = 1; next } found && $1 == "Candidate:" { print $2; exit }' <<<"$policy")"
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        missing+=("$p")
    fi
done
[ "${#missing[@]}" -eq 0 ] ||
    die "not in $MIRROR $SUITE: ${missing[*]} (sid moved: update tests/kube-crd-server/go-packages.txt or GO_VERSION in this script)"
say "apt-get update: $((SECONDS - started)) s"

started=$SECONDS
(cd "$WORK/debs" && apt-get "${APT_OPTS[@]}" download "${PACKAGES[@]}" >"$WORK/apt-download.log" 2>&1) || {
    tail -n 20 "$WORK/apt-download.log" >&2
    die "apt-get download of ${#PACKAGES[@]} packages from $MIRROR $SUITE failed"
}
debs=("$WORK"/debs/*.deb)
[ "${#debs[@]}" -eq "${#PACKAGES[@]}" ] ||
    die "apt-get download gave ${#debs[@]} .deb files for ${#PACKAGES[@]} packages"
say "apt-get download: $((SECONDS - started)) s, $(du -sh "$WORK/debs" | cut -f1)"

started=$SECONDS
for deb in "${debs[@]}"; do
    dpkg-deb -x "$deb" "$WORK/root" || die "dpkg-deb -x $deb failed"
done
GOROOT="$WORK/root/usr/lib/go-$GO_VERSION"
[ -x "$GOROOT/bin/go" ] || die "$GOROOT/bin/go missing from golang-$GO_VERSION-go"
[ -x "$WORK/root/usr/bin/kubectl" ] || die "usr/bin/kubectl missing from sid's kubectl package"
say "dpkg-deb -x: $((SECONDS - started)) s"

# The Kubernetes version the server reports (/version), from the apiextensions-apiserver
# package: staging version 0.N.P is Kubernetes 1.N.P.
ext_deb=("$WORK"/debs/golang-k8s-apiextensions-apiserver-dev_*.deb)
ext_version="$(dpkg-deb -f "${ext_deb[0]}" Version)"
staging="${ext_version%%[-+~]*}"
[[ "$staging" =~ ^0\.([0-9]+)\.([0-9]+)$ ]] ||
    die "unexpected golang-k8s-apiextensions-apiserver-dev version $ext_version (expected 0.N.P-...)"
K8S_MINOR="${BASH_REMATCH[1]}"
K8S_VERSION="v1.$K8S_MINOR.${BASH_REMATCH[2]}"

# --- the build ------------------------------------------------------------------------------
started=$SECONDS
mkdir -p "$WORK/gopath/src/crdtestserver" "$CACHE/gocache"
cp "$SRC/main.go" "$WORK/gopath/src/crdtestserver/main.go"
say "go build crdtestserver ($K8S_VERSION; ~5 min on 2 cores with a cold Go cache, seconds with a warm one)"
(cd "$WORK/gopath/src/crdtestserver" &&
    env GOROOT="$GOROOT" GOPATH="$WORK/gopath:$WORK/root/usr/share/gocode" GO111MODULE=off \
        GOTOOLCHAIN=local GOPROXY=off GOENV=off GOFLAGS= CGO_ENABLED=0 GOCACHE="$CACHE/gocache" \
        "$GOROOT/bin/go" build -trimpath -ldflags "-s -w \
            -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
            -X k8s.io/component-base/version.gitMajor=1 \
            -X k8s.io/component-base/version.gitMinor=$K8S_MINOR \
            -X k8s.io/component-base/version.gitTreeState=clean" \
        -o "$WORK/out/crdtestserver" crdtestserver) || die "go build of crdtestserver failed"
say "go build: $((SECONDS - started)) s"

cp "$WORK/root/usr/bin/kubectl" "$WORK/out/kubectl"
"$WORK/out/crdtestserver" --help >/dev/null 2>&1 || die "the built crdtestserver does not run (--help)"
kubectl_version="$("$WORK/out/kubectl" version --client 2>&1)" ||
    die "sid's kubectl does not run here: $kubectl_version"
kubectl_version="${kubectl_version%%$'\n'*}"

{
    echo "key=$KEY"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "mirror=$MIRROR suite=$SUITE"
    echo "kubernetes=$K8S_VERSION (golang-k8s-apiextensions-apiserver-dev $ext_version)"
    echo "go=$("$GOROOT/bin/go" version 2>/dev/null | cut -d' ' -f3)"
    echo "kubectl=$kubectl_version"
    echo "# Debian packages used (package version)"
    for deb in "${debs[@]}"; do
        dpkg-deb -f "$deb" Package Version | awk '/^Package:/ { p = $2 } /^Version:/ { v = $2 } END { print p, v }'
    done | sort
} > "$WORK/out/versions.txt"

rm -rf "$OUT"                     # an incomplete directory (a file removed by hand)
mv -T "$WORK/out" "$OUT"
link_current
# Earlier builds (other inputs) are no longer used: ~130 MB each.
for old in "$CACHE"/????????????????; do
    if [ -d "$old" ] && [ "$old" != "$OUT" ]; then rm -rf "$old"; fi
done
say "built in $((SECONDS - all_started)) s: crdtestserver $(du -h "$OUT/crdtestserver" | cut -f1), $kubectl_version"
printf '%s\n' "$OUT"
