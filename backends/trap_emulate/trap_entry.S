/* trap_entry.S - entering the guest in ring 3 and coming back from the signal handler.
 *
 * trap_guest_enter(regs, host_rsp_slot, guest_xsave, in_guest) saves the host's callee-saved
 * registers and control words on the host stack, records RSP, restores the guest's extended
 * state (XRSTOR of every component in regs->xsave_mask), marks the vCPU as in the guest and
 * enters it with IRETQ (same privilege, CPL 3 -> CPL 3): IRETQ loads RIP, CS, RFLAGS, RSP and
 * SS atomically, so a guest TF takes effect exactly after the guest's first instruction (a
 * POPF would single-step our own code). It returns only when the signal handler rewrote the
 * interrupted context to resume at trap_guest_exit_landing with RSP = the saved host RSP.
 *
 * in_guest is set here, inside the range the handler knows as entry code, and not by the C
 * caller: a kick arriving in host code between such a store and the call would otherwise be
 * taken for a guest signal and "leave the guest" onto a stale host stack.
 */
#define X86_EFLAGS_AC (1 << 18)
#define X86_EFLAGS_NT (1 << 14)
#define X86_EFLAGS_ID (1 << 21)
#define HDR_STICKY 32 /* struct trap_altstack_header.sticky_flags */

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
    pushq %rdx                  /* 16(%rsp) at the landing: guest XSAVE area */
    pushq 168(%rdi)             /*  8(%rsp): XSAVE mask */
    subq $8, %rsp
    stmxcsr (%rsp)              /* MXCSR and the x87 control word are callee-saved (SysV ABI) */
    fnstcw 4(%rsp)
    movq %rsp, (%rsi)
    movq %rcx, %rsi             /* in_guest */
    movq %rdx, %rcx
    movl 168(%rdi), %eax
    movl 172(%rdi), %edx
    xrstor64 (%rcx)             /* SDM vol. 1 13.8: EDX:EAX select the components */
    movl $1, (%rsi)
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
    /* RSP = host RSP saved above; the live extended state is the guest's (sigreturn restored
     * it from the signal frame): keep it for the next entry, then give the host a clean one.
     * RFLAGS is the host's (the handler set it and cleared the sticky NT/ID). */
    movq 16(%rsp), %rcx
    movl 8(%rsp), %eax
    movl 12(%rsp), %edx
    xsave64 (%rcx)
    fninit
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $24, %rsp
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
 * runs: host-sane RFLAGS (the kernel cleared DF and TF for the handler but left the
 * interrupted AC, NT and ID: AC would make an unaligned access of host code raise #AC, i.e.
 * SIGBUS, while every backend signal is blocked, which kills the process) and, if the guest
 * could have changed it, the host's FS base (C uses TLS: errno, the stack protector).
 * Afterwards: the FS base and the sticky flags of whatever context we return to. */
    .type trap_signal_entry, @function
trap_signal_entry:
    pushq %rbx
    pushq %r12
    subq $8, %rsp
    movq %rsp, %rbx
    andq $-(256 * 1024), %rbx   /* TRAP_ALTSTACK_SIZE: the header at the altstack's base */
    pushfq
    popq %r12
    movq %r12, %rax
    andq $(X86_EFLAGS_NT | X86_EFLAGS_ID), %rax
    movq %rax, HDR_STICKY(%rbx) /* by default, give the interrupted context its own back */
    andq $~(X86_EFLAGS_AC | X86_EFLAGS_NT | X86_EFLAGS_ID), %r12
    pushq %r12
    popfq
    cld
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
    movq HDR_STICKY(%rbx), %rax
    testq %rax, %rax
    je 3f
    pushfq                      /* NT/ID survive rt_sigreturn only from our own RFLAGS */
    orq %rax, (%rsp)
    popfq
3:
    addq $8, %rsp
    popq %r12
    popq %rbx
    ret
    .size trap_signal_entry, . - trap_signal_entry

    .section .note.GNU-stack,"",@progbits
