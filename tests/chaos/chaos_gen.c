/* chaos_gen.c - random guests for the whole-backend chaos test (see chaos_gen.h).
 *
 * Machine code is emitted byte by byte from the encodings in the Intel SDM vol. 2 (opcode
 * maps in appendix A; ModRM/SIB/REX in 2.1-2.2, VEX in 2.3, EVEX in 2.7). The random kind
 * keeps a random byte string when Zydis decodes it and plain garbage otherwise.
 */
#include "chaos_gen.h"

#include <string.h>

#include <Zydis/Zydis.h>

#include "vmm/guest_layout.h"

#define IDT_OFFSET 0x1000
#define STUBS_OFFSET 0x2000
#define HANDLER_OFFSET 0x3000
#define IDTR_OFFSET 0x3800
#define COUNTER_OFFSET 0x3810
#define DATA_OFFSET 0x4000
#define DATA_SIZE 0x4000

#define IMG(off) (GUEST_IMAGE_BASE + (off))

struct gen {
    struct chaos_guest *guest;
    uint64_t rng;
    size_t at;          /* emit position in guest->image */
    uint64_t next_slot; /* guest address of the slot after the current one */
};

static uint64_t rnd(struct gen *g)
{
    /* xorshift64* (Vigna): fast, full period, good enough for test generation */
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 0x2545F4914F6CDD1DULL;
}

static unsigned below(struct gen *g, unsigned n)
{
    return (unsigned)(rnd(g) % n);
}

static bool chance(struct gen *g, unsigned percent)
{
    return below(g, 100) < percent;
}

uint64_t chaos_guest_seed(uint64_t seed, uint64_t index)
{
    /* splitmix64 finaliser over (seed, index): neighbouring indices give unrelated guests */
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (z ^ (z >> 31)) | 1;
}

/* ---- emitter ---- */

static void b1(struct gen *g, uint8_t v)
{
    if (g->at < sizeof(g->guest->image))
        g->guest->image[g->at++] = v;
}

static void bn(struct gen *g, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b1(g, (uint8_t)s[i]);
}
#define BYTES(g, lit) bn((g), "" lit, sizeof(lit) - 1) /* string literals only */

static void le(struct gen *g, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        b1(g, (uint8_t)(v >> (8 * i)));
}

static void rex(struct gen *g, bool w, unsigned r, unsigned b)
{
    uint8_t v = (uint8_t)(0x40 | (w ? 8 : 0) | ((r >> 3) & 1) << 2 | ((b >> 3) & 1));
    if (v != 0x40)
        b1(g, v);
}

static void mov_imm64(struct gen *g, unsigned reg, uint64_t v)
{
    rex(g, true, 0, reg);
    b1(g, (uint8_t)(0xB8 + (reg & 7)));
    le(g, v, 8);
}

static void mov_imm32(struct gen *g, unsigned reg, uint32_t v) /* zero-extends */
{
    rex(g, false, 0, reg);
    b1(g, (uint8_t)(0xB8 + (reg & 7)));
    le(g, v, 4);
}

/* [legacy] [REX] opcode ModRM(mod=01, reg, rm=base) [SIB] disp8 */
static void insn_mem(struct gen *g, uint8_t legacy, bool w, const char *op, size_t oplen,
                     unsigned reg, unsigned base, int8_t disp)
{
    if (legacy)
        b1(g, legacy);
    rex(g, w, reg, base);
    bn(g, op, oplen);
    b1(g, (uint8_t)(0x40 | (reg & 7) << 3 | (base & 7)));
    if ((base & 7) == 4)
        b1(g, 0x24); /* SIB: base only */
    b1(g, (uint8_t)disp);
}

/* [legacy] [REX] opcode ModRM(mod=11, reg, rm) */
static void insn_reg(struct gen *g, uint8_t legacy, bool w, const char *op, size_t oplen,
                     unsigned reg, unsigned rm)
{
    if (legacy)
        b1(g, legacy);
    rex(g, w, reg, rm);
    bn(g, op, oplen);
    b1(g, (uint8_t)(0xC0 | (reg & 7) << 3 | (rm & 7)));
}

/* ---- value pools ---- */

static unsigned pick_gpr(struct gen *g) /* any GPR but RSP */
{
    unsigned r;
    do
        r = below(g, 16);
    while (r == 4);
    return r;
}

static uint64_t pick_address(struct gen *g)
{
    switch (below(g, 20)) {
    case 0:
    case 1:
    case 2:
        return IMG(DATA_OFFSET) + below(g, DATA_SIZE - 64);
    case 3:
    case 4:
        return MMIO_SCRATCH + below(g, 3) * 4;
    case 5:
        return GUEST_MMIO_BASE + 8 + below(g, GUEST_MMIO_SIZE - 16); /* unassigned MMIO */
    case 6:
        return GUEST_RAM_END - 1 - below(g, 16); /* straddles RAM and MMIO */
    case 7:
        return GUEST_SPACE_END - 8 + below(g, 16); /* the end of the guest space */
    case 8:
        return 0x28 + below(g, 4) * 0x1000; /* low addresses (FS-relative canary slot) */
    case 9:
        return 0;
    case 10:
        return GUEST_STACK_TOP - 8 - below(g, 256);
    case 11:
        return GUEST_RAM_BASE + below(g, 0x20000); /* platform area: GDT, IDT, page tables */
    case 12:
        return 0x8000000000000000ULL + below(g, 4096); /* non-canonical */
    case 13:
        return 0xFFFFFFFF81000000ULL; /* host kernel */
    case 14:
        return GUEST_RAM_BASE + 0x1000000 + below(g, 0x100000); /* zero-filled RAM */
    case 15:
        return IMG(CHAOS_BODY_OFFSET) + below(g, CHAOS_MAX_SLOTS * CHAOS_SLOT);
    case 16:
        return GUEST_MMIO_BASE - 8 + below(g, 16); /* end of RAM, both sides */
    default:
        return rnd(g);
    }
}

