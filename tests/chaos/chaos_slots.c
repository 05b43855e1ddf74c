/* chaos_slots.c - the random body of a chaos guest: privileged-biased templates and random
 * bytes, one slot each (see chaos_gen.h). Encodings from the Intel SDM vol. 2 (opcode maps in
 * appendix A; ModRM/SIB/REX in 2.1-2.2, VEX in 2.3, EVEX in 2.7). */
#include <string.h>

#include "chaos_emit.h"

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
    case 17: { /* the upper half of an exception gate of the guest's own IDT (mostly of the
                * vectors random code raises: #DE #DB #BP #UD #GP #PF): a store there can make
                * its target non-canonical; delivery must raise #GP, never load it */
        static const uint8_t raised[] = {0, 1, 3, 6, 13, 14};
        unsigned v = chance(g, 75) ? raised[below(g, sizeof(raised))] : below(g, 32);
        return IMG(IDT_OFFSET) + 16 * v + 8 + below(g, 2) * 4;
    }
    default:
        return rnd(g);
    }
}

uint64_t chaos_pick_value(struct gen *g)
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

void chaos_slot_privileged(struct gen *g)
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
        mov_imm32(g, 0, (uint32_t)chaos_pick_value(g));
        mov_imm32(g, 2, (uint32_t)chaos_pick_value(g));
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
            uint64_t v =
                chance(g, 50) ? base[below(g, 5)] ^ (1ULL << below(g, 32)) : chaos_pick_value(g);
            mov_imm64(g, r, v);
            insn_reg(g, 0, false, "\x0F\x22", 2, cr, r);
        } else
            insn_reg(g, 0, false, "\x0F\x20", 2, cr, r);
        break;
    }
    case 5: /* MOV DRn */
        if (chance(g, 50)) {
            mov_imm64(g, r, chaos_pick_value(g));
            insn_reg(g, 0, false, "\x0F\x23", 2, below(g, 8), r);
        } else
            insn_reg(g, 0, false, "\x0F\x21", 2, below(g, 8), r);
        break;
    case 6: { /* IN/OUT with an immediate or DX port */
        uint16_t port = pick_port(g);
        mov_imm32(g, 0, (uint32_t)chaos_pick_value(g));
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
        mov_imm64(g, 1, below(g, 3) ? below(g, 64) : chaos_pick_value(g));
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
        mov_imm64(g, r, chance(g, 70) ? pick_selector(g) : chaos_pick_value(g));
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
        mov_imm64(g, chance(g, 15) ? 4 : r, chaos_pick_value(g));
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

void chaos_slot_random(struct gen *g, const ZydisDecoder *dec)
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
