#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# The kdump part of `make test`: three host crash dumps made under QEMU
# (kdump-boot.sh), then checks on the host, one line each:
#   patched           patched Xen, dom0 keeps its 3-level tree
#   patched-virt-p2m  patched Xen with dom0=virt-p2m: dom0 drops its tree
#   pristine          Debian's Xen 4.17.5 unchanged (the control)
# - boot::CASE              the crash kernel saved the dump, dom0 its live p2m
# - note::CASE              the dump's notes (read by kdump-note.py, not by
#                           hv-feature): the patched ones carry one
#                           XEN_ELFNOTE_CRASH_DOM0_P2M that agrees with
#                           CRASH_INFO and with dom0's entry count; the
#                           pristine one has none
# - vmcore::CASE-SOURCE     `hv-feature vmcore DUMP --source SOURCE` rebuilds
#                           exactly the p2m dom0 saved before the crash
#                           (every entry; cmp of the two files)
# - vmcore::...-refused     what it must refuse (exit 1): the tree where dom0
#                           dropped it, the list where no note records it, and
#                           the dom0=virt-p2m dump with the new note stripped
# - crash::dom0-CASE        Debian's crash 8.0.2 opens dom0 in the dump
#                           (sys, bt) as on the pristine dump; with
#                           dom0=virt-p2m it cannot (a known limitation of
#                           crash, asserted as such, not counted as a pass)
# - makedumpfile::xen-CASE  makedumpfile 1.7.2 in Xen mode (-X, from the
#                           dump's VMCOREINFO_XEN) as on the pristine dump
# - makedumpfile::dom0-CASE makedumpfile filtering dom0's pages (-d 31 with
#                           dom0's vmlinux) as on the pristine dump; it reads
#                           dom0's p2m through the tree root only, so with
#                           dom0=virt-p2m it cannot (a known limitation)
# Ends with "kdump tests: N passed, N failed, N known limitations".
# Usage: kdump-test.sh [--reuse] BUILD_DIR
#   --reuse  keep dumps already in BUILD_DIR/kdump (no boots; for working on
#            the checks)
set -uo pipefail

REUSE=0
[ "${1:-}" = --reuse ] && { REUSE=1; shift; }
BUILD=${1:?usage: kdump-test.sh [--reuse] BUILD_DIR}
HARNESS=$(cd "$(dirname "$0")" && pwd)
HV="$BUILD/bin/hv-feature"
NOTE="$HARNESS/kdump-note.py"
VMLINUX="$BUILD/images/kdump/vmlinux"
CASES="patched patched-virt-p2m pristine"
passed=0
failed=0
known=0

ok() { echo "test kdump::$1 ... ok${2:+ ($2)}"; passed=$((passed + 1)); }
bad() { echo "test kdump::$1 ... FAILED: $2"; failed=$((failed + 1)); }
limitation() { echo "test kdump::$1 ... known limitation: $2"; known=$((known + 1)); }
dir() { echo "$BUILD/kdump/kdump-$1"; }
have_dump() { [ -f "$(dir "$1")/vmcore" ] && [ -f "$(dir "$1")/p2m-live.bin" ]; }

for t in "$HV" "$VMLINUX" python3 crash makedumpfile; do
    [ -e "$t" ] || command -v "$t" > /dev/null \
        || { echo "kdump-test: $t missing; run 'make tools kdump-images deps'" >&2; exit 2; }
done

# ---- The three boots ------------------------------------------------------------
for c in $CASES; do
    case $c in
        patched) xen=xen-patched opts="" ;;
        patched-virt-p2m) xen=xen-patched opts="dom0=virt-p2m" ;;
        pristine) xen=xen-pristine opts="" ;;
    esac
    if [ "$REUSE" = 1 ] && have_dump "$c"; then
        echo "kdump-test: reusing $(dir "$c")"
    else
        "$HARNESS/kdump-boot.sh" "$BUILD" "kdump-$c" "$BUILD/images/$xen" "$opts"
    fi
    if have_dump "$c"; then
        ok "boot::$c" "$(tr '\n' ' ' < "$(dir "$c")/times" | sed 's/ $//')"
    else
        bad "boot::$c" "no dump (see $(dir "$c")/boot.out)"
    fi
