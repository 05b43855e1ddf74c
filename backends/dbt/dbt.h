/* dbt.h - internals of the dbt backend (the mechanism is explained at the top of dbt.c).
 *
 * One region per vCPU, placed below 2 GiB right after the guest window:
 *
 *   [context page: struct dbt_ctx][lookup table: DBT_IBL_SIZE entries]
 *   [return-address cache: DBT_RET_SIZE entries] ... [code cache, RX view: 2 MiB in]
 *
 * The code cache: the fixed stubs (dbt_stubs.c), then blocks growing upwards; with exit stubs
 * kept apart (dbt_options.stubs_apart), the blocks' exit stubs grow downwards from its end.
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
#include "mmu/shadow_mmu.h"
#include "vmm/host_x87.h"
#include "vmm/backend.h"
#include "emu/emu_mmio.h"

/* The context page: what translated code reads and writes. It lies at a fixed address next to
 * the guest window, so a guest can write it with an ordinary store (guest code runs natively in
 * the host address space): nothing in it may be able to hurt the host. Host-critical data (the
 * host stack pointer, the callout function, the saved guest vector registers) is in struct
 * dbt_host instead, at an address the host chose at random (ASLR). Offsets are used by the code
 * the translator emits (static asserts in dbt_cache.c keep them honest). */
struct dbt_ctx {
    uint64_t gpr[16];     /* 0: guest GPRs while outside translated code */
    uint64_t rflags;      /* 128: native RFLAGS image: arithmetic flags and DF */
    uint64_t target;      /* 136: host address the entry stub jumps to */
    uint64_t seg_save;    /* 144: scratch register of an FS/GS-relative access (dbt_segment.c) */
    uint64_t next_rip;    /* 152: guest RIP to continue at (exit stubs, indirect branches) */
    uint64_t exit_kind;   /* 160: enum dbt_exit_kind */
    uint64_t vif;         /* 168: virtual RFLAGS.IF: 0 or 0x200 (CLI/STI are one store) */
    uint64_t vflags;      /* 176: virtual RFLAGS.IOPL, AC, NT, ID and TF (DBT_VFLAGS) */
    uint64_t last_stub;   /* 184: cache offset of the direct exit stub taken, 0 if none */
    uint64_t save_rax;    /* 192: scratch for inline sequences */
    uint64_t save_rcx;    /* 200 */
    uint64_t unused[2];   /* 208 */
    uint64_t callout_id;  /* 224: callout record the callout stub is to run */
    uint64_t seg_base[2]; /* 232: the guest's FS and GS bases */
    uint64_t want_window; /* 248: nonzero: STI/POPF leave so the VMM can inject */
    uint64_t kick;        /* 256: nonzero: a kick is pending (not read by translated code) */
    uint64_t popf_tf;     /* 264: nonzero: the last inline POPF set TF (leave to single-step) */
    uint64_t seg_save2;   /* 272: second scratch register of an FS/GS-relative access */
};
#define DBT_CTX_GPR(i) (8 * (i))
#define DBT_CTX_RFLAGS 128
#define DBT_CTX_TARGET 136
#define DBT_CTX_SEG_SAVE 144
#define DBT_CTX_NEXT_RIP 152
#define DBT_CTX_EXIT_KIND 160
#define DBT_CTX_VIF 168
#define DBT_CTX_VFLAGS 176
#define DBT_CTX_LAST_STUB 184
#define DBT_CTX_SAVE_RAX 192
#define DBT_CTX_SAVE_RCX 200
#define DBT_CTX_CALLOUT_ID 224
#define DBT_CTX_SEG_BASE(i) (232 + 8 * (i)) /* 0 = FS, 1 = GS */
#define DBT_CTX_WANT_WINDOW 248
#define DBT_CTX_KICK 256
#define DBT_CTX_POPF_TF 264
#define DBT_CTX_SEG_SAVE2 272

