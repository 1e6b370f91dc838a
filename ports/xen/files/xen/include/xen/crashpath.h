/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xen/crashpath.h - Xen's side of the crashpath glue (arch/x86/crashpath.c): what the rest of
 * Xen calls. With CONFIG_CRASHPATH off every call compiles to nothing.
 */
#ifndef __XEN_CRASHPATH_H__
#define __XEN_CRASHPATH_H__

#include <xen/keyhandler.h>
#include <xen/multiboot.h>

#ifdef CONFIG_CRASHPATH

/* __start_xen(): claim the multiboot modules marked crashpath=kernel and crashpath=initrd */
void crashpath_xen_grab_modules(unsigned long *module_map, const multiboot_info_t *mbi);
/* kexec_crash(): crash through crashpath; returns only if it holds no image or refused */
void crashpath_xen_crash(enum crash_reason reason);
/* the kexec hypercall: crash images may not be loaded while crashpath owns the crash area */
bool crashpath_xen_owns_crash_area(void);
/* VMX NMI exits: park this CPU if a crash is under way (crashpath's own API; its header
 * declares it too, and the glue includes that first) */
#ifndef CRASHPATH_H
int crashpath_nmi_vmexit(void);
#endif

#else

static inline void crashpath_xen_grab_modules(unsigned long *module_map, const multiboot_info_t *mbi) {}
static inline void crashpath_xen_crash(enum crash_reason reason) {}
static inline bool crashpath_xen_owns_crash_area(void) { return false; }
static inline int crashpath_nmi_vmexit(void) { return 0; }

#endif

#endif /* __XEN_CRASHPATH_H__ */
