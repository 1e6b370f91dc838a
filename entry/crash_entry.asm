; SPDX-License-Identifier: BSD-2-Clause
; crash_entry.asm — crashpath's entry stubs: crashpath_trap_nop, crashpath_nmi_crash, crashpath_enable_nmis, and the
; crashpath_crash / crashpath_nmi_vmexit stubs that capture the caller's registers.
;
; Every stub that calls C builds one frame, struct crashpath_regs (include/crashpath.h),
; whose first 21 quadwords are Linux's user_regs_struct, i.e. NT_PRSTATUS pr_reg:
;
;   offset  field      written by
;   ------  ---------  ---------------------------------------------------------
;   +0xa0   ss         CPU (NMI) / stub (captured: current SS)
;   +0x98   rsp        CPU (NMI: the interrupted RSP, always pushed in 64-bit mode)
;                      stub (captured: the caller's RSP after our RET)
;   +0x90   rflags     CPU (NMI) / stub (captured: PUSHFQ as the first instruction)
;   +0x88   cs         CPU (NMI) / stub (captured: current CS)
;   +0x80   rip        CPU (NMI: the interrupted RIP) / stub (captured: return address)
;   +0x78   orig_rax   stub: ~0 (no error code, as Linux stores for an NMI)
;   +0x70   rdi        \
;   +0x68   rsi         |
;   +0x60   rdx         |
;   +0x58   rcx         |
;   +0x50   rax         |  PUSH_GPRS, in this order, so that the lowest address
;   +0x48   r8          |  holds r15: the frame pointer handed to C in RDI
;   +0x40   r9          |
;   +0x38   r10         |
;   +0x30   r11         |
;   +0x28   rbx         |
;   +0x20   rbp         |
;   +0x18   r12         |
;   +0x10   r13         |
;   +0x08   r14         |
;   +0x00   r15        /   <- RSP after PUSH_GPRS = struct crashpath_regs *
;
; With the NMI gate's IST dropped (crash/shootdown.c), the CPU pushes the hardware
; part on the interrupted stack itself, after aligning RSP down to 16 bytes
; (SDM vol. 3, 6.14.2), so this frame sits just below the interrupted context.

bits 64
default rel

%define FRAME_ORIG_RAX 0x78
%define FRAME_RIP      0x80
%define FRAME_CS       0x88
%define FRAME_RFLAGS   0x90
%define FRAME_RSP      0x98
%define FRAME_SS       0xa0
%define FRAME_SIZE     0xa8

; FUNC/ENDFUNC give every symbol an ELF type and size, so debuggers and nm
; see real functions, not bare labels. Every one of them is reached indirectly
; (an IDT gate, or a host's call through a pointer), so each starts with
; ENDBR64: with supervisor IBT on (CR4.CET, IA32_S_CET.ENDBR_EN), an event
; delivered through the IDT or an indirect CALL/JMP that lands anywhere else
; raises #CP (SDM vol. 1, 18.3). On a CPU without CET it is a NOP.
%macro FUNC 1
    global %1:function (%1.end - %1)
    align 16
%1:
    endbr64
%endmacro
%macro ENDFUNC 1
%1.end:
%endmacro

; The general registers of the frame, in push order: the last pushed, r15,
; lands lowest, at offset 0 of struct crashpath_regs (the table above).
%define FRAME_GPRS rdi, rsi, rdx, rcx, rax, r8, r9, r10, r11, rbx, rbp, r12, r13, r14, r15
%define FRAME_RAX 0x50

%macro PUSH_EACH 1-*
%rep %0
    push %1
%rotate 1
%endrep
%endmacro

%macro POP_EACH_REVERSED 1-*
%rep %0
%rotate -1
    pop %1
%endrep
%endmacro

%macro PUSH_GPRS 0
    PUSH_EACH FRAME_GPRS
%endmacro

%macro POP_GPRS 0
    POP_EACH_REVERSED FRAME_GPRS
%endmacro

extern cp_nmi_victim
extern cp_mce_entry
extern cp_crash_entry
extern cp_vmexit_entry

section .text

; crashpath_trap_nop: the crasher's NMI gate during the shootdown and every CPU's #MC gate
; at hand-off. It returns at once; the IRETQ also ends NMI blocking, which the
; crasher wants (a latched NMI must not reach the kdump kernel's first IRET).
FUNC crashpath_trap_nop
    iretq
ENDFUNC crashpath_trap_nop

; crashpath_nmi_crash: the victims' NMI gate. Saves the interrupted context and calls
; cp_nmi_victim(frame), which parks this CPU. Never returns and never IRETs:
; NMIs stay blocked on a parked CPU until the machine is reset.
FUNC crashpath_nmi_crash
    push qword -1                   ; orig_rax: NMIs carry no error code
    PUSH_GPRS
    cld                             ; the C ABI wants DF clear; the interrupted code may not
    mov rdi, rsp                    ; struct crashpath_regs *
    and rsp, -16                    ; the frame is 8 mod 16; C wants 16 at the call
    call cp_nmi_victim
    ud2
ENDFUNC crashpath_nmi_crash

; crashpath_mce_crash: every present CPU's #MC gate from the shootdown on (IST 0, so a
; nested event's frame lands below this one). Saves the interrupted context,
; lets cp_mce_entry clear IA32_MCG_STATUS (a second #MC while MCIP is set
; shuts the CPU down, SDM vol. 3, 15.10.1) and IRETs when it returns: only
; when RIPV says the interrupted context can go on. On a parked victim the
; IRET unblocks NMIs and its queued self-NMI parks it again at once.
FUNC crashpath_mce_crash
    push qword -1                   ; orig_rax: #MC carries no error code
    PUSH_GPRS
    cld
    mov rdi, rsp                    ; struct crashpath_regs *
    mov rbx, rsp                    ; callee-saved: where the frame is
    and rsp, -16
    call cp_mce_entry
    mov rsp, rbx
    POP_GPRS
    add rsp, 8                      ; orig_rax
    iretq
ENDFUNC crashpath_mce_crash

; int vmxoff_probe(void): VMXOFF on the crasher when the host recorded no VMX
; state and CR4.VMXE is set: the hand-off clears CR4.VMXE, a #GP in VMX
; operation (SDM vol. 3, 24.8), with the IDT no longer mapped: a triple
; fault. Outside VMX operation VMXOFF raises #UD instead; for the attempt the
; crasher points its #UD gate at vmxoff_ud_fixup, which resumes after the
; VMXOFF with EAX = 1. Supervisor CET is off by then (the fixup's IRET goes
; to another RIP than the shadow stack holds).
global vmxoff_probe:function (vmxoff_probe.end - vmxoff_probe)
align 16
vmxoff_probe:
    endbr64
    xor eax, eax
.vmxoff:
    vmxoff
.resume:
    ret
.end:

; The crasher's #UD gate while vmxoff_probe runs: a #UD on its VMXOFF (the
; frame's RIP) resumes after it, saying so; any other #UD cannot be ours to
; explain, so the CPU stops there.
global vmxoff_ud_fixup:function (vmxoff_ud_fixup.end - vmxoff_ud_fixup)
align 16
vmxoff_ud_fixup:
    endbr64
    push rax
    lea rax, [vmxoff_probe.vmxoff]
    cmp [rsp + 8], rax              ; the faulting RIP (#UD has no error code)
    jne .not_ours
    lea rax, [vmxoff_probe.resume]
    mov [rsp + 8], rax
    pop rax
    mov eax, 1
    iretq
.not_ours:
    cli
    hlt
    jmp .not_ours
.end:

; crashpath_enable_nmis: IRETQ to the next instruction on the current stack. Any IRET
; ends NMI blocking (SDM vol. 3, 6.7.1); a CPU left blocked would hand the
; kdump kernel a latched NMI, and some kernels triple-fault when started with
; NMIs blocked (Xen, 2012). Every register and RFLAGS are preserved; the
; frame holds the RSP to resume on, so any incoming alignment works (IRETQ
; pops SS:RSP unconditionally in 64-bit mode and needs no aligned frame).
FUNC crashpath_enable_nmis
    push rax
    push rcx
    mov rax, rsp                    ; resume here: RCX and RAX still to pop
    mov ecx, ss
    push rcx                        ; SS
    push rax                        ; RSP
    pushfq                          ; RFLAGS: MOV and PUSH leave the flags alone
    mov ecx, cs
    push rcx                        ; CS
    lea rcx, [.resume]
    push rcx                        ; RIP
    iretq
.resume:
    pop rcx
    pop rax
    ret
ENDFUNC crashpath_enable_nmis

; CAPTURE_CALLER target, argreg: build struct crashpath_regs for the caller
; of this stub, as if it had been interrupted at its return address, and
; call target with the frame in argreg (the caller's other arguments pass
; through untouched). If target returns, restore the registers from the frame
; (the callee-saved ones are what the C ABI needs) and return its EAX.
%macro CAPTURE_CALLER 2
    pushfq                          ; first: any ALU instruction would change RFLAGS
    sub rsp, FRAME_SS - FRAME_RIP   ; room for rip, cs, rflags, rsp (ss slot holds the flags)
    push qword -1                   ; orig_rax
    PUSH_GPRS
    mov rax, [rsp + FRAME_SS]
    mov [rsp + FRAME_RFLAGS], rax
    mov eax, ss
    mov [rsp + FRAME_SS], rax
    lea rax, [rsp + FRAME_SIZE + 8] ; the caller's RSP once we have returned
    mov [rsp + FRAME_RSP], rax
    mov eax, cs
    mov [rsp + FRAME_CS], rax
    mov rax, [rsp + FRAME_SIZE]     ; our return address
    mov [rsp + FRAME_RIP], rax
    mov %2, rsp                     ; the captured frame
    mov rbx, rsp                    ; callee-saved: where the frame is
    and rsp, -16
    call %1
    mov rsp, rbx
    mov [rsp + FRAME_RAX], rax      ; the result, restored with the rest
    POP_GPRS
    add rsp, FRAME_SIZE - FRAME_ORIG_RAX   ; orig_rax and the five IRET-frame slots
    ret
%endmacro

; int crashpath_crash(const char *reason, const struct crashpath_regs *regs)
FUNC crashpath_crash
    CAPTURE_CALLER cp_crash_entry, rdx
ENDFUNC crashpath_crash

; int crashpath_nmi_vmexit(void)
FUNC crashpath_nmi_vmexit
    CAPTURE_CALLER cp_vmexit_entry, rdi
ENDFUNC crashpath_nmi_vmexit

section .note.GNU-stack noalloc noexec nowrite progbits
