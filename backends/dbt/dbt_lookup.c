/* dbt_lookup.c - indirect jumps, calls and returns: the lookup table and the return-address
 * cache.
 *
 * The guest target of an indirect branch is only known at run time. Every indirect branch
 * brings it into RCX (the guest's RCX saved in ctx.save_rcx first), stores it in ctx.next_rip
 * and jumps through the lookup table, direct-mapped by the target's low 16 bits, to the
 * target block's lookup entry, which checks that it is the block asked for (DynamoRIO's "IBL"
 * with its fragment prefixes):
 *
 *   site:   mov [save_rcx], rcx ; <target> -> rcx
 *           mov [next_rip], rcx ; movzx ecx, cx ; jmp [rcx*8 + table]
 *   entry:  mov rcx, [next_rip] ; lea rcx, [rcx - G] ; jrcxz 1f ; jmp ibl_miss
 *           1: mov rcx, [save_rcx] ; jmp block G
 *   ibl_miss: mov rcx, [save_rcx] ; jmp exit_ibl_miss      the dispatcher translates,
 *                                                          writes the entry, goes on
 *
 * Nine instructions, none of which writes RFLAGS (MOV, MOVZX, LEA, JRCXZ, JMP): the guest's
 * flags survive without a PUSHFQ/POPFQ pair. (The entry's check as shown takes its JRCXZ on
 * a hit; by default a hit falls through a LOOP or ADCX form instead, which keeps the flags
 * too: emit_check.) A register target is a MOV; so is a memory
 * target (`mov rcx, r/m` with the branch's own ModRM/SIB/displacement: its address computed
 * as the CPU computes the branch's, RSP-relative operands included); only an operand with a
 * prefix the MOV cannot take goes through the guest stack (PUSH r/m, POP RCX). The entries are
 * written into the exit-stub area when a block first becomes the target of an indirect branch
 * (dbt_cache.c); empty table slots hold ibl_miss.
 *
 * Where the last three instructions of the site are (dbt_options.ibl_shared): once, out of
 * line (ibl_jump), every site ending in `jmp ibl_jump` - 15 bytes a site, and one indirect
 * JMP for the predictor to learn all targets from, with the global history it keeps; or at
 * every site (27 bytes), each JMP with a predictor entry of its own, as DynamoRIO inlines its
 * IBL. Either way a JMP through a register (a switch's dispatch) carries its own, shorter
 * (dbt_emit_indirect_jump): the interpreter workload ran about 2.5% faster under dbt.
 *
 * Returns (dbt_options.ret_cache, dbt.h DBT_RET_SIZE). A translated CALL pushes the guest
 * return address R and goes to the target; the block goes on after it with R's "return
 * point". A RET pops R and jumps through the return-address cache, direct-mapped by R's low
 * 16 bits, to that return point (Strata and DynamoRIO call the structure a return cache):
 *
 *   CALL:          push R ; jmp target      (a chained direct exit; CALL r/m: the lookup)
 *   return point:  mov rcx, [rsp-8] ; lea rcx, [rcx - R] ; jrcxz 1f ; jmp ret_miss
 *                  1: mov rcx, [save_rcx] ; the code after the CALL
 *                  (the check's forms, where a hit takes no branch: emit_check)
 *   RET:           mov [save_rcx], rcx ; pop rcx ; movzx ecx, cx ; jmp [rcx*8 + return cache]
 *   ret_miss:      mov rcx, [rsp-8] ; jmp ibl_jump                           (the lookup)
 *
 * The return point checks R because the cache is direct-mapped and a guest may return
 * elsewhere than to its caller. It reads R where the RET's POP just read it, on the guest
 * stack at [rsp-8] - nothing runs in between - which spares the RET a store of R into
 * ctx.next_rip (7 bytes a RET, 2 a return point, a store a return); the kick that revokes
 * the cache (below) reads it there too. RET imm16, which moves RSP further, takes the
 * lookup instead. The JMP through the cache is an indirect branch of the RET's
 * own, which the predictor learns per return site with its global history - also deep in a
 * recursion, where a return stack buffer has long overflowed (making guest CALL/RET host
 * CALL/RET for the return stack buffer's sake lost: docs/REPORT.md). The guest stack only
 * ever holds guest addresses.
 *
 * A kick (the VMM wants the vCPU back) revokes both tables' read-only views (dbt_signal.c):
 * the next JMP through either faults, and the handler leaves at ctx.next_rip (a RET: at the
 * return address at [rsp-8]) with the guest's RCX from ctx.save_rcx - the exact state - so
 * no hit path needs to test anything.
 */
