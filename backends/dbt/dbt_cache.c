/* dbt_cache.c - the code cache: memory, the block table, chaining and invalidation.
 *
 * Memory. A memfd is mapped twice: read/execute inside the vCPU's region (where translated
 * code runs) and read/write elsewhere (where the translator writes). No page is ever both
 * writable and executable (W^X). The region sits in a fixed slot below 2 GiB, right after the
 * guest window, with the context page and the indirect-branch lookup table in front of the
 * executable view: translated code reaches all three, and guest RAM, with 32-bit
 * displacements.
 *
 * Blocks. A block is keyed by guest RIP in a hash table; blocks are allocated in increasing
 * cache order, so the block holding a host address is found by binary search, and each block
 * lists where each of its guest instructions' translations starts (the host -> guest map
 * that faults, kicks and SMC writes are mapped back through).
 *
 * Chaining. A direct exit stub begins with `mov qword [next_rip], imm32`; once its target
 * is translated the dispatcher overwrites its first five bytes with `jmp block`. Every patch
 * is recorded as a link on the target block, so that invalidating the block can restore the
 * stubs that jump to it (unchaining) and a kick can restore the stubs of the block it
 * interrupted.
 *
 * Invalidation (self-modifying code, a translation that changed: dbt_paging.c).
 * dbt_cache_invalidate_range() (called from signal handlers: no allocation, no locks) drops
 * the blocks translated from a guest-virtual range from the hash table and the lookup table
 * and unchains them. Their host code stays where it is (nothing jumps to it any more) until
 * the next flush, which happens when the cache is full.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <cpuid.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dbt_emit.h"
#include "vmm/guest_layout.h"

static_assert(offsetof(struct dbt_ctx, rflags) == DBT_CTX_RFLAGS, "ctx layout");
static_assert(offsetof(struct dbt_ctx, seg_save) == DBT_CTX_SEG_SAVE, "ctx layout");
static_assert(offsetof(struct dbt_ctx, next_rip) == DBT_CTX_NEXT_RIP, "ctx layout");
static_assert(offsetof(struct dbt_ctx, vif) == DBT_CTX_VIF, "ctx layout");
static_assert(offsetof(struct dbt_ctx, vflags) == DBT_CTX_VFLAGS, "ctx layout");
static_assert(offsetof(struct dbt_ctx, last_stub) == DBT_CTX_LAST_STUB, "ctx layout");
static_assert(offsetof(struct dbt_ctx, seg_base) == DBT_CTX_SEG_BASE(0), "ctx layout");
static_assert(offsetof(struct dbt_ctx, kick) == DBT_CTX_KICK, "ctx layout");
static_assert(offsetof(struct dbt_ctx, popf_tf) == DBT_CTX_POPF_TF, "ctx layout");
static_assert(offsetof(struct dbt_ctx, seg_save2) == DBT_CTX_SEG_SAVE2, "ctx layout");
static_assert(sizeof(struct dbt_ctx) <= DBT_CTX_PAGE, "ctx fits its page");
static_assert(offsetof(struct dbt_host, host_mxcsr) == DBT_HOST_MXCSR, "host layout");
static_assert(offsetof(struct dbt_host, guest_mxcsr) == DBT_HOST_GUEST_MXCSR, "host layout");
static_assert(offsetof(struct dbt_host, vregs) == DBT_HOST_VREGS, "host layout");
static_assert(offsetof(struct dbt_host, kregs) == DBT_HOST_KREGS, "host layout");
static_assert(DBT_HOST_GUEST_MXCSR < 128, "the stubs use disp8 for MXCSR");
static_assert(sizeof(struct dbt_host) <= 4096, "host state fits its page");

#define IBL_BYTES (DBT_IBL_SIZE * sizeof(uint64_t))
#define RET_BYTES (DBT_RET_SIZE * sizeof(uint64_t))
/* The code cache starts 2 MiB into the region (DBT_REGION_STEP-aligned), on a huge-page
 * boundary (dbt_options.huge_pages), after the context page and the two tables. */
