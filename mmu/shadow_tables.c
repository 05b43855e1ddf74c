/* shadow_tables.c - what the shadow MMU knows: entries per root, the guest page tables they
 * were derived through, reverse maps, and zapping (see shadow_internal.h for the model).
 *
 * Everything lives in pools reserved once (shadow_tables_init) and is found by index: no
 * allocation ever happens on a fault.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "shadow_internal.h"

static void *pool(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void pool_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}

#define ENTRY_POOL_BYTES (SHADOW_MAX_ENTRIES * sizeof(struct shadow_entry))
#define USE_POOL_BYTES (SHADOW_MAX_USES * sizeof(struct shadow_use))
#define SMALL_POOL_BYTES (SHADOW_MAX_SMALL * sizeof(int32_t[512]))
#define SMALL_COUNT_BYTES (SHADOW_MAX_SMALL * sizeof(uint16_t))
#define PAGE_ARRAY_BYTES (SHADOW_RAM_PAGES * sizeof(int32_t))

int shadow_tables_init(struct shadow_mmu *sm)
{
    sm->entries = pool(ENTRY_POOL_BYTES);
    sm->uses = pool(USE_POOL_BYTES);
    sm->small = pool(SMALL_POOL_BYTES);
    sm->small_count = pool(SMALL_COUNT_BYTES);
    sm->use_head = pool(PAGE_ARRAY_BYTES);
    sm->rmap_head = pool(PAGE_ARRAY_BYTES);
    sm->trace_count = pool(SHADOW_RAM_PAGES * sizeof(uint16_t));
    sm->page_flags = pool(SHADOW_RAM_PAGES);
    if (!sm->entries || !sm->uses || !sm->small || !sm->small_count || !sm->use_head ||
        !sm->rmap_head || !sm->trace_count || !sm->page_flags) {
        shadow_tables_free(sm);
        return -ENOMEM;
    }
    memset(sm->use_head, 0xFF, PAGE_ARRAY_BYTES); /* -1: empty */
    memset(sm->rmap_head, 0xFF, PAGE_ARRAY_BYTES);
    sm->entry_free = sm->use_free = sm->small_free = -1;
    return 0;
}

void shadow_tables_free(struct shadow_mmu *sm)
{
    pool_free(sm->entries, ENTRY_POOL_BYTES);
    pool_free(sm->uses, USE_POOL_BYTES);
    pool_free(sm->small, SMALL_POOL_BYTES);
    pool_free(sm->small_count, SMALL_COUNT_BYTES);
    pool_free(sm->use_head, PAGE_ARRAY_BYTES);
    pool_free(sm->rmap_head, PAGE_ARRAY_BYTES);
    pool_free(sm->trace_count, SHADOW_RAM_PAGES * sizeof(uint16_t));
    pool_free(sm->page_flags, SHADOW_RAM_PAGES);
}

/* ---- uses: which guest tables an entry was derived through ------------------------------ */

static int32_t use_get(struct shadow_mmu *sm, unsigned r, uint64_t table, unsigned level,
                       uint64_t gla_base)
{
    size_t page = shadow_ram_page(table);
    for (int32_t i = sm->use_head[page]; i >= 0; i = sm->uses[i].next) {
        struct shadow_use *u = &sm->uses[i];
        if (u->root == r && u->level == level && u->gla_base == gla_base) {
            u->refs++;
            return i;
        }
    }
    int32_t i;
    if (sm->use_free >= 0) {
        i = sm->use_free;
        sm->use_free = sm->uses[i].next;
    } else if (sm->use_high < SHADOW_MAX_USES) {
        i = (int32_t)sm->use_high++;
    } else {
        return -1;
    }
    struct shadow_use *u = &sm->uses[i];
    *u = (struct shadow_use){.table = table & ~0xFFFULL,
                             .gla_base = gla_base,
                             .refs = 1,
                             .level = (uint8_t)level,
                             .root = (uint8_t)r,
                             .next = sm->use_head[page]};
    sm->use_head[page] = i;
    if (sm->trace_count[page]++ == 0) {
        /* A new traced table: wherever the guest maps it, it becomes read-only. */
        sm->stats.tables_traced++;
        shadow_window_restrict_page(sm, page);
    }
    return i;
}

static void use_put(struct shadow_mmu *sm, int32_t i)
{
    struct shadow_use *u = &sm->uses[i];
    if (--u->refs)
        return;
    size_t page = shadow_ram_page(u->table);
    int32_t *pp = &sm->use_head[page];
    while (*pp >= 0 && *pp != i)
        pp = &sm->uses[*pp].next;
    if (*pp == i)
        *pp = u->next;
    sm->trace_count[page]--; /* at 0 no longer traced: mappings regain writes on next fault */
    u->next = sm->use_free;
    sm->use_free = i;
}

/* ---- the per-root directory ------------------------------------------------------------- */

