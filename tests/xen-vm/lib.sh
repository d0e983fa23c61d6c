# shellcheck shell=bash
# tests/xen-vm/lib.sh — host-side helpers shared by run.sh and mkguests.sh.
# Sourced, not executed. Callers have `set -euo pipefail` on.

# shellcheck disable=SC2034  # used by the scripts that source this file
XENVM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

xenvm_log() { printf '[xen-vm] %s\n' "$*" >&2; }
xenvm_die() { printf '[xen-vm] ERROR: %s\n' "$*" >&2; exit 1; }

# xenvm_need CMD:PKG... — install the Debian packages behind missing commands.
# A fresh CI machine has none of qemu, cpio, ...; a developer machine usually has
# them, so the common case is a few `command -v` checks and no apt at all.
xenvm_need() {
    local want=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || want+=("${pair#*:}")
    done
    ((${#want[@]})) || return 0
    xenvm_log "installing host packages: ${want[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Lists may be missing or stale on a fresh machine; install fails without them.
    timeout 600 apt-get update -qq
    timeout 900 apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 \
            || xenvm_die "${pair%%:*} still missing after installing ${pair#*:}"
    done
}

# xenvm_rootfs_skeleton ROOT — the merged-/usr layout of Debian 12, so that a library
# that ldd finds at /lib/x86_64-linux-gnu/x and one at /usr/lib/x86_64-linux-gnu/x land
# in the same place, exactly as on the host.
xenvm_rootfs_skeleton() {
    local root=$1 d
    mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{dev,proc,sys,run,tmp,etc,root,mnt,var}
    for d in bin sbin lib lib64; do
        ln -sfn "usr/$d" "$root/$d"
    done
    chmod 1777 "$root/tmp"
}

# xenvm_install_busybox ROOT BUSYBOX — busybox plus a symlink for every applet that
# does not collide with a real binary already (or later) placed in ROOT.
xenvm_install_busybox() {
    local root=$1 bb=$2 applet
    install -m 0755 "$bb" "$root/usr/bin/busybox"
    while read -r applet; do
        # --list-full prints e.g. "sbin/insmod" or "usr/bin/tar"; with the merged
        # layout both resolve under usr/.
        [[ -e $root/$applet || -L $root/$applet ]] && continue
        ln -s /usr/bin/busybox "$root/$applet"
    done < <("$bb" --list-full)
}

# xenvm_pack_cpio ROOT OUT — a gzip'd newc cpio, every file owned by root, as the
# kernel's initramfs unpacker wants it.
xenvm_pack_cpio() {
    local root=$1 out=$2
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
        | gzip -1 > "$out.tmp"
    mv "$out.tmp" "$out"
}
