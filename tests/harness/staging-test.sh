#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# The series on upstream staging, checked against a Xen developer's own tree:
#   - xen-patches/staging applies with `git am` and `patch -p1` without fuzz
#     or offsets; no sign-off, the placeholder author
#   - the pristine and the patched hypervisor build (defconfig); Xen's own
#     public header checks (headers*.chk) and reference.size pass
#   - `xen-abi diff` pristine -> patched is exactly the series' additions
#   - xen-sys builds against both trees, its domctl layout and the items it
#     defines itself equal that tree's (bindgen, C compiler)
#   - boots of both with the busybox dom0 and the project's one static
#     hv-feature / host-tests (built against 4.17.5): bit 21 only on the
#     patched Xen, pv=virt-p2m=no hides it, dom0=virt-p2m makes dom0 drop
#     its tree, `hv-feature features`, `info 0` and `verify 0` exit 0
# One named line per check, then "staging-test: N passed, N failed".
# Everything is cached in BUILD/staging, keyed by the source and the series.
# Usage: staging-test.sh BUILD_DIR PATCH_DIR XEN_SRC
#   XEN_SRC  an unpatched staging tree: a git checkout (its HEAD is used), a
#            plain directory, or a tarball with the tree in one top folder
set -uo pipefail

BUILD=$(mkdir -p "$1" && cd "$1" && pwd)
PATCHES=$(cd "$2" && pwd)
SRC=$3
HARNESS=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HARNESS/../.." && pwd)
S="$BUILD/staging"
mkdir -p "$S/images" "$BUILD/logs"
passed=0
failed=0
ok()   { echo "staging-test: ok   $*"; passed=$((passed + 1)); }
bad()  { echo "staging-test: FAIL $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
die()  { echo "staging-test: $*" >&2; exit 2; }
finish() {
    echo "staging-test: $passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit $?
}

# ---- The source: identify it, lay out the pristine tree -------------------
series=$(grep -v '^\s*\(#\|$\)' "$PATCHES/series") || die "$PATCHES/series missing"
if [ -d "$SRC" ] && git -C "$SRC" rev-parse --verify -q HEAD >/dev/null 2>&1 \
   && [ "$(git -C "$SRC" rev-parse --show-toplevel)" = "$(cd "$SRC" && pwd -P)" ]; then
    kind=git
    src_id="git $(git -C "$SRC" rev-parse HEAD)"
    [ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] \
        || echo "staging-test: note: $SRC has uncommitted changes; its HEAD is tested"
elif [ -d "$SRC" ]; then
    kind=dir
    src_id="dir $(cd "$SRC" && find . -path ./.git -prune -o -type f -printf '%P %s %T@\n' | sort | sha256sum | cut -c1-16)"
elif [ -f "$SRC" ]; then
    kind=tar
    src_id="tar $(sha256sum < "$SRC" | cut -c1-16)"
else
    die "XEN_SRC=$SRC is neither a Xen tree nor a tarball of one"
fi
patch_id=$(cd "$PATCHES" && cat series $series | sha256sum | cut -c1-16)
echo "staging-test: source $SRC ($src_id), series $PATCHES ($patch_id)"

unpack() {
    local dest=$1 tmp="$1.tmp"
    rm -rf "$tmp" "$dest"
    mkdir -p "$tmp"
    case $kind in
        git) git -C "$SRC" archive HEAD | tar -x -C "$tmp" ;;
        dir) (cd "$SRC" && tar -c --exclude-vcs .) | tar -x -C "$tmp" ;;
        tar) tar -xf "$SRC" -C "$tmp" || return 1
             # One top folder (as git archive --prefix makes): take its contents.
             local top
             top=$(find "$tmp" -mindepth 1 -maxdepth 1)
             if [ "$(echo "$top" | wc -l)" = 1 ] && [ -d "$top" ]; then
                 mv "$top" "$tmp.inner" && rmdir "$tmp" && mv "$tmp.inner" "$tmp"
             fi ;;
    esac
    [ -f "$tmp/xen/Makefile" ] && [ -f "$tmp/xen/include/public/xen.h" ] || return 1
    mv "$tmp" "$dest"
}

if [ "$(cat "$S/pristine/.key" 2>/dev/null)" != "$src_id" ]; then
    echo "staging-test: unpacking the pristine tree into $S/pristine"
    unpack "$S/pristine" || die "$SRC holds no Xen tree (no xen/Makefile, xen/include/public/xen.h)"
    echo "$src_id" > "$S/pristine/.key"
