/* emu_descriptors.c - the descriptor-table registers: LGDT, LIDT, SGDT, SIDT, LLDT, LTR,
 * SLDT, STR.
 *
 * The loads are privileged (#GP at CPL 3); the stores are the sensitive-but-unprivileged
 * half (Robin & Irvine 2000): at CPL 3 they reveal the host's tables (or, with UMIP, fault
 * or return the host kernel's dummies), which is why trap_emulate cannot pass their tests.
 */
#include <string.h>

#include "emu_families.h"

/* The instruction's memory operand's linear address; #UD when it has none. */
static bool memory_operand(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, uint64_t *addr,
                           struct emu_result *out)
{
    for (unsigned i = 0; i < insn->info.operand_count_visible; i++)
        if (insn->operands[i].type == ZYDIS_OPERAND_TYPE_MEMORY) {
            if (emu_mem_address(ctx->state, insn, &insn->operands[i], addr))
                return true;
            break;
        }
    emu_raise(out, EMU_UD, false, 0);
    return false;
}

/* LGDT/LIDT m16&64: 2-byte limit then 8-byte base (SDM vol. 2A LGDT/LIDT). */
static void load_dtable(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                        struct emu_result *out, struct x86_dtable *table, const char *name)
{
    uint64_t addr;
    uint8_t buf[10];
    if (!memory_operand(ctx, insn, &addr, out) || !emu_read(ctx, addr, buf, 10, out))
        return;
    uint16_t limit;
    uint64_t base;
    memcpy(&limit, buf, 2);
    memcpy(&base, buf + 2, 8);
    if (!emu_canonical(base)) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    emu_note(out, name, table->base, base);
    table->base = base;
    table->limit = limit;
    emu_advance(ctx, insn, out);
}

static void store_dtable(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                         struct emu_result *out, const struct x86_dtable *table, const char *name)
{
    uint64_t addr;
    uint8_t buf[10];
    memcpy(buf, &table->limit, 2);
    memcpy(buf + 2, &table->base, 8);
    if (!memory_operand(ctx, insn, &addr, out) || !emu_write(ctx, addr, buf, 10, out))
        return;
    emu_note(out, name, table->base, table->base);
    emu_advance(ctx, insn, out);
}

void emu_exec_lgdt(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    load_dtable(ctx, insn, out, &ctx->state->gdtr, "GDTR.base");
}

void emu_exec_lidt(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    load_dtable(ctx, insn, out, &ctx->state->idtr, "IDTR.base");
}

void emu_exec_sgdt(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    store_dtable(ctx, insn, out, &ctx->state->gdtr, "GDTR.base");
}

void emu_exec_sidt(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    store_dtable(ctx, insn, out, &ctx->state->idtr, "IDTR.base");
}

static void load_ldt_or_tr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                           struct emu_result *out, bool ltr)
{
    struct vcpu_state *s = ctx->state;
    uint64_t v;
    if (!emu_operand_read(ctx, insn, 0, &v, out))
        return;
    uint16_t sel = (uint16_t)v;
    if (!ltr && (sel & ~3u) == 0) { /* LLDT with a null selector: LDTR unusable */
        emu_note(out, "LDTR", s->ldtr.selector, sel);
        s->ldtr = (struct x86_segment){.selector = sel, .attrib = 0x82};
        emu_advance(ctx, insn, out);
        return;
    }
    uint64_t lo, hi;
    if ((sel & 4) || !emu_descriptor(ctx, sel, &lo, &hi)) { /* must name the GDT */
        emu_raise(out, EMU_GP, true, sel & ~3u);
        return;
    }
    unsigned want = ltr ? 0x9 : 0x2; /* available 64-bit TSS / LDT (SDM vol. 3A 3.5) */
    if (DESC_S(lo) || DESC_TYPE(lo) != want) {
        emu_raise(out, EMU_GP, true, sel & ~3u);
        return;
    }
    if (!DESC_P(lo)) {
        emu_raise(out, EMU_NP, true, sel & ~3u);
        return;
    }
    if (ltr) { /* LTR marks the descriptor busy in memory (SDM vol. 2A LTR) */
        uint64_t busy = lo | (2ULL << 40);
        if (!emu_write(ctx, s->gdtr.base + (sel & ~7u), &busy, 8, out))
            return;
        lo = busy;
    }
    struct x86_segment *seg = ltr ? &s->tr : &s->ldtr;
    emu_note(out, ltr ? "TR" : "LDTR", seg->selector, sel);
    emu_segment_load(seg, sel, lo, hi);
    emu_advance(ctx, insn, out);
}

void emu_exec_lldt(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    load_ldt_or_tr(ctx, insn, out, false);
}

void emu_exec_ltr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    load_ldt_or_tr(ctx, insn, out, true);
}

void emu_exec_sldt(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    emu_store_result(ctx, insn, out, ctx->state->ldtr.selector, "LDTR");
}

void emu_exec_str(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    emu_store_result(ctx, insn, out, ctx->state->tr.selector, "TR");
}
