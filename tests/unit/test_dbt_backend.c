/* test_dbt_backend.c - the dbt backend through its ops table, on small guest fragments.
 *
 * Each fragment is assembled into .rodata of this test (position independent: only relative
 * branches), copied to GUEST_IMAGE_BASE and run until its final `out %al, $0xf4`. What is
 * checked is what a guest could observe (registers, flags, memory, exits) plus the counters
 * that prove which mechanism ran (inline, callout, chaining, lookup hits, invalidations).
 *
 * These run in the test process although cmocka installs its own SIGSEGV/SIGILL handlers per
 * test: each test creates its vCPU inside the test, and vcpu_create installs the dbt handlers
 * over cmocka's (keeping them as the "previous" action for faults that are not the guest's).
 */
#define _GNU_SOURCE
#include <asm/processor-flags.h>
#include <elf.h>
#include <errno.h>
#include <cpuid.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/dbt/dbt.h" /* DBT_MAX_BLOCKS */
#include "bench/bench.h"      /* the compute kernel blob */
#include "emu/emu.h"
#include "vmm/host_x87.h"
#include "vmm/backend.h"
#include "vmm/guest_layout.h"
#include "vmm/kick.h"
#include "vmm/platform.h"

#define CODE GUEST_IMAGE_BASE
#define DATA (GUEST_RAM_BASE + 0x300000)

