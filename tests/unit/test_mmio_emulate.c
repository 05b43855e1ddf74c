/* test_mmio_emulate.c - the core's MMIO emulation (emu/emu_mmio.h) against the CPU itself.
 *
 * Differential: every instruction of the table runs natively on a buffer and emulated with
 * its memory operand in the MMIO window (a fake 64-byte device serves the read and write
 * exits), from the same random registers, flags and memory; the GPRs, the arithmetic flags
 * and the memory must come out the same. Instructions that touch the stack or the string
 * registers, exceptions, REP and the documented emulation failures are checked one by one.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "emu/emu_mmio.h"
#include "vmm/guest_layout.h"
#include "vmm/guest_memory.h"

#define ARITH 0x8D5ULL /* CF PF AF ZF SF OF */
#define DEV MMIO_SCRATCH
#define DEV_SIZE 64
#define STACK (GUEST_RAM_BASE + 0x300000)

struct native_regs {
    uint64_t gpr[16];
    uint64_t rflags;
};

/* Run `code` (ends with RET) with every GPR but RSP and the flags from r; store them back. */
void native_run(struct native_regs *r, const void *code);
__asm__(".text\n"
        "native_run:\n"
        " push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
        " push %rdi\n push %rsi\n"
        " pushq 128(%rdi)\n popfq\n"
        " mov 0(%rdi), %rax\n mov 8(%rdi), %rcx\n mov 16(%rdi), %rdx\n mov 24(%rdi), %rbx\n"
        " mov 40(%rdi), %rbp\n mov 48(%rdi), %rsi\n mov 64(%rdi), %r8\n mov 72(%rdi), %r9\n"
        " mov 80(%rdi), %r10\n mov 88(%rdi), %r11\n mov 96(%rdi), %r12\n mov 104(%rdi), %r13\n"
        " mov 112(%rdi), %r14\n mov 120(%rdi), %r15\n mov 56(%rdi), %rdi\n"
        " call *(%rsp)\n"
        " push %rdi\n mov 16(%rsp), %rdi\n"
        " mov %rax, 0(%rdi)\n mov %rcx, 8(%rdi)\n mov %rdx, 16(%rdi)\n mov %rbx, 24(%rdi)\n"
        " mov %rbp, 40(%rdi)\n mov %rsi, 48(%rdi)\n mov %r8, 64(%rdi)\n mov %r9, 72(%rdi)\n"
        " mov %r10, 80(%rdi)\n mov %r11, 88(%rdi)\n mov %r12, 96(%rdi)\n mov %r13, 104(%rdi)\n"
        " mov %r14, 112(%rdi)\n mov %r15, 120(%rdi)\n popq 56(%rdi)\n pushfq\n popq 128(%rdi)\n"
        " add $16, %rsp\n"
        " pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n ret\n");

static struct guest_memory *mem;
static uint8_t *code_page;
static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int setup(void **state)
{
    (void)state;
    if (guest_memory_create(GUEST_MEMORY_FIXED, &mem) < 0)
        return -1;
    code_page =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return code_page == MAP_FAILED ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    guest_memory_destroy(mem);
    munmap(code_page, 4096);
    return 0;
}

/* The fake device: DEV_SIZE bytes at DEV. */
static uint8_t dev[DEV_SIZE];
static unsigned exits;

static struct x86_decoded_insn decode(const uint8_t *bytes, size_t n, uint64_t rip)
{
    struct x86_decoder d;
    struct x86_decoded_insn insn;
    x86_decoder_init(&d);
    assert_int_equal(x86_decode(&d, bytes, n, rip, &insn), 0);
    return insn;
}

/* Emulate the instruction at s->rip; the device serves every access. */
static enum emu_mmio_status emulate(struct vcpu_state *s, const uint8_t *bytes, size_t n,
                                    struct emu_mmio *m, struct emu_result *res)
{
    struct x86_decoded_insn insn = decode(bytes, n, s->rip);
    struct emu_ctx ctx = {.state = s, .mem = mem};
    memset(res, 0, sizeof(*res));
    exits = 0;
    enum emu_mmio_status st = emu_mmio_start(&ctx, &insn, m, res);
    while (st == EMU_MMIO_ACCESS) {
        exits++;
        uint8_t data[8] = {0};
        assert_true(m->access.gpa >= DEV && m->access.gpa + m->access.len <= DEV + DEV_SIZE);
        assert_true(m->access.len >= 1 && m->access.len <= 8);
        if (m->access.is_write)
            memcpy(dev + (m->access.gpa - DEV), m->access.data, m->access.len);
        else
            memcpy(data, dev + (m->access.gpa - DEV), m->access.len);
        st = emu_mmio_continue(&ctx, m, data, res);
    }
    return st;
}

enum constraint { C_NONE, C_BTREG, C_DIV, C_IDIV, C_CMPXCHG8B };

