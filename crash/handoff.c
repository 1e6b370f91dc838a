/* handoff.c — the last step of the crashing CPU: jump to the kdump kernel that
 * crashpath_load_kdump prepared, or with none loaded, say so and halt. */
#include "cp/hw.h"
#include "cp/internal.h"

void cp_handoff(void)
{
    struct cp_line l = { .len = 0 };

    if (!__atomic_load_n(&cp_kdump.loaded, __ATOMIC_ACQUIRE)) {
        cp_line_str(&l, "crashpath: no kdump image loaded; halting");
        cp_line_emit(&l);
        cp_halt_forever();
    }
    cp_line_str(&l, "crashpath: entering kdump kernel at ");
    cp_line_hex(&l, cp_kdump.kernel_entry);
    cp_line_str(&l, ", elfcorehdr=");
    cp_line_hex(&l, cp_kdump.elfcorehdr);
    cp_line_emit(&l);
    /* The last timestamp, after the console (which may be slow). */
    CP_INFO_SET64(tsc_handoff, cp_hw_rdtsc());
    /* Everything else was prepared at load time: the stub only switches
     * page tables and control registers, copies low memory aside and jumps. */
    cp_hw_handoff(cp_kdump.cr3, cp_kdump.identity_entry);
}
