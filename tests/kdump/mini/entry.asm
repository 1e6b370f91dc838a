; SPDX-License-Identifier: BSD-2-Clause
; entry.asm — the mini verifier's way in: the 64-bit boot protocol's entry at payload + 0x200,
; reached through crashpath's hand-off exactly as Linux would be. Position-independent: the
; loader chooses the address.
;
;   payload +0x000  startup_32 in a real kernel: we have none (the stub traps)
;   payload +0x200  startup_64: RSI = boot_params, identity paging, CS 0x10, IF 0

bits 64
default rel

extern verify_main
extern __bss_start, __bss_end

section .entry progbits alloc exec nowrite align=16
global _payload_start
_payload_start:
    ud2
    times 0x200 - ($ - _payload_start) db 0xcc
global startup_64
startup_64:
    ; What the hand-off left, before this code changes any of it.
    pushfq
    pop qword [entry_rflags]
    mov rax, dr7
    mov [entry_dr7], rax
    cli
    cld
    lea rsp, [stack_top]
    mov rbx, rsi                    ; boot_params, kept across the bss clear
    lea rdi, [__bss_start]
    lea rcx, [__bss_end]
    sub rcx, rdi
    xor eax, eax
    rep stosb
    mov rdi, rbx
    call verify_main
.dead:
    hlt
    jmp .dead

; NMI: count and return. The IRETQ here is the first of this kernel.
global nmi_entry
nmi_entry:
    lock inc qword [nmi_count]
    iretq

; Any other exception: report and stop.
extern verify_fault
global fault_entry
fault_entry:
    mov rdi, [rsp]                  ; RIP (or the error code for some vectors)
    and rsp, -16
    call verify_fault
    hlt

; The real-mode trampoline for the INIT-SIPI check (initsipi.c), assembled flat from
; init_trampoline.asm: data here, copied below 1 MiB before use.
section .rodata
global init_trampoline, init_trampoline_end
init_trampoline:
    incbin "init_trampoline.bin"
init_trampoline_end:

section .bss
align 16
global nmi_count
nmi_count: resq 1
stack: resb 16384
stack_top:

; Written before the .bss is cleared, so kept in .data.
section .data
align 8
global entry_rflags, entry_dr7
entry_rflags: dq 0
entry_dr7: dq 0

section .note.GNU-stack noalloc noexec nowrite progbits
