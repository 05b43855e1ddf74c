/* emu_access.c - registers, memory operands, stack and descriptors for the emulation core. */
#include <string.h>

#include "emu_internal.h"
#include "mmu/page_walk.h"

static int gpr_index(ZydisRegister reg, unsigned *shift)
{
    *shift = 0;
    switch (reg) {
    case ZYDIS_REGISTER_AH:
        *shift = 8;
        return X86_RAX;
    case ZYDIS_REGISTER_CH:
        *shift = 8;
        return X86_RCX;
    case ZYDIS_REGISTER_DH:
        *shift = 8;
        return X86_RDX;
    case ZYDIS_REGISTER_BH:
        *shift = 8;
        return X86_RBX;
    default:
        break;
    }
    ZydisRegister wide = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
    if (wide < ZYDIS_REGISTER_RAX || wide > ZYDIS_REGISTER_R15)
        return -1;
    return (int)(wide - ZYDIS_REGISTER_RAX);
}

static const struct x86_segment *segment_of(const struct vcpu_state *s, ZydisRegister reg)
{
    switch (reg) {
    case ZYDIS_REGISTER_ES:
        return &s->es;
    case ZYDIS_REGISTER_CS:
        return &s->cs;
    case ZYDIS_REGISTER_SS:
        return &s->ss;
    case ZYDIS_REGISTER_DS:
        return &s->ds;
    case ZYDIS_REGISTER_FS:
        return &s->fs;
    case ZYDIS_REGISTER_GS:
        return &s->gs;
    default:
        return NULL;
    }
}

uint64_t emu_reg_read(const struct vcpu_state *s, ZydisRegister reg)
{
    const struct x86_segment *seg = segment_of(s, reg);
    if (seg)
        return seg->selector;
    if (reg == ZYDIS_REGISTER_RIP)
        return s->rip;
    unsigned shift;
    int idx = gpr_index(reg, &shift);
    if (idx < 0)
        return 0;
    unsigned bits = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg);
    uint64_t v = s->gpr[idx] >> shift;
    return bits >= 64 ? v : v & ((1ULL << bits) - 1);
}

void emu_reg_write(struct vcpu_state *s, ZydisRegister reg, uint64_t v)
{
    unsigned shift;
    int idx = gpr_index(reg, &shift);
    if (idx < 0)
        return;
    unsigned bits = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg);
    /* 32-bit destinations zero-extend, 8/16-bit ones merge (SDM vol. 1 3.4.1.1). */
    if (bits == 64)
        s->gpr[idx] = v;
    else if (bits == 32)
        s->gpr[idx] = (uint32_t)v;
    else {
        uint64_t mask = ((1ULL << bits) - 1) << shift;
        s->gpr[idx] = (s->gpr[idx] & ~mask) | ((v << shift) & mask);
    }
}

bool emu_mem_address(const struct vcpu_state *s, const struct x86_decoded_insn *insn,
                     const ZydisDecodedOperand *op, uint64_t *addr)
{
    ZydisRegisterContext ctx;
    for (unsigned i = 0; i < 16; i++) {
        ctx.values[ZYDIS_REGISTER_RAX + i] = s->gpr[i];
        ctx.values[ZYDIS_REGISTER_EAX + i] = (uint32_t)s->gpr[i];
    }
    ctx.values[ZYDIS_REGISTER_RIP] = s->rip;
    ctx.values[ZYDIS_REGISTER_EIP] = (uint32_t)s->rip;
    ctx.values[ZYDIS_REGISTER_NONE] = 0;
    ZyanU64 a;
    if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddressEx(&insn->info, op, s->rip, &ctx, &a)))
        return false;
    /* Only FS and GS have a base in 64-bit mode (SDM vol. 3A 3.2.4). */
    if (op->mem.segment == ZYDIS_REGISTER_FS)
        a += s->fs.base;
    else if (op->mem.segment == ZYDIS_REGISTER_GS)
        a += s->gs.base;
    *addr = a;
    return true;
}