/* clang-format off */
#define FRAGMENT(name, text)                                                                       \
    __asm__(".pushsection .rodata\n" #name "_start:\n" text "\n" #name "_end:\n.popsection\n");     \
    extern const uint8_t name##_start[], name##_end[];

/* CLI and STI must not touch the arithmetic flags (SDM vol. 2A CLI: only IF is affected). */
FRAGMENT(f_cli_flags,
    "xor %eax, %eax\n stc\n cli\n sti\n cli\n pushfq\n pop %rbx\n out %al, $0xf4\n")
/* POPF: the virtual IF and every arithmetic flag from the image; PUSHF shows them back. */
FRAGMENT(f_popf,
    "push $0xad5\n popfq\n pushfq\n pop %rbx\n push $0x2\n popfq\n pushfq\n pop %rcx\n"
    "push $0x8d5\n popfq\n out %al, $0xf4\n")
/* POPF of an image with DF set takes the slow path; DF must come through. */
FRAGMENT(f_popf_df,
    "push $0x402\n popfq\n pushfq\n pop %rbx\n cld\n out %al, $0xf4\n")
/* A counted loop: chained direct branches, no exits per iteration. */
FRAGMENT(f_loop,
    "mov $100000, %ecx\n xor %eax, %eax\n1: add %rcx, %rax\n dec %ecx\n jnz 1b\n out %al, $0xf4\n")
/* Calls and returns: the inline lookup must hit. */
FRAGMENT(f_calls,
    "mov $1000, %ecx\n xor %eax, %eax\n1: call 2f\n dec %ecx\n jnz 1b\n out %al, $0xf4\n"
    "2: inc %rax\n ret\n")
/* A callout that falls through (CPUID) must not end the block or lose registers. */
FRAGMENT(f_cpuid,
    "mov $0x1234, %r12\n xor %eax, %eax\n xor %ecx, %ecx\n cpuid\n mov %r12, %r13\n out %al, $0xf4\n")
/* Port I/O leaves for the VMM, so it ends the block (dbt_translate.c ends_block): each stretch
 * between two OUTs is translated once, where the dispatcher comes back. A REP OUTSB with
 * RCX = 0 does no I/O and goes on at the next instruction's block. RBX = 4. */
FRAGMENT(f_io_ends_block,
    "xor %ebx, %ebx\n inc %ebx\n out %al, $0x80\n inc %ebx\n out %al, $0x80\n inc %ebx\n"
    " xor %ecx, %ecx\n mov $0x80, %edx\n rep outsb\n inc %ebx\n out %al, $0xf4\n")
/* Self-modifying code: run `mov $1, %eax`, patch its immediate, run it again. */
FRAGMENT(f_smc,
    "xor %ebx, %ebx\n mov $2, %ecx\n1: call 2f\n add %eax, %ebx\n movl $5, 3f+1(%rip)\n dec %ecx\n"
    " jnz 1b\n out %al, $0xf4\n2: nop\n3: mov $1, %eax\n ret\n")
/* SMC behind a chained jump: the caller (page 0) is chained to the callee (page 1) before the
 * callee is patched; only unchaining the caller's stub makes the third call run the new code.
 * RBX = 1 (first call) + 1 (second, before the patch) + 5 (third). */
FRAGMENT(f_smc_chained,
    "xor %ebx, %ebx\n mov $3, %ecx\n1: call 2f\n add %eax, %ebx\n cmp $2, %ecx\n jne 4f\n"
    " movl $5, 3f+1(%rip)\n4: dec %ecx\n jnz 1b\n out %al, $0xf4\n .fill 4096, 1, 0xcc\n"
    "2: nop\n3: mov $1, %eax\n ret\n")
/* The same through a taken Jcc, which chaining points straight at the callee's block: the
 * unchaining must point the Jcc back at its exit stub. */
FRAGMENT(f_smc_jcc,
    "xor %ebx, %ebx\n mov $3, %ecx\n1: xor %eax, %eax\n test %ecx, %ecx\n jnz 2f\n"
    "5: add %eax, %ebx\n cmp $2, %ecx\n jne 4f\n movl $5, 3f+1(%rip)\n4: dec %ecx\n jnz 1b\n"
    " out %al, $0xf4\n .fill 4096, 1, 0xcc\n2: nop\n3: mov $1, %eax\n jmp 5b\n")
/* #DE in translated code: delivered at the exact guest RIP with the guest's registers. */
FRAGMENT(f_div0,
    "mov $7, %eax\n xor %ecx, %ecx\n mov $0x55, %r9\n div %ecx\n out %al, $0xf4\n")
/* CALL r/m whose push of the return address faults (RSP outside RAM): #PF at the CALL with the
 * guest's registers, RCX (the scratch register holding the target then) included. The #PF gate
 * gets IST1 (a stack in RAM) so that the fault can be delivered at all. */
FRAGMENT(f_icall_push_fault,
    "movq $0x40380000, 0x40002024\n orb $1, 0x40003000+14*16+4\n lea 1f(%rip), %rax\n"
    "mov $0x5151, %ecx\n mov $0x30001000, %rsp\n call *%rax\n1: out %al, $0xf4\n")
/* JMP and CALL through memory in the operand forms the lookup loads with `mov rcx, r/m`
 * (dbt_lookup.c emit_target_to_rcx): RSP-relative (read before the CALL's push), RCX as the
 * base (the guest's value), REX.B/X registers, an address-size prefix, a DS prefix; 100
 * times, so the lookup hits. The JMP must leave the guest stack below RSP alone (a canary at
 * [rsp-8]): going through the stack (PUSH r/m, POP RCX) would overwrite it. RBX = 100 * 1222. */
FRAGMENT(f_mem_targets,
    "mov $100, %r12d\n xor %ebx, %ebx\n sub $64, %rsp\n"
    "lea 11f(%rip), %rax\n mov %rax, (%rsp)\n lea 12f(%rip), %rax\n mov %rax, 8(%rsp)\n"
    "lea 13f(%rip), %rax\n mov %rax, 16(%rsp)\n lea 14f(%rip), %rax\n mov %rax, 24(%rsp)\n"
    "lea 9f(%rip), %r11\n"
    "1: call *(%rsp)\n call *8(%rsp)\n mov %rsp, %rcx\n mov $1, %edx\n call *(%rcx,%rdx,8)\n"
    " mov %rsp, %r9\n mov $2, %r10d\n call *(%r9,%r10,8)\n mov %esp, %eax\n"
    " addr32 call *(%eax)\n ds call *16(%rsp)\n mov $0x5151, %ecx\n movq $0x77, -8(%rsp)\n"
    " jmp *24(%rsp)\n"
    "9: cmp $0x5151, %rcx\n jne 8f\n cmpq $0x77, -8(%rsp)\n jne 8f\n dec %r12d\n jnz 1b\n"
    " add $64, %rsp\n out %al, $0xf4\n8: ud2\n"
    "11: add $1, %rbx\n ret\n12: add $10, %rbx\n ret\n13: add $100, %rbx\n ret\n"
    "14: add $1000, %rbx\n jmp *%r11\n")
/* A CALL through a pointer that is not mapped: #PF at the CALL, nothing changed. */
FRAGMENT(f_icall_load_fault,
    "movq $0x40380000, 0x40002024\n orb $1, 0x40003000+14*16+4\n mov $0x30000000, %eax\n"
    "mov $0x5151, %ecx\n call *(%rax)\n out %al, $0xf4\n")
/* Traces (VMLAB_DBT traces=on, dbt_trace.c). A loop through a call: the trace follows the
 * CALL, the RET behind its compare and the back edge. */
FRAGMENT(f_trace_calls,
    "mov $1000, %ecx\n xor %eax, %eax\n1: call 2f\n dec %ecx\n jnz 1b\n out %al, $0xf4\n"
    "2: inc %rax\n ret\n")
/* SMC in a block of a trace: the callee (page 1) is in the loop's trace when the loop patches
 * it at ECX = 500. RBX = 501 * 1 + 499 * 5. */
FRAGMENT(f_trace_smc,
    "xor %ebx, %ebx\n mov $1000, %ecx\n1: call 2f\n add %eax, %ebx\n cmp $500, %ecx\n jne 4f\n"
    " movl $5, 3f+1(%rip)\n4: dec %ecx\n jnz 1b\n out %al, $0xf4\n .fill 4096, 1, 0xcc\n"
    "2: nop\n3: mov $1, %eax\n ret\n")
/* The callee moves its own return address on by RDX: 0, but 64 KiB at ECX = 700 (CMOV: the
 * path of a trace stays the same), where a JMP goes back into the loop past the INC after the
 * CALL. RBX = 999. 64 KiB: the return-address cache is indexed by the low 16 bits, so the
 * RET finds the return point of the real return address and only its check tells them
 * apart. */
FRAGMENT(f_trace_ret_rewrite,
    "xor %ebx, %ebx\n mov $1000, %ecx\n mov $0x10000, %esi\n1: xor %edx, %edx\n"
    " cmp $700, %ecx\n cmove %esi, %edx\n call 3f\n5: inc %ebx\n2: dec %ecx\n jnz 1b\n"
    " out %al, $0xf4\n3: add %rdx, (%rsp)\n ret\n .skip 0x10000 - (. - 5b), 0xcc\n jmp 2b\n")
/* Forever, chained to itself, and forever through returns. */
FRAGMENT(f_spin, "1: jmp 1b\n")
/* Loops that stay in translated code through returns, indirect calls and indirect jumps (the
 * return-address cache and the lookup table); RCX, their scratch register, holds 0x5151. */
FRAGMENT(f_spin_ret, "mov $0x5151, %ecx\n1: call 2f\n jmp 1b\n2: ret\n")
FRAGMENT(f_spin_icall, "mov $0x5151, %ecx\n lea 2f(%rip), %rax\n1: call *%rax\n jmp 1b\n2: ret\n")
FRAGMENT(f_spin_ijmp, "mov $0x5151, %ecx\n lea 1f(%rip), %rax\n1: jmp *%rax\n")
/* Forever through a taken Jcc, which chaining points straight at its own block. */
FRAGMENT(f_spin_jcc, "xor %ebx, %ebx\n1: inc %rax\n add %rax, %rcx\n test %ebx, %ebx\n jz 1b\n")
FRAGMENT(f_spin_long,
    "1: inc %rax\n add %rax, %rbx\n imul %rbx, %rcx\n xor %rcx, %rdx\n call 2f\n jmp 1b\n"
    "2: ret\n")
/* STI with the VMM waiting for a window: the next instruction runs (shadow), then it exits. */
FRAGMENT(f_window, "sti\n inc %eax\n inc %ebx\n out %al, $0xf4\n")
/* Undecodable bytes (PUSH ES does not exist in 64-bit mode): #UD at their RIP, from the
 * dispatcher; UD2 decodes, runs natively and faults: #UD from SIGILL. */
FRAGMENT(f_bad, "nop\n .byte 0x06\n out %al, $0xf4\n")
FRAGMENT(f_ud2, "nop\n nop\n ud2\n out %al, $0xf4\n")
/* RIP-relative load and store. */
FRAGMENT(f_riprel,
    "mov 1f(%rip), %rax\n addq $1, 1f(%rip)\n mov 1f(%rip), %rbx\n out %al, $0xf4\n"
    ".balign 8\n1: .quad 0x1122334455667788\n")
/* The guest's vector registers (loaded from DATA, stored to DATA + 0x1000) and MXCSR (from
 * DATA + 0x800, to DATA + 0x1800) across a callout (CPUID), a VMM exit (OUT to the scratch
 * port) and a fresh translation. Between the exits the test itself runs: glibc and cmocka use
 * vector registers. */
FRAGMENT(f_ymm,
    "mov $0x40300000, %esi\n ldmxcsr 0x800(%rsi)\n"
    ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n vmovdqu \\r*32(%rsi), %ymm\\r\n .endr\n"
    "xor %eax, %eax\n xor %ecx, %ecx\n cpuid\n mov $0x530, %edx\n out %eax, %dx\n jmp 1f\n 1:\n"
    "mov $0x40300000, %esi\n stmxcsr 0x1800(%rsi)\n"
    ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n vmovdqu %ymm\\r, 0x1000+\\r*32(%rsi)\n .endr\n"
    "out %al, $0xf4\n")
FRAGMENT(f_zmm,
    "mov $0x40300000, %esi\n ldmxcsr 0x800(%rsi)\n"
    ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    " vmovdqu64 \\r*64(%rsi), %zmm\\r\n .endr\n"
    ".irp r,0,1,2,3,4,5,6,7\n kmovw 0x880+\\r*2(%rsi), %k\\r\n .endr\n"
    "xor %eax, %eax\n xor %ecx, %ecx\n cpuid\n mov $0x530, %edx\n out %eax, %dx\n jmp 1f\n 1:\n"
    "mov $0x40300000, %esi\n stmxcsr 0x1800(%rsi)\n"
    ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    " vmovdqu64 %zmm\\r, 0x1000+\\r*64(%rsi)\n .endr\n"
    ".irp r,0,1,2,3,4,5,6,7\n kmovw %k\\r, 0x1880+\\r*2(%rsi)\n .endr\n"
    "out %al, $0xf4\n")
/* The x87 unit across VMM exits while the host uses its own: three values on the stack, a
 * non-default control word, and a masked division by zero whose flag is then unmasked (a
 * pending #MF). FNSTSW/FNSAVE (non-waiting) read it back at the end. */
FRAGMENT(f_x87,
    "mov $0x40300000, %esi\n fninit\n fldpi\n fld1\n fldz\n fdivr %st(1), %st\n"
    "fldcw 0x800(%rsi)\n mov $0x530, %edx\n out %eax, %dx\n cpuid\n mov $0x530, %edx\n"
    "out %eax, %dx\n"
    "fnsave 0x1000(%rsi)\n out %al, $0xf4\n")
/* The guest's first x87 instruction is in a block translated after a VMM exit during which
 * the host left its own x87 state behind: the guest must find the x87 unit in its initial
 * state. */
FRAGMENT(f_x87_late,
    "mov $0x40300000, %esi\n mov $0x530, %edx\n out %eax, %dx\n jmp 1f\n 1: fnstcw 0x1000(%rsi)\n"
    "fnstsw 0x1002(%rsi)\n fnsave 0x1010(%rsi)\n out %al, $0xf4\n")
/* FS-relative operands in the addressing forms dbt rewrites, with FS.base = DATA - 0x100
 * (WRMSR IA32_FS_BASE, a callout): base + index*scale + disp, a 32-bit address size
 * (truncated before the base is added), absolute, a locked read-modify-write, an SSE load, and
 * an instruction next to many live GPRs (the rewrite's scratch registers must come back). */
FRAGMENT(f_fs_forms,
    "mov $0xC0000100, %ecx\n mov $0x40300000-0x100, %eax\n xor %edx, %edx\n wrmsr\n"
    "mov $0x40, %ebx\n mov $2, %esi\n"
    "mov %fs:0x110(%rbx,%rsi,4), %r8\n"            /* DATA + 0x58 */
    "mov $0x100, %eax\n mov %fs:(%eax), %r9\n"   /* addr32: DATA + 0 */
    "lock addq $5, %fs:0x108\n"                   /* DATA + 8 += 5 */
    "movdqu %fs:0x120, %xmm3\n movq %xmm3, %r10\n" /* DATA + 0x20 */
    "mov $1, %eax\n mov $2, %ecx\n mov $3, %edx\n mov $4, %ebx\n mov $5, %esi\n mov $6, %edi\n"
    "mov $7, %r11d\n mov $8, %r12d\n mov $9, %r13d\n mov $10, %r14d\n mov $11, %r15d\n"
    "add %fs:0x130, %r15\n"                       /* DATA + 0x30 */
    "out %al, $0xf4\n")
/* An instruction the MMIO emulation does not handle, pointed at the MMIO window. */
FRAGMENT(f_mmio_unknown, "mov $0x44000000, %eax\n vmovdqu (%rax), %ymm0\n out %al, $0xf4\n")
/* Stores into the lookup table next to the code cache: it is read-only, a #PF. */
FRAGMENT(f_write_lookup, "movq $1, 0x60001000\n out %al, $0xf4\n")
/* The guest overwrites the whole context page (it is guest-writable by construction) and
 * goes on through a callout and a VMM exit: nothing the host relies on may be there. (The
 * pattern leaves the guest's own virtual TF, which also lives there, clear.) */
FRAGMENT(f_trash_context,
    "mov $0x60000000, %edi\n mov $512, %ecx\n mov $0xAAAAAAAAAAAAAAAA, %rax\n rep stosq\n"
    "xor %eax, %eax\n cpuid\n mov $0x530, %edx\n out %eax, %dx\n mov $0x77, %ebx\n"
    "out %al, $0xf4\n")
/* LOOP with an operand-size prefix, taken twice: dbt follows Intel (and Zydis), where 66H does
 * not change a near branch in 64-bit mode. Copied with the prefix, an AMD host truncated the
 * taken branch's host RIP to 16 bits and the process died (chaos test). */
FRAGMENT(f_loop16,
    "mov $3, %ecx\n xor %eax, %eax\n 1: inc %eax\n .byte 0x66\n loop 1b\n mov %eax, %ebx\n"
    "out %al, $0xf4\n")
/* A block first reached by a direct CALL, then called indirectly 100 times: its lookup entry
 * goes into the stub area (the block existed before); with traces, the loop's head gets a
 * counting stub there too. */
FRAGMENT(f_ibl_fill,
    "xor %eax, %eax\n call 2f\n lea 2f(%rip), %rdx\n mov $100, %ecx\n1: call *%rdx\n dec %ecx\n"
    " jnz 1b\n out %al, $0xf4\n2: inc %rax\n ret\n")
/* RET imm16 releases its argument: the return address is then below [rsp-8], where returns
 * through the return-address cache find theirs (dbt_lookup.c), so it takes the lookup. */
FRAGMENT(f_ret_imm,
    "mov $100, %ecx\n xor %eax, %eax\n1: push $5\n call 2f\n dec %ecx\n jnz 1b\n"
    " out %al, $0xf4\n2: add 8(%rsp), %rax\n ret $8\n")
/* JMP through RAX, RCX and R11 (dbt_emit_indirect_jump's register form), 100 times each, RCX
 * and R11 also holding data the guest reads after the jump. */
FRAGMENT(f_jmp_reg,
    "mov $100, %edx\n xor %esi, %esi\n xor %ebx, %ebx\n"
    "1: lea 2f(%rip), %rax\n jmp *%rax\n"
    "2: lea 3f(%rip), %rcx\n jmp *%rcx\n"
    "3: add %rcx, %rbx\n lea 4f(%rip), %r11\n jmp *%r11\n"
    "4: sub %r11, %rbx\n inc %esi\n dec %edx\n jnz 1b\n out %al, $0xf4\n")
/* Two indirect-jump targets 64 KiB apart share their lookup-table slot: each jump to one
 * finds the other's entry there, whose check must send it on to the dispatcher. */
FRAGMENT(f_ibl_collide,
    "mov $50, %ecx\n xor %ebx, %ebx\n1: lea 2f(%rip), %rax\n jmp *%rax\n"
    "2: inc %rbx\n lea 3f(%rip), %rax\n jmp *%rax\n .org 2b + 65536, 0xcc\n"
    "3: add $2, %rbx\n dec %ecx\n jnz 1b\n out %al, $0xf4\n")
/* The guest's CF across the checks (dbt_lookup.c emit_check), each read right after the
 * check falls through or misses. Returns: the callee sets CF to ECX's bit 0, the caller adds
 * it up: RBX = 50. */
FRAGMENT(f_carry_return_hit,
    "xor %ebx, %ebx\n mov $100, %ecx\n1: call 2f\n adc $0, %rbx\n dec %ecx\n jnz 1b\n"
    " out %al, $0xf4\n2: bt $0, %ecx\n ret\n")
/* A return address rewritten by 64 KiB (the same return-cache slot) at ECX = 701, CF = 1:
 * the mismatch path must hand CF on. RBX = 499 odd ECX on normal returns + 100 + 1. */
FRAGMENT(f_carry_return_miss,
    "xor %ebx, %ebx\n mov $1000, %ecx\n mov $0x10000, %esi\n1: xor %edx, %edx\n"
    " cmp $701, %ecx\n cmove %esi, %edx\n call 3f\n5: adc $0, %rbx\n2: dec %ecx\n jnz 1b\n"
    " out %al, $0xf4\n3: add %rdx, (%rsp)\n bt $0, %ecx\n ret\n"
    " .skip 0x10000 - (. - 5b), 0xcc\n adc $100, %rbx\n jmp 2b\n")
/* Indirect jumps with CF live: 2 and 3 share a lookup slot (every jump to them misses), 4
 * has its own (hits). Per round: 1 at 2, 1 + ECX's bit 0 at 3, ECX's bit 0 at 4: RBX = 150. */
FRAGMENT(f_carry_lookup,
    "mov $50, %ecx\n xor %ebx, %ebx\n1: lea 2f(%rip), %rax\n stc\n jmp *%rax\n"
    "2: adc $0, %rbx\n lea 3f(%rip), %rax\n bt $0, %ecx\n jmp *%rax\n .org 2b + 65536, 0xcc\n"
    "3: adc $1, %rbx\n lea 4f(%rip), %r11\n bt $0, %ecx\n jmp *%r11\n"
    "4: adc $0, %rbx\n dec %ecx\n jnz 1b\n out %al, $0xf4\n")
/* A load that faults right after a return with CF = 1: the #PF frame shows CF = 1. */
FRAGMENT(f_carry_fault,
    "mov $0x30000000, %eax\n call 2f\n mov (%rax), %rdx\n out %al, $0xf4\n2: stc\n ret\n")
/* A block translated before any indirect branch targets it (reached by a direct JMP first),
 * then the target of an indirect JMP 100 times: its lookup entry goes into the exit-stub
 * area, whatever the check form (dbt_cache_ibl_fill), so only the first indirect JMP misses.
 * RBX = 100. */
FRAGMENT(f_ibl_existing_block,
    "xor %ebx, %ebx\n mov $100, %ecx\n lea 2f(%rip), %rax\n jmp 2f\n1: jmp *%rax\n"
    "2: inc %ebx\n dec %ecx\n jnz 1b\n out %al, $0xf4\n")
/* A block at the end of page 0 falls through into one on page 1, translated right after it:
 * its fall-through JMP, chained, is a NOP (dbt_cache.c write_rel32). The guest then rewrites
 * the second block: the first survives (other page) and must reach the new code.
 * RBX = 1 + 1 + 5. */
FRAGMENT(f_smc_fallthrough,
    "0: xor %ebx, %ebx\n mov $3, %ecx\n jmp 1f\n .org 0b + 4096 - 4, 0xcc\n"
    "1: test %ecx, %ecx\n jz 9f\n"
    "2: mov $1, %eax\n add %eax, %ebx\n cmp $2, %ecx\n jne 4f\n movl $5, 2b+1(%rip)\n"
    "4: dec %ecx\n jnz 1b\n9: out %al, $0xf4\n")
/* clang-format on */

struct run {
    struct guest_memory *mem;
    struct vm *vm;
    struct vcpu *vcpu;
    struct vm_exit exit;
    struct vcpu_state st;
};

/* What the run in progress holds: released by teardown() if a failed assertion left its test
 * early, so that the next test can map the guest window again (each test fails on its own).
 * A copy, not a pointer to the test's `struct run`: that lives in the frame the failed
 * assertion's longjmp left, which teardown's own calls overwrite. */
static struct run active_run;

static void start(struct run *r, const uint8_t *start, const uint8_t *end)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(guest_memory_create(dbt_backend_ops.memory_flags, &r->mem), 0);
    active_run.mem = r->mem;
    platform_setup(r->mem);
    memcpy(guest_ram_ptr(r->mem, CODE, (uint64_t)(end - start)), start, (size_t)(end - start));
    struct vm_config config = {.mem = r->mem};
    assert_int_equal(dbt_backend_ops.vm_create(&config, &r->vm), 0);
    active_run.vm = r->vm;
    assert_int_equal(dbt_backend_ops.vcpu_create(r->vm, &r->vcpu), 0);
    active_run.vcpu = r->vcpu;
    emu_reset_state(&r->st, CODE);
    assert_int_equal(dbt_backend_ops.vcpu_set_state(r->vcpu, &r->st), 0);
}