struct case_ {
    const char *name;
    const char *bytes; /* memory operand at [rbx] or [rbx+disp8] */
    uint8_t n;
    uint8_t constraint;
    uint8_t base; /* the base register of the memory operand */
};
#define CASE(name, bytes, c)                                                                       \
    {                                                                                              \
        name, bytes, sizeof(bytes) - 1, c, X86_RBX                                                 \
    }
#define CASE_BASE(name, bytes, c, base)                                                            \
    {                                                                                              \
        name, bytes, sizeof(bytes) - 1, c, base                                                    \
    }

static const struct case_ differential[] = {
    CASE("mov rax, [rbx]", "\x48\x8b\x03", C_NONE),
    CASE("mov ecx, [rbx]", "\x8b\x0b", C_NONE),
    CASE("mov dx, [rbx]", "\x66\x8b\x13", C_NONE),
    CASE("mov ah, [rbx]", "\x8a\x23", C_NONE),
    CASE("mov cl, [rbx+8]", "\x8a\x4b\x08", C_NONE),
    CASE("mov [rbx], rax", "\x48\x89\x03", C_NONE),
    CASE("mov [rbx], ecx", "\x89\x0b", C_NONE),
    CASE("mov [rbx-8], dx", "\x66\x89\x53\xf8", C_NONE),
    CASE("mov [rbx], ah", "\x88\x23", C_NONE),
    CASE("mov qword [rbx], imm32", "\x48\xc7\x03\x78\x56\x34\xf2", C_NONE),
    CASE("mov byte [rbx], imm8", "\xc6\x03\x5a", C_NONE),
    CASE("mov word [rbx], imm16", "\x66\xc7\x03\x34\x12", C_NONE),
    CASE("mov [rbx], ds", "\x8c\x1b", C_NONE),
    CASE("movzx eax, byte [rbx]", "\x0f\xb6\x03", C_NONE),
    CASE("movzx rcx, word [rbx]", "\x48\x0f\xb7\x0b", C_NONE),
    CASE("movsx rdx, byte [rbx]", "\x48\x0f\xbe\x13", C_NONE),
    CASE("movsx esi, word [rbx]", "\x0f\xbf\x33", C_NONE),
    CASE("movsxd rdi, [rbx]", "\x48\x63\x3b", C_NONE),
    CASE("movnti [rbx], rax", "\x48\x0f\xc3\x03", C_NONE),
    CASE("add [rbx], rcx", "\x48\x01\x0b", C_NONE),
    CASE("add dl, [rbx]", "\x02\x13", C_NONE),
    CASE("or [rbx], cx", "\x66\x09\x0b", C_NONE),
    CASE("adc eax, [rbx]", "\x13\x03", C_NONE),
    CASE("sbb [rbx], sil", "\x40\x18\x33", C_NONE),
    CASE("and rdx, [rbx]", "\x48\x23\x13", C_NONE),
    CASE("sub [rbx], eax", "\x29\x03", C_NONE),
    CASE("xor r9, [rbx]", "\x4c\x33\x0b", C_NONE),
    CASE("cmp [rbx], rcx", "\x48\x39\x0b", C_NONE),
    CASE("cmp al, [rbx]", "\x3a\x03", C_NONE),
    CASE("lock add [rbx], rcx", "\xf0\x48\x01\x0b", C_NONE),
    CASE("add byte [rbx], imm8", "\x80\x03\x7f", C_NONE),
    CASE("or dword [rbx], imm32", "\x81\x0b\x78\x56\x34\x12", C_NONE),
    CASE("adc qword [rbx], imm8", "\x48\x83\x13\xf0", C_NONE),
    CASE("sbb word [rbx], imm8", "\x66\x83\x1b\x05", C_NONE),
    CASE("and byte [rbx], imm8", "\x80\x23\x3c", C_NONE),
    CASE("sub qword [rbx], imm32", "\x48\x81\x2b\x00\x00\x00\x80", C_NONE),
    CASE("xor dword [rbx], imm8", "\x83\x33\xff", C_NONE),
    CASE("cmp qword [rbx], imm8", "\x48\x83\x3b\x01", C_NONE),
    CASE("test [rbx], cl", "\x84\x0b", C_NONE),
    CASE("test [rbx], rax", "\x48\x85\x03", C_NONE),
    CASE("test byte [rbx], imm8", "\xf6\x03\x81", C_NONE),
    CASE("test qword [rbx], imm32", "\x48\xf7\x03\x01\x00\x00\x80", C_NONE),
    CASE("inc byte [rbx]", "\xfe\x03", C_NONE),
    CASE("dec qword [rbx]", "\x48\xff\x0b", C_NONE),
    CASE("inc word [rbx]", "\x66\xff\x03", C_NONE),
    CASE("neg byte [rbx]", "\xf6\x1b", C_NONE),
    CASE("not qword [rbx]", "\x48\xf7\x13", C_NONE),
    CASE("neg dword [rbx]", "\xf7\x1b", C_NONE),
    CASE("rol byte [rbx], 1", "\xd0\x03", C_NONE),
    CASE("ror qword [rbx], 1", "\x48\xd1\x0b", C_NONE),
    CASE("rcl word [rbx], cl", "\x66\xd3\x13", C_NONE),
    CASE("rcr dword [rbx], imm8", "\xc1\x1b\x05", C_NONE),
    CASE("shl qword [rbx], cl", "\x48\xd3\x23", C_NONE),
    CASE("shr byte [rbx], imm8", "\xc0\x2b\x03", C_NONE),
    CASE("sal dword [rbx], 1", "\xd1\x33", C_NONE),
    CASE("sar qword [rbx], imm8", "\x48\xc1\x3b\x3f", C_NONE),
    CASE("sar word [rbx], cl", "\x66\xd3\x3b", C_NONE),
    CASE("shld [rbx], rcx, imm8", "\x48\x0f\xa4\x0b\x05", C_NONE),
    CASE("shld [rbx], edx, cl", "\x0f\xa5\x13", C_NONE),
    CASE("shrd [rbx], dx, imm8", "\x66\x0f\xac\x13\x03", C_NONE),
    CASE("shrd [rbx], rsi, cl", "\x48\x0f\xad\x33", C_NONE),
    CASE("bt [rbx], rcx", "\x48\x0f\xa3\x0b", C_BTREG),
    CASE("bts [rbx], ecx", "\x0f\xab\x0b", C_BTREG),
    CASE("btr [rbx], cx", "\x66\x0f\xb3\x0b", C_BTREG),
    CASE("btc [rbx], rcx", "\x48\x0f\xbb\x0b", C_BTREG),
    CASE("bt dword [rbx], imm8", "\x0f\xba\x23\x25", C_NONE),
    CASE("bts qword [rbx], imm8", "\x48\x0f\xba\x2b\x3f", C_NONE),
    CASE("btr word [rbx], imm8", "\x66\x0f\xba\x33\x11", C_NONE),
    CASE("btc dword [rbx], imm8", "\x0f\xba\x3b\x07", C_NONE),
    CASE("xchg [rbx], rax", "\x48\x87\x03", C_NONE),
    CASE("xchg [rbx], cl", "\x86\x0b", C_NONE),
    CASE("xchg [rbx], dx", "\x66\x87\x13", C_NONE),
    CASE("xadd [rbx], rcx", "\x48\x0f\xc1\x0b", C_NONE),
    CASE("xadd [rbx], dl", "\x0f\xc0\x13", C_NONE),
    CASE("cmpxchg [rbx], rcx", "\x48\x0f\xb1\x0b", C_NONE),
    CASE("cmpxchg [rbx], dl", "\x0f\xb0\x13", C_NONE),
    CASE("lock cmpxchg [rbx], esi", "\xf0\x0f\xb1\x33", C_NONE),
    CASE_BASE("cmpxchg8b [rdi]", "\x0f\xc7\x0f", C_CMPXCHG8B, X86_RDI),
    CASE("mul byte [rbx]", "\xf6\x23", C_NONE),
    CASE("mul qword [rbx]", "\x48\xf7\x23", C_NONE),
    CASE("imul dword [rbx]", "\xf7\x2b", C_NONE),
    CASE("imul word [rbx]", "\x66\xf7\x2b", C_NONE),
    CASE("div byte [rbx]", "\xf6\x33", C_DIV),
    CASE("div qword [rbx]", "\x48\xf7\x33", C_DIV),
    CASE("div word [rbx]", "\x66\xf7\x33", C_DIV),
    CASE("idiv dword [rbx]", "\xf7\x3b", C_IDIV),
    CASE("idiv byte [rbx]", "\xf6\x3b", C_IDIV),
    CASE("idiv qword [rbx]", "\x48\xf7\x3b", C_IDIV),
    CASE("imul rax, [rbx]", "\x48\x0f\xaf\x03", C_NONE),
    CASE("imul ecx, [rbx]", "\x0f\xaf\x0b", C_NONE),
    CASE("imul dx, [rbx]", "\x66\x0f\xaf\x13", C_NONE),
    CASE("imul rax, [rbx], imm8", "\x48\x6b\x03\x07", C_NONE),
    CASE("imul ecx, [rbx], imm32", "\x69\x0b\x00\x00\x01\x00", C_NONE),
    CASE("bsf rax, [rbx]", "\x48\x0f\xbc\x03", C_NONE),
    CASE("bsr ecx, [rbx]", "\x0f\xbd\x0b", C_NONE),
    CASE("popcnt rdx, [rbx]", "\xf3\x48\x0f\xb8\x13", C_NONE),
    CASE("seto [rbx]", "\x0f\x90\x03", C_NONE),
    CASE("setb [rbx]", "\x0f\x92\x03", C_NONE),
    CASE("setz [rbx]", "\x0f\x94\x03", C_NONE),
    CASE("setbe [rbx]", "\x0f\x96\x03", C_NONE),
    CASE("sets [rbx]", "\x0f\x98\x03", C_NONE),
    CASE("setp [rbx]", "\x0f\x9a\x03", C_NONE),
    CASE("setl [rbx]", "\x0f\x9c\x03", C_NONE),
    CASE("setle [rbx]", "\x0f\x9e\x03", C_NONE),
    CASE("setnle [rbx]", "\x0f\x9f\x03", C_NONE),
    CASE("cmovz rax, [rbx]", "\x48\x0f\x44\x03", C_NONE),
    CASE("cmovb ecx, [rbx]", "\x0f\x42\x0b", C_NONE),
    CASE("cmovnl dx, [rbx]", "\x66\x0f\x4d\x13", C_NONE),
    CASE("cmovo rsi, [rbx]", "\x48\x0f\x40\x33", C_NONE),
    CASE("cmovnp edi, [rbx]", "\x0f\x4b\x3b", C_NONE),
};

