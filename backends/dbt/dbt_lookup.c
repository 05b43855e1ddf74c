/* dbt_lookup.c - indirect jumps, calls and returns: the lookup table and the return-address
 * cache.
 *
 * The guest target of an indirect branch is only known at run time. Every indirect branch
 * brings it into RAX (the guest's RAX saved in ctx.save_rax) and probes the direct-mapped
 * lookup table keyed by the target's low 16 bits (DynamoRIO's "IBL"):
 *
 *       mov [save_rcx], rcx
 *       movzx ecx, ax ; lea rcx, [rcx+rcx] ; mov rcx, [rcx*8 + table]    entry.guest_rip
 *       not rax ; lea rcx, [rcx+rax+1] ; jrcxz hit                       entry - target == 0
 *   miss: not rax ; next_rip = rax ; restore rax, rcx ; jmp exit_ibl_miss   (the dispatcher
 *                                                               translates, fills, goes on)
 *   hit:  mov rcx, [kick] ; jrcxz go ; jmp miss     (a pending kick leaves here)
 *   go:   not rax ; host = entry.host ; count the hit ; restore rax, rcx ; jmp [ibl_target]
 *
 * No instruction in it writes RFLAGS (NOT, LEA, MOV, MOVZX, JRCXZ), so the guest's flags
 * survive without a PUSHFQ/POPFQ pair, and it touches the guest stack not at all.
 *
 * Where the probe is (dbt_options.ibl_shared): once, out of line, in the fixed stubs
 * (ibl_jump), every site ending in `jmp ibl_jump` - 13 to 19 bytes a site instead of ~110,
 * and one indirect JMP for the predictor to learn all targets from (with the global history
 * it uses, as a shared interpreter dispatch does); or inline at every site, each final JMP
 * with its own predictor entry, as DynamoRIO inlines its IBL.
 *
 * Returns (dbt_options.ret_cache, dbt.h DBT_RET_SIZE). A translated CALL pushes the guest
 * return address R and jumps to the target; the block goes on after it with R's "return
 * point", R' (DynamoRIO and Strata call the structure a return cache). A RET pops R and jumps
 * through the return-address cache, direct-mapped by R's low 16 bits, to R':
 *
 *   CALL:  push R ; jmp target (a chained direct exit; CALL r/m: the lookup above)
 *   R':    lea rcx, [rax - R] ; jrcxz 1f ; jmp ret_miss      is it really R? (the cache is
 *          1: restore rcx, rax                               direct-mapped, and a guest may
 *          the code after the CALL                           return elsewhere than its caller)
 *   RET:   mov [save_rax], rax ; pop rax ; [lea rsp, [rsp+imm16]] ; mov [save_rcx], rcx
 *          mov rcx, [kick] ; jrcxz 2f ; jmp ret_miss         a pending kick leaves here
 *          2: movzx ecx, ax ; jmp [rcx*8 + return cache]
 *
 * Eleven instructions in all where the lookup table costs ~25, and the JMP through the cache
 * is an indirect branch of the RET's own, which the predictor learns per return site with
 * its global history - also deep in a recursion, where a return stack buffer has long
 * overflowed. ret_miss (shared, also in every empty entry) probes the lookup table with R.
 * The guest stack only ever holds guest addresses.
 *
 * dbt_options.ret_rsb (off by default: it lost, see docs/REPORT.md) makes guest CALL/RET host
 * CALL/RET instead, so that the processor's return stack buffer predicts guest returns:
 *
 *   CALL:  call L                     pushes R' (the return stack buffer keeps it too)
 *   R':    lea rcx, [rax - R] ; jrcxz 1f ; jmp ret_miss
 *          1: mov [rsp-8], rax        R back into the slot the RET released (a guest reading
 *          mov rcx, [kick] ; jrcxz 2f ; jmp ret_miss        below its stack pointer sees R)
 *          2: restore rcx, rax ; the code after the CALL
 *   L:     mov qword [rsp], R ; jmp target      (after the block's code; R replaces R')
 *   RET:   mov [save_rax], rax ; mov rax, [rsp] ; mov [save_rcx], rcx ; movzx ecx, ax
 *          mov rcx, [rcx*8 + return cache] ; mov [rsp], rcx ; ret [imm16]
 *
 * The guest stack holds R' only between the host CALL and L's first instruction, and the
 * return point only between the RET's two stores and the RET: neither can fault (the slot
 * was just written), and a kick there finds no instruction boundary (dbt_signal.c), so no
 * exception or exit shows a host address to the guest.
 */
#include "dbt_emit.h"

static void emit_table_load(struct emitter *e, unsigned field_offset)
{
    EMIT(e, 0x0f, 0xb7, 0xc8);       /* movzx ecx, ax */
    EMIT(e, 0x48, 0x8d, 0x0c, 0x09); /* lea rcx, [rcx+rcx] */
    EMIT(e, 0x48, 0x8b, 0x0c, 0xcd); /* mov rcx, [rcx*8 + disp32] */
    emit_u32(e, (uint32_t)((uint64_t)(uintptr_t)e->c->ibl + field_offset));
}

