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

LIB_C := $(wildcard apic/*.c) $(wildcard crash/*.c)
LIB_ASM := $(wildcard entry/*.asm)
LIB_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(LIB_C)) $(patsubst %.asm,$(OBJ)/%.o,$(LIB_ASM))

# Freestanding: no libc, no SSE/x87 state touched (an NMI handler must not
# clobber the interrupted context's vector registers), no red zone (an NMI or
# exception frame would land on it), position-independent so the archive
# links into a higher-half hypervisor and into host tests alike.
# Crash-time code runs on whatever stack the NMI interrupted: frames stay
# small. Load-time code (crash/kdump.c) runs once at boot and may use more.
FRAME_LIMIT := 256
WARN = -Wall -Wextra -Werror -Wframe-larger-than=$(FRAME_LIMIT)
LIB_CFLAGS = -std=gnu11 -O2 -g $(WARN) -ffreestanding -fno-builtin -nostdinc \
	-isystem $(shell $(CC) -print-file-name=include) \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector -fpie \
	-fno-common -Iinclude
NASMFLAGS := -f elf64 -Werror -g

# The archive holds one object whose only global symbols are the public API,
# so nothing of crashpath's inside can collide with the host's names.
EXPORTS := crashpath_init crashpath_strerror crashpath_crash crashpath_nmi_vmexit crashpath_load_kdump \
	crashpath_apic_mode trap_nop nmi_crash enable_nmis

.PHONY: all deps check unit symbols clang-build mutants clean

all: $(BUILD)/libcrashpath.a

$(OBJ)/crash/kdump.o: FRAME_LIMIT := 512

$(OBJ)/%.o: %.c include/crashpath.h $(wildcard include/cp/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(LIB_CFLAGS) -c $< -o $@

$(OBJ)/%.o: %.asm
	@mkdir -p $(dir $@)
	@echo "  NASM    $<"
	$(Q)$(NASM) $(NASMFLAGS) $< -o $@

$(BUILD)/libcrashpath.a: $(OBJ)/crashpath.o
	@rm -f $@
	@echo "  AR      $@"
	$(Q)$(AR) rcs $@ $<

$(OBJ)/crashpath.o: $(LIB_OBJS)
	@echo "  LD      $@"
	$(Q)$(LD) -r -o $@.tmp $^
	$(Q)$(OBJCOPY) $(addprefix --keep-global-symbol=,$(EXPORTS)) $@.tmp $@
	@rm -f $@.tmp

deps:
	@bash tests/deps.sh

# ---- host unit tests: the library's C with the hardware layer simulated ----
# The real entry stubs are linked in: nmi_crash, enable_nmis and the capture
# stubs run as they are, in user mode (IRETQ to the same privilege works there).
UNIT_DIR := tests/unit
UNIT_BIN := $(BUILD)/unit/run-unit
HOST_CC ?= gcc
UNIT_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -pthread -mcx16 -Iinclude -I$(UNIT_DIR)
UNIT_LIB_C := $(filter-out crash/hw_x86.c,$(LIB_C))
UNIT_SRC := $(wildcard $(UNIT_DIR)/*.c)
UNIT_ASM_OBJS := $(patsubst entry/%.asm,$(BUILD)/unit/entry/%.o,$(LIB_ASM)) \
	$(patsubst $(UNIT_DIR)/%.asm,$(BUILD)/unit/%.o,$(wildcard $(UNIT_DIR)/*.asm))

$(BUILD)/unit/entry/%.o: entry/%.asm
	@mkdir -p $(dir $@)
	$(Q)$(NASM) $(NASMFLAGS) $< -o $@

$(BUILD)/unit/%.o: $(UNIT_DIR)/%.asm
	@mkdir -p $(dir $@)
	$(Q)$(NASM) $(NASMFLAGS) $< -o $@

$(UNIT_BIN): $(UNIT_SRC) $(UNIT_LIB_C) $(UNIT_ASM_OBJS) $(wildcard $(UNIT_DIR)/*.h) include/crashpath.h $(wildcard include/cp/*.h)
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOST_CC) $(UNIT_CFLAGS) -o $@ $(UNIT_SRC) $(UNIT_LIB_C) $(UNIT_ASM_OBJS)

unit: $(UNIT_BIN)
	@$(UNIT_BIN)

symbols: $(BUILD)/libcrashpath.a
	@bash tests/check-symbols.sh $(BUILD)/libcrashpath.a

# The library must build warning-free under clang as well as gcc.
clang-build:
	@$(MAKE) --no-print-directory CC=clang BUILD=$(BUILD)/clang all

# Each protection broken on purpose, one at a time: its unit test must fail.
mutants:
	@python3 tests/mutants.py

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory clang-build
	@$(MAKE) --no-print-directory symbols
	@$(MAKE) --no-print-directory mutants
	@$(MAKE) --no-print-directory unit

clean:
	rm -rf $(BUILD)