#include "dbt_emit.h"

#include <string.h>

/* The carry checks' constants (emit_check), in the code cache after the lookup routines. */
enum { CARRY_THRESHOLD, CARRY_RESTORE_HIT, CARRY_RESTORE_MISS, CARRY_CONSTANT_COUNT };
#define CARRY_SLOT_SPAN 65536ULL /* targets sharing a slot differ by a multiple of this */
_Static_assert(DBT_IBL_SIZE == CARRY_SLOT_SPAN && DBT_RET_SIZE == CARRY_SLOT_SPAN,
               "a carry check tells targets apart that differ by the table's span");
_Static_assert((GUEST_RAM_BASE & (CARRY_SLOT_SPAN - 1)) == 0,
               "return-cache slots index R - GUEST_RAM_BASE, the check R");

/* jmp [rcx*8 + table] */
static void emit_table_jump(struct emitter *e, const uint64_t *table)
{
    EMIT(e, 0xff, 0x24, 0xcd);
    emit_u32(e, (uint32_t)(uint64_t)(uintptr_t)table);
}

/* mov rcx, [rsp-8]: after the POP of a RET without an immediate, its return address (the
 * guest stack still holds it: nothing else ran since the POP read it) */
static void emit_return_address(struct emitter *e)
{
    EMIT(e, 0x48, 0x8b, 0x4c, 0x24, 0xf8);
}

/* With the target in RCX (the guest's RCX saved): the rest of the lookup, here or shared. */
static void emit_lookup_tail(struct emitter *e)
{
    if (e->record) { /* a recording copy: the dispatcher is to see where it goes */
        emit_ctx_move(e, RCX, DBT_CTX_NEXT_RIP, true);
        emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
        emit_jmp(e, e->c->exit_ibl_miss);
        return;
    }
    if (e->c->opt.ibl_shared) {
        emit_jmp(e, e->c->ibl_jump);
        return;
    }
    emit_ctx_move(e, RCX, DBT_CTX_NEXT_RIP, true);
    EMIT(e, 0x0f, 0xb7, 0xc9); /* movzx ecx, cx */
    emit_table_jump(e, e->c->ibl);
}

void dbt_emit_lookup_routines(struct emitter *e)
{
    struct dbt_cache *c = e->c;
    c->ibl_jump = e->pos; /* the shared tail */
    emit_ctx_move(e, RCX, DBT_CTX_NEXT_RIP, true);
    uint32_t probe = e->pos;
    EMIT(e, 0x0f, 0xb7, 0xc9); /* movzx ecx, cx */
    emit_table_jump(e, c->ibl);
    c->lookup_next = e->pos; /* the target in next_rip: the lookup proper */
    emit_ctx_move(e, RCX, DBT_CTX_NEXT_RIP, false);
    emit_jmp(e, probe);
    c->ret_miss = e->pos; /* a RET whose return point is not in the cache, R at [rsp-8] */
    emit_return_address(e);
    emit_jmp(e, c->ibl_jump);
    c->ibl_miss = e->pos;
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_jmp(e, c->exit_ibl_miss);
    /* A carry check's mismatch (emit_check): CF = 1 and the guest's CF in RCX's bit 0; RCX's
     * other low 16 bits are 0. The guest's CF back, then as any mismatch. */
    uint32_t fix[2];
    c->ibl_miss_carry = e->pos;
    EMIT(e, 0x0f, 0xb7, 0xc9);                   /* movzx ecx, cx: 0 or 1 */
    EMIT(e, 0x66, 0x48, 0x0f, 0x38, 0xf6, 0x0d); /* adcx rcx, [rip + 2^64 - 2]: carry */
    fix[0] = e->pos;                             /*   iff the guest's CF was 1 */
    emit_u32(e, 0);
    emit_jmp(e, c->ibl_miss);
    c->ret_miss_carry = e->pos;
    EMIT(e, 0x0f, 0xb7, 0xc9);
    EMIT(e, 0x66, 0x48, 0x0f, 0x38, 0xf6, 0x0d);
    fix[1] = e->pos;
    emit_u32(e, 0);
    emit_jmp(e, c->ret_miss);
    while (e->pos & 7)
        EMIT(e, 0xcc);
    c->carry_constants = e->pos; /* read-only data in the code cache, RIP-relative */
    static const uint64_t constants[CARRY_CONSTANT_COUNT] = {
        [CARRY_THRESHOLD] = 0 - (uint64_t)CARRY_SLOT_SPAN, /* 2^64 - 2^16 */
        [CARRY_RESTORE_HIT] = CARRY_SLOT_SPAN - 1,         /* 0xFFFF */
        [CARRY_RESTORE_MISS] = 0 - (uint64_t)2,            /* 2^64 - 2 */
    };
    emit_bytes(e, constants, sizeof(constants));
    for (unsigned i = 0; i < 2 && !e->overflow; i++) {
        int32_t rel =
            (int32_t)(c->carry_constants + 8 * CARRY_RESTORE_MISS) - (int32_t)(fix[i] + 4);
        memcpy(e->out + (fix[i] - e->out_base), &rel, 4);
    }
}