static uint64_t pick_value(struct gen *g)
{
    switch (below(g, 8)) {
    case 0:
        return 0;
    case 1:
        return below(g, 16);
    case 2:
        return ~0ULL;
    case 3:
        return 1ULL << below(g, 64);
    case 4:
    case 5:
        return pick_address(g);
    default:
        return rnd(g);
    }
}

static uint16_t pick_selector(struct gen *g)
{
    /* the guest's GDT (0x08 code, 0x10 data, 0x18 TSS), the host's user selectors (0x23
     * compat code, 0x2b data, 0x33 64-bit code on Linux) and noise */
    static const uint16_t sel[] = {0, 0x08, 0x10, 0x18, 0x20, 0x23, 0x2B, 0x33, 0x3B, 0x0B, 0x13};
    if (chance(g, 15))
        return (uint16_t)rnd(g);
    return sel[below(g, sizeof(sel) / sizeof(sel[0]))];
}

static uint32_t pick_msr(struct gen *g)
{
    static const uint32_t msr[] = {
        0x10,       0x1B,       0x3A,       0x174,      0x175,      0x176,      0x1A0,
        0x1D9,      0x277,      0x2FF,      0xC0000080, 0xC0000081, 0xC0000082, 0xC0000083,
        0xC0000084, 0xC0000100, 0xC0000101, 0xC0000102, 0xC0000103, 0x48,       0x6E0};
    if (chance(g, 10))
        return (uint32_t)rnd(g);
    return msr[below(g, sizeof(msr) / sizeof(msr[0]))];
}

static uint16_t pick_port(struct gen *g)
{
    static const uint16_t port[] = {PORT_CONSOLE,
                                    PORT_TIMER_PERIOD,
                                    PORT_TIMER_VECTOR,
                                    PORT_TIMER_TICKS,
                                    PORT_CLOCK_US,
                                    PORT_BENCH_MARK,
                                    PORT_SCRATCH,
                                    PORT_FIFO,
                                    PORT_EXC_REPORT,
                                    0x80,
                                    0x3F8,
                                    0xCF8,
                                    0x20,
                                    0x60};
    if (chance(g, 2))
        return PORT_EXIT;
    if (chance(g, 10))
        return (uint16_t)rnd(g);
    return port[below(g, sizeof(port) / sizeof(port[0]))];
}

/* RFLAGS images for POPF/IRET: the bits that must never leak into host code (AC, NT, TF, DF,
 * ID, RF, IOPL) set often. */
static uint32_t pick_rflags(struct gen *g)
{
    static const uint32_t bits[] = {1u << 18, 1u << 14, 1u << 8,  1u << 10, 1u << 21, 1u << 16,
                                    3u << 12, 1u << 9,  1u << 19, 1u << 20, 1u << 17, 0x8D5};
    uint32_t v = 2;
    unsigned n = 1 + below(g, 3);
    for (unsigned i = 0; i < n; i++)
        v |= bits[below(g, sizeof(bits) / sizeof(bits[0]))];
    if (chance(g, 5))
        v = (uint32_t)rnd(g);
    return v;
}

/* ---- privileged-biased slots ---- */