fi
ver=$(make -s -C "$S/pristine/xen" xenversion 2>/dev/null)
echo "staging-test: Xen $ver"

# ---- The series ------------------------------------------------------------
listed=$(echo "$series" | sort)
present=$(cd "$PATCHES" && ls -- *.patch | sort)
[ "$listed" = "$present" ] && ok "series lists every patch in $(basename "$PATCHES")" \
    || bad "series and the .patch files of $PATCHES differ"
for p in $series; do
    if grep -q '^Signed-off-by: ' "$PATCHES/$p"; then
        bad "$p: carries a Signed-off-by; only a submitter adds one (git am -s)"
    elif ! grep -qx 'From: xen-virtual-p2m series <series@xen-virtual-p2m.invalid>' "$PATCHES/$p"; then
        bad "$p: From: is not the series' placeholder author"
    else
        ok "$p: no sign-off, placeholder author"
    fi
done

# git am on a git copy of the pristine tree (made once per source).
AM="$S/am"
if [ "$(cat "$AM/.key" 2>/dev/null)" != "$src_id" ]; then
    rm -rf "$AM"
    cp -a "$S/pristine" "$AM"
    (cd "$AM" && git init -q && git add -A -f && \
     git -c user.name=base -c user.email=base@example.org commit -qm base) >/dev/null \
        || die "cannot make a git copy of the pristine tree in $AM"
    echo "$src_id" > "$AM/.key"
fi
am_ok=1
(cd "$AM" && git am --abort >/dev/null 2>&1; git reset -q --hard "$(git rev-list --max-parents=0 HEAD)" && git clean -qfdx -e .key)
for p in $series; do
    if ! (cd "$AM" && git -c user.name=Submitter -c user.email=submitter@example.org am -q -s "$PATCHES/$p") >"$S/am.log" 2>&1; then
        bad "git am $p: $(head -n3 "$S/am.log" | tr '\n' ' ')"
        am_ok=0
        break
    fi
done
[ "$am_ok" = 1 ] && ok "series applies with git am (and git am -s signs it)"

# The patched tree: patch -p1, refusing fuzz and offsets, on a fresh copy
# every run; the copy replaces the (built) patched tree only when the
# source or the series changed.
P="$S/patched"
unpack "$P.new" || die "cannot unpack $SRC again"
for p in $series; do
    out=$(patch -p1 -F0 -N --no-backup-if-mismatch -d "$P.new" < "$PATCHES/$p" 2>&1)
    if [ $? -ne 0 ] || echo "$out" | grep -qiE 'offset|fuzz'; then
        bad "patch -p1 $p: $(echo "$out" | grep -iE 'offset|fuzz|fail|reject' | head -n2 | tr '\n' ' ')"
        finish
    fi
done
if [ "$(cat "$P/.key" 2>/dev/null)" != "$src_id $patch_id" ]; then
    rm -rf "$P"
    mv "$P.new" "$P"
    echo "$src_id $patch_id" > "$P/.key"
else
    rm -rf "$P.new"
fi
ok "series applies with patch -p1 without fuzz or offsets"
if [ "$am_ok" = 1 ]; then
    changed=$(cd "$AM" && git diff --name-only "$(git rev-list --max-parents=0 HEAD)" HEAD)
    same=1
    for f in $changed; do cmp -s "$AM/$f" "$P/$f" || { same=0; echo "  differs: $f"; }; done
    [ "$same" = 1 ] && ok "git am and patch -p1 give the same files ($(echo "$changed" | wc -w) changed)" \
        || bad "git am and patch -p1 give different files"
fi

# ---- Build both hypervisors (cached per tree key) --------------------------
build() {
    local tree=$1 image=$2
    if [ -f "$image" ] && [ "$(cat "$image.key" 2>/dev/null)" = "$(cat "$tree/.key")" ]; then
        return 0
    fi
    touch "$tree/.extracted"
    local t0=$(date +%s)
    "$HARNESS/xen-build.sh" "$tree" "$image" || return 1
    cp "$tree/.key" "$image.key"
    echo "staging-test: built $image in $(( $(date +%s) - t0 ))s"
}
check "pristine hypervisor builds ($S/images/xen-pristine)" build "$S/pristine" "$S/images/xen-pristine"
check "patched hypervisor builds ($S/images/xen-patched)" build "$P" "$S/images/xen-patched"

# ---- Xen's header checks ------------------------------------------------------
for chk in headers.chk headers99.chk headers++.chk; do
    check "Xen's public header check $chk passed in the patched build" test -f "$P/xen/include/$chk"
