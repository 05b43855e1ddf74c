/* dbt_paging.c - dbt under the guest's paging: where translated code comes from, when it stops
 * being valid, and adaptive translation of stores to page tables.
 *
 * Blocks are keyed by guest-virtual RIP, but they were read from guest-physical pages. The
 * invariant: every live block was translated from the page its address maps to in the CURRENT
 * address space, so the hash table, the chained jumps and the indirect-branch table never
 * need to know about address spaces. The cache keeps a list of its code pages (guest-virtual
 * page -> guest-physical page); the shadow MMU, the one owner of translations and protections
 * in the window (mmu/shadow_mmu.h), tells this file whenever the invariant may break:
 *
 *   translations_dropped(lo, hi)  the guest changed a table entry that gave translations of
 *                                 [lo, hi) (a PTE store, INVLPG): blocks from code pages
 *                                 there go (they are retranslated from wherever the address
 *                                 leads on their next use)
 *   space_changed                 MOV CR3 to another address space, or a paging-mode change:
 *                                 every code page is translated in the new space; blocks
 *                                 from pages that lead elsewhere (or nowhere) now go, the
 *                                 rest stay valid and stay chained - one address mapping
 *                                 different code in two spaces never runs stale code, and
 *                                 code both spaces share is not translated twice
 *   code_written(gpa)             a store to a page code was translated from (self-modifying
 *                                 code; the page was write-protected through the shadow)
 *
 * Code pages are translated with shadow_mmu_code_page(), which makes them shadow entries: the
 * tables that give them are traced, so no change of them goes unseen.
 *
 * Adaptive translation (Adams & Agesen, ASPLOS 2006). A store to a traced page table faults
 * (a signal: the host kernel's round trip) and is performed by the emulation core. When the
 * same guest instruction has done that DBT_ADAPT_THRESHOLD times, its block is retranslated
 * with that instruction as a callout (dbt_callout.c) that has the core perform the store
 * through the guest's tables - no fault, no signal, the shadow still told of the store.
 */
#include <string.h>

#include "dbt.h"

static void drop_code_page(struct dbt_vcpu *v, unsigned i)
{
    struct dbt_code_page *p = &v->cache.code_pages[i];
    v->stats.invalidated_blocks += dbt_cache_invalidate_range(&v->cache, p->gva, p->gva + 4096);
    v->stats.invalidations++;
    v->stats.code_pages_dropped++;
    p->gva = 0; /* removed; compacted when no callback is running any more */
}

static void compact(struct dbt_vcpu *v)
{
    struct dbt_cache *c = &v->cache;
    unsigned n = 0;
    for (unsigned i = 0; i < c->code_page_count; i++)
        if (c->code_pages[i].gva)
            c->code_pages[n++] = c->code_pages[i];
    c->code_page_count = n;
}

static void enter(struct dbt_vcpu *v)
{
    v->paging.depth++;
}

static void leave(struct dbt_vcpu *v)
{
    if (--v->paging.depth == 0)
        compact(v);
}

static void on_translations_dropped(void *arg, uint64_t lo, uint64_t hi)
{
    struct dbt_vcpu *v = arg;
    enter(v);
    for (unsigned i = 0; i < v->cache.code_page_count; i++) {
        uint64_t gva = v->cache.code_pages[i].gva;
        if (gva && gva < hi && gva + 4096 > lo)
            drop_code_page(v, i);
    }
    leave(v);
}

static void on_code_written(void *arg, uint64_t gpa_page)
{
    struct dbt_vcpu *v = arg;
    enter(v);
    for (unsigned i = 0; i < v->cache.code_page_count; i++)
        if (v->cache.code_pages[i].gva && v->cache.code_pages[i].gpa == gpa_page)
            drop_code_page(v, i);
    leave(v);
}

