#!/usr/bin/env bash
# tests/xen-vm/run.sh — boot a real Xen 4.17 under QEMU (TCG), bring up the toolstack
# in a busybox dom0, run a payload script there, and copy its results out.
#
# Usage:
#   tests/xen-vm/run.sh --payload FILE --out DIR [options]
#
# Options (each also settable by the environment variable in brackets):
#   --payload FILE        [PAYLOAD] shell script (busybox sh) run in dom0 once xenstored,
#                         xen-init-dom0 and xenconsoled are up; cwd and $RESULTS are the
#                         results directory; see dom0/lib.sh for its helpers. Required.
#   --out DIR             [OUT_DIR] where results land; must be empty or absent. Always
#                         gets console.log (the whole serial console: Xen, dom0 kernel,
#                         init, payload output) and run-info.txt, even on failure. Required.
#   --cache DIR           [CACHE_DIR] prepared cache (default /var/cache/xenbaked-xen-vm);
#                         prepare.sh is run on it first (instant when it is complete).
#   --bin PATH            [XENVM_BINS, space-separated] a host binary to put in dom0 at the
#                         same path, with every library `ldd` lists at the same paths, and a
#                         link /usr/local/bin/NAME so the payload can call it by name.
#                         Repeatable.
#   --file SRC[:DEST]     [XENVM_FILES, space-separated] a host file or directory to copy into
#                         dom0 (default DEST: SRC's absolute path). Repeatable.
#   --env KEY=VALUE       exported to the payload. Repeatable.
#   --guests "A B"        [XENVM_GUESTS] guests to build from guests/*.sh (default: all).
#                         They are built, not started: the payload starts what it needs.
#   --module NAME         [XENVM_MODULES] extra kernel module to load (with its deps). Repeatable.
#   --timeout SECS        [XENVM_TIMEOUT] hard limit on the whole VM run (default 300).
#   --payload-timeout S   [XENVM_PAYLOAD_TIMEOUT] limit on the payload inside dom0 (default:
#                         whatever leaves 60 s of the hard limit to write results and reset).
#   --tbuf-size PAGES     [XEN_TBUF_SIZE] Xen's tbuf_size= (default 32, per CPU; "none"
#                         leaves it off the command line, so tracing starts disabled).
#   --xen-cmdline-extra S [XEN_CMDLINE_EXTRA] appended to Xen's command line.
#   --xen-cmdline S       [XEN_CMDLINE] replaces Xen's whole command line.
#   --disk-mb N           [XENVM_DISK_MB] size of the results disk (default 512, sparse).
#   --keep-work           [XENVM_KEEP_WORK=1] keep the work directory (initramfs, disk image).
#   --verbose             [XENVM_VERBOSE=1] stream the whole console, not only XENVM lines.
#
# Exit status: 0 the payload succeeded; 1 setup error; 2 the VM hit --timeout; 3 the VM
# produced no results; 4 a dom0 boot stage failed; 5 the payload failed. On any failure
# the tail of console.log (and of the payload's log) is printed.
#
# Example (the smoke test):
#   tests/xen-vm/run.sh --payload tests/xen-vm/payloads/xentrace-smoke.sh --out /tmp/xen-smoke
#   tests/xen-vm/check-smoke.sh /tmp/xen-smoke
# Running our own tools is the same with --bin for each binary and a payload that calls
# them by name (remember: only one binder of VIRQ_TBUF at a time, so never run xentrace
# while xenbaked runs).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CACHE_DIR=${CACHE_DIR:-/var/cache/xenbaked-xen-vm}
OUT_DIR=${OUT_DIR:-}
PAYLOAD=${PAYLOAD:-}
read -r -a BINS <<<"${XENVM_BINS:-}"
read -r -a FILES <<<"${XENVM_FILES:-}"
read -r -a EXTRA_MODULES <<<"${XENVM_MODULES:-}"
ENVS=()
GUESTS=${XENVM_GUESTS:-}
TIMEOUT=${XENVM_TIMEOUT:-300}
PAYLOAD_TIMEOUT=${XENVM_PAYLOAD_TIMEOUT:-0}
TBUF_SIZE=${XEN_TBUF_SIZE:-32}
XEN_CMDLINE=${XEN_CMDLINE:-}
XEN_CMDLINE_EXTRA=${XEN_CMDLINE_EXTRA:-}
DISK_MB=${XENVM_DISK_MB:-512}
KEEP_WORK=${XENVM_KEEP_WORK:-0}
VERBOSE=${XENVM_VERBOSE:-0}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 1; }

