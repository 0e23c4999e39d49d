#!/usr/bin/env bash
# Build (once) what `cargo xtask pi-boot` boots: an emulated Raspberry Pi Zero (ARMv6) under
# qemu-system-arm -M raspi0, with a Raspberry-Pi-OS-bookworm-shaped SD card image.
#
#   scripts/pi-zero-assets.sh           build the assets if missing; print their directory
#
# Cached under ~/.cache/flotta/pi-zero/<key>/ (FLOTTA_CACHE_DIR overrides ~/.cache/flotta),
# key = hash of this script + the package list + the kernel ABI (resolved with apt-cache); `current` links to the one
# in use, where the test looks. A changed recipe (or a new kernel ABI in the archive) builds a
# new directory; an existing one is never rebuilt. Needs root (mmdebstrap, dpkg
# --add-architecture) and the Debian archive (the host's apt sources; FLOTTA_DEBIAN_MIRROR for
# mmdebstrap). Fails loudly: nothing is skipped.
#
# What it makes:
#   vmlinuz        Debian's armel linux-image-<abi>-rpi kernel (ARMv6, what a Pi Zero runs)
#   zero.dtb       bcm2835-rpi-zero.dtb patched for qemu 7.2 (which lacks the power
#                  domain's ASB block: the stock DTB panics in bcm2835_power_probe)
#   initrd.gz      busybox initramfs: loads the ext4/vfat/nls/usbnet/cdc_ether modules and
#                  switch_roots to /dev/mmcblk0p2 (qemu has no GPU firmware and the kernel has
#                  ext4 and the USB network as modules)
#   base.img       1 GiB SD image, MBR: p1 FAT32 `bootfs` (cmdline.txt, config.txt,
#                  kernel.img, bcm2708-rpi-zero.dtb, issue.txt), p2 ext4 `rootfs` (Debian 12
#                  armel: minbase + systemd-sysv, udev, kmod, iproute2, netbase, busybox,
#                  ca-certificates, dosfstools; no NTP client: the guest keeps its wrong clock)
#   manifest.txt   what went in (ABI, packages, PARTUUID)
#
# Side effects on the host, said here because they are system-wide:
#   - `dpkg --add-architecture armel` + `apt-get update` to download two armel packages with
#     `apt-get download` (nothing armel is installed); the architecture is removed again
#     (and the lists updated) if it was not configured before.
#   - mounts binfmt_misc on /proc/sys/fs/binfmt_misc if it is not mounted, and registers
#     qemu-arm from qemu-user-static's /usr/lib/binfmt.d/qemu-arm.conf if it is not registered
#     (mmdebstrap runs the armel maintainer scripts through it; arch-test checks it works).
#
# Cold timings (2 cores shared with a cargo build, Debian 12, measured 2026-12):
#   resolve the ABI: dpkg --add-architecture armel + apt-get update    ~5 s
#   kernel + busybox download, DTB patch, initramfs                      6 s
#   removing armel again (apt-get update)                                ~5 s
#   mmdebstrap armel root (under qemu-user; cached on its own as a tar)  348 s
#   customise + FAT + mkfs.ext4 -d + image assembly                      6 s
#   total cold 366 s; with the root tarball cached (a recipe change) 18 s; warm 0.04 s
set -euo pipefail
exec </dev/null

SUITE=bookworm
MIRROR="${FLOTTA_DEBIAN_MIRROR:-}"
PACKAGES=systemd-sysv,udev,kmod,iproute2,netbase,busybox,ca-certificates,dosfstools
IMAGE_MIB=1024        # a power of two: qemu's SD card model insists
BOOT_START=8192       # sectors, as on Raspberry Pi OS
BOOT_SECTORS=262144   # 128 MiB
DISK_ID=0x0f1a77a0    # MBR disk identifier: PARTUUIDs are 0f1a77a0-01 and -02