/* Run, ignoring kicks, until an exit other than INTR; the state lands in r->st. */
static uint32_t go(struct run *r)
{
    do {
        r->vcpu->kick_pending = 0;
        assert_int_equal(dbt_backend_ops.vcpu_run(r->vcpu, &r->exit), 0);
    } while (r->exit.reason == VM_EXIT_INTR);
    dbt_backend_ops.vcpu_get_state(r->vcpu, &r->st);
    return r->exit.reason;
}

static bool final_out(const struct run *r)
{
    return r->exit.reason == VM_EXIT_IO && r->exit.io.port == PORT_EXIT;
}

struct stat_find {
    const char *name;
    uint64_t value;
};
static void stat_emit(void *ctx, const char *name, uint64_t value, const char *unit)
{
    (void)unit;
    struct stat_find *f = ctx;
    if (!strcmp(name, f->name))
        f->value = value;
}
static uint64_t stat(struct run *r, const char *name)
{
    struct stat_find f = {name, ~0ULL};
    dbt_backend_ops.vcpu_stats(r->vcpu, stat_emit, &f);
    assert_true(f.value != ~0ULL);
    return f.value;
}

static void stop(struct run *r)
{
    if (r->vcpu)
        dbt_backend_ops.vcpu_destroy(r->vcpu);
    if (r->vm)
        dbt_backend_ops.vm_destroy(r->vm);
    if (r->mem)
        guest_memory_destroy(r->mem);
    memset(&active_run, 0, sizeof(active_run));
}

static int teardown(void **unused)
{
    (void)unused;
    stop(&active_run);
    return 0;
}

#define ARITH                                                                                      \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF)

static void test_cli_sti_keep_flags(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_cli_flags_start, f_cli_flags_end);
    go(&r);
    assert_true(final_out(&r));
    uint64_t f = r.st.gpr[X86_RBX];
    assert_int_equal(f & ARITH, X86_EFLAGS_CF | X86_EFLAGS_ZF | X86_EFLAGS_PF);
    assert_int_equal(f & X86_EFLAGS_IF, 0); /* PUSHF shows the virtual IF (cleared) */
    assert_int_equal(r.st.rflags & X86_EFLAGS_IF, 0);
    assert_int_equal(stat(&r, "inline_sensitive"), 4);
    assert_int_equal(stat(&r, "callouts"), 1); /* only the final OUT */
    stop(&r);
}

static void test_popf_virtual_if(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_popf_start, f_popf_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX] & (ARITH | X86_EFLAGS_IF | X86_EFLAGS_IOPL), 0xad5);
    assert_int_equal(r.st.gpr[X86_RCX] & (ARITH | X86_EFLAGS_IF), 0);
    assert_int_equal(r.st.rflags & (ARITH | X86_EFLAGS_IF), 0x8d5); /* last POPF: IF = 0 */
    stop(&r);
}

static void test_popf_slow_path(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_popf_df_start, f_popf_df_end);
    go(&r);
    assert_true(final_out(&r));
    assert_true(r.st.gpr[X86_RBX] & X86_EFLAGS_DF);
    assert_false(r.st.rflags & X86_EFLAGS_DF);
    stop(&r);
}

