/* dbt_diff.c - differential test of dbt (and trap_emulate) against native execution.
 *
 * A random sequence of innocuous instructions, built with the Zydis encoder, runs once natively
 * at its guest address and once as a guest on each tested backend; the whole state it can
 * change must come out the same:
 *
 *   - the 16 GPRs (RSP aside: host and guest stacks differ) and the arithmetic flags and DF
 *     (bits an instruction leaves undefined masked, per Zydis's flag tables);
 *   - the x87 unit (control, status and tag words, ST0-ST7: FXSAVE, without the last-instruction
 *     pointers, which name host addresses under dbt), MXCSR and xmm0-15, and the upper halves
 *     of ymm0-15 where the host has AVX;
 *   - the scratch memory the sequence reads and writes.
 *
 * Instructions: integer ALU in every width, shifts and rotates, flag readers, memory operands
 * on the scratch area, RIP-relative loads, short string operations, balanced PUSH/POP; SSE to
 * SSE4.1 arithmetic, logic, shuffles, conversions, compares that set EFLAGS, moves between
 * GPRs, vector registers and memory; AVX/AVX2/FMA on ymm (where the host has them), VZEROUPPER;
 * x87 loads, stores, arithmetic, exchanges, FCOMI, FCMOV, FNSTSW. The state around them
 * (vector registers, x87 stack, rounding modes in MXCSR and the x87 control word; every
 * exception masked) is random too. Sequences cross what makes dbt leave translated code:
 * block boundaries (forward Jcc, JMP to the next instruction: fresh translations), callouts
 * that continue (CPUID, its result then overwritten so that native and virtual CPUID compare
 * equal) and callouts that exit to the VMM (OUT to the scratch port). Natively the OUT and
 * the CPUID are two-byte NOP stand-ins, as they cannot run at CPL 3 / return the same values.
 *
 * usage: dbt_diff [--count N] [--seed S] [--length L] [--backend dbt|trap_emulate]...
 *                 [--no-vector] [--no-x87] [--no-callouts]
 *        exit 0 = all equal, 1 = a difference (or too little coverage), 77 = no backend
 * CI (ctest) runs thousands of sequences; --count 30000 --length 40 is over a million
 * instructions.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "emu/emu.h"
#include "vmm/backend.h"
#include "vmm/guest_layout.h"
#include "vmm/host_x87.h"
#include "vmm/platform.h"

#define CODE GUEST_IMAGE_BASE
#define SCRATCH (GUEST_RAM_BASE + 0x300000) /* RBP while the sequence runs */
#define SCRATCH_SIZE 4096                   /* what the body's memory operands address */
#define IN_YMM 0x1000                       /* offsets from SCRATCH: the state loaded ... */
#define IN_FX 0x1200
#define OUT_FX 0x1400 /* ... and the state stored at the end */
#define OUT_YMM 0x1600
#define AREA_SIZE 0x1800     /* all compared */
#define ARITH_FLAGS 0xCD5ULL /* CF PF AF ZF SF OF */
#define DF_FLAG 0x400ULL
#define PORT_SCRATCH_LO (PORT_SCRATCH & 0xff)
#define PORT_SCRATCH_HI (PORT_SCRATCH >> 8)

struct diff_regs {
    uint64_t gpr[16];
    uint64_t rflags;
};
void diff_native_run(struct diff_regs *io, void *code);
extern uint8_t diff_have_avx;

static struct {
    bool sse3, ssse3, sse41, avx, avx2, fma;
} host;

enum insn_kind { K_INT, K_SSE, K_AVX, K_X87, K_CALLOUT, K_BOUNDARY, K_KINDS };
static const char *const kind_name[K_KINDS] = {"integer", "sse",     "avx",
                                               "x87",     "callout", "block boundary"};

struct gen {
    uint8_t code[32768];   /* as the backends run it */
    uint8_t native[32768]; /* the same with NOP stand-ins for OUT and CPUID */
    size_t n;
    uint64_t rng;
    uint32_t undefined; /* flags whose final value is undefined */
    bool vector, x87, callouts;
    unsigned count[K_KINDS]; /* instructions generated, per kind */
};

static uint64_t rnd(struct gen *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}
#define PICK(g, array) (array)[rnd(g) % (sizeof(array) / sizeof((array)[0]))]

/* GPRs the body may write: everything but RSP and RBP (RBP holds the scratch base). */
static const unsigned writable[] = {0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static ZydisRegister gpr(unsigned idx, unsigned width)
{
    switch (width) {
    case 64:
        return (ZydisRegister)(ZYDIS_REGISTER_RAX + idx);
    case 32:
        return (ZydisRegister)(ZYDIS_REGISTER_EAX + idx);
    case 16:
        return (ZydisRegister)(ZYDIS_REGISTER_AX + idx);
    default:
        return (ZydisRegister)(ZYDIS_REGISTER_AL + (idx < 4 ? idx : idx + 4));
    }
}

static unsigned pick_reg(struct gen *g)
{
    return PICK(g, writable);
}

static unsigned pick_width(struct gen *g)
{
    static const unsigned w[] = {8, 16, 32, 64, 64, 32};
    return PICK(g, w);
}

static void req(ZydisEncoderRequest *r, ZydisMnemonic m, unsigned nops)
{
    memset(r, 0, sizeof(*r));
    r->machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
    r->mnemonic = m;
    r->operand_count = (ZyanU8)nops;
}

static void op_reg(ZydisEncoderOperand *o, ZydisRegister reg)
{
    o->type = ZYDIS_OPERAND_TYPE_REGISTER;
    o->reg.value = reg;
}

static void op_imm(ZydisEncoderOperand *o, int64_t v)
{
    o->type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
    o->imm.s = v;
}

static void op_mem(ZydisEncoderOperand *o, ZydisRegister base, int64_t disp, unsigned bytes)
{
    o->type = ZYDIS_OPERAND_TYPE_MEMORY;
    o->mem.base = base;
    o->mem.displacement = disp;
    o->mem.size = (ZyanU16)bytes;
}

/* Encode into buf; returns the length, 0 if Zydis refuses the combination. */
static size_t encode(const ZydisEncoderRequest *r, uint8_t *buf)
{
    ZyanUSize len = ZYDIS_MAX_INSTRUCTION_LENGTH;
    return ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(r, buf, &len)) ? len : 0;
}

static int64_t imm_for(struct gen *g, unsigned width)
{
    int64_t v = (int64_t)rnd(g);
    return width == 8 ? (int8_t)v : width == 16 ? (int16_t)v : (int32_t)v;
}

/* A displacement into the scratch area, aligned so that any access of up to 32 bytes fits
 * (and legacy SSE's 16-byte alignment holds). */
static int64_t scratch_disp(struct gen *g)
{
    return (int64_t)(rnd(g) % (SCRATCH_SIZE / 32)) * 32;
}

/* ---- integer ------------------------------------------------------------------------------ */

