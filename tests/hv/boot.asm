; SPDX-License-Identifier: BSD-2-Clause
; boot.asm — the reference hypervisor's way in: multiboot v1 header, 32-bit entry, boot page
; tables (identity 0-4 GiB, and 0-2 GiB again at 0xffffffff80000000), long mode, the jump to
; the higher half; and the 16-bit trampoline that brings each AP to the same place.
;
; Boot page tables (in .boot.bss, physical = virtual):
;   PML4[0]   -> pdpt_low:  [0..3] -> pd0..pd3   identity, 2 MiB pages, 0-4 GiB
;   PML4[511] -> pdpt_high: [510] -> pd0, [511] -> pd1   0xffffffff80000000 -> 0-2 GiB
;   PML5[0], PML5[511] -> PML4   with la57=1 (5-level paging): bits 56:48 of both ranges
;                                select PML5 entries 0 and 511, the rest is the same walk
; The 2 MiB page holding the LAPIC (0xfee00000) is mapped uncached (PCD|PWT). Every 2 MiB
; page is global (G): with CR4.PGE on (features.c) they survive a CR3 load, as a real
; host's kernel mappings do, and the hand-off must flush them.

%define KERNEL_VMA 0xffffffff80000000
%define MB_MAGIC 0x1badb002
%define MB_FLAGS 0x00000003            ; 4 KiB-aligned modules, memory map
%define TRAMP_BASE 0x8000              ; SIPI vector 0x08
%define HV_CPU_STACK_TOP 24             ; offsetof(struct hv_cpu, stack_top), checked in cpu.c

extern hv_main
extern hv_ap_main
extern hv_ap_lookup
extern boot_stack_top

section .multiboot
align 4
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)

section .boot.bss nobits alloc write
align 4096
global boot_pml4
boot_pml4:  resb 4096
pdpt_low:   resb 4096
pdpt_high:  resb 4096
boot_pd:    resb 4 * 4096
boot_pml5:  resb 4096
early_stack: resb 4096
early_stack_top:
mb_info_phys: resd 1
use_la57:   resd 1                      ; 1: CR3 = PML5, CR4.LA57 (BSP and APs)

section .boot progbits alloc exec write align=16
bits 32
global _start
_start:
    cli
    cld
    mov esp, early_stack_top
    mov [mb_info_phys], ebx
    ; zero the tables (NOLOAD memory holds whatever was there)
    mov edi, boot_pml4
    mov ecx, (3 + 4 + 1) * 4096 / 4
    xor eax, eax
    rep stosd
    mov dword [boot_pml5], boot_pml4 + 3
    mov dword [boot_pml5 + 511 * 8], boot_pml4 + 3
    call choose_paging
    mov dword [boot_pml4], pdpt_low + 3
    mov dword [boot_pml4 + 511 * 8], pdpt_high + 3
    mov ecx, 0