static void test_loop_is_chained(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_loop_start, f_loop_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 100000ULL * 100001 / 2);
    assert_true(stat(&r, "chained_jumps") >= 1);
    assert_true(stat(&r, "block_exits") < 10); /* not one per iteration */
    stop(&r);
}

/* Without the return-address cache (VMLAB_DBT ret_cache=off) every RET goes through the
 * lookup table: the first misses it (the dispatcher fills it), the others hit - no exit. */
static void test_returns_hit_lookup(void **unused)
{
    (void)unused;
    struct run r;
    setenv("VMLAB_DBT", "ret_cache=off", 1);
    start(&r, f_calls_start, f_calls_end);
    unsetenv("VMLAB_DBT");
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 1000);
    assert_int_equal(r.st.gpr[X86_RSP], GUEST_STACK_TOP);
    assert_int_equal(stat(&r, "indirect_misses"), 1);
    assert_true(stat(&r, "block_exits") < 10);
    stop(&r);
}

/* With it (the default) every RET, the first included, finds its return point in the
 * return-address cache, filled when the CALL was translated: no lookup, no exit. */
static void test_returns_hit_return_cache(void **unused)
{
    (void)unused;
    struct run r;
    setenv("VMLAB_DBT", "ret_cache=on", 1);
    start(&r, f_calls_start, f_calls_end);
    unsetenv("VMLAB_DBT");
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 1000);
    assert_int_equal(r.st.gpr[X86_RSP], GUEST_STACK_TOP);
    assert_int_equal(stat(&r, "indirect_misses"), 0);
    assert_true(stat(&r, "block_exits") < 10);
    stop(&r);
}

static void start_with(struct run *r, const uint8_t *start_, const uint8_t *end_,
                       const char *options)
{
    setenv("VMLAB_DBT", options, 1);
    start(r, start_, end_);
    unsetenv("VMLAB_DBT");
}

/* Indirect JMPs through registers reach their targets, with the registers intact, and
 * after the first time through the lookup, not the dispatcher. */
static void test_jmp_through_registers(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_jmp_reg_start, f_jmp_reg_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RSI], 100);
    assert_int_equal(r.st.gpr[X86_RBX], (uint64_t)-1300); /* 3f - 4f = -13, 100 times */
    assert_true(stat(&r, "indirect_misses") <= 3);
    assert_true(stat(&r, "block_exits") < 20);
    stop(&r);
}

/* The check forms this host can run (dbt_lookup.c emit_check): JRCXZ and LOOP everywhere,
 * the carry form with ADX (CPUID.(EAX=07H,ECX=0):EBX[19]). */
static unsigned check_forms(enum dbt_check_form forms[3])
{
    unsigned n = 0, a, b, c, d;
    forms[n++] = DBT_CHECK_JRCXZ;
    forms[n++] = DBT_CHECK_LOOP;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 19)))
        forms[n++] = DBT_CHECK_CARRY;
    return n;
}

/* The vCPU with VMLAB_DBT=check_form=<form> (dbt_options_parse, dbt_cache.c probe_check_form) */
static void start_form(struct run *r, const uint8_t *start_, const uint8_t *end_,
                       enum dbt_check_form form)
{
    static const char *const options[] = {"check_form=jrcxz", "check_form=loop",
                                          "check_form=adcx"};
    start_with(r, start_, end_, options[form]);
    assert_int_equal(((struct dbt_vcpu *)r->vcpu)->cache.check_form, form);
}

/* check_form= names a form whatever the host's default; refused: an unknown form, one that
 * contradicts fallthrough_checks=off, adcx without ADX. */
static void test_check_form_option(void **unused)
{
    (void)unused;
    enum dbt_check_form forms[3];
    unsigned count = check_forms(forms);
    for (unsigned f = 0; f < count; f++) {
        struct run r;
        start_form(&r, f_loop_start, f_loop_end, forms[f]);
        go(&r);
        assert_true(final_out(&r));
        assert_int_equal(stat(&r, "check_form"), forms[f]);
        assert_int_equal(stat(&r, "opt_check_form"), forms[f] + 1);
        stop(&r);
    }
    struct dbt_options o;
    char why[256] = "";
    assert_int_equal(dbt_options_parse("check_form=auto", &o, why, sizeof(why)), 0);
    assert_int_equal(o.check_form, DBT_CHECK_AUTO);
    assert_int_equal(dbt_options_parse("fallthrough_checks=off,check_form=jrcxz", &o, why,
                                       sizeof(why)),
                     0);
    static const char *const bad[] = {"check_form=", "check_form=LOOP", "check_form=loops",
                                      "fallthrough_checks=off,check_form=loop"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = 0;
        assert_int_equal(dbt_options_parse(bad[i], &o, why, sizeof(why)), -EINVAL);
        assert_non_null(strstr(why, "check_form"));
    }
    why[0] = 0;
    assert_int_equal(dbt_options_parse("check_form=adcx", &o, why, sizeof(why)),
                     count == 3 ? 0 : -EINVAL);
    if (count < 3)
        assert_non_null(strstr(why, "ADX"));
}

/* The checks of lookup entries and return points in every form, on their mismatch paths:
 * colliding lookup targets, and a return address the guest rewrote. */
static void test_lookup_checks_every_form(void **unused)
{
    (void)unused;
    enum dbt_check_form forms[3];
    unsigned count = check_forms(forms);
    for (unsigned f = 0; f < count; f++) {
        struct run r;
        start_form(&r, f_ibl_collide_start, f_ibl_collide_end, forms[f]);
        go(&r);
        assert_true(final_out(&r));
        assert_int_equal(r.st.gpr[X86_RBX], 150);
        assert_true(stat(&r, "indirect_misses") >= 50); /* the slot changes hands */
        stop(&r);
        static const char *const ret_cache_forms[] = {"ret_cache=on,check_form=jrcxz",
                                                      "ret_cache=on,check_form=loop",
                                                      "ret_cache=on,check_form=adcx"};
        start_with(&r, f_trace_ret_rewrite_start, f_trace_ret_rewrite_end,
                   ret_cache_forms[forms[f]]);
        assert_int_equal(((struct dbt_vcpu *)r.vcpu)->cache.check_form, forms[f]);
        go(&r);
        assert_true(final_out(&r));
        assert_int_equal(r.st.gpr[X86_RBX], 999);
        assert_int_equal(r.st.gpr[X86_RSP], GUEST_STACK_TOP);
        stop(&r);
    }
}

/* RET imm16 returns to its caller, its argument released, and (through the lookup) without
 * an exit per call. */
static void test_ret_imm16(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_ret_imm_start, f_ret_imm_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 500);
    assert_int_equal(r.st.gpr[X86_RSP], GUEST_STACK_TOP);
    assert_true(stat(&r, "indirect_misses") <= 1);
    assert_true(stat(&r, "block_exits") < 10);
    stop(&r);
}

/* A hot loop through a call becomes a trace, which then runs it: no exit per iteration. */
static void test_trace_follows_calls(void **unused)
{
    (void)unused;
    struct run r;
    start_with(&r, f_trace_calls_start, f_trace_calls_end, "traces=on");
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 1000);
    assert_int_equal(r.st.gpr[X86_RSP], GUEST_STACK_TOP);
    assert_int_equal(stat(&r, "traces_built"), 1);
    assert_int_equal(stat(&r, "trace_blocks"), 3); /* call, ret, dec/jnz */
    assert_true(stat(&r, "block_exits") < 20);
    stop(&r);
}

/* A store into a block that is part of a trace invalidates the trace too. */
static void test_trace_self_modifying_code(void **unused)
{
    (void)unused;
    struct run r;
    start_with(&r, f_trace_smc_start, f_trace_smc_end, "traces=on");
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 501 * 1 + 499 * 5);
    assert_true(stat(&r, "traces_built") >= 1);
    assert_true(stat(&r, "invalidated_blocks") >= 2); /* the callee and the trace */
    stop(&r);
}

/* The return-address cache (the default) with the same guest: the return point checks the
 * address the RET popped, so the rewritten return lands where the guest said. */
static void test_return_cache_return_address_rewritten(void **unused)
{
    (void)unused;
    struct run r;
    start_with(&r, f_trace_ret_rewrite_start, f_trace_ret_rewrite_end, "ret_cache=on");
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 999);
    assert_int_equal(r.st.gpr[X86_RSP], GUEST_STACK_TOP);
    assert_int_equal(stat(&r, "traces_built"), 0);
    stop(&r);
}

/* A RET in a trace goes on along the trace only to the return address it recorded. */
static void test_trace_return_address_rewritten(void **unused)
{
    (void)unused;
    struct run r;
    start_with(&r, f_trace_ret_rewrite_start, f_trace_ret_rewrite_end, "traces=on");
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 999);
    assert_int_equal(r.st.gpr[X86_RSP], GUEST_STACK_TOP);
    assert_true(stat(&r, "traces_built") >= 1);
    stop(&r);
}

/* Code expansion counts every byte written into the code cache: the blocks (from the end of
 * the fixed stubs up to c->used) and the stub area (from c->stub_low to the end), lookup
 * entries and counting stubs included (they were not counted). */
static void check_every_cache_byte_counted(const char *options, bool traces)
{
    struct run r;
    start_with(&r, f_ibl_fill_start, f_ibl_fill_end, options);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 101);
    const struct dbt_cache *c = &((struct dbt_vcpu *)r.vcpu)->cache;
    uint64_t written = (c->used - ((c->stubs_end + 63) & ~63u)) + (DBT_CACHE_SIZE - c->stub_low);
    assert_int_equal(stat(&r, "cache_flushes"), 0);
    assert_true(stat(&r, "indirect_misses") >= 1);
    if (traces)
        assert_true(stat(&r, "trace_heads") >= 1);
    assert_int_equal(stat(&r, "host_block_bytes") + stat(&r, "host_stub_bytes"), written);
    stop(&r);
}
static void test_every_cache_byte_counted(void **unused)
{
    (void)unused;
    check_every_cache_byte_counted("", false);
    check_every_cache_byte_counted("traces=on", true);
    check_every_cache_byte_counted("stubs_apart=off", false);
}