/* One access of n bytes at linear address addr (n <= 4096, so at most two pages): every page
 * is translated before any byte moves, so a fault on the second page leaves memory as it was. A
 * write tells the MMU hooks what guest-physical memory changed. */
static bool access_linear(struct emu_ctx *ctx, uint64_t addr, void *buf, unsigned n,
                          unsigned access, struct emu_result *out)
{
    struct mmu_paging pg;
    mmu_paging_from_state(ctx->state, &pg);
    uint64_t gpa[2];
    unsigned len[2], pieces = 0;
    unsigned walk_access = access & ~EMU_ACCESS_STACK;
    for (uint64_t a = addr, left = n; left; pieces++) {
        unsigned chunk = 4096 - (unsigned)(a & 4095);
        if (chunk > left)
            chunk = (unsigned)left;
        struct mmu_walk w;
        switch (mmu_walk(ctx->mem, &pg, a, walk_access, &w)) {
        case MMU_WALK_NONCANONICAL: /* SDM vol. 3A 6.15: #SS for the stack, else #GP */
            emu_raise(out, (access & EMU_ACCESS_STACK) ? EMU_SS : EMU_GP, true, 0);
            return false;
        case MMU_WALK_PAGE_FAULT:
            emu_raise(out, EMU_PF, true, w.error_code);
            out->cr2 = a;
            return false;
        default:
            break;
        }
        if (!guest_ram_contains(ctx->mem, w.gpa, chunk)) {
            /* Guest-physical memory that is not RAM (the MMIO window, unassigned space): the
             * core cannot perform device accesses in the middle of an instruction. */
            emu_raise(out, EMU_PF, true, walk_access & MMU_WRITE ? 2 : 0);
            out->cr2 = a;
            return false;
        }
        gpa[pieces] = w.gpa;
        len[pieces] = chunk;
        a += chunk;
        left -= chunk;
    }
    uint8_t *p = buf;
    for (unsigned i = 0; i < pieces; p += len[i], i++) {
        if (!(access & MMU_WRITE)) {
            guest_ram_read(ctx->mem, gpa[i], p, len[i]);
            continue;
        }
        guest_ram_write(ctx->mem, gpa[i], p, len[i]);
        if (ctx->mmu)
            ctx->mmu->phys_written(ctx->mmu->arg, gpa[i], len[i]);
    }
    return true;
}

bool emu_read_as(struct emu_ctx *ctx, uint64_t addr, void *dst, unsigned n, unsigned access,
                 struct emu_result *out)
{
    return access_linear(ctx, addr, dst, n, access & ~(unsigned)MMU_WRITE, out);
}

bool emu_write_as(struct emu_ctx *ctx, uint64_t addr, const void *src, unsigned n, unsigned access,
                  struct emu_result *out)
{
    return access_linear(ctx, addr, (void *)src, n, access | MMU_WRITE, out);
}

bool emu_read(struct emu_ctx *ctx, uint64_t addr, void *dst, unsigned n, struct emu_result *out)
{
    return access_linear(ctx, addr, dst, n, MMU_READ, out);
}

bool emu_write(struct emu_ctx *ctx, uint64_t addr, const void *src, unsigned n,
               struct emu_result *out)
{
    return access_linear(ctx, addr, (void *)src, n, MMU_WRITE, out);
}

unsigned emu_fetch(const struct emu_ctx *ctx, uint64_t rip, uint8_t *bytes, unsigned max,
                   uint32_t *error_code)
{
    struct mmu_paging pg;
    mmu_paging_from_state(ctx->state, &pg);
    unsigned got = 0;
    *error_code = 0;
    while (got < max) {
        uint64_t a = rip + got;
        unsigned chunk = 4096 - (unsigned)(a & 4095);
        if (chunk > max - got)
            chunk = max - got;
        struct mmu_walk w;
        if (mmu_walk(ctx->mem, &pg, a, MMU_FETCH | MMU_INSPECT, &w) != MMU_WALK_OK ||
            guest_ram_read(ctx->mem, w.gpa, bytes + got, chunk) < 0) {
            if (got == 0)
                *error_code = w.status == MMU_WALK_PAGE_FAULT ? w.error_code : PF_ERR_I;
            break;
        }
        got += chunk;
    }
    return got;
}

bool emu_operand_read(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, unsigned index,
                      uint64_t *value, struct emu_result *out)
{
    const ZydisDecodedOperand *op = &insn->operands[index];
    uint64_t addr = 0;
    switch (op->type) {
    case ZYDIS_OPERAND_TYPE_REGISTER:
        *value = emu_reg_read(ctx->state, op->reg.value);
        return true;
    case ZYDIS_OPERAND_TYPE_IMMEDIATE:
        *value = op->imm.value.u;
        return true;
    case ZYDIS_OPERAND_TYPE_MEMORY:
        *value = 0;
        if (!emu_mem_address(ctx->state, insn, op, &addr)) {
            emu_raise(out, EMU_GP, true, 0);
            return false;
        }
        return emu_read(ctx, addr, value, op->size / 8, out);
    default:
        emu_raise(out, EMU_UD, false, 0);
        return false;
    }
}

bool emu_operand_write(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, unsigned index,
                       uint64_t value, struct emu_result *out)
{
    const ZydisDecodedOperand *op = &insn->operands[index];
    uint64_t addr;
    switch (op->type) {
    case ZYDIS_OPERAND_TYPE_REGISTER:
        emu_reg_write(ctx->state, op->reg.value, value);
        return true;
    case ZYDIS_OPERAND_TYPE_MEMORY:
        if (!emu_mem_address(ctx->state, insn, op, &addr)) {
            emu_raise(out, EMU_GP, true, 0);
            return false;
        }
        return emu_write(ctx, addr, &value, op->size / 8, out);
    default:
        emu_raise(out, EMU_UD, false, 0);
        return false;
    }
}

bool emu_push(struct emu_ctx *ctx, uint64_t value, unsigned size, struct emu_result *out)
{
    uint64_t rsp = ctx->state->gpr[X86_RSP] - size;
    if (!emu_write_as(ctx, rsp, &value, size, EMU_ACCESS_STACK, out))
        return false;
    ctx->state->gpr[X86_RSP] = rsp;
    return true;
}

bool emu_pop(struct emu_ctx *ctx, uint64_t *value, unsigned size, struct emu_result *out)
{
    *value = 0;
    if (!emu_read_as(ctx, ctx->state->gpr[X86_RSP], value, size, EMU_ACCESS_STACK, out))
        return false;
    ctx->state->gpr[X86_RSP] += size;
    return true;
}

bool emu_descriptor(struct emu_ctx *ctx, uint16_t selector, uint64_t *lo, uint64_t *hi)
{
    const struct vcpu_state *s = ctx->state;
    uint64_t base, limit;
    if (selector & 4) { /* TI: the LDT (SDM vol. 3A 3.4.2) */
        if ((s->ldtr.attrib & 0x80) == 0 || (s->ldtr.selector & ~3) == 0)
            return false;
        base = s->ldtr.base;
        limit = s->ldtr.limit;
    } else {
        if ((selector & ~3) == 0)
            return false; /* null selector */
        base = s->gdtr.base;
        limit = s->gdtr.limit;
    }
    uint64_t off = selector & ~7u;
    if (off + 7 > limit)
        return false;
    /* An implicit supervisor access (SDM vol. 3A 4.6). A paging fault on the table reads as
     * an unusable selector here (#GP(selector) rather than #PF: a simplification). */
    struct emu_result fault;
    if (!emu_read_as(ctx, base + off, lo, 8, MMU_IMPLICIT, &fault))
        return false;
    if (hi) {
        *hi = 0;
        if (off + 15 <= limit && !emu_read_as(ctx, base + off + 8, hi, 8, MMU_IMPLICIT, &fault))
            *hi = 0;
    }
    return true;
}