say() { printf 'pi-zero-assets: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (scripts/setup.sh runs it so)"
for tool in apt-get apt-cache dpkg-deb mmdebstrap fdtput sfdisk mkfs.vfat mcopy mkfs.ext4 cpio gzip depmod modprobe arch-test; do
    command -v "$tool" >/dev/null || die "$tool missing (scripts/setup.sh installs it)"
done

CACHE="${FLOTTA_CACHE_DIR:-$HOME/.cache/flotta}/pi-zero"
mkdir -p "$CACHE"
RECIPE="$( (cat "${BASH_SOURCE[0]}"; printf '%s\n' "suite=$SUITE packages=$PACKAGES") | sha256sum | cut -c1-16)"

# armel in apt, only while this script needs it (nothing armel is installed).
had_armel=0
if dpkg --print-foreign-architectures | grep -qx armel; then had_armel=1; fi
armel_added=0
add_armel() {
    [ "$armel_added" = 1 ] && return 0
    if [ "$had_armel" = 0 ]; then
        say "dpkg --add-architecture armel (temporary)"
        dpkg --add-architecture armel
    fi
    armel_added=1
    apt-get update -qq || die "apt-get update failed"
}
restore_arch() {
    if [ "$had_armel" = 0 ] && dpkg --print-foreign-architectures | grep -qx armel; then
        say "removing the armel architecture again"
        dpkg --remove-architecture armel || say "WARNING: dpkg --remove-architecture armel failed"
        apt-get update -qq || say "WARNING: apt-get update after removing armel failed"
    fi
}
trap restore_arch EXIT

# The kernel ABI (6.1.0-N) of the armel rpi flavour: what linux-image-rpi:armel depends on.
# Resolving it needs armel in apt (an apt-get update), so the ABI resolved for this recipe is
# remembered (abi-<recipe>); FLOTTA_PI_REFRESH=1 resolves it again (a new ABI in the archive
# then builds a new cache directory), FLOTTA_PI_KERNEL_ABI=6.1.0-N pins it.
ABI="${FLOTTA_PI_KERNEL_ABI:-}"
if [ -z "$ABI" ] && [ "${FLOTTA_PI_REFRESH:-0}" != 1 ] && [ -s "$CACHE/abi-$RECIPE" ]; then
    ABI="$(cat "$CACHE/abi-$RECIPE")"
fi
if [ -z "$ABI" ]; then
    add_armel
    ABI="$(apt-cache depends linux-image-rpi:armel 2>/dev/null |
        sed -n 's/^ *Depends: linux-image-\([0-9][0-9.]*-[0-9]*\)-rpi:armel$/\1/p' | head -n1)"
    [ -n "$ABI" ] || die "cannot find the kernel ABI (apt-cache depends linux-image-rpi:armel): is the armel archive reachable?"
fi
KVER="$ABI-rpi"
KEY="$(printf '%s\n' "recipe=$RECIPE abi=$ABI" | sha256sum | cut -c1-16)"
OUT="$CACHE/$KEY"

if [ -s "$OUT/base.img" ] && [ -s "$OUT/initrd.gz" ] && [ -s "$OUT/zero.dtb" ] && [ -s "$OUT/vmlinuz" ]; then
    printf '%s\n' "$ABI" > "$CACHE/abi-$RECIPE"
    ln -sfn "$KEY" "$CACHE/current"
    printf '%s\n' "$OUT"
    exit 0
fi

say "building $OUT (kernel $KVER, $SUITE armel: $PACKAGES)"
all_started=$SECONDS
WORK="$OUT.part"
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

# --- 1. kernel, modules, busybox (armel packages, downloaded, not installed) --------------
started=$SECONDS
add_armel
mkdir -p debs
(cd debs && apt-get -o APT::Sandbox::User=root download "linux-image-$KVER:armel" busybox-static:armel >&2) ||
    die "apt-get download linux-image-$KVER:armel busybox-static:armel failed (FLOTTA_PI_REFRESH=1 resolves the ABI again)"
restore_arch
trap - EXIT
mkdir -p kern bb
for deb in debs/linux-image-*.deb; do dpkg-deb -x "$deb" kern; done
for deb in debs/busybox-static_*.deb; do dpkg-deb -x "$deb" bb; done
[ -s "kern/boot/vmlinuz-$KVER" ] || die "kern/boot/vmlinuz-$KVER missing from the package"
cp "kern/boot/vmlinuz-$KVER" vmlinuz
MODDIR="kern/lib/modules/$KVER"
[ -d "$MODDIR" ] || die "$MODDIR missing from the package"
depmod -b kern "$KVER"

