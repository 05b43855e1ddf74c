/* platform_stubs.S - the default exception handlers every guest starts with.
 *
 * Copied into guest RAM at GUEST_STUBS_OFFSET; the default IDT points vector v at
 * stub base + 16 * v. A stub makes the frame uniform (dummy error code where the CPU pushes
 * none), pushes the vector and CR2, and reports the frame's address to the VMM with one 32-bit
 * OUT to PORT_EXC_REPORT (0x500): that becomes the EXCEPTION exit "exception with no guest
 * handler" on every backend alike. Position independent: only relative jumps.
 */
    .section .rodata
    .balign 16
    .globl platform_stubs_start, platform_stubs_end
platform_stubs_start:
    .code64
    vector = 0
    .rept 256
    .balign 16
    /* error-code vectors: 8 10 11 12 13 14 17 21 29 30 (SDM vol. 3A table 6-1) */
    .if (vector == 8) || (vector >= 10 && vector <= 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    pushq $0
    .endif
    pushq $vector
    jmp platform_stub_common
    vector = vector + 1
    .endr
    .balign 16
platform_stub_common:
    pushq %rax
    movq %cr2, %rax       /* traps on trap_emulate, emulated: fine */
    pushq %rax
    movl %esp, %eax       /* guest RAM lies below 4 GiB: 32 bits suffice */
    movw $0x500, %dx
    outl %eax, %dx
1:  hlt
    jmp 1b
platform_stubs_end:
    .section .note.GNU-stack,"",@progbits