/* VMLAB_DBT cache_offset=N (the benchmarks' control for code placement): every block moves by
 * N bytes, INT3 fills the gap, the guest computes the same; out-of-range or malformed values
 * are refused when the VM is created. */
static void test_cache_offset_moves_every_block(void **unused)
{
    (void)unused;
    uint32_t first[2];
    static const char *const options[2] = {"cache_offset=0", "cache_offset=40"};
    for (int k = 0; k < 2; k++) {
        struct run r;
        start_with(&r, f_ibl_fill_start, f_ibl_fill_end, options[k]);
        go(&r);
        assert_true(final_out(&r));
        assert_int_equal(r.st.gpr[X86_RAX], 101);
        const struct dbt_cache *c = &((struct dbt_vcpu *)r.vcpu)->cache;
        assert_true(c->block_count > 0);
        first[k] = c->blocks[0].host_offset;
        uint32_t stubs_end = (c->stubs_end + 63) & ~63u;
        for (uint32_t i = stubs_end; i < stubs_end + c->opt.cache_offset; i++)
            assert_int_equal(c->rw[i], 0xcc);
        assert_int_equal(stat(&r, "opt_cache_offset"), k ? 40 : 0);
        stop(&r);
    }
    assert_int_equal(first[1] - first[0], 40);
    static const char *const bad[] = {"cache_offset=4096", "cache_offset=", "cache_offset=12x",
                                      "cache_offset=-1"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct dbt_options o;
        char why[256] = "";
        assert_int_equal(dbt_options_parse(bad[i], &o, why, sizeof(why)), -EINVAL);
        assert_non_null(strstr(why, "cache_offset=N"));
    }
}

static void test_callout_falls_through(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_cpuid_start, f_cpuid_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_R13], 0x1234);
    assert_memory_equal(&r.st.gpr[X86_RBX], "vmla", 4); /* EMU_CPUID_VENDOR in EBX:EDX:ECX */
    assert_int_equal(stat(&r, "blocks_translated"), 1);
    assert_int_equal(stat(&r, "callouts"), 2);
    stop(&r);
}

static void test_io_ends_block(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_io_ends_block_start, f_io_ends_block_end);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(go(&r), VM_EXIT_IO);
        assert_int_equal(r.exit.io.port, 0x80);
    }
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 4);
    /* four blocks, no guest byte translated twice (the stretch after each OUT used to be
     * part of the block before it too) */
    assert_int_equal(stat(&r, "blocks_translated"), 4);
    assert_int_equal(stat(&r, "guest_bytes_translated"),
                     (uint64_t)(f_io_ends_block_end - f_io_ends_block_start));
    /* the REP OUTSB with RCX = 0 went on without the VMM (no third exit at port 0x80 above),
     * through the callout's lookup of the next block: it has no code after it */
    assert_int_equal(stat(&r, "callouts"), 4);
    stop(&r);
}

static void test_self_modifying_code(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_smc_start, f_smc_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 1 + 5);
    assert_true(stat(&r, "invalidations") >= 1);
    assert_true(stat(&r, "invalidated_blocks") >= 1);
    /* the store is on the page it writes: it re-executes alone, unprotected (else: no end) */
    assert_true(stat(&r, "smc_reexecutions") >= 1);
    /* the CALL into the patched block was chained: only unchaining makes the new code run,
     * which RBX = 1 + 5 above shows */
    assert_true(stat(&r, "chained_jumps") >= 1);
    stop(&r);
}

static void test_self_modifying_code_unchains(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_smc_chained_start, f_smc_chained_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 1 + 1 + 5);
    assert_int_equal(stat(&r, "invalidations"), 1);    /* only the callee's page */
    assert_int_equal(stat(&r, "smc_reexecutions"), 0); /* the store is on the other page */
    stop(&r);
}

static void test_self_modifying_code_behind_nop(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_smc_fallthrough_start, f_smc_fallthrough_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 7);
    assert_true(stat(&r, "invalidations") >= 1);
    stop(&r);
}

static void test_self_modifying_code_unlinks_jcc(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_smc_jcc_start, f_smc_jcc_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 1 + 1 + 5);
    assert_int_equal(stat(&r, "invalidations"), 1);
    stop(&r);
}

/* The platform stub reports the frame address; the frame is [cr2, rax, vector, error, rip]. */
static void exception_frame(struct run *r, uint64_t frame[5])
{
    assert_int_equal(r->exit.reason, VM_EXIT_IO);
    assert_int_equal(r->exit.io.port, PORT_EXC_REPORT);
    uint32_t at;
    memcpy(&at, r->exit.io.data, 4);
    assert_int_equal(guest_ram_read(r->mem, at, frame, 40), 0);
}

static void test_lookup_entry_for_existing_block(void **unused)
{
    (void)unused;
    enum dbt_check_form forms[3];
    unsigned count = check_forms(forms);
    for (unsigned f = 0; f < count; f++) {
        struct run r;
        start_form(&r, f_ibl_existing_block_start, f_ibl_existing_block_end, forms[f]);
        go(&r);
        assert_true(final_out(&r));
        assert_int_equal(r.st.gpr[X86_RBX], 100);
        assert_int_equal(stat(&r, "indirect_misses"), 1);
        stop(&r);
    }
}

/* Every check form leaves the guest's CF as it found it, on a hit and on a mismatch, for
 * returns and indirect jumps, and a fault right after a return shows it in its frame (the
 * carry form's CF restore is only left out where CF is written first: carry_dead_at). */
static void test_checks_keep_carry(void **unused)
{
    (void)unused;
    enum dbt_check_form forms[3];
    unsigned count = check_forms(forms);
    for (unsigned f = 0; f < count; f++) {
        struct run r;
        start_form(&r, f_carry_return_hit_start, f_carry_return_hit_end, forms[f]);
        go(&r);
        assert_true(final_out(&r));
        assert_int_equal(r.st.gpr[X86_RBX], 50);
        stop(&r);
        start_form(&r, f_carry_return_miss_start, f_carry_return_miss_end, forms[f]);
        go(&r);
        assert_true(final_out(&r));
        assert_int_equal(r.st.gpr[X86_RBX], 499 + 101);
        stop(&r);
        start_form(&r, f_carry_lookup_start, f_carry_lookup_end, forms[f]);
        go(&r);
        assert_true(final_out(&r));
        assert_int_equal(r.st.gpr[X86_RBX], 150);
        assert_true(stat(&r, "indirect_misses") >= 50); /* the mismatch path ran */
        stop(&r);
        start_form(&r, f_carry_fault_start, f_carry_fault_end, forms[f]);
        go(&r);
        uint64_t frame[7]; /* the report's five words, then the CPU's RIP, CS and RFLAGS */
        exception_frame(&r, frame);
        uint32_t at;
        memcpy(&at, r.exit.io.data, 4);
        assert_int_equal(guest_ram_read(r.mem, at, frame, sizeof(frame)), 0);
        assert_int_equal(frame[2], 14);
        assert_int_equal(frame[4], CODE + 5 + 5); /* the load */
        assert_int_equal(frame[6] & 1, 1);        /* RFLAGS.CF */
        stop(&r);
    }
}

static void test_divide_error_exact(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_div0_start, f_div0_end);
    go(&r);
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 0);                /* #DE */
    assert_int_equal(fr[4], CODE + 5 + 2 + 7); /* the DIV itself */
    assert_int_equal(fr[1], 7);                /* RAX as the hardware leaves it */
    assert_int_equal(r.st.gpr[X86_R9], 0x55);
    stop(&r);
}

static void test_indirect_call_push_fault_exact(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_icall_push_fault_start, f_icall_push_fault_end);
    go(&r);
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 14);
    assert_int_equal(fr[0], 0x30001000 - 8);
    assert_int_equal(fr[4], CODE + 0x27); /* the CALL */
    assert_int_equal(r.st.gpr[X86_RCX], 0x5151);
    stop(&r);
}

/* Indirect branches through memory: every operand form (f_mem_targets) right, and the
 * lookup hits after the first round. */
static void test_memory_operand_targets(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_mem_targets_start, f_mem_targets_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 122200);
    assert_int_equal(r.st.gpr[X86_RSP], GUEST_STACK_TOP);
    assert_true(stat(&r, "indirect_misses") <= 12);
    stop(&r);
}

/* The load of an indirect CALL's target faults: #PF for the pointer's address, at the CALL,
 * with the guest's RCX and RSP as they were. */
static void test_indirect_call_load_fault_exact(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_icall_load_fault_start, f_icall_load_fault_end);
    go(&r);
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 14);
    assert_int_equal(fr[0], 0x30000000);
    assert_int_equal(fr[4], CODE + 0x1e); /* the CALL */
    assert_int_equal(r.st.gpr[X86_RCX], 0x5151);
    stop(&r);
}

static void test_undecodable_is_ud(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_bad_start, f_bad_end);
    go(&r);
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 6);
    assert_int_equal(fr[4], CODE + 1);
    stop(&r);
}

static void test_ud2_is_ud(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_ud2_start, f_ud2_end);
    go(&r);
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 6);
    assert_int_equal(fr[4], CODE + 2);
    stop(&r);
}

static void test_rip_relative(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_riprel_start, f_riprel_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 0x1122334455667788ULL);
    assert_int_equal(r.st.gpr[X86_RBX], 0x1122334455667789ULL);
    stop(&r);
}

