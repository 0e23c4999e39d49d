# --- the rest is fixed (image/src/install_body.sh); the settings above are generated. ---
# Installs the flotta agent from the flotta-* files next to this script in the boot
# partition's root, then deletes exactly those files (they hold the registration key, or the
# provisioned device key and frame keys). Every absolute path is under $FLOTTA_ROOT
# (default: the real root), and systemctl goes through $FLOTTA_SYSTEMCTL (default: none
# when FLOTTA_ROOT is set), so the script can be run on a build host against a scratch tree.
ROOT="${FLOTTA_ROOT:-}"
if [ -n "$ROOT" ]; then
    SYSTEMCTL="${FLOTTA_SYSTEMCTL:-:}"
else
    SYSTEMCTL="${FLOTTA_SYSTEMCTL:-systemctl}"
fi
HERE=$(cd "$(dirname "$0")" && pwd -P)
umask 077

say() { printf 'flotta-install: %s\n' "$*"; }
own() { if [ "$(id -u)" = 0 ]; then chown "$@"; fi; }
# put SRC DEST MODE: copy next to DEST, set mode and owner, rename into place.
put() {
    cp "$1" "$2.flotta-new"
    chmod "$3" "$2.flotta-new"
    own 0:0 "$2.flotta-new"
    mv -f "$2.flotta-new" "$2"
}

say "installing the agent from $HERE"
mkdir -p "$ROOT/usr/local/bin"
put "$HERE/flotta-agent" "$ROOT/usr/local/bin/flotta-agent" 0755

mkdir -p "$ROOT/etc/flotta"
chmod 0700 "$ROOT/etc/flotta"
own 0:0 "$ROOT/etc/flotta"
put "$HERE/flotta-agent.toml" "$ROOT/etc/flotta/agent.toml" 0600
put "$HERE/flotta-ca.pem" "$ROOT/etc/flotta/ca.pem" 0644
if [ "$FLOTTA_PROVISIONED" = 1 ]; then
    # Provisioned by the server (flotta-server provision): the identity and the frame keys go
    # where the agent keeps them, in its data directory (the unit's StateDirectory=flotta,
    # 0700); there is nothing to enrol with. Files already there are replaced: the card was
    # written for this device, and this is its first boot.
    say "provisioned identity and frame keys"
    for d in /var/lib/flotta /var/lib/flotta/identity /var/lib/flotta/frame; do
        mkdir -p "$ROOT$d"
        chmod 0700 "$ROOT$d"
        own 0:0 "$ROOT$d"
    done
    put "$HERE/flotta-device.pem" "$ROOT/var/lib/flotta/identity/device.pem" 0600
    put "$HERE/flotta-frame-context.json" "$ROOT/var/lib/flotta/frame/context.json" 0600
else
    put "$HERE/flotta-register.pem" "$ROOT/etc/flotta/register.pem" 0644
    put "$HERE/flotta-register.key" "$ROOT/etc/flotta/register.key" 0600
fi

if grep -q '^device_id = ""$' "$ROOT/etc/flotta/agent.toml"; then
    id=$(tr -d ' \t\r\n' < "$ROOT/etc/machine-id" 2>/dev/null || true)
    case "$id" in
        "" | *[!0-9a-f]*) say "no usable /etc/machine-id; the agent reads it at start" ;;
        *)
            sed -i "s/^device_id = \"\"\$/device_id = \"$id\"/" "$ROOT/etc/flotta/agent.toml"
            say "device id $id"
            ;;
    esac
fi

mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
put "$HERE/flotta-agent.service" "$ROOT/etc/systemd/system/flotta-agent.service" 0644
ln -sf /etc/systemd/system/flotta-agent.service \
    "$ROOT/etc/systemd/system/multi-user.target.wants/flotta-agent.service"