static void gen_memory_op(struct gen *g, uint64_t addr)
{
    unsigned base = pick_gpr(g);
    unsigned reg = pick_gpr(g);
    int8_t disp = (int8_t)(chance(g, 70) ? 0 : (int)below(g, 16) - 8);
    mov_imm64(g, base, addr - (uint64_t)(int64_t)disp);
    bool w = chance(g, 50);
    uint8_t p66 = chance(g, 15) ? 0x66 : 0;
    uint8_t lock = chance(g, 5) ? 0xF0 : 0;
    switch (below(g, 30)) {
    case 0: /* MOV r/m, r and r, r/m (8/16/32/64) */
        insn_mem(g, p66, w, (const char[]){(char)(0x88 + below(g, 4))}, 1, reg, base, disp);
        break;
    case 1: /* MOV r/m, imm */
        insn_mem(g, p66, w, "\xC7", 1, 0, base, disp);
        le(g, rnd(g), p66 ? 2 : 4);
        break;
    case 2:
        insn_mem(g, 0, false, "\xC6", 1, 0, base, disp);
        b1(g, (uint8_t)rnd(g));
        break;
    case 3: /* MOVZX / MOVSX */
        insn_mem(g, 0, w, (const char[]){0x0F, (char)(0xB6 + below(g, 2) + 8 * below(g, 2))}, 2,
                 reg, base, disp);
        break;
    case 4: /* MOVSXD */
        insn_mem(g, 0, true, "\x63", 1, reg, base, disp);
        break;
    case 5:
    case 6: /* ALU r/m,r and r,r/m: ADD OR ADC SBB AND SUB XOR CMP */
        if (lock)
            b1(g, lock);
        insn_mem(g, p66, w, (const char[]){(char)(8 * below(g, 8) + below(g, 4))}, 1, reg, base,
                 disp);
        break;
    case 7: /* ALU r/m, imm8 / imm32 */
        if (lock)
            b1(g, lock);
        if (chance(g, 50)) {
            insn_mem(g, p66, w, "\x83", 1, below(g, 8), base, disp);
            b1(g, (uint8_t)rnd(g));
        } else {
            insn_mem(g, p66, w, "\x81", 1, below(g, 8), base, disp);
            le(g, rnd(g), p66 ? 2 : 4);
        }
        break;
    case 8: /* TEST r/m, r ; TEST r/m, imm */
        if (chance(g, 50))
            insn_mem(g, p66, w, "\x85", 1, reg, base, disp);
        else {
            insn_mem(g, 0, false, "\xF6", 1, 0, base, disp);
            b1(g, (uint8_t)rnd(g));
        }
        break;
    case 9: /* INC DEC (FF /0 /1), NOT NEG MUL IMUL DIV IDIV (F7 /2-7) */
        if (lock)
            b1(g, lock);
        if (chance(g, 40))
            insn_mem(g, p66, w, "\xFF", 1, below(g, 2), base, disp);
        else
            insn_mem(g, p66, w, chance(g, 50) ? "\xF7" : "\xF6", 1, 2 + below(g, 6), base, disp);
        break;
    case 10: /* shifts and rotates: D1 /r (by 1), D3 /r (by CL), C1 /r ib */
        switch (below(g, 3)) {
        case 0:
            insn_mem(g, p66, w, "\xD1", 1, below(g, 8), base, disp);
            break;
        case 1:
            insn_mem(g, p66, w, "\xD3", 1, below(g, 8), base, disp);
            break;
        default:
            insn_mem(g, p66, w, "\xC1", 1, below(g, 8), base, disp);
            b1(g, (uint8_t)below(g, 70));
        }
        break;
    case 11: /* BT BTS BTR BTC r/m, r and r/m, imm8 */
        if (lock)
            b1(g, lock);
        if (chance(g, 50))
            insn_mem(g, p66, w, (const char[]){0x0F, (char)(0xA3 + 8 * below(g, 4))}, 2, reg, base,
                     disp);
        else {
            insn_mem(g, p66, w, "\x0F\xBA", 2, 4 + below(g, 4), base, disp);
            b1(g, (uint8_t)below(g, 80));
        }
        break;
    case 12: /* XCHG, CMPXCHG, XADD */
        if (lock)
            b1(g, lock);
        switch (below(g, 3)) {
        case 0:
            insn_mem(g, p66, w, "\x87", 1, reg, base, disp);
            break;
        case 1:
            insn_mem(g, p66, w, "\x0F\xB1", 2, reg, base, disp);
            break;
        default:
            insn_mem(g, p66, w, "\x0F\xC1", 2, reg, base, disp);
        }
        break;
    case 13: /* CMPXCHG8B / 16B */
        insn_mem(g, chance(g, 50) ? 0xF0 : 0, chance(g, 50), "\x0F\xC7", 2, 1, base, disp);
        break;
    case 14: /* PUSH r/m (FF /6), POP r/m (8F /0) */
        if (chance(g, 50))
            insn_mem(g, 0, false, "\xFF", 1, 6, base, disp);
        else
            insn_mem(g, 0, false, "\x8F", 1, 0, base, disp);
        break;
    case 15: /* CALL / JMP r/m (near and far) */
        insn_mem(g, 0, chance(g, 30), "\xFF", 1, 2 + below(g, 4), base, disp);
        break;
    case 16: /* SETcc, CMOVcc */
        if (chance(g, 50))
            insn_mem(g, 0, false, (const char[]){0x0F, (char)(0x90 + below(g, 16))}, 2, 0, base,
                     disp);
        else
            insn_mem(g, 0, w, (const char[]){0x0F, (char)(0x40 + below(g, 16))}, 2, reg, base,
                     disp);
        break;
    case 17: /* SSE load/store: MOVUPS, MOVDQA (alignment), MOVD, MOVQ */
        switch (below(g, 4)) {
        case 0:
            insn_mem(g, 0, false, chance(g, 50) ? "\x0F\x10" : "\x0F\x11", 2, reg, base, disp);
            break;
        case 1:
            insn_mem(g, 0x66, false, chance(g, 50) ? "\x0F\x6F" : "\x0F\x7F", 2, reg, base, disp);
            break;
        case 2:
            insn_mem(g, 0x66, w, chance(g, 50) ? "\x0F\x6E" : "\x0F\x7E", 2, reg, base, disp);
            break;
        default:
            insn_mem(g, 0xF3, false, "\x0F\x7E", 2, reg, base, disp);
        }
        break;
    case 18: /* x87 FLD / FSTP m64, FILD m32 */
        insn_mem(g, 0, false, chance(g, 50) ? "\xDD" : "\xDB", 1, chance(g, 50) ? 0 : 3, base,
                 disp);
        break;
    case 19: /* POPCNT, BSF, BSR, LZCNT, TZCNT, CRC32, MOVBE */
        switch (below(g, 4)) {
        case 0:
            insn_mem(g, 0xF3, w, "\x0F\xB8", 2, reg, base, disp);
            break;
        case 1:
            insn_mem(g, 0, w, chance(g, 50) ? "\x0F\xBC" : "\x0F\xBD", 2, reg, base, disp);
            break;
        case 2:
            insn_mem(g, 0xF2, w, "\x0F\x38\xF1", 3, reg, base, disp);
            break;
        default:
            insn_mem(g, 0, w, chance(g, 50) ? "\x0F\x38\xF0" : "\x0F\x38\xF1", 3, reg, base, disp);
        }
        break;
    case 20: /* MOVNTI, CLFLUSH, PREFETCH */
        if (chance(g, 50))
            insn_mem(g, 0, w, "\x0F\xC3", 2, reg, base, disp);
        else
            insn_mem(g, 0, false, chance(g, 50) ? "\x0F\xAE" : "\x0F\x18", 2, 7, base, disp);
        break;
    case 21: /* SHLD / SHRD r/m, r, CL */
        insn_mem(g, p66, w, chance(g, 50) ? "\x0F\xA5" : "\x0F\xAD", 2, reg, base, disp);
        break;
    case 22: /* IMUL r, r/m ; LEA (no access) */
        insn_mem(g, 0, w, chance(g, 50) ? "\x0F\xAF" : "\x8D", chance(g, 50) ? 2 : 1, reg, base,
                 disp);
        break;
    case 23:
    case 24:
    case 25: { /* string instructions with RSI/RDI there, a small count */
        mov_imm64(g, 6, addr);
        mov_imm64(g, 7, chance(g, 50) ? addr : pick_address(g));
        mov_imm32(g, 1, below(g, 4) ? below(g, 9) : (uint32_t)rnd(g));
        static const char str_ops[] = {(char)0xA4, (char)0xA5, (char)0xAA, (char)0xAB, (char)0xAC,
                                       (char)0xAD, (char)0xA6, (char)0xA7, (char)0xAE, (char)0xAF};
        if (chance(g, 50))
            b1(g, chance(g, 70) ? 0xF3 : 0xF2);
        if (chance(g, 10))
            BYTES(g, "\xFD"); /* STD: backwards */
        rex(g, w, 0, 0);
        b1(g, (uint8_t)str_ops[below(g, sizeof(str_ops))]);
        break;
    }
    default: { /* RSP in the target: PUSH POP CALL RET LEAVE PUSHF POPF ENTER */
        mov_imm64(g, 4, addr);
        static const char *stack_ops[] = {"\x50",
                                          "\x58",
                                          "\xC3",
                                          "\x9C",
                                          "\x9D",
                                          "\xC9",
                                          "\xE8\x00\x00\x00\x00",
                                          "\xC2\x08\x00",
                                          "\x48\xCF",
                                          "\xC8\x10\x00\x01",
                                          "\x6A\x05",
                                          "\x0F\xA0"};
        static const unsigned stack_len[] = {1, 1, 1, 1, 1, 1, 5, 3, 2, 4, 2, 2};
        unsigned k = below(g, sizeof(stack_len) / sizeof(stack_len[0]));
        bn(g, stack_ops[k], stack_len[k]);
        break;
    }
    }
}