/* jrcxz / jmp rel8 to cache offset `to` (within reach: the caller knows) */
static void emit_short(struct emitter *e, uint8_t op, uint32_t to)
{
    uint8_t b[2] = {op, (uint8_t)(int8_t)((int32_t)to - (int32_t)(e->pos + 2))};
    emit_bytes(e, b, 2);
}

/* The probe, with the guest target in RAX, the guest's RAX in save_rax and its RCX already
 * in save_rcx: returns the cache offset of its start. */
static uint32_t emit_probe_saved(struct emitter *e)
{
    uint32_t start = e->pos;
    emit_table_load(e, 0);
    EMIT(e, 0x48, 0xf7, 0xd0);             /* not rax */
    EMIT(e, 0x48, 0x8d, 0x4c, 0x01, 0x01); /* lea rcx, [rcx+rax+1] */
    EMIT(e, 0xe3, 0x00);                   /* jrcxz hit (patched below) */
    uint32_t miss = e->pos;
    EMIT(e, 0x48, 0xf7, 0xd0); /* not rax: the target */
    emit_ctx_move(e, RAX, DBT_CTX_NEXT_RIP, true);
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, false);
    emit_jmp(e, e->c->exit_ibl_miss);
    if (!e->overflow)
        e->out[miss - 1 - e->out_base] = (uint8_t)(e->pos - miss);
    /* hit: */
    emit_ctx_move(e, RCX, DBT_CTX_KICK, false);
    EMIT(e, 0xe3, 0x02); /* jrcxz go */
    emit_short(e, 0xeb, miss);
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
    return start;
}

/* The lookup with the target in RAX and the guest's RAX in save_rax: inline, or a jump to
 * the shared routine. */
static void emit_lookup(struct emitter *e)
{
    if (e->c->opt.ibl_shared) {
        emit_jmp(e, e->c->ibl_jump);
        return;
    }
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    emit_probe_saved(e);
}

void dbt_emit_lookup_routines(struct emitter *e)
{
    struct dbt_cache *c = e->c;
    c->ibl_jump = e->pos;
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    uint32_t saved = emit_probe_saved(e);
    /* ret_miss: RAX = the guest return address, RCX saved. With ret_rsb the RET has released
     * the slot that held the return point: R goes back into it. */
    c->ret_miss = e->pos;
    if (c->opt.ret_rsb)
        EMIT(e, 0x48, 0x89, 0x44, 0x24, 0xf8); /* mov [rsp-8], rax */
    emit_jmp(e, saved);
}

/* The target of JMP/CALL r/m into RAX (the guest's RAX saved first: the operand may use it).
 * A register operand is a MOV; a memory operand goes through the guest stack (PUSH r/m, the
 * same ModRM: its address is computed as the CPU computes the branch's, RSP-relative
 * operands included; POP RAX). False if it cannot be copied. */
static bool emit_target_to_rax(struct emitter *e, const struct x86_decoded_insn *in,
                               dbt_relocate_fn *relocate)
{
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, true);
    if (in->info.raw.modrm.mod == 3) {
        unsigned reg = in->info.raw.modrm.rm | (in->info.raw.rex.B ? 8 : 0);
        if (reg != RAX) { /* mov rax, reg: REX.W(+B) 8B /r */
            uint8_t b[3] = {(uint8_t)(0x48 | (reg >= 8 ? 1 : 0)), 0x8b,
                            (uint8_t)(0xc0 | (reg & 7))};
            emit_bytes(e, b, 3);
        }
        return true;
    }
    if (!relocate(e, in, 6)) /* FF /2 or /4 -> FF /6: push r/m */
        return false;
    EMIT(e, 0x58); /* pop rax */
    return true;
}

bool dbt_emit_indirect_jump(struct emitter *e, const struct x86_decoded_insn *in,
                            dbt_relocate_fn *relocate)
{
    if (!emit_target_to_rax(e, in, relocate))
        return false;
    emit_lookup(e);
    return true;
}

/* CALL r/m without the return-address cache: the target into RAX, push the guest return
 * address, look the target up. */
bool dbt_emit_indirect_call(struct emitter *e, const struct x86_decoded_insn *in,
                            dbt_relocate_fn *relocate)
{
    if (!emit_target_to_rax(e, in, relocate))
        return false;
    EMIT(e, 0x68); /* push imm32 (sign-extended; guest RIPs are below 2 GiB) */
    emit_u32(e, (uint32_t)(in->rip + in->length));
    emit_lookup(e);
    return true;
}

/* RET [imm16] without the return-address cache: the target comes off the guest stack straight
 * into RAX (a POP to memory followed by a load of it would wait on store forwarding at every
 * return). If the POP faults, no register has changed yet: the guest state is exact. */
