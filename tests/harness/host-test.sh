#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# The real-Xen part of `make test`: boot each configuration in QEMU and run
# the xen-host-tests binary in its dom0 with what that boot must show.
#   patched                 bit 21 set, dom0 keeps its tree (every test)
#   pristine                unpatched Xen has no bit 21 (the test can fail)
#   patched-dom0-virt-p2m   dom0=virt-p2m: dom0 drops its tree (~0) and the
#                           reader takes the list alone
#   patched-no-virt-p2m     pv=virt-p2m=no turns the support off: no bit 21,
#                           and dom0=virt-p2m is ignored (dom0 keeps its tree)
#   patched-balloon         dom0 grows past its maximum: Linux adds p2m pages
#   patched-domu            dom0 from the rootfs disk, daemons and xl of the
#                           toolstack built from build/xen-patched; PV domUs
#                           made with a stock xl create of each toolstack:
#                           patched: SIF_VIRT_P2M_4TOOLS in start info, tree
#                           dropped, list alone = M2P; xl dump-core read back
#                           by hv-feature core, xl mem-set, xl save/restore
#                           keeps the flag; pristine and Debian's (the
#                           controls): no flag, tree kept; restore by the
#                           pristine toolstack drops the flag, by ours sets it
# Prints every test's line, and at the end the summed counts.
# Usage: host-test.sh BUILD_DIR
set -uo pipefail

BUILD=$1
HARNESS=$(dirname "$0")
BIN="$BUILD/bin"
total_passed=0
total_failed=0
failures=()
# Extra boot.sh options and the time limit for the next run_boot.
BOOT_ARGS=()
BOOT_TIMEOUT=300

run_boot() {
    local name=$1 xen=$2 opts=$3 out
    shift 3
    local runs=()
    for r in "$@"; do runs+=(--run "$r"); done
    out="$BUILD/logs/$name.out"
    mkdir -p "$BUILD/logs"
    "$HARNESS/boot.sh" --build "$BUILD" --xen "$xen" --xen-opts "$opts" --timeout "$BOOT_TIMEOUT" \
        "${BOOT_ARGS[@]}" "${runs[@]}" "$name" "$BIN/host-tests" "$BIN/hv-feature" | tee "$out"
    local rc=${PIPESTATUS[0]}
    local p f
    p=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$out" | awk '{s+=$1} END {print s+0}')
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    if [ "$rc" != 0 ]; then
        [ "$f" -gt 0 ] || total_failed=$((total_failed + 1))
        failures+=("$name: $(grep '^BOOT .*FAILED' "$out" | tail -n1)")
        local t
        while read -r t; do failures+=("$name: $t"); done < <(grep -E '^test .* FAILED$' "$out")
    fi
}

T="host-tests --test-threads=1"
run_boot patched "$BUILD/images/xen-patched" "" \
    "VP2M_EXPECT_VIRTUAL_P2M=1 VP2M_EXPECT_DOM0_TREE=present $T"
# Linux gives dom0 real leaves up to max: at boot, so only growth past max
# adds p2m pages: boot without headroom and let the tests raise max.
run_boot patched-balloon "$BUILD/images/xen-patched" "dom0_mem=512M,max:512M" \
    "$T --ignored balloon::" "hv-feature verify 0"
run_boot pristine "$BUILD/images/xen-pristine" "" \
    "VP2M_EXPECT_VIRTUAL_P2M=0 $T features::"
run_boot patched-dom0-virt-p2m "$BUILD/images/xen-patched" "dom0=virt-p2m" \
    "VP2M_EXPECT_VIRTUAL_P2M=1 VP2M_EXPECT_DOM0_TREE=dropped $T"
# pv=virt-p2m=no also disables dom0=virt-p2m: dom0 must keep its tree.
run_boot patched-no-virt-p2m "$BUILD/images/xen-patched" "pv=virt-p2m=no dom0=virt-p2m" \
    "VP2M_EXPECT_VIRTUAL_P2M=0 VP2M_EXPECT_DOM0_TREE=present $T"
# The domUs (96 MiB each), one per toolstack; the tests dump, balloon, save
# and restore them.  vp2m-toolstack NAME runs a command with NAME's xl.
BOOT_ARGS=(--disk "$BUILD/images/rootfs.ext4" --mem 1536 --dom0-opts vp2m.toolstack=patched)
BOOT_TIMEOUT=1800
D="--nocapture --ignored"
run_boot patched-domu "$BUILD/images/xen-patched" "" \
    "vp2m-domu-start vp2m-domu memory=96" \
    "vp2m-toolstack pristine vp2m-domu-start vp2m-domu-pristine memory=96" \
    "vp2m-toolstack debian vp2m-domu-start vp2m-domu-debian memory=96" \
    "hv-feature verify \$(xl domid vp2m-domu)" \
    "hv-feature verify \$(xl domid vp2m-domu-pristine)" \
    "VP2M_DOMU=vp2m-domu VP2M_EXPECT_SIF=set VP2M_EXPECT_RESTORED_SIF=set $T $D domu::" \
    "VP2M_DOMU=vp2m-domu-pristine VP2M_EXPECT_SIF=clear $T $D domu::domu_" \
    "VP2M_DOMU=vp2m-domu-debian VP2M_EXPECT_SIF=clear $T $D domu::domu_" \
    "vp2m-toolstack pristine env VP2M_DOMU=vp2m-domu VP2M_EXPECT_RESTORED_SIF=clear $T $D domu::save_restore" \
    "VP2M_DOMU=vp2m-domu-pristine VP2M_EXPECT_RESTORED_SIF=set $T $D domu::save_restore"
BOOT_ARGS=()
BOOT_TIMEOUT=300

echo
for f in "${failures[@]}"; do echo "host-test: FAILED $f"; done
echo "host tests: $total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ] && [ "${#failures[@]}" = 0 ]