/* Sensitive instructions without operands (SDM vol. 2; AMD APM vol. 3 for SVM ones). */
static const struct {
    const char *b;
    unsigned n;
} plain_privileged[] = {
    {"\xFA", 1},         {"\xFB", 1},         {"\x9C", 1},         {"\x9D", 1},
    {"\x0F\xA2", 2},     {"\x0F\x31", 2},     {"\x0F\x01\xF9", 3}, {"\x0F\x33", 2},
    {"\x0F\x09", 2},     {"\x0F\x08", 2},     {"\x0F\x06", 2},     {"\x0F\x01\xF8", 3},
    {"\x0F\x05", 2},     {"\x48\x0F\x07", 3}, {"\x0F\x07", 2},     {"\x0F\x34", 2},
    {"\x0F\x35", 2},     {"\xCC", 1},         {"\xF1", 1},         {"\xCE", 1},
    {"\x0F\x32", 2},     {"\x0F\x30", 2},     {"\x0F\x01\xD0", 3}, {"\x0F\x01\xD1", 3},
    {"\x0F\x01\xC8", 3}, {"\x0F\x01\xC9", 3}, {"\x0F\x0B", 2},     {"\x48\xCF", 2},
    {"\xCF", 1},         {"\xCB", 1},         {"\x48\xCB", 2},     {"\xC3", 1},
    {"\xEC", 1},         {"\xED", 1},         {"\xEE", 1},         {"\xEF", 1},
    {"\x6C", 1},         {"\x6D", 1},         {"\x6E", 1},         {"\x66\x6F", 2},
    {"\xF3\x6C", 2},     {"\xF3\x6E", 2},     {"\xF3\x6D", 2},     {"\x0F\x01\xCB", 3},
    {"\x0F\x01\xCA", 3}, {"\x0F\x01\xC1", 3}, {"\x0F\x01\xD9", 3}, {"\xF3\x0F\xC7\xF8", 4},
    {"\x0F\xA0", 2},     {"\x0F\xA1", 2},     {"\x0F\xA8", 2},     {"\x0F\xA9", 2},
    {"\x8C\xD0", 2},     {"\x8C\xC8", 2},     {"\x0F\x01\xD8", 3}, {"\x0F\x01\xDA", 3},
    {"\x0F\x01\xDF", 3}, {"\x0F\x01\xE8", 3}, {"\xC5\xF8\x77", 3}, {"\xC5\xFC\x77", 3},
    {"\xDB\xE3", 2},     {"\x0F\x77", 2},     {"\x0F\x01\xD5", 3}, {"\xF4", 1},
};