.pdpt:
    mov eax, ecx
    shl eax, 12
    add eax, boot_pd + 3
    mov [pdpt_low + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jne .pdpt
    mov dword [pdpt_high + 510 * 8], boot_pd + 3
    mov dword [pdpt_high + 511 * 8], boot_pd + 4096 + 3
    ; 2048 PD entries: entry i maps i * 2 MiB
    xor ecx, ecx
.pd:
    mov eax, ecx
    shl eax, 21
    or eax, 0x183                       ; present, writable, 2 MiB, global
    cmp ecx, 0xfee00000 >> 21
    jne .cached
    or eax, 0x18                        ; PCD | PWT: the LAPIC page
.cached:
    mov [boot_pd + ecx * 8], eax
    mov edx, ecx
    shr edx, 11                         ; bits 32+ of the address (0 below 4 GiB)
    mov [boot_pd + ecx * 8 + 4], edx
    inc ecx
    cmp ecx, 2048
    jne .pd
    call enter_long_mode
    lgdt [boot_gdtr]
    jmp 0x08:long_low

; la57=1 on the multiboot command line, and CPUID.(EAX=7,ECX=0):ECX.LA57[16]:
; run 5-level paging. Decided here, before paging is on: CR4.LA57 cannot
; change in long mode (SDM vol. 3, 4.1.1; MOV to CR4 would #GP). Without
; LA57 the hypervisor stays 4-level and main.c ends the row as SKIP.
choose_paging:
    mov esi, [mb_info_phys]
    test dword [esi], 1 << 2            ; multiboot flags: cmdline valid
    jz .done
    mov esi, [esi + 16]
.scan:
    cmp byte [esi], 0
    je .done
    cmp dword [esi], 'la57'
    jne .next
    cmp word [esi + 4], '=1'
    je .wanted
.next:
    inc esi
    jmp .scan
.wanted:
    xor eax, eax
    cpuid
    cmp eax, 7
    jb .done
    mov eax, 7
    xor ecx, ecx
    cpuid
    test ecx, 1 << 16
    jz .done
    mov dword [use_la57], 1
.done:
    ret

; PAE (and LA57), CR3, EFER.LME, paging. Shared by the BSP and the APs (32-bit code).
enter_long_mode:
    mov eax, cr4
    or eax, 1 << 5
    mov ecx, boot_pml4
    cmp dword [use_la57], 0
    je .paging_4
    or eax, 1 << 12                     ; LA57 with PAE, before PG (SDM vol. 3, 4.1.2)
    mov ecx, boot_pml5
.paging_4:
    mov cr4, eax
    mov cr3, ecx
    mov ecx, 0xc0000080
    rdmsr
    or eax, 1 << 8
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16)       ; PG, WP
    mov cr0, eax
    ret

bits 64
long_low:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, boot_stack_top             ; high half, in .bss
    xor ebp, ebp                        ; the outermost frame: debuggers stop unwinding here
    push rbp
    mov edi, [mb_info_phys]
    mov rax, hv_main
    call rax
.dead:
    hlt
    jmp .dead

section .boot.data progbits alloc noexec write align=16
align 16
boot_gdt:
    dq 0
    dq 0x00af9a000000ffff               ; 0x08: 64-bit code
    dq 0x00cf92000000ffff               ; 0x10: data
boot_gdtr:
    dw 3 * 8 - 1
    dd boot_gdt

; ---------------------------------------------------------------------------
; AP trampoline, copied to TRAMP_BASE by the BSP. An AP starts here in real
; mode at CS:IP = 0x0800:0000 after SIPI. All APs are started together, so
; they take tramp_lock for the one scratch stack, find their own struct hv_cpu
; and stack by APIC ID (hv_ap_lookup, C: the 32-bit x2APIC ID from CPUID), and release it on their own stack.
; CET is off here (INIT clears CR4, and the BSP's boot path runs before cet=1 is read): with
; cet=1 each CPU turns it on in its outermost C frame, hv_main or hv_ap_main, which never
; return to this code, so the CALLs below need no shadow-stack entries (tests/hv/cet.c).
align 16
global tramp_start, tramp_end
tramp_start:
bits 16
    cli
    cld
    mov ax, cs
    mov ds, ax
    lgdt [tramp_gdtr - tramp_start]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword 0x08:(TRAMP_BASE + tramp_pm32 - tramp_start)
bits 32
tramp_pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
.lock:
    mov eax, 1
    xchg eax, [TRAMP_BASE + tramp_lock - tramp_start]
    test eax, eax
    jz .locked
    pause
    jmp .lock
.locked:
    mov esp, TRAMP_BASE + 0x1000         ; scratch stack, ours while we hold tramp_lock
    mov eax, enter_long_mode             ; absolute: this code runs from a copy
    call eax
    jmp 0x18:(TRAMP_BASE + tramp_lm64 - tramp_start)
bits 64
tramp_lm64:
    mov rax, hv_ap_lookup               ; struct hv_cpu * for this CPU's APIC ID (CPUID), on the scratch stack
    call rax
    mov rdi, rax
    mov rsp, [rax + HV_CPU_STACK_TOP]
    mov dword [TRAMP_BASE + tramp_lock - tramp_start], 0
    xor ebp, ebp                        ; the outermost frame
    push rbp
    mov rax, hv_ap_main
    call rax
.dead:
    hlt
    jmp .dead
align 8
tramp_lock: dd 0
align 8
tramp_gdt:
    dq 0
    dq 0x00cf9a000000ffff               ; 0x08: 32-bit code
    dq 0x00cf92000000ffff               ; 0x10: data
    dq 0x00af9a000000ffff               ; 0x18: 64-bit code
tramp_gdtr:
    dw 4 * 8 - 1
    dd TRAMP_BASE + tramp_gdt - tramp_start
tramp_end:

section .note.GNU-stack noalloc noexec nowrite progbits