static size_t random_int(struct gen *g, uint8_t *buf, uint64_t at)
{
    static const ZydisMnemonic alu[] = {
        ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_SUB, ZYDIS_MNEMONIC_AND,
        ZYDIS_MNEMONIC_OR,  ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_ADC,
        ZYDIS_MNEMONIC_SBB, ZYDIS_MNEMONIC_CMP, ZYDIS_MNEMONIC_TEST};
    static const ZydisMnemonic shifts[] = {
        ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SHR, ZYDIS_MNEMONIC_SAR, ZYDIS_MNEMONIC_ROL,
        ZYDIS_MNEMONIC_ROR, ZYDIS_MNEMONIC_RCL, ZYDIS_MNEMONIC_RCR};
    static const ZydisMnemonic unary[] = {ZYDIS_MNEMONIC_INC, ZYDIS_MNEMONIC_DEC,
                                          ZYDIS_MNEMONIC_NEG, ZYDIS_MNEMONIC_NOT};
    static const ZydisMnemonic bits[] = {ZYDIS_MNEMONIC_BT, ZYDIS_MNEMONIC_BTS, ZYDIS_MNEMONIC_BTR,
                                         ZYDIS_MNEMONIC_BTC};
    static const ZydisMnemonic setcc[] = {ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETZ,
                                          ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETO,
                                          ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETS};
    static const ZydisMnemonic cmov[] = {ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVZ,
                                         ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNBE};
    ZydisEncoderRequest r;
    unsigned w = pick_width(g), a = pick_reg(g), b = pick_reg(g);
    int64_t disp = scratch_disp(g);
    switch (rnd(g) % 14) {
    case 0: /* ALU reg, reg */
        req(&r, PICK(g, alu), 2);
        op_reg(&r.operands[0], gpr(a, w));
        op_reg(&r.operands[1], gpr(b, w));
        break;
    case 1: /* ALU reg, imm */
        req(&r, PICK(g, alu), 2);
        op_reg(&r.operands[0], gpr(a, w));
        op_imm(&r.operands[1], imm_for(g, w));
        break;
    case 2: /* ALU reg, [rbp + disp] or [rbp + disp], reg */
        req(&r, alu[rnd(g) % 8], 2);
        if (rnd(g) & 1) {
            op_reg(&r.operands[0], gpr(a, w));
            op_mem(&r.operands[1], ZYDIS_REGISTER_RBP, disp, w / 8);
        } else {
            op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp, w / 8);
            op_reg(&r.operands[1], gpr(a, w));
        }
        break;
    case 3: /* shift/rotate by imm or CL */
        req(&r, PICK(g, shifts), 2);
        op_reg(&r.operands[0], gpr(a, w));
        if (rnd(g) & 1)
            op_imm(&r.operands[1], (int64_t)(1 + rnd(g) % (w - 1)));
        else
            op_reg(&r.operands[1], ZYDIS_REGISTER_CL);
        break;
    case 4:
        req(&r, PICK(g, unary), 1);
        op_reg(&r.operands[0], gpr(a, w));
        break;
    case 5: /* IMUL reg, reg */
        req(&r, ZYDIS_MNEMONIC_IMUL, 2);
        w = w == 8 ? 32 : w;
        op_reg(&r.operands[0], gpr(a, w));
        op_reg(&r.operands[1], gpr(b, w));
        break;
    case 6: /* MOV in all forms */
        req(&r, ZYDIS_MNEMONIC_MOV, 2);
        switch (rnd(g) % 4) {
        case 0:
            op_reg(&r.operands[0], gpr(a, 64));
            op_imm(&r.operands[1], (int64_t)rnd(g));
            break;
        case 1:
            op_reg(&r.operands[0], gpr(a, w));
            op_reg(&r.operands[1], gpr(b, w));
            break;
        case 2:
            op_reg(&r.operands[0], gpr(a, w));
            op_mem(&r.operands[1], ZYDIS_REGISTER_RBP, disp, w / 8);
            break;
        default:
            op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp, w / 8);
            op_reg(&r.operands[1], gpr(a, w));
            break;
        }
        break;
    case 7: /* MOVZX / MOVSX from 8 or 16 bits */
        req(&r, rnd(g) & 1 ? ZYDIS_MNEMONIC_MOVZX : ZYDIS_MNEMONIC_MOVSX, 2);
        op_reg(&r.operands[0], gpr(a, 64));
        op_reg(&r.operands[1], gpr(b, rnd(g) & 1 ? 8 : 16));
        break;
    case 8: /* LEA reg, [rbp + reg*scale + disp]: the memory operand is sized like the result */
        req(&r, ZYDIS_MNEMONIC_LEA, 2);
        op_reg(&r.operands[0], gpr(a, 64));
        op_mem(&r.operands[1], ZYDIS_REGISTER_RBP, (int32_t)rnd(g), 8);
        r.operands[1].mem.index = gpr(b, 64);
        r.operands[1].mem.scale = (ZyanU8)(1u << (rnd(g) % 4));
        break;
    case 9:
        req(&r, ZYDIS_MNEMONIC_XCHG, 2);
        op_reg(&r.operands[0], gpr(a, w));
        op_reg(&r.operands[1], gpr(b, w));
        break;
    case 10: /* BT family */
        req(&r, PICK(g, bits), 2);
        w = w == 8 ? 32 : w;
        op_reg(&r.operands[0], gpr(a, w));
        op_imm(&r.operands[1], (int64_t)(rnd(g) % w));
        break;
    case 11: /* SETcc / CMOVcc */
        if (rnd(g) & 1) {
            req(&r, PICK(g, setcc), 1);
            op_reg(&r.operands[0], gpr(a, 8));
        } else {
            req(&r, PICK(g, cmov), 2);
            w = w == 8 ? 64 : w;
            op_reg(&r.operands[0], gpr(a, w));
            op_reg(&r.operands[1], gpr(b, w));
        }
        break;
    case 12: { /* RIP-relative load from the scratch area */
        req(&r, ZYDIS_MNEMONIC_MOV, 2);
        op_reg(&r.operands[0], gpr(a, 64));
        op_mem(&r.operands[1], ZYDIS_REGISTER_RIP, 0, 8);
        uint8_t tmp[ZYDIS_MAX_INSTRUCTION_LENGTH];
        size_t len = encode(&r, tmp);
        if (!len)
            return 0;
        r.operands[1].mem.displacement = (int64_t)(SCRATCH + (uint64_t)disp) - (int64_t)(at + len);
        break;
    }
    default:
        req(&r, ZYDIS_MNEMONIC_BSWAP, 1);
        op_reg(&r.operands[0], gpr(a, rnd(g) & 1 ? 64 : 32));
        break;
    }
    return encode(&r, buf);
}

/* ---- SSE ---------------------------------------------------------------------------------- */

static ZydisRegister xmm(unsigned i)
{
    return (ZydisRegister)(ZYDIS_REGISTER_XMM0 + i);
}
static ZydisRegister ymm(unsigned i)
{
    return (ZydisRegister)(ZYDIS_REGISTER_YMM0 + i);
}

