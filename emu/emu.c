/* emu.c - emu_execute(): each sensitive instruction at the virtual CPU's CPL 0.
 *
 * The semantics follow the Intel SDM vol. 2 entry of each instruction (operation and
 * "64-Bit Mode Exceptions"); the few places where vmlab's virtual CPU chooses (SYSENTER, RDPMC)
 * say so. Callers: trap_emulate's signal handler and dbt's callouts - so nothing here may
 * allocate, lock or print.
 */
#include <string.h>

#include "emu_internal.h"

/* MSR numbers (Intel SDM vol. 4, table 2-2). */
enum {
    MSR_TSC = 0x10,
    MSR_APIC_BASE = 0x1B,
    MSR_MTRRCAP = 0xFE,
    MSR_SYSENTER_CS = 0x174,
    MSR_SYSENTER_ESP = 0x175,
    MSR_SYSENTER_EIP = 0x176,
    MSR_MISC_ENABLE = 0x1A0,
    MSR_PAT = 0x277,
    MSR_MTRR_DEF_TYPE = 0x2FF,
    MSR_EFER = 0xC0000080,
    MSR_STAR = 0xC0000081,
    MSR_LSTAR = 0xC0000082,
    MSR_CSTAR = 0xC0000083,
    MSR_SFMASK = 0xC0000084,
    MSR_FS_BASE = 0xC0000100,
    MSR_GS_BASE = 0xC0000101,
    MSR_KERNEL_GS_BASE = 0xC0000102,
    MSR_TSC_AUX = 0xC0000103,
};
#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

/* RFLAGS bits POPF/IRET may change at CPL 0 (SDM vol. 2B POPF, table 4-15). */
#define RFLAGS_WRITABLE                                                                            \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF |               \
     X86_EFLAGS_TF | X86_EFLAGS_IF | X86_EFLAGS_DF | X86_EFLAGS_OF | X86_EFLAGS_IOPL |             \
     X86_EFLAGS_NT | X86_EFLAGS_AC | X86_EFLAGS_ID)
#define CR4_KNOWN                                                                                  \
    (X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | X86_CR4_PAE |            \
     X86_CR4_MCE | X86_CR4_PGE | X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT |               \
     X86_CR4_UMIP | X86_CR4_FSGSBASE | X86_CR4_PCIDE | X86_CR4_OSXSAVE | X86_CR4_SMEP |            \
     X86_CR4_SMAP)

/* Control bits that change how linear addresses translate. */
#define CR0_PAGING (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE)
#define CR4_PAGING                                                                                 \
    (X86_CR4_PGE | X86_CR4_PAE | X86_CR4_PSE | X86_CR4_PCIDE | X86_CR4_SMEP | X86_CR4_SMAP)

static void advance(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                    struct emu_result *out)
{
    ctx->state->rip += insn->length;
    out->status = EMU_OK;
}

static void note(struct emu_result *out, const char *field, uint64_t old, uint64_t new)
{
    out->field = field;
    out->old_value = old;
    out->new_value = new;
}

static void set_flag(struct vcpu_state *s, uint64_t flag, bool on)
{
    s->rflags = on ? s->rflags | flag : s->rflags & ~flag;
}

/* ---- interrupt flag ---------------------------------------------------------------- */

static void exec_cli_sti(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                         struct emu_result *out, bool sti)
{
    struct vcpu_state *s = ctx->state;
    bool was = s->rflags & X86_EFLAGS_IF;
    set_flag(s, X86_EFLAGS_IF, sti);
    note(out, "IF_virt", was, sti);
    if (sti && !was) { /* STI shadow only when IF was clear (SDM vol. 2B STI) */
        s->interrupt_shadow = true;
        out->interrupts_enabled_now = true;
    }
    advance(ctx, insn, out);
}

static void exec_pushf(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                       struct emu_result *out)
{
    unsigned size = insn->info.operand_width / 8;
    uint64_t image = ctx->state->rflags & ~(uint64_t)(X86_EFLAGS_RF | X86_EFLAGS_VM);
    if (!emu_push(ctx, image, size, out))
        return;
    note(out, "IF_virt pushed", (image >> 9) & 1, (image >> 9) & 1);
    advance(ctx, insn, out);
}

static void exec_popf(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                      struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    unsigned size = insn->info.operand_width / 8;
    uint64_t v;
    if (!emu_pop(ctx, &v, size, out))
        return;
    uint64_t mask = size == 2 ? (RFLAGS_WRITABLE & 0xFFFF) : RFLAGS_WRITABLE;
    bool was = s->rflags & X86_EFLAGS_IF;
    s->rflags = (s->rflags & ~mask) | (v & mask) | X86_EFLAGS_FIXED;
    bool now = s->rflags & X86_EFLAGS_IF;
    note(out, "IF_virt", was, now);
    out->interrupts_enabled_now = now && !was;
    advance(ctx, insn, out);
}

/* ---- port I/O -------------------------------------------------------------------------- */

static uint16_t io_port(const struct vcpu_state *s, const ZydisDecodedOperand *op)
{
    return op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? (uint16_t)op->imm.value.u
                                                    : (uint16_t)s->gpr[X86_RDX];
}

