# SPDX-License-Identifier: BSD-2-Clause
# Makefile — builds libcrashpath.a (freestanding C + NASM) and runs crashpath's tests.
# `make` builds the library; `make check` installs what is missing and runs every test.

CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif
NASM ?= nasm
AR ?= ar
LD ?= ld
OBJCOPY ?= objcopy

BUILD := build
# `make V=1` shows the full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif
OBJ := $(BUILD)/obj/$(notdir $(CC))

# The folders say when code runs: load/ at load time (crashpath_init,
# crashpath_load_kdump), crash/, apic/ and entry/ at crash time. Load time may
# call crash-time code, never the other way round (the archive rule checks).
LOAD_C := $(wildcard load/*.c)
CRASH_C := $(wildcard apic/*.c) $(wildcard crash/*.c)
LIB_C := $(CRASH_C) $(LOAD_C)
LIB_ASM := $(wildcard entry/*.asm)
LOAD_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(LOAD_C))
CRASH_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(CRASH_C)) $(patsubst %.asm,$(OBJ)/%.o,$(LIB_ASM))
LIB_OBJS := $(CRASH_OBJS) $(LOAD_OBJS)

# Freestanding: no libc, no SSE/x87 state touched (an NMI handler must not
# clobber the interrupted context's vector registers), no red zone (an NMI or
# exception frame would land on it), position-independent so the archive
# links into a higher-half hypervisor and into host tests alike.
# Crash-time code runs on whatever stack the NMI interrupted: frames stay
# small. Load-time code (load/) runs once at boot and may use more.
# -Os: the crash path is not hot (its time is the NMIs' and the victims'),
# and it must stay small (make bench reports the budget).
# IBT (CET indirect branch tracking), which Xen and Linux turn on where the CPU
# has it: -fcf-protection=branch puts ENDBR64 at every function whose address
# can be taken, and -fno-jump-tables keeps switch statements from becoming
# NOTRACK indirect jumps to labels without one (#CP when the host leaves
# IA32_S_CET.NO_TRACK_EN clear, as Xen does). tests/check-ibt.py proves both
# on the archive.
FRAME_LIMIT := 256
WARN = -Wall -Wextra -Werror -Wframe-larger-than=$(FRAME_LIMIT)
LIB_CFLAGS = -std=gnu11 -Os -g $(WARN) -ffreestanding -fno-builtin -nostdinc \
	-isystem $(shell $(CC) -print-file-name=include) \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector -fpie \
	-fno-common -fcf-protection=branch -fno-jump-tables -Iinclude
NASMFLAGS := -f elf64 -Werror -g

# The archive holds one object whose only global symbols are the public API,
# so nothing of crashpath's inside can collide with the host's names.
EXPORTS := crashpath_init crashpath_strerror crashpath_crash crashpath_nmi_vmexit crashpath_load_kdump crashpath_kdump_info \
	crashpath_apic_mode crashpath_trap_nop crashpath_nmi_crash crashpath_mce_crash crashpath_enable_nmis

.PHONY: all deps check unit symbols clang-build mutants hv mini linux-kdump linux-own-kdump xen-images xen-kdump xen xen-demo mutants-xen check-xen scenarios-all scenarios scenario check-bochs stress stress-smoke demo bench install embed dump-tool-test lint unit-san fuzz fuzz-smoke clean

all: $(BUILD)/libcrashpath.a

# Load-time code (everything in load/) goes to its own section,
# .text.crashpath_load, so its size is seen apart from the crash path's and a
# host may place it away from the crash path's pages or discard it after
# boot. It runs once, at boot, and may use larger frames.
$(OBJ)/load/%.o: SECTION_RENAME = $(OBJCOPY) --rename-section .text=.text.crashpath_load $@
$(OBJ)/load/%.o: FRAME_LIMIT := 512

$(OBJ)/%.o: %.c include/crashpath.h $(wildcard include/cp/*.h) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(LIB_CFLAGS) -c $< -o $@
	$(if $(SECTION_RENAME),$(Q)$(SECTION_RENAME))

$(OBJ)/%.o: %.asm
	@mkdir -p $(dir $@)
	@echo "  NASM    $<"
	$(Q)$(NASM) $(NASMFLAGS) $< -o $@

$(BUILD)/libcrashpath.a: $(OBJ)/crashpath.o
	@rm -f $@
	@echo "  AR      $@"
	$(Q)$(AR) rcs $@ $<

# Crash-time code must not call load-time code: a function a crash-time object
# needs and a load-time object defines fails the build.
$(OBJ)/crashpath.o: $(LIB_OBJS)
	@nm -u $(CRASH_OBJS) | awk 'NF == 2 { print $$2 }' | sort -u > $@.needs
	@nm --defined-only $(LOAD_OBJS) | awk 'NF == 3 && $$2 ~ /^[TW]$$/ { print $$3 }' | sort -u > $@.load
	@if comm -12 $@.needs $@.load | grep .; then \
		echo "crash-time code calls load-time code (above): move it to crash/ or call it at load time"; \
		rm -f $@.needs $@.load; exit 1; fi
	@rm -f $@.needs $@.load
	@echo "  LD      $@"
	$(Q)$(LD) -r -o $@.tmp $^
	$(Q)$(OBJCOPY) $(addprefix --keep-global-symbol=,$(EXPORTS)) $@.tmp $@
	@rm -f $@.tmp

deps:
	@bash tests/deps.sh

# make install PREFIX=/usr/local: the archive, the public header, a pkg-config file, and
# crashpath-dump (tools/crashpath_dump.py), which reads crashpath's notes from a dump.
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/^\#define CRASHPATH_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' include/crashpath.h | paste -sd.)
install: $(BUILD)/libcrashpath.a
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 $(BUILD)/libcrashpath.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/crashpath.h $(DESTDIR)$(PREFIX)/include/
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: crashpath\nDescription: %s\nVersion: %s\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lcrashpath\n' \
		"$(PREFIX)" "x86-64 hypervisor crash path: NMI shootdown, crash notes, kdump hand-off" "$(VERSION)" \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/crashpath.pc
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 tools/crashpath_dump.py $(DESTDIR)$(PREFIX)/bin/crashpath-dump

# An out-of-tree consumer built against an installed copy through pkg-config only; the installed
# pkg-config file's version must be the header's and the changelog's.
embed: $(BUILD)/libcrashpath.a
	@rm -rf $(BUILD)/embed && $(MAKE) --no-print-directory install PREFIX=$(abspath $(BUILD)/embed/prefix) >/dev/null
	@python3 tests/check-version.py $(BUILD)/embed/prefix/lib/pkgconfig/crashpath.pc
	@PKG_CONFIG_PATH=$(abspath $(BUILD)/embed/prefix)/lib/pkgconfig $(MAKE) --no-print-directory -C tests/embed \
		OUT=$(abspath $(BUILD)/embed)

# ---- host unit tests: the library's C with the hardware layer simulated ----
# The real entry stubs are linked in: crashpath_nmi_crash, crashpath_enable_nmis and the capture
# stubs run as they are, in user mode (IRETQ to the same privilege works there).
UNIT_DIR := tests/unit
UNIT_BIN := $(BUILD)/unit/run-unit
HOST_CC ?= gcc
UNIT_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -pthread -mcx16 -Iinclude -I$(UNIT_DIR) -Itests/kdump
UNIT_LIB_C := $(filter-out crash/hw_x86.c,$(LIB_C))
UNIT_SRC := $(wildcard $(UNIT_DIR)/*.c) tests/kdump/check.c
UNIT_ASM_OBJS := $(patsubst entry/%.asm,$(BUILD)/unit/entry/%.o,$(LIB_ASM)) \
	$(patsubst $(UNIT_DIR)/%.asm,$(BUILD)/unit/%.o,$(wildcard $(UNIT_DIR)/*.asm))

$(BUILD)/unit/entry/%.o: entry/%.asm
	@mkdir -p $(dir $@)
	$(Q)$(NASM) $(NASMFLAGS) $< -o $@

$(BUILD)/unit/%.o: $(UNIT_DIR)/%.asm
	@mkdir -p $(dir $@)
	$(Q)$(NASM) $(NASMFLAGS) $< -o $@

$(UNIT_BIN): $(UNIT_SRC) $(UNIT_LIB_C) $(UNIT_ASM_OBJS) $(wildcard $(UNIT_DIR)/*.h) tests/kdump/check.h tests/kdump/marks.h include/crashpath.h $(wildcard include/cp/*.h)
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOST_CC) $(UNIT_CFLAGS) -o $@ $(UNIT_SRC) $(UNIT_LIB_C) $(UNIT_ASM_OBJS)

unit: $(UNIT_BIN)
	@$(UNIT_BIN)

# The same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
UNIT_SAN_BIN := $(BUILD)/unit/run-unit-san
$(UNIT_SAN_BIN): $(UNIT_SRC) $(UNIT_LIB_C) $(UNIT_ASM_OBJS) $(wildcard $(UNIT_DIR)/*.h) include/crashpath.h $(wildcard include/cp/*.h)
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@ (ASan, UBSan)"
	$(Q)$(HOST_CC) $(UNIT_CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=all \
		-fno-omit-frame-pointer -o $@ $(UNIT_SRC) $(UNIT_LIB_C) $(UNIT_ASM_OBJS)

unit-san: $(UNIT_SAN_BIN)
	@ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $(UNIT_SAN_BIN)

# crashpath-dump, from the source and installed, on the dump a unit test's crash leaves
# (kdump_core_file_for_crashpath_dump: the library's own ELF core header and notes).
DUMPTOOL_OUT := $(BUILD)/dumptool
dump-tool-test: $(UNIT_BIN)
	@rm -rf $(DUMPTOOL_OUT) && mkdir -p $(DUMPTOOL_OUT)
	@CRASHPATH_DUMP_CORE=$(DUMPTOOL_OUT)/unit.core $(UNIT_BIN) kdump_core_file_for_crashpath_dump \
		> $(DUMPTOOL_OUT)/unit.log || { cat $(DUMPTOOL_OUT)/unit.log; exit 1; }
	@$(MAKE) --no-print-directory install PREFIX=$(abspath $(DUMPTOOL_OUT)/prefix) >/dev/null
	@python3 tests/dump_tool_test.py $(DUMPTOOL_OUT) $(UNIT_BIN) tools/crashpath_dump.py \
		$(DUMPTOOL_OUT)/prefix/bin/crashpath-dump

# ---- the reference hypervisor (tests/hv) and the kdump verifier (tests/kdump/mini) ----
HV_DIR := tests/hv
HV_ELF := $(BUILD)/hv/hv.elf
HV_BOOT := $(BUILD)/hv/hv.elf32
# -fcf-protection=full -fno-jump-tables: the hypervisor runs as a CET host with cet=1 (tests/hv/cet.c):
# ENDBR64 on its C functions, and no NOTRACK jump tables (#CP with IA32_S_CET.NO_TRACK_EN clear).
# On a CPU without CET, or with cet=1 absent, ENDBR64 is a NOP.
HV_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -nostdinc \
	-isystem $(shell $(CC) -print-file-name=include) -mcmodel=kernel -mno-red-zone \
	-mgeneral-regs-only -fno-pic -fno-stack-protector -fno-omit-frame-pointer \
	-fcf-protection=full -fno-jump-tables -Iinclude -Itests/kdump
HV_OBJS := $(patsubst $(HV_DIR)/%.c,$(BUILD)/hv/%.o,$(wildcard $(HV_DIR)/*.c)) \
	$(patsubst $(HV_DIR)/%.asm,$(BUILD)/hv/%.o,$(wildcard $(HV_DIR)/*.asm))

$(BUILD)/hv/%.o: $(HV_DIR)/%.c $(HV_DIR)/hv.h tests/kdump/marks.h tests/kdump/x86.h include/crashpath.h Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(HV_CFLAGS) -c $< -o $@

$(BUILD)/hv/%.o: $(HV_DIR)/%.asm
	@mkdir -p $(dir $@)
	@echo "  NASM    $<"
	$(Q)$(NASM) $(NASMFLAGS) $< -o $@

$(HV_ELF): $(HV_OBJS) $(BUILD)/libcrashpath.a $(HV_DIR)/hv.ld
	@echo "  LD      $@"
	$(Q)$(LD) -n --no-warn-rwx-segments -T $(HV_DIR)/hv.ld -o $@ $(HV_OBJS) $(BUILD)/libcrashpath.a

# QEMU's multiboot loader takes ELF32 only: the same image, 32-bit container.
$(HV_BOOT): $(HV_ELF)
	$(Q)$(OBJCOPY) -O elf32-i386 $< $@

# The same hypervisor with a CPU table of 16 (Bochs 2.7 runs no more), for the Bochs rows:
# GRUB zeroes the image's .bss in emulation, and at 1024 CPUs it is 80 MiB (4 s a row).
HV16_OBJS := $(patsubst $(BUILD)/hv/%,$(BUILD)/hv16/%,$(HV_OBJS))
HV16_BOOT := $(BUILD)/hv16/hv.elf32
$(BUILD)/hv16/%.o: $(HV_DIR)/%.c $(HV_DIR)/hv.h tests/kdump/marks.h tests/kdump/x86.h include/crashpath.h Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $< (16 CPUs)"
	$(Q)$(CC) $(HV_CFLAGS) -DHV_MAX_CPUS=16 -c $< -o $@

$(BUILD)/hv16/%.o: $(BUILD)/hv/%.o
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

$(BUILD)/hv16/hv.elf: $(HV16_OBJS) $(BUILD)/libcrashpath.a $(HV_DIR)/hv.ld
	@echo "  LD      $@"
	$(Q)$(LD) -n --no-warn-rwx-segments -T $(HV_DIR)/hv.ld -o $@ $(HV16_OBJS) $(BUILD)/libcrashpath.a

$(HV16_BOOT): $(BUILD)/hv16/hv.elf
	$(Q)$(OBJCOPY) -O elf32-i386 $< $@

hv: $(HV_BOOT) $(HV16_BOOT)

# The mini verifier: position-independent (the hand-off picks its address), so
# any absolute relocation is a build error, not a wrong pointer at run time.
MINI_DIR := tests/kdump/mini
MINI := $(BUILD)/kdump/mini.bzImage
MINI_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -nostdinc \
	-isystem $(shell $(CC) -print-file-name=include) -fpie -fvisibility=hidden -mno-red-zone \
	-mgeneral-regs-only -fno-stack-protector -Iinclude -Itests/kdump
MINI_OBJS := $(BUILD)/kdump/mini/entry.o $(BUILD)/kdump/mini/verify.o $(BUILD)/kdump/mini/initsipi.o \
	$(BUILD)/kdump/mini/check.o

# The INIT-SIPI trampoline is real-mode code that runs where SIPI starts it: a flat blob,
# which entry.asm includes as data.
$(BUILD)/kdump/mini/init_trampoline.bin: $(MINI_DIR)/init_trampoline.asm
	@mkdir -p $(dir $@)
	$(Q)$(NASM) -f bin -Werror $< -o $@

$(BUILD)/kdump/mini/entry.o: $(BUILD)/kdump/mini/init_trampoline.bin
$(BUILD)/kdump/mini/%.o: $(MINI_DIR)/%.asm
	@mkdir -p $(dir $@)
	$(Q)$(NASM) $(NASMFLAGS) -i $(BUILD)/kdump/mini/ $< -o $@

$(BUILD)/kdump/mini/%.o: $(MINI_DIR)/%.c $(MINI_DIR)/mini.h tests/kdump/check.h tests/kdump/marks.h tests/kdump/x86.h include/crashpath.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(MINI_CFLAGS) -c $< -o $@

$(BUILD)/kdump/mini/check.o: tests/kdump/check.c tests/kdump/check.h tests/kdump/marks.h include/crashpath.h include/cp/elf64.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(MINI_CFLAGS) -c $< -o $@

$(BUILD)/kdump/mini.elf: $(MINI_OBJS) $(MINI_DIR)/mini.ld
	@if readelf -rW $(MINI_OBJS) | awk '/^Relocation section/ { code = $$3 !~ /debug/ } \
		code && /R_X86_64_(64|32|32S|GOTPCREL|GOTPCRELX|REX_GOTPCRELX) / { print; bad = 1 } END { exit !bad }'; then \
		echo "mini: absolute or GOT relocation: the verifier must be position-independent"; exit 1; fi
	@echo "  LD      $@"
	$(Q)$(LD) -n --no-warn-rwx-segments -T $(MINI_DIR)/mini.ld -o $@ $(MINI_OBJS)

$(MINI): $(BUILD)/kdump/mini.elf $(MINI_DIR)/mkbzimage.py
	$(Q)$(OBJCOPY) -O binary --only-section=.text --only-section=.rodata --only-section=.data $< $@.payload
	$(Q)python3 $(MINI_DIR)/mkbzimage.py $@.payload $< $@

mini: $(MINI)

# Linux as the kdump kernel: Debian's kernel and busybox-static unpacked into
# build/ (tests/kdump/linux/fetch.sh), vmcore-check, and an initramfs of them.
LINUX_DIR := tests/kdump/linux
LINUX_OUT := $(BUILD)/kdump/linux
LINUX_KERNEL := $(LINUX_OUT)/vmlinuz
LINUX_INITRD := $(LINUX_OUT)/initramfs.cpio.gz
VIRTIO_MODULES := virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
# the dump disk is ext2 (the runner's mke2fs), mounted through ext4 and what it depends on
FS_MODULES := crc16 crc32c_generic mbcache jbd2 ext4

$(LINUX_KERNEL): $(LINUX_DIR)/fetch.sh $(LINUX_DIR)/download-with-libs.sh
	@echo "  FETCH   Debian kernel and busybox-static"
	$(Q)bash $(LINUX_DIR)/fetch.sh $(LINUX_OUT)

$(LINUX_OUT)/vmcore-check: $(LINUX_DIR)/vmcore-check.c tests/kdump/check.c tests/kdump/check.h tests/kdump/marks.h include/crashpath.h include/cp/elf64.h
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOST_CC) -static -O2 -g -Wall -Wextra -Werror -Iinclude -Itests/kdump -o $@ \
		$(LINUX_DIR)/vmcore-check.c tests/kdump/check.c

$(LINUX_INITRD): $(LINUX_KERNEL) $(LINUX_OUT)/vmcore-check $(LINUX_DIR)/init $(LINUX_DIR)/mkinitramfs.py $(LINUX_DIR)/needed-libs.py
	@echo "  CPIO    $@"
	$(Q)mods=$$(for m in $(VIRTIO_MODULES) $(FS_MODULES); do \
		f=$$(find $(LINUX_OUT)/root/lib/modules -name $$m.ko | head -1); \
		[ -n "$$f" ] || { echo "no module $$m" >&2; exit 1; }; echo "lib/modules/$$m.ko=$$f"; done) && \
	libs=$$(python3 $(LINUX_DIR)/needed-libs.py $(LINUX_OUT)/root $(LINUX_OUT)/root/usr/bin/makedumpfile) && \
	python3 $(LINUX_DIR)/mkinitramfs.py $@ bin=- dev=- proc=- sys=- tmp=- var=- var/crash=- lib=- lib/modules=- \
		lib64=- lib/x86_64-linux-gnu=- \
		init=$(LINUX_DIR)/init:755 bin/busybox=$(LINUX_OUT)/root/bin/busybox:755 \
		bin/vmcore-check=$(LINUX_OUT)/vmcore-check:755 $$mods \
		bin/makedumpfile=$(LINUX_OUT)/root/usr/bin/makedumpfile:755 $$libs

# The same kernel asking for 16 MiB alignment (CONFIG_PHYSICAL_ALIGN of distribution kernels).
$(LINUX_OUT)/vmlinuz-align16m: $(LINUX_KERNEL) $(LINUX_DIR)/realign.py
	$(Q)python3 $(LINUX_DIR)/realign.py $< $@ 0x1000000

linux-kdump: $(LINUX_KERNEL) $(LINUX_INITRD) $(LINUX_OUT)/vmlinuz-align16m

# Linux's own kdump, for make bench: a first kernel whose initramfs loads the same kernel and
# kdump initramfs into its crash slot (kexec_file_load) and crashes through sysrq.
LINUX_CRASH_INITRD := $(LINUX_OUT)/crash-initramfs.cpio
$(LINUX_OUT)/kexec-load: $(LINUX_DIR)/kexec-load.c
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOST_CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

$(LINUX_CRASH_INITRD): $(LINUX_INITRD) $(LINUX_OUT)/kexec-load $(LINUX_DIR)/crash-init $(LINUX_DIR)/cmdline
	@echo "  CPIO    $@"
	$(Q)python3 $(LINUX_DIR)/mkinitramfs.py $@ bin=- dev=- proc=- sys=- kdump=- \
		init=$(LINUX_DIR)/crash-init:755 bin/busybox=$(LINUX_OUT)/root/bin/busybox:755 \
		bin/kexec-load=$(LINUX_OUT)/kexec-load:755 kdump/vmlinuz=$(LINUX_KERNEL) \
		kdump/initramfs.cpio.gz=$(LINUX_INITRD) kdump/cmdline=$(LINUX_DIR)/cmdline

linux-own-kdump: $(LINUX_KERNEL) $(LINUX_CRASH_INITRD)

# Xen's own kdump, side by side with crashpath (tests/compare.py): Debian's Xen 4.17 booted by
# QEMU, dom0 (the kdump kernel's own Linux) loading the same kdump kernel, initramfs and
# command line into Xen's crash area with kexec-tools; vmcore-check saves that dump unjudged.
XEN_DIR := tests/xen
XEN_OUT := $(BUILD)/xen
XEN_IMG := $(XEN_OUT)/xen.img
XEN_DOM0_INITRD := $(XEN_OUT)/dom0-initramfs.cpio.gz
XEN_HPTOOL := $(XEN_OUT)/root/usr/lib/xen-4.17/bin/xen-hptool
DOM0_MODULES := xen-privcmd xenfs

$(XEN_IMG): $(XEN_DIR)/fetch.sh $(LINUX_DIR)/download-with-libs.sh
	@echo "  FETCH   Debian's Xen 4.17, xen-syms and kexec-tools"
	$(Q)bash $(XEN_DIR)/fetch.sh $(XEN_OUT)

$(XEN_OUT)/kdump-cmdline: $(LINUX_DIR)/cmdline
	@mkdir -p $(dir $@)
	$(Q)echo "$$(cat $<) kdump.save=elf kdump.judge=none" > $@

$(XEN_DOM0_INITRD): $(XEN_IMG) $(LINUX_KERNEL) $(LINUX_INITRD) $(XEN_DIR)/dom0-init $(XEN_OUT)/kdump-cmdline \
		$(LINUX_DIR)/mkinitramfs.py $(LINUX_DIR)/needed-libs.py
	@echo "  CPIO    $@"
	$(Q)mods=$$(for m in $(DOM0_MODULES); do \
		f=$$(find $(LINUX_OUT)/root/lib/modules -name $$m.ko | head -1); \
		[ -n "$$f" ] || { echo "no module $$m" >&2; exit 1; }; echo "lib/modules/$$m.ko=$$f"; done) && \
	libs=$$( (python3 $(LINUX_DIR)/needed-libs.py $(XEN_OUT)/root $(XEN_OUT)/root/sbin/kexec && \
		python3 $(LINUX_DIR)/needed-libs.py $(XEN_OUT)/root $(XEN_HPTOOL)) | sort -u) && \
	python3 $(LINUX_DIR)/mkinitramfs.py $@ bin=- dev=- proc=- sys=- lib=- lib/modules=- lib64=- \
		lib/x86_64-linux-gnu=- kdump=- init=$(XEN_DIR)/dom0-init:755 \
		bin/busybox=$(LINUX_OUT)/root/bin/busybox:755 bin/kexec=$(XEN_OUT)/root/sbin/kexec:755 \
		bin/xen-hptool=$(XEN_HPTOOL):755 $$mods $$libs \
		kdump/vmlinuz=$(LINUX_KERNEL) kdump/initramfs.cpio.gz=$(LINUX_INITRD) kdump/cmdline=$(XEN_OUT)/kdump-cmdline

xen-images: linux-kdump $(XEN_IMG) $(XEN_DOM0_INITRD)

# The side-by-side table: each comparison row run for crashpath and for Xen's and Linux's own kdump
# (tests/compare.py; COMPARE_ARGS=--doc also writes docs/comparison.md); Xen or Linux failing a row is a
# result, printed, not a failure of this target.
xen-kdump: deps
	@$(MAKE) --no-print-directory hv xen-images linux-own-kdump xen
	@python3 tests/compare.py $(COMPARE_ARGS)

# Xen 4.17 built from Debian's source with its crash path handed to crashpath (ports/xen): the
# library installed under build/, the patches and glue applied to a copy of the source.
XEN_CP_PREFIX := $(abspath $(BUILD))/install
xen: deps $(BUILD)/libcrashpath.a
	@$(MAKE) --no-print-directory install PREFIX=$(XEN_CP_PREFIX) > /dev/null
	@bash ports/xen/build-xen.sh $(XEN_OUT) $(XEN_CP_PREFIX)

# Every row of tests/scenarios.table under QEMU; `make scenario S=<name>` runs
# one row and shows its console.
scenarios: hv $(MINI) linux-kdump xen xen-images
	@tests/run-scenarios

scenario: hv $(MINI) linux-kdump xen xen-images
	@tests/run-scenarios --show $(S)

# Every row, with those make check leaves out (long=1 in the table).
scenarios-all: hv $(MINI) linux-kdump xen xen-images
	@tests/run-scenarios --long

# The Xen port in full: every xen-* row and the port's mutants (each rebuilds Xen).
check-xen: hv $(MINI) linux-kdump xen xen-images
	@tests/run-scenarios --long xen-
	@python3 tests/mutants.py --suite xen

# The second CPU model: the table's Bochs rows (which `make scenarios` runs too), then
# every QEMU row again on each Bochs model (tests/bochs.py); rows Bochs cannot run (QMP
# events, Linux, QEMU topologies, more than 16 CPUs) are skipped, saying why. ~30 minutes.
BOCHS_MODELS ?= bochs:tigerlake,bochs:corei7_icelake_u,bochs:ryzen
check-bochs: deps
	@$(MAKE) --no-print-directory hv $(MINI)
	@tests/run-scenarios --long --on $(BOCHS_MODELS)

# Randomized runs (tests/stress.py): 200 from a random base seed, printed;
# `make stress SEED=<n>` reproduces one run, RUNS=<n> and BASE=<n> pick others.
# `make check` runs the fixed seeds STRESS_SMOKE_BASE .. +STRESS_SMOKE_RUNS-1.
STRESS_SMOKE_BASE ?= 1
STRESS_SMOKE_RUNS ?= 8
stress: deps
	@$(MAKE) --no-print-directory $(HV_BOOT) $(MINI)
	@python3 tests/stress.py $(if $(SEED),--seed $(SEED)) $(if $(BASE),--base $(BASE)) $(if $(RUNS),--runs $(RUNS))

stress-smoke: $(HV_BOOT) $(MINI)
	@python3 tests/stress.py --base $(STRESS_SMOKE_BASE) --runs $(STRESS_SMOKE_RUNS)

# Benchmarks (not tests): shootdown latency, ICR writes and send phase 2..1024 CPUs, the three
# send modes, with and without -icount (about 90 minutes: a 1024-vCPU icount run takes 15
# minutes); stack depth and size. BENCH_ARGS="--runs 1 --cpus 2,4" for a quick look,
# BENCH_ARGS="--cpus 16,255,1024 --send cluster" for one mode.
bench: deps
	@$(MAKE) --no-print-directory all $(HV_BOOT) $(MINI) linux-kdump linux-own-kdump xen-images
	@python3 tests/bench.py $(BENCH_ARGS)

# Boot the reference hypervisor on 4 vCPUs, crash it on an AP, kdump into
# Debian's Linux and report from the dump.
demo: deps
	@$(MAKE) --no-print-directory $(HV_BOOT) linux-kdump
	@python3 tests/demo.py

# The same for Xen 4.17 built with crashpath (ports/xen), crashed by its 'C' key with dom0 up.
xen-demo: deps
	@$(MAKE) --no-print-directory linux-kdump xen xen-images
	@python3 tests/demo.py --xen

symbols: $(BUILD)/libcrashpath.a
	@bash tests/check-symbols.sh $(BUILD)/libcrashpath.a
	@python3 tests/check-ibt.py $(BUILD)/libcrashpath.a

# The library must build warning-free under clang as well as gcc.
clang-build:
	@$(MAKE) --no-print-directory CC=clang BUILD=$(BUILD)/clang all
	@python3 tests/check-ibt.py $(BUILD)/clang/libcrashpath.a

# libFuzzer (clang) targets: the bzImage loader and the dump checker. `make fuzz`
# runs each for FUZZ_SECONDS; `make check` runs a short fixed-seed pass.
FUZZ_SECONDS ?= 60
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_FLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -mcx16 -pthread \
	-Iinclude -I$(UNIT_DIR) -Itests/kdump
FUZZ_ASM_OBJS := $(patsubst entry/%.asm,$(BUILD)/unit/entry/%.o,$(LIB_ASM))

$(FUZZ_DIR)/fuzz_bzimage: tests/fuzz/fuzz_bzimage.c $(UNIT_LIB_C) $(UNIT_DIR)/sim_hw.c $(FUZZ_ASM_OBJS) include/crashpath.h $(wildcard include/cp/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)clang $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_bzimage.c $(UNIT_LIB_C) $(UNIT_DIR)/sim_hw.c $(FUZZ_ASM_OBJS)

$(FUZZ_DIR)/fuzz_dumpcheck: tests/fuzz/fuzz_dumpcheck.c tests/kdump/check.c tests/kdump/check.h tests/kdump/marks.h include/crashpath.h
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)clang $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_dumpcheck.c tests/kdump/check.c

$(FUZZ_DIR)/seeds/bzimage/seed: tests/fuzz/seeds.py
	$(Q)python3 tests/fuzz/seeds.py $(FUZZ_DIR)/seeds

FUZZERS := bzimage dumpcheck
fuzz: $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZERS)) $(FUZZ_DIR)/seeds/bzimage/seed
	@for f in $(FUZZERS); do mkdir -p $(FUZZ_DIR)/corpus/$$f; \
		echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
		$(FUZZ_DIR)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -timeout=5 -artifact_prefix=$(FUZZ_DIR)/$$f- -print_final_stats=1 \
			$(FUZZ_DIR)/corpus/$$f $(FUZZ_DIR)/seeds/$$f 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' || exit 1; \
	done

fuzz-smoke: $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZERS)) $(FUZZ_DIR)/seeds/bzimage/seed
	@for f in $(FUZZERS); do \
		$(FUZZ_DIR)/fuzz_$$f -seed=1 -runs=3000 -timeout=5 -artifact_prefix=$(FUZZ_DIR)/$$f- $(FUZZ_DIR)/seeds/$$f \
			> $(FUZZ_DIR)/$$f-smoke.log 2>&1 || { tail -30 $(FUZZ_DIR)/$$f-smoke.log; exit 1; }; \
		echo "fuzz: $$f, 3000 runs from seed 1, no finding"; \
	done

# Static analysis of the library: cppcheck and clang-tidy (.clang-tidy), zero findings;
# every tracked file's SPDX license line (tests/check-spdx.py); one version in the header and
# the changelog (tests/check-version.py).
lint:
	$(Q)python3 tests/check-spdx.py
	$(Q)python3 tests/check-version.py
	@echo "  LINT    cppcheck"
	$(Q)cppcheck --enable=warning,style,performance,portability --std=c11 --inline-suppr -Iinclude \
		--error-exitcode=1 -q apic crash load
	@echo "  LINT    clang-tidy"
	$(Q)clang-tidy --quiet $(LIB_C) -- -std=gnu11 -ffreestanding -Iinclude -mno-red-zone -mgeneral-regs-only \
		2>&1 | { grep -E 'warning:|error:' && exit 1 || exit 0; }
	@echo "lint: no findings"

# Each protection broken on purpose, one at a time: its unit test must fail
# (or its scenario row, for which the Linux kdump kernel must be there).
mutants: linux-kdump
	@python3 tests/mutants.py

# The Xen port's mutants: each rebuilds Xen with one of its protections broken (minutes each).
mutants-xen: linux-kdump xen xen-images
	@python3 tests/mutants.py --suite xen

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory clang-build
	@$(MAKE) --no-print-directory symbols
	@$(MAKE) --no-print-directory embed
	@$(MAKE) --no-print-directory dump-tool-test
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory mutants
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-san
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory stress-smoke
	@$(MAKE) --no-print-directory scenarios

clean:
	rm -rf $(BUILD)