#define CACHE_OFFSET (2u << 20)
#define REGION_BYTES (CACHE_OFFSET + DBT_CACHE_SIZE)
#define COUNTERS_BYTES (DBT_TRACE_HEADS * sizeof(uint64_t))
#define COUNTERS_OFFSET (DBT_CTX_PAGE + IBL_BYTES + RET_BYTES)
static_assert(COUNTERS_OFFSET + COUNTERS_BYTES <= CACHE_OFFSET, "tables before the cache");
static_assert(REGION_BYTES <= DBT_REGION_STEP, "region fits its slot");
static_assert(GUEST_SPACE_END <= DBT_REGION_BASE, "region after the guest window");

/* The vector registers host code can touch, from the host's XCR0 (SDM vol. 1 13.3: bit 1
 * SSE, 2 AVX, 5 opmask, 6 ZMM_Hi256, 7 Hi16_ZMM). Without OSXSAVE only SSE exists. */
static void probe_vregs(struct dbt_cache *c)
{
    unsigned a, b, cx, d;
    c->vregs = DBT_VREGS_XMM;
    if (!__get_cpuid(1, &a, &b, &cx, &d) || !(cx & bit_OSXSAVE))
        return;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    c->pkru_in_xcr0 = lo & (1u << 9);
    if ((lo & 0xE6) == 0xE6) {
        c->vregs = DBT_VREGS_ZMM;
        c->kregs = true;
        c->kregs_64 = __get_cpuid_count(7, 0, &a, &b, &cx, &d) && (b & bit_AVX512BW);
    } else if (lo & 4) {
        c->vregs = DBT_VREGS_YMM;
    }
}

/* ADX (ADCX/ADOX): CPUID.(EAX=07H,ECX=0):EBX[19] (Intel SDM vol. 2A CPUID) */
bool dbt_host_has_adx(void)
{
    unsigned a, b, cx, d;
    return __get_cpuid(0, &a, &b, &cx, &d) && a >= 7 &&
           __get_cpuid_count(7, 0, &a, &b, &cx, &d) && (b & (1u << 19));
}

/* How lookup entries and return points check their target (dbt_lookup.c emit_check). With
 * fallthrough_checks, a hit takes no branch: LOOP on AMD processors, where it is one macro-op
 * (Agner Fog's instruction tables); on others, where LOOP is microcoded, the ADCX form if
 * the processor has ADX, else JRCXZ, which takes its branch on every hit. check_form= names
 * one instead (dbt_options_parse refused adcx without ADX), so that a form can be measured
 * where it is not the default - LOOP on Intel, ADCX on AMD. */
static enum dbt_check_form probe_check_form(const struct dbt_options *opt)
{
    if (opt->check_form != DBT_CHECK_AUTO)
        return (enum dbt_check_form)(opt->check_form - 1);
    unsigned a, b, cx, d;
    if (!opt->fallthrough_checks || !__get_cpuid(0, &a, &b, &cx, &d))
        return DBT_CHECK_JRCXZ;
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &cx, 4);
    vendor[12] = 0;
    if (!strcmp(vendor, "AuthenticAMD") || !strcmp(vendor, "HygonGenuine"))
        return DBT_CHECK_LOOP;
    return dbt_host_has_adx() ? DBT_CHECK_CARRY : DBT_CHECK_JRCXZ;
}

const char *dbt_saved_state_description(void)
{
    struct dbt_cache c;
    memset(&c, 0, sizeof(c));
    probe_vregs(&c);
    if (c.vregs == DBT_VREGS_ZMM)
        return c.kregs_64 ? "zmm0-31, k0-7 and MXCSR" : "zmm0-31, k0-7 (16 bits) and MXCSR";
    return c.vregs == DBT_VREGS_YMM ? "ymm0-15 and MXCSR" : "xmm0-15 and MXCSR";
}

