#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Boot a Xen image in QEMU with the Debian dom0 kernel, run programs in dom0
# and judge the outcome.  Prints dom0's VP2M-* lines (the programs' results)
# and one last line saying why the boot passed or failed.
#
# Usage: boot.sh [options] NAME [PROGRAM...]
#   NAME              names the boot; its serial log is $BUILD/logs/NAME.log
#   PROGRAM           files copied to /vp2m/bin in dom0
# Options:
#   --build DIR       build folder (default: build)
#   --xen IMAGE       Xen image (default: $BUILD/images/xen-patched)
#   --xen-opts "..."  extra Xen command line options, e.g. pv=virt-p2m=no
#   --dom0-opts "..." extra dom0 kernel command line options, e.g.
#                     vp2m.toolstack=patched (the rootfs init's toolstack)
#   --run "CMD"       a command for dom0 to run (repeatable; in this order)
#   --timeout SECS    hard limit for the whole boot (default: 300)
#   --module FILE.ko  an extra kernel module for init to load (repeatable)
#   --kvm             use KVM; only honoured when the host CPU has VMX/SVM
#   --disk IMAGE      boot dom0 from this root file system (rootfs.sh's
#                     rootfs.ext4, attached as a virtio disk through a QEMU
#                     snapshot, so the image never changes) instead of the
#                     busybox initramfs; its first stage is
#                     $BUILD/images/initrd-rootfs.cpio.gz
#   --mem MB          QEMU's memory (default: 1024; a domU needs more)
#   --scratch FILE    attach FILE (created or reused as is) as a second,
#                     writable raw virtio disk (/dev/vdb with --disk): a way
#                     to carry files out of dom0, e.g. a dump-core fixture
#   --stall SECS      a boot whose serial log stops growing for SECS seconds
#                     before the dom0 kernel runs init is stopped and tried
#                     once more (default: 60; see STALL below)
#   --freeze-on REGEX fault injection for the harness self-test: stop QEMU
#                     (SIGSTOP) once its serial log matches REGEX, as a boot
#                     that stalls does; the first one given applies to the
#                     first attempt, a second one to the second attempt
#   --kdump           dom0 is meant to crash into Xen's crash kernel (Xen
#                     booted with crashkernel=, the run list ends in a crash):
#                     dom0's "Kernel panic" does not stop QEMU; the boot is
#                     judged by the crash kernel's isa-debug-exit report, and
#                     passes only if Xen printed "Executing kexec image"
# Exit status: 0 every dom0 program passed; 1 a program failed; 2 the boot
# itself failed (panic, missing module, timeout, QEMU error).
set -uo pipefail

BUILD=build
XEN=""
XEN_OPTS=""
DOM0_OPTS=""
TIMEOUT=300
KVM=0
DISK=""
MEM=1024
SCRATCH=""
KDUMP=0
STALL=60
FREEZE_ON=()
AFTER_STALL=""
RUNS=()
MODULES=()
PROGRAMS=()
NAME=""
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=$2; shift 2 ;;
        --xen) XEN=$2; shift 2 ;;
        --xen-opts) XEN_OPTS=$2; shift 2 ;;
        --dom0-opts) DOM0_OPTS=$2; shift 2 ;;
        --run) RUNS+=("$2"); shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --module) MODULES+=("$2"); shift 2 ;;
        --kvm) KVM=1; shift ;;
        --disk) DISK=$2; shift 2 ;;
        --mem) MEM=$2; shift 2 ;;
        --scratch) SCRATCH=$2; shift 2 ;;
        --kdump) KDUMP=1; shift ;;
        --stall) STALL=$2; shift 2 ;;
        --freeze-on) FREEZE_ON+=("$2"); shift 2 ;;
        --) shift; break ;;
        -*) echo "boot: unknown option $1" >&2; exit 2 ;;
        *) if [ -z "${NAME:-}" ]; then NAME=$1; else PROGRAMS+=("$1"); fi; shift ;;
    esac
done
: "${NAME:?boot: a boot NAME is required}"
XEN=${XEN:-$BUILD/images/xen-patched}
PROGRAMS+=("$@")

fail() { echo "BOOT $NAME: FAILED: $1$AFTER_STALL"; exit "${2:-2}"; }
BASE="$BUILD/images/initrd-base.cpio.gz"
DRIVE=()
if [ -n "$DISK" ]; then
    BASE="$BUILD/images/initrd-rootfs.cpio.gz"
    [ -f "$DISK" ] || fail "$DISK missing; run 'make rootfs'"
    DRIVE=(-drive "file=$(realpath "$DISK"),format=raw,if=virtio,snapshot=on")