DTB="$(find kern -name bcm2835-rpi-zero.dtb | head -n1)"
[ -n "$DTB" ] || die "bcm2835-rpi-zero.dtb not found in the kernel package"
cp "$DTB" zero.dtb
fdtput -t x zero.dtb /soc/watchdog@7e100000 reg 7e100000 114
fdtput -t s zero.dtb /soc/watchdog@7e100000 reg-names pm

# initramfs: busybox + the modules (with their dependencies, in load order) + init.
INITRD_MODULES="ext4 vfat nls_cp437 nls_ascii nls_utf8 cdc_ether"
mkdir -p initrd/bin initrd/lib/modules initrd/proc initrd/sys initrd/dev initrd/newroot
cp bb/bin/busybox initrd/bin/busybox
: > initrd/lib/modules/load-order
for m in $INITRD_MODULES; do
    deps="$(modprobe -d kern -S "$KVER" --show-depends "$m")" || die "modprobe --show-depends $m failed"
    while read -r verb path _; do
        case "$verb" in
            insmod)
                name="$(basename "$path")"
                case "$name" in
                    *.ko) ;;
                    *.ko.xz) xz -dc "$path" > "initrd/lib/modules/${name%.xz}"; name="${name%.xz}" ;;
                    *) die "unexpected module file $path" ;;
                esac
                [ -f "initrd/lib/modules/$name" ] || cp "$path" "initrd/lib/modules/$name"
                grep -qx "$name" initrd/lib/modules/load-order || echo "$name" >> initrd/lib/modules/load-order
                ;;
            builtin) ;;
            *) die "modprobe --show-depends $m: unexpected line: $verb $path" ;;
        esac
    done <<<"$deps"
done
cat > initrd/init <<'INIT'
#!/bin/busybox sh
# flotta pi-zero initramfs (scripts/pi-zero-assets.sh): what the Raspberry Pi's built-in
# drivers do on the real board; load the modules, mount the SD card's root partition, go.
# Messages go to the kernel log: /dev/console is the last console= (tty1, as on a real Pi),
# the kernel log reaches the serial console too.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
log() { echo "INITRD: $*" > /dev/kmsg; }
log "uptime $(cut -d' ' -f1 /proc/uptime)"
while read -r m; do insmod "/lib/modules/$m" || log "insmod $m failed"; done < /lib/modules/load-order
for i in $(seq 1 60); do [ -b /dev/mmcblk0p2 ] && break; sleep 0.5; done
mount -t ext4 -o rw /dev/mmcblk0p2 /newroot || { log "mount /dev/mmcblk0p2 failed"; exec sh; }
log "switching root at $(cut -d' ' -f1 /proc/uptime)"
umount /proc /sys
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot /sbin/init
INIT
chmod 755 initrd/init
(cd initrd && find . | cpio -o -H newc --quiet | gzip -9) > initrd.gz
say "kernel, DTB, initramfs: $((SECONDS - started)) s (modules: $(tr '\n' ' ' < initrd/lib/modules/load-order))"

# --- 2. the armel root filesystem ---------------------------------------------------------
started=$SECONDS
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    say "mounting binfmt_misc"
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-arm ]; then
    [ -f /usr/lib/binfmt.d/qemu-arm.conf ] || die "/usr/lib/binfmt.d/qemu-arm.conf missing (package qemu-user-static)"
    say "registering qemu-arm with binfmt_misc (/usr/lib/binfmt.d/qemu-arm.conf)"
    grep -v '^#' /usr/lib/binfmt.d/qemu-arm.conf > /proc/sys/fs/binfmt_misc/register