int32_t shadow_lookup(const struct shadow_mmu *sm, unsigned r, uint64_t gla)
{
    if (!shadow_in_window(gla))
        return -1;
    const struct shadow_root *root = &sm->root[r];
    unsigned reg = shadow_region(gla);
    if (root->large[reg] >= 0)
        return root->large[reg];
    if (root->small[reg] < 0)
        return -1;
    return sm->small[root->small[reg]][(gla >> 12) & 511];
}

static int32_t small_alloc(struct shadow_mmu *sm)
{
    int32_t s;
    if (sm->small_free >= 0) {
        s = sm->small_free;
        sm->small_free = sm->small[s][0];
    } else if (sm->small_high < SHADOW_MAX_SMALL) {
        s = (int32_t)sm->small_high++;
    } else {
        return -1;
    }
    memset(sm->small[s], 0xFF, sizeof(sm->small[s]));
    sm->small_count[s] = 0;
    return s;
}

static void entry_remove(struct shadow_mmu *sm, int32_t idx)
{
    struct shadow_entry *e = &sm->entries[idx];
    struct shadow_root *root = &sm->root[e->root];
    unsigned reg = shadow_region(e->gla);
    if (e->pages > 1) {
        root->large[reg] = -1;
        root->large_count--;
    } else {
        int32_t s = root->small[reg];
        sm->small[s][(e->gla >> 12) & 511] = -1;
        if (--sm->small_count[s] == 0) {
            root->small[reg] = -1;
            sm->small[s][0] = sm->small_free;
            sm->small_free = s;
        }
        if (guest_ram_contains(sm->mem, e->gpa, 4096)) {
            int32_t *pp = &sm->rmap_head[shadow_ram_page(e->gpa)];
            while (*pp >= 0 && *pp != idx)
                pp = &sm->entries[*pp].rmap_next;
            if (*pp == idx)
                *pp = e->rmap_next;
        }
    }
    for (unsigned k = 0; k < MMU_LEVELS; k++)
        if (e->use[k] >= 0)
            use_put(sm, e->use[k]);
    root->entries--;
    e->rmap_next = sm->entry_free;
    sm->entry_free = idx;
}

int32_t shadow_entry_add(struct shadow_mmu *sm, unsigned r, const struct mmu_walk *w)
{
    struct shadow_root *root = &sm->root[r];
    bool large = w->page_shift > 12;
    uint64_t size = large ? 1ULL << 21 : 4096;
    uint64_t gla = w->gla & ~(size - 1), gpa = w->gpa & ~(size - 1);
    unsigned reg = shadow_region(gla);
    /* A region holds either one 2 MiB entry or 4 KiB ones; anything there that disagrees is
     * stale (it cannot be, with every table traced: defensive) and goes. */
    if ((large && root->small[reg] >= 0) || (!large && root->large[reg] >= 0)) {
        uint64_t lo = SHADOW_WINDOW_BASE + ((uint64_t)reg << 21);
        shadow_zap_range(sm, r, lo, lo + (1ULL << 21));
        if ((int)r == sm->active)
            shadow_window_clear(sm, lo, lo + (1ULL << 21));
    }
    int32_t idx;
    if (sm->entry_free >= 0) {
        idx = sm->entry_free;
        sm->entry_free = sm->entries[idx].rmap_next;
    } else if (sm->entry_high < SHADOW_MAX_ENTRIES) {
        idx = (int32_t)sm->entry_high++;
    } else {
        return -1;
    }
    int32_t s = -1;
    if (!large && root->small[reg] < 0 && (s = small_alloc(sm)) < 0) {
        sm->entries[idx].rmap_next = sm->entry_free;
        sm->entry_free = idx;
        return -1;
    }
    struct shadow_entry *e = &sm->entries[idx];
    *e = (struct shadow_entry){.gla = gla,
                               .gpa = gpa,
                               .pages = (uint16_t)(size >> 12),
                               .root = (uint8_t)r,
                               .rmap_next = -1};
    for (unsigned k = 0; k < MMU_LEVELS; k++)
        e->use[k] = -1;
    for (unsigned k = 0; k < w->levels; k++) {
        unsigned level = MMU_LEVELS - k;
        uint64_t base = w->gla & ~(shadow_span(level) * 512 - 1);
        e->use[k] = use_get(sm, r, w->entry_gpa[k], level, base);
        if (e->use[k] < 0) { /* out of uses: undo, the caller makes room */
            for (unsigned j = 0; j < k; j++)
                use_put(sm, e->use[j]);
            if (s >= 0) {
                sm->small[s][0] = sm->small_free;
                sm->small_free = s;
            }
            e->rmap_next = sm->entry_free;
            sm->entry_free = idx;
            return -1;
        }
    }
    if (large) {
        root->large[reg] = idx;
        root->large_count++;
    } else {
        if (s >= 0)
            root->small[reg] = s;
        s = root->small[reg];
        sm->small[s][(gla >> 12) & 511] = idx;
        sm->small_count[s]++;
        if (guest_ram_contains(sm->mem, gpa, 4096)) {
            size_t page = shadow_ram_page(gpa);
            e->rmap_next = sm->rmap_head[page];
            sm->rmap_head[page] = idx;
        }
    }
    root->entries++;
    return idx;
}