/* Host-side state of the stubs, in a page of its own mapped wherever the kernel chose
 * (ASLR), and reached by the stubs through a 64-bit absolute address: a guest store cannot
 * find it. It holds the guest's extended state while host code runs (dbt_stubs.c explains
 * which part of it, and why that is all of it host code can touch). */
struct dbt_host {
    uint64_t host_rsp;    /* 0: host stack at entry (callouts run on it) */
    uint64_t callout_fn;  /* 8: dbt_callout_run */
    uint64_t vcpu;        /* 16: its argument */
    uint32_t host_mxcsr;  /* 24: the host's MXCSR (callee-saved in the SysV ABI) */
    uint32_t guest_mxcsr; /* 28: the guest's MXCSR while host code runs */
    uint32_t pad[8];
    uint8_t vregs[32 * 64]; /* 64: the guest's vector registers: zmm0-31, ymm0-15 or xmm0-15 */
    uint64_t kregs[8];      /* 2112: the guest's AVX-512 opmask registers */
};
#define DBT_HOST_RSP 0
#define DBT_HOST_CALLOUT_FN 8
#define DBT_HOST_VCPU 16
#define DBT_HOST_MXCSR 24
#define DBT_HOST_GUEST_MXCSR 28
#define DBT_HOST_VREGS 64
#define DBT_HOST_KREGS (64 + 32 * 64)

/* The speed techniques, each of which can be switched off (VMLAB_DBT, dbt_options_parse) so
 * that the benchmark measures what it brings (bench/bench_dbt_speed.c). Defaults: all on but
 * align_blocks and huge_pages. */
struct dbt_options {
    bool stubs_apart;        /* exit stubs in their own area at the end of the cache, not after each
                              * block's code: hot code stays dense */
    bool ibl_shared;         /* indirect branches end in a jump to one out-of-line copy of the
                              * lookup's last three instructions instead of carrying their own
                              * (dbt_lookup.c; a JMP through a register always carries its own) */
    bool ret_cache;          /* returns jump through a return-address cache to a return point after
                              * the CALL, instead of taking the lookup (dbt_lookup.c) */
    bool fallthrough_checks; /* the check of a lookup entry or a return point takes no branch on
                              * a hit: LOOP where it is cheap (AMD), else an ADCX compare with the
                              * guest's CF kept (ADX, Intel); off: JRCXZ, taken on every hit
                              * (dbt_lookup.c emit_check) */
    bool align_blocks;       /* blocks start 16-byte aligned (as dbt did before) */
    bool traces;             /* hot loops (targets of backward branches taken 50 times) become
                              * traces: the path next executed, translated as one block, direct
                              * branches and returns to its own calls followed (dbt_trace.c) */
    bool trace_indirect;     /* a trace also follows an indirect JMP or CALL, or a RET to outside
                              * it, to the recorded target behind a compare (off: the trace ends
                              * there) */
    bool huge_pages;         /* ask for transparent huge pages for the code cache (MADV_HUGEPAGE) */
    uint8_t check_form;      /* DBT_CHECK_AUTO: the form fallthrough_checks picks for the host
                              * (dbt_cache.c); or one named with check_form=jrcxz|loop|adcx, to
                              * measure a form where it is not the default (enum dbt_check_form
                              * + 1) */
    uint16_t cache_offset;   /* bytes (INT3) between the fixed stubs and the first block, below
                              * DBT_CACHE_OFFSET_LIMIT: every block moves by that much. Not a
                              * speed technique but a control for measuring them: where code
                              * lands relative to 64-byte lines changes its speed on some cores
                              * (an Intel Xeon ran the interpreter workload 1.26x-1.44x native
                              * with offsets 0-56), so the benchmarks vary it (bench_dbt_speed.c) */
};
#define DBT_CACHE_OFFSET_LIMIT 4096
#define DBT_CHECK_AUTO 0
/* VMLAB_DBT: comma-separated name=on|off (stubs_apart, ibl_shared, ret_cache,
 * fallthrough_checks, align_blocks, traces, trace_indirect, huge_pages), cache_offset=N (bytes,
 * 0-4095) and check_form=auto|jrcxz|loop|adcx (adcx only where the processor has ADX; not
 * with fallthrough_checks=off unless jrcxz); NULL or "" gives the defaults. 0, or -EINVAL with
 * a message in err. */
