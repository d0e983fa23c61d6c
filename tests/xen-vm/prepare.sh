#!/usr/bin/env bash
# tests/xen-vm/prepare.sh — fetch and unpack everything the Xen-under-QEMU tier boots.
#
# Usage: tests/xen-vm/prepare.sh [CACHE_DIR]
#        (CACHE_DIR defaults to $CACHE_DIR, then /var/cache/xenbaked-xen-vm)
#
# Produces, inside CACHE_DIR:
#   xen            Debian's Xen 4.17 hypervisor, uncompressed (QEMU's multiboot loader
#                  cannot read the .gz that the package ships)
#   vmlinuz        Debian 12's kernel (the linux-image-6.1.*-amd64 that linux-image-amd64
#                  depends on), dom0's kernel
#   vmlinux        the same kernel decompressed to ELF, the PV guests' kernel
#   modules/       that kernel's /lib/modules/<version> tree
#   busybox        busybox-static, the userland of dom0 and of the guests
#   root/          every package below unpacked with dpkg-deb -x (toolstack, libraries)
#   prepared.env   shell fragment read by run.sh (kernel version, paths); written last,
#                  so its presence means the cache is complete
#
# Idempotent: a complete cache returns at once without touching apt; a partial one
# only downloads the .debs that are missing and unpacks the ones not yet unpacked.
# Set XENVM_REFRESH=1 to throw the cache away and start again (e.g. to pick up a new
# kernel ABI from the mirror).
#
# Why apt-get download + dpkg-deb -x rather than apt-get install: the hypervisor,
# xen-utils and kernel packages have install hooks that rewrite grub and the host's
# initramfs. We only want their files.
set -euo pipefail

CACHE_DIR=${1:-${CACHE_DIR:-/var/cache/xenbaked-xen-vm}}
XEN_SERIES=4.17

log() { printf '[prepare] %s\n' "$*" >&2; }
die() { printf '[prepare] ERROR: %s\n' "$*" >&2; exit 1; }

# Several runs may share one cache: the first prepares it, the others wait for it.
mkdir -p "$(dirname "$CACHE_DIR")"
exec 9>"$CACHE_DIR.lock"
timeout 1200 flock 9 || die "could not lock $CACHE_DIR.lock"

if [[ ${XENVM_REFRESH:-0} == 1 ]]; then
    log "XENVM_REFRESH=1: removing $CACHE_DIR"
    rm -rf -- "$CACHE_DIR"
fi

if [[ -f $CACHE_DIR/prepared.env ]]; then
    # shellcheck disable=SC1091
    . "$CACHE_DIR/prepared.env"
    if [[ -f $CACHE_DIR/xen && -f $CACHE_DIR/vmlinuz && -s $CACHE_DIR/vmlinux \
          && -d $CACHE_DIR/modules/kernel \
          && -x $CACHE_DIR/busybox ]]; then
        log "cache $CACHE_DIR is complete (kernel $XENVM_KVER, xen $XENVM_XEN_VERSION); nothing to do"
        exit 0
    fi
    log "cache $CACHE_DIR is incomplete; finishing it"
    rm -f "$CACHE_DIR/prepared.env"
fi

for tool in apt-get apt-cache dpkg-deb zcat ldd od; do
    command -v "$tool" >/dev/null || die "$tool not found (this script expects a Debian 12 host)"
done

mkdir -p "$CACHE_DIR/debs" "$CACHE_DIR/root" "$CACHE_DIR/.extracted"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)

# apt-cache and apt-get download only know packages after an `apt-get update`; a fresh
# CI machine may not have lists yet.
if ! apt-cache show "xen-hypervisor-$XEN_SERIES-amd64" >/dev/null 2>&1; then
    log "apt lists do not know xen-hypervisor-$XEN_SERIES-amd64; running apt-get update"
    apt-get update -qq
fi

# linux-image-amd64 is a metapackage; its files live in the versioned package it depends on.
KPKG=$(apt-cache depends linux-image-amd64 \
       | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | sed -n 1p)