/* adcx rcx, [rip + constant] (66 REX.W 0F 38 F6 /r: Intel SDM vol. 2A ADCX; only CF written);
 * the restore on a hit needs only ECX (adcx ecx, m32: a byte shorter) */
static void emit_adcx_constant(struct emitter *e, unsigned which)
{
    if (which == CARRY_RESTORE_HIT)
        EMIT(e, 0x66, 0x0f, 0x38, 0xf6, 0x0d);
    else
        EMIT(e, 0x66, 0x48, 0x0f, 0x38, 0xf6, 0x0d);
    uint32_t at = e->c->carry_constants + 8 * which;
    emit_u32(e, (uint32_t)((int64_t)at - (int64_t)(e->pos + 4)));
}

/* A block's lookup entry (top of this file), at the emitter's position: in front of a block
 * translated for an indirect branch, falling into it; or, for a block that existed before,
 * in the exit-stub area with a jump to it. */
/* The check of a lookup entry or a return point: RCX = the target G' it was reached for,
 * `miss` where a mismatch goes. No form touches a flag the guest can see (top of this file).
 * Returns the offset the table slot is to hold.
 *
 * The table slot was chosen by G's low 16 bits (DBT_IBL_SIZE, DBT_RET_SIZE: 2^16 slots, and
 * GUEST_RAM_BASE has 16 zero bits), so G' = G + k * 2^16, and the check tells k = 0 apart:
 *   JRCXZ: lea rcx, [rcx - G] ; jrcxz 1f ; jmp miss ; 1:
 *          A hit takes the JRCXZ. Where the branch target buffer holds the branch, that is
 *          cheap; where it does not (thousands of call sites: the footprint workload), the
 *          front end predicts the JRCXZ not taken and every hit is a misprediction.
 *   LOOP:  jmp miss ; entry: lea rcx, [rcx - G + 1] ; loop back
 *          A hit (RCX = 1) falls through; LOOP writes only RCX. On AMD, where LOOP is one
 *          macro-op; on Intel processors it is microcoded and costs more than it saves.
 *   CARRY: lea rcx, [rcx - G] ; adcx rcx, [2^64 - 2^16] ; jc miss_carry ; adcx ecx, [0xFFFF]
 *          ADCX writes CF and nothing else (SDM vol. 2A ADCX). d = k * 2^16 is 0 on a hit and
 *          at least 2^16 otherwise, so d + 2^64 - 2^16 + CF carries exactly on a mismatch,
 *          whatever the guest's CF was: a hit falls through the JC. RCX is then
 *          2^64 - 2^16 + CF, bit 0 the guest's CF, and the second ADCX, CF being 0, carries
 *          exactly when that bit is 1: the guest's CF is back. On a mismatch RCX's low 16
 *          bits are the guest's CF too; miss_carry puts it back the same way before the miss
 *          path (dbt_emit_lookup_routines). (The restore adds in 32 bits: ECX = 0xFFFF0000 +
 *          CF, a byte shorter.) The second ADCX is left out where the translator
 *          saw the guest's CF written before anything could read or see it (e->carry_dead:
 *          dbt_translate.c carry_dead_at): 9 bytes and an instruction less.
 * Measured on an Intel Xeon (docs/ARCHITECTURE.md): footprint 2.0-2.3x -> 1.2-1.3x native with
 * the CARRY form instead of JRCXZ, indirect calls 5-10% faster, the interpreter up to 15%
 * (not on a loaded host). */
static uint32_t emit_check(struct emitter *e, uint64_t guest_rip, bool return_point, uint32_t miss)
{
    enum dbt_check_form form = e->c->check_form;
    uint32_t back = e->pos, entry;
    if (form == DBT_CHECK_LOOP) {
        emit_jmp(e, miss);
        entry = e->pos;
    } else {
        entry = e->pos;
    }
    if (return_point)
        emit_return_address(e);
    else
        emit_ctx_move(e, RCX, DBT_CTX_NEXT_RIP, false);
    EMIT(e, 0x48, 0x8d, 0x89); /* lea rcx, [rcx - guest_rip (+ 1)] */
    if (form == DBT_CHECK_LOOP) {
        emit_u32(e, (uint32_t)(1 - (int32_t)guest_rip));
        EMIT(e, 0xe2); /* loop back: taken unless RCX was 1, the hit */
        uint8_t rel = (uint8_t)(int8_t)((int32_t)back - (int32_t)(e->pos + 1));
        emit_bytes(e, &rel, 1);
    } else if (form == DBT_CHECK_CARRY) {
        emit_u32(e, (uint32_t) - (int32_t)guest_rip);
        emit_adcx_constant(e, CARRY_THRESHOLD);
        EMIT(e, 0x0f, 0x82); /* jc miss_carry */
        uint32_t to = miss == e->c->ret_miss ? e->c->ret_miss_carry : e->c->ibl_miss_carry;
        emit_u32(e, (uint32_t)((int64_t)to - (int64_t)(e->pos + 4)));
        if (!e->carry_dead)
            emit_adcx_constant(e, CARRY_RESTORE_HIT);
    } else {
        emit_u32(e, (uint32_t) - (int32_t)guest_rip);
        EMIT(e, 0xe3, 0x05); /* jrcxz over the jmp */
        emit_jmp(e, miss);
    }
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    return entry;
}

uint32_t dbt_emit_lookup_prefix(struct emitter *e, uint64_t guest_rip)
{
    return emit_check(e, guest_rip, false, e->c->ibl_miss);
}

uint32_t dbt_emit_lookup_entry(struct emitter *e, uint64_t guest_rip, uint32_t block)
{
    uint32_t entry = dbt_emit_lookup_prefix(e, guest_rip);
    emit_jmp(e, block);
    return entry;
}

/* The target of JMP/CALL r/m into RCX, the guest's RCX saved first (the operand may use it,
 * and still holds the guest's value when the MOV computes the address, as the CPU computes
 * the branch's: RSP-relative operands before any push). A MOV, so that the target is one
 * load away from the jump through the table: going through the guest stack (PUSH r/m ; POP
 * RCX, kept for operands with other prefixes) puts a store-to-load forwarding on the path
 * that resolves a mispredicted indirect branch - about 5 cycles on Intel cores, which unlike
 * AMD's Zen (memory renaming of stack accesses) do not forward it at zero latency; the
 * indirect-call workload ran 8-10% faster on an Intel Xeon (docs/ARCHITECTURE.md). False if
 * the instruction cannot be copied. */
static bool emit_target_to_rcx(struct emitter *e, const struct x86_decoded_insn *in,
                               dbt_relocate_fn *relocate)
{
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    if (in->info.raw.modrm.mod == 3) {
        unsigned reg = in->info.raw.modrm.rm | (in->info.raw.rex.B ? 8 : 0);
        if (reg != RCX) { /* mov rcx, reg: REX.W(+B) 8B /r */
            uint8_t b[3] = {(uint8_t)(0x48 | (reg >= 8 ? 1 : 0)), 0x8b,
                            (uint8_t)(0xc8 | (reg & 7))};
            emit_bytes(e, b, 3);
        }
        return true;
    }
    uint32_t at = e->pos;
    if (relocate(e, in, DBT_RELOCATE_LOAD_RCX)) /* mov rcx, r/m */
        return true;
    e->pos = at;
    if (!relocate(e, in, 6)) /* FF /2 or /4 -> FF /6: push r/m */
        return false;
    EMIT(e, 0x59); /* pop rcx */
    return true;
}

/* JMP r/m: the target into RCX and the lookup. A JMP through a register - a switch's
 * dispatch, one site with many targets - carries the whole lookup, which takes the target
 * from the register: `mov [next_rip], reg ; mov [save_rcx], rcx ; movzx ecx, reg16 ;
 * jmp [rcx*8 + table]`, four instructions instead of six and no jump to ibl_jump first
 * (24-25 bytes instead of 15). */