int dbt_options_parse(const char *text, struct dbt_options *out, char *err, size_t err_size);
/* Whether this processor has ADCX (check_form=adcx, and the default form on Intel) */
bool dbt_host_has_adx(void);
/* Text of the options, for --stats and the report: "stubs_apart=on,ibl_shared=on,..." */
void dbt_options_format(const struct dbt_options *o, char *buf, size_t size);

#define DBT_IF 0x200ULL    /* RFLAGS.IF (SDM vol. 1 3.4.3) */
#define DBT_IOPL 0x3000ULL /* RFLAGS.IOPL */
/* RFLAGS bits the guest sets that never become native: IOPL, TF (a native TF would
 * single-step the translation), NT (only IRET reads it, and IRET is emulated), AC (at CPL 3 it
 * makes unaligned accesses fault, which at the guest's CPL 0 they never do: SDM vol. 3A 6.15
 * #AC) and ID. Translated code runs with only the arithmetic flags and DF native. */
#define DBT_VFLAGS (DBT_IOPL | 0x100ULL | 0x4000ULL | 0x40000ULL | 0x200000ULL)
#define DBT_ARITH_FLAGS 0xCD5ULL /* CF PF AF ZF SF OF */
#define DBT_DF 0x400ULL
#define DBT_NATIVE_FLAGS (DBT_ARITH_FLAGS | DBT_DF)

/* Indirect-branch lookup table (DynamoRIO's "IBL", dbt_lookup.c): direct-mapped by the low
 * 16 bits of the guest RIP; each slot holds the host address of a block's lookup entry, which
 * checks the RIP, or of the miss routine. Read-only for translated code. */
#define DBT_IBL_SIZE 65536

/* Return-address cache (dbt_options.ret_cache, dbt_lookup.c): guest return address -> host
 * address of its "return point", the code after the translated CALL, direct-mapped by the low
 * 16 bits like the lookup table. Empty entries hold the miss routine. Read-only for translated
 * code (a second writable view for the dispatcher), like the lookup table. */
#define DBT_RET_SIZE 65536

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
#define DBT_MAX_STUBS (4 * DBT_MAX_BLOCKS)
#define DBT_MAX_RETURN_POINTS (2 * DBT_MAX_BLOCKS)
#define DBT_MAX_CALLOUTS 16384
#define DBT_MAX_BLOCK_INSNS 64
#define DBT_BLOCK_RESERVE 8192 /* cache bytes one block may need at most */
#define DBT_STUB_RESERVE 4096  /* exit-stub bytes one block may need at most */

struct dbt_block {
    uint64_t guest_rip;
    uint32_t host_offset, host_size;
    uint32_t map_first, map_count; /* entries in dbt_cache.map */
    uint32_t guest_size;
    int32_t hash_next;
    int32_t links_in;   /* chained stubs jumping here (dbt_cache.links), -1 = none */
    uint32_t ibl_entry; /* cache offset of its lookup entry (dbt_lookup.c), 0 = none yet */
    uint32_t head;      /* trace head number + 1 (dbt_trace.c), 0 = none */
    uint32_t range_first, range_count; /* a trace: its guest ranges (dbt_cache.ranges) */
    uint32_t ret_first, ret_count;     /* its return points (dbt_cache.returns) */
    bool live; /* false once invalidated (SMC) or never hashed (shadow blocks) */
};

