/* dbt_stubs.c - the fixed stubs at the start of the code cache: entering translated code,
 * leaving it, and the callout into the emulation core.
 *
 * They are generated into the cache (not assembled into the host binary) because translated
 * code jumps to them with rel32 and they address the context page RIP-relative: both must be
 * within 2 GiB, which only the cache region guarantees. What the host needs to get back (its
 * stack pointer and MXCSR, the callout function) and the guest's vector registers while host
 * code runs are in struct dbt_host, reached through a 64-bit absolute address in RAX: a guest
 * store into the context page cannot redirect the host.
 *
 *   entry            called from C as void (*)(void). Pushes the host callee-saved registers,
 *                    records the host RSP and MXCSR, then `reload`: the guest's vector
 *                    registers, MXCSR, RFLAGS (arithmetic flags and DF only: dbt.h DBT_VFLAGS)
 *                    and 16 GPRs (RSP last: from then on the native stack IS the guest stack in
 *                    guest RAM), and jumps to ctx.target.
 *   exit_common      stores the 16 guest GPRs and RFLAGS into the context page, switches back to
 *                    the host stack, then `exit_host`: saves the guest's vector registers and
 *                    MXCSR, loads the host's MXCSR, clears DF and returns from entry. A signal
 *                    handler that leaves translated code resumes at exit_host (the kernel has
 *                    put the guest's registers back by then).
 *   exit_*           set ctx.exit_kind and fall into exit_common (direct exit stubs jump here).
 *   ibl_jump,        the shared lookup of indirect branches and the return-address cache's
 *   ret_miss         miss path (dbt_lookup.c).
 *   callout          like exit_common up to the host stack and exit_host's saving, then calls
 *                    dbt_callout_run(vcpu) in C; a nonzero return goes to `reload` and
 *                    continues at ctx.target without ever leaving entry, zero returns from entry
 *                    (exit_host_saved).
 *
 * Extended state (issue 10: the guest's xmm registers were lost at every callout). Host code
 * - the dispatcher, the emulation core, glibc - may use every vector register (glibc's string
 * functions use ymm/zmm16-31 and opmask registers on AVX-512 machines, and VZEROUPPER clears
 * the upper halves of all the others) and computes with the current MXCSR, which the guest may
 * have changed (an unmasked exception would fault in host code). It uses no x87 or MMX
 * instruction: test_dbt_backend checks that vmlab's code has none (gcc and clang emit x87 only
 * for long double, which vmlab does not use). So the stubs save exactly the vector registers
 * the host's XCR0 enables (zmm0-31 and k0-7 with AVX-512, else ymm0-15, else xmm0-15) and
 * MXCSR, with plain moves: bench_xstate measures the cost, a few ns; XSAVEOPT/XRSTOR of the same
 * components costs several times more on the machines we measured. The x87 unit (registers,
 * control, status and tag words) stays as the guest left it while host code runs - even a
 * FLDCW would raise the guest's pending unmasked exception in host code. When vcpu_run returns
 * to the VMM only the control word is handed over, and the registers are put aside lazily when
 * other code claims the unit (dbt.c, vmm/host_x87.h).
 *
 * The host stack is 16-byte aligned at calls (SysV ABI): entry's caller leaves RSP = 8 mod 16
 * after its call and six pushes keep it there, so the callout subtracts 8 more.
 */
#include <errno.h>
#include <string.h>

#include "dbt_emit.h"

/* movabs rax, &host */
static void emit_host_base(struct emitter *e)
{
    EMIT(e, 0x48, 0xb8);
    uint64_t a = (uint64_t)(uintptr_t)e->c->host;
    emit_bytes(e, &a, 8);
}

/* One instruction from the Zydis encoder: a vector or opmask move between register `reg` and
 * [rax + disp]. EVEX moves take their (unused: K0) write mask as the middle operand. */
