/* dbt.h - internals of the dbt backend (the mechanism is explained at the top of dbt.c).
 *
 * One region per vCPU, placed below 2 GiB right after the guest window:
 *
 *   [context page: struct dbt_ctx][lookup table: DBT_IBL_SIZE entries][code cache, RX view]
 *
 * Translated code reaches the context page RIP-relative (rel32) and the lookup table with an
 * absolute disp32 (both below 2 GiB), and guest RAM is within rel32 of the cache, so guest
 * RIP-relative operands keep their encoding with only the displacement moved.
 */
#ifndef VMLAB_DBT_H
#define VMLAB_DBT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "emu/emu.h"
#include "vmm/backend.h"
#include "vmm/mmio_emulate.h"

/* The context page. Offsets are used by the code the translator emits (static asserts in
 * dbt_cache.c keep them honest). */
struct dbt_ctx {
    uint64_t gpr[16];     /* 0: guest GPRs while outside translated code */
    uint64_t rflags;      /* 128: native RFLAGS image (arithmetic flags, DF, AC, TF) */
    uint64_t target;      /* 136: host address the entry stub jumps to */
    uint64_t host_rsp;    /* 144: host stack at entry (callouts run on it) */
    uint64_t next_rip;    /* 152: guest RIP to continue at (exit stubs, indirect branches) */
    uint64_t exit_kind;   /* 160: enum dbt_exit_kind */
    uint64_t vif;         /* 168: virtual RFLAGS.IF: 0 or 0x200 (CLI/STI are one store) */
    uint64_t viopl;       /* 176: virtual RFLAGS.IOPL bits (0x3000 mask) */
    uint64_t last_stub;   /* 184: cache offset of the direct exit stub taken, 0 if none */
    uint64_t save_rax;    /* 192: scratch for inline sequences */
    uint64_t save_rcx;    /* 200 */
    uint64_t ibl_target;  /* 208: host address found by the inline lookup */
    uint64_t ibl_hits;    /* 216: indirect branches that stayed in translated code */
    uint64_t callout_id;  /* 224: callout record the callout stub is to run */
    uint64_t callout_fn;  /* 232: dbt_callout_run */
    uint64_t vcpu;        /* 240: its argument */
    uint64_t want_window; /* 248: nonzero: STI/POPF leave so the VMM can inject */
    uint64_t kick;        /* 256: nonzero: a kick is pending, indirect lookups miss */
};
#define DBT_CTX_GPR(i) (8 * (i))
#define DBT_CTX_RFLAGS 128
#define DBT_CTX_TARGET 136
#define DBT_CTX_HOST_RSP 144
#define DBT_CTX_NEXT_RIP 152
#define DBT_CTX_EXIT_KIND 160
#define DBT_CTX_VIF 168
#define DBT_CTX_VIOPL 176
#define DBT_CTX_LAST_STUB 184
#define DBT_CTX_SAVE_RAX 192
#define DBT_CTX_SAVE_RCX 200
#define DBT_CTX_IBL_TARGET 208
#define DBT_CTX_IBL_HITS 216
#define DBT_CTX_CALLOUT_ID 224
#define DBT_CTX_CALLOUT_FN 232
#define DBT_CTX_VCPU 240
#define DBT_CTX_WANT_WINDOW 248
#define DBT_CTX_KICK 256

#define DBT_IF 0x200ULL    /* RFLAGS.IF (SDM vol. 1 3.4.3) */
#define DBT_IOPL 0x3000ULL /* RFLAGS.IOPL */

/* Indirect-branch lookup table (DynamoRIO's "IBL"): direct-mapped by the low 16 bits of the
 * guest RIP, probed inline by translated code without touching RFLAGS. An empty entry holds
 * guest_rip 0 and the miss stub as host, so even a false hit leaves correctly. */
#define DBT_IBL_SIZE 65536
struct dbt_ibl_entry {
    uint64_t guest_rip;
    uint64_t host;
};

/* Why translated code returned to the dispatcher (ctx.exit_kind). */
enum dbt_exit_kind {
    DBT_EXIT_CONTINUE = 1,  /* run on at next_rip; last_stub names a chainable stub or 0 */
    DBT_EXIT_SENSITIVE = 2, /* the dispatcher emulates (or faults) the instruction at next_rip */
    DBT_EXIT_HANDLED = 3,   /* a signal handler or callout already updated the vcpu state */
    DBT_EXIT_IBL_MISS = 4,  /* an indirect branch to next_rip missed the lookup table */
    DBT_EXIT_SHADOW = 5,    /* after an STI the VMM waits for: next_rip is in its shadow */
    DBT_EXIT_KIND_MAX_VALUE = DBT_EXIT_SHADOW
};