/* Runs `mov ecx, 2; n blocks of 5 bytes; dec ecx; jnz back; out 0xf4`: the blocks twice. A
 * block is `block`, its fourth byte (a branch opcode) alternating with `alt_opcode` if that is
 * nonzero. */
static void run_block_chain(struct run *r, unsigned n, const uint8_t block[5], uint8_t alt_opcode)
{
    static const uint8_t head[] = {0xb9, 0x02, 0x00, 0x00, 0x00}; /* mov ecx, 2 */
    static const uint8_t tail[] = {0xff, 0xc9, 0x0f, 0x85};       /* dec ecx; jnz rel32 */
    size_t size = sizeof(head) + (size_t)n * 5 + sizeof(tail) + 4 + 2;
    uint8_t *code = malloc(size), *p = code;
    assert_non_null(code);
    memcpy(p, head, sizeof(head));
    p += sizeof(head);
    for (unsigned i = 0; i < n; i++, p += 5) {
        memcpy(p, block, 5);
        if (alt_opcode && (i & 1))
            p[3] = alt_opcode;
    }
    memcpy(p, tail, sizeof(tail));
    p += sizeof(tail);
    int32_t back = -(int32_t)((size_t)(p + 4 - code) - sizeof(head));
    memcpy(p, &back, 4);
    p += 4;
    p[0] = 0xe6, p[1] = 0xf4; /* out 0xf4, al */
    start(r, code, code + size);
    free(code);
    go(r);
    assert_true(final_out(r));
    assert_int_equal(r->st.gpr[X86_RAX], 2ULL * n);
}

/* Exit stubs kept apart store the low byte of their id and jump to a shared tail that stores
 * the rest (dbt_translate.c): 40,000 blocks of two exits each (a Jcc to the next block,
 * alternately taken and not, and the fall-through) give 80,000 stub ids, past 16 bits, before
 * the cache is full. Every exit must reach the next block, in the first pass through the
 * stubs and in the second through the chained branches. */
static void test_stub_ids_past_64k(void **unused)
{
    (void)unused;
    enum { N = 40000 };
    static const uint8_t block[] = {0x48, 0xff, 0xc0, 0x75, 0x00}; /* inc rax; jnz/jz .+0 */
    struct run r;
    run_block_chain(&r, N, block, 0x74);
    assert_int_equal(stat(&r, "cache_flushes"), 0);
    assert_true(((struct dbt_vcpu *)r.vcpu)->cache.stub_count > 2 * N);
    assert_true(stat(&r, "chained_jumps") >= N);
    stop(&r);
}

/* More blocks than the cache holds (DBT_MAX_BLOCKS): the cache flushes and the guest goes on.
 * The code is generated here: twice through N blocks of `inc rax; jmp next`. */
static void test_cache_fills_and_flushes(void **unused)
{
    (void)unused;
    enum { N = DBT_MAX_BLOCKS + 4096 };
    static const uint8_t block[] = {0x48, 0xff, 0xc0, 0xeb, 0x00}; /* inc rax; jmp .+2 */
    struct run r;
    run_block_chain(&r, N, block, 0);
    assert_true(stat(&r, "cache_flushes") >= 2); /* filled once per pass */
    assert_true(stat(&r, "blocks_translated") >= 2ULL * N);
    stop(&r);
}

/* Compiled code: the benchmark's compute kernel (recursive quicksort, table-driven CRC-32
 * through RIP-relative loads, calls and returns) must give the checksum it gives natively. */
static void test_compute_kernel_matches_native(void **unused)
{
    (void)unused;
    enum { ITERATIONS = 50 };
    size_t size = 16 + bench_compute_kernel_size;
    uint8_t *code = calloc(1, size);
    assert_non_null(code);
    static const uint8_t head[] = {0xbf, ITERATIONS, 0, 0, 0, /* mov edi, ITERATIONS */
                                   0xe8, 0,          0, 0, 0, /* call kernel (patched below) */
                                   0xe6, 0xf4};               /* out 0xf4, al */
    memcpy(code, head, sizeof(head));
    code[15] = 0xcc;
    memcpy(code + 16, bench_compute_kernel, bench_compute_kernel_size);
    int32_t rel = 16 - 10; /* the call ends at 10; the kernel starts at 16 */
    memcpy(code + 6, &rel, 4);
    /* the same bytes natively */
    void *x = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(x != MAP_FAILED);
    memcpy(x, code + 16, bench_compute_kernel_size);
    assert_int_equal(mprotect(x, size, PROT_READ | PROT_EXEC), 0);
    uint64_t want = ((uint64_t(*)(uint64_t))x)(ITERATIONS);
    munmap(x, size);
    struct run r;
    start(&r, code, code + size);
    free(code);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], want);
    /* returns stayed in translated code (the return-address cache, or the lookup table) */
    assert_true(stat(&r, "block_exits") < 2 * stat(&r, "blocks_translated") + 10);
    stop(&r);
}

/* A kick must bring back a guest that never leaves translated code on its own. */
static void kick_case(const uint8_t *start_, const uint8_t *end_)
{
    struct run r;
    /* As the VMM does (machine.c): the fallback first, so that the vCPU's own handler, which
     * vcpu_create installs, is the one a kick reaches. */
    kick_install_fallback_handler();
    start(&r, start_, end_);
    struct kick_timer kt;
    assert_int_equal(kick_timer_create(&kt), 0);
    for (int i = 0; i < 20; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
        kick_timer_arm(&kt, now + 2000000); /* 2 ms */
        r.vcpu->kick_pending = 0;
        /* The guest spins on this thread's CPU, so a kick that does not bring it back shows
         * as CPU time burnt until a 10 ms repeat does. Thread CPU time, not wall time, so that
         * a loaded machine (the thread waiting for a core) cannot fail the test. */
        struct timespec cpu0, cpu1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
        assert_int_equal(dbt_backend_ops.vcpu_run(r.vcpu, &r.exit), 0);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
        uint64_t spent = (uint64_t)(cpu1.tv_sec - cpu0.tv_sec) * 1000000000ULL +
                         (uint64_t)cpu1.tv_nsec - (uint64_t)cpu0.tv_nsec;
        assert_int_equal(r.exit.reason, VM_EXIT_INTR);
        /* Back at all is the point: the kick repeats every 10 ms, and a guest dbt could not
         * leave would never return. The bound only catches a kick missed for many repeats (a
         * first kick that lands in host code may be absorbed; the next one then counts). */
        assert_true(spent < 100000000);
    }
    kick_timer_destroy(&kt);
    stop(&r);
}

/* A kick must also bring back a loop of returns and indirect branches, at once (the lookup
 * tables are revoked: dbt_signal.c), with the guest's exact state: RCX (the scratch register
 * of the lookups) is the guest's, RSP is the loop's, RIP is inside the fragment. One kick
 * only, from a one-shot timer (the VMM's repeats every 10 ms would hide a kick that did not
 * work); a watchdog kick 1.5 s later fails the test instead of hanging it. */
static void kick_case_exact(const uint8_t *start_, const uint8_t *end_, const char *options)
{
    struct run r;
    kick_install_fallback_handler();
    setenv("VMLAB_DBT", options, 1);
    start(&r, start_, end_);
    unsetenv("VMLAB_DBT");
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = VMLAB_SIG_KICK;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    timer_t kick, watchdog;
    assert_int_equal(timer_create(CLOCK_MONOTONIC, &sev, &kick), 0);
    assert_int_equal(timer_create(CLOCK_MONOTONIC, &sev, &watchdog), 0);
    for (int i = 0; i < 20; i++) {
        struct itimerspec k = {.it_value = {.tv_nsec = 2000000}};   /* 2 ms */
        struct itimerspec w = {.it_value = {.tv_nsec = 500000000}}; /* 1.5 s */
        w.it_value.tv_sec = 1;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        timer_settime(kick, 0, &k, NULL);
        timer_settime(watchdog, 0, &w, NULL);
        r.vcpu->kick_pending = 0;
        assert_int_equal(dbt_backend_ops.vcpu_run(r.vcpu, &r.exit), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        struct itimerspec off = {0};
        timer_settime(watchdog, 0, &off, NULL);
        double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        assert_int_equal(r.exit.reason, VM_EXIT_INTR);
        assert_true(waited < 1.4); /* the first kick, not the watchdog's */
        assert_int_equal(dbt_backend_ops.vcpu_get_state(r.vcpu, &r.st), 0);
        if (r.st.rip != CODE) { /* past the first MOV */
            assert_int_equal(r.st.gpr[X86_RCX], 0x5151);
            assert_true(r.st.gpr[X86_RSP] == GUEST_STACK_TOP ||
                        r.st.gpr[X86_RSP] == GUEST_STACK_TOP - 8);
        }
        assert_true(r.st.rip >= CODE && r.st.rip < CODE + (uint64_t)(end_ - start_));
    }
    timer_delete(kick);
    timer_delete(watchdog);
    stop(&r);
}

static void test_kick_return_loop(void **unused)
{
    (void)unused;
    kick_case_exact(f_spin_ret_start, f_spin_ret_end, "ret_cache=on");
    kick_case_exact(f_spin_ret_start, f_spin_ret_end, "ret_cache=off,ibl_shared=on");
    kick_case_exact(f_spin_ret_start, f_spin_ret_end, "ret_cache=off,ibl_shared=off");
}

static void test_kick_indirect_loops(void **unused)
{
    (void)unused;
    kick_case_exact(f_spin_icall_start, f_spin_icall_end, "ibl_shared=on");
    kick_case_exact(f_spin_icall_start, f_spin_icall_end, "ibl_shared=off");
    kick_case_exact(f_spin_ijmp_start, f_spin_ijmp_end, "ibl_shared=on");
    kick_case_exact(f_spin_ijmp_start, f_spin_ijmp_end, "ibl_shared=off");
}

/* A kick inside a trace: the trace's loop back is a chained exit the kick unchains, and the
 * lookup after a compare that failed is revoked like any other. */
static void test_kick_trace_loops(void **unused)
{
    (void)unused;
    kick_case_exact(f_spin_ret_start, f_spin_ret_end, "traces=on");
    kick_case_exact(f_spin_icall_start, f_spin_icall_end, "traces=on,trace_indirect=on");
    kick_case_exact(f_spin_ijmp_start, f_spin_ijmp_end, "traces=on,trace_indirect=on");
}

static void test_kick_tight_loop(void **unused)
{
    (void)unused;
    kick_case(f_spin_start, f_spin_end);
}

static void test_kick_jcc_loop(void **unused)
{
    (void)unused;
    kick_case(f_spin_jcc_start, f_spin_jcc_end);
}

static void test_kick_long_loop(void **unused)
{
    (void)unused;
    kick_case(f_spin_long_start, f_spin_long_end);
}

static void test_interrupt_window_after_shadow(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_window_start, f_window_end);
    r.vcpu->request_interrupt_window = true;
    assert_int_equal(go(&r), VM_EXIT_IRQ_WINDOW_OPEN);
    assert_int_equal(r.st.rip, CODE + 1 + 2); /* STI and the INC in its shadow have run */
    assert_int_equal(r.st.gpr[X86_RAX], 1);
    assert_int_equal(r.st.gpr[X86_RBX], 0);
    assert_int_equal(dbt_backend_ops.vcpu_inject_interrupt(r.vcpu, 0x30), 0);
    r.vcpu->request_interrupt_window = false;
    go(&r); /* vector 0x30 goes to the default stub: reported at the interrupted RIP */
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 0x30);
    assert_int_equal(fr[4], CODE + 3);
    stop(&r);
}

