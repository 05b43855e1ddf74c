/* dbt_translate.c - the code cache and the translator.
 *
 * Cache: a memfd mapped twice, read/write for the translator and read/execute for running
 * (W^X: no page is ever both), with the context page (struct dbt_ctx) mapped directly below
 * the executable view so translated code reaches it RIP-relative. Fixed stubs at the start of
 * the cache enter and leave translated code; each block ends in exit stubs that name the next
 * guest RIP.
 *
 * Translation of one guest instruction:
 *   innocuous               copied byte for byte; RIP-relative operands re-encoded with the
 *                           Zydis encoder as absolute disp32 (guest addresses are below 2 GiB)
 *   CLI / STI / PUSHF(Q) /  inline sequences on the virtual IF/IOPL in the context page
 *   POPF(Q)
 *   other sensitive         the block ends; the dispatcher emulates the instruction with the
 *                           emulation core (a callout: no host kernel involved)
 *   branches                direct: exit stubs with the target; indirect: the target is pushed,
 *                           popped into ctx.next_rip; RET pops it; the block ends
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dbt.h"
#include "vmm/guest_layout.h"

#define CTX_PAGE 4096
#define CTX_REGION (CTX_PAGE + DBT_IBL_SIZE * sizeof(struct dbt_ibl_entry))
#define IF_IOPL_MASK 0x3200ULL /* RFLAGS.IF | RFLAGS.IOPL */