/* Host CPU features some cases need (else the native run would raise #UD). */
static const struct case_ differential_movbe[] = {
    CASE("movbe rax, [rbx]", "\x48\x0f\x38\xf0\x03", C_NONE),
    CASE("movbe [rbx], ecx", "\x0f\x38\xf1\x0b", C_NONE),
    CASE("movbe dx, [rbx]", "\x66\x0f\x38\xf0\x13", C_NONE),
};
static const struct case_ differential_lzcnt[] = {
    CASE("lzcnt esi, [rbx]", "\xf3\x0f\xbd\x33", C_NONE),
    CASE("tzcnt di, [rbx]", "\x66\xf3\x0f\xbc\x3b", C_NONE),
};

static bool host_has_movbe(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 22));
}
static bool host_has_lzcnt_tzcnt(void)
{
    unsigned a, b, c, d;
    bool abm = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 5));
    bool bmi1 = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 3));
    return abm && bmi1;
}

static void constrain(const struct case_ *k, uint64_t *gpr, uint8_t *memory)
{
    unsigned bytes = 8;
    switch (k->constraint) {
    case C_BTREG: /* a bit offset that stays inside the device: -128..127 bits */
        gpr[1] = (uint64_t)(int64_t)(int8_t)gpr[1];
        break;
    case C_DIV: /* no #DE natively: a divisor >= 1 and a high half of 0 */
        memory[16] |= 1;
        gpr[2] = 0;
        gpr[0] &= 0xFF;
        break;
    case C_IDIV: /* divisor in 3..127, dividend the sign extension of the low half */
        memset(memory + 16, 0, 8);
        memory[16] = (uint8_t)(3 + rnd() % 125);
        gpr[0] = (uint64_t)(int64_t)(int8_t)gpr[0];
        gpr[2] = (int64_t)gpr[0] < 0 ? ~0ULL : 0;
        break;
    case C_CMPXCHG8B: /* EDX:EAX equal to the operand half of the time */
        if (rnd() & 1) {
            memcpy(memory + 16, &gpr[X86_RAX], 4);
            memcpy(memory + 20, &gpr[X86_RDX], 4);
        }
        break;
    default:
        break;
    }
    (void)bytes;
}