static void emit_vector_move(struct emitter *e, ZydisMnemonic m, ZydisRegister reg, uint32_t disp,
                             unsigned bytes, bool store)
{
    ZydisEncoderRequest r;
    memset(&r, 0, sizeof(r));
    r.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
    r.mnemonic = m;
    bool evex = m == ZYDIS_MNEMONIC_VMOVDQU64;
    r.operand_count = evex ? 3 : 2;
    unsigned last = r.operand_count - 1;
    ZydisEncoderOperand *mem = &r.operands[store ? 0 : last], *rg = &r.operands[store ? last : 0];
    if (evex) {
        r.operands[1].type = ZYDIS_OPERAND_TYPE_REGISTER;
        r.operands[1].reg.value = ZYDIS_REGISTER_K0;
    }
    mem->type = ZYDIS_OPERAND_TYPE_MEMORY;
    mem->mem.base = ZYDIS_REGISTER_RAX;
    mem->mem.displacement = disp;
    mem->mem.size = (ZyanU16)bytes;
    rg->type = ZYDIS_OPERAND_TYPE_REGISTER;
    rg->reg.value = reg;
    uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
    ZyanUSize len = sizeof(buf);
    if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&r, buf, &len))) {
        e->overflow = true; /* not expected; dbt_cache_init fails if it happens */
        return;
    }
    emit_bytes(e, buf, len);
}

/* Save (store) or restore the guest's vector registers, with RAX = &host. */
static void emit_vregs(struct emitter *e, bool store)
{
    const struct dbt_cache *c = e->c;
    unsigned n = c->vregs == DBT_VREGS_ZMM ? 32 : 16;
    unsigned size = c->vregs == DBT_VREGS_ZMM ? 64 : c->vregs == DBT_VREGS_YMM ? 32 : 16;
    ZydisRegister first = c->vregs == DBT_VREGS_ZMM   ? ZYDIS_REGISTER_ZMM0
                          : c->vregs == DBT_VREGS_YMM ? ZYDIS_REGISTER_YMM0
                                                      : ZYDIS_REGISTER_XMM0;
    ZydisMnemonic m = c->vregs == DBT_VREGS_ZMM   ? ZYDIS_MNEMONIC_VMOVDQU64
                      : c->vregs == DBT_VREGS_YMM ? ZYDIS_MNEMONIC_VMOVDQU
                                                  : ZYDIS_MNEMONIC_MOVDQU;
    for (unsigned i = 0; i < n; i++)
        emit_vector_move(e, m, (ZydisRegister)(first + i), DBT_HOST_VREGS + i * size, size, store);
    if (c->kregs)
        for (unsigned i = 0; i < 8; i++)
            emit_vector_move(e, c->kregs_64 ? ZYDIS_MNEMONIC_KMOVQ : ZYDIS_MNEMONIC_KMOVW,
                             (ZydisRegister)(ZYDIS_REGISTER_K0 + i), DBT_HOST_KREGS + i * 8,
                             c->kregs_64 ? 8 : 2, store);
}

/* With RAX = &host: keep the guest's vector registers and MXCSR and give host code its own
 * MXCSR; DF is cleared for C code (SysV ABI). */
static void emit_save_guest(struct emitter *e)
{
    EMIT(e, 0xfc); /* cld */
    if (!e->c->save_xstate)
        return;
    emit_vregs(e, true);
    EMIT(e, 0x0f, 0xae, 0x58, DBT_HOST_GUEST_MXCSR); /* stmxcsr [rax+guest_mxcsr] */
    EMIT(e, 0x0f, 0xae, 0x50, DBT_HOST_MXCSR);       /* ldmxcsr [rax+host_mxcsr] */
    if (e->c->vregs != DBT_VREGS_XMM)
        EMIT(e, 0xc5, 0xf8, 0x77); /* vzeroupper: host SSE code without dirty upper halves */
}

/* Store the guest GPRs and RFLAGS, switch to the host stack; leaves RAX = &host. */
static void emit_store_all(struct emitter *e)
{
    for (unsigned r = 0; r < 16; r++)
        emit_ctx_move(e, r, DBT_CTX_GPR(r), true);
    emit_host_base(e);
    EMIT(e, 0x48, 0x8b, 0x60, DBT_HOST_RSP); /* mov rsp, [rax+host_rsp] */
    EMIT(e, 0x9c, 0x8f, 0x05); /* pushfq; pop qword [rflags]: guest flags via the host stack */
    emit_ctx_rel(e, DBT_CTX_RFLAGS, 0);
}