int dbt_cache_init(struct dbt_cache *c)
{
    memset(c, 0, sizeof(*c));
    c->memfd = memfd_create("vmlab-dbt-cache", MFD_CLOEXEC);
    if (c->memfd < 0)
        return -errno;
    if (ftruncate(c->memfd, DBT_CACHE_SIZE) < 0)
        goto fail;
    c->region_size = CTX_REGION + DBT_CACHE_SIZE;
    c->region = mmap(NULL, c->region_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c->region == MAP_FAILED)
        goto fail;
    c->ctx = mmap(c->region, CTX_REGION, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    c->rx = mmap((uint8_t *)c->region + CTX_REGION, DBT_CACHE_SIZE, PROT_READ | PROT_EXEC,
                 MAP_SHARED | MAP_FIXED, c->memfd, 0);
    c->rw = mmap(NULL, DBT_CACHE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
    c->blocks = calloc(DBT_MAX_BLOCKS, sizeof(*c->blocks));
    c->map_capacity = DBT_MAX_BLOCKS * 8;
    c->map = calloc(c->map_capacity, sizeof(*c->map));
    c->protected_pages = calloc(GUEST_RAM_SIZE / 4096, 1);
    if (c->ctx == MAP_FAILED || c->rx == MAP_FAILED || c->rw == MAP_FAILED || !c->blocks ||
        !c->map || !c->protected_pages)
        goto fail;
    c->ibl = (struct dbt_ibl_entry *)((uint8_t *)c->ctx + CTX_PAGE);
    c->ctx->ibl_base = (uint64_t)(uintptr_t)c->ibl;
    return 0;
fail:
    dbt_cache_destroy(c);
    return -ENOMEM;
}

void dbt_cache_destroy(struct dbt_cache *c)
{
    if (c->rw && c->rw != MAP_FAILED)
        munmap(c->rw, DBT_CACHE_SIZE);
    if (c->region && c->region != MAP_FAILED)
        munmap(c->region, c->region_size);
    if (c->memfd > 0)
        close(c->memfd);
    free(c->blocks);
    free(c->map);
    free(c->protected_pages);
    memset(c, 0, sizeof(*c));
}

/* ---- emission ------------------------------------------------------------------------- */

struct emitter {
    struct dbt_cache *c;
    uint32_t pos;
    bool overflow;
};

static void put(struct emitter *e, const void *bytes, size_t n)
{
    if (e->pos + n > DBT_CACHE_SIZE) {
        e->overflow = true;
        return;
    }
    memcpy(e->c->rw + e->pos, bytes, n);
    e->pos += (uint32_t)n;
}
#define PUT(e, ...)                                                                                \
    do {                                                                                           \
        static const uint8_t _b[] = {__VA_ARGS__};                                                 \
        put(e, _b, sizeof(_b));                                                                    \
    } while (0)

static void put32(struct emitter *e, uint32_t v)
{
    put(e, &v, 4);
}

/* rel32 of a context field, for an instruction whose remaining bytes after the rel32 are
 * `tail` long. */
static void put_ctx_rel(struct emitter *e, unsigned field, unsigned tail)
{
    uint64_t target = (uint64_t)(uintptr_t)e->c->ctx + field;
    uint64_t next = (uint64_t)(uintptr_t)e->c->rx + e->pos + 4 + tail;
    put32(e, (uint32_t)(int32_t)(int64_t)(target - next));
}

static void put_jmp_to(struct emitter *e, uint32_t target_offset)
{
    PUT(e, 0xe9);
    put32(e, (uint32_t)(int32_t)((int64_t)target_offset - (int64_t)(e->pos + 4)));
}

/* mov qword [rip+field], imm32 (sign-extended) */
static void put_store_imm(struct emitter *e, unsigned field, uint32_t imm)
{
    PUT(e, 0x48, 0xc7, 0x05);
    put_ctx_rel(e, field, 4);
    put32(e, imm);
}

/* Exit stub: continue (or emulate) at guest RIP `rip`. A CONTINUE stub records its own
 * offset so that the dispatcher can later patch its first bytes into `jmp target-block`
 * (block chaining: the stub is at least 5 bytes long). */
static void put_exit(struct emitter *e, uint64_t rip, enum dbt_exit_kind kind)
{
    uint32_t self = e->pos;
    put_store_imm(e, DBT_CTX_NEXT_RIP, (uint32_t)rip);
    put_store_imm(e, DBT_CTX_LAST_STUB, kind == DBT_EXIT_CONTINUE ? self : 0);
    put_store_imm(e, DBT_CTX_EXIT_KIND, kind);
    put_jmp_to(e, e->c->exit_common);
}

void dbt_chain(struct dbt_cache *c, uint32_t stub, uint32_t target)
{
    uint8_t jmp[5] = {0xe9};
    int32_t rel = (int32_t)((int64_t)target - (int64_t)(stub + 5));
    memcpy(jmp + 1, &rel, 4);
    memcpy(c->rw + stub, jmp, 5); /* through the writable view: W^X holds */
}

/* mov reg <-> [rip+gpr slot]: REX.W (+R), 8B/89, ModRM 00 reg 101 */
static void put_gpr_move(struct emitter *e, unsigned reg, bool store)
{
    uint8_t b[3] = {(uint8_t)(0x48 | (reg >= 8 ? 4 : 0)), store ? 0x89 : 0x8b,
                    (uint8_t)(((reg & 7) << 3) | 5)};
    put(e, b, 3);
    put_ctx_rel(e, DBT_CTX_GPR(reg), 0);
}

static void build_fixed_stubs(struct dbt_cache *c)
{
    struct emitter e = {.c = c, .pos = 0};
    c->entry_stub = e.pos;
    PUT(&e, 0x55, 0x53, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57); /* push callee-saved */
    PUT(&e, 0x48, 0x89, 0x25);                                           /* mov [host_rsp], rsp */
    put_ctx_rel(&e, DBT_CTX_HOST_RSP, 0);
    PUT(&e, 0xff, 0x35); /* push qword [rflags] */
    put_ctx_rel(&e, DBT_CTX_RFLAGS, 0);
    PUT(&e, 0x9d); /* popfq */
    for (unsigned r = 0; r < 16; r++)
        if (r != X86_RSP)
            put_gpr_move(&e, r, false);
    put_gpr_move(&e, X86_RSP, false);
    PUT(&e, 0xff, 0x25); /* jmp [target] */
    put_ctx_rel(&e, DBT_CTX_TARGET, 0);

    c->exit_common = e.pos;
    for (unsigned r = 0; r < 16; r++)
        put_gpr_move(&e, r, true);
    PUT(&e, 0x48, 0x8b, 0x25); /* mov rsp, [host_rsp] */
    put_ctx_rel(&e, DBT_CTX_HOST_RSP, 0);
    PUT(&e, 0x9c, 0x8f, 0x05); /* pushfq; pop [rflags] (guest flags, via the host stack) */
    put_ctx_rel(&e, DBT_CTX_RFLAGS, 0);
    c->exit_host = e.pos;
    PUT(&e, 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5b, 0x5d); /* pop callee-saved */
    PUT(&e, 0x6a, 0x02, 0x9d, 0xc3); /* push 2; popfq (clean flags for the host); ret */
    c->used = (e.pos + 63) & ~63u;
}

void dbt_cache_flush(struct dbt_cache *c, const struct guest_memory *mem)
{
    for (size_t p = 0; p < GUEST_RAM_SIZE / 4096; p++)
        if (c->protected_pages[p]) {
            mprotect(mem->ram + p * 4096, 4096, PROT_READ | PROT_WRITE);
            c->protected_pages[p] = 0;
        }
    for (unsigned i = 0; i < DBT_HASH_SIZE; i++)
        c->hash[i] = -1;
    memset(c->ibl, 0xFF, DBT_IBL_SIZE * sizeof(*c->ibl)); /* every entry empty */
    c->block_count = 0;
    c->map_count = 0;
    build_fixed_stubs(c);
    c->flush_pending = false;
}

/* ---- translation ---------------------------------------------------------------------- */

static unsigned hash_of(uint64_t rip)
{
    return (unsigned)((rip >> 0) ^ (rip >> 13)) & (DBT_HASH_SIZE - 1);
}

static inline uint64_t cycles(void)
{
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Re-encode an instruction whose memory operand is RIP-relative with an absolute disp32;
 * with `as_push`, encode PUSH of the (branch) operand instead. false if Zydis refuses. */
static bool put_reencoded(struct emitter *e, const struct x86_decoded_insn *in, bool as_push)
{
    ZydisEncoderRequest req;
    if (!ZYAN_SUCCESS(ZydisEncoderDecodedInstructionToEncoderRequest(
            &in->info, in->operands, in->info.operand_count_visible, &req)))
        return false;
    if (as_push) {
        req.mnemonic = ZYDIS_MNEMONIC_PUSH;
        req.branch_type = ZYDIS_BRANCH_TYPE_NONE;
        req.branch_width = ZYDIS_BRANCH_WIDTH_NONE;
        req.operand_size_hint = ZYDIS_OPERAND_SIZE_HINT_64;
    }
    for (unsigned i = 0; i < req.operand_count; i++) {
        ZydisEncoderOperand *op = &req.operands[i];
        if (op->type == ZYDIS_OPERAND_TYPE_MEMORY && op->mem.base == ZYDIS_REGISTER_RIP) {
            op->mem.base = ZYDIS_REGISTER_NONE;
            op->mem.displacement += (ZyanI64)(in->rip + in->length);
        }
    }
    uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
    ZyanUSize len = sizeof(buf);
    if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, buf, &len)))
        return false;
    put(e, buf, len);
    return true;
}