static void run_differential(const struct case_ *cases, unsigned count, unsigned rounds)
{
    static uint8_t native_mem[DEV_SIZE];
    for (unsigned k = 0; k < count; k++) {
        for (unsigned round = 0; round < rounds; round++) {
            struct native_regs nr;
            uint8_t memory[DEV_SIZE];
            for (unsigned i = 0; i < 16; i++)
                nr.gpr[i] = round == 0 ? i * 0x0101010101010101ULL : rnd();
            for (unsigned i = 0; i < DEV_SIZE; i += 8) {
                uint64_t v = rnd();
                memcpy(memory + i, &v, 8);
            }
            if (round == 1)
                memset(memory, 0, sizeof(memory));      /* zero operands: BSF, flags of 0 */
            nr.gpr[1] &= round % 3 == 2 ? 0x3F : ~0ULL; /* small shift counts too */
            constrain(&cases[k], nr.gpr, memory);
            nr.rflags = 0x202 | (rnd() & ARITH);
            struct vcpu_state s;
            memset(&s, 0, sizeof(s));
            memcpy(s.gpr, nr.gpr, sizeof(s.gpr));
            s.rflags = nr.rflags;
            s.rip = GUEST_IMAGE_BASE;
            unsigned base = cases[k].base;
            s.gpr[base] = DEV + 16;
            s.gpr[X86_RSP] = STACK;
            memcpy(dev, memory, DEV_SIZE);
            memcpy(native_mem, memory, DEV_SIZE);
            nr.gpr[base] = (uint64_t)(uintptr_t)(native_mem + 16);

            memcpy(code_page, cases[k].bytes, cases[k].n);
            code_page[cases[k].n] = 0xC3;
            native_run(&nr, code_page);

            struct emu_mmio m;
            struct emu_result res;
            enum emu_mmio_status st =
                emulate(&s, (const uint8_t *)cases[k].bytes, cases[k].n, &m, &res);
            char what[160];
            snprintf(what, sizeof(what), "%s, round %u", cases[k].name, round);
            if (st != EMU_MMIO_DONE)
                fail_msg("%s: status %d (%s)", what, st, m.why);
            for (unsigned i = 0; i < 16; i++)
                if (i != base && i != X86_RSP && s.gpr[i] != nr.gpr[i])
                    fail_msg("%s: GPR %u is %#llx, native %#llx", what, i,
                             (unsigned long long)s.gpr[i], (unsigned long long)nr.gpr[i]);
            if ((s.rflags & ARITH) != (nr.rflags & ARITH))
                fail_msg("%s: flags %#llx, native %#llx", what,
                         (unsigned long long)(s.rflags & ARITH),
                         (unsigned long long)(nr.rflags & ARITH));
            if (memcmp(dev, native_mem, DEV_SIZE) != 0)
                fail_msg("%s: memory differs", what);
            if (s.rip != GUEST_IMAGE_BASE + cases[k].n)
                fail_msg("%s: rip not past the instruction", what);
            assert_true(exits >= 1);
        }
    }
}