static void gen_privileged(struct gen *g)
{
    unsigned r = pick_gpr(g);
    switch (below(g, 26)) {
    case 0:
    case 1:
    case 2: {
        unsigned k = below(g, sizeof(plain_privileged) / sizeof(plain_privileged[0]));
        if (plain_privileged[k].b[0] == '\xF4' && chance(g, 70))
            k = 0; /* HLT ends most guests: keep it rare */
        bn(g, plain_privileged[k].b, plain_privileged[k].n);
        break;
    }
    case 3: /* RDMSR / WRMSR */
        mov_imm32(g, 1, pick_msr(g));
        mov_imm32(g, 0, (uint32_t)pick_value(g));
        mov_imm32(g, 2, (uint32_t)pick_value(g));
        BYTES(g, "\x0F\x30");
        if (chance(g, 50))
            BYTES(g, "\x0F\x32");
        break;
    case 4: /* MOV CRn, r / MOV r, CRn (CR0 CR2 CR3 CR4 CR8) */
    {
        static const unsigned crs[] = {0, 2, 3, 4, 8};
        unsigned cr = crs[below(g, 5)];
        if (chance(g, 60)) {
            static const uint64_t base[] = {0x80050033, 0, 0x40010000, 0x6A0, 0};
            uint64_t v = chance(g, 50) ? base[below(g, 5)] ^ (1ULL << below(g, 32)) : pick_value(g);
            mov_imm64(g, r, v);
            insn_reg(g, 0, false, "\x0F\x22", 2, cr, r);
        } else
            insn_reg(g, 0, false, "\x0F\x20", 2, cr, r);
        break;
    }
    case 5: /* MOV DRn */
        if (chance(g, 50)) {
            mov_imm64(g, r, pick_value(g));
            insn_reg(g, 0, false, "\x0F\x23", 2, below(g, 8), r);
        } else
            insn_reg(g, 0, false, "\x0F\x21", 2, below(g, 8), r);
        break;
    case 6: { /* IN/OUT with an immediate or DX port */
        uint16_t port = pick_port(g);
        mov_imm32(g, 0, (uint32_t)pick_value(g));
        if (port < 256 && chance(g, 50)) {
            b1(g, (uint8_t)(0xE4 + below(g, 4)));
            b1(g, (uint8_t)port);
        } else {
            mov_imm32(g, 2, port);
            if (chance(g, 20))
                b1(g, 0x66);
            b1(g, (uint8_t)(0xEC + below(g, 4)));
        }
        break;
    }
    case 7: { /* string I/O with a count and a buffer */
        mov_imm32(g, 2, pick_port(g));
        mov_imm64(g, chance(g, 50) ? 7 : 6, pick_address(g));
        mov_imm64(g, 1, below(g, 3) ? below(g, 64) : pick_value(g));
        if (chance(g, 70))
            b1(g, 0xF3);
        b1(g, (uint8_t)(0x6C + below(g, 4)));
        break;
    }
    case 8: /* INT n */
    {
        static const uint8_t vec[] = {0x80, 3, 1, 4, CHAOS_TIMER_VECTOR, 0x21, 0xFF, 8, 14, 13};
        b1(g, 0xCD);
        b1(g, chance(g, 60) ? vec[below(g, sizeof(vec))] : (uint8_t)rnd(g));
        break;
    }
    case 9: /* LGDT LIDT SGDT SIDT LMSW SMSW INVLPG (0F 01 /r) with a memory operand */
    {
        unsigned base = pick_gpr(g);
        mov_imm64(g, base, pick_address(g));
        insn_mem(g, 0, false, "\x0F\x01", 2, below(g, 8) == 5 ? 7 : below(g, 8), base, 0);
        break;
    }
    case 10: /* SLDT STR LLDT LTR VERR VERW (0F 00 /r), LAR LSL, register or memory */
        mov_imm64(g, r, chance(g, 70) ? pick_selector(g) : pick_value(g));
        if (chance(g, 50))
            insn_reg(g, 0, false, "\x0F\x00", 2, below(g, 6), r);
        else
            insn_reg(g, 0, chance(g, 50), chance(g, 50) ? "\x0F\x02" : "\x0F\x03", 2, pick_gpr(g),
                     r);
        break;
    case 11: /* MOV Sreg, r (ES SS DS FS GS) */
    {
        static const unsigned sreg[] = {0, 2, 3, 4, 5};
        mov_imm32(g, r, pick_selector(g));
        insn_reg(g, 0, false, "\x8E", 1, sreg[below(g, 5)], r);
        break;
    }
    case 12:
    case 13: /* POPF of a poisoned image: AC NT TF DF ID RF IOPL */
        b1(g, 0x68);
        le(g, pick_rflags(g), 4);
        BYTES(g, "\x9D");
        if (chance(g, 50)) { /* then something that traps (or a read-back) */
            static const char *after[] = {"\xFA", "\x0F\xA2", "\x9C\x58", "\xEE", "\xCC"};
            static const unsigned after_len[] = {1, 2, 2, 1, 1};
            unsigned k = below(g, 5);
            bn(g, after[k], after_len[k]);
        }
        break;
    case 14: /* LDMXCSR / FLDCW poison, then arithmetic that may raise */
        b1(g, 0x68);
        le(g, chance(g, 80) ? (uint32_t)(rnd(g) & 0xFFBF) : (uint32_t)rnd(g), 4);
        if (chance(g, 50))
            BYTES(g, "\x0F\xAE\x14\x24"); /* ldmxcsr (%rsp) */
        else
            BYTES(g, "\xD9\x2C\x24"); /* fldcw (%rsp) */
        BYTES(g, "\x48\x83\xC4\x08"); /* add $8, %rsp */
        static const char *arith[] = {"\xF3\x0F\x5E\xC1",         "\x66\x0F\x51\xDA",
                                      "\xD9\xEE\xD9\xE8\xDE\xF1", "\xD9\xFA",
                                      "\xF2\x48\x0F\x2C\xC0",     "\x0F\xA2"};
        static const unsigned arith_len[] = {4, 4, 6, 2, 5, 2};
        unsigned k = below(g, 6);
        bn(g, arith[k], arith_len[k]);
        break;
    case 15: /* WRFSBASE / WRGSBASE / RDFSBASE / RDGSBASE, then an FS/GS-relative access */
        mov_imm64(g, 0, chance(g, 30) ? 0 : pick_address(g));
        BYTES(g, "\xF3\x48\x0F\xAE");
        b1(g, (uint8_t)(0xC0 + 8 * below(g, 4)));
        if (chance(g, 70)) {
            b1(g, chance(g, 50) ? 0x64 : 0x65);
            BYTES(g, "\x48");
            b1(g, chance(g, 50) ? 0x8B : 0x89);
            BYTES(g, "\x1C\x25");
            le(g, chance(g, 50) ? 0x28 : below(g, 0x100), 4);
        }
        break;
    case 16: /* far return / IRETQ through a frame we build: selector from the pool */
    {
        uint16_t sel = pick_selector(g);
        if (chance(g, 50)) { /* push sel; push target; lretq */
            b1(g, 0x68);
            le(g, sel, 4);
            b1(g, 0x68);
            le(g, g->next_slot, 4);
            BYTES(g, "\x48\xCB");
        } else { /* mov rsp,rax; push ss; push rax; push rflags; push cs; push rip; iretq */
            BYTES(g, "\x48\x89\xE0");
            b1(g, 0x6A);
            b1(g, chance(g, 80) ? 0x10 : (uint8_t)pick_selector(g));
            BYTES(g, "\x50");
            b1(g, 0x68);
            le(g, pick_rflags(g), 4);
            b1(g, 0x6A);
            b1(g, (uint8_t)sel);
            b1(g, 0x68);
            le(g, g->next_slot, 4);
            BYTES(g, "\x48\xCF");
        }
        break;
    }
    case 17: /* SYSCALL with LSTAR at the next slot (or not) */
        if (chance(g, 70)) {
            mov_imm32(g, 1, 0xC0000082);
            mov_imm32(g, 0, (uint32_t)g->next_slot);
            BYTES(g, "\x31\xD2\x0F\x30"); /* xor edx,edx; wrmsr */
        }
        BYTES(g, "\x0F\x05");
        break;
    case 18: /* XSETBV / XGETBV */
        BYTES(g, "\x31\xC9");
        mov_imm32(g, 0, chance(g, 70) ? (uint32_t)(1 + 2 * below(g, 4)) : (uint32_t)rnd(g));
        BYTES(g, "\x31\xD2");
        bn(g, chance(g, 70) ? "\x0F\x01\xD1" : "\x0F\x01\xD0", 3);
        break;
    case 19: /* FXRSTOR / XRSTOR / FXSAVE / XSAVE from the data area (random contents) */
    {
        BYTES(g, "\xB8\xFF\xFF\xFF\xFF\xBA\xFF\xFF\xFF\xFF"); /* eax = edx = -1 */
        uint64_t a = chance(g, 60) ? (IMG(DATA_OFFSET) + 64 * below(g, 128)) : pick_address(g);
        mov_imm64(g, 3, a);
        static const char *x[] = {"\x48\x0F\xAE\x0B", "\x0F\xAE\x2B", "\x48\x0F\xAE\x03",
                                  "\x0F\xAE\x23", "\x0F\xAE\x33"};
        static const unsigned xl[] = {4, 3, 4, 3, 3};
        unsigned k = below(g, 5);
        bn(g, x[k], xl[k]);
        break;
    }
    case 20: /* AVX / AVX-512 on live vector registers */
    {
        static const char *v[] = {"\xC5\xED\xEF\xD9",         "\xC5\xEC\x58\xD9",
                                  "\x62\xF1\xED\x48\xD4\xCB", "\x62\xA1\xED\x40\xEF\xD9",
                                  "\xC4\xE1\xFB\x92\xC8",     "\xC5\xFE\x6F\x08",
                                  "\x62\xF1\xFE\x48\x6F\x28", "\xC5\xFE\x7F\x08"};
        static const unsigned vl[] = {4, 4, 6, 6, 5, 4, 6, 4};
        unsigned k = below(g, 8);
        if (k >= 5)
            mov_imm64(g, 0,
                      chance(g, 70) ? IMG(DATA_OFFSET) + 32 * below(g, 256) : pick_address(g));
        else
            mov_imm64(g, 0, rnd(g));
        bn(g, v[k], vl[k]);
        break;
    }
    case 21: /* jump / call into anything */
        mov_imm64(g, 0, chance(g, 30) ? g->next_slot : pick_address(g));
        bn(g, chance(g, 50) ? "\xFF\xE0" : "\xFF\xD0", 2);
        break;
    case 22: /* a GPR or RSP gets a value from the pool */
        mov_imm64(g, chance(g, 15) ? 4 : r, pick_value(g));
        break;
    case 23: /* SWAPGS, then GS-relative */
        BYTES(g, "\x0F\x01\xF8\x65\x48\x8B\x04\x25\x00\x00\x00\x00");
        break;
    default: /* memory operand at an interesting address (MMIO often) */
        gen_memory_op(g, pick_address(g));
        break;
    }
}

