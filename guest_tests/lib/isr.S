/* isr.S - 256 interrupt entry stubs for guests that install their own IDT (idt_init()).
 * Each stub makes the frame uniform (a dummy error code where the CPU pushes none), pushes
 * its vector and jumps to a common path that saves every GPR, calls isr_dispatch(frame) and
 * returns with IRETQ. Vectors with a CPU error code: 8, 10-14, 17, 21, 29, 30 (SDM vol. 3A
 * table 6-1). */
    .text
    .globl isr_stub_table
    .balign 16
isr_stub_table:
    vector = 0
    .rept 256
    .balign 16
    .if (vector == 8) || (vector >= 10 && vector <= 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    pushq $0
    .endif
    pushq $vector
    jmp isr_common
    vector = vector + 1
    .endr

isr_common:
    pushq %r15
    pushq %r14
    pushq %r13
    pushq %r12
    pushq %r11
    pushq %r10
    pushq %r9
    pushq %r8
    pushq %rdi
    pushq %rsi
    pushq %rbp
    pushq %rbx
    pushq %rdx
    pushq %rcx
    pushq %rax
    movq %rsp, %rdi
    movq %rsp, %rbx
    andq $-16, %rsp
    cld
    call isr_dispatch
    movq %rbx, %rsp
    popq %rax
    popq %rcx
    popq %rdx
    popq %rbx
    popq %rbp
    popq %rsi
    popq %rdi
    popq %r8
    popq %r9
    popq %r10
    popq %r11
    popq %r12
    popq %r13
    popq %r14
    popq %r15
    addq $16, %rsp          /* vector and error code */
    iretq
    .section .note.GNU-stack,"",@progbits
