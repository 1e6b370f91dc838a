; SPDX-License-Identifier: BSD-2-Clause
; vmx_entry.asm — the reference hypervisor's VMX entry and exit points (tests/hv/vmx.c): VMLAUNCH
; or VMRESUME with the host's registers kept across the guest's run, the VM-exit landing point,
; the call that offers an NMI exit to crashpath, and the guests' loops.
;
; Section numbers as in vmx.c: the SDM vol. 3 editions where VMX takes chapters 23 to 33.

bits 64
default rel

%define VMCS_HOST_RSP 0x6c14            ; appendix B.4

%macro FUNC 1
    global %1:function (%1.end - %1)
    align 16
%1:
%endmacro

extern crashpath_nmi_vmexit

section .text

; int hv_vmx_enter(int resume, volatile uint32_t *ready): one VM entry into the current VMCS,
; VMLAUNCH the first time (launch state "clear"), VMRESUME after (24.11.3). A VM exit loads
; only RIP, RSP, RFLAGS, the segment and control registers from the host-state area (27.5);
; every other GPR holds what the guest left in it. So the callee-saved registers are pushed
; here, HOST_RSP is this stack, and the exit lands in hv_vmx_exit, which pops them and
; returns 0. The guest touches no GPR but reads RSI (ready) once. A failed VMLAUNCH or
; VMRESUME falls through: 1 for VMfailInvalid (CF), 2 for VMfailValid (ZF; the error number
; is in the VMCS) (30.2). The exit clears RFLAGS but bit 1 (27.5.3): IF stays 0, as here.
FUNC hv_vmx_enter
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov eax, VMCS_HOST_RSP
    vmwrite rax, rsp                    ; field in RAX, value RSP
    jbe .failed                         ; CF or ZF: no VMCS, or it refused the write
    test edi, edi
    jnz .resume
    vmlaunch
    jmp .failed
.resume:
    vmresume
.failed:
    mov eax, 1                          ; MOV leaves the flags alone
    jc .out
    mov eax, 2
.out:
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
; HOST_RIP: a VM exit, on the stack hv_vmx_enter left in HOST_RSP.
global hv_vmx_exit
hv_vmx_exit:
    xor eax, eax
    jmp hv_vmx_enter.out
hv_vmx_enter.end:

; int hv_vmx_offer_nmi(uint64_t guest_rip): crashpath_nmi_vmexit, with the guest's RIP at the
; exit in RBX. crashpath records its caller's registers (this call site's RIP), and the VMCS
; that holds the guest's own is in a format only the CPU knows (24.2): RBX carries the
; guest's RIP into the dump, where the verifier checks it lies in the guest's loop
; (cp.vmx_guest) and the saved RIP here (cp.vmx_exit). Returns 0 if no crash is under way.
FUNC hv_vmx_offer_nmi
    push rbx
    mov rbx, rdi
    call crashpath_nmi_vmexit
    pop rbx
    ret
global hv_vmx_offer_nmi_end
hv_vmx_offer_nmi_end:
hv_vmx_offer_nmi.end:

; The guests: CPL-0 64-bit loops on the host's own page tables, interrupts off, NMI exiting on.
; Each says it is running, so an NMI the crasher sends after that finds it in VMX non-root
; operation: hv_vmx_guest_spin with PAUSE (scenario spin), hv_vmx_guest_halt with HLT, which
; an NMI exit also ends (scenario halt). One range, hv_vmx_guests .. hv_vmx_guests_end, for
; the verifier.
global hv_vmx_guests
hv_vmx_guests:
FUNC hv_vmx_guest_spin
    mov dword [rsi], 1
.spin:
    pause
    jmp .spin
hv_vmx_guest_spin.end:

FUNC hv_vmx_guest_halt
    mov dword [rsi], 1
.halt:
    hlt
    jmp .halt
hv_vmx_guest_halt.end:
global hv_vmx_guests_end
hv_vmx_guests_end:

section .note.GNU-stack noalloc noexec nowrite progbits