static size_t random_sse(struct gen *g, uint8_t *buf)
{
    static const ZydisMnemonic binary[] = {
        ZYDIS_MNEMONIC_ADDPS,     ZYDIS_MNEMONIC_ADDPD,    ZYDIS_MNEMONIC_SUBPS,
        ZYDIS_MNEMONIC_SUBPD,     ZYDIS_MNEMONIC_MULPS,    ZYDIS_MNEMONIC_MULPD,
        ZYDIS_MNEMONIC_DIVPS,     ZYDIS_MNEMONIC_DIVPD,    ZYDIS_MNEMONIC_MINPS,
        ZYDIS_MNEMONIC_MAXPD,     ZYDIS_MNEMONIC_ANDPS,    ZYDIS_MNEMONIC_ANDNPD,
        ZYDIS_MNEMONIC_ORPS,      ZYDIS_MNEMONIC_XORPD,    ZYDIS_MNEMONIC_ADDSS,
        ZYDIS_MNEMONIC_ADDSD,     ZYDIS_MNEMONIC_MULSS,    ZYDIS_MNEMONIC_DIVSD,
        ZYDIS_MNEMONIC_SQRTPS,    ZYDIS_MNEMONIC_SQRTSD,   ZYDIS_MNEMONIC_PADDB,
        ZYDIS_MNEMONIC_PADDW,     ZYDIS_MNEMONIC_PADDD,    ZYDIS_MNEMONIC_PADDQ,
        ZYDIS_MNEMONIC_PSUBB,     ZYDIS_MNEMONIC_PSUBUSB,  ZYDIS_MNEMONIC_PMULLW,
        ZYDIS_MNEMONIC_PMULUDQ,   ZYDIS_MNEMONIC_PMADDWD,  ZYDIS_MNEMONIC_PAND,
        ZYDIS_MNEMONIC_PANDN,     ZYDIS_MNEMONIC_POR,      ZYDIS_MNEMONIC_PXOR,
        ZYDIS_MNEMONIC_PCMPEQB,   ZYDIS_MNEMONIC_PCMPGTD,  ZYDIS_MNEMONIC_PUNPCKLBW,
        ZYDIS_MNEMONIC_PUNPCKHDQ, ZYDIS_MNEMONIC_PACKSSWB, ZYDIS_MNEMONIC_PAVGB,
        ZYDIS_MNEMONIC_PMINUB,    ZYDIS_MNEMONIC_PMAXSW,   ZYDIS_MNEMONIC_PSADBW,
        ZYDIS_MNEMONIC_UNPCKLPS,  ZYDIS_MNEMONIC_CVTDQ2PS, ZYDIS_MNEMONIC_CVTPS2DQ,
        ZYDIS_MNEMONIC_CVTTPS2DQ, ZYDIS_MNEMONIC_CVTPD2PS, ZYDIS_MNEMONIC_CVTPS2PD,
        ZYDIS_MNEMONIC_MOVAPS,    ZYDIS_MNEMONIC_MOVDQA,   ZYDIS_MNEMONIC_MOVSS,
        ZYDIS_MNEMONIC_MOVSD,     ZYDIS_MNEMONIC_PSLLD,    ZYDIS_MNEMONIC_PSRAW};
    static const ZydisMnemonic ssse3_41[] = {ZYDIS_MNEMONIC_PSHUFB,   ZYDIS_MNEMONIC_PABSD,
                                             ZYDIS_MNEMONIC_PMULLD,   ZYDIS_MNEMONIC_PMAXSD,
                                             ZYDIS_MNEMONIC_PMINUD,   ZYDIS_MNEMONIC_PHADDW,
                                             ZYDIS_MNEMONIC_PMOVSXBW, ZYDIS_MNEMONIC_PCMPEQQ};
    static const ZydisMnemonic with_imm[] = {ZYDIS_MNEMONIC_PSHUFD,  ZYDIS_MNEMONIC_SHUFPS,
                                             ZYDIS_MNEMONIC_CMPPS,   ZYDIS_MNEMONIC_CMPSD,
                                             ZYDIS_MNEMONIC_PSHUFLW, ZYDIS_MNEMONIC_SHUFPD};
    static const ZydisMnemonic shift_imm[] = {ZYDIS_MNEMONIC_PSLLD, ZYDIS_MNEMONIC_PSRLQ,
                                              ZYDIS_MNEMONIC_PSRAW, ZYDIS_MNEMONIC_PSLLDQ,
                                              ZYDIS_MNEMONIC_PSRLDQ};
    static const ZydisMnemonic imm41[] = {ZYDIS_MNEMONIC_BLENDPS, ZYDIS_MNEMONIC_ROUNDPS,
                                          ZYDIS_MNEMONIC_PALIGNR, ZYDIS_MNEMONIC_PBLENDW,
                                          ZYDIS_MNEMONIC_DPPS};
    static const ZydisMnemonic flags[] = {ZYDIS_MNEMONIC_COMISS, ZYDIS_MNEMONIC_UCOMISD,
                                          ZYDIS_MNEMONIC_COMISD};
    ZydisEncoderRequest r;
    unsigned a = (unsigned)(rnd(g) % 16), b = (unsigned)(rnd(g) % 16), c = pick_reg(g);
    int64_t disp = scratch_disp(g);
    switch (rnd(g) % 10) {
    case 0:
    case 1: /* binary op reg, reg */
        req(&r, PICK(g, binary), 2);
        op_reg(&r.operands[0], xmm(a));
        op_reg(&r.operands[1], xmm(b));
        break;
    case 2: /* binary op reg, [mem] (16-byte aligned) */
        req(&r, PICK(g, binary), 2);
        op_reg(&r.operands[0], xmm(a));
        op_mem(&r.operands[1], ZYDIS_REGISTER_RBP, disp, 16);
        break;
    case 3:
        if (!host.ssse3 || !host.sse41)
            return 0;
        req(&r, PICK(g, ssse3_41), 2);
        op_reg(&r.operands[0], xmm(a));
        op_reg(&r.operands[1], xmm(b));
        break;
    case 4: /* with an immediate */
        if (rnd(g) & 1) {
            req(&r, PICK(g, with_imm), 3);
            op_reg(&r.operands[0], xmm(a));
            op_reg(&r.operands[1], xmm(b));
            op_imm(&r.operands[2], (int64_t)(rnd(g) & (r.mnemonic == ZYDIS_MNEMONIC_CMPPS ||
                                                               r.mnemonic == ZYDIS_MNEMONIC_CMPSD
                                                           ? 7
                                                           : 0xff)));
        } else if (host.sse41) {
            req(&r, PICK(g, imm41), 3);
            op_reg(&r.operands[0], xmm(a));
            op_reg(&r.operands[1], xmm(b));
            op_imm(&r.operands[2],
                   (int64_t)(rnd(g) & (r.mnemonic == ZYDIS_MNEMONIC_ROUNDPS ? 7 : 0xff)));
        } else {
            return 0;
        }
        break;
    case 5: /* shift by an immediate */
        req(&r, PICK(g, shift_imm), 2);
        op_reg(&r.operands[0], xmm(a));
        op_imm(&r.operands[1], (int64_t)(rnd(g) % 20));
        break;
    case 6: /* GPR <-> xmm */
        switch (rnd(g) % 7) {
        case 0:
            req(&r, ZYDIS_MNEMONIC_MOVQ, 2);
            op_reg(&r.operands[0], xmm(a));
            op_reg(&r.operands[1], gpr(c, 64));
            break;
        case 1:
            req(&r, ZYDIS_MNEMONIC_MOVD, 2);
            op_reg(&r.operands[0], gpr(c, 32));
            op_reg(&r.operands[1], xmm(a));
            break;
        case 2:
            req(&r, ZYDIS_MNEMONIC_CVTSI2SD, 2);
            op_reg(&r.operands[0], xmm(a));
            op_reg(&r.operands[1], gpr(c, 64));
            break;
        case 3:
            req(&r, rnd(g) & 1 ? ZYDIS_MNEMONIC_CVTTSD2SI : ZYDIS_MNEMONIC_CVTSD2SI, 2);
            op_reg(&r.operands[0], gpr(c, 64));
            op_reg(&r.operands[1], xmm(a));
            break;
        case 4:
            req(&r, rnd(g) & 1 ? ZYDIS_MNEMONIC_PMOVMSKB : ZYDIS_MNEMONIC_MOVMSKPS, 2);
            op_reg(&r.operands[0], gpr(c, 32));
            op_reg(&r.operands[1], xmm(a));
            break;
        case 5:
            req(&r, ZYDIS_MNEMONIC_PEXTRW, 3);
            op_reg(&r.operands[0], gpr(c, 32));
            op_reg(&r.operands[1], xmm(a));
            op_imm(&r.operands[2], (int64_t)(rnd(g) % 8));
            break;
        default:
            req(&r, ZYDIS_MNEMONIC_PINSRW, 3);
            op_reg(&r.operands[0], xmm(a));
            op_reg(&r.operands[1], gpr(c, 32));
            op_imm(&r.operands[2], (int64_t)(rnd(g) % 8));
            break;
        }
        break;
    case 7: /* compares that set EFLAGS */
        if (host.sse41 && rnd(g) % 3 == 0) {
            req(&r, ZYDIS_MNEMONIC_PTEST, 2);
        } else {
            req(&r, PICK(g, flags), 2);
        }
        op_reg(&r.operands[0], xmm(a));
        op_reg(&r.operands[1], xmm(b));
        break;
    case 8: /* unaligned moves to and from memory */
        req(&r, rnd(g) & 1 ? ZYDIS_MNEMONIC_MOVDQU : ZYDIS_MNEMONIC_MOVUPS, 2);
        if (rnd(g) & 1) {
            op_reg(&r.operands[0], xmm(a));
            op_mem(&r.operands[1], ZYDIS_REGISTER_RBP, disp + (int64_t)(rnd(g) % 16), 16);
        } else {
            op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp + (int64_t)(rnd(g) % 16), 16);
            op_reg(&r.operands[1], xmm(a));
        }
        break;
    default: /* MXCSR round trip through memory: rounding mode and sticky flags survive */
        req(&r, ZYDIS_MNEMONIC_STMXCSR, 1);
        op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp, 4);
        break;
    }
    return encode(&r, buf);
}