/* One guest instruction's translation starts at host_offset (faults map back through it). */
struct dbt_map_entry {
    uint32_t host_offset;
    uint32_t guest_rip_low; /* guest RIP - GUEST_RAM_BASE, and the flags below */
};
#define DBT_MAP_RIP_MASK 0x07FFFFFFu /* RAM is 64 MiB */
/* An FS/GS-relative access (dbt_segment.c): inside its translation, guest register number
 * (guest_rip_low >> DBT_MAP_SEG_REG_SHIFT) & 15 is in ctx.seg_save. */
#define DBT_MAP_SEG_FIXUP 0x80000000u
#define DBT_MAP_SEG_REG_SHIFT 27

/* A direct exit: a JMP or Jcc rel32 in a block that leads to an exit stub until the
 * dispatcher points it at the target block (chaining). The stub writes id | DBT_STUB_ID into
 * ctx.last_stub and jumps to exit_continue (dbt_translate.c: kept apart, it writes the low
 * byte and a shared tail the rest), and this record (indexed by id) says where the exit goes
 * and which branch to patch. */
struct dbt_stub {
    uint64_t guest_rip; /* where the exit goes */
    uint32_t stub;      /* cache offset of the stub */
    uint32_t branch;    /* cache offset of the rel32 of the branch that jumps to it */
    bool call;          /* the exit of a CALL */
};
#define DBT_STUB_ID 0x40000000u   /* in ctx.last_stub: a stub id, not a cache offset */
#define DBT_TRACE_HOT 0x20000000u /* in ctx.last_stub: trace head n is hot (dbt_trace.c) */

/* Traces (dbt_options.traces, dbt_trace.c). */
#define DBT_TRACE_HEADS 4096    /* counters, one per head (a page array in the region) */
#define DBT_TRACE_THRESHOLD 50  /* runs of a head before its next executing tail is recorded */
#define DBT_TRACE_MAX_BLOCKS 16 /* blocks in a trace */
struct dbt_trace_head {
    uint32_t block;   /* the head block */
    uint32_t counter; /* cache offset of its counting stub */
    uint32_t hot;     /* cache offset of the stub's hot exit (a kick goes there) */
    bool done;        /* a trace was built (or could not be): no more counting */
};
/* A guest code range a trace was translated from (its invalidation, dbt_cache.c). */
struct dbt_range {
    uint64_t rip;
    uint32_t size;
};

/* A branch pointed at a block (chaining), undone when the block goes (SMC) or a kick wants
 * the branch's own block to stop at its end. */
struct dbt_link {
    uint32_t branch; /* cache offset of the rel32 */
    uint32_t stub;   /* cache offset of its exit stub (unchaining points it back there) */
    uint32_t target; /* block index */
    int32_t next;    /* next link into the same block */
    bool live;
};

/* A return point (dbt_options.ret_cache): host code right after a translated CALL. */
struct dbt_return_point {
    uint32_t guest_rip_low; /* guest return address - GUEST_RAM_BASE */
    uint32_t host;          /* cache offset of the return point */
};

/* A sensitive instruction translated into a call of the emulation core: decoded once, at
 * translation time, and resumed at `resume` when it falls through. */
#define DBT_CALLOUT_ENDS_BLOCK UINT32_MAX /* `resume` of one that ends its block (no code after) */
struct dbt_callout_rec {
    struct x86_decoded_insn insn;
    uint32_t resume; /* cache offset of the code after the callout, or DBT_CALLOUT_ENDS_BLOCK */
    bool store;      /* adaptive translation: an ordinary store the core performs */
};

/* A guest page translated code was read from, in the current address space (dbt_paging.c). */
struct dbt_code_page {
    uint64_t gva, gpa; /* page addresses; gva 0: a removed entry */
};
#define DBT_MAX_CODE_PAGES 1024

/* Which vector registers the stubs save around host code (from the host's XCR0). */
enum dbt_vregs { DBT_VREGS_XMM, DBT_VREGS_YMM, DBT_VREGS_ZMM };

