/* dbt_lookup.c - indirect jumps, calls and returns: an inline probe of the lookup table.
 *
 * The guest target of an indirect branch is only known at run time. RET pops it into RAX
 * (after saving RAX); JMP/CALL r/m turn the same ModRM into a PUSH and pop it into
 * ctx.next_rip. Then, inline at every site (so that each site's final indirect jump
 * has its own branch-predictor entry, as DynamoRIO inlines its IBL), probes the direct-mapped
 * table keyed by the target's low 16 bits:
 *
 *       rax = target (saved: rax, rcx; target also in ctx.next_rip)
 *       movzx ecx, ax ; lea rcx, [rcx+rcx] ; mov rcx, [rcx*8 + table]    entry.guest_rip
 *       not rax ; lea rcx, [rcx+rax+1]                                   rcx = entry - target
 *       jrcxz hit
 *   miss: restore rax, rcx ; jmp exit_ibl_miss      (the dispatcher translates, fills, goes on)
 *   hit:  mov rcx, [kick] ; jrcxz go ; jmp miss     (a pending kick leaves here)
 *   go:   not rax ; host = entry.host ; count the hit ; restore rax, rcx ; jmp [ibl_target]
 *
 * No instruction in it writes RFLAGS (NOT, LEA, MOV, MOVZX, JRCXZ), so the guest's flags
 * survive without a PUSHFQ/POPFQ pair, and it touches the guest stack not at all.
 */
#include "dbt_emit.h"

static void emit_table_load(struct emitter *e, unsigned field_offset)
{
    EMIT(e, 0x0f, 0xb7, 0xc8);       /* movzx ecx, ax */
    EMIT(e, 0x48, 0x8d, 0x0c, 0x09); /* lea rcx, [rcx+rcx] */
    EMIT(e, 0x48, 0x8b, 0x0c, 0xcd); /* mov rcx, [rcx*8 + disp32] */
    emit_u32(e, (uint32_t)((uint64_t)(uintptr_t)e->c->ibl + field_offset));
}

/* The probe, with the guest target in RAX (and in ctx.next_rip for the miss path) and the
 * guest's RAX and RCX in their scratch slots. */
static void emit_probe(struct emitter *e)
{
    emit_table_load(e, 0);
    EMIT(e, 0x48, 0xf7, 0xd0);             /* not rax */
    EMIT(e, 0x48, 0x8d, 0x4c, 0x01, 0x01); /* lea rcx, [rcx+rax+1] */
    EMIT(e, 0xe3, 0x13);                   /* jrcxz hit (miss is 19 bytes) */
    uint32_t miss = e->pos;
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, false);
    emit_jmp(e, e->c->exit_ibl_miss);
    /* hit: */
    emit_ctx_move(e, RCX, DBT_CTX_KICK, false);
    EMIT(e, 0xe3, 0x02); /* jrcxz go */
    uint8_t back[2] = {0xeb, (uint8_t)(int8_t)((int32_t)miss - (int32_t)(e->pos + 2))};
    emit_bytes(e, back, 2); /* jmp miss */
    /* go: */
    EMIT(e, 0x48, 0xf7, 0xd0); /* not rax: the target again, without reloading it */
    emit_table_load(e, 8);
    emit_ctx_move(e, RCX, DBT_CTX_IBL_TARGET, true);
    emit_ctx_move(e, RCX, DBT_CTX_IBL_HITS, false);
    EMIT(e, 0x48, 0x8d, 0x49, 0x01); /* lea rcx, [rcx+1] */
    emit_ctx_move(e, RCX, DBT_CTX_IBL_HITS, true);
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, false);
    EMIT(e, 0xff, 0x25); /* jmp [ibl_target] */
    emit_ctx_rel(e, DBT_CTX_IBL_TARGET, 0);
}

/* JMP/CALL r/m: the translation has left the target in ctx.next_rip. */
void dbt_emit_indirect_lookup(struct emitter *e)
{
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, true);
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    emit_ctx_move(e, RAX, DBT_CTX_NEXT_RIP, false);
    emit_probe(e);
}

/* RET [imm16]: the target comes off the guest stack straight into RAX (a POP to memory
 * followed by a load of it would wait on store forwarding at every return). If the POP
 * faults, no register has changed yet: the guest state is exact. */
void dbt_emit_return(struct emitter *e, uint16_t pop_bytes)
{
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, true);
    EMIT(e, 0x58); /* pop rax */
    if (pop_bytes) {
        EMIT(e, 0x48, 0x8d, 0xa4, 0x24); /* lea rsp, [rsp+imm] (flags untouched) */
        emit_u32(e, pop_bytes);
    }
    emit_ctx_move(e, RAX, DBT_CTX_NEXT_RIP, true);
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    emit_probe(e);
}
