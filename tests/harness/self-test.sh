#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Checks that the boot harness fails when it must, fast and with a reason:
# a Xen panic, a dom0 kernel panic, a kernel module that does not load, a
# dom0 program that fails, a hang (timeout), the two ways a --kdump boot
# fails without a crash kernel, and a boot that stalls before init in both
# of its tries; and that one stall before init is survived. (That a good
# boot passes is shown by every host-test boot.) Each case expects boot.sh's
# exit status and the words of its one-line reason.
# Usage: self-test.sh BUILD_DIR
set -uo pipefail

BUILD=$1
HARNESS=$(dirname "$0")
passed=0
failed=0

expect() {
    local name=$1 want_rc=$2 want_reason=$3 limit=$4
    shift 4
    local start out rc took
    start=$(date +%s)
    out=$("$HARNESS/boot.sh" --build "$BUILD" "selftest-$name" "$@" 2>&1)
    rc=$?
    took=$(( $(date +%s) - start ))
    local last
    last=$(echo "$out" | grep "^BOOT selftest-$name: " | tail -n1)
    if [ "$rc" = "$want_rc" ] && echo "$last" | grep -qE "$want_reason" && [ "$took" -le "$limit" ]; then
        echo "test harness::$name ... ok (${took}s: $last)"
        passed=$((passed + 1))
    else
        echo "test harness::$name ... FAILED (exit $rc in ${took}s, want $want_rc within ${limit}s matching /$want_reason/): $last"
        failed=$((failed + 1))
    fi
}

# Each time limit leaves room for one stalled try (boot.sh --stall, 60 s)
# before the boot that counts.
# Xen cannot build a dom0 in 1 MiB and panics before dom0 runs.
expect xen-panic 2 'FAILED: Panic on CPU' 120 --xen-opts "dom0_mem=1M,max:1M" --run true
# sysrq 'c' crashes the dom0 kernel on purpose.
expect dom0-panic 2 'FAILED: Kernel panic' 150 --run 'echo c > /proc/sysrq-trigger'
expect missing-module 2 'FAILED: kernel module no-such-module.ko failed to load' 150 \
    --module no-such-module.ko --run true
expect program-fails 1 'FAILED: a dom0 program failed' 150 --run false
expect timeout 2 'FAILED: timeout after 20s' 35 --timeout 20 --run 'sleep 600'
# --kdump lets dom0's panic through only into a crash kernel: without one
# loaded it fails at once, and a dom0 that does not crash never passes.
expect kdump-no-crash-kernel 2 'FAILED: dom0 crashed but Xen has no crash kernel loaded' 150 \
    --kdump --run 'echo c > /proc/sysrq-trigger'
expect kdump-no-crash 2 'FAILED: --kdump: .* Xen never started the crash kernel' 150 --kdump --run true
# A boot that stops dead before the dom0 kernel runs init (as TCG very
# rarely does) is tried once more: it passes when the second boot does, and
# fails when that one stalls too.
expect stall-once 0 'PASSED \([0-9]+s\) \(the second boot; the first stalled\)' 90 \
    --stall 10 --freeze-on 'Linux version' --run true
expect stall-twice 2 'FAILED: stalled twice: no serial output for 10s before the dom0 kernel ran init' 90 \
    --stall 10 --freeze-on 'Linux version' --freeze-on 'Linux version' --run true

echo "harness self-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