static void every_family_matches_the_cpu(void **state)
{
    (void)state;
    run_differential(differential, sizeof(differential) / sizeof(differential[0]), 64);
    if (host_has_movbe())
        run_differential(differential_movbe, 3, 64);
    if (host_has_lzcnt_tzcnt())
        run_differential(differential_lzcnt, 2, 64);
}

/* A read-modify-write is one read exit, then one write exit; a load one read; a store one
 * write; CMP/TEST/BT only read. */
static void exits_are_those_the_instruction_makes(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        unsigned n, exits;
    } cases[] = {
        {"\x48\x01\x0b", 3, 2},     /* add [rbx], rcx */
        {"\x48\x8b\x03", 3, 1},     /* mov rax, [rbx] */
        {"\x48\x89\x03", 3, 1},     /* mov [rbx], rax */
        {"\x48\x39\x0b", 3, 1},     /* cmp [rbx], rcx */
        {"\x0f\xba\x23\x05", 4, 1}, /* bt dword [rbx], 5 */
        {"\x0f\x94\x03", 3, 1},     /* setz [rbx] */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vcpu_state s;
        memset(&s, 0, sizeof(s));
        s.rip = GUEST_IMAGE_BASE;
        s.gpr[X86_RBX] = DEV;
        struct emu_mmio m;
        struct emu_result res;
        assert_int_equal(emulate(&s, (const uint8_t *)cases[i].bytes, cases[i].n, &m, &res),
                         EMU_MMIO_DONE);
        assert_int_equal(exits, cases[i].exits);
    }
}

static struct vcpu_state fresh(uint64_t rsp)
{
    struct vcpu_state s;
    memset(&s, 0, sizeof(s));
    s.rip = GUEST_IMAGE_BASE;
    s.rflags = 0x2;
    s.gpr[X86_RSP] = rsp;
    return s;
}

static uint64_t dev_q(unsigned off)
{
    uint64_t v;
    memcpy(&v, dev + off, 8);
    return v;
}

static uint64_t ram_q(uint64_t gpa)
{
    uint64_t v = 0;
    assert_int_equal(guest_ram_read(mem, gpa, &v, 8), 0);
    return v;
}

