/* handoff.c — the last step of the crashing CPU: jump to the loaded kdump kernel. With no
 * image loaded it reports that through the console hook and halts, NMIs unblocked. */
#include "cp/hw.h"
#include "cp/internal.h"

void cp_handoff(void)
{
    struct cp_line l = { .len = 0 };

    cp_line_str(&l, "crashpath: no kdump image loaded; halting");
    cp_line_emit(&l);
    cp_halt_forever();
}
