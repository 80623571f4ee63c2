#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Build the programs dom0 runs as static binaries (no musl target here:
# static glibc through crt-static) and copy them to stable paths:
#   $BUILD/bin/hv-feature   the CLI
#   $BUILD/bin/host-tests   the xen-host-tests test binary
# --target keeps RUSTFLAGS away from build scripts (bindgen loads libclang).
# Usage: build-tools.sh BUILD_DIR
set -euo pipefail

BUILD=$1
TARGET=x86_64-unknown-linux-gnu
export RUSTFLAGS="-C target-feature=+crt-static"
mkdir -p "$BUILD/bin"
echo "build-tools: static hv-feature and host-tests for dom0"
cargo build --quiet --release --locked -p hv-feature --target "$TARGET"
cp "target/$TARGET/release/hv-feature" "$BUILD/bin/hv-feature"
# The host tests are their own workspace (tests/Cargo.toml); same target folder.
exe=$(cargo test --quiet --release --locked --manifest-path tests/Cargo.toml --target-dir target \
        --target "$TARGET" --no-run --message-format=json \
      | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "xen_host_tests":
        print(m["executable"])')
[ -n "$exe" ] || { echo "build-tools: no xen-host-tests test binary was built" >&2; exit 1; }
cp "$exe" "$BUILD/bin/host-tests"