static unsigned string_io_size(ZydisMnemonic m)
{
    switch (m) {
    case ZYDIS_MNEMONIC_INSB:
    case ZYDIS_MNEMONIC_OUTSB:
        return 1;
    case ZYDIS_MNEMONIC_INSW:
    case ZYDIS_MNEMONIC_OUTSW:
        return 2;
    default:
        return 4;
    }
}

static uint64_t addr_mask(const struct x86_decoded_insn *insn)
{
    return insn->info.address_width == 64 ? ~0ULL : 0xFFFFFFFFULL;
}

static bool has_rep(const struct x86_decoded_insn *insn)
{
    return insn->info.attributes &
           (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE);
}

static void exec_in_out(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                        struct emu_result *out, bool is_out)
{
    struct vcpu_state *s = ctx->state;
    const ZydisDecodedOperand *reg = &insn->operands[is_out ? 1 : 0];
    out->io.direction = is_out ? 1 : 0;
    out->io.port = io_port(s, &insn->operands[is_out ? 0 : 1]);
    out->io.size = (uint8_t)(reg->size / 8);
    out->io.count = 1;
    out->io.string = false;
    out->status = EMU_EXIT_IO;
    note(out, is_out ? "port out" : "port in", out->io.port, out->io.port);
    if (is_out) {
        uint64_t v = s->gpr[X86_RAX];
        memcpy(out->io.data, &v, out->io.size);
        s->rip += insn->length;
    }
}

static void exec_string_io(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                           struct emu_result *out, bool is_out)
{
    struct vcpu_state *s = ctx->state;
    unsigned size = string_io_size(insn->info.mnemonic);
    bool rep = has_rep(insn);
    uint64_t mask = addr_mask(insn);
    uint64_t count = rep ? s->gpr[X86_RCX] & mask : 1;
    if (count == 0) { /* REP with RCX = 0: nothing (SDM vol. 2B REP) */
        advance(ctx, insn, out);
        return;
    }
    uint64_t chunk = sizeof(out->io.data) / size;
    if (count < chunk)
        chunk = count;
    out->io.direction = is_out ? 1 : 0;
    out->io.port = (uint16_t)s->gpr[X86_RDX];
    out->io.size = (uint8_t)size;
    out->io.string = true;
    out->io.rep = rep;
    note(out, is_out ? "port out" : "port in", out->io.port, out->io.port);
    if (!is_out) {
        out->io.count = (uint32_t)chunk;
        out->status = EMU_EXIT_IO; /* emu_complete_in() stores the data */
        return;
    }
    int64_t step = (s->rflags & X86_EFLAGS_DF) ? -(int64_t)size : (int64_t)size;
    uint64_t rsi = s->gpr[X86_RSI];
    uint64_t seg_base = 0;
    for (unsigned i = 0; i < insn->info.operand_count; i++)
        if (insn->operands[i].type == ZYDIS_OPERAND_TYPE_MEMORY) {
            if (insn->operands[i].mem.segment == ZYDIS_REGISTER_FS)
                seg_base = s->fs.base;
            else if (insn->operands[i].mem.segment == ZYDIS_REGISTER_GS)
                seg_base = s->gs.base;
        }
    uint64_t done = 0;
    struct emu_result fault;
    for (; done < chunk; done++) {
        if (!emu_read(ctx, seg_base + (rsi & mask), out->io.data + done * size, size, &fault))
            break;
        rsi += (uint64_t)step;
    }
    if (done == 0) { /* the first element faults: the instruction does (a later one, later) */
        emu_raise(out, fault.vector, fault.has_error_code, fault.error_code);
        out->cr2 = fault.cr2;
        return;
    }
    s->gpr[X86_RSI] = (s->gpr[X86_RSI] & ~mask) | (rsi & mask);
    if (rep)
        s->gpr[X86_RCX] = (s->gpr[X86_RCX] & ~mask) | ((count - done) & mask);
    if (!rep || count == done)
        s->rip += insn->length;
    out->io.count = (uint32_t)done;
    out->status = EMU_EXIT_IO;
}

void emu_complete_in(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     const struct emu_io *io, const uint8_t *data, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    out->status = EMU_OK;
    if (!io->string) {
        uint64_t v = 0;
        memcpy(&v, data, io->size);
        emu_reg_write(s, insn->operands[0].reg.value, v);
        s->rip += insn->length;
        return;
    }
    uint64_t mask = addr_mask(insn);
    int64_t step = (s->rflags & X86_EFLAGS_DF) ? -(int64_t)io->size : (int64_t)io->size;
    uint64_t rdi = s->gpr[X86_RDI];
    uint64_t done = 0;
    for (; done < io->count; done++) {
        if (!emu_write(ctx, rdi & mask, data + done * io->size, io->size, out))
            break;
        rdi += (uint64_t)step;
    }
    s->gpr[X86_RDI] = (s->gpr[X86_RDI] & ~mask) | (rdi & mask);
    if (io->rep) {
        uint64_t left = (s->gpr[X86_RCX] & mask) - done;
        s->gpr[X86_RCX] = (s->gpr[X86_RCX] & ~mask) | (left & mask);
        if (left == 0)
            s->rip += insn->length;
    } else if (done == io->count) {
        s->rip += insn->length;
    }
}