/* ---- AVX ---------------------------------------------------------------------------------- */

static size_t random_avx(struct gen *g, uint8_t *buf)
{
    if (!host.avx)
        return 0;
    static const ZydisMnemonic three[] = {ZYDIS_MNEMONIC_VADDPS,    ZYDIS_MNEMONIC_VMULPD,
                                          ZYDIS_MNEMONIC_VSUBPS,    ZYDIS_MNEMONIC_VXORPS,
                                          ZYDIS_MNEMONIC_VANDPD,    ZYDIS_MNEMONIC_VMINPS,
                                          ZYDIS_MNEMONIC_VMAXPD,    ZYDIS_MNEMONIC_VDIVPS,
                                          ZYDIS_MNEMONIC_VUNPCKHPS, ZYDIS_MNEMONIC_VADDSUBPD};
    static const ZydisMnemonic three_avx2[] = {
        ZYDIS_MNEMONIC_VPADDD,  ZYDIS_MNEMONIC_VPSUBQ,   ZYDIS_MNEMONIC_VPMULLD,
        ZYDIS_MNEMONIC_VPXOR,   ZYDIS_MNEMONIC_VPCMPEQB, ZYDIS_MNEMONIC_VPSHUFB,
        ZYDIS_MNEMONIC_VPMAXUB, ZYDIS_MNEMONIC_VPSRLVD,  ZYDIS_MNEMONIC_VPERMD};
    static const ZydisMnemonic two[] = {ZYDIS_MNEMONIC_VSQRTPD, ZYDIS_MNEMONIC_VCVTDQ2PS,
                                        ZYDIS_MNEMONIC_VMOVAPS, ZYDIS_MNEMONIC_VRCPPS,
                                        ZYDIS_MNEMONIC_VMOVSHDUP};
    ZydisEncoderRequest r;
    unsigned a = (unsigned)(rnd(g) % 16), b = (unsigned)(rnd(g) % 16), c = (unsigned)(rnd(g) % 16);
    bool wide = rnd(g) % 4 != 0; /* ymm, else the 128-bit VEX form (zeroes the upper half) */
    ZydisRegister (*v)(unsigned) = wide ? ymm : xmm;
    int64_t disp = scratch_disp(g);
    switch (rnd(g) % 9) {
    case 0:
    case 1:
        req(&r, PICK(g, three), 3);
        op_reg(&r.operands[0], v(a));
        op_reg(&r.operands[1], v(b));
        op_reg(&r.operands[2], v(c));
        break;
    case 2:
        if (!host.avx2 && wide)
            return 0;
        req(&r, PICK(g, three_avx2), 3);
        op_reg(&r.operands[0], v(a));
        op_reg(&r.operands[1], v(b));
        op_reg(&r.operands[2], v(c));
        break;
    case 3:
        req(&r, PICK(g, two), 2);
        op_reg(&r.operands[0], v(a));
        op_reg(&r.operands[1], v(b));
        break;
    case 4: /* with an immediate */
        switch (rnd(g) % 4) {
        case 0:
            req(&r, ZYDIS_MNEMONIC_VPERMILPS, 3);
            op_reg(&r.operands[0], v(a));
            op_reg(&r.operands[1], v(b));
            op_imm(&r.operands[2], (int64_t)(rnd(g) & 0xff));
            break;
        case 1:
            req(&r, ZYDIS_MNEMONIC_VSHUFPS, 4);
            op_reg(&r.operands[0], v(a));
            op_reg(&r.operands[1], v(b));
            op_reg(&r.operands[2], v(c));
            op_imm(&r.operands[3], (int64_t)(rnd(g) & 0xff));
            break;
        case 2:
            req(&r, ZYDIS_MNEMONIC_VINSERTF128, 4);
            op_reg(&r.operands[0], ymm(a));
            op_reg(&r.operands[1], ymm(b));
            op_reg(&r.operands[2], xmm(c));
            op_imm(&r.operands[3], (int64_t)(rnd(g) & 1));
            break;
        default:
            if (!host.avx2)
                return 0;
            req(&r, ZYDIS_MNEMONIC_VPERMQ, 3);
            op_reg(&r.operands[0], ymm(a));
            op_reg(&r.operands[1], ymm(b));
            op_imm(&r.operands[2], (int64_t)(rnd(g) & 0xff));
            break;
        }
        break;
    case 5: /* FMA */
        if (!host.fma)
            return 0;
        req(&r, rnd(g) & 1 ? ZYDIS_MNEMONIC_VFMADD231PS : ZYDIS_MNEMONIC_VFNMADD213PD, 3);
        op_reg(&r.operands[0], v(a));
        op_reg(&r.operands[1], v(b));
        op_reg(&r.operands[2], v(c));
        break;
    case 6: /* memory */
        if (rnd(g) & 1) {
            req(&r, ZYDIS_MNEMONIC_VMOVDQU, 2);
            op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp, wide ? 32 : 16);
            op_reg(&r.operands[1], v(a));
        } else {
            req(&r, ZYDIS_MNEMONIC_VADDPD, 3);
            op_reg(&r.operands[0], v(a));
            op_reg(&r.operands[1], v(b));
            op_mem(&r.operands[2], ZYDIS_REGISTER_RBP, disp, wide ? 32 : 16);
        }
        break;
    case 7: /* broadcast, extract */
        if (rnd(g) & 1) {
            req(&r, ZYDIS_MNEMONIC_VBROADCASTSS, 2);
            op_reg(&r.operands[0], v(a));
            op_mem(&r.operands[1], ZYDIS_REGISTER_RBP, disp, 4);
        } else {
            req(&r, ZYDIS_MNEMONIC_VEXTRACTF128, 3);
            op_reg(&r.operands[0], xmm(a));
            op_reg(&r.operands[1], ymm(b));
            op_imm(&r.operands[2], (int64_t)(rnd(g) & 1));
        }
        break;
    default:
        if (rnd(g) % 4)
            return 0;
        req(&r, ZYDIS_MNEMONIC_VZEROUPPER, 0);
        break;
    }
    return encode(&r, buf);
}