static bool is_rip_relative(const struct x86_decoded_insn *in)
{
    for (unsigned i = 0; i < in->info.operand_count_visible; i++)
        if (in->operands[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
            in->operands[i].mem.base == ZYDIS_REGISTER_RIP)
            return true;
    return false;
}

static uint64_t branch_target(const struct x86_decoded_insn *in)
{
    ZyanU64 t = 0;
    ZydisCalcAbsoluteAddress(&in->info, &in->operands[0], in->rip, &t);
    return t;
}

/* With the guest target in ctx.next_rip: probe the lookup table inline and jump straight to
 * the translation on a hit; on a miss exit to the dispatcher (which fills the entry). RAX, RCX
 * and the flags are preserved (PUSHFQ/POPFQ on the guest stack, below its RSP, as an
 * interrupt frame would be). */
static void put_indirect_lookup(struct emitter *e)
{
    PUT(e, 0x48, 0x89, 0x05);
    put_ctx_rel(e, DBT_CTX_SAVE_RAX, 0); /* mov [save_rax], rax */
    PUT(e, 0x48, 0x89, 0x0d);
    put_ctx_rel(e, DBT_CTX_SAVE_RCX, 0); /* mov [save_rcx], rcx */
    PUT(e, 0x9c);                        /* pushfq */
    PUT(e, 0x48, 0x8b, 0x05);
    put_ctx_rel(e, DBT_CTX_NEXT_RIP, 0); /* mov rax, [next_rip] */
    PUT(e, 0x89, 0xc1);                  /* mov ecx, eax */
    PUT(e, 0x81, 0xe1);
    put32(e, DBT_IBL_SIZE - 1); /* and ecx, SIZE-1 */
    PUT(e, 0xc1, 0xe1, 0x04);   /* shl ecx, 4 */
    PUT(e, 0x48, 0x03, 0x0d);
    put_ctx_rel(e, DBT_CTX_IBL_BASE, 0); /* add rcx, [ibl_base] */
    PUT(e, 0x48, 0x3b, 0x01);            /* cmp rax, [rcx] */
    PUT(e, 0x75, 39);                    /* jne miss */
    PUT(e, 0x48, 0x8b, 0x41, 0x08);      /* mov rax, [rcx+8] */
    PUT(e, 0x48, 0x89, 0x05);
    put_ctx_rel(e, DBT_CTX_IBL_TARGET, 0); /* mov [ibl_target], rax */
    PUT(e, 0x48, 0xff, 0x05);
    put_ctx_rel(e, DBT_CTX_IBL_HITS, 0); /* inc qword [ibl_hits] */
    PUT(e, 0x9d);                        /* popfq */
    PUT(e, 0x48, 0x8b, 0x0d);
    put_ctx_rel(e, DBT_CTX_SAVE_RCX, 0);
    PUT(e, 0x48, 0x8b, 0x05);
    put_ctx_rel(e, DBT_CTX_SAVE_RAX, 0);
    PUT(e, 0xff, 0x25);
    put_ctx_rel(e, DBT_CTX_IBL_TARGET, 0); /* jmp [ibl_target] */
    /* miss: */
    PUT(e, 0x9d);
    PUT(e, 0x48, 0x8b, 0x0d);
    put_ctx_rel(e, DBT_CTX_SAVE_RCX, 0);
    PUT(e, 0x48, 0x8b, 0x05);
    put_ctx_rel(e, DBT_CTX_SAVE_RAX, 0);
    put_store_imm(e, DBT_CTX_LAST_STUB, 0);
    put_store_imm(e, DBT_CTX_EXIT_KIND, DBT_EXIT_CONTINUE);
    put_jmp_to(e, e->c->exit_common);
}

/* Push the target of an indirect branch and pop it into ctx.next_rip. */
static bool put_indirect_target(struct emitter *e, const struct x86_decoded_insn *in)
{
    if (is_rip_relative(in) || in->operands[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
        if (!put_reencoded(e, in, true))
            return false;
    } else {
        /* FF /2 (call) or FF /4 (jmp) -> FF /6 (push), same ModRM addressing */
        uint8_t b[ZYDIS_MAX_INSTRUCTION_LENGTH];
        memcpy(b, in->bytes, in->length);
        unsigned m = in->info.raw.modrm.offset;
        b[m] = (uint8_t)((b[m] & 0xC7) | (6 << 3));
        put(e, b, in->length);
    }
    PUT(e, 0x8f, 0x05); /* pop [next_rip] */
    put_ctx_rel(e, DBT_CTX_NEXT_RIP, 0);
    return true;
}

enum step { STEP_CONTINUE, STEP_END };

/* Translate one guest instruction; STEP_END when it ended the block. */
static enum step translate_one(struct dbt_vcpu *v, struct emitter *e,
                               const struct x86_decoded_insn *in)
{
    uint64_t next = in->rip + in->length;
    enum emu_class cls = x86_classify(in);
    ZydisMnemonic m = in->info.mnemonic;
    if (cls != EMU_CLASS_NONE) {
        bool width64 = in->info.operand_width == 64;
        switch (cls) {
        case EMU_CLASS_CLI: /* and qword [vflags], ~IF */
            PUT(e, 0x48, 0x81, 0x25);
            put_ctx_rel(e, DBT_CTX_VFLAGS, 4);
            put32(e, 0xFFFFFDFFu);
            v->common.stats.emulated[cls]++;
            v->stats.inline_sensitive++;
            return STEP_CONTINUE;
        case EMU_CLASS_STI:
            /* or qword [vflags], IF. Interrupts are only ever delivered when the dispatcher
             * runs (a block exit or a kick at an instruction boundary), never in the middle
             * of a block, so the STI shadow (SDM vol. 3A 6.8.3) holds by construction and a
             * pending interrupt is taken at the next boundary while IF is still set. */
            PUT(e, 0x48, 0x81, 0x0d);
            put_ctx_rel(e, DBT_CTX_VFLAGS, 4);
            put32(e, 0x200);
            v->common.stats.emulated[cls]++;
            v->stats.inline_sensitive++;
            return STEP_CONTINUE;
        case EMU_CLASS_PUSHF:
            if (!width64)
                break;
            /* pushfq (image); pushfq (guest flags); push rax; mov rax,[rsp+16];
             * and rax,~(IF|IOPL); or rax,[vflags]; mov [rsp+16],rax; pop rax; popfq */
            PUT(e, 0x9c, 0x9c, 0x50, 0x48, 0x8b, 0x44, 0x24, 0x10, 0x48, 0x25, 0xff, 0xcd, 0xff,
                0xff, 0x48, 0x0b, 0x05);
            put_ctx_rel(e, DBT_CTX_VFLAGS, 0);
            PUT(e, 0x48, 0x89, 0x44, 0x24, 0x10, 0x58, 0x9d);
            v->common.stats.emulated[cls]++;
            v->stats.inline_sensitive++;
            return STEP_CONTINUE;
        case EMU_CLASS_POPF:
            if (!width64)
                break;
            /* push rax; mov rax,[rsp+8]; and rax,IF|IOPL; mov [vflags],rax; pop rax; popfq */
            PUT(e, 0x50, 0x48, 0x8b, 0x44, 0x24, 0x08, 0x48, 0x25, 0x00, 0x32, 0x00, 0x00, 0x48,
                0x89, 0x05);
            put_ctx_rel(e, DBT_CTX_VFLAGS, 0);
            PUT(e, 0x58, 0x9d);
            v->common.stats.emulated[cls]++;
            v->stats.inline_sensitive++;
            return STEP_CONTINUE; /* a window it opens is seen at the next boundary */
        default:
            break;
        }
        put_exit(e, in->rip, DBT_EXIT_SENSITIVE); /* callout into the emulation core */
        return STEP_END;
    }
    switch (m) {
    case ZYDIS_MNEMONIC_JMP:
        if (in->operands[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
            put_exit(e, branch_target(in), DBT_EXIT_CONTINUE);
        } else {
            if (!put_indirect_target(e, in))
                goto refuse;
            put_indirect_lookup(e);
        }
        return STEP_END;
    case ZYDIS_MNEMONIC_CALL:
        if (in->operands[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
            PUT(e, 0x68);
            put32(e, (uint32_t)next); /* push imm32 (sign-extended; guest RIPs < 2 GiB) */
            put_exit(e, branch_target(in), DBT_EXIT_CONTINUE);
        } else {
            if (!put_indirect_target(e, in))
                goto refuse;
            PUT(e, 0x68);
            put32(e, (uint32_t)next);
            put_indirect_lookup(e);
        }
        return STEP_END;
    case ZYDIS_MNEMONIC_RET:
        PUT(e, 0x8f, 0x05); /* pop [next_rip] */
        put_ctx_rel(e, DBT_CTX_NEXT_RIP, 0);
        if (in->info.operand_count_visible &&
            in->operands[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
            PUT(e, 0x48, 0x8d, 0xa4, 0x24); /* lea rsp, [rsp + imm] (flags untouched) */
            put32(e, (uint32_t)in->operands[0].imm.value.u);
        }
        put_indirect_lookup(e);
        return STEP_END;
    case ZYDIS_MNEMONIC_LOOP:
    case ZYDIS_MNEMONIC_LOOPE:
    case ZYDIS_MNEMONIC_LOOPNE:
    case ZYDIS_MNEMONIC_JRCXZ:
    case ZYDIS_MNEMONIC_JECXZ: {
        /* op +2 (taken); jmp short +5 (fallthrough); jmp rel32 taken-stub */
        uint8_t b[ZYDIS_MAX_INSTRUCTION_LENGTH];
        memcpy(b, in->bytes, in->length);
        b[in->length - 1] = 2;
        put(e, b, in->length);
        PUT(e, 0xeb, 0x05, 0xe9);
        uint32_t patch = e->pos;
        put32(e, 0);
        put_exit(e, next, DBT_EXIT_CONTINUE);
        uint32_t taken = e->pos;
        put_exit(e, branch_target(in), DBT_EXIT_CONTINUE);
        int32_t rel = (int32_t)(taken - (patch + 4));
        if (!e->overflow)
            memcpy(e->c->rw + patch, &rel, 4);
        return STEP_END;
    }
    default:
        break;
    }
    if (in->info.meta.category == ZYDIS_CATEGORY_COND_BR) { /* Jcc -> 0F 8x rel32 */
        uint8_t cc = in->info.opcode & 0x0F;
        PUT(e, 0x0f);
        uint8_t op = (uint8_t)(0x80 | cc);
        put(e, &op, 1);
        uint32_t patch = e->pos;
        put32(e, 0);
        put_exit(e, next, DBT_EXIT_CONTINUE);
        uint32_t taken = e->pos;
        put_exit(e, branch_target(in), DBT_EXIT_CONTINUE);
        int32_t rel = (int32_t)(taken - (patch + 4));
        if (!e->overflow)
            memcpy(e->c->rw + patch, &rel, 4);
        return STEP_END;
    }
    if (in->info.attributes & ZYDIS_ATTRIB_IS_RELATIVE || is_rip_relative(in)) {
        if (!put_reencoded(e, in, false))
            goto refuse;
        return STEP_CONTINUE;
    }
    put(e, in->bytes, in->length);
    return STEP_CONTINUE;
refuse:
    /* Not translatable: let the dispatcher see it (it raises #UD if it cannot emulate). */
    put_exit(e, in->rip, DBT_EXIT_SENSITIVE);
    return STEP_END;
}

static void protect_guest_code(struct dbt_vcpu *v, uint64_t start, uint64_t end)
{
    const struct guest_memory *mem = v->common.vm->config.mem;
    for (uint64_t p = start & ~4095ULL; p < end; p += 4096) {
        size_t page = (p - GUEST_RAM_BASE) / 4096;
        if (page >= GUEST_RAM_SIZE / 4096 || v->cache.protected_pages[page])
            continue;
        /* Self-modifying code: a write to a page holding translated code faults and
         * invalidates the translations (dbt_signal.c). */
        if (mprotect(mem->ram + page * 4096, 4096, PROT_READ) == 0)
            v->cache.protected_pages[page] = 1;
    }
}

struct dbt_block *dbt_block_get(struct dbt_vcpu *v, uint64_t rip, bool single, int *err)
{
    struct dbt_cache *c = &v->cache;
    const struct guest_memory *mem = v->common.vm->config.mem;
    if (!single)
        for (int32_t i = c->hash[hash_of(rip)]; i >= 0; i = c->blocks[i].hash_next)
            if (c->blocks[i].guest_rip == rip) {
                v->stats.cache_hits++;
                return &c->blocks[i];
            }
    if (!guest_ram_contains(mem, rip, 1)) {
        *err = -EFAULT;
        return NULL;
    }
    if (c->block_count + 1 >= DBT_MAX_BLOCKS || c->used + 8192 > DBT_CACHE_SIZE ||
        c->map_count + DBT_MAX_BLOCK_INSNS + 1 >= c->map_capacity) {
        dbt_cache_flush(c, mem); /* full: start over (the simplest policy that is correct) */
        v->stats.cache_flushes++;
    }
    uint64_t c0 = cycles(); /* one TSC read each side: clock reads would be most of B */
    struct dbt_block *b = &c->blocks[c->block_count];
    memset(b, 0, sizeof(*b));
    b->guest_rip = rip;
    b->host_offset = c->used;
    b->map_first = c->map_count;
    struct emitter e = {.c = c, .pos = c->used};
    uint64_t pc = rip;
    unsigned max = single ? 1 : DBT_MAX_BLOCK_INSNS;
    for (unsigned n = 0; n < max; n++) {
        struct x86_decoded_insn in;
        uint64_t avail = GUEST_RAM_BASE + mem->ram_size - pc;
        if (avail > ZYDIS_MAX_INSTRUCTION_LENGTH)
            avail = ZYDIS_MAX_INSTRUCTION_LENGTH;
        c->map[c->map_count].host_offset = e.pos;
        c->map[c->map_count].guest_rip = pc;
        c->map_count++;
        if (!guest_ram_contains(mem, pc, 1) ||
            x86_decode(&v->decoder, guest_ram_ptr(mem, pc, avail), avail, pc, &in) < 0) {
            put_exit(&e, pc, DBT_EXIT_SENSITIVE); /* the dispatcher raises #UD / #PF */
            break;
        }
        v->stats.guest_insns_translated++;
        v->stats.guest_bytes_translated += in.length;
        enum step s = translate_one(v, &e, &in);
        pc = in.rip + in.length;
        if (s == STEP_END)
            break;
        if (n + 1 == max)
            put_exit(&e, pc, DBT_EXIT_CONTINUE);
    }
    if (e.overflow) {
        *err = -ENOSPC;
        return NULL;
    }
    b->host_size = e.pos - b->host_offset;
    b->map_count = c->map_count - b->map_first;
    b->guest_size = (uint32_t)(pc - rip);
    c->used = (e.pos + 15) & ~15u;
    protect_guest_code(v, rip, pc);
    if (single) {
        b->hash_next = -1;
        b->guest_rip = ~0ULL; /* not looked up again */
    } else {
        unsigned h = hash_of(rip);
        b->hash_next = c->hash[h];
        c->hash[h] = (int32_t)c->block_count;
    }
    c->block_count++;
    v->stats.blocks_translated++;
    v->stats.translate_cycles += cycles() - c0;
    if (v->common.trace) {
        struct trace_event *ev = trace_ring_push(v->common.trace);
        if (ev) {
            memset(ev, 0, sizeof(*ev));
            ev->kind = TRACE_BLOCK;
            ev->rip = rip;
            ev->length = (uint8_t)(b->guest_size > 255 ? 255 : b->guest_size);
            ev->aux = (uint64_t)(uintptr_t)(c->rx + b->host_offset);
            ev->old_value = b->host_size;  /* bytes of host code */
            ev->new_value = b->guest_size; /* bytes of guest code */
        }
    }
    return b;
}

/* The block whose translation contains host address `host` (blocks are allocated in
 * increasing host order: binary search), with the offset into the cache. */
static const struct dbt_block *block_at(const struct dbt_cache *c, uint64_t host, uint32_t *off)
{
    uint64_t rx = (uint64_t)(uintptr_t)c->rx;
    if (host < rx || host >= rx + c->used)
        return NULL;
    *off = (uint32_t)(host - rx);
    uint32_t lo = 0, hi = c->block_count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (c->blocks[mid].host_offset <= *off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || *off >= c->blocks[lo - 1].host_offset + c->blocks[lo - 1].host_size)
        return NULL;
    return &c->blocks[lo - 1];
}

uint64_t dbt_guest_rip_of(const struct dbt_cache *c, uint64_t host)
{
    uint32_t off;
    const struct dbt_block *b = block_at(c, host, &off);
    uint64_t rip = 0;
    for (uint32_t i = 0; b && i < b->map_count; i++)
        if (c->map[b->map_first + i].host_offset <= off)
            rip = c->map[b->map_first + i].guest_rip;
    return rip;
}

uint64_t dbt_guest_rip_at_boundary(const struct dbt_cache *c, uint64_t host)
{
    uint32_t off;
    const struct dbt_block *b = block_at(c, host, &off);
    for (uint32_t i = 0; b && i < b->map_count; i++)
        if (c->map[b->map_first + i].host_offset == off)
            return c->map[b->map_first + i].guest_rip;
    return 0;
}