static uint32_t emit_kind_stub(struct emitter *e, enum dbt_exit_kind kind)
{
    uint32_t at = e->pos;
    emit_ctx_store_imm(e, DBT_CTX_EXIT_KIND, kind);
    emit_jmp(e, e->c->exit_common);
    return at;
}

int dbt_stubs_build(struct dbt_cache *c)
{
    struct emitter e = {.c = c, .out = c->rw, .pos = 0, .limit = DBT_CACHE_SIZE};
    c->entry = e.pos;
    EMIT(&e, 0x55, 0x53, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57); /* push callee-saved */
    emit_host_base(&e);
    EMIT(&e, 0x48, 0x89, 0x60, DBT_HOST_RSP);   /* mov [rax+host_rsp], rsp */
    EMIT(&e, 0x0f, 0xae, 0x58, DBT_HOST_MXCSR); /* stmxcsr [rax+host_mxcsr] */
    c->reload = e.pos;
    if (c->save_xstate) {
        emit_host_base(&e);
        emit_vregs(&e, false);
        EMIT(&e, 0x0f, 0xae, 0x50, DBT_HOST_GUEST_MXCSR); /* ldmxcsr [rax+guest_mxcsr] */
    }
    EMIT(&e, 0xff, 0x35); /* push qword [rflags]; popfq */
    emit_ctx_rel(&e, DBT_CTX_RFLAGS, 0);
    EMIT(&e, 0x9d);
    for (unsigned r = 0; r < 16; r++)
        if (r != RSP)
            emit_ctx_move(&e, r, DBT_CTX_GPR(r), false);
    emit_ctx_move(&e, RSP, DBT_CTX_GPR(RSP), false);
    EMIT(&e, 0xff, 0x25); /* jmp [target] */
    emit_ctx_rel(&e, DBT_CTX_TARGET, 0);

    c->exit_common = e.pos;
    emit_store_all(&e);
    c->exit_host = e.pos;
    emit_host_base(&e);
    emit_save_guest(&e);
    c->exit_host_saved = e.pos;
    EMIT(&e, 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5b, 0x5d); /* pop callee-saved */
    EMIT(&e, 0xc3);                                                       /* ret */

    c->exit_continue = emit_kind_stub(&e, DBT_EXIT_CONTINUE);
    c->exit_sensitive = emit_kind_stub(&e, DBT_EXIT_SENSITIVE);
    c->exit_shadow = emit_kind_stub(&e, DBT_EXIT_SHADOW);
    c->exit_ibl_miss = emit_kind_stub(&e, DBT_EXIT_IBL_MISS);
    c->kick_stub = e.pos; /* a kick that landed before translated code ran: leave at once */
    emit_ctx_store_imm(&e, DBT_CTX_LAST_STUB, 0);
    emit_kind_stub(&e, DBT_EXIT_CONTINUE);

    c->callout_stub = e.pos;
    emit_store_all(&e);
    emit_save_guest(&e);
    EMIT(&e, 0x48, 0x83, 0xec, 0x08);          /* sub rsp, 8 */
    EMIT(&e, 0x48, 0x8b, 0x78, DBT_HOST_VCPU); /* mov rdi, [rax+vcpu] */
    EMIT(&e, 0xff, 0x50, DBT_HOST_CALLOUT_FN); /* call [rax+callout_fn] */
    EMIT(&e, 0x48, 0x83, 0xc4, 0x08);          /* add rsp, 8 */
    EMIT(&e, 0x48, 0x85, 0xc0, 0x0f, 0x84);    /* test rax, rax; jz exit_host_saved */
    emit_u32(&e, (uint32_t)((int64_t)c->exit_host_saved - (int64_t)(e.pos + 4)));
    emit_jmp(&e, c->reload);
    c->callout_end = e.pos;

    dbt_emit_lookup_routines(&e); /* ibl_jump, ret_miss (dbt_lookup.c) */
    c->stubs_end = e.pos;
    c->used = (e.pos + 63) & ~63u;
    if (c->opt.cache_offset) { /* dbt.h dbt_options.cache_offset: INT3 up to the first block */
        memset(c->rw + c->used, 0xcc, c->opt.cache_offset);
        c->used += c->opt.cache_offset;
    }
    return e.overflow ? -EINVAL : 0;
}
