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
#define HDR_STICKY 80 /* struct trap_altstack_header.sticky_flags */
#define HDR_TSC_OFFSET 88  /* .tsc_offset */
#define HDR_RDTSC_COUNT 96 /* .rdtsc_count */
#define HDR_FAST_TRAPS 104 /* .fast_traps */

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

/* The handler for every signal the backend takes (SA_SIGINFO | SA_ONSTACK).
 *
 * First the fast path (trap_handler.c explains it; struct trap_fast in trap_emulate.h): a
 * #GP on a guest CLI (FA), STI (FB) or RDTSC (0F 31) is emulated here, in registers the handler may clobber,
 * without touching the FS base or calling C: the kernel's round trip is then almost all
 * a trap costs. RDI = signal, RDX = ucontext (gregs at 40: RIP 168, EFL 176, CSGSFS 184,
 * TRAPNO 200). Its accesses are aligned and it executes no string instruction, so the
 * interrupted AC and NT, which it does not clear, cannot matter - but the IRETQ of the direct
 * return faults with NT set: a guest running with AC or NT takes the slow path.
 *
 * The slow path, before any C code runs: host-sane RFLAGS (the kernel cleared DF and TF for
 * the handler but left the interrupted AC, NT and ID: AC would make an unaligned access of
 * host code raise #AC, i.e. SIGBUS, while every backend signal is blocked, which kills the
 * process) and, if the guest could have changed it, the host's FS base (C uses TLS: errno,
 * the stack protector). Afterwards: the FS base of whatever context we return to, and either
 * the direct return (IRETQ loads NT and ID from the ucontext, as every other flag) or the
 * sticky flags for rt_sigreturn. */
    .type trap_signal_entry, @function
trap_signal_entry:
    cmpl $11, %edi              /* SIGSEGV */
    jne 9f
    cmpq $13, 200(%rdx)         /* #GP */
    jne 9f
    testl $0x100, 176(%rdx)     /* a single step (the guest's or ours) sees every instruction */
    jnz 9f
    testl $(X86_EFLAGS_AC | X86_EFLAGS_NT), 176(%rdx) /* the slow path makes them host-sane */
    jnz 9f
    movq %rsp, %rax
    andq $-(256 * 1024), %rax   /* the header (TRAP_ALTSTACK_SIZE) */
    movw 184(%rdx), %cx
    cmpw 74(%rax), %cx          /* the guest runs on the host's 64-bit code selector */
    jne 9f
    movq 168(%rdx), %rcx        /* RIP: guest code, in the guest window */
    leaq -0x40000000(%rcx), %r8
    cmpq $0x20000000, %r8
    jae 9f
    movzbl (%rcx), %r8d         /* #GP is a fault: RIP is the opcode byte, just fetched */
    movq 32(%rax), %r9          /* &state.rflags */
    movq 64(%rax), %r10         /* &state.interrupt_shadow */
    cmpl $0xfa, %r8d
    jne 1f
    cmpb $0, 72(%rax)           /* CLI: IF = 0, any STI shadow ends */
    je 9f
    andq $~0x200, (%r9)
    movb $0, (%r10)
    movq 48(%rax), %r11
    jmp 2f
1:  cmpl $0xfb, %r8d
    jne 5f
    cmpb $0, 73(%rax)           /* STI: a shadow only if IF was clear (SDM vol. 2B STI) */
    je 9f
    movq (%r9), %r8
    notq %r8
    shrq $9, %r8
    andl $1, %r8d
    movb %r8b, (%r10)
    orq $0x200, (%r9)
    leaq 1(%rcx), %r8
    movq 40(%rax), %r11
    movq %r8, (%r11)            /* shadow_rip = the next instruction */
    movq 56(%rax), %r11
2:  incq (%r11)                 /* stats.emulated[CLI or STI] */
    incq HDR_FAST_TRAPS(%rax)
    incq 168(%rdx)              /* RIP past the one-byte instruction */
    cmpb $0, 10(%rax)
    jne trap_direct_return
    ret
    /* RDTSC (0F 31; #GP under CR4.TSD, which PR_SET_TSC sets): EDX:EAX = the virtual TSC, what
     * emu_virtual_tsc() returns - CLOCK_MONOTONIC in ns (a raw system call: the vDSO would read
     * the TSC, which faults on this thread) + state.tsc_offset. The general path would also end
     * an STI shadow: with one pending it takes the instruction. A failed system call, too. */
5:  cmpl $0x0f, %r8d
    jne 9f
    cmpb $0x31, 1(%rcx)         /* a #GP on 0F means the whole instruction was fetched */
    jne 9f
    cmpb $0, 72(%rax)           /* cli_ok: in the guest, no trace, no single step of ours */
    je 9f
    cmpb $0, (%r10)             /* no STI shadow to end */
    jne 9f
    movq %rax, %r8              /* the header; RDX (ucontext) survives the system call */
    movq %rsi, %r10             /* siginfo, for the general path if the call fails */
    subq $16, %rsp              /* struct timespec */
    movl $228, %eax             /* clock_gettime(CLOCK_MONOTONIC, rsp) */
    movl $1, %edi
    movq %rsp, %rsi
    syscall
    testq %rax, %rax
    jnz 6f
    movq (%rsp), %rcx
    imulq $1000000000, %rcx, %rcx
    addq 8(%rsp), %rcx
    addq $16, %rsp
    movq HDR_TSC_OFFSET(%r8), %rax
    addq (%rax), %rcx           /* the virtual TSC */
    movl %ecx, %eax
    movq %rax, 144(%rdx)        /* RAX = bits 31:0, zero-extended (SDM vol. 2B RDTSC) */
    shrq $32, %rcx
    movq %rcx, 136(%rdx)        /* RDX = bits 63:32 */
    movq HDR_RDTSC_COUNT(%r8), %rax
    incq (%rax)                 /* stats.emulated[RDTSC] */
    incq HDR_FAST_TRAPS(%r8)
    addq $2, 168(%rdx)          /* RIP past 0F 31 */
    cmpb $0, 10(%r8)
    jne trap_direct_return
    ret
