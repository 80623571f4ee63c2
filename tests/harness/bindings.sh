#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# xen-sys's committed bindings (xen-sys/src/bindings.rs): bindgen's output
# over the public headers of a Xen tree, made by xen-sys's build script with
# its `xen-tree` feature (libclang, a C compiler). The published crate builds
# from the committed file and needs neither.
#   bindings.sh write TREE   regenerate xen-sys/src/bindings.rs from TREE
#   bindings.sh check TREE   fail when the committed file is not what TREE
#                            gives; then xen-sys's tests on TREE's bindings,
#                            with the C compiler's layout of TREE (layout.c)
set -euo pipefail

mode=${1:-}
tree=${2:-}
case $mode in write|check) ;; *) echo "usage: bindings.sh write|check XEN_TREE" >&2; exit 2 ;; esac
[ -f "$tree/xen/include/public/xen.h" ] || {
    echo "bindings: no Xen tree at '$tree' (no xen/include/public/xen.h): run 'make xen-trees', or pass XEN_TREE=/path/to/xen" >&2
    exit 2
}
tree=$(cd "$tree" && pwd)
cd "$(dirname "$0")/../.."
committed=xen-sys/src/bindings.rs

# Build xen-sys with the feature; its build script writes OUT_DIR/bindings.rs.
out=$(XEN_TREE=$tree cargo build --quiet --locked -p xen-p2m-sys --features xen-tree \
        --message-format=json \
      | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "build-script-executed" and "#xen-p2m-sys@" in m["package_id"]:
        print(m["out_dir"])')
[ -n "$out" ] && [ -f "$out/bindings.rs" ] || { echo "bindings: the build made no bindings.rs" >&2; exit 1; }

case $mode in
write)
    if cmp -s "$out/bindings.rs" "$committed"; then
        echo "bindings: $committed is already what $tree gives"
    else
        cp "$out/bindings.rs" "$committed"
        echo "bindings: wrote $committed from $tree ($(wc -l < "$committed") lines); commit it"
    fi ;;
check)
    if ! diff -u "$committed" "$out/bindings.rs" > "$out/bindings.diff"; then
        head -n 40 "$out/bindings.diff"
        echo "bindings: FAIL $committed is stale: it is not what bindgen gives for $tree" \
             "($(grep -c '^[-+][^-+]' "$out/bindings.diff") lines differ, $out/bindings.diff)." \
             "Run 'make bindings' and commit the result." >&2
        exit 1
    fi
    echo "bindings: ok   $committed is what bindgen gives for $tree"
    # The tree's bindings against the C compiler's layout, the items
    # newer.rs defines against the tree's, and the domctl table.
    XEN_TREE=$tree cargo test --quiet --locked -p xen-p2m-sys --features xen-tree
    echo "bindings: ok   xen-sys tests on $tree's bindings and C layout" ;;
esac