done
echo

# ---- The notes (kdump-note.py) ---------------------------------------------------
# field NAME LINE: the value of NAME=... in LINE.
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
check_notes() {
    local c=$1 want_tree=$2 d shown p2m info n root
    d=$(dir "$c")
    have_dump "$c" || { bad "note::$c" "no dump"; return; }
    shown=$("$NOTE" show "$d/vmcore" 2>&1) || { bad "note::$c" "$shown"; return; }
    echo "$shown" > "$d/notes"
    info=$(echo "$shown" | grep '^Xen 0x1000001 ' | head -n1)
    root=$(field dom0_pfn_to_mfn_frame_list_list "$info")
    [ -n "$root" ] || { bad "note::$c" "no XEN_ELFNOTE_CRASH_INFO note"; return; }
    n=$(echo "$shown" | grep -c '^Xen 0x1000003 ')
    if [ "$want_tree" = absent-note ]; then
        [ "$n" = 0 ] || { bad "note::$c" "$n XEN_ELFNOTE_CRASH_DOM0_P2M notes in a pristine dump"; return; }
        [ "$root" != 0xffffffffffffffff ] || { bad "note::$c" "CRASH_INFO tree root is ~0"; return; }
        ok "note::$c" "no XEN_ELFNOTE_CRASH_DOM0_P2M; CRASH_INFO tree root $root"
        return
    fi
    [ "$n" = 1 ] || { bad "note::$c" "$n XEN_ELFNOTE_CRASH_DOM0_P2M notes, want 1"; return; }
    p2m=$(echo "$shown" | grep '^Xen 0x1000003 ')
    local entries=$(( $(stat -c %s "$d/p2m-live.bin") / 8 ))
    local why=""
    [ "$(field version "$p2m")" = 1 ] || why="version $(field version "$p2m")"
    [ "$(field flags "$p2m")" = 0x1 ] || why="$why flags $(field flags "$p2m") (want PV, not compat)"
    [ "$(field p2m_cr3 "$p2m")" != 0x0 ] || why="$why p2m_cr3 0 (list not recorded)"
    [ "$(( $(field max_pfn "$p2m") ))" = "$entries" ] || why="$why max_pfn $(field max_pfn "$p2m") but dom0 saved $entries entries"
    [ "$(field pfn_to_mfn_frame_list_list "$p2m")" = "$root" ] || why="$why tree root $(field pfn_to_mfn_frame_list_list "$p2m") but CRASH_INFO has $root"
    case $want_tree in
        kept) [ "$root" != 0xffffffffffffffff ] || why="$why dom0 dropped its tree (root ~0)" ;;
        dropped) [ "$root" = 0xffffffffffffffff ] || why="$why dom0 kept its tree (root $root)" ;;
    esac
    if [ -n "$why" ]; then bad "note::$c" "${why# }"; else
        ok "note::$c" "version 1, PV, max_pfn $(field max_pfn "$p2m"), p2m_cr3 $(field p2m_cr3 "$p2m"), tree root $root as in CRASH_INFO"
    fi
}
check_notes patched kept
check_notes patched-virt-p2m dropped
check_notes pristine absent-note