while (($#)); do
    case $1 in
        --payload) PAYLOAD=$2; shift 2 ;;
        --out) OUT_DIR=$2; shift 2 ;;
        --cache) CACHE_DIR=$2; shift 2 ;;
        --bin) BINS+=("$2"); shift 2 ;;
        --file) FILES+=("$2"); shift 2 ;;
        --env) ENVS+=("$2"); shift 2 ;;
        --guests) GUESTS=$2; shift 2 ;;
        --module) EXTRA_MODULES+=("$2"); shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --payload-timeout) PAYLOAD_TIMEOUT=$2; shift 2 ;;
        --tbuf-size) TBUF_SIZE=$2; shift 2 ;;
        --xen-cmdline-extra) XEN_CMDLINE_EXTRA=$2; shift 2 ;;
        --xen-cmdline) XEN_CMDLINE=$2; shift 2 ;;
        --disk-mb) DISK_MB=$2; shift 2 ;;
        --keep-work) KEEP_WORK=1; shift ;;
        --verbose) VERBOSE=1; shift ;;
        -h|--help) usage ;;
        *) xenvm_log "unknown argument: $1"; usage ;;
    esac
done

[[ -n $PAYLOAD && -f $PAYLOAD ]] || xenvm_die "--payload FILE is required (got '${PAYLOAD}')"
[[ -n $OUT_DIR ]] || xenvm_die "--out DIR is required"
[[ $TIMEOUT =~ ^[0-9]+$ && $PAYLOAD_TIMEOUT =~ ^[0-9]+$ && $DISK_MB =~ ^[0-9]+$ ]] \
    || xenvm_die "--timeout, --payload-timeout and --disk-mb take whole numbers"
if [[ -d $OUT_DIR && -n $(ls -A "$OUT_DIR") ]]; then
    xenvm_die "OUT_DIR $OUT_DIR is not empty; results of two runs must not mix"
fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
CONSOLE=$OUT_DIR/console.log
: > "$CONSOLE"   # exists from the start, whatever fails later

t_start=$(date +%s)

# ---------------------------------------------------------------- host tools, cache
xenvm_need qemu-system-x86_64:qemu-system-x86 cpio:cpio gzip:gzip timeout:coreutils \
           ldd:libc-bin tar:tar
"$XENVM_DIR/prepare.sh" "$CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
# shellcheck disable=SC1091
. "$CACHE_DIR/prepared.env"
CACHE_ROOT=$CACHE_DIR/root

