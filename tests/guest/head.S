// SPDX-License-Identifier: Apache-2.0 OR MIT
/*
 * Entry point, Xen ELF notes and hypercall page of the test guest, for both
 * widths (gcc -m64 / -m32 from this one file).
 *
 * A PV domain builder (libxenguest's ELF loader) reads the notes below from
 * the PT_NOTE segment: note name "Xen", one type per XEN_ELFNOTE_* number of
 * public/elfnote.h.  It loads the PT_LOAD segment at its virtual address
 * (VIRT_BASE 0, so guest pfn = virtual address >> 12 for everything the
 * builder maps), fills the hypercall page, builds the first page tables and
 * jumps to the entry point with the start_info address in %rsi / %esi.
 */
#define ELFNOTE_NAME_SIZE 4

/* note TYPE, then the descriptor's bytes between NOTE_DESC and NOTE_END */
.macro note type
    .pushsection .note.Xen, "a", @note
    .p2align 2
    .long ELFNOTE_NAME_SIZE
    .long 2f - 1f
    .long \type
    .asciz "Xen"
    .p2align 2
1:
.endm
.macro note_end
2:
    .p2align 2
    .popsection
.endm

#ifdef __x86_64__
# define WORD .quad
#else
# define WORD .long
#endif

    note 6              /* XEN_ELFNOTE_GUEST_OS */
    .asciz "vp2m-test-guest"
    note_end
    note 7              /* XEN_ELFNOTE_GUEST_VERSION */
    .asciz "1"
    note_end
    note 5              /* XEN_ELFNOTE_XEN_VERSION: the PV ABI */
    .asciz "xen-3.0"
    note_end
    note 8              /* XEN_ELFNOTE_LOADER */
    .asciz "generic"
    note_end
    note 3              /* XEN_ELFNOTE_VIRT_BASE */
    WORD 0
    note_end
    note 4              /* XEN_ELFNOTE_PADDR_OFFSET */
    WORD 0
    note_end
    note 1              /* XEN_ELFNOTE_ENTRY */
    WORD _start
    note_end
    note 2              /* XEN_ELFNOTE_HYPERCALL_PAGE */
    WORD hypercall_page
    note_end
    note 9              /* XEN_ELFNOTE_PAE_MODE: 32-bit is PAE only */
    .asciz "yes"
    note_end
    /* Page tables read-only (the guest updates them by hypercall) and PAE
     * page directories anywhere in machine memory. */
    note 10             /* XEN_ELFNOTE_FEATURES */
    .asciz "!writable_page_tables|pae_pgdir_above_4gb"
    note_end

    .section .text.head, "ax"
    .globl _start
_start:
#ifdef __x86_64__
    mov %rsi, start_info_ptr(%rip)
    lea boot_stack_top(%rip), %rsp
    xor %ebp, %ebp
    call guest_main
#else
    mov %esi, start_info_ptr
    mov $boot_stack_top, %esp
    xor %ebp, %ebp
    call guest_main
#endif
1:  hlt                 /* guest_main never returns; a PV hlt just traps */
    jmp 1b

    /* Overwritten by the domain builder; until then every slot returns. */
    .p2align 12
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xc3

    .bss
    .p2align 12
boot_stack:
    .skip 4 * 4096
boot_stack_top:
