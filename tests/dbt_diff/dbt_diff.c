/* dbt_diff.c - differential test of the dbt backend against native execution.
 *
 * Random sequences of innocuous instructions, built with the Zydis encoder (ALU in every
 * width, shifts and rotates, flags users, memory operands on a scratch area, RIP-relative
 * loads, string operations with small counts, forward conditional branches, balanced
 * PUSH/POP), run once natively at their guest address and once as a guest under dbt. Final
 * GPRs (RSP excluded: host and guest stacks differ), arithmetic flags (bits an instruction
 * leaves undefined masked, per Zydis's flag tables) and the scratch memory must match.
 *
 * usage: dbt_diff [--count N] [--seed S] [--length L]     exit 0 = all equal, 1 = mismatch,
 *                                                         77 = dbt unavailable
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "emu/emu.h"
#include "vmm/backend.h"
#include "vmm/guest_layout.h"
#include "vmm/platform.h"

#define CODE GUEST_IMAGE_BASE
#define SCRATCH (GUEST_RAM_BASE + 0x300000)
#define SCRATCH_SIZE 4096
#define ARITH_FLAGS 0xCD5ULL /* CF PF AF ZF SF OF */

struct diff_regs {
    uint64_t gpr[16];
    uint64_t rflags;
};
void diff_native_run(struct diff_regs *io, void *code);

struct gen {
    uint8_t code[16384];
    size_t n;
    uint64_t rng;
    uint32_t undefined; /* flags whose final value is undefined */
};

static uint64_t rnd(struct gen *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

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
    return writable[rnd(g) % (sizeof(writable) / sizeof(writable[0]))];
}

