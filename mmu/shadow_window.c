/* shadow_window.c - the host side of the shadow: mmap/mprotect of the guest-virtual window.
 *
 * A page of an entry gets the rights the guest gives it, lowered by what the shadow must see:
 *
 *   write    only if the guest allows the store, its dirty flag is already set (else the
 *            first store must fault so that D can be set, SDM vol. 3A 4.8), it is not a
 *            traced page table and dbt did not translate code from it
 *   execute  only for trap_emulate (dbt never runs guest code where it lies) and only if
 *            the guest allows fetches
 *   anything not where the guest asked for a second-level permission (read-only, none) that
 *            forbids it
 *
 * Every call is counted (stats.mmap_calls): they are the host's share of the cost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>

#include "shadow_internal.h"

int shadow_page_prot(const struct shadow_mmu *sm, const struct shadow_entry *e, size_t page)
{
    uint8_t flags = sm->page_flags[page];
    if (flags & SHADOW_PAGE_SLP_NONE)
        return PROT_NONE;
    int prot = PROT_READ;
    if ((e->rights & SHADOW_RIGHT_W) && (e->rights & SHADOW_RIGHT_D) && !sm->trace_count[page] &&
        !(flags & (SHADOW_PAGE_CODE | SHADOW_PAGE_SLP_RO)))
        prot |= PROT_WRITE;
    if ((e->rights & SHADOW_RIGHT_X) && sm->executable)
        prot |= PROT_EXEC;
    return prot;
}

/* The rights of a page no flag restricts: what most pages of a large entry get. */
static int plain_prot(const struct shadow_mmu *sm, const struct shadow_entry *e)
{
    int prot = PROT_READ;
    if ((e->rights & SHADOW_RIGHT_W) && (e->rights & SHADOW_RIGHT_D))
        prot |= PROT_WRITE;
    if ((e->rights & SHADOW_RIGHT_X) && sm->executable)
        prot |= PROT_EXEC;
    return prot;
}

static int host_mmap(struct shadow_mmu *sm, uint64_t gla, uint64_t len, int prot, uint64_t gpa)
{
    sm->stats.mmap_calls++;
    void *p = mmap((void *)(uintptr_t)gla, len, prot, MAP_SHARED | MAP_FIXED, sm->mem->memfd,
                   (off_t)(gpa - GUEST_RAM_BASE));
    return p == MAP_FAILED ? -errno : 0;
}

static int host_mprotect(struct shadow_mmu *sm, uint64_t gla, uint64_t len, int prot)
{
    sm->stats.mmap_calls++;
    return mprotect((void *)(uintptr_t)gla, len, prot) < 0 ? -errno : 0;
}

/* Apply per-page rights to entry e's pages that differ from `base` (runs of equal rights in one
 * call each). */
static int protect_exceptions(struct shadow_mmu *sm, const struct shadow_entry *e, int base)
{
    size_t first = shadow_ram_page(e->gpa);
    for (unsigned i = 0; i < e->pages;) {
        int prot = shadow_page_prot(sm, e, first + i);
        if (prot == base) {
            i++;
            continue;
        }
        unsigned j = i + 1;
        while (j < e->pages && shadow_page_prot(sm, e, first + j) == prot)
            j++;
        int rc = host_mprotect(sm, e->gla + i * 4096ULL, (j - i) * 4096ULL, prot);
        if (rc < 0)
            return rc;
        i = j;
    }
    return 0;
}

int shadow_window_map(struct shadow_mmu *sm, const struct shadow_entry *e)
{
    int base = e->pages == 1 ? shadow_page_prot(sm, e, shadow_ram_page(e->gpa)) : plain_prot(sm, e);
    int rc = host_mmap(sm, e->gla, e->pages * 4096ULL, base, e->gpa);
    if (rc == 0 && e->pages > 1)
        rc = protect_exceptions(sm, e, base);
    return rc;
}

int shadow_window_protect(struct shadow_mmu *sm, const struct shadow_entry *e)
{
    if (e->pages == 1)
        return host_mprotect(sm, e->gla, 4096, shadow_page_prot(sm, e, shadow_ram_page(e->gpa)));
    int base = plain_prot(sm, e);
    int rc = host_mprotect(sm, e->gla, e->pages * 4096ULL, base);
    return rc == 0 ? protect_exceptions(sm, e, base) : rc;
}

int shadow_window_clear(struct shadow_mmu *sm, uint64_t lo, uint64_t hi)
{
    if (lo < SHADOW_WINDOW_BASE)
        lo = SHADOW_WINDOW_BASE;
    if (hi > SHADOW_WINDOW_END || hi < lo)
        hi = SHADOW_WINDOW_END;
    if (lo >= hi)
        return 0;
    sm->stats.mmap_calls++;
    void *p = mmap((void *)(uintptr_t)lo, hi - lo, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? -errno : 0;
}

int shadow_window_install_root(struct shadow_mmu *sm, unsigned r)
{
    const struct shadow_root *root = &sm->root[r];
    for (unsigned reg = 0; reg < SHADOW_REGIONS; reg++) {
        int rc = 0;
        if (root->large[reg] >= 0) {
            rc = shadow_window_map(sm, &sm->entries[root->large[reg]]);
        } else if (root->small[reg] >= 0) {
            /* runs of pages contiguous in both spaces, with equal rights: one mmap each */
            const int32_t *slot = sm->small[root->small[reg]];
            for (unsigned i = 0; i < 512 && rc == 0;) {
                if (slot[i] < 0) {
                    i++;
                    continue;
                }
                const struct shadow_entry *first = &sm->entries[slot[i]];
                int prot = shadow_page_prot(sm, first, shadow_ram_page(first->gpa));
                unsigned j = i + 1;
                while (j < 512 && slot[j] >= 0) {
                    const struct shadow_entry *e = &sm->entries[slot[j]];
                    if (e->gpa != first->gpa + (j - i) * 4096ULL ||
                        shadow_page_prot(sm, e, shadow_ram_page(e->gpa)) != prot)
                        break;
                    j++;
                }
                rc = host_mmap(sm, first->gla, (j - i) * 4096ULL, prot, first->gpa);
                i = j;
            }
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

void shadow_window_restrict_page(struct shadow_mmu *sm, size_t page)
{
    if (sm->active < 0)
        return;
    unsigned r = (unsigned)sm->active;
    for (int32_t i = sm->rmap_head[page]; i >= 0; i = sm->entries[i].rmap_next) {
        const struct shadow_entry *e = &sm->entries[i];
        if (e->root == r)
            host_mprotect(sm, e->gla, 4096, shadow_page_prot(sm, e, page));
    }
    const struct shadow_root *root = &sm->root[r];
    uint64_t gpa = GUEST_RAM_BASE + ((uint64_t)page << 12);
    for (unsigned reg = 0; root->large_count && reg < SHADOW_REGIONS; reg++) {
        if (root->large[reg] < 0)
            continue;
        const struct shadow_entry *e = &sm->entries[root->large[reg]];
        if (gpa >= e->gpa && gpa < e->gpa + e->pages * 4096ULL)
            host_mprotect(sm, e->gla + (gpa - e->gpa), 4096, shadow_page_prot(sm, e, page));
    }
}
