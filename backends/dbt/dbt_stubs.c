/* dbt_stubs.c - the fixed stubs at the start of the code cache: entering translated code,
 * leaving it, and the callout into the emulation core.
 *
 * They are generated into the cache (not assembled into the host binary) because translated
 * code jumps to them with rel32 and they address the context page RIP-relative: both must be
 * within 2 GiB, which only the cache region guarantees. Register conventions:
 *
 *   entry        called from C as void (*)(void). Pushes the host callee-saved registers,
 *                records the host RSP in ctx.host_rsp, loads RFLAGS and the 16 guest GPRs
 *                from the context page (the guest RSP last: from then on the native stack IS
 *                the guest stack in guest RAM) and jumps to ctx.target.
 *   exit_common  stores the 16 guest GPRs and RFLAGS into the context page, switches back to
 *                the host stack and returns from entry with clean host flags.
 *   exit_*       set ctx.exit_kind and fall into exit_common (direct exit stubs jump here).
 *   callout      like exit_common up to the host stack, then calls dbt_callout_run(vcpu) in
 *                C; a nonzero return reloads the guest state and continues at ctx.target
 *                without ever leaving entry, zero leaves as exit_common does.
 *
 * The host stack is 16-byte aligned at calls (SysV ABI): entry's caller leaves RSP = 8 mod 16
 * after its call and six pushes keep it there, so the callout subtracts 8 more.
 */
#include "dbt_emit.h"

static void emit_store_all(struct emitter *e)
{
    for (unsigned r = 0; r < 16; r++)
        emit_ctx_move(e, r, DBT_CTX_GPR(r), true);
    EMIT(e, 0x48, 0x8b, 0x25); /* mov rsp, [host_rsp] */
    emit_ctx_rel(e, DBT_CTX_HOST_RSP, 0);
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

void dbt_stubs_build(struct dbt_cache *c)
{
    struct emitter e = {.c = c, .out = c->rw, .pos = 0, .limit = DBT_CACHE_SIZE};
    c->entry = e.pos;
    EMIT(&e, 0x55, 0x53, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57); /* push callee-saved */
    EMIT(&e, 0x48, 0x89, 0x25);                                           /* mov [host_rsp], rsp */
    emit_ctx_rel(&e, DBT_CTX_HOST_RSP, 0);
    c->reload = e.pos;
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
    EMIT(&e, 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5b, 0x5d); /* pop callee-saved */
    EMIT(&e, 0x6a, 0x02, 0x9d, 0xc3); /* push 2; popfq (clean flags for the host); ret */

    c->exit_continue = emit_kind_stub(&e, DBT_EXIT_CONTINUE);
    c->exit_sensitive = emit_kind_stub(&e, DBT_EXIT_SENSITIVE);
    c->exit_shadow = emit_kind_stub(&e, DBT_EXIT_SHADOW);
    c->exit_ibl_miss = emit_kind_stub(&e, DBT_EXIT_IBL_MISS);
    c->kick_stub = e.pos; /* a kick that landed before translated code ran: leave at once */
    emit_ctx_store_imm(&e, DBT_CTX_LAST_STUB, 0);
    emit_kind_stub(&e, DBT_EXIT_CONTINUE);

    c->callout_stub = e.pos;
    emit_store_all(&e);
    EMIT(&e, 0x6a, 0x02, 0x9d);       /* push 2; popfq: DF=0 and AC=0 for C code */
    EMIT(&e, 0x48, 0x83, 0xec, 0x08); /* sub rsp, 8 */
    EMIT(&e, 0x48, 0x8b, 0x3d);       /* mov rdi, [vcpu] */
    emit_ctx_rel(&e, DBT_CTX_VCPU, 0);
    EMIT(&e, 0xff, 0x15); /* call [callout_fn] */
    emit_ctx_rel(&e, DBT_CTX_CALLOUT_FN, 0);
    EMIT(&e, 0x48, 0x83, 0xc4, 0x08);       /* add rsp, 8 */
    EMIT(&e, 0x48, 0x85, 0xc0, 0x0f, 0x84); /* test rax, rax; jz exit_host */
    emit_u32(&e, (uint32_t)((int64_t)c->exit_host - (int64_t)(e.pos + 4)));
    emit_jmp(&e, c->reload);
    c->stubs_end = e.pos;
    c->used = (e.pos + 63) & ~63u;
}