/* ---- random slots ---- */

static void gen_random(struct gen *g, const ZydisDecoder *dec)
{
    uint8_t buf[15];
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rnd(g);
    if (chance(g, 30)) { /* a legacy prefix or REX in front, as real code has */
        static const uint8_t pre[] = {0x66, 0xF3, 0xF2, 0xF0, 0x64, 0x65, 0x48, 0x41, 0x0F};
        buf[0] = pre[below(g, sizeof(pre))];
    }
    ZydisDecodedInstruction insn;
    if (ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(dec, NULL, buf, sizeof(buf), &insn)))
        bn(g, (const char *)buf, insn.length);
    else if (chance(g, 20))
        bn(g, (const char *)buf, 1 + below(g, 15)); /* garbage: #UD, or whatever it decodes to */
    else
        gen_memory_op(g, pick_address(g)); /* keep the slot useful */
}

/* ---- fixed parts: IDT, stubs, handler, prologue, epilogue ---- */

static bool vector_has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

static void put_gate(uint8_t *idt, unsigned vector, uint64_t handler)
{
    uint8_t *e = idt + 16 * vector;
    memset(e, 0, 16);
    e[0] = (uint8_t)handler;
    e[1] = (uint8_t)(handler >> 8);
    e[2] = GUEST_SEL_CODE64;
    e[5] = 0x8E; /* present, DPL 0, 64-bit interrupt gate (SDM vol. 3A 6.14.1) */
    e[6] = (uint8_t)(handler >> 16);
    e[7] = (uint8_t)(handler >> 24);
}

