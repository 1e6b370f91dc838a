; SPDX-License-Identifier: BSD-2-Clause
; entry.asm — the reference hypervisor's exception entry points (one macro for every vector)
; and the scenario loops whose registers the kdump verifier checks.
;
; Frame built by every stub, identical to struct crashpath_regs (include/crashpath.h), so a
; fault can be handed to crashpath_crash as it is:
;
;   +0xa0 ss  +0x98 rsp  +0x90 rflags  +0x88 cs  +0x80 rip     pushed by the CPU
;   +0x78 error code (or ~0 for vectors without one)            CPU or stub
;   +0x70 rdi ... +0x00 r15 (PUSH_GPRS order)                   stub
;
; hv_exception(frame, vector) returns to IRETQ for NMIs the scenario does not crash on.
;
; CET (knob cet=1, tests/hv/cet.c): every entry the CPU reaches through the IDT and every
; function below starts with ENDBR64: with supervisor IBT on, an event delivered through the
; IDT or an indirect CALL/JMP that lands anywhere else raises #CP (SDM vol. 1, ch. 17
; "Indirect Branch Tracking"); elsewhere ENDBR64 is a NOP. Shadow stacks: event delivery
; pushes CS, LIP and SSP on the shadow stack and the stubs' IRETQ pops and checks them; the
; functions here that never return (they switch RSP, spin or halt) leave the shadow stack as
; their CALL left it, which is consistent: nothing ever returns through those frames.

bits 64
default rel

%macro FUNC 1
    global %1:function (%1.end - %1)
    align 16
%1:
    endbr64
%endmacro

%macro PUSH_GPRS 0
    push rdi
    push rsi
    push rdx
    push rcx
    push rax
    push r8
    push r9
    push r10
    push r11
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
%endmacro
%macro POP_GPRS 0
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    pop r11
    pop r10
    pop r9
    pop r8
    pop rax
    pop rcx
    pop rdx
    pop rsi
    pop rdi
%endmacro

extern hv_exception

section .text

; One stub per vector: vectors 8, 10-14, 17, 21, 29, 30 push an error code.
%macro VECTOR_STUB 1
align 16
vector_%1:
    endbr64                         ; an IDT gate's target (IBT)
%if %1 == 8 || (%1 >= 10 && %1 <= 14) || %1 == 17 || %1 == 21 || %1 == 29 || %1 == 30
%else
    push qword -1
%endif
    PUSH_GPRS
    mov esi, %1
    jmp exception_common
%endmacro

%assign v 0
%rep 32
VECTOR_STUB v
%assign v v + 1
%endrep

exception_common:
    cld
    mov rdi, rsp
    mov rbx, rsp
    and rsp, -16
    call hv_exception
    mov rsp, rbx
    POP_GPRS
    add rsp, 8
    iretq

; The wake-up IPI (HV_WAKEUP_VECTOR): CPUs wait for work with STI; HLT instead
; of spinning, so hundreds of vCPUs do not starve the host while others boot.
extern hv_wakeup
global hv_wakeup_entry
hv_wakeup_entry:
    endbr64                         ; an IDT gate's target (IBT)
    push qword -1
    PUSH_GPRS
    cld
    mov rbx, rsp
    and rsp, -16
    call hv_wakeup
    mov rsp, rbx
    POP_GPRS
    add rsp, 8
    iretq

; Addresses of the 32 stubs, for the IDT builder.
section .rodata
align 8
global hv_vector_stubs
hv_vector_stubs:
%assign v 0
%rep 32
    dq vector_ %+ v
%assign v v + 1
%endrep

section .text

; PAINT_STACK: fill the STACK_PAINT bytes below RSP with 0xa5, so the dump
; shows how deep the NMI path went on this (IST-less) stack: the kdump
; verifier finds the lowest byte that changed. Clobbers rax, rcx, and rdi
; is kept.
%define STACK_PAINT 2048
%macro PAINT_STACK 0
    push rdi
    lea rdi, [rsp - STACK_PAINT]
    mov ecx, STACK_PAINT
    mov al, 0xa5
    rep stosb
    pop rdi
%endmacro

; LOAD_SENTINELS base: r8..r15 = base + 8 .. base + 15 (mark_sentinel in tests/kdump/marks.h).
%macro LOAD_SENTINELS 1
%assign reg 8
%rep 8
    lea r %+ reg, [%1 + reg]
%assign reg reg + 1
%endrep
%endmacro