if [ -n "$FLOTTA_HOSTNAME" ]; then
    say "hostname $FLOTTA_HOSTNAME"
    printf '%s\n' "$FLOTTA_HOSTNAME" > "$ROOT/etc/hostname.flotta-new"
    chmod 0644 "$ROOT/etc/hostname.flotta-new"
    mv -f "$ROOT/etc/hostname.flotta-new" "$ROOT/etc/hostname"
    tab=$(printf '\t')
    if [ -f "$ROOT/etc/hosts" ] && grep -q '^127\.0\.1\.1[[:space:]]' "$ROOT/etc/hosts"; then
        sed -i "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1${tab}$FLOTTA_HOSTNAME/" "$ROOT/etc/hosts"
    else
        printf '127.0.1.1\t%s\n' "$FLOTTA_HOSTNAME" >> "$ROOT/etc/hosts"
    fi
fi

if [ -f "$HERE/flotta-wifi.nmconnection" ]; then
    say "Wi-Fi connection flotta-wifi"
    mkdir -p "$ROOT/etc/NetworkManager/system-connections"
    put "$HERE/flotta-wifi.nmconnection" \
        "$ROOT/etc/NetworkManager/system-connections/flotta-wifi.nmconnection" 0600
    # Raspberry Pi OS keeps Wi-Fi soft-blocked until a country is set; unblock it.
    for f in "$ROOT"/var/lib/systemd/rfkill/*:wlan; do
        if [ -e "$f" ]; then echo 0 > "$f"; fi
    done
    if [ -z "$ROOT" ] && command -v rfkill > /dev/null; then rfkill unblock wifi || true; fi
    if [ -z "$ROOT" ] && [ "$FLOTTA_START_NOW" = 1 ] && command -v nmcli > /dev/null; then
        nmcli connection reload || true
    fi
fi

if [ -f "$HERE/flotta-authorized_keys" ]; then
    entry=""
    if [ -n "$FLOTTA_SSH_USER" ]; then
        entry=$(grep "^$FLOTTA_SSH_USER:" "$ROOT/etc/passwd" || true)
        if [ -z "$entry" ]; then say "user $FLOTTA_SSH_USER does not exist; using root"; fi
    else
        entry=$(awk -F: '$3 == 1000 { print; exit }' "$ROOT/etc/passwd" 2> /dev/null || true)
    fi
    if [ -z "$entry" ]; then entry="root:x:0:0:root:/root:/bin/sh"; fi
    user=$(printf '%s' "$entry" | cut -d: -f1)
    ids=$(printf '%s' "$entry" | cut -d: -f3,4)
    home=$(printf '%s' "$entry" | cut -d: -f6)
    say "ssh key for $user ($home)"
    mkdir -p "$ROOT$home/.ssh"
    chmod 0700 "$ROOT$home/.ssh"
    keys="$ROOT$home/.ssh/authorized_keys"
    touch "$keys"
    while IFS= read -r key; do
        [ -n "$key" ] || continue
        grep -qxF -- "$key" "$keys" || printf '%s\n' "$key" >> "$keys"
    done < "$HERE/flotta-authorized_keys"
    chmod 0600 "$keys"
    own "$ids" "$ROOT$home/.ssh" "$keys"
    $SYSTEMCTL enable ssh
    if [ "$FLOTTA_START_NOW" = 1 ]; then $SYSTEMCTL start --no-block ssh; fi
fi

if [ "$FLOTTA_START_NOW" = 1 ]; then
    $SYSTEMCTL daemon-reload
    $SYSTEMCTL start --no-block flotta-agent.service
fi

say "removing the flotta-* payload from $HERE"
rm -f "$HERE/flotta-install.sh" "$HERE/flotta-agent" "$HERE/flotta-agent.toml" \
    "$HERE/flotta-ca.pem" "$HERE/flotta-register.pem" "$HERE/flotta-register.key" \
    "$HERE/flotta-device.pem" "$HERE/flotta-frame-context.json" \
    "$HERE/flotta-agent.service" "$HERE/flotta-wifi.nmconnection" "$HERE/flotta-authorized_keys"
sync
say "done"