unsigned shadow_zap_range(struct shadow_mmu *sm, unsigned r, uint64_t lo, uint64_t hi)
{
    struct shadow_root *root = &sm->root[r];
    if (lo < SHADOW_WINDOW_BASE)
        lo = SHADOW_WINDOW_BASE;
    if (hi > SHADOW_WINDOW_END || hi < lo) /* hi < lo: the range wrapped past 2^64 */
        hi = SHADOW_WINDOW_END;
    unsigned n = 0;
    for (uint64_t a = lo; a < hi && root->entries;) {
        unsigned reg = shadow_region(a);
        uint64_t reg_end = SHADOW_WINDOW_BASE + ((uint64_t)(reg + 1) << 21);
        uint64_t end = hi < reg_end ? hi : reg_end;
        if (root->large[reg] >= 0) {
            entry_remove(sm, root->large[reg]);
            n++;
        } else if (root->small[reg] >= 0) {
            int32_t s = root->small[reg];
            for (uint64_t p = a; p < end && root->small[reg] >= 0; p += 4096) {
                int32_t idx = sm->small[s][(p >> 12) & 511];
                if (idx >= 0) {
                    entry_remove(sm, idx);
                    n++;
                }
            }
        }
        a = end;
    }
    sm->stats.zapped_entries += n;
    if (n && (int)r == sm->active && sm->listener.translations_dropped)
        sm->listener.translations_dropped(sm->listener_arg, lo, hi);
    return n;
}

void shadow_root_drop(struct shadow_mmu *sm, unsigned r)
{
    if (!sm->root[r].live)
        return;
    unsigned n = shadow_zap_range(sm, r, SHADOW_WINDOW_BASE, SHADOW_WINDOW_END);
    sm->stats.zapped_entries -= n; /* dropping a root is not the guest changing its tables */
    sm->root[r].live = false;
}

/* ---- stores to guest tables --------------------------------------------------------------- */

/* Zap, in every root, what entries [first, last] of table page `page` translated. The jobs
 * are collected first (zapping frees uses, maybe from this very chain), then done. */
static void zap_table_entries(struct shadow_mmu *sm, size_t page, unsigned first, unsigned last)
{
    unsigned n = 0;
    for (int32_t i = sm->use_head[page]; i >= 0; i = sm->uses[i].next) {
        const struct shadow_use *u = &sm->uses[i];
        uint64_t span = shadow_span(u->level);
        uint64_t lo = u->gla_base + first * span, hi = u->gla_base + (last + 1) * span;
        if (hi <= SHADOW_WINDOW_BASE || lo >= SHADOW_WINDOW_END)
            continue;
        if (n == SHADOW_MAX_JOBS) { /* a table shared thousands of times: start over */
            for (unsigned r = 0; r < sm->slots; r++)
                shadow_root_drop(sm, r);
            shadow_window_clear(sm, SHADOW_WINDOW_BASE, SHADOW_WINDOW_END);
            return;
        }
        sm->jobs[n++] = (struct shadow_zap_job){u->root, lo, hi};
    }
    for (unsigned j = 0; j < n; j++) {
        const struct shadow_zap_job *job = &sm->jobs[j];
        if (shadow_zap_range(sm, job->root, job->lo, job->hi) && (int)job->root == sm->active)
            shadow_window_clear(sm, job->lo, job->hi);
    }
}

void shadow_table_written(struct shadow_mmu *sm, uint64_t gpa, uint64_t len)
{
    if (!len || !guest_ram_contains(sm->mem, gpa, len))
        return;
    for (uint64_t p = gpa & ~0xFFFULL; p < gpa + len; p += 4096) {
        size_t page = shadow_ram_page(p);
        if (sm->trace_count[page]) {
            uint64_t lo = gpa > p ? gpa : p, hi = gpa + len < p + 4096 ? gpa + len : p + 4096;
            zap_table_entries(sm, page, (unsigned)((lo - p) / 8), (unsigned)((hi - 1 - p) / 8));
        }
        if (sm->page_flags[page] & SHADOW_PAGE_CODE) {
            sm->page_flags[page] &= ~SHADOW_PAGE_CODE;
            if (sm->listener.code_written)
                sm->listener.code_written(sm->listener_arg, p);
        }
    }
}

void shadow_untrace(struct shadow_mmu *sm, uint64_t gpa_page)
{
    if (!guest_ram_contains(sm->mem, gpa_page, 4096))
        return;
    size_t page = shadow_ram_page(gpa_page);
    for (unsigned round = 0; sm->use_head[page] >= 0 && round < 4096; round++) {
        const struct shadow_use *u = &sm->uses[sm->use_head[page]];
        unsigned r = u->root;
        uint64_t lo = u->gla_base, hi = u->gla_base + 512 * shadow_span(u->level);
        if (shadow_zap_range(sm, r, lo, hi) && (int)r == sm->active)
            shadow_window_clear(sm, lo, hi);
    }
}