/* Guest RAM as translated code sees it: the guest-virtual window (guest_memory.h), where SMC
 * write protection applies; the translator reads code through the guest-physical view. */
#define DBT_WINDOW ((uint8_t *)(uintptr_t)GUEST_RAM_BASE)

#define DBT_REGION_BASE 0x60000000ULL /* first slot: right after the guest window */
#define DBT_REGION_STEP 0x2000000ULL  /* 32 MiB per vCPU region */
#define DBT_REGION_END 0x7fff0000ULL  /* AddressSanitizer's shadow begins at 0x7fff8000 */
#define DBT_CTX_PAGE 4096
#define DBT_CACHE_SIZE (16u << 20)
#define DBT_HASH_SIZE 16384
#define DBT_MAX_BLOCKS 65536
#define DBT_MAX_LINKS (4 * DBT_MAX_BLOCKS)
#define DBT_MAX_CALLOUTS 16384
#define DBT_MAX_BLOCK_INSNS 64
#define DBT_BLOCK_RESERVE 8192 /* cache bytes one block may need at most */

struct dbt_block {
    uint64_t guest_rip;
    uint32_t host_offset, host_size;
    uint32_t map_first, map_count; /* entries in dbt_cache.map */
    uint32_t guest_size;
    int32_t hash_next;
    int32_t links_in; /* chained stubs jumping here (dbt_cache.links), -1 = none */
    bool live;        /* false once invalidated (SMC) or never hashed (shadow blocks) */
};

/* One guest instruction's translation starts at host_offset (faults map back through it). */
struct dbt_map_entry {
    uint32_t host_offset;
    uint32_t guest_rip_low; /* guest RIP - GUEST_RAM_BASE */
};

/* A direct exit stub patched into a jump to a block (block chaining). */
struct dbt_link {
    uint32_t stub;     /* cache offset of the stub */
    uint32_t target;   /* block index */
    uint32_t jcc_disp; /* cache offset of the Jcc rel32 also pointed at the block, or 0 */
    int32_t next;      /* next link into the same block */
    bool live;
};

/* A sensitive instruction translated into a call of the emulation core: decoded once, at
 * translation time, and resumed at `resume` when it falls through. */
struct dbt_callout_rec {
    struct x86_decoded_insn insn;
    uint32_t resume; /* cache offset of the code after the callout */
};

struct dbt_cache {
    void *region;        /* the whole reservation */
    struct dbt_ctx *ctx; /* region start */
    struct dbt_ibl_entry *ibl;
    uint8_t *rx, *rw; /* the same memfd pages, mapped twice (W^X) */
    int memfd;
    uint32_t used;          /* bytes of cache in use */
    uint32_t entry, reload; /* fixed stubs (dbt_stubs.c) */
    uint32_t exit_common, exit_host;
    uint32_t exit_continue, exit_sensitive, exit_shadow, exit_ibl_miss;
    uint32_t callout_stub, kick_stub;
    uint32_t stubs_end;
    int32_t hash[DBT_HASH_SIZE];
    struct dbt_block *blocks;
    uint32_t block_count;
    struct dbt_map_entry *map;
    uint32_t map_count, map_capacity;
    struct dbt_link *links;
    uint32_t link_count;
    struct dbt_callout_rec *callouts;
    uint32_t callout_count;
    uint8_t *protected_pages; /* one byte per guest RAM page: holds translated code */
    uint32_t epoch;           /* bumped by every invalidation and flush */
};

struct dbt_stats {
    uint64_t blocks_translated, guest_insns_translated, guest_bytes_translated;
    uint64_t translate_cycles, cache_hits, callouts, inline_sensitive;
    uint64_t created_ns, created_cycles; /* TSC rate over the vCPU's life, for translate_ns */
    uint64_t invalidations, invalidated_blocks, cache_flushes, block_exits, chained_jumps;
    uint64_t indirect_misses, dispatcher_emulations, smc_reexecutions;
};

struct dbt_vcpu {
    struct vcpu common;
    struct vcpu_state state;
    struct x86_decoder decoder;
    struct dbt_cache cache;
    struct dbt_stats stats;
    struct vm_exit *exit;
    int queued_interrupt;
    bool pending_in, pending_mmio;
    struct x86_decoded_insn pending_insn;
    struct emu_io pending_io;
    struct mmio_access pending_mmio_access;
    volatile sig_atomic_t in_guest; /* inside enter(): translated code or a callout */
    /* Set by the SMC handler when a store in translated code hit a page holding translations:
     * the dispatcher re-executes that one instruction as an unprotected single-instruction
     * block, else a block on the page it writes would re-protect the page and fault forever. */
    volatile sig_atomic_t smc_retry;
    struct emu_mmu_hooks mmu_hooks; /* stores by the emulation core: SMC through a callout */
    uint8_t *altstack;
    stack_t old_altstack;
    struct sigaction old_actions[6];
};