[[ -n $KPKG ]] || die "could not resolve the kernel package behind linux-image-amd64"
KVER=${KPKG#linux-image-}

# Runtime libraries of the toolstack. libxen-dev on a developer host brings the same
# files, but a fresh CI machine may lack them, and run.sh copies whatever `ldd` finds
# here so dom0 gets the toolstack's own versions.
PKGS=(
    "xen-hypervisor-$XEN_SERIES-amd64"
    "$KPKG"
    "xen-utils-$XEN_SERIES" xen-utils-common xenstore-utils
    "libxenmisc$XEN_SERIES" libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
    libxenstore4 libxentoollog1 libxenhypfs1 libxendevicemodel1 libxentoolcore1
    libyajl2 libncurses6 libtinfo6
    busybox-static
)

# Download the packages that have no .deb in the cache yet. apt-get download writes
# into the current directory; we download into a scratch folder and move complete
# files in, so an interrupted run never leaves a truncated .deb behind.
missing=()
for p in "${PKGS[@]}"; do
    compgen -G "$CACHE_DIR/debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
    log "downloading ${#missing[@]} package(s): ${missing[*]}"
    tmp=$(mktemp -d "$CACHE_DIR/debs/.dl.XXXXXX")
    # _apt cannot write into a root-only folder; that only costs a warning, which we hide.
    rc=0
    (cd "$tmp" && timeout 900 apt-get download -q "${missing[@]}") > "$tmp/apt.log" 2>&1 || rc=$?
    grep -v 'Download is performed unsandboxed' "$tmp/apt.log" >&2 || true
    if ((rc != 0)); then rm -rf "$tmp"; die "apt-get download failed (exit $rc)"; fi
    mv "$tmp"/*.deb "$CACHE_DIR/debs/"
    rm -rf "$tmp"
else
    log "all ${#PKGS[@]} packages already downloaded"
fi

# Unpack each .deb once; a stamp per .deb records that it was unpacked completely.
for p in "${PKGS[@]}"; do
    for deb in "$CACHE_DIR/debs/${p}"_*.deb; do
        stamp=$CACHE_DIR/.extracted/$(basename "$deb")
        [[ -f $stamp ]] && continue
        log "unpacking $(basename "$deb")"
        dpkg-deb -x "$deb" "$CACHE_DIR/root"
        touch "$stamp"
    done
done

R=$CACHE_DIR/root
XEN_GZ=$R/boot/xen-$XEN_SERIES-amd64.gz
[[ -f $XEN_GZ ]] || die "$XEN_GZ missing after unpacking"
[[ -f $R/boot/vmlinuz-$KVER ]] || die "vmlinuz-$KVER missing after unpacking"
[[ -d $R/lib/modules/$KVER/kernel ]] || die "modules for $KVER missing after unpacking"
[[ -x $R/bin/busybox ]] || die "busybox missing after unpacking"

# QEMU's multiboot loader needs the plain ELF image.
zcat "$XEN_GZ" > "$CACHE_DIR/xen.tmp" && mv "$CACHE_DIR/xen.tmp" "$CACHE_DIR/xen"
cp "$R/boot/vmlinuz-$KVER" "$CACHE_DIR/vmlinuz"

# The same kernel as a plain ELF (vmlinux) for the PV guests. Debian compresses its
# kernel with xz; given a bzImage, `xl create` has libxenguest decompress it in dom0,
# which under TCG costs seconds per guest (and minutes when the host is loaded). The
# compressed payload starts at the xz magic; xz stops at its end and complains about
# the bzImage trailer behind it, so its status is ignored and the ELF header checked.
if [[ ! -s $CACHE_DIR/vmlinux ]]; then
    # shellcheck disable=SC1091
    . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
    xenvm_need xz:xz-utils
    off=$(LC_ALL=C grep -abo $'\xfd''7zXZ' "$CACHE_DIR/vmlinuz" | LC_ALL=C sed -n '1s/:.*//p')
    [[ -n $off ]] || die "no xz payload in vmlinuz-$KVER"
    { tail -c +$((off + 1)) "$CACHE_DIR/vmlinuz" | xz -dc > "$CACHE_DIR/vmlinux.tmp"; } 2>/dev/null || true
    [[ $(head -c 4 "$CACHE_DIR/vmlinux.tmp" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] \
        || die "decompressing vmlinuz-$KVER did not give an ELF image"
    mv "$CACHE_DIR/vmlinux.tmp" "$CACHE_DIR/vmlinux"
fi
ln -sfn "root/lib/modules/$KVER" "$CACHE_DIR/modules"
ln -sfn "root/bin/busybox" "$CACHE_DIR/busybox"

xen_debs=("$CACHE_DIR/debs/xen-hypervisor-$XEN_SERIES-amd64"_*.deb)
XEN_VERSION=$(dpkg-deb -f "${xen_debs[0]}" Version)

# Check now, not at boot time, that every toolstack binary finds its libraries.
# (bookworm packages still ship some libraries under /lib, e.g. libtinfo6)
LIBPATH=$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu:$R/usr/lib/xen-$XEN_SERIES/lib/x86_64-linux-gnu
for b in xl xenstored xen-init-dom0 xenconsoled xentrace xentop; do
    deps=$(LD_LIBRARY_PATH=$LIBPATH ldd "$R/usr/lib/xen-$XEN_SERIES/bin/$b" 2>&1) || true
    if [[ $deps == *'not found'* ]]; then
        echo "$deps" >&2
        die "$b has unresolved libraries"
    fi
done

cat > "$CACHE_DIR/prepared.env.tmp" <<EOF
# Written by tests/xen-vm/prepare.sh; read by run.sh.
XENVM_KVER=$KVER
XENVM_XEN_SERIES=$XEN_SERIES
XENVM_XEN_VERSION=$XEN_VERSION
XENVM_LIBPATH=$LIBPATH
EOF
mv "$CACHE_DIR/prepared.env.tmp" "$CACHE_DIR/prepared.env"
log "cache ready in $CACHE_DIR (kernel $KVER, xen $XEN_VERSION)"