# ---- hv-feature vmcore -------------------------------------------------------------
# same_entries DUMP LIVE MODE: the rebuilt entries against dom0's live ones;
# prints what matched or how they differ, exit 1 when they differ.
#   exact   same count, every entry equal
#   prefix  without the note the dump has no max_pfn and the tree reaches to
#           the end of its last leaf: every live entry equal, and the entries
#           past dom0's max_pfn are identity or invalid (~0) ones
same_entries() {
    python3 - "$1" "$2" "$3" <<'PY'
import sys
dump, live = (open(p, "rb").read() for p in sys.argv[1:3])
mode = sys.argv[3]
n = len(live) // 8
if len(dump) % 8 or len(live) % 8:
    sys.exit(print(f"a file is not a whole number of entries ({len(dump)}, {len(live)} bytes)") or 1)
if len(dump) < len(live) or (mode == "exact" and len(dump) != len(live)):
    sys.exit(print(f"{len(dump) // 8} entries rebuilt, dom0 saved {n}") or 1)
bad = [i for i in range(n) if dump[8 * i:8 * i + 8] != live[8 * i:8 * i + 8]]
if bad:
    i = bad[0]
    got, want = (int.from_bytes(x[8 * i:8 * i + 8], "little") for x in (dump, live))
    sys.exit(print(f"{len(bad)} of {n} entries differ, first pfn {i:#x}: {got:#x} in the dump, {want:#x} live") or 1)
extra = [int.from_bytes(dump[k:k + 8], "little") for k in range(len(live), len(dump), 8)]
odd = [k for k, e in enumerate(extra) if e != (1 << 64) - 1 and not e >> 62 & 1]
if odd:
    sys.exit(print(f"entry {n + odd[0]:#x} past dom0's max_pfn is {extra[odd[0]]:#x}, not identity or invalid") or 1)
print(f"all {n} entries equal dom0's live p2m" + (f", and the {len(extra)} past its max_pfn are identity or invalid" if extra else ""))
PY
}
# json_field FILE KEY: a top-level value of hv-feature's --json output.
json_field() {
    python3 -c 'import json,sys; print(str(json.load(open(sys.argv[1])).get(sys.argv[2], "")).lower())' "$1" "$2" 2>/dev/null
}
# vmcore_rebuilds CASE SOURCE NOTE GOT_SOURCE: hv-feature vmcore --source SOURCE
# exits 0, reports the note NOTE and the source GOT_SOURCE, and its entries
# equal dom0's live p2m (see same_entries).
vmcore_rebuilds() {
    local c=$1 src=$2 want_note=$3 want_src=$4 d name rc t0 note got same mode=exact
    [ "$want_note" = present ] || mode=prefix
    d=$(dir "$c")
    name="vmcore::$c-$src"
    have_dump "$c" || { bad "$name" "no dump"; return; }
    rm -f "$d/entries-$src.bin"
    t0=$(date +%s)
    "$HV" vmcore "$d/vmcore" --json --source "$src" --entries-out "$d/entries-$src.bin" \
        > "$d/vmcore-$src.json" 2> "$d/vmcore-$src.err"
    rc=$?
    [ "$rc" = 0 ] || { bad "$name" "exit $rc: $(tail -n1 "$d/vmcore-$src.err")"; return; }
    note=$(json_field "$d/vmcore-$src.json" note)
    got=$(json_field "$d/vmcore-$src.json" source)
    [ "$note" = "$want_note" ] || { bad "$name" "note \"$note\", want \"$want_note\""; return; }
    [ "$got" = "$want_src" ] || { bad "$name" "source \"$got\", want \"$want_src\""; return; }
    [ -f "$d/entries-$src.bin" ] || { bad "$name" "no --entries-out file written"; return; }
    if same=$(same_entries "$d/entries-$src.bin" "$d/p2m-live.bin" "$mode"); then
        ok "$name" "note $note, from the $got: $same; $(( $(date +%s) - t0 ))s"
    else
        bad "$name" "$same"
    fi
}
# vmcore_refuses NAME FILE SOURCE WORDS: hv-feature vmcore exits 1 (the dump's
# data cannot give a p2m), not 0 and not 2, and its message names WORDS.
vmcore_refuses() {
    local name=$1 file=$2 src=$3 words=$4 rc err
    [ -f "$file" ] || { bad "$name" "no dump"; return; }
    err=$("$HV" vmcore "$file" --source "$src" 2>&1 > /dev/null)
    rc=$?
    if [ "$rc" = 1 ] && ! echo "$err" | grep -q "$words"; then
        bad "$name" "exit 1, but the message does not name \"$words\": $(echo "$err" | tail -n1)"
    elif [ "$rc" = 1 ]; then
        ok "$name" "exit 1: $(echo "$err" | tail -n1)"
    else
        bad "$name" "exit $rc, want 1${err:+: $(echo "$err" | tail -n1)}"
    fi
}
vmcore_rebuilds patched list present list
vmcore_rebuilds patched tree present tree
vmcore_rebuilds patched auto present list
vmcore_rebuilds patched-virt-p2m list present list
vmcore_rebuilds patched-virt-p2m auto present list
vmcore_refuses vmcore::patched-virt-p2m-tree-refused "$(dir patched-virt-p2m)/vmcore" tree "dropped its p2m tree"
vmcore_rebuilds pristine auto absent tree
vmcore_rebuilds pristine tree absent tree
vmcore_refuses vmcore::pristine-list-refused "$(dir pristine)/vmcore" list "no XEN_ELFNOTE_CRASH_DOM0_P2M note"