/* ---- dbt_cache.c: the code cache ---- */
int dbt_cache_init(struct dbt_cache *c);
void dbt_cache_destroy(struct dbt_cache *c);
/* Drop every translation and unprotect guest pages (also when the cache is full). */
void dbt_cache_flush(struct dbt_cache *c, const struct guest_memory *mem);
struct dbt_block *dbt_cache_lookup(struct dbt_cache *c, uint64_t guest_rip);
void dbt_cache_insert(struct dbt_cache *c, uint32_t block_index); /* into the hash table */
/* Patch the direct exit stub named by `last_stub` (ctx.last_stub: its offset, with
 * DBT_STUB_JCC for the taken stub of a Jcc) into a jump to block `target`. */
void dbt_cache_chain(struct dbt_cache *c, uint32_t last_stub, uint32_t target);
/* Undo the chaining of every stub inside `b` (a kick leaves the block at its end). */
void dbt_cache_unchain_from(struct dbt_cache *c, const struct dbt_block *b);
/* Self-modifying code: unprotect the guest page, invalidate and unchain its blocks.
 * Async-signal-safe. Returns the number of blocks invalidated. */
unsigned dbt_cache_invalidate_page(struct dbt_cache *c, const struct guest_memory *mem,
                                   size_t page);
/* The live-or-dead block whose host code contains `host`, or NULL. */
const struct dbt_block *dbt_cache_block_at(const struct dbt_cache *c, uint64_t host);
/* Guest RIP of the instruction whose translation contains host address `host`, or 0. */
uint64_t dbt_cache_guest_rip_of(const struct dbt_cache *c, uint64_t host);
/* Like dbt_cache_guest_rip_of, but only where a guest instruction's translation starts (the
 * guest state in the registers is then exact). */
uint64_t dbt_cache_guest_rip_at_boundary(const struct dbt_cache *c, uint64_t host);
void dbt_cache_ibl_fill(struct dbt_cache *c, uint64_t guest_rip, const struct dbt_block *b);

/* ---- dbt_stubs.c: entry/exit/callout stubs at the start of the cache ---- */
void dbt_stubs_build(struct dbt_cache *c);

/* ---- dbt_translate.c ---- */
/* The block for guest_rip, translated if needed (single: one instruction, not cached and its
 * page not write-protected, for the instruction in an interrupt shadow and for a store that
 * wrote translated code); NULL with *err on failure (-EFAULT: not in RAM). */
struct dbt_block *dbt_block_get(struct dbt_vcpu *v, uint64_t guest_rip, bool single, int *err);

/* ---- dbt_callout.c ---- */
enum dbt_emulate_result { DBT_EMULATE_CONTINUE, DBT_EMULATE_LEAVE };
/* Emulate the decoded sensitive instruction at state.rip with the emulation core and turn
 * what it asks for into an exit record. */
enum dbt_emulate_result dbt_emulate(struct dbt_vcpu *v, const struct x86_decoded_insn *insn);
/* Decode and emulate at state.rip (instructions the translator left to the dispatcher:
 * undecodable bytes give #UD, a fetch outside RAM #PF). */
enum dbt_emulate_result dbt_emulate_at_rip(struct dbt_vcpu *v);
/* Deliver an exception to the guest; LEAVE on a triple fault. */
enum dbt_emulate_result dbt_deliver(struct dbt_vcpu *v, enum emu_event_kind kind, uint8_t vector,
                                    bool has_error, uint32_t error);
/* Called by the callout stub on the host stack: nonzero = continue at ctx.target. */
uint64_t dbt_callout_run(struct dbt_vcpu *v);
void dbt_state_to_ctx(struct dbt_vcpu *v, uint64_t target);
void dbt_state_from_ctx(struct dbt_vcpu *v);
void dbt_set_exit(struct dbt_vcpu *v, uint32_t reason);
/* The emulation core's view of this vCPU (state, guest-physical memory, MMU hooks). */
struct emu_ctx dbt_emu_ctx(struct dbt_vcpu *v);

/* ---- dbt_signal.c ---- */
int dbt_signals_install(struct dbt_vcpu *v);
void dbt_signals_restore(struct dbt_vcpu *v);
extern __thread struct dbt_vcpu *dbt_current;

/* ---- dbt.c ---- */
/* Host code of the block translated for guest_rip (trace: guest and host side by side). */
int dbt_block_host_code(struct vcpu *vcpu, uint64_t guest_rip, const uint8_t **code, size_t *len);

#endif