/* The check of a lookup entry or a return point (dbt_lookup.c emit_check). */
enum dbt_check_form {
    DBT_CHECK_JRCXZ, /* lea ; jrcxz hit ; jmp miss: a taken branch on every hit */
    DBT_CHECK_LOOP,  /* lea ; loop miss: the hit falls through (AMD, where LOOP is one op) */
    DBT_CHECK_CARRY, /* lea ; adcx ; jc miss ; adcx: the hit falls through (ADX) */
};

struct dbt_cache {
    void *region;           /* the whole reservation */
    struct dbt_ctx *ctx;    /* region start */
    uint64_t *ibl;          /* lookup table: read-only view inside the region (translated code) */
    uint64_t *ibl_rw;       /* the same pages, writable, elsewhere (the dispatcher) */
    uint64_t *ret, *ret_rw; /* return-address cache: read-only and writable views */
    /* A kick made both read-only views inaccessible (dbt_signal.c); the dispatcher gives them
     * back before translated code runs again. */
    volatile sig_atomic_t tables_revoked;
    int ret_memfd;
    struct dbt_options opt;
    uint8_t *rx, *rw; /* the same memfd pages, mapped twice (W^X) */
    int memfd, ibl_memfd;
    struct dbt_host *host;          /* page of its own, ASLR-placed */
    enum dbt_vregs vregs;           /* what the stubs save */
    bool kregs, kregs_64;           /* AVX-512 opmask registers (64-bit with AVX512BW) */
    bool save_xstate;               /* false only for the benchmark's "before" figure */
    bool pkru_in_xcr0;              /* the host's XCR0 enables PKRU (bit 9) */
    enum dbt_check_form check_form; /* how lookup entries and return points check: dbt_lookup.c */
    uint32_t used;                  /* bytes of cache in use */
    uint32_t entry, reload;         /* fixed stubs (dbt_stubs.c) */
    uint32_t exit_common, exit_host, exit_host_saved;
    uint32_t exit_continue, exit_sensitive, exit_shadow, exit_ibl_miss;
    uint32_t callout_stub, callout_end, kick_stub;
    uint32_t ibl_jump, ibl_miss, ret_miss, lookup_next; /* shared lookup routines */
    uint32_t ibl_miss_carry, ret_miss_carry; /* their entries from a carry check's mismatch */
    uint32_t carry_constants;                /* the carry checks' three constants */
    uint32_t stubs_end;
    uint32_t stub_low;                /* exit stubs kept apart lie in [stub_low, DBT_CACHE_SIZE) */
    uint32_t stub_tail;               /* lowest exit-stub tail (dbt_translate.c), 0: none */
    uint32_t stub_tail_high;          /* (id | DBT_STUB_ID) >> 8 of the stubs it serves */
    uint64_t block_bytes, stub_bytes; /* host code written since the last flush */
    int32_t hash[DBT_HASH_SIZE];
    struct dbt_block *blocks;
    uint32_t block_count;
    struct dbt_map_entry *map;
    uint32_t map_count, map_capacity;
    struct dbt_link *links;
    uint32_t link_count;
    struct dbt_stub *stubs;
    uint32_t stub_count;
    struct dbt_return_point *returns;
    uint32_t return_count;
    uint64_t *counters; /* trace heads' counters: RW, in the region (translated code counts) */
    struct dbt_trace_head *heads;
    uint32_t head_count;
    struct dbt_range *ranges;
    uint32_t range_count;
    struct dbt_callout_rec *callouts;
    uint32_t callout_count;
    struct shadow_mmu *shadow; /* the one owner of the window's protections */
    struct dbt_code_page code_pages[DBT_MAX_CODE_PAGES];
    unsigned code_page_count;
    uint32_t epoch; /* bumped by every invalidation and flush */
};

