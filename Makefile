# SPDX-License-Identifier: Apache-2.0 OR MIT
# The two user commands:
#   make        fetch the pinned Xen source, patch, build, ABI check, boot the
#               patched Xen in QEMU and print dom0's report
#   make test   every test: cargo tests, then the real-Xen checks in QEMU
# Everything is cached under $(BUILD); each step rebuilds only what changed.

BUILD   := build
HARNESS := tests/harness
IMAGES  := $(BUILD)/images
PATCHES := $(sort $(wildcard xen-patches/*.patch)) xen-patches/series
RUST_SRC := $(shell find Cargo.toml Cargo.lock xen-sys hv-feature tests/Cargo.toml tests/Cargo.lock tests/src \
                         -type f -not -path '*/target/*' 2>/dev/null)

BOOT = $(HARNESS)/boot.sh --build $(BUILD)
TOOLS = $(BUILD)/bin/hv-feature $(BUILD)/bin/host-tests
# Extra Xen options for `make boot`, e.g. make boot XEN_OPTS=pv=virt-p2m=no
XEN_OPTS ?=

.PHONY: all report deps xen-trees xen dom0-kernel initramfs images tools boot \
        test lint cargo-test patch-check abi abi-test abi-history abi-bench fuzz fuzz-long bench \
        harness-test host-test clean bindings bindings-check publish-check \
        rootfs domu-test staging-test kdump-images kdump-test toolstack

all: report

# ---- Packages and the deb-src entry --------------------------------------
deps: $(BUILD)/.deps
$(BUILD)/.deps: $(HARNESS)/deps.sh
	@mkdir -p $(BUILD)
	@$(HARNESS)/deps.sh
	@touch $@

# ---- Xen: pristine and patched trees, both hypervisors ---------------------
xen-trees: $(BUILD)/xen-patched/.extracted
$(BUILD)/xen-patched/.extracted: $(PATCHES) $(HARNESS)/xen-tree.sh | $(BUILD)/.deps
	@$(HARNESS)/xen-tree.sh $(BUILD) xen-patches

xen: $(IMAGES)/xen-patched $(IMAGES)/xen-pristine
$(IMAGES)/xen-patched: $(BUILD)/xen-patched/.extracted $(HARNESS)/xen-build.sh $(HARNESS)/xen.config
	@$(HARNESS)/xen-build.sh $(BUILD)/xen-patched $@
$(IMAGES)/xen-pristine: $(BUILD)/xen-patched/.extracted $(HARNESS)/xen-build.sh $(HARNESS)/xen.config
	@$(HARNESS)/xen-build.sh $(BUILD)/xen-pristine $@

# ---- dom0: Debian's kernel and the busybox initramfs -----------------------
dom0-kernel: $(IMAGES)/vmlinuz
$(IMAGES)/vmlinuz: $(HARNESS)/dom0-kernel.sh | $(BUILD)/.deps
	@$(HARNESS)/dom0-kernel.sh $(BUILD)
	@touch $@

initramfs: $(IMAGES)/initrd-base.cpio.gz
$(IMAGES)/initrd-base.cpio.gz: $(IMAGES)/vmlinuz $(HARNESS)/initramfs.sh $(HARNESS)/initramfs/init
	@$(HARNESS)/initramfs.sh $(BUILD) $(HARNESS)

images: xen dom0-kernel initramfs

# ---- Our toolstacks: xl, libxl, libxenguest, xenstored, xenconsoled -------
# From the patched tree and the pristine one (the control), installed under
# /opt/xen-patched and /opt/xen-pristine of the rootfs.  toolstack.sh mirrors
# the tree by content and builds incrementally; its stamp (.key) only moves
# when it rebuilt, so an unchanged tree leaves the rootfs alone.
TOOLSTACKS := $(BUILD)/toolstack/patched/.key $(BUILD)/toolstack/pristine/.key
toolstack: $(TOOLSTACKS)
$(BUILD)/toolstack/%/.key: $(BUILD)/xen-patched/.extracted $(HARNESS)/toolstack.sh | $(BUILD)/.deps
	@$(HARNESS)/toolstack.sh $(BUILD) $*

# ---- dom0 root file system with the Xen toolstacks, and a PV domU ----------
# Not part of `images`: only the domU boots need it.
rootfs: $(IMAGES)/rootfs.ext4
$(IMAGES)/rootfs.ext4 $(IMAGES)/initrd-rootfs.cpio.gz &: $(IMAGES)/vmlinuz $(HARNESS)/rootfs.sh \
        $(wildcard $(HARNESS)/rootfs/*) $(TOOLSTACKS) | $(BUILD)/.deps
	@$(HARNESS)/rootfs.sh $(BUILD)

# ---- Static programs for dom0 ---------------------------------------------
tools: $(TOOLS)
$(TOOLS) &: $(RUST_SRC) $(HARNESS)/build-tools.sh $(BUILD)/xen-patched/.extracted
	@$(HARNESS)/build-tools.sh $(BUILD)

# ---- Header ABI: pristine against patched -----------------------------------
XEN_ABI = cargo run --release -q --locked -p xen-abi --
abi: $(BUILD)/xen-patched/.extracted
	@echo "abi: xen-abi diff build/xen-pristine build/xen-patched"
	@$(XEN_ABI) diff $(BUILD)/xen-pristine $(BUILD)/xen-patched

# The diff must be exactly what the series adds on both ABIs (the feature
# bit, the crash note's constants and descriptor), and both trees must
# satisfy the invariants and their reference.size.
SERIES_ABI := --expect XENFEAT_virtual_p2m=21 --expect XEN_ELFNOTE_CRASH_DOM0_P2M=16777219 \
    --expect XEN_CRASH_DOM0_P2M_VERSION=1 --expect XEN_CRASH_DOM0_P2M_PV=1 \
    --expect XEN_CRASH_DOM0_P2M_COMPAT=2 --expect 'struct xen_crash_dom0_p2m=48' --expect 'typedef xen_crash_dom0_p2m_t=48'
abi-test: $(BUILD)/xen-patched/.extracted
	cargo test --locked -p xen-abi --test fixtures
	$(XEN_ABI) diff $(BUILD)/xen-pristine $(BUILD)/xen-patched $(SERIES_ABI)
	$(XEN_ABI) check $(BUILD)/xen-pristine
	$(XEN_ABI) check $(BUILD)/xen-patched

# ---- Header ABI: upstream Xen's own history as a test ----------------------
# `xen-abi history` diffs every consecutive pair of the corpus (4.6.0 -> ... ->
# staging, both ABIs) and fails when its per-pair table differs from the one
# committed in xen-abi/tests/history.md. ABI_HISTORY is the corpus tarball.
ABI_HISTORY ?= ../shared/upstream/xen-public-headers-4.6-to-staging.tar.xz
ABI_HISTORY_DIR := $(BUILD)/abi-history
abi-history: $(ABI_HISTORY_DIR)/.extracted
	$(XEN_ABI) history $(ABI_HISTORY_DIR) --expected xen-abi/tests/history.md

$(ABI_HISTORY_DIR)/.extracted: $(ABI_HISTORY)
	@rm -rf $(ABI_HISTORY_DIR) && mkdir -p $(ABI_HISTORY_DIR)
	tar -xJf $(ABI_HISTORY) -C $(ABI_HISTORY_DIR)
	@touch $@

$(ABI_HISTORY):
	@echo "abi-history: no corpus at $@; pass ABI_HISTORY=/path/to/xen-public-headers-4.6-to-staging.tar.xz" >&2
	@exit 2

# Wall time of the whole history (17 pairs, both ABIs), three runs, with the
# machine's load average (figure in docs/abi-rules.md).
abi-bench: $(ABI_HISTORY_DIR)/.extracted
	@cargo build --release -q --locked -p xen-abi
	@for run in 1 2 3; do \
	    printf 'run %s (load %s): ' $$run "$$(cut -d' ' -f1-3 /proc/loadavg)"; \
	    target/release/xen-abi history $(ABI_HISTORY_DIR) | grep ' pairs ('; \
	done

# ---- make: boot the patched Xen and print dom0's report --------------------
report: abi images tools
	@$(BOOT) report --run 'hv-feature features' --run 'hv-feature info 0' \
	    --run 'hv-feature p2m 0' --run 'hv-feature verify 0' $(BUILD)/bin/hv-feature

# Boot the patched Xen by hand with extra options.
boot: images tools
	@$(BOOT) manual --xen-opts "$(XEN_OPTS)" --run 'hv-feature features' \
	    --run 'hv-feature info 0' $(BUILD)/bin/hv-feature

# ---- make test --------------------------------------------------------------
test: lint cargo-test bindings-check publish-check patch-check abi-test abi-history fuzz harness-test host-test kdump-test \
      guest-test

lint: $(BUILD)/xen-patched/.extracted
	cargo fmt --all --check
	cargo fmt --manifest-path tests/Cargo.toml --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo clippy --locked -p xen-abi --test fixtures -- -D warnings
	cargo clippy --locked -p xen-p2m-sys --features xen-tree --all-targets -- -D warnings
	cargo clippy --locked --manifest-path tests/Cargo.toml --target-dir target --all-targets -- -D warnings

# Needs no Xen tree, libclang or build folder (what a user of the crates has).
cargo-test:
	cargo test --workspace --locked

# ---- xen-sys's committed bindings (xen-sys/src/bindings.rs) -----------------
# `bindings` regenerates them from XEN_TREE (default: the pinned patched
# tree); `bindings-check` fails when they are stale, then runs xen-sys's
# tests on the tree's bindings against the C compiler's layout (layout.c).
XEN_TREE ?= $(BUILD)/xen-patched
XEN_TREE_READY := $(if $(filter $(BUILD)/xen-patched,$(XEN_TREE)),$(BUILD)/xen-patched/.extracted)
bindings: $(XEN_TREE_READY)
	@$(HARNESS)/bindings.sh write $(XEN_TREE)

bindings-check: $(XEN_TREE_READY)
	@$(HARNESS)/bindings.sh check $(XEN_TREE)

# `cargo publish --dry-run` of the crates meant for crates.io (xen-p2m-sys,
# hv-feature, xen-abi), their file lists, and their tests run from the
# packages alone (needs crates.io's index, no Xen tree).
publish-check:
	@$(HARNESS)/publish-check.sh $(BUILD)

patch-check: $(IMAGES)/xen-patched $(IMAGES)/xen-pristine
	@$(HARNESS)/patch-check.sh $(BUILD) xen-patches

# Coverage-guided fuzzing of the p2m reader on simulated hostile guests
# (cargo-fuzz, installed under $(BUILD)/tools on first use). `fuzz` is the
# short run of `make test`; `fuzz-long` the documented long one.
FUZZ_SECONDS ?= 30
fuzz:
	@$(HARNESS)/fuzz.sh $(FUZZ_SECONDS)

fuzz-long:
	@$(HARNESS)/fuzz.sh --keep-corpus 1800

# Throughput, map calls and peak memory of the reader (figures in README).
bench:
	cargo bench --locked -p hv-feature --bench p2m_walk

# The harness itself fails fast and says why (panics, module, timeout).
harness-test: images
	@$(HARNESS)/self-test.sh $(BUILD)

host-test: images tools rootfs
	@$(HARNESS)/host-test.sh $(BUILD)

# Boot dom0 from the rootfs with our patched toolstack, create a PV domU with
# the stock `xl create` of each toolstack and read their shared_info: ours
# keeps SIF_VIRT_P2M_4TOOLS, so the guest drops its tree (~0); the pristine
# one and Debian's clear it, so the guest keeps it.  A quick look; the
# tests are host-test's patched-domu boot.
domu-test: images tools rootfs
	@$(BOOT) domu-test --disk $(IMAGES)/rootfs.ext4 --mem 1536 --timeout 1200 \
	    --dom0-opts vp2m.toolstack=patched \
	    --run 'vp2m-domu-start vp2m-domu' \
	    --run 'vp2m-toolstack pristine vp2m-domu-start vp2m-domu-pristine' \
	    --run 'vp2m-toolstack debian vp2m-domu-start vp2m-domu-debian' --run 'xl list' \
	    --run 'hv-feature info $$(xl domid vp2m-domu)' \
	    --run 'vp2m-domu-check vp2m-domu dropped' \
	    --run 'vp2m-domu-check vp2m-domu-pristine kept' \
	    --run 'vp2m-domu-check vp2m-domu-debian kept' \
	    $(BUILD)/bin/hv-feature

# ---- The series on upstream staging ------------------------------------------
# A Xen developer's own staging tree (a git checkout, a folder or a tarball):
# apply xen-patches/staging, build pristine and patched, header and ABI
# checks, and boots of both with this project's hv-feature (docs/staging.md).
XEN_SRC ?= ../shared/upstream/xen-staging-c447b7308b.tar.xz
staging-test: dom0-kernel initramfs tools | $(BUILD)/.deps
	@$(HARNESS)/staging-test.sh $(BUILD) xen-patches/staging $(XEN_SRC)

# ---- The PV test guest (pv64, pv32pae) and its boot -----------------------
include tests/guest/guest.mk

# ---- kdump: Xen host crash dumps made in QEMU, read on the host -------------
# The crash initrd, Debian's kexec-tools binary and dom0's debug vmlinux
# (for crash; about 860 MB downloaded once into $(BUILD)/dl).
kdump-images: $(IMAGES)/kdump/crash-initrd.gz
$(IMAGES)/kdump/crash-initrd.gz: $(IMAGES)/vmlinuz $(HARNESS)/kdump-images.sh \
        $(HARNESS)/kdump/crash-init | $(BUILD)/.deps
	@$(HARNESS)/kdump-images.sh $(BUILD)

# Three kdump boots (patched, patched with dom0=virt-p2m, pristine), then
# hv-feature vmcore, crash and makedumpfile on the dumps (build/kdump/).
kdump-test: images tools rootfs kdump-images
	@$(HARNESS)/kdump-test.sh $(BUILD)

clean:
	rm -rf $(BUILD) target
