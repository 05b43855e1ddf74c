/* dbt.h - internals of the dbt backend (see the overview in dbt.c). */
#ifndef VMLAB_DBT_H
#define VMLAB_DBT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "emu/emu.h"
#include "vmm/backend.h"
#include "vmm/mmio_emulate.h"

/* The context page sits right below the code cache so that translated code reaches it with
 * RIP-relative addressing (rel32). Offsets are used by the code the translator emits. */
struct dbt_ctx {
    uint64_t gpr[16];    /* 0: guest GPRs while outside translated code */
    uint64_t rflags;     /* 128: native RFLAGS image (arithmetic flags, DF, AC) */
    uint64_t target;     /* 136: host address the entry stub jumps to */
    uint64_t host_rsp;   /* 144 */
    uint64_t next_rip;   /* 152: guest RIP to continue at (set by exit stubs) */
    uint64_t exit_kind;  /* 160: enum dbt_exit_kind */
    uint64_t vflags;     /* 168: the virtual IF/IOPL (authoritative while translated code runs) */
    uint64_t last_stub;  /* 176: cache offset of the direct exit stub taken, 0 if not chainable */
    uint64_t save_rax;   /* 184: scratch for the inline indirect-branch lookup */
    uint64_t save_rcx;   /* 192 */
    uint64_t ibl_target; /* 200: host address found by the lookup */
    uint64_t ibl_hits;   /* 208: lookups that stayed in translated code */
    uint64_t ibl_base;   /* 216: address of the lookup table (after this page) */
};
#define DBT_CTX_GPR(i) (8 * (i))
#define DBT_CTX_RFLAGS 128
#define DBT_CTX_TARGET 136
#define DBT_CTX_HOST_RSP 144
#define DBT_CTX_NEXT_RIP 152
#define DBT_CTX_EXIT_KIND 160
#define DBT_CTX_VFLAGS 168
#define DBT_CTX_LAST_STUB 176
#define DBT_CTX_SAVE_RAX 184
#define DBT_CTX_SAVE_RCX 192
#define DBT_CTX_IBL_TARGET 200
#define DBT_CTX_IBL_HITS 208
#define DBT_CTX_IBL_BASE 216

/* Indirect-branch lookup table: direct-mapped by guest RIP, probed inline by translated code
 * (DynamoRIO's "IBL"); a miss exits to the dispatcher, which fills the entry. */
#define DBT_IBL_SIZE 1024
struct dbt_ibl_entry {
    uint64_t guest_rip; /* ~0 = empty */
    uint64_t host;
};

enum dbt_exit_kind {
    DBT_EXIT_CONTINUE = 1,  /* run on at next_rip */
    DBT_EXIT_SENSITIVE = 2, /* emulate the instruction at next_rip (a callout) */
    DBT_EXIT_HANDLED = 4,   /* the signal handler already updated the vcpu state */
};

#define DBT_CACHE_SIZE (16u << 20)
#define DBT_HASH_SIZE 8192
#define DBT_MAX_BLOCKS 65536
#define DBT_MAX_BLOCK_INSNS 64

struct dbt_block {
    uint64_t guest_rip;
    uint32_t host_offset, host_size;
    uint32_t map_first, map_count; /* entries in dbt_cache.map */
    uint32_t guest_size;
    int32_t hash_next;
};

struct dbt_map_entry {
    uint32_t host_offset; /* start of the host code for this guest instruction */
    uint64_t guest_rip;
};

struct dbt_cache {
    uint8_t *rw, *rx;    /* the same memfd pages, mapped twice (W^X) */
    struct dbt_ctx *ctx; /* directly below rx */
    void *region;
    size_t region_size;
    int memfd;
    uint32_t used;                               /* bytes of cache in use */
    uint32_t entry_stub, exit_common, exit_host; /* offsets of the fixed stubs */
    int32_t hash[DBT_HASH_SIZE];
    struct dbt_block *blocks;
    uint32_t block_count;
    struct dbt_map_entry *map;
    uint32_t map_count, map_capacity;
    uint8_t *protected_pages;  /* one byte per guest RAM page: holds translated code */
    struct dbt_ibl_entry *ibl; /* DBT_IBL_SIZE entries right after the context page */
    bool flush_pending;
};

struct dbt_stats {
    uint64_t blocks_translated, guest_insns_translated, guest_bytes_translated;
    uint64_t translate_cycles, cache_hits, callouts, inline_sensitive;
    uint64_t created_ns, created_cycles; /* TSC rate over the vCPU's life, for translate_ns */
    uint64_t invalidations, cache_flushes, block_exits, chained_jumps, indirect_misses;
};

struct dbt_vcpu {
    struct vcpu common;
    struct vcpu_state state;
    struct x86_decoder decoder;
    struct dbt_cache cache;
    struct dbt_stats stats;
    struct vm_exit *exit;
    int queued_interrupt;
    bool pending_in, pending_mmio, pending_shutdown;
    struct x86_decoded_insn pending_insn;
    struct emu_io pending_io;
    struct mmio_access pending_mmio_access;
    volatile int in_guest;
    uint8_t *altstack;
    stack_t old_altstack;
    struct sigaction old_actions[8];
};

int dbt_cache_init(struct dbt_cache *c);
void dbt_cache_destroy(struct dbt_cache *c);
void dbt_cache_flush(struct dbt_cache *c, const struct guest_memory *mem);
/* Translated block for guest_rip (translating it if needed); NULL with *err on failure. */
struct dbt_block *dbt_block_get(struct dbt_vcpu *v, uint64_t guest_rip, bool single, int *err);
/* Guest RIP of the instruction whose translation contains host address `host`, or 0. */
uint64_t dbt_guest_rip_of(const struct dbt_cache *c, uint64_t host);
/* Like dbt_guest_rip_of, but only if `host` is exactly where a guest instruction's
 * translation starts (the guest state in the registers is then precise). */
uint64_t dbt_guest_rip_at_boundary(const struct dbt_cache *c, uint64_t host);
/* Chain: patch the direct exit stub at `stub` into a jump to the block at `target`. */
void dbt_chain(struct dbt_cache *c, uint32_t stub, uint32_t target);
/* Host code of the block translated for guest_rip (trace: guest and host side by side). */
int dbt_block_host_code(struct vcpu *vcpu, uint64_t guest_rip, const uint8_t **code, size_t *len);

#endif
