; SPDX-License-Identifier: BSD-2-Clause
; init_trampoline.asm — the real-mode code a parked CPU runs after the mini verifier's
; INIT-SIPI-SIPI (tests/kdump/mini/initsipi.c): it records that it ran, with its APIC ID, and
; halts. Position-dependent only on its own segment: a start-up IPI with vector VV starts it in
; real mode at CS:IP = VV00:0000, CS base 0xVV000 (SDM vol. 3, "Interrupt Command Register
; (ICR)", delivery mode Start Up), and every address below is an offset in that segment. Assembled flat (nasm -f bin) into one
; 4 KiB page that the mini embeds and copies below 1 MiB before each wake-up.
;
;   +0x000  code
;   +0x100  arrivals: dword, how many CPUs took a slot
;   +0x108  slots: 8 bytes each, { APIC ID, RAN_MAGIC }, written in that order
;
; Offsets and magic are also in initsipi.c (TRAMP_*): keep them equal.

bits 16
org 0

%define ARRIVALS 0x100
%define SLOTS 0x108
%define SLOT_COUNT ((0x1000 - SLOTS) / 8)
%define RAN_MAGIC 0x216e6152             ; "Ran!"

start:
    cli
    cld
    mov ax, cs
    mov ds, ax
    ; This CPU's APIC ID as crashpath's notes hold it: the 32-bit x2APIC ID from CPUID leaf
    ; 0xB (EDX) where the leaf exists and sub-leaf 0 is valid (EBX[15:0] non-zero), else the
    ; 8-bit initial APIC ID in CPUID.1:EBX[31:24] (SDM vol. 2A, CPUID).
    xor eax, eax
    cpuid
    mov esi, eax                        ; highest basic leaf
    mov eax, 1
    cpuid
    shr ebx, 24
    mov edi, ebx
    cmp esi, 0xb
    jb .have_id
    mov eax, 0xb
    xor ecx, ecx
    cpuid
    test bx, bx
    jz .have_id
    mov edi, edx
.have_id:
    ; A slot of its own, then the ID, then the magic that says the slot is complete: stores
    ; are seen in program order by the CPU polling them (SDM vol. 3, "Memory Ordering in P6 and
    ; More Recent Processor Families": writes are not reordered with other writes).
    mov eax, 1
    lock xadd [ARRIVALS], eax
    cmp eax, SLOT_COUNT
    jae .halt
    mov [SLOTS + eax * 8], edi
    mov dword [SLOTS + eax * 8 + 4], RAN_MAGIC
.halt:
    cli
    hlt
    jmp .halt

    times ARRIVALS - ($ - $$) db 0      ; fails to assemble if the code grows past ARRIVALS
    times 0x1000 - ($ - $$) db 0        ; arrivals 0, slots empty: one whole page