done
# tools/include/xen-foreign: the sizes the tools build checks (python3, gcc).
reference_size() {
    local tree=$1 d="$S/xen-foreign-$2"
    local pub="$tree/xen/include/public"
    rm -rf "$d"; cp -a "$tree/tools/include/xen-foreign" "$d"
    (
        cd "$d" || exit 1
        for a in x86_32 x86_64 arm32 arm64; do
            case $a in
                x86_*) hs="$pub/arch-x86/xen-$a.h $pub/arch-x86/xen.h $pub/xen.h" ;;
                arm*) hs="$pub/arch-arm.h $pub/xen.h" ;;
            esac
            python3 mkheader.py "$a" "$a.h.tmp" $hs || exit 1
            sed 's/(__align8__ \(uint64_t\))/(\1)/g' < "$a.h.tmp" > "$a.h" || exit 1
        done
        python3 mkchecker.py checker.c arm32 arm64 x86_32 x86_64 || exit 1
        gcc -D__XEN_TOOLS__ -o checker checker.c || exit 1
        ./checker > tmp.size && diff -u reference.size tmp.size
    ) > "$d.log" 2>&1
}
check "reference.size matches the patched headers (tools/include/xen-foreign)" reference_size "$P" patched

# ---- Header ABI: exactly the series' additions ------------------------------
abi_log="$S/abi-diff.log"
(cd "$ROOT" && cargo run --release -q --locked -p xen-abi -- diff "$S/pristine" "$P" \
    --expect XENFEAT_virtual_p2m=21 \
    --expect XEN_ELFNOTE_CRASH_DOM0_P2M=16777219 \
    --expect XEN_CRASH_DOM0_P2M_VERSION=1 \
    --expect XEN_CRASH_DOM0_P2M_PV=1 \
    --expect XEN_CRASH_DOM0_P2M_COMPAT=2 \
    --expect "struct xen_crash_dom0_p2m" \
    --expect "typedef xen_crash_dom0_p2m_t") > "$abi_log" 2>&1
abi_rc=$?
if [ "$abi_rc" = 0 ]; then
    ok "xen-abi diff pristine -> patched: exactly the feature bit, the crash note and its struct ($(tail -n1 "$abi_log"))"
else
    grep -iE 'fail|unexpected|missing' "$abi_log" | head -n8 | sed 's/^/  /'
    bad "xen-abi diff pristine -> patched (exit $abi_rc, see $abi_log)"
fi

# ---- xen-sys against both trees ------------------------------------------------
# xen-sys's `xen-tree` feature generates the bindings from XEN_TREE instead
# of using the committed ones (4.17.5); own target folders.
crates() {
    local tree=$1 name=$2 log="$S/crates-$2.log"
    (
        cd "$ROOT" && export XEN_TREE="$tree" CARGO_TARGET_DIR="$S/target-$name" &&
        cargo test -q --locked -p xen-p2m-sys --features xen-tree &&
        cargo check -q --locked -p hv-feature --features xen-sys/xen-tree
    ) > "$log" 2>&1
}
check "xen-sys tests (domctl layout and own items vs bindgen and C) and hv-feature build against the pristine tree" \
    crates "$S/pristine" pristine
check "xen-sys tests and hv-feature build against the patched tree" crates "$P" patched

# ---- Boots: the project's one static hv-feature on both hypervisors ---------
BIN="$BUILD/bin"
for f in "$BIN/hv-feature" "$BIN/host-tests" "$BUILD/images/vmlinuz" "$BUILD/images/initrd-base.cpio.gz"; do
    [ -f "$f" ] || die "$f missing; run 'make tools images'"