static void test_loop_with_operand_size_prefix(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_loop16_start, f_loop16_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 3);
    assert_int_equal(r.st.gpr[X86_RCX], 0);
    stop(&r);
}

/* Run to the final OUT, resuming after VMM exits to the scratch port; count them. */
static unsigned go_to_end(struct run *r, void (*between)(void))
{
    unsigned exits = 0;
    while (go(r) == VM_EXIT_IO && r->exit.io.port == PORT_SCRATCH) {
        exits++;
        if (between)
            between();
    }
    assert_true(final_out(r));
    return exits;
}

static uint64_t host_xcr0(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
        return 3;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return lo;
}

/* Host work between two guest runs: vector registers (glibc) and a different MXCSR. */
static void clobber_vectors(void)
{
    static char a[4096], b[4096];
    memset(a, 0x5a, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_int_equal(memcmp(a, b, sizeof(a)), 0);
}

static void vector_case(const uint8_t *start_, const uint8_t *end_, size_t bytes, size_t kbytes)
{
    struct run r;
    start(&r, start_, end_);
    uint8_t *data = guest_ram_ptr(r.mem, DATA, 0x2000);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < bytes; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    uint32_t mxcsr = 0xFF80; /* every exception masked, FZ, DAZ, round toward zero */
    memcpy(data + 0x800, &mxcsr, 4);
    for (size_t i = 0; i < kbytes; i++)
        data[0x880 + i] = (uint8_t)(0xA5 ^ i);
    assert_int_equal(go_to_end(&r, clobber_vectors), 1);
    assert_memory_equal(data + 0x1000, data, bytes);
    assert_memory_equal(data + 0x1800, data + 0x800, 4);
    if (kbytes)
        assert_memory_equal(data + 0x1880, data + 0x880, kbytes);
    stop(&r);
}

static void test_ymm_state_survives_exits(void **unused)
{
    (void)unused;
    if ((host_xcr0() & 6) != 6)
        skip(); /* no AVX on this host: the xmm part is covered by robust_xstate */
    vector_case(f_ymm_start, f_ymm_end, 16 * 32, 0);
}

static void test_zmm_state_survives_exits(void **unused)
{
    (void)unused;
    if ((host_xcr0() & 0xE6) != 0xE6)
        skip(); /* no AVX-512 on this host */
    vector_case(f_zmm_start, f_zmm_end, 32 * 64, 16);
}

/* Host x87 use between two runs of the guest (allowed by name in test_host_code_has_no_x87:
 * this is the test's own code, not vmlab's). It claims the unit first (vmm/host_x87.h): the
 * guest's registers may still be live in it. */
__attribute__((noinline)) static void x87_user_between_runs(void)
{
    host_x87_claim();
    double v = 3.0;
    __asm__ volatile("fninit\n fldl %0\n fld1\n faddp\n fsqrt\n fstpl %0\n fninit" : "+m"(v));
    assert_true(v > 1.99 && v < 2.01);
}

/* Run f_x87 with control word `cw`, the host using its own x87 unit at each VMM exit, and
 * check the guest's x87 state at the end: its registers and its own control word, the division
 * by zero's ZE flag and, when `cw` unmasks ZE, the pending exception (ES). */
static void check_x87_across_host_use(uint16_t cw, bool pending)
{
    struct run r;
    start(&r, f_x87_start, f_x87_end);
    uint8_t *data = guest_ram_ptr(r.mem, DATA, 0x2000);
    memcpy(data + 0x800, &cw, 2);
    assert_int_equal(go_to_end(&r, x87_user_between_runs), 2);
    /* FNSAVE image (SDM vol. 1 figure 8-9, 32-bit layout): FCW, FSW, FTW, then ST0-ST7 */
    uint16_t fcw, fsw, ftw;
    memcpy(&fcw, data + 0x1000, 2);
    memcpy(&fsw, data + 0x1004, 2);
    memcpy(&ftw, data + 0x1008, 2);
    assert_int_equal(fcw, cw);
    assert_int_equal(fsw & 0x3F, 0x04);               /* ZE */
    assert_int_equal(fsw & 0x80, pending ? 0x80 : 0); /* ES: an unmasked exception pending */
    assert_int_equal((fsw >> 11) & 7, 5);             /* TOP: three values pushed */
    /* tags of physical registers 7..5: pi valid, 1.0 valid, +inf special; 4..0 empty */
    assert_int_equal(ftw, 0x0BFF);
    const uint8_t *st0 = data + 0x1000 + 28, *st1 = st0 + 10, *st2 = st1 + 10;
    assert_int_equal(st0[9] & 0x7F, 0x7F); /* +inf (1/0): exponent all ones */
    assert_int_equal(st0[8], 0xFF);
    assert_int_equal(st1[9], 0x3F); /* 1.0: exponent 0x3FFF */
    assert_int_equal(st1[8], 0xFF);
    assert_int_equal(st2[9], 0x40); /* pi: exponent 0x4000 */
    assert_int_equal(st2[8], 0x00);
    stop(&r);
}

/* Round up, 64-bit precision, ZE unmasked: the division's exception is pending at the VMM
 * exits, so dbt puts the registers aside at once (a host FLDCW would raise it). */
static void test_x87_state_survives_vmm_exits(void **unused)
{
    (void)unused;
    check_x87_across_host_use(0x0B7B, true);
}

/* The same with every exception masked, nothing pending: dbt keeps the registers live and hands
 * host code only its control word; the host's own x87 use claims the unit (vmm/host_x87.h),
 * which puts them aside with the host's control word in the image. The guest must get its
 * registers and its own control word back. */
static void test_x87_state_survives_host_claim(void **unused)
{
    (void)unused;
    check_x87_across_host_use(0x0B7F, false);
}

__attribute__((noinline)) static void x87_user_leaving_state(void)
{
    static const uint16_t cw = 0x0C7F; /* truncating, single precision */
    __asm__ volatile("fninit\n fldcw %0\n fld1\n fldpi" ::"m"(cw));
}

static void test_x87_first_use_starts_clean(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_x87_late_start, f_x87_late_end);
    assert_int_equal(go_to_end(&r, x87_user_leaving_state), 1);
    x87_user_between_runs(); /* ends with FNINIT: no leftovers of this test */
    const uint8_t *data = guest_ram_ptr(r.mem, DATA, 0x2000);
    uint16_t fcw, fsw, ftw;
    memcpy(&fcw, data + 0x1000, 2);
    memcpy(&fsw, data + 0x1002, 2);
    memcpy(&ftw, data + 0x1010 + 8, 2); /* FNSAVE: FCW, FSW, FTW at 0, 4, 8 */
    assert_int_equal(fcw, 0x037F);
    assert_int_equal(fsw, 0);
    assert_int_equal(ftw, 0xFFFF); /* all empty */
    stop(&r);
}

static void test_fs_relative_forms(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_fs_forms_start, f_fs_forms_end);
    uint64_t *data = guest_ram_ptr(r.mem, DATA, 0x100);
    for (unsigned i = 0; i < 16; i++)
        data[i] = 0x1000 + i;
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_R8], 0x1000 + 0x58 / 8);
    assert_int_equal(r.st.gpr[X86_R9], 0x1000);
    assert_int_equal(data[1], 0x1001 + 5);
    assert_int_equal(r.st.gpr[X86_R10], 0x1000 + 4);
    assert_int_equal(r.st.gpr[X86_R15], 11 + 0x1000 + 6);
    static const uint64_t want[] = {1, 2, 3, 4, 0, 0, 5, 6, 0, 0, 0, 7, 8, 9, 10};
    for (unsigned i = 0; i < 15; i++)
        if (want[i])
            assert_int_equal(r.st.gpr[i], want[i]); /* untouched by the rewrite's scratch */
    assert_int_equal(r.st.fs.base, DATA - 0x100);
    stop(&r);
}