void emu_segment_load(struct x86_segment *seg, uint16_t selector, uint64_t lo, uint64_t hi)
{
    uint32_t limit = (uint32_t)((lo & 0xFFFF) | ((lo >> 32) & 0xF0000));
    if (DESC_G(lo))
        limit = (limit << 12) | 0xFFF;
    uint64_t base = ((lo >> 16) & 0xFFFFFF) | (((lo >> 56) & 0xFF) << 24);
    if (!DESC_S(lo))
        base |= (hi & 0xFFFFFFFF) << 32; /* 16-byte system descriptor */
    seg->selector = selector;
    seg->base = base;
    seg->limit = limit;
    /* descriptor bits 40-55 map onto the VMCS access-rights layout bits 0-15 */
    seg->attrib = (uint16_t)((lo >> 40) & 0xF0FF);
}

bool emu_load_code_segment(struct emu_ctx *ctx, uint16_t selector, struct emu_result *out)
{
    uint64_t lo, hi;
    /* SDM vol. 2A JMP/CALL/RET (far), IRET: the target must be a present code segment; a
     * non-conforming one needs DPL = CPL (0 here) and RPL <= CPL. Gates are not supported. */
    if (!emu_descriptor(ctx, selector, &lo, &hi) || !DESC_CODE(lo)) {
        emu_raise(out, EMU_GP, true, selector & ~3u);
        return false;
    }
    bool conforming = DESC_TYPE(lo) & 0x4;
    if (!conforming && DESC_DPL(lo) != (selector & 3u)) {
        emu_raise(out, EMU_GP, true, selector & ~3u);
        return false;
    }
    if (!DESC_P(lo)) {
        emu_raise(out, EMU_NP, true, selector & ~3u);
        return false;
    }
    emu_segment_load(&ctx->state->cs, selector, lo, hi);
    return true;
}

bool emu_load_data_segment(struct emu_ctx *ctx, ZydisRegister sreg, uint16_t selector,
                           struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    struct x86_segment *seg = (struct x86_segment *)segment_of(s, sreg);
    if (!seg || sreg == ZYDIS_REGISTER_CS) {
        emu_raise(out, EMU_UD, false, 0);
        return false;
    }
    bool is_ss = sreg == ZYDIS_REGISTER_SS;
    if ((selector & ~3u) == 0 && !(selector & 4)) {
        /* A null selector is allowed in 64-bit mode for DS/ES/FS/GS, and for SS at CPL 0
         * (SDM vol. 2A MOV, "64-bit mode exceptions"). The base stays for FS/GS. */
        seg->selector = selector;
        seg->attrib = 0;
        return true;
    }
    uint64_t lo, hi;
    if (!emu_descriptor(ctx, selector, &lo, &hi)) {
        emu_raise(out, EMU_GP, true, selector & ~3u);
        return false;
    }
    bool data = DESC_S(lo) && !(DESC_TYPE(lo) & 0x8);
    bool writable = data && (DESC_TYPE(lo) & 0x2);
    bool readable_code = DESC_CODE(lo) && (DESC_TYPE(lo) & 0x2);
    bool ok =
        is_ss ? writable && DESC_DPL(lo) == 0 && (selector & 3u) == 0 : (data || readable_code);
    if (!ok) {
        emu_raise(out, EMU_GP, true, selector & ~3u);
        return false;
    }
    if (!DESC_P(lo)) {
        emu_raise(out, is_ss ? EMU_SS : EMU_NP, true, selector & ~3u);
        return false;
    }
    emu_segment_load(seg, selector, lo, hi);
    return true;
}