static void on_space_changed(void *arg)
{
    struct dbt_vcpu *v = arg;
    if (v->paging.depth) { /* a translation below re-entered: go round once more */
        v->paging.revalidate = true;
        return;
    }
    enter(v);
    do {
        v->paging.revalidate = false;
        for (unsigned i = 0; i < v->cache.code_page_count; i++) {
            struct dbt_code_page *p = &v->cache.code_pages[i];
            uint64_t gpa;
            uint32_t error;
            if (!p->gva)
                continue;
            v->stats.code_pages_revalidated++;
            if (shadow_mmu_code_page(v->shadow, p->gva, &gpa, &error) < 0 || gpa != p->gpa)
                drop_code_page(v, i);
        }
    } while (v->paging.revalidate);
    leave(v);
}

void dbt_paging_attach(struct dbt_vcpu *v, struct shadow_mmu *sm)
{
    static const struct shadow_listener listener = {.translations_dropped = on_translations_dropped,
                                                    .space_changed = on_space_changed,
                                                    .code_written = on_code_written};
    v->shadow = sm;
    v->cache.shadow = sm;
    shadow_mmu_set_listener(sm, &listener, v);
}

int dbt_code_page(struct dbt_vcpu *v, uint64_t gva_page, uint64_t *gpa_page, uint32_t *error)
{
    return shadow_mmu_code_page(v->shadow, gva_page, gpa_page, error);
}

bool dbt_code_pages_add(struct dbt_vcpu *v, uint64_t gva_page, uint64_t gpa_page)
{
    struct dbt_cache *c = &v->cache;
    for (unsigned i = 0; i < c->code_page_count; i++)
        if (c->code_pages[i].gva == gva_page && c->code_pages[i].gpa == gpa_page)
            return true;
    if (c->code_page_count == DBT_MAX_CODE_PAGES)
        return false;
    c->code_pages[c->code_page_count++] = (struct dbt_code_page){gva_page, gpa_page};
    /* Self-modifying code: a store to the page now faults (or, by the core, is reported). */
    shadow_mmu_protect_code(v->shadow, gpa_page);
    return true;
}

void dbt_adaptive_note(struct dbt_vcpu *v, uint64_t rip)
{
    unsigned slot = (unsigned)(rip ^ (rip >> 8)) & (DBT_ADAPT_COUNTERS - 1);
    if (v->paging.counter[slot].rip != rip) {
        v->paging.counter[slot].rip = rip;
        v->paging.counter[slot].faults = 0;
    }
    if (++v->paging.counter[slot].faults < DBT_ADAPT_THRESHOLD)
        return;
    v->paging.counter[slot].faults = 0;
    v->paging.adaptive[(rip ^ (rip >> 10)) & (DBT_ADAPT_SET - 1)] = rip;
    v->stats.adaptive_retranslations++;
    /* the block holding the store goes; its next translation makes the store a callout */
    v->stats.invalidated_blocks += dbt_cache_invalidate_range(&v->cache, rip, rip + 1);
}

enum dbt_emulate_result dbt_emulate_store(struct dbt_vcpu *v, const struct x86_decoded_insn *insn)
{
    struct emu_ctx ec = dbt_emu_ctx(v);
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    emu_execute_store(&ec, insn, &res);
    switch (res.status) {
    case EMU_OK:
        return DBT_EMULATE_CONTINUE;
    case EMU_EXCEPTION:
        if (res.vector == 14)
            v->state.cr2 = res.cr2;
        return dbt_deliver(v, EMU_EVENT_EXCEPTION, res.vector, res.has_error_code, res.error_code);
    default: { /* only instructions the core performed before become store callouts */
        static const char msg[] = "dbt store callout for an instruction the core cannot perform";
        dbt_set_exit(v, VM_EXIT_INTERNAL_ERROR);
        v->exit->internal.suberror = VM_INTERNAL_EMULATION;
        memcpy(v->exit->internal.message, msg, sizeof(msg));
        return DBT_EMULATE_LEAVE;
    }
    }
}