static void emit_handlers(struct gen *g, uint64_t epilogue)
{
    struct chaos_guest *c = g->guest;
    uint64_t common = IMG(HANDLER_OFFSET);
    for (unsigned v = 0; v < 256; v++) {
        uint64_t stub = IMG(STUBS_OFFSET) + 16 * v;
        put_gate(c->image + IDT_OFFSET, v, stub);
        g->at = STUBS_OFFSET + 16 * v;
        if (v == CHAOS_TIMER_VECTOR) {
            BYTES(g, "\x48\xCF"); /* iretq: the tick interrupted the instruction at RIP */
            continue;
        }
        if (!vector_has_error_code(v))
            BYTES(g, "\x6A\x00");
        b1(g, 0x68);
        le(g, v, 4);
        b1(g, 0xE9);
        le(g, common - (IMG(g->at) + 4), 4);
    }
    /* frame: [rsp] vector, +8 error, +16 RIP, +24 CS, +32 RFLAGS, +40 RSP, +48 SS */
    uint64_t counter = IMG(COUNTER_OFFSET);
    g->at = HANDLER_OFFSET;
    BYTES(g, "\x50");             /* push rax */
    BYTES(g, "\x48\xFF\x04\x25"); /* incq counter */
    le(g, counter, 4);
    BYTES(g, "\x48\x83\x3C\x25"); /* cmpq $LIMIT, counter */
    le(g, counter, 4);
    b1(g, CHAOS_HANDLER_LIMIT);
    BYTES(g, "\x73\x00"); /* jae give_up */
    size_t to_give_up = g->at;
    BYTES(g, "\x48\x8B\x44\x24\x18"); /* mov 24(%rsp), %rax: the interrupted RIP */
    BYTES(g, "\x48\x2D");             /* sub $body, %rax */
    le(g, IMG(CHAOS_BODY_OFFSET), 4);
    BYTES(g, "\x48\x3D"); /* cmp $body_size, %rax */
    le(g, (uint64_t)c->slots * CHAOS_SLOT, 4);
    BYTES(g, "\x73\x00"); /* jae to_epilogue (outside the body, unsigned) */
    size_t to_epilogue = g->at;
    BYTES(g, "\x48\x83\xE0\xE0"); /* and $-32, %rax */
    BYTES(g, "\x48\x05");         /* add $(body + 32), %rax: the next slot */
    le(g, IMG(CHAOS_BODY_OFFSET) + CHAOS_SLOT, 4);
    BYTES(g, "\xEB\x00"); /* jmp store */
    size_t to_store = g->at;
    c->image[to_epilogue - 1] = (uint8_t)(g->at - to_epilogue);
    BYTES(g, "\x48\xC7\xC0"); /* to_epilogue: mov $epilogue, %rax */
    le(g, epilogue, 4);
    c->image[to_store - 1] = (uint8_t)(g->at - to_store);
    BYTES(g, "\x48\x89\x44\x24\x18"); /* store: mov %rax, 24(%rsp) */
    BYTES(g, "\x58");                 /* pop rax */
    BYTES(g, "\x48\x83\xC4\x10");     /* add $16, %rsp */
    BYTES(g, "\x48\xCF");             /* iretq */
    c->image[to_give_up - 1] = (uint8_t)(g->at - to_give_up);
    b1(g, 0xB0); /* give_up: mov $CHAOS_EXIT_GAVE_UP, %al; out %al, $0xf4; hlt; jmp . */
    b1(g, CHAOS_EXIT_GAVE_UP);
    BYTES(g, "\xE6\xF4\xF4\xEB\xFE");
    /* IDTR image */
    uint8_t *idtr = c->image + IDTR_OFFSET;
    idtr[0] = 0xFF;
    idtr[1] = 0x0F; /* limit 4095 */
    uint64_t base = IMG(IDT_OFFSET);
    memcpy(idtr + 2, &base, 8);
}