# The control: the dom0=virt-p2m dump without the new note.
d=$(dir patched-virt-p2m)
stripped="$d/vmcore-without-dom0-p2m-note"
rm -f "$stripped"
if have_dump patched-virt-p2m && cp --sparse=always "$d/vmcore" "$stripped" \
   && out=$("$NOTE" strip "$stripped" 2>&1); then
    if "$NOTE" show "$stripped" | grep -q '^Xen 0x1000003 '; then
        bad note::patched-virt-p2m-stripped "the note is still in $stripped"
    else
        ok note::patched-virt-p2m-stripped "$out"
    fi
    vmcore_refuses vmcore::patched-virt-p2m-without-note-refused "$stripped" auto "no XEN_ELFNOTE_CRASH_DOM0_P2M note"
else
    bad note::patched-virt-p2m-stripped "cannot make $stripped: ${out:-no dump}"
    bad vmcore::patched-virt-p2m-without-note-refused "no stripped dump"
fi
echo

# ---- Today's tools ----------------------------------------------------------------
# What today's tools say when dom0's tree root in CRASH_INFO is ~0.
LIMIT_CRASH='cannot read xen kdump p2m mfn page'
LIMIT_MDF="Can't get p2m_mfn address"
# run_crash CASE: crash 8.0.2 on dom0 in the dump: "ok" or why not.
run_crash() {
    local d rc
    d=$(dir "$1")
    printf 'sys\nbt\nquit\n' > "$d/crash-dom0.cmds"
    timeout 900 crash -s "$VMLINUX" "$d/vmcore" -i "$d/crash-dom0.cmds" < /dev/null > "$d/crash-dom0.out" 2>&1
    rc=$?
    if [ "$rc" = 0 ] && grep -q 'PANIC: "Kernel panic - not syncing: sysrq triggered crash"' "$d/crash-dom0.out" \
       && grep -q 'sysrq_handle_crash' "$d/crash-dom0.out"; then
        echo "ok: sys shows the sysrq PANIC, bt reaches sysrq_handle_crash"
    else
        echo "exit $rc: $(grep -v '^$' "$d/crash-dom0.out" | grep -iE 'crash:|error|cannot|fail' | head -n1)"
    fi
}
# run_mdf CASE KIND: makedumpfile on the dump: "ok" or why not.
#   xen   -X, Xen mode: excludes domU pages, from Xen's VMCOREINFO_XEN
#   dom0  -d 31 -x vmlinux: filters dom0's pages, through dom0's p2m
run_mdf() {
    local d=$(dir "$1") kind=$2 out rc
    out="$d/makedumpfile-$kind.out"
    rm -f "$out"
    case $kind in
        xen) timeout 900 makedumpfile -E -X "$d/vmcore" "$out" > "$d/makedumpfile-$kind.log" 2>&1 ;;
        dom0) timeout 900 makedumpfile -l -d 31 -x "$VMLINUX" "$d/vmcore" "$out" > "$d/makedumpfile-$kind.log" 2>&1 ;;
    esac
    rc=$?
    if [ "$rc" = 0 ] && grep -q 'makedumpfile Completed' "$d/makedumpfile-$kind.log" && [ -s "$out" ]; then
        echo "ok: $(( $(stat -c %s "$out") >> 20 )) MiB written"
    else
        echo "exit $rc: $(tr '\r' '\n' < "$d/makedumpfile-$kind.log" | grep -v '^$' | grep -vE '^(Copying|Excluding|Checking)' | head -n1)"
    fi
    rm -f "$out"
}
# tool_check NAME RESULT BASELINE: RESULT must be what the pristine dump gave
# (ok); BASELINE empty: NAME is the pristine dump's own check.
tool_check() {
    local name=$1 got=$2 base=$3
    case "$base" in
        ''|ok*) ;;
        *) bad "$name" "the pristine dump fails too ($base): nothing to compare with"; return ;;
    esac
    case "$got" in
        ok*) ok "$name" "${base:+as on the pristine dump; }${got#ok: }" ;;
        *) bad "$name" "$got${base:+ (the pristine dump: $base)}" ;;
    esac
}
declare -A CRASH MDF_XEN MDF_DOM0
for c in $CASES; do
    have_dump "$c" || continue
    t0=$(date +%s)
    CRASH[$c]="$(run_crash "$c"), $(( $(date +%s) - t0 ))s"
    t0=$(date +%s)
    MDF_XEN[$c]="$(run_mdf "$c" xen), $(( $(date +%s) - t0 ))s"
    t0=$(date +%s)
    MDF_DOM0[$c]="$(run_mdf "$c" dom0), $(( $(date +%s) - t0 ))s"