struct dbt_stats {
    uint64_t blocks_translated, guest_insns_translated, guest_bytes_translated;
    uint64_t translate_cycles, cache_hits, callouts, inline_sensitive;
    uint64_t created_ns, created_cycles; /* TSC rate over the vCPU's life, for translate_ns */
    uint64_t invalidations, invalidated_blocks, cache_flushes, block_exits, chained_jumps;
    uint64_t indirect_misses, dispatcher_emulations, smc_reexecutions;
    uint64_t host_block_bytes, host_stub_bytes; /* over the vCPU's life (flushes included) */
    uint64_t trace_heads, traces_built, trace_blocks, traces_abandoned;
    uint64_t table_stores_emulated, adaptive_retranslations, adaptive_stores;
    uint64_t code_pages_revalidated, code_pages_dropped;
};

/* dbt under the guest's paging (dbt_paging.c): callback nesting, adaptive translation. */
#define DBT_ADAPT_COUNTERS 256 /* faults per guest RIP on traced tables, direct-mapped */
#define DBT_ADAPT_SET 1024     /* RIPs translated into store callouts, direct-mapped */
#define DBT_ADAPT_THRESHOLD 3  /* faults at one RIP before it is retranslated */
struct dbt_paging {
    unsigned depth;           /* listener callbacks in progress (they may nest) */
    bool revalidate;          /* space_changed arrived while revalidating */
    uint64_t table_write_rip; /* last store to a table left to run natively (livelock) */
    struct {
        uint64_t rip;
        uint32_t faults;
    } counter[DBT_ADAPT_COUNTERS];
    uint64_t adaptive[DBT_ADAPT_SET];
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
    struct emu_mmio pending_mmio_access; /* MMIO instruction between exits (emu/emu_mmio.h) */
    volatile sig_atomic_t in_guest;      /* inside enter(): translated code or a callout */
    /* Set by the SMC handler when a store in translated code hit a page holding translations:
     * the dispatcher re-executes that one instruction as an unprotected single-instruction
     * block, else a block on the page it writes would re-protect the page and fault forever. */
    volatile sig_atomic_t smc_retry;
    struct shadow_mmu *shadow; /* the VM's: the window is this vCPU's shadow page table */
    struct dbt_paging paging;
    /* The guest's x87 unit once the guest has used it (dbt.c, vmm/host_x87.h): live in the
     * thread's x87 registers while this vCPU is the thread's holder, else put aside here as an
     * FNSAVE image; its control word while host code runs between two vcpu_run calls. */
    uint8_t x87[108] __attribute__((aligned(16)));
    bool x87_used;
    bool x87_aside;   /* x87[] holds the registers (they are not live in the unit) */
    bool x87_cw_host; /* the unit (or x87[]) has the host's control word, x87_fcw the guest's */
    uint16_t x87_fcw;
    struct host_x87_holder x87_holder;
    /* A guest instruction single-stepped (TF) completed with a VMM exit: its #DB is delivered
     * when vcpu_run is called again (after an IN's data arrived). */
    bool step_trap_pending;
    /* A trace being recorded (dbt_trace.c): the head and the blocks run since. */
    struct {
        bool active;
        uint32_t head;
        unsigned length;
        uint64_t path[DBT_TRACE_MAX_BLOCKS];
    } rec;
    uint8_t *altstack;
    stack_t old_altstack;
    struct sigaction old_actions[6];
};

/* ---- dbt_cache.c: the code cache ---- */
/* save_xstate false is for the benchmark's "before" figure only: the stubs then leave the
 * guest's vector registers, MXCSR and x87 control word to host code, as they once did. */
int dbt_cache_init(struct dbt_cache *c, bool save_xstate, const struct dbt_options *opt);
void dbt_cache_destroy(struct dbt_cache *c);
/* Drop every translation and unprotect guest pages (also when the cache is full). */
void dbt_cache_flush(struct dbt_cache *c, const struct guest_memory *mem);
struct dbt_block *dbt_cache_lookup(struct dbt_cache *c, uint64_t guest_rip);
void dbt_cache_insert(struct dbt_cache *c, uint32_t block_index); /* into the hash table */
/* Point the branch of exit stub `id` at block `target` (at host offset `dest` for
 * dbt_cache_chain_to: a trace head's counting stub). */
