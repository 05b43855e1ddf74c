/* emu_fastop.S - arithmetic for the MMIO emulator, computed by the CPU itself.
 *
 * An instruction whose memory operand is MMIO cannot run natively; its memory value comes
 * from the VMM. Its result and RFLAGS are then computed by executing the register form of the
 * same operation (KVM's "fastop" emulation, arch/x86/kvm/emulate.c, is the model): the flags,
 * including the ones the SDM leaves undefined, are exactly what this CPU produces natively.
 *
 * emu_fastop(op, regs, rflags): regs[0..2] are loaded into RAX, RDX, RCX; the arithmetic flags
 * (CF PF AF ZF SF OF) of *rflags into RFLAGS; `op` runs; RAX, RDX, RCX and RFLAGS are stored
 * back. Each op has four 16-byte entries, for 8, 16, 32 and 64-bit operands (entry = op +
 * 16 * log2(bytes)); the conventions: destination RAX, source RDX, count CL (shifts), the
 * third operand RCX (CMPXCHG's memory value, MUL/DIV's operand). Entries with no form for a
 * width (SHLD on bytes ...) are UD2: the C side never selects them.
 */
#define ARITH_FLAGS 0x8D5 /* CF PF AF ZF SF OF */

    .text
    .globl emu_fastop
    .type emu_fastop, @function
emu_fastop:
    pushq %rbx
    pushq %r12
    movq %rdi, %r11
    movq %rsi, %r12
    movq %rdx, %rbx
    movq 0(%r12), %rax
    movq 8(%r12), %rdx
    movq 16(%r12), %rcx
    pushfq
    movq (%rbx), %rsi
    andq $ARITH_FLAGS, %rsi
    andq $~ARITH_FLAGS, (%rsp)
    orq %rsi, (%rsp)
    popfq
    call *%r11
    pushfq
    popq %rsi
    movq %rsi, (%rbx)
    movq %rax, 0(%r12)
    movq %rdx, 8(%r12)
    movq %rcx, 16(%r12)
    popq %r12
    popq %rbx
    ret
    .size emu_fastop, . - emu_fastop

/* One entry: the instruction, RET, padded to 16 bytes. */
.macro FOP_ENTRY insn:vararg
    .balign 16
    \insn
    ret
.endm
.macro FOP_NONE
    .balign 16
    ud2
.endm

/* dst RAX op= src RDX */
.macro FOP2 name
    .balign 16
    .globl emu_fop_\name
emu_fop_\name:
    FOP_ENTRY \name\()b %dl, %al
    FOP_ENTRY \name\()w %dx, %ax
    FOP_ENTRY \name\()l %edx, %eax
    FOP_ENTRY \name\()q %rdx, %rax
.endm
/* dst RAX = op(src RDX), no byte form */
.macro FOP2_NOBYTE name
    .balign 16
    .globl emu_fop_\name
emu_fop_\name:
    FOP_NONE
    FOP_ENTRY \name\()w %dx, %ax
    FOP_ENTRY \name\()l %edx, %eax
    FOP_ENTRY \name\()q %rdx, %rax
.endm
/* op RAX */
.macro FOP1 name
    .balign 16
    .globl emu_fop_\name
emu_fop_\name:
    FOP_ENTRY \name\()b %al
    FOP_ENTRY \name\()w %ax
    FOP_ENTRY \name\()l %eax
    FOP_ENTRY \name\()q %rax
.endm
/* op RAX by CL */
.macro FOP_SHIFT name
    .balign 16
    .globl emu_fop_\name
emu_fop_\name:
    FOP_ENTRY \name\()b %cl, %al
    FOP_ENTRY \name\()w %cl, %ax
    FOP_ENTRY \name\()l %cl, %eax
    FOP_ENTRY \name\()q %cl, %rax
.endm
/* op RCX with RDX:RAX (MUL IMUL DIV IDIV; byte forms use AX) */
.macro FOP_MULDIV name
    .balign 16
    .globl emu_fop_\name
emu_fop_\name:
    FOP_ENTRY \name\()b %cl
    FOP_ENTRY \name\()w %cx
    FOP_ENTRY \name\()l %ecx
    FOP_ENTRY \name\()q %rcx
.endm

    FOP2 add
    FOP2 or
    FOP2 adc
    FOP2 sbb
    FOP2 and
    FOP2 sub
    FOP2 xor
    FOP2 cmp
    FOP2 test
    FOP2 xadd
    FOP2_NOBYTE bt
    FOP2_NOBYTE bts
    FOP2_NOBYTE btr
    FOP2_NOBYTE btc
    FOP2_NOBYTE bsf
    FOP2_NOBYTE bsr
    FOP2_NOBYTE popcnt
    FOP2_NOBYTE lzcnt
    FOP2_NOBYTE tzcnt
    FOP2_NOBYTE imul
    FOP1 inc
    FOP1 dec
    FOP1 neg
    FOP1 not
    FOP_SHIFT rol
    FOP_SHIFT ror
    FOP_SHIFT rcl
    FOP_SHIFT rcr
    FOP_SHIFT shl
    FOP_SHIFT shr
    FOP_SHIFT sar
    FOP_MULDIV mul
    FOP_MULDIV div
    FOP_MULDIV idiv
/* IMUL with one operand (RDX:RAX = RAX * r/m) */
    .balign 16
    .globl emu_fop_imul1
emu_fop_imul1:
    FOP_ENTRY imulb %cl
    FOP_ENTRY imulw %cx
    FOP_ENTRY imull %ecx
    FOP_ENTRY imulq %rcx

/* CMPXCHG: accumulator RAX, memory value RCX, source RDX */
    .balign 16
    .globl emu_fop_cmpxchg
emu_fop_cmpxchg:
    FOP_ENTRY cmpxchgb %dl, %cl
    FOP_ENTRY cmpxchgw %dx, %cx
    FOP_ENTRY cmpxchgl %edx, %ecx
    FOP_ENTRY cmpxchgq %rdx, %rcx
/* SHLD / SHRD: destination RAX, source RDX, count CL */
    .balign 16
    .globl emu_fop_shld
emu_fop_shld:
    FOP_NONE
    FOP_ENTRY shldw %cl, %dx, %ax
    FOP_ENTRY shldl %cl, %edx, %eax
    FOP_ENTRY shldq %cl, %rdx, %rax
    .balign 16
    .globl emu_fop_shrd
emu_fop_shrd:
    FOP_NONE
    FOP_ENTRY shrdw %cl, %dx, %ax
    FOP_ENTRY shrdl %cl, %edx, %eax
    FOP_ENTRY shrdq %cl, %rdx, %rax

    .section .note.GNU-stack,"",@progbits
