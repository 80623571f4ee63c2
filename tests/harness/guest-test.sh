#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# The PV test guest on real Xen (tests/guest, docs/guest.md): one dom0 boot
# (from the rootfs disk, Debian's Xen 4.17.5 toolstack) per hypervisor
# configuration, each hosting the guest cases in turn:
#   patched         bit 21 reported to both widths (the 32-bit guest gets it
#                   through the compat path of XENVER_get_features)
#   patched-no-bit  the bit hidden by the knob (pv=virt-p2m=no; the old series
#                   spells it virtual-p2m=no): clear in both widths
#   pristine        unpatched Xen: clear in both widths (the control)
# In every boot, for pv64 and pv32pae: created by stock xl (no
# SIF_VIRT_P2M_4TOOLS: the guest must keep its tree) and with the flag (the
# LD_PRELOAD shim: it must drop it).  Each case: the guest's result line,
# dom0's view of its shared_info, `hv-feature verify` consistent over every
# pfn (list = tree = M2P).
# Prints each case by name with outcome and time, and a final count.
# Usage: guest-test.sh BUILD_DIR
set -uo pipefail

BUILD=$1
HARNESS=$(dirname "$0")
GUEST="$BUILD/guest"
passed=0
failed=0
failures=()

# The knob that hides bit 21, as the patched tree spells it.
if grep -rqs '"virtual-p2m"' "$BUILD/xen-patched/xen/common" "$BUILD/xen-patched/xen/arch/x86"; then
    NO_BIT="virtual-p2m=no"
else
    NO_BIT="pv=virt-p2m=no"
fi

# cases BIT: the --run lines of one boot; bit 21 expected BIT (0/1).
cases() {
    local bit=$1 w k sif name
    for w in 64 32; do
        k=guest-pv64; [ "$w" = 32 ] && k=guest-pv32pae
        for sif in 0 1; do
            name="${k#guest-}-$([ "$sif" = 1 ] && echo sif || echo stock)"
            echo "guest-case $name $k $([ "$sif" = 1 ] && echo --sif-virt-p2m)" \
                 "--expect width=$w --expect bit21=$bit" \
                 "--expect tree=$([ "$sif" = 1 ] && echo dropped || echo kept)"
        done
    done
}

run_boot() {   # run_boot NAME XEN OPTS BIT
    local name=$1 xen=$2 opts=$3 bit=$4 out runs=() r
    while read -r r; do runs+=(--run "$r"); done < <(cases "$bit")
    out="$BUILD/logs/guest-$name.out"
    mkdir -p "$BUILD/logs"
    "$HARNESS/boot.sh" --build "$BUILD" --xen "$xen" --xen-opts "$opts" --timeout 900 \
        --disk "$BUILD/images/rootfs.ext4" --mem 1024 "${runs[@]}" "guest-$name" \
        "$BUILD/bin/hv-feature" "$GUEST/guest-pv64" "$GUEST/guest-pv32pae" \
        tests/guest/guest-case | tee "$out" | sed "s/^CASE /CASE $name\//"
    local rc=${PIPESTATUS[0]} p f
    p=$(grep -c '^CASE .*: PASSED' "$out")
    f=$(grep -c '^CASE .*: FAILED' "$out")
    passed=$((passed + p))
    failed=$((failed + f))
    while read -r r; do failures+=("$name/${r#CASE }"); done < <(grep '^CASE .*: FAILED' "$out")
    # Every case must have run: a boot that died early fails the missing ones.
    local want
    want=$(cases "$bit" | wc -l)
    if [ $((p + f)) -lt "$want" ]; then
        failed=$((failed + want - p - f))
        failures+=("$name: $((want - p - f)) case(s) did not run: $(grep '^BOOT .*FAILED' "$out" | tail -n1)")
    elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        failed=$((failed + 1))
        failures+=("$name: $(grep '^BOOT .*FAILED' "$out" | tail -n1)")
    fi
}

run_boot patched "$BUILD/images/xen-patched" "" 1
run_boot patched-no-bit "$BUILD/images/xen-patched" "$NO_BIT" 0
run_boot pristine "$BUILD/images/xen-pristine" "" 0

echo
for f in "${failures[@]}"; do echo "guest-test: FAILED $f"; done
echo "guest tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