/* ---- x87 ---------------------------------------------------------------------------------- */

static ZydisRegister st(unsigned i)
{
    return (ZydisRegister)(ZYDIS_REGISTER_ST0 + i);
}

static size_t random_x87(struct gen *g, uint8_t *buf)
{
    static const ZydisMnemonic constants[] = {ZYDIS_MNEMONIC_FLD1, ZYDIS_MNEMONIC_FLDZ,
                                              ZYDIS_MNEMONIC_FLDPI, ZYDIS_MNEMONIC_FLDL2E,
                                              ZYDIS_MNEMONIC_FLDLN2};
    static const ZydisMnemonic arith[] = {ZYDIS_MNEMONIC_FADD, ZYDIS_MNEMONIC_FMUL,
                                          ZYDIS_MNEMONIC_FSUB, ZYDIS_MNEMONIC_FSUBR,
                                          ZYDIS_MNEMONIC_FDIV, ZYDIS_MNEMONIC_FDIVR};
    static const ZydisMnemonic arith_pop[] = {ZYDIS_MNEMONIC_FADDP, ZYDIS_MNEMONIC_FMULP,
                                              ZYDIS_MNEMONIC_FSUBP, ZYDIS_MNEMONIC_FDIVRP};
    static const ZydisMnemonic unary[] = {ZYDIS_MNEMONIC_FCHS,    ZYDIS_MNEMONIC_FABS,
                                          ZYDIS_MNEMONIC_FSQRT,   ZYDIS_MNEMONIC_FRNDINT,
                                          ZYDIS_MNEMONIC_FINCSTP, ZYDIS_MNEMONIC_FDECSTP,
                                          ZYDIS_MNEMONIC_FXAM,    ZYDIS_MNEMONIC_FTST};
    static const ZydisMnemonic fcmov[] = {ZYDIS_MNEMONIC_FCMOVB, ZYDIS_MNEMONIC_FCMOVE,
                                          ZYDIS_MNEMONIC_FCMOVNBE, ZYDIS_MNEMONIC_FCMOVU};
    ZydisEncoderRequest r;
    unsigned i = (unsigned)(rnd(g) % 8);
    int64_t disp = scratch_disp(g);
    switch (rnd(g) % 10) {
    case 0:
        req(&r, PICK(g, constants), 0);
        break;
    case 1:
    case 2: /* st0 op st(i), or st(i) op st0 */
        req(&r, PICK(g, arith), 2);
        if (rnd(g) & 1) {
            op_reg(&r.operands[0], st(0));
            op_reg(&r.operands[1], st(i));
        } else {
            op_reg(&r.operands[0], st(i));
            op_reg(&r.operands[1], st(0));
        }
        break;
    case 3:
        req(&r, PICK(g, arith_pop), 2);
        op_reg(&r.operands[0], st(i));
        op_reg(&r.operands[1], st(0));
        break;
    case 4:
        req(&r, PICK(g, unary), 0);
        break;
    case 5: /* load / store through the stack */
        switch (rnd(g) % 3) {
        case 0:
            req(&r, ZYDIS_MNEMONIC_FXCH, 2);
            op_reg(&r.operands[0], st(0));
            op_reg(&r.operands[1], st(i));
            break;
        case 1:
            req(&r, ZYDIS_MNEMONIC_FLD, 1);
            op_reg(&r.operands[0], st(i));
            break;
        default:
            req(&r, ZYDIS_MNEMONIC_FSTP, 1);
            op_reg(&r.operands[0], st(i));
            break;
        }
        break;
    case 6: /* memory: double, 80-bit, integer */
        switch (rnd(g) % 5) {
        case 0:
            req(&r, ZYDIS_MNEMONIC_FLD, 1);
            op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp, 8);
            break;
        case 1:
            req(&r, ZYDIS_MNEMONIC_FSTP, 1);
            op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp, rnd(g) & 1 ? 8 : 10);
            break;
        case 2:
            req(&r, ZYDIS_MNEMONIC_FILD, 1);
            op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp, 4);
            break;
        case 3:
            req(&r, ZYDIS_MNEMONIC_FISTP, 1);
            op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp, 8);
            break;
        default:
            req(&r, ZYDIS_MNEMONIC_FADD, 1);
            op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, disp, 8);
            break;
        }
        break;
    case 7: /* compares into EFLAGS, conditional moves from EFLAGS */
        req(&r, rnd(g) & 1 ? ZYDIS_MNEMONIC_FCOMI : ZYDIS_MNEMONIC_FUCOMIP, 2);
        if (rnd(g) & 1)
            r.mnemonic = PICK(g, fcmov);
        op_reg(&r.operands[0], st(0));
        op_reg(&r.operands[1], st(i));
        break;
    case 8: /* the status word into AX */
        req(&r, ZYDIS_MNEMONIC_FNSTSW, 1);
        op_reg(&r.operands[0], ZYDIS_REGISTER_AX);
        break;
    default:
        req(&r, ZYDIS_MNEMONIC_FFREE, 1);
        op_reg(&r.operands[0], st(i));
        break;
    }
    return encode(&r, buf);
}

/* ---- the sequence ------------------------------------------------------------------------- */

static void put(struct gen *g, const uint8_t *b, size_t n)
{
    memcpy(g->code + g->n, b, n);
    memcpy(g->native + g->n, b, n);
    g->n += n;
}

/* The same length in both versions: the backends run `guest`, native runs `stand_in`. */
static void put_split(struct gen *g, const uint8_t *guest, const uint8_t *stand_in, size_t n)
{
    memcpy(g->code + g->n, guest, n);
    memcpy(g->native + g->n, stand_in, n);
    g->n += n;
}