; void hv_spin_sentinels(uint64_t sentinel_base, volatile uint32_t *ready): never
; returns. Spins with interrupts off and r8..r15 = sentinel_base + register
; number (mark_sentinel in tests/kdump/marks.h), the values the verifier
; expects in this CPU's NT_PRSTATUS; *ready is set once they are loaded, so an
; NMI sent after it finds RIP in hv_spin_loop .. hv_spin_loop_end.
FUNC hv_spin_sentinels
    cli
    PAINT_STACK
    LOAD_SENTINELS rdi
    mov dword [rsi], 1
global hv_spin_loop
hv_spin_loop:
    pause
    jmp hv_spin_loop
global hv_spin_loop_end
hv_spin_loop_end:
hv_spin_sentinels.end:

; void hv_spin_sentinels_on(uint64_t sentinel_base, volatile uint32_t *ready, void *rsp): as
; hv_spin_sentinels, on the stack at rsp (scenario ist_canary_cpu: a victim that runs on its
; own NMI or #MC IST stack when the shootdown comes, canaries above rsp). A direct JMP, and
; SSP stays on this CPU's shadow stack: shadow stacks follow CALL and RET, not RSP.
FUNC hv_spin_sentinels_on
    mov rsp, rdx
    jmp hv_spin_sentinels
hv_spin_sentinels_on.end:

; void hv_spin_wrecked(uint64_t sentinel_base, volatile uint32_t *ready, uint64_t rsp): as
; hv_spin_sentinels, but on RSP = rsp, where nothing can be pushed: an unmapped guard page (a
; stack that overflowed), or a non-canonical address (CPL 0 on a guest's RSP, the SYSCALL
; window). Nothing is painted; the stack is never touched. Scenario wreck_cpu. SSP is left
; where the CALL put it: the shadow stack is still good, only RSP is wrecked.
FUNC hv_spin_wrecked
    cli
    LOAD_SENTINELS rdi
    mov rsp, rdx
    mov dword [rsi], 1
    jmp hv_spin_loop
hv_spin_wrecked.end:

; void hv_halt_forever(volatile uint32_t *ready): interrupts off, HLT in a
; loop (an NMI still wakes it); *ready is set just before.
FUNC hv_halt_forever
    cli
    PAINT_STACK
    mov dword [rdi], 1
.again:
    hlt
    jmp .again
hv_halt_forever.end:

; uint64_t hv_vmrun(uint64_t vmcb_pa, volatile uint32_t *ready): one VMRUN of the guest
; below. VMRUN saves the host's RAX, RSP, RIP, RFLAGS, segments and control registers in
; the host save area and #VMEXIT restores them (AMD APM vol. 2, 15.5); every other GPR is
; shared with the guest, which touches none but reads RSI. Returns with GIF=0. A plain
; CALL/RET pair for the shadow stack (cet=1 with svm=1 is untried: no emulator here has both).
FUNC hv_vmrun
    mov rax, rdi
    vmrun
    ret
hv_vmrun.end:

; The guest: a CPL-0 64-bit loop on the host's own page tables (no nested paging), NMIs
; intercepted. It says it is running, so an NMI the crasher sends after that always finds
; it in guest mode.
FUNC hv_guest_loop
    mov dword [rsi], 1
.spin:
    pause
    jmp .spin
hv_guest_loop.end:

; void hv_clgi_loop(volatile uint32_t *ready, uint64_t ticks): never returns. Holds GIF=0
; for `ticks` TSC ticks at a time, opening it for two instructions in between (EFER.SVME
; must be set). An NMI sent meanwhile waits behind GIF=0 (AMD APM vol. 2, 15.17) and is
; taken in hv_gif_open .. hv_gif_open_end, which is where the dump must put this CPU.
FUNC hv_clgi_loop
    cli
    PAINT_STACK
    mov r8, rsi
    clgi
    mov dword [rdi], 1
hv_clgi_closed:
    rdtsc
    shl rdx, 32
    or rax, rdx
    lea r9, [rax + r8]
hv_clgi_spin:
    pause
    rdtsc
    shl rdx, 32
    or rax, rdx
    cmp rax, r9
    jb hv_clgi_spin
    stgi
global hv_gif_open
hv_gif_open:
    nop
    clgi
global hv_gif_open_end
hv_gif_open_end:
    jmp hv_clgi_closed
hv_clgi_loop.end:

section .note.GNU-stack noalloc noexec nowrite progbits
