#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Checks of the patch series against the pinned tree:
#   - the series lists every patch, each with an area prefix, no Signed-off-by
#     and the placeholder author (a submitter signs off with `git am -s`)
#   - it applies to the pristine tree with `git am` and with `patch -p1`
#     without fuzz or offsets
#   - Xen's own header checks passed in the patched hypervisor build
#   - tools/include/xen-foreign/reference.size matches both trees' headers
# Usage: patch-check.sh BUILD_DIR PATCH_DIR
set -uo pipefail

BUILD=$(cd "$1" && pwd)
PATCHES=$(cd "$2" && pwd)
WORK="$BUILD/patch-check"
passed=0
failed=0
ok()   { echo "patch-check: ok   $*"; passed=$((passed + 1)); }
bad()  { echo "patch-check: FAIL $*"; failed=$((failed + 1)); }

[ -f "$BUILD/xen-pristine/.extracted" ] || { echo "patch-check: Xen tree not fetched yet; run 'make xen-trees'" >&2; exit 2; }

series=$(grep -v '^\s*\(#\|$\)' "$PATCHES/series")
listed=$(echo "$series" | sort)
present=$(cd "$PATCHES" && ls *.patch | sort)
[ "$listed" = "$present" ] && ok "series lists every patch" || bad "series and the .patch files differ"

# The series is nobody's: it carries no Signed-off-by (only a submitter can
# certify the DCO, with `git am -s`) and the author is the series itself.
for p in $series; do
    subj=$(sed -n 's/^Subject: \[PATCH[^]]*\] //p' "$PATCHES/$p")
    if echo "$subj" | grep -qE '^[a-z0-9_./-]+( [a-z0-9_./-]+)?: '; then
        ok "$p: subject has an area prefix"
    else
        bad "$p: subject '$subj' lacks an area prefix"
    fi
    if grep -q '^Signed-off-by: ' "$PATCHES/$p"; then
        bad "$p: carries a Signed-off-by; only a submitter adds one (git am -s)"
    elif ! grep -qx 'From: xen-virtual-p2m series <series@xen-virtual-p2m.invalid>' "$PATCHES/$p"; then
        bad "$p: From: is not the series' own placeholder author"
    else
        ok "$p: no sign-off, placeholder author"
    fi
done

rm -rf "$WORK"
mkdir -p "$WORK"
cp -a "$BUILD/xen-pristine" "$WORK/am"
cp -a "$BUILD/xen-pristine" "$WORK/p1"
(
    cd "$WORK/am" && git init -q && git add -A -f && \
    git -c user.name=check -c user.email=check@example.org commit -qm base
) || bad "cannot set up a git tree for git am"
am_ok=1
for p in $series; do
    if ! (cd "$WORK/am" && git -c user.name=Submitter -c user.email=submitter@example.org am -q -s "$PATCHES/$p") >"$WORK/am.log" 2>&1; then
        bad "git am $p: $(head -n3 "$WORK/am.log" | tr '\n' ' ')"
        am_ok=0
        break
    fi
done
[ "$am_ok" = 1 ] && ok "series applies with git am"
n=$(cd "$WORK/am" && git log --format=%B HEAD~$(echo "$series" | wc -w)..HEAD | grep -cx 'Signed-off-by: Submitter <submitter@example.org>')
[ "$am_ok" = 1 ] && [ "$n" = "$(echo "$series" | wc -w)" ] && ok "git am -s adds the submitter's sign-off to every patch" \
    || bad "git am -s signed $n of the patches"

p1_ok=1
for p in $series; do
    out=$(patch -p1 -F0 -N --no-backup-if-mismatch -d "$WORK/p1" < "$PATCHES/$p" 2>&1)
    if [ $? -ne 0 ] || echo "$out" | grep -qiE 'offset|fuzz'; then
        bad "patch -p1 $p: $(echo "$out" | grep -iE 'offset|fuzz|fail|reject' | head -n2 | tr '\n' ' ')"
        p1_ok=0
        break
    fi
done
[ "$p1_ok" = 1 ] && ok "series applies with patch -p1 without fuzz or offsets"
if [ "$p1_ok" = 1 ] && diff -r -q -x .extracted -x .git "$WORK/p1/xen/include/public" "$BUILD/xen-patched/xen/include/public" >/dev/null; then
    ok "patched public headers equal the build's patched tree"
elif [ "$p1_ok" = 1 ]; then
    bad "the build's patched tree differs from a fresh application; run 'make xen-trees'"
fi

for chk in headers.chk headers99.chk headers++.chk; do
    if [ -f "$BUILD/xen-patched/xen/include/$chk" ]; then
        ok "Xen's header check $chk passed in the patched build"
    else
        bad "Xen's header check $chk missing; run 'make xen' and see $BUILD/images/xen-patched.build.log"
    fi
done

# Xen's tools/include/xen-foreign check, run by hand: the tools build needs
# ./configure and its libraries, this check needs only python3 and gcc.
reference_size() {
    local tree=$1 out=$2
    local d="$out/xen-foreign" pub="$tree/xen/include/public"
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
    ) > "$out/xen-foreign.log" 2>&1
}
for t in pristine patched; do
    mkdir -p "$WORK/$t"
    if reference_size "$BUILD/xen-$t" "$WORK/$t"; then
        ok "reference.size matches the $t headers (arm32, arm64, x86_32, x86_64)"
    else
        bad "reference.size check of the $t tree: $(tail -n5 "$WORK/$t/xen-foreign.log" | tr '\n' ' ')"
    fi
done

echo "patch-check: $passed passed, $failed failed"
[ "$failed" = 0 ]