bool dbt_emit_indirect_jump(struct emitter *e, const struct x86_decoded_insn *in,
                            dbt_relocate_fn *relocate)
{
    if (in->info.raw.modrm.mod == 3 && !e->record) {
        unsigned reg = in->info.raw.modrm.rm | (in->info.raw.rex.B ? 8 : 0);
        emit_ctx_move(e, reg, DBT_CTX_NEXT_RIP, true);
        emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
        if (reg >= 8) /* REX.B */
            EMIT(e, 0x41);
        uint8_t movzx[3] = {0x0f, 0xb7, (uint8_t)(0xc8 | (reg & 7))}; /* movzx ecx, reg16 */
        emit_bytes(e, movzx, 3);
        emit_table_jump(e, e->c->ibl);
        return true;
    }
    if (!emit_target_to_rcx(e, in, relocate))
        return false;
    emit_lookup_tail(e);
    return true;
}

/* CALL r/m: the target into RCX, push the guest return address, look the target up (with the
 * return-address cache the caller writes the return point next). */
bool dbt_emit_indirect_call(struct emitter *e, const struct x86_decoded_insn *in,
                            dbt_relocate_fn *relocate)
{
    if (!emit_target_to_rcx(e, in, relocate))
        return false;
    EMIT(e, 0x68); /* push imm32 (sign-extended; guest RIPs are below 2 GiB) */
    emit_u32(e, (uint32_t)(in->rip + in->length));
    emit_lookup_tail(e);
    return true;
}

/* RET [imm16]: the target comes off the guest stack straight into RCX (if the POP faults,
 * nothing has changed yet: the guest state is exact), then the return-address cache or the
 * lookup. */
void dbt_emit_return(struct emitter *e, uint16_t pop_bytes)
{
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    EMIT(e, 0x59); /* pop rcx */
    if (pop_bytes) {
        EMIT(e, 0x48, 0x8d, 0xa4, 0x24); /* lea rsp, [rsp+imm] (flags untouched) */
        emit_u32(e, pop_bytes);
    }
    if (!e->c->opt.ret_cache || e->record || pop_bytes) { /* RET imm16 (rare): the lookup */
        emit_lookup_tail(e);
        return;
    }
    EMIT(e, 0x0f, 0xb7, 0xc9); /* movzx ecx, cx: R stays at [rsp-8] for the return point */
    emit_table_jump(e, e->c->ret);
}

/* In a trace (dbt_trace.c): the indirect branch `in` - JMP or CALL r/m, RET - checked against
 * `expected`, the target the trace was recorded with. Equal (the common case, or the trace
 * would not be): execution falls through into the next block of the trace; else the lookup.
 * Six instructions and a JRCXZ instead of the jump through the table. */
bool dbt_emit_indirect_guarded(struct emitter *e, const struct x86_decoded_insn *in,
                               dbt_relocate_fn *relocate, uint64_t expected)
{
    if (in->info.mnemonic == ZYDIS_MNEMONIC_RET) {
        emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
        EMIT(e, 0x59); /* pop rcx */
        if (in->info.raw.imm[0].size) {
            EMIT(e, 0x48, 0x8d, 0xa4, 0x24); /* lea rsp, [rsp+imm] */
            emit_u32(e, (uint32_t)in->info.raw.imm[0].value.u);
        }
    } else {
        if (!emit_target_to_rcx(e, in, relocate))
            return false;
        if (in->info.mnemonic == ZYDIS_MNEMONIC_CALL) {
            EMIT(e, 0x68); /* push imm32: the return address */
            emit_u32(e, (uint32_t)(in->rip + in->length));
        }
    }
    emit_ctx_move(e, RCX, DBT_CTX_NEXT_RIP, true);
    EMIT(e, 0x48, 0x8d, 0x89); /* lea rcx, [rcx - expected] */
    emit_u32(e, (uint32_t) - (int32_t)expected);
    EMIT(e, 0xe3, 0x05);            /* jrcxz over the jmp */
    emit_jmp(e, e->c->lookup_next); /* the lookup of ctx.next_rip */
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    return true;
}

/* The return point of a CALL whose guest return address is `ret_rip` (top of this file). */
uint32_t dbt_emit_return_point(struct emitter *e, uint64_t ret_rip)
{
    return emit_check(e, ret_rip, true, e->c->ret_miss);
}
