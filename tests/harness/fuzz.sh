#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Coverage-guided fuzzing of hv-feature's p2m reader (cargo-fuzz, libFuzzer).
#
#   tests/harness/fuzz.sh [--keep-corpus] SECONDS [TARGET...]
#
# Builds the targets of hv-feature/fuzz (default: all of them) and runs each
# for an equal share of SECONDS. Every run starts from the saved regression
# inputs (hv-feature/fuzz/regressions/TARGET/); with --keep-corpus it also
# keeps and grows a corpus under build/fuzz/corpus/ across runs (for long
# runs), otherwise it starts fresh with seed FUZZ_SEED (default 1), so a
# short run is repeatable. Any crash, broken property, timeout (a hang) or
# memory blow-up fails the run: the input is kept under
# build/fuzz/artifacts/TARGET/ and the script exits 1.
#
# Only stable Rust exists here: cargo-fuzz passes -Z flags to rustc, which a
# stable compiler accepts with RUSTC_BOOTSTRAP=1; no sanitizer (the reader
# is safe Rust), libFuzzer's coverage counters only. cargo-fuzz is installed
# once from crates.io into build/tools.
set -euo pipefail

keep=0
if [ "${1:-}" = --keep-corpus ]; then keep=1; shift; fi
secs=${1:?usage: fuzz.sh [--keep-corpus] SECONDS [TARGET...]}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
fuzz=$root/hv-feature/fuzz
out=$root/build/fuzz
tools=$root/build/tools
version=0.13.2

if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q " $version\$"; then
    echo "fuzz: installing cargo-fuzz $version into $tools"
    cargo install --locked --quiet --root "$tools" --version "$version" cargo-fuzz
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$out/target

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(p2m_[a-z_]*\)"$/\1/p' "$fuzz/Cargo.toml")
fi
flags=(--sanitizer none -O --debug-assertions)
cd "$fuzz"
echo "fuzz: building ${targets[*]}"
cargo fuzz build "${flags[@]}" >"$out.build.log" 2>&1 || { cat "$out.build.log"; exit 1; }

per=$(( secs / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
runs=0 crashes=0 failed=()
for t in "${targets[@]}"; do
    saved=$fuzz/regressions/$t
    art=$out/artifacts/$t
    if [ "$keep" = 1 ]; then
        corpus=$out/corpus/$t
    else
        corpus=$out/fresh/$t
        rm -rf "$corpus"
    fi
    mkdir -p "$corpus" "$art" "$saved"
    log=$out/$t.log
    status=0
    cargo fuzz run "${flags[@]}" "$t" "$corpus" "$saved" -- \
        -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -max_len=1024 \
        -seed="${FUZZ_SEED:-1}" -artifact_prefix="$art/" -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    runs=$(( runs + ${n:-0} ))
    if [ "$status" -ne 0 ]; then
        crashes=$(( crashes + 1 ))
        failed+=("$t")
        grep -E 'panicked|property violated|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20
        echo "fuzz: $t FAILED after ${n:-?} runs; full log $log"
        echo "fuzz: minimize with: (cd hv-feature/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz tmin ${flags[*]} $t ARTIFACT),"
        echo "fuzz: fix, and keep the input as hv-feature/fuzz/regressions/$t/NAME (cargo test replays it)"
    else
        echo "fuzz: $t ok: ${n:-0} runs in ${per}s, $cov"
    fi
done
echo "fuzz: ${#targets[@]} targets, $runs runs, $crashes crashes"
[ "$crashes" -eq 0 ]
