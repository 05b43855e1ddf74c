/* diff_native.S - run a generated sequence natively: load the input registers and flags, call
 * the code (it ends with RET), store the resulting registers and flags. RSP stays the host's.
 * The sequence loads and stores its own vector, x87 and MXCSR state (dbt_diff.c); here the
 * host's MXCSR and x87 control word, callee-saved in the SysV ABI, are kept around the call,
 * and the x87 unit and upper vector halves are cleaned for the C code that follows. */
    .text
    .globl diff_native_run
    .type diff_native_run, @function
diff_native_run:                 /* rdi = struct diff_regs *, rsi = code */
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rdi, diff_io(%rip)
    movq %rsi, diff_code(%rip)
    pushq 128(%rdi)
    popfq
    movq 0(%rdi), %rax
    movq 8(%rdi), %rcx
    movq 16(%rdi), %rdx
    movq 24(%rdi), %rbx
    movq 40(%rdi), %rbp
    movq 48(%rdi), %rsi
    movq 64(%rdi), %r8
    movq 72(%rdi), %r9
    movq 80(%rdi), %r10
    movq 88(%rdi), %r11
    movq 96(%rdi), %r12
    movq 104(%rdi), %r13
    movq 112(%rdi), %r14
    movq 120(%rdi), %r15
    movq 56(%rdi), %rdi
    call *diff_code(%rip)
    movq %rdi, diff_tmp(%rip)
    movq diff_io(%rip), %rdi
    movq %rax, 0(%rdi)
    movq %rcx, 8(%rdi)
    movq %rdx, 16(%rdi)
    movq %rbx, 24(%rdi)
    movq %rbp, 40(%rdi)
    movq %rsi, 48(%rdi)
    movq %r8, 64(%rdi)
    movq %r9, 72(%rdi)
    movq %r10, 80(%rdi)
    movq %r11, 88(%rdi)
    movq %r12, 96(%rdi)
    movq %r13, 104(%rdi)
    movq %r14, 112(%rdi)
    movq %r15, 120(%rdi)
    movq diff_tmp(%rip), %rax
    movq %rax, 56(%rdi)
    pushfq
    popq 128(%rdi)
    cld
    fninit
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    cmpb $0, diff_have_avx(%rip)
    je 1f
    vzeroupper
1:
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size diff_native_run, . - diff_native_run
    .bss
    .balign 8
diff_io: .quad 0
diff_code: .quad 0
diff_tmp: .quad 0
    .globl diff_have_avx
diff_have_avx: .byte 0
    .section .note.GNU-stack,"",@progbits
