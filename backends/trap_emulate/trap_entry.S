/* trap_entry.S - entering the guest in ring 3 and coming back from the signal handler.
 *
 * trap_guest_enter(regs, host_rsp_slot, guest_fpu) saves the host's callee-saved registers and
 * control words on the host stack, records RSP, restores the guest's x87/SSE state and enters
 * the guest with IRETQ (same privilege, CPL 3 -> CPL 3): IRETQ loads RIP, CS, RFLAGS, RSP and SS
 * atomically, so a guest TF takes effect exactly after the guest's first instruction (a POPF
 * would single-step our own code). It returns only when the signal handler rewrote the
 * interrupted context to resume at trap_guest_exit_landing with RSP = the saved host RSP.
 */
    .text
    .globl trap_guest_enter, trap_guest_enter_iret, trap_guest_enter_end
    .globl trap_guest_exit_landing, trap_signal_entry
    .type trap_guest_enter, @function
trap_guest_enter:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %rdx                  /* guest FXSAVE area, for the landing */
    subq $8, %rsp
    stmxcsr (%rsp)              /* MXCSR and the x87 control word are callee-saved (SysV ABI) */
    fnstcw 4(%rsp)
    movq %rsp, (%rsi)
    fxrstor64 (%rdx)
    cmpq $0, 160(%rdi)
    je 1f
    movq 144(%rdi), %rax
    wrfsbase %rax               /* from here on no TLS access until the handler restores FS */
    movq 152(%rdi), %rax
    wrgsbase %rax
1:
    movl %ss, %eax
    pushq %rax                  /* IRET frame: SS, RSP, RFLAGS, CS, RIP (SDM vol. 3A 6.14.2) */
    pushq 32(%rdi)
    pushq 136(%rdi)
    movl %cs, %eax
    pushq %rax
    pushq 128(%rdi)
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
trap_guest_enter_iret:
    iretq
trap_guest_enter_end:
    .size trap_guest_enter, . - trap_guest_enter

    .type trap_guest_exit_landing, @function
trap_guest_exit_landing:
    /* RSP = host RSP saved above; the live FPU state is the guest's (sigreturn restored it
     * from the signal frame): keep it for the next entry, then give the host a clean one. */
    movq 8(%rsp), %rdx
    fxsave64 (%rdx)
    fninit
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    cld
    ret
    .size trap_guest_exit_landing, . - trap_guest_exit_landing

/* The handler for every signal the backend takes (SA_SIGINFO | SA_ONSTACK). Before any C code
 * runs (C uses TLS: errno, the stack protector), restore the host's FS base if the guest could
 * have changed it; afterwards put back the FS base of whatever context we return to. */
    .type trap_signal_entry, @function
trap_signal_entry:
    pushq %rbx
    pushq %r12
    subq $8, %rsp
    movq %rsp, %rbx
    andq $-(256 * 1024), %rbx   /* TRAP_ALTSTACK_SIZE: the header at the altstack's base */
    movb $0, 9(%rbx)
    cmpb $0, 8(%rbx)
    je 1f
    rdfsbase %r12
    movq %r12, 16(%rbx)         /* by default, return with the interrupted FS base */
    movb $1, 9(%rbx)
    movq 0(%rbx), %rax
    wrfsbase %rax
1:
    movq %rbx, %rcx             /* 4th argument: the header */
    call trap_signal_handler_c
    cmpb $0, 9(%rbx)
    je 2f
    movq 16(%rbx), %rax
    wrfsbase %rax
2:
    addq $8, %rsp
    popq %r12
    popq %rbx
    ret
    .size trap_signal_entry, . - trap_signal_entry

    .section .note.GNU-stack,"",@progbits