/* ---- control and debug registers ------------------------------------------------------ */

static void exec_mov_cr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                        struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    bool to_cr = ZydisRegisterGetClass(insn->operands[0].reg.value) == ZYDIS_REGCLASS_CONTROL;
    ZydisRegister cr = insn->operands[to_cr ? 0 : 1].reg.value;
    ZydisRegister gpr = insn->operands[to_cr ? 1 : 0].reg.value;
    uint64_t *reg;
    static const char *const names[] = {"CR0", "CR2", "CR3", "CR4", "CR8"};
    const char *name;
    switch (cr) {
    case ZYDIS_REGISTER_CR0:
        reg = &s->cr0;
        name = names[0];
        break;
    case ZYDIS_REGISTER_CR2:
        reg = &s->cr2;
        name = names[1];
        break;
    case ZYDIS_REGISTER_CR3:
        reg = &s->cr3;
        name = names[2];
        break;
    case ZYDIS_REGISTER_CR4:
        reg = &s->cr4;
        name = names[3];
        break;
    case ZYDIS_REGISTER_CR8:
        reg = &s->cr8;
        name = names[4];
        break;
    default:
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    if (!to_cr) {
        emu_reg_write(s, gpr, *reg);
        note(out, name, *reg, *reg);
        advance(ctx, insn, out);
        return;
    }
    uint64_t v = emu_reg_read(s, gpr);
    bool long_mode = s->efer & EFER_LMA;
    bool bad = false;
    switch (cr) { /* #GP(0) conditions: SDM vol. 2B "MOV-Move to/from Control Registers" */
    case ZYDIS_REGISTER_CR0:
        v |= X86_CR0_ET; /* hardwired */
        bad = (v >> 32) || ((v & X86_CR0_PG) && !(v & X86_CR0_PE)) ||
              ((v & X86_CR0_NW) && !(v & X86_CR0_CD)) || (long_mode && !(v & X86_CR0_PG));
        break;
    case ZYDIS_REGISTER_CR3:
        bad = v >> 52;
        break;
    case ZYDIS_REGISTER_CR4:
        bad = (v & ~(uint64_t)CR4_KNOWN) || (long_mode && !(v & X86_CR4_PAE));
        break;
    case ZYDIS_REGISTER_CR8:
        bad = v >> 4;
        break;
    default:
        break;
    }
    if (bad) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    note(out, name, *reg, v);
    uint64_t old = *reg;
    *reg = v;
    advance(ctx, insn, out);
    /* What a control-register write does to cached translations (SDM vol. 3A 4.10.4.1). */
    if (cr == ZYDIS_REGISTER_CR3)
        emu_tlb_flush(ctx, EMU_TLB_CR3, 0);
    else if ((cr == ZYDIS_REGISTER_CR0 && ((old ^ v) & CR0_PAGING)) ||
             (cr == ZYDIS_REGISTER_CR4 && ((old ^ v) & CR4_PAGING)))
        emu_tlb_flush(ctx, EMU_TLB_ALL, 0);
}

static void exec_mov_dr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                        struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    bool to_dr = ZydisRegisterGetClass(insn->operands[0].reg.value) == ZYDIS_REGCLASS_DEBUG;
    ZydisRegister dr = insn->operands[to_dr ? 0 : 1].reg.value;
    ZydisRegister gpr = insn->operands[to_dr ? 1 : 0].reg.value;
    unsigned n = (unsigned)(dr - ZYDIS_REGISTER_DR0);
    if (n > 7) {
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    if (n == 4 || n == 5) { /* aliases of DR6/DR7 unless CR4.DE (SDM vol. 3B 18.2.2) */
        if (s->cr4 & X86_CR4_DE) {
            emu_raise(out, EMU_UD, false, 0);
            return;
        }
        n += 2;
    }
    if (!to_dr) {
        emu_reg_write(s, gpr, s->dr[n]);
        note(out, "DR", n, s->dr[n]);
        advance(ctx, insn, out);
        return;
    }
    uint64_t v = emu_reg_read(s, gpr);
    if ((n == 6 || n == 7) && (v >> 32)) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    note(out, "DR", s->dr[n], v);
    s->dr[n] = v;
    advance(ctx, insn, out);
}

/* ---- descriptor tables and task register ------------------------------------------ */

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

static void exec_load_dtable(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
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
    note(out, name, table->base, base);
    table->base = base;
    table->limit = limit;
    advance(ctx, insn, out);
}

static void exec_store_dtable(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                              struct emu_result *out, const struct x86_dtable *table,
                              const char *name)
{
    uint64_t addr;
    uint8_t buf[10];
    memcpy(buf, &table->limit, 2);
    memcpy(buf + 2, &table->base, 8);
    if (!memory_operand(ctx, insn, &addr, out) || !emu_write(ctx, addr, buf, 10, out))
        return;
    note(out, name, table->base, table->base);
    advance(ctx, insn, out);
}