/* Track which arithmetic flags end up undefined (Zydis's per-instruction flag tables). */
static void track_flags(struct gen *g, const uint8_t *b, size_t n)
{
    ZydisDecoder d;
    ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisDecodedInstruction in;
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&d, NULL, b, n, &in)) || !in.cpu_flags)
        return;
    const ZydisAccessedFlags *f = in.cpu_flags;
    g->undefined = (g->undefined & ~(f->modified | f->set_0 | f->set_1)) | f->undefined;
}

/* One random innocuous instruction of `kind` at the current position; false if none. */
static bool emit_random(struct gen *g, enum insn_kind kind)
{
    uint8_t b[ZYDIS_MAX_INSTRUCTION_LENGTH];
    size_t n = 0;
    switch (kind) {
    case K_SSE:
        n = random_sse(g, b);
        break;
    case K_AVX:
        n = random_avx(g, b);
        break;
    case K_X87:
        n = random_x87(g, b);
        break;
    default:
        n = random_int(g, b, CODE + g->n);
        break;
    }
    if (!n)
        return false;
    put(g, b, n);
    track_flags(g, b, n);
    g->count[kind]++;
    return true;
}

static void emit_callout(struct gen *g)
{
    if (rnd(g) & 1) {
        /* CPUID: a callout that continues in translated code; its result is replaced by
         * fixed values, so native CPUID (here a NOP) and the virtual one compare equal */
        static const uint8_t cpuid[2] = {0x0f, 0xa2}, nop2[2] = {0x66, 0x90};
        put_split(g, cpuid, nop2, 2);
        for (unsigned r = 0; r < 4; r++) { /* mov r32, imm32 for EAX, ECX, EDX, EBX */
            uint8_t mov[5] = {(uint8_t)(0xb8 + r)};
            uint32_t v = (uint32_t)rnd(g);
            memcpy(mov + 1, &v, 4);
            put(g, mov, 5);
        }
    } else {
        /* OUT to the scratch port: an exit to the VMM and back. DX is set first (in both). */
        static const uint8_t mov_dx[4] = {0x66, 0xba, PORT_SCRATCH_LO, PORT_SCRATCH_HI};
        static const uint8_t out[1] = {0xee}, nop1[1] = {0x90};
        put(g, mov_dx, 4);
        put_split(g, out, nop1, 1);
    }
    g->count[K_CALLOUT]++;
}

/* Load the vector, x87 and MXCSR state from [rbp+IN_*]; store it to [rbp+OUT_*] at the end. */
static void emit_state_io(struct gen *g, bool store)
{
    uint8_t b[ZYDIS_MAX_INSTRUCTION_LENGTH];
    ZydisEncoderRequest r;
    if (host.avx)
        for (unsigned i = 0; i < 16; i++) {
            req(&r, ZYDIS_MNEMONIC_VMOVDQU, 2);
            op_reg(&r.operands[store ? 1 : 0], ymm(i));
            op_mem(&r.operands[store ? 0 : 1], ZYDIS_REGISTER_RBP,
                   (store ? OUT_YMM : IN_YMM) + 32 * i, 32);
            put(g, b, encode(&r, b));
        }
    req(&r, store ? ZYDIS_MNEMONIC_FXSAVE64 : ZYDIS_MNEMONIC_FXRSTOR64, 1);
    op_mem(&r.operands[0], ZYDIS_REGISTER_RBP, store ? OUT_FX : IN_FX, 512);
    put(g, b, encode(&r, b)); /* FXRSTOR after the ymm loads: it keeps their upper halves */
}

static void generate(struct gen *g, unsigned length)
{
    g->n = 0;
    g->undefined = 0;
    emit_state_io(g, false);
    for (unsigned i = 0; i < length;) {
        unsigned roll = (unsigned)(rnd(g) % 100);
        if (roll < 6) { /* forward Jcc over the next instruction: a block boundary */
            uint8_t b[ZYDIS_MAX_INSTRUCTION_LENGTH];
            size_t n = random_int(g, b, CODE + g->n + 2);
            if (!n)
                continue;
            uint8_t jcc[2] = {(uint8_t)(0x70 + rnd(g) % 16), (uint8_t)n};
            put(g, jcc, 2);
            put(g, b, n);
            g->undefined = 0xFFF; /* which path ran is data dependent: be conservative */
            g->count[K_BOUNDARY]++;
            i += 2;
        } else if (roll < 8) { /* JMP to the next instruction: a fresh translation */
            static const uint8_t jmp0[2] = {0xeb, 0x00};
            put(g, jmp0, 2);
            g->count[K_BOUNDARY]++;
            i++;
        } else if (roll < 11 && g->callouts) {
            emit_callout(g);
            i++;
        } else if (roll < 14) { /* string operation with a small count, DF = 0 */
            static const uint8_t ops[][3] = {
                {0xf3, 0xa4, 0}, {0xf3, 0xaa, 0}, {0xf3, 0x48, 0xa5}, {0xf3, 0x48, 0xab}};
            unsigned k = (unsigned)(rnd(g) % 4);
            uint8_t s[24];
            size_t sn = 0;
            s[sn++] = 0xfc; /* cld */
            s[sn++] = 0x48;
            s[sn++] = 0x8d;
            s[sn++] = 0x75;
            s[sn++] = (uint8_t)(rnd(g) % 64); /* lea rsi,[rbp+d8] */
            s[sn++] = 0x48;
            s[sn++] = 0x8d;
            s[sn++] = 0x7d;
            s[sn++] = (uint8_t)(64 + rnd(g) % 60); /* lea rdi,[rbp+d8] */
            s[sn++] = 0xb9;
            uint32_t cnt = (uint32_t)(rnd(g) % 6);
            memcpy(s + sn, &cnt, 4);
            sn += 4;
            memcpy(s + sn, ops[k], ops[k][2] ? 3 : 2);
            sn += ops[k][2] ? 3 : 2;
            put(g, s, sn);
            g->count[K_INT]++;
            i++;
        } else if (roll < 17) { /* balanced PUSH/POP through two registers */
            unsigned a = pick_reg(g), c = pick_reg(g);
            uint8_t pp[4];
            size_t k = 0;
            if (a >= 8)
                pp[k++] = 0x41;
            pp[k++] = (uint8_t)(0x50 + (a & 7));
            if (c >= 8)
                pp[k++] = 0x41;
            pp[k++] = (uint8_t)(0x58 + (c & 7));
            put(g, pp, k);
            g->count[K_INT]++;
            i++;
        } else {
            enum insn_kind kind = K_INT;
            if (g->vector && roll < 47)
                kind = roll < 35 ? K_SSE : K_AVX;
            else if (g->x87 && roll < 62)
                kind = K_X87;
            if (emit_random(g, kind))
                i++;
        }
    }
    emit_state_io(g, true);
}

static void format_sequence(const struct gen *g, FILE *out)
{
    ZydisDecoder d;
    ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisFormatter f;
    ZydisFormatterInit(&f, ZYDIS_FORMATTER_STYLE_INTEL);
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    for (size_t off = 0; off < g->n;) {
        if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, g->code + off, g->n - off, &in, ops)))
            break;
        char text[128];
        ZydisFormatterFormatInstruction(&f, &in, ops, in.operand_count_visible, text, sizeof(text),
                                        CODE + off, NULL);
        fprintf(out, "    %#llx  %s\n", (unsigned long long)(CODE + off), text);
        off += in.length;
    }
}