void dbt_cache_chain(struct dbt_cache *c, uint32_t id, uint32_t target);
void dbt_cache_chain_to(struct dbt_cache *c, uint32_t id, uint32_t target, uint32_t dest);
/* Point every branch chained to block `from` at block `to` instead (a trace replaces its
 * head). */
void dbt_cache_relink(struct dbt_cache *c, uint32_t from, uint32_t to);
/* Undo the chaining of every stub inside `b` (a kick leaves the block at its end). */
void dbt_cache_unchain_from(struct dbt_cache *c, const struct dbt_block *b);
/* Invalidate and unchain every block translated from guest-virtual [lo, hi) (self-modifying
 * code, a translation that changed). Async-signal-safe. Returns the number of blocks. */
unsigned dbt_cache_invalidate_range(struct dbt_cache *c, uint64_t lo, uint64_t hi);
/* The live-or-dead block whose host code contains `host`, or NULL. */
const struct dbt_block *dbt_cache_block_at(const struct dbt_cache *c, uint64_t host);
/* Guest RIP of the instruction whose translation contains host address `host`, or 0. */
uint64_t dbt_cache_guest_rip_of(const struct dbt_cache *c, uint64_t host);
/* The map entry of that instruction, or NULL. */
const struct dbt_map_entry *dbt_cache_map_entry_of(const struct dbt_cache *c, uint64_t host);
/* Like dbt_cache_guest_rip_of, but only where a guest instruction's translation starts (the
 * guest state in the registers is then exact). */
uint64_t dbt_cache_guest_rip_at_boundary(const struct dbt_cache *c, uint64_t host);
void dbt_cache_ibl_fill(struct dbt_cache *c, uint64_t guest_rip, struct dbt_block *b);
/* Make both tables inaccessible to translated code (a kick) / accessible again. */
void dbt_cache_revoke_tables(struct dbt_cache *c);
void dbt_cache_restore_tables(struct dbt_cache *c);
/* Whether `addr` lies in the read-only view of the lookup table or the return-address cache. */
bool dbt_cache_in_tables(const struct dbt_cache *c, uint64_t addr);
/* Enter the return points of a new block into the return-address cache. */
void dbt_cache_ret_fill(struct dbt_cache *c, const struct dbt_block *b);
/* Whether host address `host` lies in the exit-stub area (stubs kept apart). */
bool dbt_cache_in_stub_area(const struct dbt_cache *c, uint64_t host);

/* ---- dbt_stubs.c: entry/exit/callout stubs at the start of the cache ---- */
int dbt_stubs_build(struct dbt_cache *c);
/* What the stubs save around host code on this host ("zmm0-31, k0-7 and MXCSR", ...). */
const char *dbt_saved_state_description(void); /* -EINVAL if the encoder refused a stub */

/* ---- dbt_translate.c ---- */
/* The block for guest_rip, translated if needed (single: one instruction, not cached and its
 * page not write-protected, for the instruction in an interrupt shadow and for a store that
 * wrote translated code; ibl_target: an indirect branch wants it, so a new translation starts
 * with the block's lookup entry, which then falls into it); NULL with *err on failure
 * (-EFAULT: not in RAM). */
enum dbt_xlate {
    DBT_XLATE_BLOCK,  /* a basic block, cached */
    DBT_XLATE_SINGLE, /* one instruction, run once */
    DBT_XLATE_RECORD, /* a block run once while a trace is recorded (dbt_trace.c): its
                       * indirect branches and returns leave for the dispatcher */
};
struct dbt_block *dbt_block_get(struct dbt_vcpu *v, uint64_t guest_rip, enum dbt_xlate mode,
                                bool ibl_target, int *err);

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
/* The guest's RFLAGS from a native image (arithmetic flags, DF) and the virtual flags. */
uint64_t dbt_rflags_of(const struct dbt_ctx *ctx, uint64_t native);
void dbt_set_exit(struct dbt_vcpu *v, uint32_t reason);
/* The emulation core's view of this vCPU (state, guest-physical memory, MMU hooks). */
struct emu_ctx dbt_emu_ctx(struct dbt_vcpu *v);