/* An internal error says which one (suberror 1, the emulation failure, as KVM and trap_emulate
 * report it) and names the instruction; it had a stale suberror before. */
static void test_mmio_emulation_failure_is_documented(void **unused)
{
    (void)unused;
    if ((host_xcr0() & 6) != 6)
        skip();
    struct run r;
    start(&r, f_mmio_unknown_start, f_mmio_unknown_end);
    r.exit.internal.suberror = 0xF00D; /* what a previous exit may have left */
    assert_int_equal(go(&r), VM_EXIT_INTERNAL_ERROR);
    assert_int_equal(r.exit.internal.suberror, VM_INTERNAL_EMULATION);
    assert_non_null(vm_internal_suberror_name(r.exit.internal.suberror));
    assert_non_null(strstr(r.exit.internal.message, "vmovdqu"));
    stop(&r);
}

/* The lookup table is read-only where translated code sees it: a guest store is a #PF. */
static void test_guest_cannot_write_lookup_table(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_write_lookup_start, f_write_lookup_end);
    go(&r);
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 14);
    assert_int_equal(fr[0], 0x60001000);
    assert_int_equal(fr[4], CODE);
    stop(&r);
}

/* Whatever the guest writes into the context page, the host survives and the guest goes on. */
static void test_guest_trashing_context_is_harmless(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_trash_context_start, f_trash_context_end);
    assert_int_equal(go_to_end(&r, NULL), 1);
    assert_int_equal(r.st.gpr[X86_RBX], 0x77);
    stop(&r);
}

/* dbt leaves the guest's x87 unit live while host code runs within vcpu_run (dbt_stubs.c), on
 * the ground that host code executes no x87 or MMX instruction. Check that ground on every
 * function linked into this test (all of vmlab's library: dbt, the emulation core, the VMM):
 * decode each function of /proc/self/exe's symbol table and list any x87/MMX instruction
 * outside the few functions that handle the x87 unit on purpose. */
static const char *const x87_allowed[] = {
    "trap_guest_enter",        /* trap_emulate: the guest's FXSAVE image, host control word */
    "trap_guest_exit_landing", /* trap_emulate: FNINIT and the host control word */
    "x87_enter",
    "x87_leave",             /* dbt: the control word (FNSAVE if an exception is pending) */
    "x87_put_aside",         /* dbt: FNSAVE when another claims the unit (vmm/host_x87.h) */
    "dbt_x87_first_use",     /* dbt: FNINIT when the guest first uses the x87 unit */
    "x87_user_between_runs", /* this test: a host that uses the x87 unit between runs */
    "x87_user_leaving_state",
};

static bool x87_allowed_name(const char *name)
{
    for (size_t i = 0; i < sizeof(x87_allowed) / sizeof(x87_allowed[0]); i++)
        if (!strcmp(name, x87_allowed[i]) ||
            (!strncmp(name, x87_allowed[i], strlen(x87_allowed[i])) &&
             name[strlen(x87_allowed[i])] == '.'))
            return true; /* also gcc's clones: x87_leave.isra.0 */
    return false;
}

static void test_host_code_has_no_x87(void **unused)
{
    (void)unused;
    FILE *f = fopen("/proc/self/exe", "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *img = malloc((size_t)size);
    assert_non_null(img);
    assert_int_equal(fread(img, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    unsigned functions = 0, offenders = 0;
    unsigned seen = 0; /* the host code of the hot paths must be in this binary */
    for (unsigned s = 0; s < eh->e_shnum; s++) {
        if (sh[s].sh_type != SHT_SYMTAB)
            continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[s].sh_offset);
        const char *strtab = (const char *)(img + sh[sh[s].sh_link].sh_offset);
        for (size_t i = 0; i < sh[s].sh_size / sizeof(*sym); i++) {
            if (ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC || !sym[i].st_size ||
                sym[i].st_shndx == SHN_UNDEF || sym[i].st_shndx >= eh->e_shnum)
                continue;
            const Elf64_Shdr *sec = &sh[sym[i].st_shndx];
            if (!(sec->sh_flags & SHF_EXECINSTR) || sec->sh_type != SHT_PROGBITS)
                continue;
            const char *name = strtab + sym[i].st_name;
            seen |= (!strcmp(name, "dbt_callout_run") ? 1u : 0) |
                    (!strcmp(name, "emu_execute") ? 2u : 0) |
                    (!strcmp(name, "dbt_block_get") ? 4u : 0) |
                    (!strcmp(name, "dbt_signal_handler") ? 8u : 0);
            functions++;
            const uint8_t *code = img + sec->sh_offset + (sym[i].st_value - sec->sh_addr);
            for (uint64_t off = 0; off < sym[i].st_size;) {
                ZydisDecodedInstruction in;
                if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, NULL, code + off,
                                                                sym[i].st_size - off, &in))) {
                    off++;
                    continue;
                }
                bool x87 =
                    in.meta.isa_ext == ZYDIS_ISA_EXT_X87 || in.meta.isa_ext == ZYDIS_ISA_EXT_MMX;
                if (x87 && !x87_allowed_name(name)) {
                    print_message("x87/MMX instruction %s in %s+%#llx\n",
                                  ZydisMnemonicGetString(in.mnemonic), name,
                                  (unsigned long long)off);
                    offenders++;
                }
                off += in.length;
            }
        }
    }
    free(img);
    assert_int_equal(seen, 15);   /* the scan covered the callout, the core, the translator and */
    assert_true(functions > 100); /* the signal handler */
    assert_int_equal(offenders, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cli_sti_keep_flags, teardown),
        cmocka_unit_test_teardown(test_popf_virtual_if, teardown),
        cmocka_unit_test_teardown(test_popf_slow_path, teardown),
        cmocka_unit_test_teardown(test_loop_is_chained, teardown),
        cmocka_unit_test_teardown(test_returns_hit_lookup, teardown),
        cmocka_unit_test_teardown(test_returns_hit_return_cache, teardown),
        cmocka_unit_test_teardown(test_ret_imm16, teardown),
        cmocka_unit_test_teardown(test_jmp_through_registers, teardown),
        cmocka_unit_test_teardown(test_lookup_checks_every_form, teardown),
        cmocka_unit_test_teardown(test_check_form_option, teardown),
        cmocka_unit_test_teardown(test_checks_keep_carry, teardown),
        cmocka_unit_test_teardown(test_lookup_entry_for_existing_block, teardown),
        cmocka_unit_test_teardown(test_trace_follows_calls, teardown),
        cmocka_unit_test_teardown(test_trace_self_modifying_code, teardown),
        cmocka_unit_test_teardown(test_trace_return_address_rewritten, teardown),
        cmocka_unit_test_teardown(test_return_cache_return_address_rewritten, teardown),
        cmocka_unit_test_teardown(test_callout_falls_through, teardown),
        cmocka_unit_test_teardown(test_io_ends_block, teardown),
        cmocka_unit_test_teardown(test_cache_offset_moves_every_block, teardown),
        cmocka_unit_test_teardown(test_every_cache_byte_counted, teardown),
        cmocka_unit_test_teardown(test_self_modifying_code, teardown),
        cmocka_unit_test_teardown(test_self_modifying_code_unchains, teardown),
        cmocka_unit_test_teardown(test_self_modifying_code_unlinks_jcc, teardown),
        cmocka_unit_test_teardown(test_self_modifying_code_behind_nop, teardown),
        cmocka_unit_test_teardown(test_divide_error_exact, teardown),
        cmocka_unit_test_teardown(test_indirect_call_push_fault_exact, teardown),
        cmocka_unit_test_teardown(test_indirect_call_load_fault_exact, teardown),
        cmocka_unit_test_teardown(test_memory_operand_targets, teardown),
        cmocka_unit_test_teardown(test_undecodable_is_ud, teardown),
        cmocka_unit_test_teardown(test_ud2_is_ud, teardown),
        cmocka_unit_test_teardown(test_rip_relative, teardown),
        cmocka_unit_test_teardown(test_cache_fills_and_flushes, teardown),
        cmocka_unit_test_teardown(test_stub_ids_past_64k, teardown),
        cmocka_unit_test_teardown(test_compute_kernel_matches_native, teardown),
        cmocka_unit_test_teardown(test_kick_tight_loop, teardown),
        cmocka_unit_test_teardown(test_kick_return_loop, teardown),
        cmocka_unit_test_teardown(test_kick_indirect_loops, teardown),
        cmocka_unit_test_teardown(test_kick_trace_loops, teardown),
        cmocka_unit_test_teardown(test_kick_jcc_loop, teardown),
        cmocka_unit_test_teardown(test_kick_long_loop, teardown),
        cmocka_unit_test_teardown(test_interrupt_window_after_shadow, teardown),
        cmocka_unit_test_teardown(test_ymm_state_survives_exits, teardown),
        cmocka_unit_test_teardown(test_zmm_state_survives_exits, teardown),
        cmocka_unit_test_teardown(test_x87_state_survives_vmm_exits, teardown),
        cmocka_unit_test_teardown(test_x87_state_survives_host_claim, teardown),
        cmocka_unit_test_teardown(test_guest_cannot_write_lookup_table, teardown),
        cmocka_unit_test_teardown(test_guest_trashing_context_is_harmless, teardown),
        cmocka_unit_test(test_host_code_has_no_x87),
        cmocka_unit_test_teardown(test_mmio_emulation_failure_is_documented, teardown),
        cmocka_unit_test_teardown(test_fs_relative_forms, teardown),
        cmocka_unit_test_teardown(test_x87_first_use_starts_clean, teardown),
        cmocka_unit_test_teardown(test_loop_with_operand_size_prefix, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
