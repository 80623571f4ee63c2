# SPDX-License-Identifier: Apache-2.0 OR MIT
# The PV test guest (tests/guest): one source tree, two ELF kernels built with
# the system gcc, against the pinned tree's public headers (ABI types only).
#   $(BUILD)/guest/guest-pv64     64-bit PV
#   $(BUILD)/guest/guest-pv32pae  32-bit PAE PV (gcc -m32, gcc-multilib)
# Included by the top-level Makefile; make's own timestamps cache it.
GUEST_DIR := tests/guest
GUEST_OUT := $(BUILD)/guest
GUEST_SRC := $(wildcard $(GUEST_DIR)/*.c $(GUEST_DIR)/*.S)
GUEST_DEPS := $(GUEST_SRC) $(wildcard $(GUEST_DIR)/*.h) $(GUEST_DIR)/guest.lds $(GUEST_DIR)/guest.mk
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-pie \
    -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin -mno-red-zone \
    -mgeneral-regs-only -D__XEN_INTERFACE_VERSION__=0x00040e00 \
    -I$(BUILD)/xen-patched/xen/include
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,$(GUEST_DIR)/guest.lds -Wl,--build-id=none \
    -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments

.PHONY: guest
guest: $(GUEST_OUT)/guest-pv64 $(GUEST_OUT)/guest-pv32pae

$(GUEST_OUT)/guest-pv64: $(GUEST_DEPS) $(BUILD)/xen-patched/.extracted | $(BUILD)/.deps
	@mkdir -p $(@D)
	gcc -m64 $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(GUEST_SRC) -lgcc

$(GUEST_OUT)/guest-pv32pae: $(GUEST_DEPS) $(BUILD)/xen-patched/.extracted | $(BUILD)/.deps
	@mkdir -p $(@D)
	gcc -m32 -march=i686 $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(GUEST_SRC) -lgcc

# The guest on real Xen: patched, patched with the bit hidden, pristine; both
# widths, stock xl and SIF_VIRT_P2M_4TOOLS (tests/harness/guest-test.sh).
.PHONY: guest-test
guest-test: images tools rootfs guest
	@$(HARNESS)/guest-test.sh $(BUILD)

# Hostile images (tests/guest/images/*.desc, format in docs/guest.md).
GUEST_IMAGES := $(patsubst $(GUEST_DIR)/images/%.desc,$(GUEST_OUT)/images/%.img,\
    $(wildcard $(GUEST_DIR)/images/*.desc))
guest: $(GUEST_IMAGES)
$(GUEST_OUT)/images/%.img: $(GUEST_DIR)/images/%.desc $(GUEST_DIR)/mkimage.py
	@mkdir -p $(@D)
	@python3 $(GUEST_DIR)/mkimage.py $< $@

# Hostile images against the reader: make guest-image IMAGE="A.desc B.desc ..."
.PHONY: guest-image
guest-image: images tools rootfs guest
	@[ -n "$(IMAGE)" ] || { echo 'usage: make guest-image IMAGE="tests/guest/images/NAME.desc ..."'; exit 2; }
	@$(HARNESS)/guest-test.sh $(BUILD) --image $(IMAGE)