/* With RSP in the MMIO window (the POP/RET case): the stack is the device. */
static void stack_in_mmio(void **state)
{
    (void)state;
    struct emu_mmio m;
    struct emu_result res;
    memset(dev, 0, sizeof(dev));
    struct vcpu_state s = fresh(DEV + 32);
    s.gpr[X86_RAX] = 0x1111222233334444ULL;
    assert_int_equal(emulate(&s, (const uint8_t *)"\x50", 1, &m, &res), EMU_MMIO_DONE); /* push */
    assert_int_equal(s.gpr[X86_RSP], DEV + 24);
    assert_int_equal(dev_q(24), 0x1111222233334444ULL);
    assert_int_equal(emulate(&s, (const uint8_t *)"\x59", 1, &m, &res),
                     EMU_MMIO_DONE); /* pop rcx */
    assert_int_equal(s.gpr[X86_RCX], 0x1111222233334444ULL);
    assert_int_equal(s.gpr[X86_RSP], DEV + 32);
    assert_int_equal(s.rip, GUEST_IMAGE_BASE + 2);

    uint64_t target = GUEST_IMAGE_BASE + 0x1234;
    memcpy(dev + 32, &target, 8);
    s = fresh(DEV + 32);
    assert_int_equal(emulate(&s, (const uint8_t *)"\xc3", 1, &m, &res), EMU_MMIO_DONE); /* ret */
    assert_int_equal(s.rip, target);
    assert_int_equal(s.gpr[X86_RSP], DEV + 40);
    s = fresh(DEV + 32);
    assert_int_equal(emulate(&s, (const uint8_t *)"\xc2\x10\x00", 3, &m, &res), /* ret 16 */
                     EMU_MMIO_DONE);
    assert_int_equal(s.gpr[X86_RSP], DEV + 56);

    s = fresh(DEV + 32); /* call rel32 */
    assert_int_equal(emulate(&s, (const uint8_t *)"\xe8\x00\x01\x00\x00", 5, &m, &res),
                     EMU_MMIO_DONE);
    assert_int_equal(s.rip, GUEST_IMAGE_BASE + 5 + 0x100);
    assert_int_equal(dev_q(24), GUEST_IMAGE_BASE + 5);
    assert_int_equal(s.gpr[X86_RSP], DEV + 24);

    s = fresh(DEV + 32); /* pushfq; popfq restores CF and OF */
    s.rflags = 0x2 | 0x801;
    assert_int_equal(emulate(&s, (const uint8_t *)"\x9c", 1, &m, &res), EMU_MMIO_DONE);
    assert_int_equal(dev_q(24), 0x803);
    s.rflags = 0x2;
    assert_int_equal(emulate(&s, (const uint8_t *)"\x9d", 1, &m, &res), EMU_MMIO_DONE);
    assert_int_equal(s.rflags & 0x801, 0x801);

    s = fresh(DEV + 32); /* enter 16, 0 */
    s.gpr[X86_RBP] = 0x77;
    assert_int_equal(emulate(&s, (const uint8_t *)"\xc8\x10\x00\x00", 4, &m, &res), EMU_MMIO_DONE);
    assert_int_equal(dev_q(24), 0x77);
    assert_int_equal(s.gpr[X86_RBP], DEV + 24);
    assert_int_equal(s.gpr[X86_RSP], DEV + 24 - 16);
    s = fresh(DEV + 32);
    assert_int_equal(emulate(&s, (const uint8_t *)"\xc8\x10\x00\x01", 4, &m, &res),
                     EMU_MMIO_UNSUPPORTED); /* nesting level 1 */

    s = fresh(STACK); /* clflush of a device address: a no-op that retires without an exit */
    s.gpr[X86_RBX] = DEV;
    assert_int_equal(emulate(&s, (const uint8_t *)"\x0f\xae\x3b", 3, &m, &res), EMU_MMIO_DONE);
    assert_int_equal(exits, 0);
    assert_int_equal(s.rip, GUEST_IMAGE_BASE + 3);

    s = fresh(STACK); /* leave with RBP in the device */
    s.gpr[X86_RBP] = DEV + 8;
    uint64_t saved = 0xABCDULL;
    memcpy(dev + 8, &saved, 8);
    assert_int_equal(emulate(&s, (const uint8_t *)"\xc9", 1, &m, &res), EMU_MMIO_DONE);
    assert_int_equal(s.gpr[X86_RBP], 0xABCD);
    assert_int_equal(s.gpr[X86_RSP], DEV + 16);

    /* a return address that is not canonical: #GP, state untouched */
    uint64_t bad = 0x8000000000000000ULL;
    memcpy(dev + 32, &bad, 8);
    s = fresh(DEV + 32);
    assert_int_equal(emulate(&s, (const uint8_t *)"\xc3", 1, &m, &res), EMU_MMIO_EXCEPTION);
    assert_int_equal(res.vector, 13);
    assert_int_equal(s.gpr[X86_RSP], DEV + 32);
    assert_int_equal(s.rip, GUEST_IMAGE_BASE);
}

