#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# One kdump boot: Xen with crashkernel=256M, dom0 from the rootfs disk
# loads the crash kernel (Debian's kexec-tools), saves its live p2m to a
# scratch disk and crashes; Xen starts the crash kernel, which copies
# /proc/vmcore to the scratch disk.  Then the host takes both off the disk:
#   $BUILD/kdump/NAME/vmcore       the host crash dump (ELF64, machine addresses)
#   $BUILD/kdump/NAME/p2m-live.bin dom0's p2m as dom0 read it before the crash
#                                  (`hv-feature p2m 0 --entries-out`: one
#                                  little-endian u64 per pfn)
#   $BUILD/kdump/NAME/xen-syms     the symbols of the Xen image that ran
#   $BUILD/kdump/NAME/boot.out     boot.sh's output; times: seconds taken
# Scratch disk (raw, the host creates it empty):
#   byte 0        "VP2M-KDUMP-SCRATCH 1\n"  label written by the host
#   byte 4096     "VP2M-KDUMP-P2M <bytes>\n" written by dom0 after the entries
#   byte 8192     "VP2M-KDUMP-VMCORE <bytes>\n" written by the crash kernel
#                                             after the dump
#   1 MiB         dom0's p2m entries (at most 63 MiB)
#   64 MiB        /proc/vmcore
# Usage: kdump-boot.sh BUILD_DIR NAME XEN_IMAGE "XEN_OPTIONS"
# Exit status: 0 dump and p2m taken off; 1 the boot or the copy failed.
set -uo pipefail

BUILD=$1
NAME=$2
XEN=$3
OPTS=$4
HARNESS=$(cd "$(dirname "$0")" && pwd)
# QEMU's memory: Xen and its crash region (256 MiB), dom0 (DOM0_MEM).
MEM=${KDUMP_MEM:-640}
DOM0_MEM=${KDUMP_DOM0_MEM:-256M}
TIMEOUT=${KDUMP_TIMEOUT:-600}
K="$BUILD/images/kdump"
OUT="$BUILD/kdump/$NAME"
fail() { echo "kdump-boot $NAME: FAILED: $1"; exit 1; }

for f in "$XEN" "$XEN.syms" "$BUILD/images/rootfs.ext4" "$BUILD/images/vmlinuz" \
         "$K/kexec" "$K/crash-initrd.gz" "$BUILD/bin/hv-feature"; do
    [ -f "$f" ] || fail "$f missing; run 'make kdump-images rootfs tools xen'"
done
rm -rf "$OUT"
mkdir -p "$OUT"
SCRATCH="$OUT/scratch.img"
truncate -s $(( 64 + MEM + 64 ))M "$SCRATCH"
printf 'VP2M-KDUMP-SCRATCH 1\n' | dd of="$SCRATCH" conv=notrunc status=none
cp "$XEN.syms" "$OUT/xen-syms"
cp "$HARNESS/kdump/dom0-crash" "$OUT/vp2m-kdump-crash"

start=$(date +%s)
"$HARNESS/boot.sh" --build "$BUILD" --xen "$XEN" --disk "$BUILD/images/rootfs.ext4" \
    --mem "$MEM" --scratch "$SCRATCH" --kdump --timeout "$TIMEOUT" \
    --xen-opts "dom0_mem=$DOM0_MEM,max:$DOM0_MEM crashkernel=256M $OPTS" \
    --run vp2m-kdump-crash "$NAME" "$OUT/vp2m-kdump-crash" "$BUILD/bin/hv-feature" \
    "$K/kexec" "$BUILD/images/vmlinuz" "$K/crash-initrd.gz" | tee "$OUT/boot.out"
rc=${PIPESTATUS[0]}
booted=$(date +%s)
[ "$rc" = 0 ] || { rm -f "$SCRATCH"; fail "the kdump boot failed (exit $rc, see $OUT/boot.out)"; }

# record SECTOR TAG: the byte count of the record "TAG <bytes>" at SECTOR.
record() {
    local line n
    line=$(dd if="$SCRATCH" bs=512 skip="$1" count=1 status=none | head -n1 | tr -d '\0')
    n=${line#"$2 "}
    [ "$line" != "$n" ] && [ -n "$n" ] && [ -z "${n//[0-9]/}" ] || return 1
    echo "$n"
}
p2m_bytes=$(record 8 VP2M-KDUMP-P2M) || fail "no p2m record on the scratch disk (dom0 did not save its p2m)"
core_bytes=$(record 16 VP2M-KDUMP-VMCORE) || fail "no vmcore record on the scratch disk (the crash kernel saved no dump)"
[ "$p2m_bytes" -le $(( 63 << 20 )) ] && [ $(( p2m_bytes % 8 )) = 0 ] || fail "p2m record claims $p2m_bytes bytes"
[ $(( core_bytes + (64 << 20) )) -le "$(stat -c %s "$SCRATCH")" ] || fail "vmcore record claims $core_bytes bytes, more than the disk holds"
dd if="$SCRATCH" of="$OUT/p2m-live.bin" iflag=skip_bytes,count_bytes skip=$(( 1 << 20 )) \
    count="$p2m_bytes" status=none || fail "cannot copy the p2m off $SCRATCH"
dd if="$SCRATCH" of="$OUT/vmcore" bs=1M iflag=skip_bytes,count_bytes skip=$(( 64 << 20 )) \
    count="$core_bytes" conv=sparse status=none || fail "cannot copy the dump off $SCRATCH"
rm -f "$SCRATCH"
done_at=$(date +%s)
printf 'boot %s\ncopy %s\nvmcore_bytes %s\np2m_entries %s\n' $(( booted - start )) \
    $(( done_at - booted )) "$core_bytes" $(( p2m_bytes / 8 )) > "$OUT/times"
echo "kdump-boot $NAME: $OUT/vmcore ($(( core_bytes >> 20 )) MiB), $OUT/p2m-live.bin ($(( p2m_bytes / 8 )) entries); boot $(( booted - start ))s, copy off $(( done_at - booted ))s"