static void exec_lldt_ltr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                          struct emu_result *out, bool ltr)
{
    struct vcpu_state *s = ctx->state;
    uint64_t v;
    if (!emu_operand_read(ctx, insn, 0, &v, out))
        return;
    uint16_t sel = (uint16_t)v;
    if (!ltr && (sel & ~3u) == 0) { /* LLDT with a null selector: LDTR unusable */
        note(out, "LDTR", s->ldtr.selector, sel);
        s->ldtr = (struct x86_segment){.selector = sel, .attrib = 0x82};
        advance(ctx, insn, out);
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
    note(out, ltr ? "TR" : "LDTR", seg->selector, sel);
    emu_segment_load(seg, sel, lo, hi);
    advance(ctx, insn, out);
}

static void exec_store_selector(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                                struct emu_result *out, uint64_t value, const char *name)
{
    /* To a register: zero-extended to the operand size; to memory: 16 bits. */
    if (!emu_operand_write(ctx, insn, 0, value, out))
        return;
    note(out, name, value, value);
    advance(ctx, insn, out);
}

static void exec_lmsw(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                      struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint64_t v;
    if (!emu_operand_read(ctx, insn, 0, &v, out))
        return;
    /* Loads CR0[3:0]; can set PE but never clear it (SDM vol. 2A LMSW). */
    uint64_t cr0 = (s->cr0 & ~0xEULL) | (v & 0xF) | (s->cr0 & X86_CR0_PE);
    note(out, "CR0", s->cr0, cr0);
    s->cr0 = cr0;
    advance(ctx, insn, out);
}

/* ---- MSRs -------------------------------------------------------------------------------- */

static uint64_t *msr_slot(struct vcpu_state *s, uint32_t msr)
{
    switch (msr) {
    case MSR_APIC_BASE:
        return &s->apic_base;
    case MSR_SYSENTER_CS:
        return &s->sysenter_cs;
    case MSR_SYSENTER_ESP:
        return &s->sysenter_esp;
    case MSR_SYSENTER_EIP:
        return &s->sysenter_eip;
    case MSR_MISC_ENABLE:
        return &s->misc_enable;
    case MSR_PAT:
        return &s->pat;
    case MSR_MTRR_DEF_TYPE:
        return &s->mtrr_def_type;
    case MSR_EFER:
        return &s->efer;
    case MSR_STAR:
        return &s->star;
    case MSR_LSTAR:
        return &s->lstar;
    case MSR_CSTAR:
        return &s->cstar;
    case MSR_SFMASK:
        return &s->sfmask;
    case MSR_FS_BASE:
        return &s->fs.base;
    case MSR_GS_BASE:
        return &s->gs.base;
    case MSR_KERNEL_GS_BASE:
        return &s->kernel_gs_base;
    case MSR_TSC_AUX:
        return &s->tsc_aux;
    default:
        return NULL;
    }
}

static void exec_rdmsr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                       struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint32_t msr = (uint32_t)s->gpr[X86_RCX];
    uint64_t v;
    uint64_t *slot = msr_slot(s, msr);
    if (msr == MSR_TSC)
        v = emu_virtual_tsc(s);
    else if (msr == MSR_MTRRCAP)
        v = 0;
    else if (slot)
        v = *slot;
    else {
        emu_raise(out, EMU_GP, true, 0); /* unknown MSR (SDM vol. 2B RDMSR) */
        return;
    }
    s->gpr[X86_RAX] = (uint32_t)v;
    s->gpr[X86_RDX] = v >> 32;
    note(out, "MSR", msr, v);
    advance(ctx, insn, out);
}

static void exec_wrmsr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                       struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint32_t msr = (uint32_t)s->gpr[X86_RCX];
    uint64_t v = ((s->gpr[X86_RDX] & 0xFFFFFFFF) << 32) | (s->gpr[X86_RAX] & 0xFFFFFFFF);
    uint64_t *slot = msr_slot(s, msr);
    bool address_msr = msr == MSR_LSTAR || msr == MSR_CSTAR || msr == MSR_FS_BASE ||
                       msr == MSR_GS_BASE || msr == MSR_KERNEL_GS_BASE || msr == MSR_SYSENTER_ESP ||
                       msr == MSR_SYSENTER_EIP;
    if (msr == MSR_TSC) {
        s->tsc_offset = (int64_t)(v - emu_time_ns());
        note(out, "MSR", msr, v);
        advance(ctx, insn, out);
        return;
    }
    if (!slot || (address_msr && !emu_canonical(v)) ||
        (msr == MSR_EFER && (v & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))) ||
        (msr == MSR_TSC_AUX && (v >> 32))) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    if (msr == MSR_EFER) /* LMA is read-only: it reflects CR0.PG && LME */
        v = (v & ~EFER_LMA) | (s->efer & EFER_LMA);
    note(out, "MSR", msr, v);
    bool nxe_changed = msr == MSR_EFER && ((*slot ^ v) & EFER_NXE);
    *slot = v;
    advance(ctx, insn, out);
    if (nxe_changed) /* the meaning of bit 63 in every entry changed */
        emu_tlb_flush(ctx, EMU_TLB_ALL, 0);
}

/* ---- system calls and interrupts ------------------------------------------------------ */