fi
arch-test armel >/dev/null || die "arch-test armel fails: armel binaries do not run through binfmt_misc + qemu-arm"
# The bootstrapped root is cached on its own (keyed on suite + packages + options only), so a
# change to the customisation below does not bootstrap again.
MMDEBSTRAP_ARGS=(--arch=armel --variant=minbase --include="$PACKAGES"
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*')
ROOT_TAR="$CACHE/rootfs-$SUITE-armel-$(printf '%s\n' "${MMDEBSTRAP_ARGS[@]}" "$SUITE" | sha256sum | cut -c1-16).tar"
if [ ! -s "$ROOT_TAR" ]; then
    mirror_args=()
    [ -n "$MIRROR" ] && mirror_args=("$MIRROR")
    say "mmdebstrap $SUITE armel into $ROOT_TAR (slow: every maintainer script runs under qemu-user)"
    mmdebstrap --quiet --format=tar "${MMDEBSTRAP_ARGS[@]}" "$SUITE" "$ROOT_TAR.part" "${mirror_args[@]}" ||
        die "mmdebstrap failed"
    mv "$ROOT_TAR.part" "$ROOT_TAR"
fi
mkdir rootfs
tar -C rootfs --numeric-owner -xpf "$ROOT_TAR"
say "mmdebstrap: $((SECONDS - started)) s"

# --- 3. customise (on the host: plain files) ----------------------------------------------
started=$SECONDS
R=rootfs
for f in usr/lib/systemd/systemd-timesyncd usr/sbin/ntpd usr/sbin/chronyd; do
    [ ! -e "$R/$f" ] || die "$f is in the root: the guest must keep its wrong clock (no NTP)"
done
[ ! -e "$R/usr/lib/clock-epoch" ] || die "the root has /usr/lib/clock-epoch: the test needs the raw wrong clock"
# Only the modules the board needs (fs, lib, crypto, the USB network) + depmod.
rm -rf "$R/lib/modules"
mkdir -p "$R/lib/modules/$KVER"
for d in kernel/fs kernel/lib kernel/crypto kernel/drivers/net/usb kernel/drivers/net/mii.ko; do
    mkdir -p "$R/lib/modules/$KVER/$(dirname "$d")"
    cp -a "$MODDIR/$d" "$R/lib/modules/$KVER/$d"
done
cp "$MODDIR"/modules.builtin "$MODDIR"/modules.builtin.modinfo "$MODDIR"/modules.order "$R/lib/modules/$KVER/"
depmod -b "$R" "$KVER"
cat > "$R/etc/fstab" <<'FSTAB'
proc            /proc           proc    defaults          0       0
/dev/mmcblk0p1  /boot/firmware  vfat    defaults          0       2
/dev/mmcblk0p2  /               ext4    defaults,noatime  0       1
FSTAB
mkdir -p "$R/boot/firmware"
echo raspberrypi > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n' > "$R/etc/hosts"
sed -i 's/^root:[^:]*:/root::/' "$R/etc/shadow"   # empty root password (serial autologin)
mkdir -p "$R/etc/systemd/network" "$R/etc/systemd/system/serial-getty@ttyAMA0.service.d" \
    "$R/etc/systemd/system/multi-user.target.wants" "$R/etc/systemd/system/network-online.target.wants" \
    "$R/etc/systemd/system/getty.target.wants" "$R/etc/systemd/system/sockets.target.wants"
cat > "$R/etc/systemd/network/10-usb.network" <<'NET'
[Match]
Name=usb* eth* en*
[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
NET
ln -sf /lib/systemd/system/systemd-networkd.service "$R/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
ln -sf /lib/systemd/system/systemd-networkd.socket "$R/etc/systemd/system/sockets.target.wants/systemd-networkd.socket"
ln -sf /lib/systemd/system/systemd-networkd-wait-online.service "$R/etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service"
cat > "$R/etc/systemd/system/serial-getty@ttyAMA0.service.d/autologin.conf" <<'GETTY'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
GETTY
ln -sf /lib/systemd/system/serial-getty@.service "$R/etc/systemd/system/getty.target.wants/serial-getty@ttyAMA0.service"
rm -f "$R/etc/systemd/system/getty.target.wants/getty@tty1.service"
ln -sf /dev/null "$R/etc/systemd/system/getty-static.service"
ln -sf /dev/null "$R/etc/systemd/system/e2scrub_reap.service"   # keeps boot "unfinished": poweroff hangs
ln -sf /dev/null "$R/etc/systemd/system/systemd-timesyncd.service"
ln -sf /dev/null "$R/etc/systemd/system/apt-daily.timer"
ln -sf /dev/null "$R/etc/systemd/system/apt-daily-upgrade.timer"
say "customise: $((SECONDS - started)) s"

# --- 4. the SD card image (no loop mounts) --------------------------------------------------
started=$SECONDS
PARTUUID_PREFIX="${DISK_ID#0x}"
mkdir -p bootfs
printf 'console=serial0,115200 console=tty1 root=PARTUUID=%s-02 rootfstype=ext4 fsck.repair=yes rootwait\n' \
    "$PARTUUID_PREFIX" > bootfs/cmdline.txt
cat > bootfs/config.txt <<'CONFIG'
# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[all]
CONFIG
printf 'flotta pi-zero emulation image (Raspberry Pi OS bookworm layout), %s armel, kernel %s\nBuilt by scripts/pi-zero-assets.sh (key %s)\n' \
    "$SUITE" "$KVER" "$KEY" > bootfs/issue.txt
cp vmlinuz bootfs/kernel.img
cp zero.dtb bootfs/bcm2708-rpi-zero.dtb

TOTAL_SECTORS=$((IMAGE_MIB * 2048))
ROOT_START=$((BOOT_START + BOOT_SECTORS))
ROOT_SECTORS=$((TOTAL_SECTORS - ROOT_START))
rm -f base.img.part boot.fat root.ext4
truncate -s "${IMAGE_MIB}M" base.img.part
sfdisk --quiet base.img.part <<SFDISK
label: dos
label-id: $DISK_ID
unit: sectors

start=$BOOT_START, size=$BOOT_SECTORS, type=c
start=$ROOT_START, size=$ROOT_SECTORS, type=83
SFDISK
# (mkfs.fat warns about the lowercase label; Raspberry Pi OS's is lowercase too.)
mkfs.vfat -C -F 32 -n bootfs boot.fat $((BOOT_SECTORS / 2)) > mkfs.vfat.log 2>&1 ||
    { cat mkfs.vfat.log >&2; die "mkfs.vfat failed"; }
mcopy -i boot.fat bootfs/* ::
truncate -s $((ROOT_SECTORS * 512)) root.ext4
mkfs.ext4 -q -F -L rootfs -d rootfs root.ext4
dd if=boot.fat of=base.img.part bs=1M seek=$((BOOT_START * 512)) oflag=seek_bytes conv=notrunc status=none
dd if=root.ext4 of=base.img.part bs=4M seek=$((ROOT_START * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
rm -f boot.fat root.ext4
say "image: $((SECONDS - started)) s"

{
    echo "key=$KEY"
    echo "suite=$SUITE arch=armel packages=$PACKAGES"
    echo "kernel=$KVER"
    echo "image_mib=$IMAGE_MIB boot_start=$BOOT_START boot_sectors=$BOOT_SECTORS root_start=$ROOT_START"
    echo "partuuid_root=$PARTUUID_PREFIX-02"
    echo "initrd_modules=$(tr '\n' ' ' < initrd/lib/modules/load-order)"
} > manifest.txt

mkdir -p "$OUT"
mv vmlinuz zero.dtb initrd.gz manifest.txt "$OUT/"
mv base.img.part "$OUT/base.img"
cd "$CACHE"
rm -rf "$WORK"
printf '%s\n' "$ABI" > "$CACHE/abi-$RECIPE"
ln -sfn "$KEY" "$CACHE/current"
# Earlier builds (another recipe or ABI) are no longer used: ~350 MB each.
for old in "$CACHE"/???????????????? "$CACHE"/????????????????.part; do
    if [ -d "$old" ] && [ "$old" != "$OUT" ]; then rm -rf "$old"; fi
done
for old in "$CACHE"/abi-*; do
    if [ -f "$old" ] && [ "$old" != "$CACHE/abi-$RECIPE" ]; then rm -f "$old"; fi
done
say "built in $((SECONDS - all_started)) s: $(du -h --apparent-size "$OUT/base.img" | cut -f1) image, $(du -h "$OUT/base.img" | cut -f1) used"
printf '%s\n' "$OUT"