/* PUSH/POP/CALL/JMP with the explicit operand in MMIO and the stack in RAM. */
static void stack_operands_in_mmio(void **state)
{
    (void)state;
    struct emu_mmio m;
    struct emu_result res;
    uint64_t v = 0x5555666677778888ULL, target = GUEST_IMAGE_BASE + 0x40;
    memcpy(dev, &v, 8);
    memcpy(dev + 8, &target, 8);
    struct vcpu_state s = fresh(STACK);
    s.gpr[X86_RBX] = DEV;
    assert_int_equal(emulate(&s, (const uint8_t *)"\xff\x33", 2, &m, &res), EMU_MMIO_DONE);
    assert_int_equal(ram_q(STACK - 8), v); /* push qword [rbx] */
    assert_int_equal(s.gpr[X86_RSP], STACK - 8);
    uint64_t w = 0x42;
    assert_int_equal(guest_ram_write(mem, STACK - 8, &w, 8), 0);
    assert_int_equal(emulate(&s, (const uint8_t *)"\x8f\x43\x10", 3, &m, &res),
                     EMU_MMIO_DONE); /* pop qword [rbx+16] */
    assert_int_equal(dev_q(16), 0x42);
    assert_int_equal(s.gpr[X86_RSP], STACK);
    s.rip = GUEST_IMAGE_BASE;
    assert_int_equal(emulate(&s, (const uint8_t *)"\xff\x53\x08", 3, &m, &res),
                     EMU_MMIO_DONE); /* call qword [rbx+8] */
    assert_int_equal(s.rip, target);
    assert_int_equal(ram_q(STACK - 8), GUEST_IMAGE_BASE + 3);
    s.rip = GUEST_IMAGE_BASE;
    assert_int_equal(emulate(&s, (const uint8_t *)"\xff\x63\x08", 3, &m, &res),
                     EMU_MMIO_DONE); /* jmp qword [rbx+8] */
    assert_int_equal(s.rip, target);
    /* the stack outside guest memory: #PF on the push, with its CR2 */
    s = fresh(0x1000);
    s.gpr[X86_RBX] = DEV;
    assert_int_equal(emulate(&s, (const uint8_t *)"\xff\x33", 2, &m, &res), EMU_MMIO_EXCEPTION);
    assert_int_equal(res.vector, 14);
    assert_int_equal(res.cr2, 0x1000 - 8);
}

/* String instructions: one element per execution; a REP form stays on itself until done. */
static void strings_one_element_at_a_time(void **state)
{
    (void)state;
    struct emu_mmio m;
    struct emu_result res;
    memset(dev, 0, sizeof(dev));
    struct vcpu_state s = fresh(STACK);
    s.gpr[X86_RDI] = DEV;
    s.gpr[X86_RAX] = 0xA1;
    s.gpr[X86_RCX] = 3;
    for (unsigned i = 0; i < 3; i++) { /* rep stosb */
        assert_int_equal(emulate(&s, (const uint8_t *)"\xf3\xaa", 2, &m, &res), EMU_MMIO_DONE);
        assert_int_equal(s.rip, i < 2 ? GUEST_IMAGE_BASE : GUEST_IMAGE_BASE + 2);
    }
    assert_memory_equal(dev, "\xa1\xa1\xa1\x00", 4);
    assert_int_equal(s.gpr[X86_RCX], 0);
    assert_int_equal(s.gpr[X86_RDI], DEV + 3);

    /* movsq from the device to RAM, backwards (DF) */
    uint64_t v = 0x0102030405060708ULL;
    memcpy(dev + 8, &v, 8);
    s = fresh(STACK);
    s.rflags |= 0x400;
    s.gpr[X86_RSI] = DEV + 8;
    s.gpr[X86_RDI] = STACK;
    assert_int_equal(emulate(&s, (const uint8_t *)"\x48\xa5", 2, &m, &res), EMU_MMIO_DONE);
    assert_int_equal(ram_q(STACK), v);
    assert_int_equal(s.gpr[X86_RSI], DEV);
    assert_int_equal(s.gpr[X86_RDI], STACK - 8);

    /* lodsd: EAX zero-extends */
    s = fresh(STACK);
    s.gpr[X86_RSI] = DEV + 8;
    s.gpr[X86_RAX] = ~0ULL;
    assert_int_equal(emulate(&s, (const uint8_t *)"\xad", 1, &m, &res), EMU_MMIO_DONE);
    assert_int_equal(s.gpr[X86_RAX], 0x05060708);

    /* repe cmpsb RAM vs device: stops at the first difference */
    assert_int_equal(guest_ram_write(mem, STACK, "abcx", 4), 0);
    memcpy(dev, "abcd", 4);
    s = fresh(STACK);
    s.gpr[X86_RSI] = STACK;
    s.gpr[X86_RDI] = DEV;
    s.gpr[X86_RCX] = 10;
    unsigned runs = 0;
    do {
        assert_int_equal(emulate(&s, (const uint8_t *)"\xf3\xa6", 2, &m, &res), EMU_MMIO_DONE);
        runs++;
    } while (s.rip == GUEST_IMAGE_BASE && runs < 20);
    assert_int_equal(runs, 4);
    assert_int_equal(s.gpr[X86_RCX], 6);
    assert_false(s.rflags & 0x40); /* ZF clear: 'x' != 'd' */

    /* scasw: AX - [RDI] */
    s = fresh(STACK);
    s.gpr[X86_RDI] = DEV;
    s.gpr[X86_RAX] = 0x6261; /* "ab" */
    assert_int_equal(emulate(&s, (const uint8_t *)"\x66\xaf", 2, &m, &res), EMU_MMIO_DONE);
    assert_true(s.rflags & 0x40);
}