static void emit_prologue(struct gen *g)
{
    struct chaos_guest *c = g->guest;
    g->at = 0;
    if (c->own_idt) {
        BYTES(g, "\x0F\x01\x1C\x25"); /* lidt abs32 */
        le(g, IMG(IDTR_OFFSET), 4);
    }
    if (c->timer) {
        mov_imm32(g, 0, c->own_idt ? CHAOS_TIMER_VECTOR : (uint32_t)(32 + below(g, 200)));
        mov_imm32(g, 2, PORT_TIMER_VECTOR);
        BYTES(g, "\xEF");
        mov_imm32(g, 0, 20 + below(g, 2000)); /* period in microseconds */
        mov_imm32(g, 2, PORT_TIMER_PERIOD);
        BYTES(g, "\xEF");
        if (chance(g, 70))
            BYTES(g, "\xFB"); /* sti */
    }
    for (unsigned r = 0; r < 16; r++)
        if (r != 4)
            mov_imm64(g, r, pick_value(g));
    b1(g, 0xE9); /* jmp body */
    le(g, IMG(CHAOS_BODY_OFFSET) - (IMG(g->at) + 4), 4);
}

void chaos_generate(uint64_t seed, struct chaos_guest *c)
{
    memset(c, 0, sizeof(*c));
    struct gen g = {.guest = c, .rng = seed ? seed : 1};
    c->seed = seed;
    c->kind = chance(&g, 65) ? CHAOS_PRIVILEGED : CHAOS_RANDOM;
    c->own_idt = chance(&g, 60);
    c->timer = chance(&g, 40);
    c->slots = 8 + below(&g, CHAOS_MAX_SLOTS - 8);
    uint64_t epilogue = IMG(CHAOS_BODY_OFFSET) + (uint64_t)c->slots * CHAOS_SLOT;

    for (size_t i = 0; i < DATA_SIZE; i += 8) {
        uint64_t v = rnd(&g);
        memcpy(c->image + DATA_OFFSET + i, &v, 8);
    }
    emit_handlers(&g, epilogue);
    emit_prologue(&g);

    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    for (unsigned s = 0; s < c->slots; s++) {
        size_t start = CHAOS_BODY_OFFSET + (size_t)s * CHAOS_SLOT;
        g.next_slot = IMG(start + CHAOS_SLOT);
        if (s == 0 && chance(&g, 50)) { /* ymm0-ymm3 from the data area (AVX hosts) */
            memset(c->image + start, 0x90, CHAOS_SLOT);
            g.at = start;
            mov_imm64(&g, 0, IMG(DATA_OFFSET));
            for (unsigned i = 0; i < 4; i++) { /* vmovdqu 32*i(%rax), %ymmi */
                BYTES(&g, "\xC5\xFE\x6F");
                b1(&g, (uint8_t)(0x40 | i << 3));
                b1(&g, (uint8_t)(32 * i));
            }
            continue;
        }
        do { /* a draw longer than a slot is drawn again */
            memset(c->image + start, 0x90, CHAOS_SLOT); /* NOP padding */
            g.at = start;
            if (c->kind == CHAOS_RANDOM || chance(&g, 15))
                gen_random(&g, &dec);
            else
                gen_privileged(&g);
        } while (g.at > start + CHAOS_SLOT);
    }
    g.at = (size_t)(epilogue - GUEST_IMAGE_BASE);
    b1(&g, 0xB0); /* mov $CHAOS_EXIT_END, %al; out %al, $0xf4 */
    b1(&g, CHAOS_EXIT_END);
    BYTES(&g, "\xE6\xF4\xF4\xEB\xFE");
    c->size = g.at;
}
