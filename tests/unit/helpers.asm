; SPDX-License-Identifier: BSD-2-Clause
; helpers.asm — test-only probes that set every register to known values around crashpath's
; entry stubs, for tests/unit/test_entry.c and test_shootdown.c (host user mode, not a library file).

bits 64
default rel

%define S_RAX 0x1111111111111111
%define S_RBX 0x2222222222222222
%define S_RCX 0x3333333333333333
%define S_RDX 0x4444444444444444
%define S_RSI 0x5555555555555555
%define S_RDI 0x6666666666666666
%define S_RBP 0x7777777777777777
%define S_R8  0x8888888888888888
%define S_R9  0x9999999999999999
%define S_R10 0xaaaaaaaaaaaaaaaa
%define S_R11 0xbbbbbbbbbbbbbbbb
%define S_R12 0xc12c12c12c12c12c
%define S_R13 0xc13c13c13c13c13c
%define S_R14 0xc14c14c14c14c14c
%define S_R15 0xc15c15c15c15c15c

%macro FUNC 1
    global %1:function (%1.end - %1)
%1:
%endmacro
%macro ENDFUNC 1
%1.end:
%endmacro

%macro SET_SENTINELS 0
    mov rax, S_RAX
    mov rbx, S_RBX
    mov rcx, S_RCX
    mov rdx, S_RDX
    mov rsi, S_RSI
    mov rdi, S_RDI
    mov rbp, S_RBP
    mov r8, S_R8
    mov r9, S_R9
    mov r10, S_R10
    mov r11, S_R11
    mov r12, S_R12
    mov r13, S_R13
    mov r14, S_R14
    mov r15, S_R15
%endmacro

%macro SAVE_CALLEE 0
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
%endmacro
%macro RESTORE_CALLEE 0
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
%endmacro

extern crashpath_enable_nmis
extern crashpath_trap_nop
extern crashpath_nmi_crash
extern crashpath_crash
extern crashpath_nmi_vmexit

section .bss
alignb 16
probe_out:  resq 1
probe_rsp:  resq 1

section .text

; void th_enable_nmis_probe(uint64_t misalign, uint64_t rflags_in, uint64_t out[18])
; out[0..14] = rax rbx rcx rdx rsi rdi rbp r8 .. r15 after the call,
; out[15] = rflags after, out[16] = RSP after, out[17] = RSP before the call.
FUNC th_enable_nmis_probe
    SAVE_CALLEE
    mov [probe_out], rdx
    mov [probe_rsp], rsp
    sub rsp, rdi
    mov [rdx + 17 * 8], rsp
    push rsi
    popfq
    SET_SENTINELS
    call crashpath_enable_nmis
    push rax
    pushfq
    mov rax, [probe_out]
    pop qword [rax + 15 * 8]
    pop qword [rax + 0 * 8]
    mov [rax + 1 * 8], rbx
    mov [rax + 2 * 8], rcx
    mov [rax + 3 * 8], rdx
    mov [rax + 4 * 8], rsi
    mov [rax + 5 * 8], rdi
    mov [rax + 6 * 8], rbp
    mov [rax + 7 * 8], r8
    mov [rax + 8 * 8], r9
    mov [rax + 9 * 8], r10
    mov [rax + 10 * 8], r11
    mov [rax + 11 * 8], r12
    mov [rax + 12 * 8], r13
    mov [rax + 13 * 8], r14
    mov [rax + 14 * 8], r15
    mov [rax + 16 * 8], rsp
    cld
    mov rsp, [probe_rsp]
    RESTORE_CALLEE
    ret
ENDFUNC th_enable_nmis_probe

; int th_trap_nop_probe(void): hand crashpath_trap_nop an IRET frame as an interrupt
; would; returns 0x600d if it came back to the frame's RIP and RSP.
FUNC th_trap_nop_probe
    mov rax, rsp
    mov ecx, ss
    push rcx
    push rax
    pushfq
    mov ecx, cs
    push rcx
    lea rcx, [.back]
    push rcx
    jmp crashpath_trap_nop
.back:
    cmp rsp, rax
    jne .bad
    mov eax, 0x600d
    ret
.bad:
    xor eax, eax
    ret
ENDFUNC th_trap_nop_probe

; void th_fake_nmi(uint64_t rip, uint64_t rsp, uint64_t rflags): enter
; crashpath_nmi_crash exactly as the CPU would with IST 0 (frame pushed on the current
; stack, aligned to 16), every GPR holding its sentinel. Never returns.
FUNC th_fake_nmi
    and rsp, -16
    mov ecx, ss
    push rcx
    push rsi
    push rdx
    mov ecx, cs
    push rcx
    push rdi
    SET_SENTINELS
    jmp crashpath_nmi_crash
ENDFUNC th_fake_nmi

; void th_spin(volatile int *stop): spin with r12..r15 holding sentinels
; until *stop; th_spin_loop..th_spin.end is where an NMI finds it.
FUNC th_spin
    SAVE_CALLEE
    mov r12, S_R12
    mov r13, S_R13
    mov r14, S_R14
    mov r15, S_R15
global th_spin_loop
th_spin_loop:
    pause
    cmp dword [rdi], 0
    je th_spin_loop
    RESTORE_CALLEE
    ret
ENDFUNC th_spin

; int th_crash(const char *reason, uint64_t *rsp_out): crashpath_crash(reason,
; NULL) with r12..r15 holding sentinels; *rsp_out = RSP at the call, which the
; captured frame must report (the caller's RSP once the call has returned).
FUNC th_crash
    SAVE_CALLEE
    mov r12, S_R12
    mov r13, S_R13
    mov r14, S_R14
    mov r15, S_R15
    mov [rsi], rsp
    xor esi, esi
    call crashpath_crash
global th_crash_ret
th_crash_ret:
    cmp r12, [r12_sentinel]
    jne .clobbered
    cmp r15, [r15_sentinel]
    jne .clobbered
    RESTORE_CALLEE
    ret
.clobbered:
    mov eax, 0x0bad
    RESTORE_CALLEE
    ret
ENDFUNC th_crash

; int th_vmexit(void): crashpath_nmi_vmexit() with r12..r15 holding sentinels.
FUNC th_vmexit
    SAVE_CALLEE
    mov r12, S_R12
    mov r13, S_R13
    mov r14, S_R14
    mov r15, S_R15
    call crashpath_nmi_vmexit
global th_vmexit_ret
th_vmexit_ret:
    RESTORE_CALLEE
    ret
ENDFUNC th_vmexit

section .rodata
r12_sentinel: dq S_R12
r15_sentinel: dq S_R15

section .note.GNU-stack noalloc noexec nowrite progbits