6:  addq $16, %rsp
    movl $11, %edi              /* SIGSEGV, as the kernel passed it */
    movq %r10, %rsi
9:
    pushq %rbx
    pushq %r12
    pushq %rdx                  /* the ucontext, for the direct return */
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
    movq 16(%rbx), %rcx
    wrfsbase %rcx
2:
    popq %rdx
    popq %r12
    testl %eax, %eax            /* 1: the context in the ucontext may be resumed directly */
    jnz 4f
    movq HDR_STICKY(%rbx), %rax
    testq %rax, %rax
    je 3f
    pushfq                      /* NT/ID survive rt_sigreturn only from our own RFLAGS */
    orq %rax, (%rsp)
    popfq
3:
    popq %rbx
    ret
4:
    popq %rbx
    jmp trap_direct_return
    .size trap_signal_entry, . - trap_signal_entry

/* Resume the context in the ucontext (RDX) without rt_sigreturn: a system call that costs a
 * fifth of every trap here, and more with Syscall User Dispatch on (its slow path runs for
 * every system call). What rt_sigreturn would restore, in the same order of effect: the
 * signal mask the kernel changed at delivery (rt_sigprocmask: the one system call left),
 * the x87/SSE/AVX state the kernel saved in the frame and reset for the handler (XRSTOR, or
 * FXRSTOR for a legacy frame), the general registers, then RIP, CS, RFLAGS, RSP and SS at once
 * with IRETQ, as trap_guest_enter enters the guest (CPL 3 -> CPL 3: IF and IOPL are not
 * changeable, as with sigreturn). The FS and GS bases are the interrupted context's already
 * (the slow path's epilogue put FS back; the fast path never changed it).
 *
 * From the rt_sigprocmask on, signals can arrive: a kick there (the only asynchronous signal
 * of the backend) finds RIP between trap_tail_start and trap_tail_end and is redirected to
 * trap_tail_kick (trap_handler.c), which takes it as a kick of the interrupted context. The
 * stack keeps one layout meanwhile: the IRET frame at RSP, the ucontext at RSP + 48 (the
 * frame's return address at RSP + 40), so any point of the tail can find the ucontext. */
    .globl trap_direct_return, trap_tail_start, trap_tail_end, trap_tail_kick
    .type trap_direct_return, @function
trap_direct_return:
    subq $40, %rsp              /* the IRET frame */
    leaq 296(%rdx), %rsi        /* rt_sigprocmask(SIG_SETMASK, &uc->uc_sigmask, NULL, 8) */
    movl $2, %edi
    xorl %edx, %edx
    movl $8, %r10d
    movl $14, %eax
    syscall
trap_tail_start:
    movq 48+224(%rsp), %rcx     /* uc_mcontext.fpregs */
    movl $-1, %eax
    movl $-1, %edx
    testq $1, 48(%rsp)          /* uc_flags & UC_FP_XSTATE: an XSAVE image */
    jz 1f
    xrstor64 (%rcx)
    jmp 2f
1:  fxrstor64 (%rcx)
2:  movq 48+40+128(%rsp), %rax  /* RIP */
    movq %rax, 0(%rsp)
    movl %cs, %eax
    movq %rax, 8(%rsp)
    movq 48+40+136(%rsp), %rax  /* RFLAGS */
    movq %rax, 16(%rsp)
    movq 48+40+120(%rsp), %rax  /* RSP */
    movq %rax, 24(%rsp)
    movl %ss, %eax
    movq %rax, 32(%rsp)
    movq 48+40+0(%rsp), %r8
    movq 48+40+8(%rsp), %r9
    movq 48+40+16(%rsp), %r10
    movq 48+40+24(%rsp), %r11
    movq 48+40+32(%rsp), %r12
    movq 48+40+40(%rsp), %r13
    movq 48+40+48(%rsp), %r14
    movq 48+40+56(%rsp), %r15
    movq 48+40+64(%rsp), %rdi
    movq 48+40+72(%rsp), %rsi
    movq 48+40+80(%rsp), %rbp
    movq 48+40+88(%rsp), %rbx
    movq 48+40+96(%rsp), %rdx
    movq 48+40+104(%rsp), %rax
    movq 48+40+112(%rsp), %rcx
    iretq
    /* A kick arrived in the tail: take it as a kick of the interrupted context, through the
     * general path with the ucontext (which returns with rt_sigreturn or comes back here).
     * The general path must run with signals blocked, as it does when the kernel enters it:
     * block them all first (rt_sigreturn, or the rt_sigprocmask above, gives the interrupted
     * context's mask back). A kick before that is redirected here again: nothing above the
     * system call has changed anything. */
trap_tail_kick:
    leaq trap_all_signals(%rip), %rsi /* rt_sigprocmask(SIG_BLOCK, all, NULL, 8) */
    xorl %edi, %edi
    xorl %edx, %edx
    movl $8, %r10d
    movl $14, %eax
    syscall
trap_tail_end:
    leaq 48(%rsp), %rdx
    addq $40, %rsp
    movq %rsp, %rax
    andq $-(256 * 1024), %rax
    movl 12(%rax), %edi         /* the kick signal's number (header) */
    xorl %esi, %esi
    jmp 9b
    .size trap_direct_return, . - trap_direct_return

    .section .rodata
    .balign 8
trap_all_signals:
    .quad -1
    .text

    .section .note.GNU-stack,"",@progbits