/* ---- dbt_paging.c ---- */
/* Follow the shadow MMU's changes of translations (its listener is this vCPU). */
void dbt_paging_attach(struct dbt_vcpu *v, struct shadow_mmu *sm);
/* The guest-physical page the code page at `gva_page` is fetched from now; see
 * shadow_mmu_code_page for the errors. */
int dbt_code_page(struct dbt_vcpu *v, uint64_t gva_page, uint64_t *gpa_page, uint32_t *error);
/* Record that live blocks were translated from gva_page -> gpa_page, and write-protect it.
 * false when the list is full (the caller flushes the cache). */
bool dbt_code_pages_add(struct dbt_vcpu *v, uint64_t gva_page, uint64_t gpa_page);
/* A store by the guest to one of its page tables, emulated: count it, and retranslate the
 * instruction into a store callout once it keeps doing so (adaptive translation). */
void dbt_adaptive_note(struct dbt_vcpu *v, uint64_t rip);
/* Whether the instruction at rip is to be translated into a store callout. */
static inline bool dbt_adaptive_wants(const struct dbt_vcpu *v, uint64_t rip)
{
    return v->paging.adaptive[(rip ^ (rip >> 10)) & (DBT_ADAPT_SET - 1)] == rip;
}
/* Perform an ordinary store with the emulation core (a store callout, or a store to a traced
 * page table that faulted). */
enum dbt_emulate_result dbt_emulate_store(struct dbt_vcpu *v, const struct x86_decoded_insn *insn);

/* ---- dbt_signal.c ---- */
int dbt_signals_install(struct dbt_vcpu *v);
void dbt_signals_restore(struct dbt_vcpu *v);
extern __thread struct dbt_vcpu *dbt_current;

/* ---- dbt_trace.c ---- */
/* Chain exit stub `id` to block `target`, through a counting stub when the branch goes
 * backwards (a loop: `target` becomes a trace head). */
void dbt_trace_chain(struct dbt_vcpu *v, uint32_t id, uint32_t target);
/* The dispatcher: head `head` is hot (start recording); a recording block ran and the guest
 * is at state.rip (false: recording ended - trace built or abandoned). */
void dbt_trace_start(struct dbt_vcpu *v, uint32_t head);
bool dbt_trace_step(struct dbt_vcpu *v, uint64_t block_rip, bool direct_or_indirect);
/* A kick at host address `host`: in a head's counting stub, the host address of the stub's
 * exit to continue at (the guest's RCX is then in ctx.save_rcx, `rcx` stored there if the stub
 * had not yet); else 0. */
uint64_t dbt_trace_on_kick(struct dbt_cache *c, uint64_t host, uint64_t rcx);
/* dbt_translate.c: the trace for `path` (`loop`: the last block goes back to the first);
 * NULL if the path cannot be made into one. */
struct dbt_block *dbt_trace_translate(struct dbt_vcpu *v, const uint64_t *path, unsigned n,
                                      bool loop, int *err);

/* ---- dbt.c ---- */
/* For the extended-state benchmark only (bench/bench_xstate.c): vCPUs created while this is set
 * use stubs that leave the guest's extended state to host code, as dbt did before it saved it,
 * so that one run can report the cost of saving it. Never set otherwise. */
extern bool dbt_bench_without_xstate;
/* The translator met the guest's first instruction that uses the x87 unit. */
void dbt_x87_first_use(struct dbt_vcpu *v);
/* Host code of the block translated for guest_rip (trace: guest and host side by side). */
int dbt_block_host_code(struct vcpu *vcpu, uint64_t guest_rip, const uint8_t **code, size_t *len);

#endif