static unsigned pick_width(struct gen *g)
{
    static const unsigned w[] = {8, 16, 32, 64, 64, 32};
    return w[rnd(g) % 6];
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

/* One random innocuous instruction into buf (its address is `at`). */
static size_t random_insn(struct gen *g, uint8_t *buf, uint64_t at)
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
    ZydisEncoderRequest r;
    unsigned w = pick_width(g), a = pick_reg(g), b = pick_reg(g);
    int64_t disp = (int64_t)(rnd(g) % (SCRATCH_SIZE / 8 - 1)) * 8;
    switch (rnd(g) % 14) {
    case 0: /* ALU reg, reg */
        req(&r, alu[rnd(g) % 9], 2);
        op_reg(&r.operands[0], gpr(a, w));
        op_reg(&r.operands[1], gpr(b, w));
        break;
    case 1: /* ALU reg, imm */
        req(&r, alu[rnd(g) % 9], 2);
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
        req(&r, shifts[rnd(g) % 7], 2);
        op_reg(&r.operands[0], gpr(a, w));
        if (rnd(g) & 1)
            op_imm(&r.operands[1], (int64_t)(1 + rnd(g) % (w - 1)));
        else
            op_reg(&r.operands[1], ZYDIS_REGISTER_CL);
        break;
    case 4:
        req(&r, unary[rnd(g) % 4], 1);
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
    case 8: /* LEA reg, [rbp + reg*scale + disp] */
        req(&r, ZYDIS_MNEMONIC_LEA, 2);
        op_reg(&r.operands[0], gpr(a, 64));
        op_mem(&r.operands[1], ZYDIS_REGISTER_RBP, (int32_t)rnd(g), 0);
        r.operands[1].mem.index = gpr(b, 64);
        r.operands[1].mem.scale = (ZyanU8)(1u << (rnd(g) % 4));
        break;
    case 9:
        req(&r, ZYDIS_MNEMONIC_XCHG, 2);
        op_reg(&r.operands[0], gpr(a, w));
        op_reg(&r.operands[1], gpr(b, w));
        break;
    case 10: /* BT family */
        req(&r, bits[rnd(g) % 4], 2);
        w = w == 8 ? 32 : w;
        op_reg(&r.operands[0], gpr(a, w));
        op_imm(&r.operands[1], (int64_t)(rnd(g) % w));
        break;
    case 11: /* SETcc / CMOVcc */
        if (rnd(g) & 1) {
            req(&r, (ZydisMnemonic)(ZYDIS_MNEMONIC_SETB), 1);
            static const ZydisMnemonic setcc[] = {ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETZ,
                                                  ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETO,
                                                  ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETS};
            r.mnemonic = setcc[rnd(g) % 6];
            op_reg(&r.operands[0], gpr(a, 8));
        } else {
            static const ZydisMnemonic cmov[] = {ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVZ,
                                                 ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNBE};
            req(&r, cmov[rnd(g) % 4], 2);
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

static void put(struct gen *g, const uint8_t *b, size_t n)
{
    memcpy(g->code + g->n, b, n);
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

static void generate(struct gen *g, unsigned length)
{
    g->n = 0;
    g->undefined = 0;
    for (unsigned i = 0; i < length; i++) {
        uint8_t b[64];
        size_t n;
        unsigned kind = (unsigned)(rnd(g) % 10);
        if (kind == 0) { /* forward Jcc over the next instruction: a block boundary */
            n = random_insn(g, b, CODE + g->n + 2);
            if (!n)
                continue;
            uint8_t jcc[2] = {(uint8_t)(0x70 + rnd(g) % 16), (uint8_t)n};
            put(g, jcc, 2);
            put(g, b, n);
            g->undefined = 0xFFF; /* which path ran is data dependent: be conservative */
        } else if (kind == 1) {   /* string operation with a small count, DF = 0 */
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
        } else if (kind == 2) { /* balanced PUSH/POP through two registers */
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
        } else {
            n = random_insn(g, b, CODE + g->n);
            if (!n)
                continue;
            put(g, b, n);
            track_flags(g, b, n);
        }
    }
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

static int run_native(const struct gen *g, const struct diff_regs *in, const uint8_t *scratch,
                      struct diff_regs *out, uint8_t *scratch_out)
{
    struct guest_memory *mem;
    int rc = guest_memory_create(GUEST_MEMORY_FIXED | GUEST_MEMORY_EXECUTABLE, &mem);
    if (rc < 0)
        return rc;
    memcpy(guest_ram_ptr(mem, CODE, g->n + 1), g->code, g->n);
    ((uint8_t *)guest_ram_ptr(mem, CODE + g->n, 1))[0] = 0xc3; /* ret */
    memcpy(guest_ram_ptr(mem, SCRATCH, SCRATCH_SIZE), scratch, SCRATCH_SIZE);
    *out = *in;
    diff_native_run(out, (void *)(uintptr_t)CODE);
    memcpy(scratch_out, guest_ram_ptr(mem, SCRATCH, SCRATCH_SIZE), SCRATCH_SIZE);
    guest_memory_destroy(mem);
    return 0;
}

static int run_dbt(const struct gen *g, const struct diff_regs *in, const uint8_t *scratch,
                   struct diff_regs *out, uint8_t *scratch_out, char *why, size_t ws)
{
    const struct backend_ops *ops = &dbt_backend_ops;
    struct guest_memory *mem;
    int rc = guest_memory_create(ops->memory_flags, &mem);
    if (rc < 0)
        return rc;
    platform_setup(mem);
    memcpy(guest_ram_ptr(mem, CODE, g->n + 2), g->code, g->n);
    memcpy(guest_ram_ptr(mem, CODE + g->n, 2), "\xe6\xf4", 2); /* out 0xf4, al: the end */
    memcpy(guest_ram_ptr(mem, SCRATCH, SCRATCH_SIZE), scratch, SCRATCH_SIZE);
    struct vm_config config = {.mem = mem};
    struct vm *vm = NULL;
    struct vcpu *vcpu = NULL;
    struct vm_exit *exit = calloc(1, sizeof(*exit));
    rc = ops->vm_create(&config, &vm);
    if (rc == 0)
        rc = ops->vcpu_create(vm, &vcpu);
    if (rc == 0) {
        struct vcpu_state st;
        emu_reset_state(&st, CODE);
        memcpy(st.gpr, in->gpr, sizeof(st.gpr));
        st.gpr[X86_RSP] = GUEST_STACK_TOP;
        st.rflags = (in->rflags & (ARITH_FLAGS | 0x400)) | 2;
        ops->vcpu_set_state(vcpu, &st);
        for (int i = 0; i < 100; i++) {
            rc = ops->vcpu_run(vcpu, exit);
            if (rc < 0 || exit->reason != VM_EXIT_INTR)
                break;
            vcpu->kick_pending = 0;
        }
        if (rc == 0 && !(exit->reason == VM_EXIT_IO && exit->io.port == 0xF4)) {
            snprintf(why, ws, "dbt ended with %s (port %#x, rip %#llx) instead of the final OUT",
                     vm_exit_reason_name(exit->reason), exit->io.port,
                     (unsigned long long)exit->rip);
            rc = -EINVAL;
        }
        ops->vcpu_get_state(vcpu, &st);
        memcpy(out->gpr, st.gpr, sizeof(out->gpr));
        out->rflags = st.rflags;
        memcpy(scratch_out, guest_ram_ptr(mem, SCRATCH, SCRATCH_SIZE), SCRATCH_SIZE);
    }
    if (vcpu)
        ops->vcpu_destroy(vcpu);
    if (vm)
        ops->vm_destroy(vm);
    free(exit);
    guest_memory_destroy(mem);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned long count = 2000, seed = 1, length = 24;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--count"))
            count = strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--length"))
            length = strtoul(argv[i + 1], NULL, 0);
        else {
            fprintf(stderr, "usage: dbt_diff [--count N] [--seed S] [--length L]\n");
            return 64;
        }
    }
    char reason[200];
    if (dbt_backend_ops.probe(reason, sizeof(reason)) < 0) {
        printf("SKIPPED: dbt unavailable: %s\n", reason);
        return 77;
    }
    static struct gen g;
    static uint8_t scratch[SCRATCH_SIZE], native_mem[SCRATCH_SIZE], dbt_mem[SCRATCH_SIZE];
    unsigned long failures = 0, insns = 0, changed = 0;
    for (unsigned long t = 0; t < count; t++) {
        g.rng = (seed * 0x9E3779B97F4A7C15ULL) ^ (t + 1) * 0xBF58476D1CE4E5B9ULL;
        if (!g.rng)
            g.rng = 1;
        generate(&g, (unsigned)length);
        insns += length;
        struct diff_regs in, nat, dbt;
        memset(&nat, 0, sizeof(nat));
        memset(&dbt, 0, sizeof(dbt));
        for (int i = 0; i < 16; i++)
            in.gpr[i] = rnd(&g) >> (rnd(&g) % 64);
        in.gpr[X86_RBP] = SCRATCH;
        in.rflags = (rnd(&g) & ARITH_FLAGS) | 2;
        for (size_t i = 0; i < SCRATCH_SIZE; i++)
            scratch[i] = (uint8_t)rnd(&g);
        char why[200] = "";
        if (run_native(&g, &in, scratch, &nat, native_mem) < 0 ||
            run_dbt(&g, &in, scratch, &dbt, dbt_mem, why, sizeof(why)) < 0) {
            printf("FAIL sequence %lu (seed %lu): could not run: %s\n", t, seed, why);
            format_sequence(&g, stdout);
            failures++;
            continue;
        }
        /* A comparison that never sees a change would prove nothing: count real work. */
        bool work = memcmp(native_mem, scratch, SCRATCH_SIZE) != 0;
        for (int i = 0; i < 16; i++)
            if (i != X86_RSP && nat.gpr[i] != in.gpr[i])
                work = true;
        changed += work;
        uint64_t mask = ARITH_FLAGS & ~(uint64_t)g.undefined;
        bool same = (nat.rflags & mask) == (dbt.rflags & mask) &&
                    memcmp(native_mem, dbt_mem, SCRATCH_SIZE) == 0;
        for (int i = 0; i < 16; i++)
            if (i != X86_RSP && nat.gpr[i] != dbt.gpr[i])
                same = false;
        if (!same) {
            failures++;
            printf("FAIL sequence %lu (seed %lu): native and dbt differ\n", t, seed);
            for (int i = 0; i < 16; i++)
                if (i != X86_RSP && nat.gpr[i] != dbt.gpr[i])
                    printf("  gpr[%d]: native %#" PRIx64 ", dbt %#" PRIx64 "\n", i, nat.gpr[i],
                           dbt.gpr[i]);
            if ((nat.rflags & mask) != (dbt.rflags & mask))
                printf("  flags (mask %#" PRIx64 "): native %#" PRIx64 ", dbt %#" PRIx64 "\n", mask,
                       nat.rflags & mask, dbt.rflags & mask);
            if (memcmp(native_mem, dbt_mem, SCRATCH_SIZE))
                printf("  scratch memory differs\n");
            format_sequence(&g, stdout);
            if (failures >= 5)
                break;
        }
    }
    printf("dbt_diff: %lu sequences (%lu instructions), seed %lu: %lu passed, %lu failed; "
           "%lu changed registers or memory\n",
           count, insns, seed, count - failures, failures, changed);
    if (changed < count / 2) {
        printf("dbt_diff: FAIL: too few sequences changed any state; the generator is broken\n");
        return 1;
    }
    return failures ? 1 : 0;
}