/* Reserve the first free slot (MAP_FIXED_NOREPLACE: never clobber an existing mapping). */
static void *region_reserve(void)
{
    for (uint64_t at = DBT_REGION_BASE; at + DBT_REGION_STEP <= DBT_REGION_END;
         at += DBT_REGION_STEP) {
        void *p = mmap((void *)(uintptr_t)at, REGION_BYTES, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
        if (p == (void *)(uintptr_t)at)
            return p;
        if (p != MAP_FAILED)
            munmap(p, REGION_BYTES); /* an old kernel ignored the flag and placed it elsewhere */
    }
    return NULL;
}

/* The metadata tables are large (the callout records alone are ~16 MiB) but mostly never
 * touched: anonymous mappings give zeroed pages on first use, where calloc would clear them
 * all up front (milliseconds per vCPU, paid by every guest run). */
static void *table_alloc(size_t count, size_t size)
{
    void *p = mmap(NULL, count * size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void table_free(void *p, size_t count, size_t size)
{
    if (p)
        munmap(p, count * size);
}

/* A read-only view in the region and a writable one elsewhere of a new memfd of `bytes`. */
static int table_views(uint8_t *at, size_t bytes, const char *name, int *fd, void **ro, void **rw)
{
    *fd = memfd_create(name, MFD_CLOEXEC);
    if (*fd < 0 || ftruncate(*fd, (off_t)bytes) < 0)
        return -1;
    void *r = mmap(at, bytes, PROT_READ, MAP_SHARED | MAP_FIXED, *fd, 0);
    void *w = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (r != MAP_FAILED)
        *ro = r;
    if (w != MAP_FAILED)
        *rw = w;
    return r == MAP_FAILED || w == MAP_FAILED ? -1 : 0;
}

int dbt_cache_init(struct dbt_cache *c, bool save_xstate, const struct dbt_options *opt)
{
    memset(c, 0, sizeof(*c));
    c->memfd = c->ibl_memfd = c->ret_memfd = -1;
    c->save_xstate = save_xstate;
    c->opt = *opt;
    probe_vregs(c);
    c->check_form = probe_check_form(opt);
    c->region = region_reserve();
    if (!c->region)
        return -ENOMEM;
    uint8_t *base = c->region;
    c->memfd = memfd_create("vmlab-dbt-cache", MFD_CLOEXEC);
    if (c->memfd < 0 || ftruncate(c->memfd, DBT_CACHE_SIZE) < 0)
        goto fail;
    void *rx = mmap(base + CACHE_OFFSET, DBT_CACHE_SIZE, PROT_READ | PROT_EXEC,
                    MAP_SHARED | MAP_FIXED, c->memfd, 0);
    void *rw = mmap(NULL, DBT_CACHE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
    void *ctx = mmap(base, DBT_CTX_PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    void *host = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rw != MAP_FAILED)
        c->rw = rw;
    if (host != MAP_FAILED)
        c->host = host;
    if (ctx == MAP_FAILED || rx == MAP_FAILED || !c->rw || !c->host)
        goto fail;
    c->ctx = ctx;
    c->rx = rx;
    /* The lookup table and the return-address cache are only read by translated code: their
     * views in the region are read-only, so a guest store cannot plant a host address in
     * them; the dispatcher fills them through second, writable views (W^X as for the code). */
    void *ibl = NULL, *ibl_rw = NULL, *ret = NULL, *ret_rw = NULL;
    int rc_ibl = table_views(base + DBT_CTX_PAGE, IBL_BYTES, "vmlab-dbt-lookup", &c->ibl_memfd,
                             &ibl, &ibl_rw);
    int rc_ret = table_views(base + DBT_CTX_PAGE + IBL_BYTES, RET_BYTES, "vmlab-dbt-returns",
                             &c->ret_memfd, &ret, &ret_rw);
    c->ibl = ibl;
    c->ibl_rw = ibl_rw;
    c->ret = ret;
    c->ret_rw = ret_rw;
    if (rc_ibl < 0 || rc_ret < 0)
        goto fail;
    /* The trace heads' counters: written by translated code, like the context page (a guest
     * store there can only make a trace form early or late) */
    void *counters = mmap(base + COUNTERS_OFFSET, COUNTERS_BYTES, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (counters == MAP_FAILED)
        goto fail;
    c->counters = counters;
    if (c->opt.huge_pages) { /* a request: the kernel decides (shmem_enabled, dbt.c stats) */
        madvise(rx, DBT_CACHE_SIZE, MADV_HUGEPAGE);
        madvise(rw, DBT_CACHE_SIZE, MADV_HUGEPAGE);
    }
    c->host->host_mxcsr = 0x1F80;  /* overwritten by every entry */
    c->host->guest_mxcsr = 0x1F80; /* reset value (SDM vol. 3A 10.1, table 10-1) */
    c->blocks = table_alloc(DBT_MAX_BLOCKS, sizeof(*c->blocks));
    c->map_capacity = DBT_MAX_BLOCKS * 8;
    c->map = table_alloc(c->map_capacity, sizeof(*c->map));
    c->links = table_alloc(DBT_MAX_LINKS, sizeof(*c->links));
    c->stubs = table_alloc(DBT_MAX_STUBS, sizeof(*c->stubs));
    c->returns = table_alloc(DBT_MAX_RETURN_POINTS, sizeof(*c->returns));
    c->heads = table_alloc(DBT_TRACE_HEADS, sizeof(*c->heads));
    c->ranges = table_alloc(DBT_MAX_BLOCKS, sizeof(*c->ranges));
    c->callouts = table_alloc(DBT_MAX_CALLOUTS, sizeof(*c->callouts));
    if (!c->blocks || !c->map || !c->links || !c->callouts || !c->stubs || !c->returns ||
        !c->heads || !c->ranges)
        goto fail;
    if (dbt_stubs_build(c) < 0) { /* the same stubs every flush builds */
        dbt_cache_destroy(c);
        return -ENOTSUP;
    }
    return 0;
fail:
    dbt_cache_destroy(c);
    return -ENOMEM;
}

void dbt_cache_destroy(struct dbt_cache *c)
{
    if (c->rw)
        munmap(c->rw, DBT_CACHE_SIZE);
    if (c->ibl_rw)
        munmap(c->ibl_rw, IBL_BYTES);
    if (c->ret_rw)
        munmap(c->ret_rw, RET_BYTES);
    if (c->host)
        munmap(c->host, 4096);
    if (c->region)
        munmap(c->region, REGION_BYTES);
    if (c->memfd >= 0)
        close(c->memfd);
    if (c->ibl_memfd >= 0)
        close(c->ibl_memfd);
    if (c->ret_memfd >= 0)
        close(c->ret_memfd);
    table_free(c->blocks, DBT_MAX_BLOCKS, sizeof(*c->blocks));
    table_free(c->map, c->map_capacity, sizeof(*c->map));
    table_free(c->links, DBT_MAX_LINKS, sizeof(*c->links));
    table_free(c->stubs, DBT_MAX_STUBS, sizeof(*c->stubs));
    table_free(c->returns, DBT_MAX_RETURN_POINTS, sizeof(*c->returns));
    table_free(c->heads, DBT_TRACE_HEADS, sizeof(*c->heads));
    table_free(c->ranges, DBT_MAX_BLOCKS, sizeof(*c->ranges));
    table_free(c->callouts, DBT_MAX_CALLOUTS, sizeof(*c->callouts));
    memset(c, 0, sizeof(*c));
    c->memfd = c->ibl_memfd = c->ret_memfd = -1;
}

void dbt_cache_flush(struct dbt_cache *c, const struct guest_memory *mem)
{
    (void)mem; /* protections are the shadow MMU's: lift the ones asked for */
    for (unsigned i = 0; i < c->code_page_count; i++)
        if (c->shadow && c->code_pages[i].gva)
            shadow_mmu_unprotect_code(c->shadow, c->code_pages[i].gpa);
    c->code_page_count = 0;
    for (unsigned i = 0; i < DBT_HASH_SIZE; i++)
        c->hash[i] = -1;
    c->block_count = c->map_count = c->link_count = c->callout_count = 0;
    c->stub_count = c->return_count = c->head_count = c->range_count = 0;
    c->stub_low = DBT_CACHE_SIZE;
    c->stub_tail = 0;
    c->block_bytes = c->stub_bytes = 0;
    (void)dbt_stubs_build(c); /* succeeded once in dbt_cache_init: the same bytes */
    uint64_t ibl_miss = (uint64_t)(uintptr_t)(c->rx + c->ibl_miss);
    for (unsigned i = 0; i < DBT_IBL_SIZE; i++)
        c->ibl_rw[i] = ibl_miss;
    uint64_t ret_miss = (uint64_t)(uintptr_t)(c->rx + c->ret_miss);
    for (unsigned i = 0; i < DBT_RET_SIZE; i++)
        c->ret_rw[i] = ret_miss;
    c->epoch++;
}

static unsigned hash_of(uint64_t rip)
{
    return (unsigned)(rip ^ (rip >> 14)) & (DBT_HASH_SIZE - 1);
}

struct dbt_block *dbt_cache_lookup(struct dbt_cache *c, uint64_t rip)
{
    for (int32_t i = c->hash[hash_of(rip)]; i >= 0; i = c->blocks[i].hash_next)
        if (c->blocks[i].guest_rip == rip)
            return &c->blocks[i];
    return NULL;
}

void dbt_cache_insert(struct dbt_cache *c, uint32_t index)
{
    struct dbt_block *b = &c->blocks[index];
    unsigned h = hash_of(b->guest_rip);
    b->hash_next = c->hash[h];
    c->hash[h] = (int32_t)index;
}

/* The block's lookup entry (dbt_lookup.c), written into the exit-stub area the first time
 * the block is the target of an indirect branch; then its slot in the table. Without room
 * the slot stays empty: the branch keeps reaching the dispatcher, correct and slower. */
void dbt_cache_ibl_fill(struct dbt_cache *c, uint64_t rip, struct dbt_block *b)
{
    if (!b->ibl_entry) {
        if (c->stub_low < c->used + DBT_LOOKUP_ENTRY_MAX_BYTES)
            return;
        /* written once to learn its length (it depends on the check form), then again ending
         * at stub_low: its RIP-relative operands are relative to where it is */
        uint32_t at = c->stub_low - DBT_LOOKUP_ENTRY_MAX_BYTES;
        struct emitter e = {.c = c, .out = c->rw, .pos = at, .limit = c->stub_low};
        dbt_emit_lookup_entry(&e, b->guest_rip, b->host_offset);
        if (e.overflow)
            return;
        at = c->stub_low - (e.pos - at);
        e = (struct emitter){.c = c, .out = c->rw, .pos = at, .limit = c->stub_low};
        uint32_t entry = dbt_emit_lookup_entry(&e, b->guest_rip, b->host_offset);
        c->stub_bytes += c->stub_low - at;
        c->stub_low = at;
        b->ibl_entry = entry;
    }
    (void)rip; /* == b->guest_rip: blocks are looked up by their start */
    c->ibl_rw[b->guest_rip & (DBT_IBL_SIZE - 1)] = (uint64_t)(uintptr_t)(c->rx + b->ibl_entry);
}

void dbt_cache_revoke_tables(struct dbt_cache *c)
{
    mprotect(c->ibl, IBL_BYTES, PROT_NONE);
    mprotect(c->ret, RET_BYTES, PROT_NONE);
    c->tables_revoked = 1;
}

void dbt_cache_restore_tables(struct dbt_cache *c)
{
    mprotect(c->ibl, IBL_BYTES, PROT_READ);
    mprotect(c->ret, RET_BYTES, PROT_READ);
    c->tables_revoked = 0;
}

bool dbt_cache_in_tables(const struct dbt_cache *c, uint64_t addr)
{
    uint64_t ibl = (uint64_t)(uintptr_t)c->ibl, ret = (uint64_t)(uintptr_t)c->ret;
    return (addr >= ibl && addr < ibl + IBL_BYTES) || (addr >= ret && addr < ret + RET_BYTES);
}

/* Return points: each guest return address -> the host code after its CALL. */
void dbt_cache_ret_fill(struct dbt_cache *c, const struct dbt_block *b)
{
    for (uint32_t i = 0; i < b->ret_count; i++) {
        const struct dbt_return_point *rp = &c->returns[b->ret_first + i];
        c->ret_rw[rp->guest_rip_low & (DBT_RET_SIZE - 1)] = (uint64_t)(uintptr_t)(c->rx + rp->host);
    }
}

bool dbt_cache_in_stub_area(const struct dbt_cache *c, uint64_t host)
{
    uint64_t rx = (uint64_t)(uintptr_t)c->rx;
    return host >= rx + c->stub_low && host < rx + DBT_CACHE_SIZE;
}

/* A branch's rel32 (the patch is one aligned-or-not 4-byte store through the writable view:
 * W^X holds; the thread that runs the code is the one patching, between two runs of it, or a
 * signal handler on it, whose return serializes). */
static void write_rel32(struct dbt_cache *c, uint32_t at, uint32_t target)
{
    /* A JMP to the code right after it - a block's fall-through exit chained to the block
     * translated next, which the cache put there - becomes a 5-byte NOP (0F 1F 44 00 00):
     * one taken branch less where native code falls through. Undone like any link. */
    static const uint8_t nop5[5] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
    uint8_t *op = c->rw + at - 1;
    bool jmp = *op == 0xe9 || (*op == 0x0f && op[1] == 0x1f); /* a JMP, or one made a NOP */
    if (jmp && target == at + 4) {
        memcpy(op, nop5, 5);
        return;
    }
    if (jmp)
        *op = 0xe9;
    int32_t rel = (int32_t)((int64_t)target - (int64_t)(at + 4));
    memcpy(c->rw + at, &rel, 4);
}

void dbt_cache_chain(struct dbt_cache *c, uint32_t id, uint32_t target)
{
    dbt_cache_chain_to(c, id, target, c->blocks[target].host_offset);
}

void dbt_cache_chain_to(struct dbt_cache *c, uint32_t id, uint32_t target, uint32_t dest)
{
    if (c->link_count >= DBT_MAX_LINKS || id >= c->stub_count)
        return; /* stays an exit stub: correct, only slower */
    const struct dbt_stub *st = &c->stubs[id];
    struct dbt_block *b = &c->blocks[target];
    struct dbt_link *l = &c->links[c->link_count];
    l->branch = st->branch;
    l->stub = st->stub;
    l->target = target;
    l->next = b->links_in;
    l->live = true;
    b->links_in = (int32_t)c->link_count++;
    write_rel32(c, l->branch, dest); /* the branch goes straight to the block */
}

void dbt_cache_relink(struct dbt_cache *c, uint32_t from, uint32_t to)
{
    struct dbt_block *a = &c->blocks[from], *b = &c->blocks[to];
    if (from == to) { /* straight to the block itself (past a counting stub) */
        for (int32_t i = a->links_in; i >= 0; i = c->links[i].next)
            if (c->links[i].live)
                write_rel32(c, c->links[i].branch, a->host_offset);
        return;
    }
    while (a->links_in >= 0) {
        struct dbt_link *l = &c->links[a->links_in];
        a->links_in = l->next;
        if (l->live)
            write_rel32(c, l->branch, b->host_offset);
        l->target = to;
        l->next = b->links_in;
        b->links_in = (int32_t)(l - c->links);
    }
}

/* Point a chained branch back at its exit stub. */
static void link_undo(struct dbt_cache *c, struct dbt_link *l)
{
    if (!l->live)
        return;
    write_rel32(c, l->branch, l->stub);
    l->live = false;
}

void dbt_cache_unchain_from(struct dbt_cache *c, const struct dbt_block *b)
{
    for (uint32_t i = 0; i < c->link_count; i++)
        if (c->links[i].branch >= b->host_offset &&
            c->links[i].branch < b->host_offset + b->host_size)
            link_undo(c, &c->links[i]);
}

static void block_kill(struct dbt_cache *c, uint32_t index)
{
    struct dbt_block *b = &c->blocks[index];
    int32_t *pp = &c->hash[hash_of(b->guest_rip)];
    while (*pp >= 0 && *pp != (int32_t)index)
        pp = &c->blocks[*pp].hash_next;
    if (*pp == (int32_t)index)
        *pp = b->hash_next;
    for (int32_t l = b->links_in; l >= 0; l = c->links[l].next)
        link_undo(c, &c->links[l]);
    b->links_in = -1;
    uint64_t *slot = &c->ibl_rw[b->guest_rip & (DBT_IBL_SIZE - 1)];
    if (b->ibl_entry && *slot == (uint64_t)(uintptr_t)(c->rx + b->ibl_entry))
        *slot = (uint64_t)(uintptr_t)(c->rx + c->ibl_miss);
    for (uint32_t i = 0; i < b->ret_count; i++) { /* its return points are stale too */
        const struct dbt_return_point *rp = &c->returns[b->ret_first + i];
        uint64_t *rslot = &c->ret_rw[rp->guest_rip_low & (DBT_RET_SIZE - 1)];
        if (*rslot == (uint64_t)(uintptr_t)(c->rx + rp->host))
            *rslot = (uint64_t)(uintptr_t)(c->rx + c->ret_miss);
    }
    b->live = false;
}

unsigned dbt_cache_invalidate_range(struct dbt_cache *c, uint64_t lo, uint64_t hi)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < c->block_count; i++) {
        struct dbt_block *b = &c->blocks[i];
        bool hit = b->live && b->guest_rip < hi && b->guest_rip + b->guest_size > lo;
        for (uint32_t r = 0; b->live && !hit && r < b->range_count; r++) { /* a trace */
            const struct dbt_range *g = &c->ranges[b->range_first + r];
            hit = g->rip < hi && g->rip + g->size > lo;
        }
        if (hit) {
            block_kill(c, i);
            n++;
        }
    }
    c->epoch++;
    return n;
}

const struct dbt_block *dbt_cache_block_at(const struct dbt_cache *c, uint64_t host)
{
    uint64_t rx = (uint64_t)(uintptr_t)c->rx;
    if (host < rx || host >= rx + c->used)
        return NULL;
    uint32_t off = (uint32_t)(host - rx), lo = 0, hi = c->block_count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (c->blocks[mid].host_offset <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || off >= c->blocks[lo - 1].host_offset + c->blocks[lo - 1].host_size)
        return NULL;
    return &c->blocks[lo - 1];
}

const struct dbt_map_entry *dbt_cache_map_entry_of(const struct dbt_cache *c, uint64_t host)
{
    const struct dbt_block *b = dbt_cache_block_at(c, host);
    uint32_t off = (uint32_t)(host - (uint64_t)(uintptr_t)c->rx);
    const struct dbt_map_entry *found = NULL;
    for (uint32_t i = 0; b && i < b->map_count; i++)
        if (c->map[b->map_first + i].host_offset <= off)
            found = &c->map[b->map_first + i];
    return found;
}

uint64_t dbt_cache_guest_rip_of(const struct dbt_cache *c, uint64_t host)
{
    const struct dbt_map_entry *m = dbt_cache_map_entry_of(c, host);
    return m ? GUEST_RAM_BASE + (m->guest_rip_low & DBT_MAP_RIP_MASK) : 0;
}

uint64_t dbt_cache_guest_rip_at_boundary(const struct dbt_cache *c, uint64_t host)
{
    const struct dbt_block *b = dbt_cache_block_at(c, host);
    uint32_t off = (uint32_t)(host - (uint64_t)(uintptr_t)c->rx);
    for (uint32_t i = 0; b && i < b->map_count; i++)
        if (c->map[b->map_first + i].host_offset == off)
            return GUEST_RAM_BASE + (c->map[b->map_first + i].guest_rip_low & DBT_MAP_RIP_MASK);
    return 0;
}