/* ---- running it --------------------------------------------------------------------------- */

static int run_native(const struct gen *g, const struct diff_regs *in, const uint8_t *area,
                      struct diff_regs *out, uint8_t *area_out)
{
    struct guest_memory *mem;
    int rc = guest_memory_create(GUEST_MEMORY_FIXED | GUEST_MEMORY_EXECUTABLE, &mem);
    if (rc < 0)
        return rc;
    memcpy(guest_ram_ptr(mem, CODE, g->n + 1), g->native, g->n);
    ((uint8_t *)guest_ram_ptr(mem, CODE + g->n, 1))[0] = 0xc3; /* ret */
    memcpy(guest_ram_ptr(mem, SCRATCH, AREA_SIZE), area, AREA_SIZE);
    *out = *in;
    host_x87_claim(); /* the native run uses the x87 unit: a dbt guest's may be live in it */
    diff_native_run(out, (void *)(uintptr_t)CODE);
    memcpy(area_out, guest_ram_ptr(mem, SCRATCH, AREA_SIZE), AREA_SIZE);
    guest_memory_destroy(mem);
    return 0;
}

static int run_backend(const struct backend_ops *ops, const struct gen *g,
                       const struct diff_regs *in, const uint8_t *area, struct diff_regs *out,
                       uint8_t *area_out, char *why, size_t ws)
{
    struct guest_memory *mem;
    int rc = guest_memory_create(ops->memory_flags, &mem);
    if (rc < 0) {
        snprintf(why, ws, "guest memory: %s", strerror(-rc));
        return rc;
    }
    platform_setup(mem);
    memcpy(guest_ram_ptr(mem, CODE, g->n + 2), g->code, g->n);
    memcpy(guest_ram_ptr(mem, CODE + g->n, 2), "\xe6\xf4", 2); /* out 0xf4, al: the end */
    memcpy(guest_ram_ptr(mem, SCRATCH, AREA_SIZE), area, AREA_SIZE);
    struct vm_config config = {.mem = mem};
    struct vm *vm = NULL;
    struct vcpu *vcpu = NULL;
    struct vm_exit *exit = calloc(1, sizeof(*exit));
    rc = exit ? ops->vm_create(&config, &vm) : -ENOMEM;
    if (rc == 0)
        rc = ops->vcpu_create(vm, &vcpu);
    if (rc < 0)
        snprintf(why, ws, "%s: could not create the vCPU: %s", ops->name, strerror(-rc));
    if (rc == 0) {
        struct vcpu_state st;
        emu_reset_state(&st, CODE);
        memcpy(st.gpr, in->gpr, sizeof(st.gpr));
        st.gpr[X86_RSP] = GUEST_STACK_TOP;
        st.rflags = (in->rflags & (ARITH_FLAGS | DF_FLAG)) | 2;
        ops->vcpu_set_state(vcpu, &st);
        for (int i = 0; i < 10000; i++) {
            rc = ops->vcpu_run(vcpu, exit);
            if (rc < 0)
                break;
            if (exit->reason == VM_EXIT_INTR) {
                vcpu->kick_pending = 0;
                continue;
            }
            if (exit->reason == VM_EXIT_IO && exit->io.port == PORT_SCRATCH)
                continue; /* the sequence's own OUT: done, go on */
            break;
        }
        if (rc == 0 && !(exit->reason == VM_EXIT_IO && exit->io.port == 0xF4)) {
            char d[200];
            vm_exit_describe(exit, d, sizeof(d));
            snprintf(why, ws, "%s ended with %s instead of the final OUT", ops->name, d);
            rc = -EINVAL;
        }
        ops->vcpu_get_state(vcpu, &st);
        memcpy(out->gpr, st.gpr, sizeof(out->gpr));
        out->rflags = st.rflags;
        memcpy(area_out, guest_ram_ptr(mem, SCRATCH, AREA_SIZE), AREA_SIZE);
    }
    if (vcpu)
        ops->vcpu_destroy(vcpu);
    if (vm)
        ops->vm_destroy(vm);
    free(exit);
    guest_memory_destroy(mem);
    return rc;
}

/* Random input state: GPRs, flags, scratch memory, vector registers, x87 stack; MXCSR and the
 * x87 control word with every exception masked and random rounding/precision. */
static void random_input(struct gen *g, struct diff_regs *in, uint8_t *area)
{
    for (int i = 0; i < 16; i++)
        in->gpr[i] = rnd(g) >> (rnd(g) % 64);
    in->gpr[X86_RBP] = SCRATCH;
    in->rflags = (rnd(g) & ARITH_FLAGS) | 2;
    for (size_t i = 0; i < AREA_SIZE; i += 8) {
        uint64_t v = rnd(g);
        memcpy(area + i, &v, 8);
    }
    uint8_t *fx = area + IN_FX; /* FXSAVE layout, SDM vol. 1 table 10-2 */
    uint16_t fcw = (uint16_t)(0x037F & ~0x0F00) | (uint16_t)((rnd(g) & 0xF) << 8);
    uint16_t fsw = (uint16_t)(((rnd(g) & 7) << 11) | (rnd(g) & 0x4700)); /* TOP, C0-C3 */
    memcpy(fx, &fcw, 2);
    memcpy(fx + 2, &fsw, 2);
    fx[4] = (uint8_t)rnd(g); /* abridged tag word: which registers hold values */
    fx[5] = 0;
    memset(fx + 6, 0, 18);
    uint32_t mxcsr = 0x1F80 | (uint32_t)(rnd(g) & 0x607F) | (uint32_t)((rnd(g) & 1) << 15);
    uint32_t mask = 0;
    memcpy(fx + 24, &mxcsr, 4);
    memcpy(fx + 28, &mask, 4);
    for (unsigned r = 0; r < 8; r++) { /* ST0-7: mostly normal numbers, some anything */
        uint8_t *s = fx + 32 + 16 * r;
        if (rnd(g) % 4) {
            s[7] |= 0x80;                                              /* integer bit */
            uint16_t e = (uint16_t)(0x3FFF + (int)(rnd(g) % 64) - 32); /* moderate exponent */
            e |= (uint16_t)((rnd(g) & 1) << 15);                       /* sign */
            memcpy(s + 8, &e, 2);
        }
        memset(s + 10, 0, 6);
    }
    memset(fx + 416, 0, 96);
    /* the ymm image's low halves are what FXRSTOR loads into xmm0-15 anyway */
    for (unsigned i = 0; i < 16; i++)
        memcpy(area + IN_YMM + 32 * i, fx + 160 + 16 * i, 16);
}

/* Compare; print what differs. The FXSAVE images' FOP/FIP/FDP (bytes 6-23) name the host
 * addresses the last x87 instruction ran at: not compared. */