fi
if [ -n "$SCRATCH" ]; then
    [ -f "$SCRATCH" ] || fail "scratch disk $SCRATCH missing (create it with truncate -s SIZE)"
    DRIVE+=(-drive "file=$(realpath "$SCRATCH"),format=raw,if=virtio")
fi
for f in "$XEN" "$BUILD/images/vmlinuz" "$BASE"; do
    [ -f "$f" ] || fail "$f missing; run 'make images'${DISK:+ and 'make rootfs'}"
done

WORK="$BUILD/boot/$NAME"
LOG="$BUILD/logs/$NAME.log"
rm -rf "$WORK"
mkdir -p "$WORK/root/vp2m/bin" "$(dirname "$LOG")"
for p in "${PROGRAMS[@]}"; do
    cp "$p" "$WORK/root/vp2m/bin/" || fail "program $p missing"
done
printf '%s\n' "${RUNS[@]}" > "$WORK/root/vp2m/run-list"
[ ${#MODULES[@]} -eq 0 ] || printf '%s\n' "${MODULES[@]}" > "$WORK/root/vp2m/modules"
(cd "$WORK/root" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$WORK/overlay.cpio.gz"
# Linux unpacks concatenated cpio archives in order: base, then overlay.
cat "$BASE" "$WORK/overlay.cpio.gz" > "$WORK/initrd.gz"

ACCEL="tcg"
if [ "$KVM" = 1 ]; then
    if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
        ACCEL="kvm"
    else
        echo "boot: --kvm ignored: the host has no usable VMX/SVM; using TCG"
    fi
fi

XEN_CMDLINE="console=com1 loglvl=all guest_loglvl=all noreboot dom0_mem=512M,max:768M smap=0 smep=0 $XEN_OPTS"
extra="${DISK:+, disk $DISK}"
[ "$MEM" = 1024 ] || extra="$extra, $MEM MiB"
[ "$KDUMP" = 0 ] || extra="$extra, kdump"
[ -z "$DOM0_OPTS" ] || extra="$extra, dom0 [$DOM0_OPTS]"
echo "BOOT $NAME: $(basename "$XEN") [$XEN_CMDLINE] accel=$ACCEL$extra, log $LOG"

# QEMU copies -kernel/-initrd file names into the module command lines, so
# run it from the boot folder with short names.
cp "$XEN" "$WORK/xen"
cp "$BUILD/images/vmlinuz" "$WORK/vmlinuz"

PANIC='Panic on CPU|Kernel panic|KVM internal error'
# Xen's line when it jumps to the crash kernel, and its line when dom0
# crashed with none loaded.
KEXEC='Executing kexec image on cpu'
NO_KEXEC="'noreboot' set - not rebooting"
# panic_seen: the first panic line, or (--kdump) the first one after Xen
# started the crash kernel: dom0's own panic is the expected way in.
panic_seen() {
    if [ "$KDUMP" = 0 ]; then
        grep -aoE "$PANIC" "$LOG" | head -n1
    else
        grep -aqF "$NO_KEXEC" "$LOG" && { echo "dom0 crashed but Xen has no crash kernel loaded"; return; }
        grep -aqE 'Panic on CPU|KVM internal error' "$LOG" && { grep -aoE 'Panic on CPU|KVM internal error' "$LOG" | head -n1; return; }
        sed -n "/$KEXEC/,\$p" "$LOG" | grep -aoE 'Kernel panic' | head -n1 | sed 's/^/crash kernel: /'
    fi
}
# Echo what dom0's programs print, from the first VP2M-RUN line on, without
# kernel and Xen log lines (those stay in the serial log).
echo_new() {
    local n
    # Complete lines only: a line still being written is taken next time.
    n=$(wc -l < "$LOG")
    [ "$n" -gt "$seen" ] || return 0
    sed -n "$((seen + 1)),${n}p" "$LOG" | tr -d '\r' | while IFS= read -r line; do
        case "$line" in VP2M-RUN:*) running=1 ;; esac
        [ "$running" = 1 ] || continue
        echo "$line" | grep -qE '^\[ *[0-9]+\.[0-9]+\]|^\(XEN\)' || echo "$line"
    done
    # The subshell above cannot set `running`; remember it from the log.
    grep -aq '^VP2M-RUN:' "$LOG" && running=1
    seen=$n
}

# Under TCG a boot very rarely stops dead before the dom0 kernel runs init
# (seen once in hundreds of boots: in the middle of the kernel's hash table
# setup, no panic, no output for minutes). Up to init, Xen and the kernel
# print steadily (the longest quiet spell over the 16 boots of a make test
# was 5 s, the kdump and domU boots included), so a serial log that has not
# grown for STALL seconds by then is such a stall, not a result: the boot is
# tried once more and says so. From init on, a hang is the tests' own and
# only the timeout judges it.
INIT_RAN='Run .* as init process'
# run_qemu FREEZE: boot once (FREEZE: a --freeze-on REGEX or empty); sets
# status (QEMU's exit status) or reason (why the boot was stopped), and
# stalled=1 for a stall before init.
run_qemu() {
    (
        cd "$WORK" && exec qemu-system-x86_64 -accel "$ACCEL" -cpu max -m "$MEM" -smp 2 \
            -nographic -no-reboot -serial stdio -monitor none \
            -device isa-debug-exit,iobase=0xf4,iosize=0x04 "${DRIVE[@]}" \
            -kernel xen -append "$XEN_CMDLINE" \
            -initrd "vmlinuz console=hvc0 earlyprintk=xen${DOM0_OPTS:+ $DOM0_OPTS},initrd.gz"
    ) > "$LOG" 2>&1 < /dev/null &
    local freeze=$1 qemu=$! now size last_size=-1 last_growth booted=0 frozen=0
    start=$(date +%s)
    last_growth=$start
    seen=0
    running=0
    reason=""
    stalled=0
    status=""
    while kill -0 "$qemu" 2>/dev/null; do
        # Echo dom0's result lines as they arrive.
        echo_new
        p=$(panic_seen)
        if [ -n "$p" ]; then
            reason="$p (see $LOG)"
            break
        fi
        if [ -n "$freeze" ] && [ "$frozen" = 0 ] && grep -aqE "$freeze" "$LOG"; then
            kill -STOP "$qemu"
            frozen=1
        fi
        now=$(date +%s)
        size=$(stat -c %s "$LOG")
        [ "$booted" = 1 ] || ! grep -aqE "$INIT_RAN" "$LOG" || booted=1
        if [ "$size" != "$last_size" ]; then
            last_size=$size
            last_growth=$now
        elif [ "$booted" = 0 ] && [ $((now - last_growth)) -ge "$STALL" ]; then
            reason="no serial output for ${STALL}s before the dom0 kernel ran init, last line: $(tail -n1 "$LOG" | tr -d '\r') (see $LOG)"
            stalled=1
            break
        fi
        if [ $((now - start)) -ge "$TIMEOUT" ]; then
            reason="timeout after ${TIMEOUT}s, last line: $(tail -n1 "$LOG" | tr -d '\r') (see $LOG)"
            break
        fi
        sleep 0.5
    done
    if [ -n "$reason" ]; then
        # A stopped QEMU takes SIGTERM only once it runs again.
        kill "$qemu" 2>/dev/null
        kill -CONT "$qemu" 2>/dev/null
        wait "$qemu" 2>/dev/null
        return
    fi
    wait "$qemu"
    status=$?
    echo_new
}

run_qemu "${FREEZE_ON[0]:-}"
if [ "$stalled" = 1 ]; then
    STALLED_LOG="${LOG%.log}.stalled.log"
    cp "$LOG" "$STALLED_LOG"
    echo "BOOT $NAME: stalled: ${reason/"$LOG"/"$STALLED_LOG"}; booting once more"
    run_qemu "${FREEZE_ON[1]:-}"
    if [ "$stalled" = 1 ]; then
        reason="stalled twice: $reason"
    else
        AFTER_STALL=" (the second boot; the first stalled)"
    fi
fi
[ -z "$reason" ] || fail "$reason"
elapsed=$(( $(date +%s) - start ))
if [ "$KDUMP" = 1 ]; then
    if ! grep -aq "$KEXEC" "$LOG"; then
        [ "$status" = 3 ] && fail "a dom0 program failed before the crash (see the VP2M lines above and $LOG)" 1
        fail "--kdump: QEMU exited with status $status but Xen never started the crash kernel (see $LOG)"
    fi
    [ "$status" = 3 ] && fail "the crash kernel saved no dump (see the VP2M-KDUMP lines above and $LOG)" 1
fi
case "$status" in
    1) echo "BOOT $NAME: PASSED (${elapsed}s)$AFTER_STALL"; exit 0 ;;
    3) fail "a dom0 program failed (see the VP2M-EXIT lines above and $LOG)" 1 ;;
    5) fail "$(grep -a '^VP2M-FAIL' "$LOG" | head -n1 | tr -d '\r' | sed 's/^VP2M-FAIL: //') (see $LOG)" ;;
    *) fail "QEMU exited with status $status before dom0 reported (see $LOG)" ;;
esac