static void exec_syscall(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                         struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    if (!(s->efer & EFER_SCE)) { /* SDM vol. 2B SYSCALL: #UD if EFER.SCE = 0 */
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    uint64_t next = s->rip + insn->length;
    s->gpr[X86_RCX] = next;
    s->gpr[X86_R11] = s->rflags & ~(uint64_t)X86_EFLAGS_RF;
    s->rflags &= ~(s->sfmask | X86_EFLAGS_RF);
    s->rflags |= X86_EFLAGS_FIXED;
    uint16_t cs = (uint16_t)((s->star >> 32) & 0xFFFC);
    /* Flat 64-bit CS and SS as the CPU loads them, without reading the GDT. */
    s->cs.selector = cs;
    s->cs.base = 0;
    s->cs.limit = 0xFFFFFFFF;
    s->cs.attrib = 0xB | (1 << 4) | (1 << 7) | (1 << 13) | (1 << 15);
    s->ss.selector = (uint16_t)(cs + 8);
    s->ss.base = 0;
    s->ss.limit = 0xFFFFFFFF;
    s->ss.attrib = 0x3 | (1 << 4) | (1 << 7) | (1 << 14) | (1 << 15);
    note(out, "RIP", next, s->lstar);
    s->rip = s->lstar;
    out->status = EMU_OK;
}

static void exec_sysret(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                        struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    (void)insn;
    if (!(s->efer & EFER_SCE)) {
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    if (!emu_canonical(s->gpr[X86_RCX])) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    /* SYSRETQ: RIP = RCX, RFLAGS = R11, CS = STAR[63:48] + 16, SS = STAR[63:48] + 8, RPL 3.
     * The emulating backends model a CPL-0 guest; the returned-to privilege is kept only in
     * the selectors' RPL (the code after SYSRET runs exactly as before). */
    uint16_t base = (uint16_t)(s->star >> 48);
    bool was = s->rflags & X86_EFLAGS_IF;
    s->rflags = (s->gpr[X86_R11] & RFLAGS_WRITABLE) | X86_EFLAGS_FIXED;
    out->interrupts_enabled_now = !was && (s->rflags & X86_EFLAGS_IF);
    s->cs.selector = (uint16_t)((base + 16) | 3);
    s->ss.selector = (uint16_t)((base + 8) | 3);
    note(out, "RIP", s->rip, s->gpr[X86_RCX]);
    s->rip = s->gpr[X86_RCX];
    out->status = EMU_OK;
}

static void exec_iret(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                      struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    unsigned size = insn->info.operand_width / 8; /* IRETQ: 8 */
    uint64_t f[5];
    uint64_t rsp = s->gpr[X86_RSP];
    for (unsigned i = 0; i < 5; i++) {
        f[i] = 0;
        if (!emu_read(ctx, rsp + (uint64_t)i * size, &f[i], size, out))
            return;
    }
    uint64_t old_rip = s->rip;
    struct x86_segment old_cs = s->cs;
    if (!emu_load_code_segment(ctx, (uint16_t)f[1], out))
        return;
    if (!emu_canonical(f[0])) {
        s->cs = old_cs;
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    uint16_t ss = (uint16_t)f[4];
    if ((ss & ~3u) != 0 && !emu_load_data_segment(ctx, ZYDIS_REGISTER_SS, ss, out)) {
        s->cs = old_cs;
        return;
    }
    if ((ss & ~3u) == 0)
        s->ss.selector = ss;
    bool was = s->rflags & X86_EFLAGS_IF;
    uint64_t mask = size == 2 ? (RFLAGS_WRITABLE & 0xFFFF) : RFLAGS_WRITABLE;
    s->rflags = (s->rflags & ~mask) | (f[2] & mask) | X86_EFLAGS_FIXED;
    s->rflags &= ~(uint64_t)X86_EFLAGS_RF;
    out->interrupts_enabled_now = !was && (s->rflags & X86_EFLAGS_IF);
    s->gpr[X86_RSP] = f[3];
    s->rip = f[0];
    s->interrupt_shadow = false;
    note(out, "IF_virt", was, (s->rflags & X86_EFLAGS_IF) != 0);
    (void)old_rip;
    out->status = EMU_OK;
}

static void exec_int(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint8_t vector;
    enum emu_event_kind kind = EMU_EVENT_SOFTWARE;
    switch (insn->info.mnemonic) {
    case ZYDIS_MNEMONIC_INT3:
        vector = 3;
        break;
    case ZYDIS_MNEMONIC_INT1:
        vector = 1;
        kind = EMU_EVENT_TRAP;
        break;
    case ZYDIS_MNEMONIC_INTO:
        emu_raise(out, EMU_UD, false, 0);
        return; /* invalid in 64-bit */
    default:
        vector = (uint8_t)insn->operands[0].imm.value.u;
        break;
    }
    s->rip += insn->length;
    if (emu_deliver_event(ctx, kind, vector, false, 0, out) == EMU_SHUTDOWN) {
        out->status = EMU_SHUTDOWN;
        return;
    }
    out->status = EMU_OK;
}

/* ---- segments and far transfers ------------------------------------------------------ */

static void exec_mov_seg(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                         struct emu_result *out, bool to_seg)
{
    struct vcpu_state *s = ctx->state;
    if (!to_seg) {
        uint64_t sel = emu_reg_read(s, insn->operands[1].reg.value);
        exec_store_selector(ctx, insn, out, sel, "selector");
        return;
    }
    uint64_t v;
    if (!emu_operand_read(ctx, insn, 1, &v, out))
        return;
    ZydisRegister sreg = insn->operands[0].reg.value;
    uint16_t old = (uint16_t)emu_reg_read(s, sreg);
    if (!emu_load_data_segment(ctx, sreg, (uint16_t)v, out))
        return;
    if (sreg == ZYDIS_REGISTER_SS)
        s->interrupt_shadow = true; /* MOV SS shadow (SDM vol. 3A 6.8.3) */
    note(out, "selector", old, (uint16_t)v);
    advance(ctx, insn, out);
}

static void exec_push_pop_seg(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                              struct emu_result *out, bool push)
{
    struct vcpu_state *s = ctx->state;
    ZydisRegister sreg = insn->operands[0].reg.value;
    unsigned size = insn->info.operand_width / 8;
    if (push) {
        uint64_t sel = emu_reg_read(s, sreg);
        if (!emu_push(ctx, sel, size, out))
            return;
        note(out, "selector", sel, sel);
        advance(ctx, insn, out);
        return;
    }
    uint64_t v;
    uint64_t rsp = s->gpr[X86_RSP];
    if (!emu_pop(ctx, &v, size, out))
        return;
    if (!emu_load_data_segment(ctx, sreg, (uint16_t)v, out)) {
        s->gpr[X86_RSP] = rsp;
        return;
    }
    note(out, "selector", v, v);
    advance(ctx, insn, out);
}

static void exec_far(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     struct emu_result *out, bool call)
{
    struct vcpu_state *s = ctx->state;
    uint64_t addr;
    if (insn->operands[0].type != ZYDIS_OPERAND_TYPE_MEMORY) {
        emu_raise(out, EMU_UD, false, 0); /* direct far forms are invalid in 64-bit mode */
        return;
    }
    if (!emu_mem_address(s, insn, &insn->operands[0], &addr)) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    unsigned off_size = insn->info.operand_width == 64 ? 8 : insn->info.operand_width / 8;
    uint64_t offset = 0;
    uint16_t sel = 0;
    if (!emu_read(ctx, addr, &offset, off_size, out) ||
        !emu_read(ctx, addr + off_size, &sel, 2, out))
        return;
    uint64_t next = s->rip + insn->length;
    struct x86_segment old_cs = s->cs;
    uint64_t old_rsp = s->gpr[X86_RSP];
    if (!emu_load_code_segment(ctx, sel, out))
        return;
    if (call) {
        unsigned slot = off_size == 8 ? 8 : off_size;
        if (!emu_push(ctx, old_cs.selector, slot, out) || !emu_push(ctx, next, slot, out)) {
            s->cs = old_cs;
            s->gpr[X86_RSP] = old_rsp;
            return;
        }
    }
    note(out, "CS", old_cs.selector, sel);
    s->rip = offset;
    out->status = EMU_OK;
}

static void exec_far_ret(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                         struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    unsigned size = insn->info.operand_width / 8;
    uint64_t rip, cs;
    uint64_t rsp = s->gpr[X86_RSP];
    if (!emu_pop(ctx, &rip, size, out) || !emu_pop(ctx, &cs, size, out)) {
        s->gpr[X86_RSP] = rsp;
        return;
    }
    uint16_t old = s->cs.selector;
    if (!emu_load_code_segment(ctx, (uint16_t)cs, out)) {
        s->gpr[X86_RSP] = rsp;
        return;
    }
    if (insn->info.operand_count_visible && insn->operands[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
        s->gpr[X86_RSP] += insn->operands[0].imm.value.u; /* RETF imm16 */
    note(out, "CS", old, (uint16_t)cs);
    s->rip = rip;
    out->status = EMU_OK;
}

/* LAR, LSL, VERR, VERW at CPL 0 (SDM vol. 2A LAR/LSL, vol. 2B VERR/VERW): ZF says whether the
 * selector names a descriptor the instruction accepts. */
static void exec_segment_query(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                               struct emu_result *out, enum emu_class cls)
{
    struct vcpu_state *s = ctx->state;
    unsigned src = (cls == EMU_CLASS_LAR || cls == EMU_CLASS_LSL) ? 1 : 0;
    uint64_t v;
    if (!emu_operand_read(ctx, insn, src, &v, out))
        return;
    uint16_t sel = (uint16_t)v;
    uint64_t lo = 0, hi = 0;
    bool ok = emu_descriptor(ctx, sel, &lo, &hi);
    if (ok) {
        unsigned type = DESC_TYPE(lo);
        bool sys = !DESC_S(lo);
        bool conforming_code = DESC_CODE(lo) && (type & 0x4);
        bool privilege_ok = conforming_code || DESC_DPL(lo) >= (sel & 3u); /* CPL 0 */
        switch (cls) {
        case EMU_CLASS_LAR:
            ok = (!sys || type == 0x2 || type == 0x9 || type == 0xB || type == 0xC) &&
                 (sys || privilege_ok);
            break;
        case EMU_CLASS_LSL:
            ok = (!sys || type == 0x2 || type == 0x9 || type == 0xB) && (sys || privilege_ok);
            break;
        case EMU_CLASS_VERR:
            ok = !sys && privilege_ok && (!DESC_CODE(lo) || (type & 0x2));
            break;
        default: /* VERW */
            ok = !sys && privilege_ok && !DESC_CODE(lo) && (type & 0x2);
            break;
        }
    }
    set_flag(s, X86_EFLAGS_ZF, ok);
    if (ok && cls == EMU_CLASS_LAR) {
        /* access rights masked by 00F0FF00H: limit bits 19:16 read as 0 (SDM vol. 2A LAR) */
        emu_reg_write(s, insn->operands[0].reg.value, lo >> 32 & 0x00F0FF00);
    } else if (ok && cls == EMU_CLASS_LSL) {
        uint32_t limit = (uint32_t)((lo & 0xFFFF) | ((lo >> 32) & 0xF0000));
        if (DESC_G(lo))
            limit = (limit << 12) | 0xFFF;
        emu_reg_write(s, insn->operands[0].reg.value, limit);
    }
    note(out, "ZF", sel, ok);
    advance(ctx, insn, out);
}

static void exec_fsgsbase(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                          struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    if (!(s->cr4 & X86_CR4_FSGSBASE)) {
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    ZydisMnemonic m = insn->info.mnemonic;
    uint64_t *base =
        (m == ZYDIS_MNEMONIC_RDFSBASE || m == ZYDIS_MNEMONIC_WRFSBASE) ? &s->fs.base : &s->gs.base;
    ZydisRegister reg = insn->operands[0].reg.value;
    if (m == ZYDIS_MNEMONIC_RDFSBASE || m == ZYDIS_MNEMONIC_RDGSBASE) {
        emu_reg_write(s, reg, *base);
    } else {
        uint64_t v = emu_reg_read(s, reg);
        if (!emu_canonical(v)) {
            emu_raise(out, EMU_GP, true, 0);
            return;
        }
        note(out, "segment base", *base, v);
        *base = v;
    }
    advance(ctx, insn, out);
}

/* ---- the dispatcher ------------------------------------------------------------------------ */

void emu_execute(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    enum emu_class cls = x86_classify(insn);
    out->cls = cls;
    out->status = EMU_UNHANDLED;
    uint32_t regs[4];
    uint64_t tsc;
    switch (cls) {
    case EMU_CLASS_CLI:
        exec_cli_sti(ctx, insn, out, false);
        break;
    case EMU_CLASS_STI:
        exec_cli_sti(ctx, insn, out, true);
        break;
    case EMU_CLASS_HLT:
        s->rip += insn->length;
        out->status = EMU_EXIT_HLT;
        break;
    case EMU_CLASS_IN:
        exec_in_out(ctx, insn, out, false);
        break;
    case EMU_CLASS_OUT:
        exec_in_out(ctx, insn, out, true);
        break;
    case EMU_CLASS_INS:
        exec_string_io(ctx, insn, out, false);
        break;
    case EMU_CLASS_OUTS:
        exec_string_io(ctx, insn, out, true);
        break;
    case EMU_CLASS_MOV_CR:
        exec_mov_cr(ctx, insn, out);
        break;
    case EMU_CLASS_MOV_DR:
        exec_mov_dr(ctx, insn, out);
        break;
    case EMU_CLASS_LGDT:
        exec_load_dtable(ctx, insn, out, &s->gdtr, "GDTR.base");
        break;
    case EMU_CLASS_LIDT:
        exec_load_dtable(ctx, insn, out, &s->idtr, "IDTR.base");
        break;
    case EMU_CLASS_SGDT:
        exec_store_dtable(ctx, insn, out, &s->gdtr, "GDTR.base");
        break;
    case EMU_CLASS_SIDT:
        exec_store_dtable(ctx, insn, out, &s->idtr, "IDTR.base");
        break;
    case EMU_CLASS_LLDT:
        exec_lldt_ltr(ctx, insn, out, false);
        break;
    case EMU_CLASS_LTR:
        exec_lldt_ltr(ctx, insn, out, true);
        break;
    case EMU_CLASS_SLDT:
        exec_store_selector(ctx, insn, out, s->ldtr.selector, "LDTR");
        break;
    case EMU_CLASS_STR:
        exec_store_selector(ctx, insn, out, s->tr.selector, "TR");
        break;
    case EMU_CLASS_SMSW:
        exec_store_selector(ctx, insn, out,
                            insn->operands[0].type == ZYDIS_OPERAND_TYPE_MEMORY ? (s->cr0 & 0xFFFF)
                                                                                : s->cr0,
                            "CR0");
        break;
    case EMU_CLASS_LMSW:
        exec_lmsw(ctx, insn, out);
        break;
    case EMU_CLASS_CLTS:
        note(out, "CR0.TS", (s->cr0 >> 3) & 1, 0);
        s->cr0 &= ~(uint64_t)X86_CR0_TS;
        advance(ctx, insn, out);
        break;
    case EMU_CLASS_RDMSR:
        exec_rdmsr(ctx, insn, out);
        break;
    case EMU_CLASS_WRMSR:
        exec_wrmsr(ctx, insn, out);
        break;
    case EMU_CLASS_INVLPG: {
        /* The operand names a linear address; nothing is accessed, nothing faults (SDM vol.
         * 2A INVLPG). */
        uint64_t gla;
        if (emu_mem_address(s, insn, &insn->operands[0], &gla)) {
            note(out, "INVLPG", gla, gla);
            emu_tlb_flush(ctx, EMU_TLB_PAGE, gla);
        }
        advance(ctx, insn, out);
        break;
    }
    case EMU_CLASS_INVPCID:
        emu_tlb_flush(ctx, EMU_TLB_ALL, 0); /* every form at least flushes what it names */
        advance(ctx, insn, out);
        break;
    case EMU_CLASS_WBINVD:
    case EMU_CLASS_INVD:
    case EMU_CLASS_MONITOR_MWAIT:
        /* No cache is modelled: these complete with no architectural effect. */
        advance(ctx, insn, out);
        break;
    case EMU_CLASS_RDPMC:
        /* vmlab's virtual CPU has four idle counters (CPUID leaf 0xA is not advertised). */
        if ((uint32_t)s->gpr[X86_RCX] > 3) {
            emu_raise(out, EMU_GP, true, 0);
            break;
        }
        s->gpr[X86_RAX] = 0;
        s->gpr[X86_RDX] = 0;
        advance(ctx, insn, out);
        break;
    case EMU_CLASS_SWAPGS: {
        uint64_t t = s->gs.base;
        note(out, "GS.base", t, s->kernel_gs_base);
        s->gs.base = s->kernel_gs_base;
        s->kernel_gs_base = t;
        advance(ctx, insn, out);
        break;
    }
    case EMU_CLASS_XSETBV:
        if ((uint32_t)s->gpr[X86_RCX] != 0 || !(s->gpr[X86_RAX] & 1) || (s->gpr[X86_RAX] & ~7ULL) ||
            (uint32_t)s->gpr[X86_RDX]) {
            emu_raise(out, EMU_GP, true, 0);
            break;
        }
        note(out, "XCR0", s->xcr0, s->gpr[X86_RAX] & 7);
        s->xcr0 = s->gpr[X86_RAX] & 7;
        advance(ctx, insn, out);
        break;
    case EMU_CLASS_SYSCALL:
        exec_syscall(ctx, insn, out);
        break;
    case EMU_CLASS_SYSRET:
        exec_sysret(ctx, insn, out);
        break;
    case EMU_CLASS_SYSENTER:
    case EMU_CLASS_SYSEXIT:
        /* vmlab's virtual CPU follows AMD in long mode: SYSENTER/SYSEXIT raise #UD (AMD APM
         * vol. 3, SYSENTER: "#UD ... in long mode"). */
        emu_raise(out, EMU_UD, false, 0);
        break;
    case EMU_CLASS_IRET:
        exec_iret(ctx, insn, out);
        break;
    case EMU_CLASS_INT:
    case EMU_CLASS_INT3:
        exec_int(ctx, insn, out);
        break;
    case EMU_CLASS_FAR_CALL:
        exec_far(ctx, insn, out, true);
        break;
    case EMU_CLASS_FAR_JMP:
        exec_far(ctx, insn, out, false);
        break;
    case EMU_CLASS_FAR_RET:
        exec_far_ret(ctx, insn, out);
        break;
    case EMU_CLASS_PUSHF:
        exec_pushf(ctx, insn, out);
        break;
    case EMU_CLASS_POPF:
        exec_popf(ctx, insn, out);
        break;
    case EMU_CLASS_LAR:
    case EMU_CLASS_LSL:
    case EMU_CLASS_VERR:
    case EMU_CLASS_VERW:
        exec_segment_query(ctx, insn, out, cls);
        break;
    case EMU_CLASS_MOV_TO_SEG:
        exec_mov_seg(ctx, insn, out, true);
        break;
    case EMU_CLASS_MOV_FROM_SEG:
        exec_mov_seg(ctx, insn, out, false);
        break;
    case EMU_CLASS_PUSH_SEG:
        exec_push_pop_seg(ctx, insn, out, true);
        break;
    case EMU_CLASS_POP_SEG:
        exec_push_pop_seg(ctx, insn, out, false);
        break;
    case EMU_CLASS_FSGSBASE:
        exec_fsgsbase(ctx, insn, out);
        break;
    case EMU_CLASS_CPUID:
        emu_cpuid(s, (uint32_t)s->gpr[X86_RAX], (uint32_t)s->gpr[X86_RCX], regs);
        note(out, "leaf", (uint32_t)s->gpr[X86_RAX], regs[0]);
        s->gpr[X86_RAX] = regs[0];
        s->gpr[X86_RBX] = regs[1];
        s->gpr[X86_RCX] = regs[2];
        s->gpr[X86_RDX] = regs[3];
        advance(ctx, insn, out);
        break;
    case EMU_CLASS_RDTSC:
    case EMU_CLASS_RDTSCP:
        tsc = emu_virtual_tsc(s);
        s->gpr[X86_RAX] = (uint32_t)tsc;
        s->gpr[X86_RDX] = tsc >> 32;
        if (cls == EMU_CLASS_RDTSCP)
            s->gpr[X86_RCX] = (uint32_t)s->tsc_aux;
        note(out, "TSC_virt", tsc, tsc);
        advance(ctx, insn, out);
        break;
    default:
        break;
    }
}
