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
# stock xl of our patched toolstack: it must drop it).  Each case: the guest's result line,
# dom0's view of its shared_info, `hv-feature verify` consistent over every
# pfn (list = tree = M2P).
# The hostile images (build/guest/images/*.img from tests/guest/images/*.desc)
# run in the patched boot, each in a guest of its width: `hv-feature verify`
# must exit 1 within 10 s and 64 MiB, and be consistent again once the guest
# restores its honest fields (images naming another domain's frame get one of
# dom0 and one of a second domU at run time, --frames).  Then the races
# (pv64-race, pv32pae-race): the guest moves a list page every 50 ms while
# dom0 runs verify; and the tear cases (pv64-tear, pv32pae-tear): states A
# and B that differ in every list page, raced five ways (bumped, no bumps,
# ABA, one L2 entry with and without bumps) while dom0 reads the list and
# compares each read with both, then a page ballooned out and in during
# verify (docs/guest.md).  At the end of each boot, dom0's own
# verify must still be consistent (dom0 unharmed).
# Prints each case by name with outcome and time, and a final count.
# Usage: guest-test.sh BUILD_DIR [--image DESC...]
#   --image DESC...  only the patched boot, with just these images (built from
#                    the descriptions with tests/guest/mkimage.py)
set -uo pipefail

BUILD=$1
HARNESS=$(dirname "$0")
GUEST="$BUILD/guest"
ONLY=""
if [ "${2:-}" = --image ]; then
    shift 2
    [ $# -gt 0 ] || { echo "guest-test: --image needs description files" >&2; exit 2; }
    rm -rf "$GUEST/custom"
    mkdir -p "$GUEST/custom"
    for desc in "$@"; do
        img="$GUEST/custom/$(basename "$desc" .desc).img"
        python3 tests/guest/mkimage.py "$desc" "$img" || exit 2
        ONLY="$ONLY $img"
    done
fi
passed=0
failed=0
failures=()

# The knob that hides bit 21, as the patched tree spells it.
if grep -rqs --include='*.c' '"virtual-p2m"' "$BUILD/xen-patched/xen/common" "$BUILD/xen-patched/xen/arch/x86"; then
    NO_BIT="virtual-p2m=no"
else
    NO_BIT="pv=virt-p2m=no"
fi

# The guest kernel for an image of width 64 or 32 (from its header).
image_kernel() {
    case "$(od -An -tu4 -j12 -N4 "$1" | tr -d ' ')" in
        8) echo guest-pv64 ;;
        4) echo guest-pv32pae ;;
        *) echo "guest-test: $1 is not an image (no width)" >&2; return 1 ;;
    esac
}

# image_cases IMG...: the --run lines of hostile images, one guest per
# width holding all of them (one CASE line per image).
image_cases() {
    local w k img imgs frames
    for w in 64 32; do
        k=guest-pv64
        [ "$w" = 32 ] && k=guest-pv32pae
        imgs=""
        for img in "$@"; do
            [ "$(image_kernel "$img")" = "$k" ] && imgs="$imgs /vp2m/bin/$(basename "$img")"
        done
        # Images naming other domains' frames get them at run time (--frames).
        case "$imgs" in *frame-other-*) frames=" --frames" ;; *) frames="" ;; esac
        [ -z "$imgs" ] || echo "guest-case images-${k#guest-} $k --images \"${imgs# }\" --expect mode=image$frames"
    done
}
# The number of CASE lines the run lines of one boot print.
count_cases() {   # count_cases BIT [images]
    local n=0 line modes
    # One per guest, plus --tear's states and modes and --balloon's.
    while read -r line; do
        case "$line" in *--images*) continue ;; esac
        n=$((n + 1))
        case "$line" in
            *'--tear "'*) modes=${line#*--tear \"}; read -ra modes <<< "${modes%%\"*}"
                          n=$((n + 1 + ${#modes[@]})) ;;
        esac
        case "$line" in *--balloon*) n=$((n + 1)) ;; esac
    done < <(cases "$@")
    if [ -n "$ONLY" ]; then
        # shellcheck disable=SC2086
        set -- $ONLY
        n=$((n + $#))
    elif [ "${2:-}" = images ]; then
        n=$((n + $(ls "$GUEST"/images/*.img | wc -l)))
    fi
    echo "$n"
}

# cases BIT [images]: the --run lines of one boot; bit 21 expected BIT (0/1).
cases() {
    local bit=$1 w k sif name
    # shellcheck disable=SC2086 # the image paths are single words
    if [ -n "$ONLY" ]; then image_cases $ONLY; return; fi
    if [ "${2:-}" = images ]; then
        image_cases "$GUEST"/images/*.img
        echo "guest-case pv64-race guest-pv64 --race 6 --expect width=64 --expect bit21=$bit"
        echo "guest-case pv32pae-race guest-pv32pae --race 6 --expect width=32 --expect bit21=$bit"
        # States A and B, the tear races (T U A L M) and the balloon race.
        echo "guest-case pv64-tear guest-pv64 --tear \"T U A L M\" 6 --balloon 6 --expect width=64"
        echo "guest-case pv32pae-tear guest-pv32pae --tear \"T U A L M\" 6 --balloon 6 --expect width=32"
    fi
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

run_boot() {   # run_boot NAME XEN OPTS BIT [images]
    local name=$1 xen=$2 opts=$3 bit=$4 with=${5:-} out runs=() r
    while read -r r; do runs+=(--run "$r"); done < <(cases "$bit" "$with")
    runs+=(--run "hv-feature verify 0")
    out="$BUILD/logs/guest-$name.out"
    mkdir -p "$BUILD/logs"
    "$HARNESS/boot.sh" --build "$BUILD" --xen "$xen" --xen-opts "$opts" --timeout 1800 \
        --disk "$BUILD/images/rootfs.ext4" --mem 1024 "${runs[@]}" "guest-$name" \
        "$BUILD/bin/hv-feature" "$GUEST/guest-pv64" "$GUEST/guest-pv32pae" \
        tests/guest/guest-case "$GUEST"/images/*.img $ONLY | tee "$out" | sed -u "s/^CASE /CASE $name\//"
    local rc=${PIPESTATUS[0]} p f
    p=$(grep -c '^CASE .*: PASSED' "$out")
    f=$(grep -c '^CASE .*: FAILED' "$out")
    passed=$((passed + p))
    failed=$((failed + f))
    while read -r r; do failures+=("$name/${r#CASE }"); done < <(grep '^CASE .*: FAILED' "$out")
    # Every case must have run: a boot that died early fails the missing ones.
    local want
    want=$(count_cases "$bit" "$with")
    if [ $((p + f)) -lt "$want" ]; then
        failed=$((failed + want - p - f))
        failures+=("$name: $((want - p - f)) case(s) did not run: $(grep '^BOOT .*FAILED' "$out" | tail -n1)")
    elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        failed=$((failed + 1))
        failures+=("$name: $(grep '^BOOT .*FAILED' "$out" | tail -n1)")
    fi
}

run_boot patched "$BUILD/images/xen-patched" "" 1 images
[ -z "$ONLY" ] || { echo "guest tests: $passed passed, $failed failed"; [ "$failed" = 0 ]; exit; }
run_boot patched-no-bit "$BUILD/images/xen-patched" "$NO_BIT" 0
run_boot pristine "$BUILD/images/xen-pristine" "" 0

echo
for f in "${failures[@]}"; do echo "guest-test: FAILED $f"; done
echo "guest tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