done
HT="host-tests --test-threads=1"
# boot NAME IMAGE OPTS ENV: hv-feature's three commands, then the host tests
# with the expectations in ENV.
boot() {
    local name=$1 image=$2 opts=$3 env=$4
    "$HARNESS/boot.sh" --build "$BUILD" --xen "$image" --xen-opts "$opts" --timeout 600 \
        --run 'hv-feature --json features' --run 'hv-feature --json info 0' \
        --run 'hv-feature --json verify 0' --run "$env $HT" \
        "$name" "$BIN/hv-feature" "$BIN/host-tests" > "$BUILD/logs/$name.out"
    echo "$?" > "$BUILD/logs/$name.rc"
    grep -E '^BOOT ' "$BUILD/logs/$name.out" | tail -n1 | sed 's/^/  /'
}
# out NAME CMD: what CMD printed in boot NAME; rc NAME CMD: its exit status.
out() { tr -d '\r' < "$BUILD/logs/$1.out" | sed -n "/^VP2M-RUN: $2\$/,/^VP2M-EXIT: /p" | sed '1d;$d'; }
rc() { tr -d '\r' < "$BUILD/logs/$1.out" | sed -n "s/^VP2M-EXIT: \([0-9]*\) $2\$/\1/p" | head -n1; }
json() { out "$1" "$2" | grep -m1 '^{' | python3 -c "import json,sys; d=json.load(sys.stdin); print($3)" 2>/dev/null; }
exits0() { [ "$(rc "$1" "$2")" = 0 ]; }
bit21() { [ "$(json "$1" 'hv-feature --json features' 'd["virtual_p2m"]')" = "$2" ]; }
staging_xen() { json "$1" 'hv-feature --json features' 'd["xen_version"]' | grep -q "^$ver"; }
all_named() { [ "$(json "$1" 'hv-feature --json features' 'sum(b["name"] is None for b in d["bits"])')" = 0 ]; }
tree() {
    local root
    root=$(json "$1" 'hv-feature --json info 0' 'd["pfn_to_mfn_frame_list_list"]')
    case $2 in
        dropped) [ "$root" = 18446744073709551615 ] ;;
        present) [ -n "$root" ] && [ "$root" != 0 ] && [ "$root" != 18446744073709551615 ] ;;
    esac
}
consistent() { exits0 "$1" 'hv-feature --json verify 0' && [ "$(json "$1" 'hv-feature --json verify 0' 'd["consistent"]')" = True ]; }
host_tests() {
    local line
    line=$(tr -d '\r' < "$BUILD/logs/$1.out" | grep -m1 '^test result: ')
    echo "  $1: $line"
    echo "$line" | grep -q '^test result: ok\. [1-9][0-9]* passed; 0 failed'
}
booted() { [ "$(cat "$BUILD/logs/$1.rc")" != 2 ]; }
boot_checks() {
    local name=$1 want_bit=$2 want_tree=$3
    check "$name: boots to dom0 and runs the programs" booted "$name"
    check "$name: runs Xen $ver" staging_xen "$name"
    check "$name: hv-feature features exits 0" exits0 "$name" 'hv-feature --json features'
    check "$name: every reported XENFEAT bit is named" all_named "$name"
    check "$name: bit 21 (XENFEAT_virtual_p2m) $([ "$want_bit" = True ] && echo reported || echo 'not reported')" \
        bit21 "$name" "$want_bit"
    check "$name: hv-feature info 0 exits 0" exits0 "$name" 'hv-feature --json info 0'
    check "$name: dom0's p2m tree $want_tree" tree "$name" "$want_tree"
    check "$name: hv-feature verify 0 exits 0, consistent" consistent "$name"
    check "$name: host tests pass" host_tests "$name"
}

echo "staging-test: booting the pristine staging hypervisor"
boot staging-pristine "$S/images/xen-pristine" "" "VP2M_EXPECT_VIRTUAL_P2M=0 VP2M_EXPECT_DOM0_TREE=present"
boot_checks staging-pristine False present
echo "staging-test: booting the patched staging hypervisor"
boot staging-patched "$S/images/xen-patched" "" "VP2M_EXPECT_VIRTUAL_P2M=1 VP2M_EXPECT_DOM0_TREE=present"
boot_checks staging-patched True present
echo "staging-test: patched, pv=virt-p2m=no dom0=virt-p2m (the support off; the dom0 option ignored)"
boot staging-no-virt-p2m "$S/images/xen-patched" "pv=virt-p2m=no dom0=virt-p2m" \
    "VP2M_EXPECT_VIRTUAL_P2M=0 VP2M_EXPECT_DOM0_TREE=present"
boot_checks staging-no-virt-p2m False present
check "staging-no-virt-p2m: Xen warns that dom0=virt-p2m is ignored" \
    grep -aq 'dom0=virt-p2m ignored with pv=virt-p2m=no' "$BUILD/logs/staging-no-virt-p2m.log"
echo "staging-test: patched, dom0=virt-p2m"
boot staging-dom0-virt-p2m "$S/images/xen-patched" "dom0=virt-p2m" \
    "VP2M_EXPECT_VIRTUAL_P2M=1 VP2M_EXPECT_DOM0_TREE=dropped"
boot_checks staging-dom0-virt-p2m True dropped

finish