static void emit_return_lookup(struct emitter *e, uint16_t pop_bytes)
{
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, true);
    EMIT(e, 0x58); /* pop rax */
    if (pop_bytes) {
        EMIT(e, 0x48, 0x8d, 0xa4, 0x24); /* lea rsp, [rsp+imm] (flags untouched) */
        emit_u32(e, pop_bytes);
    }
    emit_lookup(e);
}

/* RET [imm16] through the return-address cache (top of this file). */
void dbt_emit_return(struct emitter *e, uint16_t pop_bytes)
{
    if (!e->c->opt.ret_cache) {
        emit_return_lookup(e, pop_bytes);
        return;
    }
    if (!e->c->opt.ret_rsb) {
        emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, true);
        EMIT(e, 0x58); /* pop rax */
        if (pop_bytes) {
            EMIT(e, 0x48, 0x8d, 0xa4, 0x24); /* lea rsp, [rsp+imm] (flags untouched) */
            emit_u32(e, pop_bytes);
        }
        emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
        emit_ctx_move(e, RCX, DBT_CTX_KICK, false);
        EMIT(e, 0xe3, 0x05); /* jrcxz over the jmp */
        emit_jmp(e, e->c->ret_miss);
        EMIT(e, 0x0f, 0xb7, 0xc8); /* movzx ecx, ax */
        EMIT(e, 0xff, 0x24, 0xcd); /* jmp [rcx*8 + return cache] */
        emit_u32(e, (uint32_t)(uint64_t)(uintptr_t)e->c->ret);
        return;
    }
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, true);
    EMIT(e, 0x48, 0x8b, 0x04, 0x24); /* mov rax, [rsp] */
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    EMIT(e, 0x0f, 0xb7, 0xc8);       /* movzx ecx, ax */
    EMIT(e, 0x48, 0x8b, 0x0c, 0xcd); /* mov rcx, [rcx*8 + return cache] */
    emit_u32(e, (uint32_t)(uint64_t)(uintptr_t)e->c->ret);
    EMIT(e, 0x48, 0x89, 0x0c, 0x24); /* mov [rsp], rcx */
    if (pop_bytes) {
        uint8_t b[3] = {0xc2, (uint8_t)pop_bytes, (uint8_t)(pop_bytes >> 8)};
        emit_bytes(e, b, 3); /* ret imm16 */
    } else {
        EMIT(e, 0xc3); /* ret */
    }
}

/* The return point of a CALL whose guest return address is `ret_rip` (top of this file). */
void dbt_emit_return_point(struct emitter *e, uint64_t ret_rip)
{
    struct dbt_cache *c = e->c;
    EMIT(e, 0x48, 0x8d, 0x88); /* lea rcx, [rax - ret_rip] */
    emit_u32(e, (uint32_t) - (int32_t)ret_rip);
    EMIT(e, 0xe3, 0x05); /* jrcxz over the jmp */
    emit_jmp(e, c->ret_miss);
    if (c->opt.ret_rsb) {
        EMIT(e, 0x48, 0x89, 0x44, 0x24, 0xf8); /* mov [rsp-8], rax */
        emit_ctx_move(e, RCX, DBT_CTX_KICK, false);
        EMIT(e, 0xe3, 0x05); /* jrcxz over the jmp */
        emit_jmp(e, c->ret_miss);
    }
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, false);
}

/* CALL rel32 with the return-address cache but not ret_rsb: push the guest return address,
 * jump to the target (a direct exit); the return point follows. */
void dbt_emit_call_push(struct emitter *e, uint64_t ret_rip, bool indirect, uint64_t target)
{
    EMIT(e, 0x68); /* push imm32 (sign-extended; guest RIPs are below 2 GiB) */
    emit_u32(e, (uint32_t)ret_rip);
    if (indirect)
        emit_lookup(e);
    else
        emit_jmp_exit(e, target);
}

/* The trampoline L of a CALL (top of this file): the guest return address into the slot the
 * host CALL wrote; then a direct exit to the target, or (CALL r/m, the target in RAX) the
 * lookup. */
void dbt_emit_call_trampoline(struct emitter *e, uint64_t ret_rip, bool indirect, uint64_t target)
{
    EMIT(e, 0x48, 0xc7, 0x04, 0x24); /* mov qword [rsp], imm32 (sign-extended) */
    emit_u32(e, (uint32_t)ret_rip);
    if (indirect)
        emit_lookup(e);
    else
        emit_jmp_exit(e, target);
}

/* CALL r/m with the return-address cache: the target into RAX, then the host CALL (its
 * trampoline, written after the block's code, does the lookup). */
bool dbt_emit_indirect_call_target(struct emitter *e, const struct x86_decoded_insn *in,
                                   dbt_relocate_fn *relocate)
{
    return emit_target_to_rax(e, in, relocate);
}