/* #DE exactly where the CPU raises it; the state stays as it was. */
static void divide_errors(void **state)
{
    (void)state;
    struct emu_mmio m;
    struct emu_result res;
    memset(dev, 0, sizeof(dev));
    struct vcpu_state s = fresh(STACK);
    s.gpr[X86_RBX] = DEV;
    s.gpr[X86_RAX] = 5;
    assert_int_equal(emulate(&s, (const uint8_t *)"\x48\xf7\x33", 3, &m, &res),
                     EMU_MMIO_EXCEPTION); /* div qword [rbx] by 0 */
    assert_int_equal(res.vector, 0);
    assert_int_equal(s.gpr[X86_RAX], 5);
    assert_int_equal(s.rip, GUEST_IMAGE_BASE);
    dev[0] = 2; /* quotient 0x180 does not fit AL */
    s.gpr[X86_RAX] = 0x300;
    assert_int_equal(emulate(&s, (const uint8_t *)"\xf6\x33", 2, &m, &res), EMU_MMIO_EXCEPTION);
    int64_t minus_one = -1; /* INT64_MIN / -1 */
    memcpy(dev, &minus_one, 8);
    s.gpr[X86_RAX] = 0x8000000000000000ULL;
    s.gpr[X86_RDX] = ~0ULL;
    assert_int_equal(emulate(&s, (const uint8_t *)"\x48\xf7\x3b", 3, &m, &res), EMU_MMIO_EXCEPTION);
    s.gpr[X86_RAX] = 0x80; /* idiv byte: -128 / -1 = 128 does not fit */
    s.gpr[X86_RDX] = 0;
    s.gpr[X86_RAX] = 0xFF80;
    assert_int_equal(emulate(&s, (const uint8_t *)"\xf6\x3b", 2, &m, &res), EMU_MMIO_EXCEPTION);
    dev[0] = 3; /* and a fine one */
    s.gpr[X86_RAX] = 10;
    assert_int_equal(emulate(&s, (const uint8_t *)"\xf6\x33", 2, &m, &res), EMU_MMIO_DONE);
    assert_int_equal(s.gpr[X86_RAX] & 0xFFFF, 0x0103); /* AH = 1, AL = 3 */
}

/* What is not emulated ends as a documented emulation failure that names the instruction. */
static void unsupported_forms_name_the_instruction(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        unsigned n;
        const char *name;
    } cases[] = {
        {"\xf3\x0f\x6f\x03", 4, "movdqu"},     /* vector register */
        {"\xdd\x03", 2, "fld"},                /* x87 */
        {"\x48\x0f\xc7\x0b", 4, "cmpxchg16b"}, /* 16 bytes */
        {"\xff\x1b", 2, "call"},               /* far pointer */
        {"\x0f\x01\x13", 3, "lgdt"},           /* no MMIO form */
        {"\xc5\xfe\x6f\x03", 4, "vmovdqu"},    /* VEX */
        {"\x8e\x1b", 2, "mov"},                /* segment register load */
        {"\x48\xcf", 2, "iretq"},              /* with RSP in the device, below */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vcpu_state s = fresh(DEV);
        s.gpr[X86_RBX] = DEV;
        struct emu_mmio m;
        struct emu_result res;
        assert_int_equal(emulate(&s, (const uint8_t *)cases[i].bytes, cases[i].n, &m, &res),
                         EMU_MMIO_UNSUPPORTED);
        if (!strstr(m.why, cases[i].name))
            fail_msg("'%s' does not name %s", m.why, cases[i].name);
        assert_int_equal(s.rip, GUEST_IMAGE_BASE);
    }
    /* an access straddling the end of RAM */
    struct vcpu_state s = fresh(STACK);
    s.gpr[X86_RBX] = GUEST_RAM_END - 4;
    struct emu_mmio m;
    struct emu_result res;
    assert_int_equal(emulate(&s, (const uint8_t *)"\x48\x8b\x03", 3, &m, &res),
                     EMU_MMIO_UNSUPPORTED);
    assert_non_null(strstr(m.why, "straddles"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_family_matches_the_cpu),
        cmocka_unit_test(exits_are_those_the_instruction_makes),
        cmocka_unit_test(stack_in_mmio),
        cmocka_unit_test(stack_operands_in_mmio),
        cmocka_unit_test(strings_one_element_at_a_time),
        cmocka_unit_test(divide_errors),
        cmocka_unit_test(unsupported_forms_name_the_instruction),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