WORK=$(mktemp -d /tmp/xenvm-work.XXXXXX)
qpid=
cleanup() {
    # If we are interrupted, take QEMU down too (timeout passes the signal on).
    if [[ -n $qpid ]]; then kill "$qpid" 2>/dev/null || true; fi
    if [[ $KEEP_WORK == 1 ]]; then xenvm_log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
ROOT=$WORK/rootfs

# QEMU splits -initrd at commas and the kernel's arguments at spaces.
for p in "$CACHE_DIR" "$WORK"; do
    [[ $p != *[,\ ]* ]] || xenvm_die "path '$p' may not contain a comma or a space (QEMU -initrd)"
done

# ---------------------------------------------------------------- dom0 root file system
xenvm_rootfs_skeleton "$ROOT"

# copy_bin SRC [DEST] — SRC into ROOT (at DEST, default: SRC's path with the cache
# prefix removed) together with everything the dynamic loader needs, each library at
# the path `ldd` resolves it to. ldd searches the cache's Xen libraries first, so dom0
# runs the toolstack's own libxen* versions (our binaries, built against libxen-dev of
# the same Debian release, use the same ones).
copy_bin() {
    local src=$1 dest=${2:-} lib ldd_out
    [[ -n $dest ]] || dest=${src#"$CACHE_ROOT"}
    [[ -f $src ]] || xenvm_die "binary $src not found"
    mkdir -p "$ROOT$(dirname "$dest")"
    rm -f "$ROOT$dest"
    cp -L "$src" "$ROOT$dest"
    chmod 0755 "$ROOT$dest"
    if ! ldd_out=$(LD_LIBRARY_PATH=$XENVM_LIBPATH ldd "$src" 2>&1); then
        [[ $ldd_out == *"not a dynamic executable"* ]] && return 0
        xenvm_die "ldd $src: $ldd_out"
    fi
    if grep -q 'not found' <<<"$ldd_out"; then
        xenvm_die "$src: unresolved libraries:"$'\n'"$ldd_out"
    fi
    while read -r lib; do
        local d=${lib#"$CACHE_ROOT"}
        [[ -e $ROOT$d ]] && continue
        mkdir -p "$ROOT$(dirname "$d")"
        cp -L "$lib" "$ROOT$d"
    done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$ldd_out")
}

XBIN=/usr/lib/xen-$XENVM_XEN_SERIES/bin
# The toolstack and tracing tools, called directly (Debian's /usr/sbin/xl is a wrapper
# script that picks a version; dom0's PATH puts $XBIN first instead).
for b in xl xenstored xen-init-dom0 xenconsoled xenconsole xentrace xentrace_setsize \
         xentop xenperf xenpm lsevtchn; do
    copy_bin "$CACHE_ROOT$XBIN/$b"
done
copy_bin "$CACHE_ROOT/usr/bin/xenalyze"
# xenstore-* are one multi-call binary dispatching on argv[0].
copy_bin "$CACHE_ROOT/usr/bin/xenstore"
for t in read write ls exists list rm watch chmod; do
    ln -sfn xenstore "$ROOT/usr/bin/xenstore-$t"
done
# glibc dlopens libgcc_s.so.1 for pthread_cancel/unwinding; ldd does not list it, and
# without it xl aborts on its error paths.
# (awk reads to the end: an early exit would SIGPIPE ldconfig and, with pipefail, fail us)
libgcc=$(ldconfig -p | awk '/libgcc_s\.so\.1 .*x86-64/ && !p {p = $NF} END {print p}')
[[ -n $libgcc ]] || libgcc=/lib/x86_64-linux-gnu/libgcc_s.so.1
[[ -f $libgcc ]] || xenvm_die "libgcc_s.so.1 not found on the host"
mkdir -p "$ROOT$(dirname "$libgcc")"
cp -L "$libgcc" "$ROOT$libgcc"

# Extra binaries of the caller: same path, libraries, and a link by name.
mkdir -p "$ROOT/usr/local/bin"
for b in ${BINS[@]+"${BINS[@]}"}; do
    b=$(readlink -f "$b")
    copy_bin "$b" "$b"
    ln -sfn "$b" "$ROOT/usr/local/bin/$(basename "$b")"
    xenvm_log "dom0 binary: $b"
done
for f in ${FILES[@]+"${FILES[@]}"}; do
    src=${f%%:*}; dest=${f#*:}
    [[ $f == *:* ]] || dest=$(readlink -f "$src")
    [[ -e $src ]] || xenvm_die "--file $src not found"
    mkdir -p "$ROOT$(dirname "$dest")"
    cp -a "$src" "$ROOT$dest"
    xenvm_log "dom0 file: $src -> $dest"
done

# Kernel modules: the .deb has no modules.dep, so read each module's depends= from its
# .modinfo strings and load dependencies first.
declare -A KO_PATH=() KO_SEEN=()
while read -r ko; do
    n=${ko##*/}; n=${n%.ko}; KO_PATH[${n//-/_}]=$ko   # no forks: there are ~4000 modules
done < <(find "$CACHE_DIR/modules/kernel" -name '*.ko')
MOD_ORDER=()
add_module() {
    local n=${1//-/_} dep
    [[ -n ${KO_SEEN[$n]:-} ]] && return 0
    KO_SEEN[$n]=1
    [[ -n ${KO_PATH[$n]:-} ]] || xenvm_die "module $1 not in $CACHE_DIR/modules"
    for dep in $(tr '\0' '\n' < "${KO_PATH[$n]}" | sed -n 's/^depends=//p' | tr ',' ' '); do
        add_module "$dep"
    done
    MOD_ORDER+=("${KO_PATH[$n]}")
}
for m in xen-privcmd xen-evtchn xenfs xen-gntdev virtio_pci virtio_blk \
         ${EXTRA_MODULES[@]+"${EXTRA_MODULES[@]}"}; do
    add_module "$m"
done
mkdir -p "$ROOT/lib/modules/xenvm"
mods_in_dom0=()
for ko in "${MOD_ORDER[@]}"; do
    cp "$ko" "$ROOT/lib/modules/xenvm/"
    mods_in_dom0+=("/lib/modules/xenvm/$(basename "$ko")")
done
xenvm_log "modules, in load order: $(printf '%s ' "${MOD_ORDER[@]##*/}")"

# Guests: built here, copied to /var/lib/xenvm/guests; the payload starts them.
read -r -a guest_list <<<"$GUESTS"
CACHE_DIR=$CACHE_DIR "$XENVM_DIR/mkguests.sh" "$ROOT/var/lib/xenvm/guests" \
    ${guest_list[@]+"${guest_list[@]}"}

# Configuration files.
mkdir -p "$ROOT/etc/xen" "$ROOT/etc/xenvm" "$ROOT/usr/lib/xenvm"
# autoballoon off: dom0 has a fixed 512M (dom0_mem=512M,max:512M); guests use free memory.
printf 'autoballoon="off"\n' > "$ROOT/etc/xen/xl.conf"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' > "$ROOT/etc/group"
install -m 0755 "$XENVM_DIR/dom0/init" "$ROOT/init"
install -m 0644 "$XENVM_DIR/dom0/lib.sh" "$ROOT/usr/lib/xenvm/lib.sh"
install -m 0755 "$PAYLOAD" "$ROOT/etc/xenvm/payload.sh"
cat > "$ROOT/etc/xenvm/config" <<EOF
# Written by tests/xen-vm/run.sh
XENVM_MODULES='${mods_in_dom0[*]}'
XENVM_HOST_TIMEOUT=$TIMEOUT
# QEMU starts seconds after this; the deadline errs early, which is the safe side.
XENVM_HOST_DEADLINE=$(( $(date +%s) + TIMEOUT ))
XENVM_PAYLOAD_TIMEOUT=$PAYLOAD_TIMEOUT
XENVM_RESERVE=60
EOF
: > "$ROOT/etc/xenvm/env"
for kv in ${ENVS[@]+"${ENVS[@]}"}; do
    [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || xenvm_die "--env wants KEY=VALUE, got '$kv'"
    v=${kv#*=}
    printf "export %s='%s'\n" "${kv%%=*}" "${v//\'/\'\\\'\'}" >> "$ROOT/etc/xenvm/env"
done

# busybox last, so its applet links never shadow a real tool copied above.
xenvm_install_busybox "$ROOT" "$CACHE_DIR/busybox"

xenvm_pack_cpio "$ROOT" "$WORK/initrd.cpio.gz"
xenvm_log "dom0 initramfs: $(du -k "$WORK/initrd.cpio.gz" | cut -f1) KiB"

# ---------------------------------------------------------------- boot
if [[ -z $XEN_CMDLINE ]]; then
    XEN_CMDLINE="console=com1 com1=115200,8n1 console_timestamps=boot"
    XEN_CMDLINE+=" dom0_mem=512M,max:512M dom0_max_vcpus=2 loglvl=all guest_loglvl=all"
    [[ $TBUF_SIZE == none ]] || XEN_CMDLINE+=" tbuf_size=$TBUF_SIZE"
fi
[[ -z $XEN_CMDLINE_EXTRA ]] || XEN_CMDLINE+=" $XEN_CMDLINE_EXTRA"
LINUX_CMDLINE="console=hvc0 earlyprintk=xen rdinit=/init"

truncate -s "${DISK_MB}M" "$WORK/results.img"

{
    echo "xen_version=$XENVM_XEN_VERSION"
    echo "kernel=$XENVM_KVER"
    echo "xen_cmdline=$XEN_CMDLINE"
    echo "linux_cmdline=$LINUX_CMDLINE"
    echo "payload=$(readlink -f "$PAYLOAD")"
    echo "timeout=$TIMEOUT"
    echo "bins=${BINS[*]+${BINS[*]}}"
} > "$OUT_DIR/run-info.txt"

t_boot=$(date +%s)
xenvm_log "booting Xen under QEMU/TCG (hard limit ${TIMEOUT}s; console: $CONSOLE)"
# Flags per shared/notes/real-xen-under-qemu.md: TCG (the host's KVM has no VMX/SVM),
# qemu64 (-cpu max crashes dom0 on SMAP), multiboot of the plain xen image with the dom0
# kernel and initramfs as modules, -no-reboot so Xen's reset after dom0's `reboot -f`
# ends QEMU with status 0.
timeout --kill-after=15 "$TIMEOUT" \
    qemu-system-x86_64 -accel tcg -cpu qemu64 -m 2G -smp 2 \
        -display none -monitor none -serial stdio -no-reboot \
        -kernel "$CACHE_DIR/xen" -append "$XEN_CMDLINE" \
        -initrd "$CACHE_DIR/vmlinuz $LINUX_CMDLINE,$WORK/initrd.cpio.gz" \
        -drive "file=$WORK/results.img,format=raw,if=virtio" \
    < /dev/null > "$CONSOLE" 2> "$OUT_DIR/qemu-stderr.log" &
qpid=$!
# Live progress: the init's and payload's XENVM lines (everything with --verbose).
if [[ $VERBOSE == 1 ]]; then
    tail -n +1 -F --pid="$qpid" "$CONSOLE" 2>/dev/null &
else
    tail -n +1 -F --pid="$qpid" "$CONSOLE" 2>/dev/null \
        | grep --line-buffered -a -E 'XENVM|Panic|panic|FATAL' &
fi
tailpid=$!
qrc=0
wait "$qpid" || qrc=$?
qpid=
wait "$tailpid" 2>/dev/null || true
t_end=$(date +%s)
echo "vm_seconds=$((t_end - t_boot))" >> "$OUT_DIR/run-info.txt"
echo "build_seconds=$((t_boot - t_start))" >> "$OUT_DIR/run-info.txt"
xenvm_log "VM finished with status $qrc after $((t_end - t_boot))s (build $((t_boot - t_start))s)"

show_tail() {
    echo "----- last 60 lines of $CONSOLE -----" >&2
    tail -n 60 "$CONSOLE" | tr -d '\r' >&2
    if [[ -f $OUT_DIR/xenvm/payload.log ]]; then
        echo "----- last 30 lines of $OUT_DIR/xenvm/payload.log -----" >&2
        tail -n 30 "$OUT_DIR/xenvm/payload.log" >&2
    fi
    [[ -s $OUT_DIR/qemu-stderr.log ]] && { echo "----- qemu stderr -----" >&2; cat "$OUT_DIR/qemu-stderr.log" >&2; }
    return 0
}

# ---------------------------------------------------------------- results
# The disk holds one tar written by dom0's /init (or nothing, if it never got there).
tar -xf "$WORK/results.img" -C "$OUT_DIR" 2>"$WORK/tar.err" || true

if ((qrc == 124 || qrc == 137)); then
    show_tail
    printf '[xen-vm] ERROR: VM timed out after %ss (qemu killed); partial results, if any, are in %s\n' \
        "$TIMEOUT" "$OUT_DIR" >&2
    exit 2
fi
if [[ ! -f $OUT_DIR/xenvm/status ]]; then
    show_tail
    printf '[xen-vm] ERROR: VM produced no results (qemu status %s)\n' "$qrc" >&2
    exit 3
fi
status=$(cat "$OUT_DIR/xenvm/status")
if [[ $status != none && $status != payload ]]; then
    show_tail
    printf '[xen-vm] ERROR: dom0 stage "%s" failed; see %s\n' "$status" "$CONSOLE" >&2
    exit 4
fi
prc=$(cat "$OUT_DIR/xenvm/payload.rc" 2>/dev/null || echo missing)
if [[ $prc != 0 ]]; then
    show_tail
    printf '[xen-vm] ERROR: payload failed (exit %s); log: %s/xenvm/payload.log\n' "$prc" "$OUT_DIR" >&2
    exit 5
fi
xenvm_log "OK: payload succeeded in $(cat "$OUT_DIR/xenvm/payload.seconds")s; results in $OUT_DIR"