static bool same_state(const struct gen *g, const char *name, const struct diff_regs *nat,
                       const uint8_t *nat_area, const struct diff_regs *got,
                       const uint8_t *got_area, bool print)
{
    bool same = true;
    for (int i = 0; i < 16; i++)
        if (i != X86_RSP && nat->gpr[i] != got->gpr[i]) {
            if (print)
                printf("  gpr[%d]: native %#" PRIx64 ", %s %#" PRIx64 "\n", i, nat->gpr[i], name,
                       got->gpr[i]);
            same = false;
        }
    uint64_t mask = (ARITH_FLAGS & ~(uint64_t)g->undefined) | DF_FLAG;
    if ((nat->rflags & mask) != (got->rflags & mask)) {
        if (print)
            printf("  flags (mask %#" PRIx64 "): native %#" PRIx64 ", %s %#" PRIx64 "\n", mask,
                   nat->rflags & mask, name, got->rflags & mask);
        same = false;
    }
    static const struct {
        size_t from, to;
        const char *what;
    } parts[] = {{0, SCRATCH_SIZE, "scratch memory"},
                 {OUT_FX, OUT_FX + 6, "x87 control/status/tag words"},
                 {OUT_FX + 24, OUT_FX + 32, "MXCSR"},
                 {OUT_FX + 32, OUT_FX + 160, "x87 registers ST0-ST7"},
                 {OUT_FX + 160, OUT_FX + 416, "xmm0-15"},
                 {OUT_YMM, OUT_YMM + 512, "ymm0-15"}};
    for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++)
        if (memcmp(nat_area + parts[p].from, got_area + parts[p].from,
                   parts[p].to - parts[p].from)) {
            if (print) {
                printf("  %s differs:", parts[p].what);
                for (size_t i = parts[p].from, shown = 0; i < parts[p].to && shown < 8; i++)
                    if (nat_area[i] != got_area[i]) {
                        printf(" [+%#zx] %02x/%02x", i - parts[p].from, nat_area[i], got_area[i]);
                        shown++;
                    }
                printf("\n");
            }
            same = false;
        }
    return same;
}

static void probe_host(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        host.sse3 = c & bit_SSE3;
        host.ssse3 = c & bit_SSSE3;
        host.sse41 = c & bit_SSE4_1;
        host.fma = c & bit_FMA;
        bool osxsave = c & bit_OSXSAVE, avx = c & bit_AVX;
        if (osxsave && avx) {
            uint32_t lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            host.avx = (lo & 6) == 6;
        }
        host.fma = host.fma && host.avx;
    }
    if (host.avx && __get_cpuid_count(7, 0, &a, &b, &c, &d))
        host.avx2 = b & bit_AVX2;
    diff_have_avx = host.avx;
}

int main(int argc, char **argv)
{
    unsigned long count = 2000, seed = 1, length = 24;
    const struct backend_ops *backends[2];
    unsigned nb = 0;
    bool vector = true, x87 = true, callouts = true;
    for (int i = 1; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--count") && has_value)
            count = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && has_value)
            seed = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--length") && has_value)
            length = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--backend") && has_value && nb < 2) {
            const char *b = argv[++i];
            if (!strcmp(b, "dbt"))
                backends[nb++] = &dbt_backend_ops;
            else if (!strcmp(b, "trap_emulate"))
                backends[nb++] = &trap_emulate_backend_ops;
            else {
                fprintf(stderr, "dbt_diff: --backend wants dbt or trap_emulate, got '%s'\n", b);
                return 64;
            }
        } else if (!strcmp(argv[i], "--no-vector"))
            vector = false;
        else if (!strcmp(argv[i], "--no-x87"))
            x87 = false;
        else if (!strcmp(argv[i], "--no-callouts"))
            callouts = false;
        else {
            fprintf(stderr, "usage: dbt_diff [--count N] [--seed S] [--length L] "
                            "[--backend dbt|trap_emulate]... [--no-vector] [--no-x87] "
                            "[--no-callouts]\n");
            return 64;
        }
    }
    if (length < 1 || length > 400) {
        fprintf(stderr, "dbt_diff: --length wants 1..400\n");
        return 64;
    }
    if (!nb)
        backends[nb++] = &dbt_backend_ops;
    for (unsigned b = 0; b < nb; b++) {
        char reason[200];
        if (backends[b]->probe(reason, sizeof(reason)) < 0) {
            printf("SKIPPED: %s unavailable: %s\n", backends[b]->name, reason);
            return 77;
        }
    }
    probe_host();
    static struct gen g;
    g.vector = vector;
    g.x87 = x87;
    g.callouts = callouts;
    static uint8_t area[AREA_SIZE], native_area[AREA_SIZE], got_area[AREA_SIZE];
    unsigned long failures = 0, changed = 0, vector_changed = 0, x87_changed = 0;
    for (unsigned long t = 0; t < count && failures < 5; t++) {
        g.rng = (seed * 0x9E3779B97F4A7C15ULL) ^ (t + 1) * 0xBF58476D1CE4E5B9ULL;
        if (!g.rng)
            g.rng = 1;
        generate(&g, (unsigned)length);
        struct diff_regs in, nat;
        random_input(&g, &in, area);
        memset(&nat, 0, sizeof(nat));
        if (run_native(&g, &in, area, &nat, native_area) < 0) {
            printf("FAIL sequence %lu (seed %lu): could not run natively\n", t, seed);
            failures++;
            continue;
        }
        /* A comparison that never sees a change would prove nothing: count real work. */
        bool work = memcmp(native_area, area, SCRATCH_SIZE) != 0;
        for (int i = 0; i < 16; i++)
            if (i != X86_RSP && nat.gpr[i] != in.gpr[i])
                work = true;
        changed += work;
        vector_changed += memcmp(native_area + OUT_FX + 160, area + IN_FX + 160, 256) != 0;
        x87_changed += memcmp(native_area + OUT_FX + 32, area + IN_FX + 32, 128) != 0;
        for (unsigned b = 0; b < nb; b++) {
            struct diff_regs got;
            memset(&got, 0, sizeof(got));
            char why[300] = "";
            if (run_backend(backends[b], &g, &in, area, &got, got_area, why, sizeof(why)) < 0) {
                printf("FAIL sequence %lu (seed %lu): %s\n", t, seed, why);
                format_sequence(&g, stdout);
                failures++;
                continue;
            }
            if (!same_state(&g, backends[b]->name, &nat, native_area, &got, got_area, false)) {
                failures++;
                printf("FAIL sequence %lu (seed %lu): native and %s differ\n", t, seed,
                       backends[b]->name);
                same_state(&g, backends[b]->name, &nat, native_area, &got, got_area, true);
                format_sequence(&g, stdout);
            }
        }
    }
    unsigned long insns = 0;
    for (unsigned k = 0; k < K_KINDS; k++)
        insns += g.count[k];
    printf("dbt_diff: %lu sequences of %lu, seed %lu, against", count, length, seed);
    for (unsigned b = 0; b < nb; b++)
        printf(" %s", backends[b]->name);
    printf(": %lu failed; %lu instructions (", failures, insns);
    for (unsigned k = 0; k < K_KINDS; k++)
        printf("%s%s %u", k ? ", " : "", kind_name[k], g.count[k]);
    printf("); %lu sequences changed GPRs or memory, %lu xmm registers, %lu x87 registers\n",
           changed, vector_changed, x87_changed);
    if (!failures && (changed < count / 2 || (vector && vector_changed < count / 4) ||
                      (x87 && x87_changed < count / 4))) {
        printf("dbt_diff: FAIL: too few sequences changed state; the generator is broken\n");
        return 1;
    }
    return failures ? 1 : 0;
}