done

base=${CRASH[pristine]:-no dump}
tool_check crash::dom0-pristine "$base" ""
tool_check crash::dom0-patched "${CRASH[patched]:-no dump}" "$base"
got=${CRASH[patched-virt-p2m]:-no dump}
if grep -q "$LIMIT_CRASH" "$(dir patched-virt-p2m)/crash-dom0.out" 2>/dev/null; then
    limitation crash::dom0-patched-virt-p2m "crash 8.0.2 reads dom0's p2m only through the tree root in CRASH_INFO (~0 here): \"$LIMIT_CRASH\""
else
    bad crash::dom0-patched-virt-p2m "expected crash 8.0.2 to fail with \"$LIMIT_CRASH\", got: $got"
fi
base=${MDF_XEN[pristine]:-no dump}
tool_check makedumpfile::xen-pristine "$base" ""
for c in patched patched-virt-p2m; do tool_check "makedumpfile::xen-$c" "${MDF_XEN[$c]:-no dump}" "$base"; done
base=${MDF_DOM0[pristine]:-no dump}
tool_check makedumpfile::dom0-pristine "$base" ""
tool_check makedumpfile::dom0-patched "${MDF_DOM0[patched]:-no dump}" "$base"
got=${MDF_DOM0[patched-virt-p2m]:-no dump}
if grep -q "$LIMIT_MDF" "$(dir patched-virt-p2m)/makedumpfile-dom0.log" 2>/dev/null; then
    limitation makedumpfile::dom0-patched-virt-p2m "makedumpfile 1.7.2 reads dom0's p2m only through the tree root in CRASH_INFO (~0 here): \"$LIMIT_MDF\""
else
    bad makedumpfile::dom0-patched-virt-p2m "expected makedumpfile 1.7.2 to fail with \"$LIMIT_MDF\", got: $got"
fi

echo
echo "kdump tests: $passed passed, $failed failed, $known known limitations"
[ "$failed" = 0 ]
