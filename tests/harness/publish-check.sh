#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# The crates meant for crates.io (xen-p2m-sys, hv-feature, xen-abi) as a user
# would get them:
#   - `cargo publish --workspace --dry-run`: each packs, its manifest and
#     dependencies as crates.io would take them (the unpublished ones
#     resolved among themselves)
#   - every file of each package list is a file of that crate's folder
#   - each package built and tested from the unpacked package alone
#     (xen-abi's libclang fixtures too), so it builds without the repository
#     and no test reads a file the package lacks
# Needs crates.io's index (no Xen tree). Uncommitted changes are packed as
# they are (--allow-dirty): the check is about the contents, CI's clone is
# clean anyway.
# Usage: publish-check.sh BUILD_DIR
set -euo pipefail

BUILD=$(mkdir -p "$1" && cd "$1" && pwd)
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# crate name -> folder
declare -A DIR=([xen-p2m-sys]=xen-sys [hv-feature]=hv-feature [xen-abi]=xen-abi)
CRATES="xen-p2m-sys hv-feature xen-abi"
failed=0
ok()  { echo "publish-check: ok   $*"; }
bad() { echo "publish-check: FAIL $*"; failed=$((failed + 1)); }

log="$BUILD/logs/publish-dry-run.log"
mkdir -p "$BUILD/logs"
# --no-verify: building each package from its contents alone is the third
# step below, which also runs its tests; verifying here would build them all
# a second time (minutes on a cold machine).
if cargo publish --workspace --dry-run --no-verify --locked --allow-dirty > "$log" 2>&1; then
    ok "cargo publish --workspace --dry-run ($(grep -c '^ *Packaged ' "$log") crates packed; built and tested below)"
else
    tail -n 20 "$log"
    bad "cargo publish --workspace --dry-run (see $log)"
fi

# The .crate files as uploaded (target/package/NAME-0.1.0.crate), read back.
cargo package --workspace --no-verify --locked --allow-dirty --quiet > "$BUILD/logs/package.log" 2>&1 \
    || { cat "$BUILD/logs/package.log"; bad "cargo package --workspace"; }
for c in $CRATES; do
    d=${DIR[$c]} crate="target/package/$c-0.1.0.crate"
    list=$(tar -tzf "$crate" 2>/dev/null | sed "s|^$c-0.1.0/||") || { bad "$c: no $crate"; continue; }
    outside=""
    for f in $list; do
        case $f in
            Cargo.toml|Cargo.toml.orig|.cargo_vcs_info.json|Cargo.lock) continue ;;
            ../*|/*|*/../*) outside="$outside $f" ;;
            *) [ -f "$d/$f" ] || outside="$outside $f" ;;
        esac
    done
    for need in README.md LICENSE-APACHE LICENSE-MIT; do
        echo "$list" | grep -qx "$need" || outside="$outside (no $need)"
    done
    if [ -z "$outside" ]; then
        ok "$c: the $(echo "$list" | wc -l) files of $crate are files of $d/, README and both licences among them"
    else
        bad "$c: files of $crate that are not files of $d/:$outside"
    fi
done

# The tests of each package, from the unpacked .crate files. The packages
# depend on xen-p2m-sys 0.1.0 from crates.io, which is not published: it is
# patched to the unpacked one. Unpacked outside the repository (which is a
# workspace they are not part of), always at the same place: the tests embed
# their source folder (CARGO_MANIFEST_DIR) and the target folder is kept for
# the next run; extracted with fresh times (-m) so that cargo rebuilds them.
U="$BUILD/package/src"
rm -rf "$U" && mkdir -p "$U"
for c in $CRATES; do
    tar -xzmf "target/package/$c-0.1.0.crate" -C "$U" \
        || { bad "$c: no target/package/$c-0.1.0.crate"; continue; }
done
P="$BUILD/package"
patch_sys="patch.crates-io.xen-p2m-sys.path=\"$U/xen-p2m-sys-0.1.0\""
for c in $CRATES; do
    src="$U/$c-0.1.0"
    [ -d "$src" ] || continue
    if (cd "$src" && export CARGO_TARGET_DIR="$P/target" &&
            # hv-feature's integration tests drive the simulator (its
            # `sim` feature; the repository enables it by a dev-dependency
            # that publishing drops).
            cargo test --quiet --config "$patch_sys" $([ "$c" = hv-feature ] && echo --features sim) &&
            # xen-abi's fixtures are a target of their own (test = false: libclang).
            if [ "$c" = xen-abi ]; then cargo test --quiet --config "$patch_sys" --test fixtures; fi) \
            > "$BUILD/logs/package-test-$c.log" 2>&1; then
        ok "$c: the package's tests pass from the package alone ($(grep -o '^test result: ok\. [0-9]* passed' "$BUILD/logs/package-test-$c.log" | awk '{s += $4} END {print s}') tests)"
    else
        grep -E '^(error|test .* FAILED|thread .* panicked)' "$BUILD/logs/package-test-$c.log" | head -n 10
        bad "$c: the package's tests (see $BUILD/logs/package-test-$c.log)"
    fi
done

echo "publish-check: $([ "$failed" = 0 ] && echo passed || echo "$failed failed")"
[ "$failed" = 0 ]
