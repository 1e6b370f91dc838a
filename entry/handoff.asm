; SPDX-License-Identifier: BSD-2-Clause
; handoff.asm — the last instructions of the crashing CPU: leave the hypervisor's page tables
; and control registers and enter the kdump kernel by the Linux 64-bit boot protocol.
;
; handoff_stub is copied at load time into the control page of the crash region, and its
; parameters filled there (load/kdump.c writes each handoff_param_* label, defined only here). At crash time the C side calls the original
; in crashpath's text, which is mapped at the same virtual address in the prepared tables:
;
;     handoff_stub(rdi = CR3 of the prepared tables, rsi = identity address of .identity)
;
; Memory touched after the CR3 switch, all identity-mapped by the prepared tables:
;
;   control page   +0            handoff_stub code (this file)
;                  handoff_param_*  cr4, backup_src, backup_dst, backup_qwords,
;                                   boot_params, entry       (8 bytes each, filled at load)
;                  handoff_gdt     null, null, 0x10 code64, 0x18 data
;                  handoff_gdtr    limit, base (base filled at load: identity address)
;                  idtr0           limit 0: any exception from here on is a triple fault
;                  ...
;                  page end        the stub's stack (only LRETQ and nothing else uses it)

bits 64
default rel


%macro FUNC 1
    global %1:function (%1.end - %1)
    align 16
%1:
%endmacro

section .text

; Entered with interrupts off and NMIs already unblocked by crashpath_enable_nmis.
FUNC handoff_stub
    endbr64                         ; an indirect call target, in case IBT is on
    ; CR4.PGE off first: a CR3 load keeps global TLB entries (SDM vol. 3,
    ; 4.10.4.1), so the host's global mappings would outlive the switch and
    ; shadow the identity map; clearing PGE flushes them all (Xen 4665d17967).
    mov rax, cr4
    and rax, ~(1 << 7)
    mov cr4, rax
    ; Prepared tables, PCID 0 and bit 63 clear: a full flush. Done before
    ; CR4.PCIDE is cleared, which needs CR3[11:0] = 0 (SDM vol. 3, 4.10.1).
    mov cr3, rdi
    jmp rsi                         ; to handoff_stub_identity in the control page
global handoff_stub_identity
handoff_stub_identity:
    endbr64
    lea rsp, [handoff_stack_top]
    ; Supervisor CET is off already (crash/shootdown.c, before crashpath_enable_nmis).
    ; CR4 = PAE (plus LA57 if the host runs 5-level paging: it cannot change
    ; while paging is on, and the tables were built to match). This drops
    ; PCIDE, PGE (flushing global entries), SMEP, SMAP, CET, FSGSBASE ...
    mov rax, [handoff_param_cr4]
    mov cr4, rax
    ; CR0: clear WP, AM, TS and EM; PG and PE stay (as Linux's relocate_kernel).
    mov rax, cr0
    and rax, ~((1 << 16) | (1 << 18) | (1 << 3) | (1 << 2))
    mov cr0, rax
    ; DR7 = 0: a host breakpoint left armed would fire as #DB inside the
    ; kdump kernel before it has an IDT (Linux's machine_kexec clears it too).
    xor eax, eax
    mov dr7, rax
    ; Save the low memory the kdump kernel will reuse (real-mode trampoline),
    ; so the dump shows it as it was (kexec-tools' purgatory does the same).
    mov rsi, [handoff_param_backup_src]
    mov rdi, [handoff_param_backup_dst]
    mov rcx, [handoff_param_backup_qwords]
    cld
    rep movsq
    ; The boot protocol's GDT: __BOOT_CS = 0x10, __BOOT_DS = 0x18.
    lgdt [handoff_gdtr]
    mov eax, 0x18
    mov ds, eax
    mov es, eax
    mov ss, eax
    mov fs, eax
    mov gs, eax
    push qword 0x10
    lea rax, [handoff_cs_loaded]
    push rax
    o64 retf
handoff_cs_loaded:
    ; Only now, after crashpath_enable_nmis: a limit-0 IDT, so a stray exception resets
    ; the machine instead of running a handler that is no longer mapped.
    lidt [handoff_idtr0]
    mov rsi, [handoff_param_boot_params]   ; RSI = boot_params (64-bit boot protocol)
    mov rax, [handoff_param_entry]         ; load address + 0x200
    xor ebx, ebx
    xor ebp, ebp
    xor edi, edi
    ; RFLAGS = 0x2 (bit 1 is always set): IF stays clear, and no AC, DF, TF
    ; or arithmetic flags of ours reach the new kernel (Linux's kexec path).
    push qword 0x2
    popfq
    jmp rax

; The parameters, written by load/kdump.c into the copy in the control page.
align 8
global handoff_param_cr4, handoff_param_backup_src, handoff_param_backup_dst, handoff_param_backup_qwords
global handoff_param_boot_params, handoff_param_entry
handoff_param_cr4:           dq 0   ; PAE, plus LA57 if the host runs 5-level paging
handoff_param_backup_src:    dq 0   ; 0: the low memory the kdump kernel reuses
handoff_param_backup_dst:    dq 0   ; its backup in the crash region
handoff_param_backup_qwords: dq 0
handoff_param_boot_params:   dq 0   ; RSI for the 64-bit boot protocol
handoff_param_entry:         dq 0   ; load address + 0x200
align 16
global handoff_gdt
handoff_gdt:
    dq 0
    dq 0
    dq 0x00af9a000000ffff           ; 0x10: 64-bit code, DPL 0
    dq 0x00cf92000000ffff           ; 0x18: flat data
global handoff_gdtr
handoff_gdtr:
    dw 4 * 8 - 1
    dq 0                            ; identity address of handoff_gdt, filled at load
handoff_idtr0:
    dw 0
    dq 0
global handoff_stub_end
handoff_stub_end:
handoff_stub.end:
handoff_stack_top equ handoff_stub + 4096
section .note.GNU-stack noalloc noexec nowrite progbits
