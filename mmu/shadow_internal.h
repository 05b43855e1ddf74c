/* shadow_internal.h - the shadow MMU's bookkeeping, shared by its files (not an interface).
 *
 *   shadow_mmu.c      the interface: faults, the emulation core's hooks, roots, statistics
 *   shadow_tables.c   what the shadow knows: entries per root, the guest tables they were
 *                     derived through (uses), reverse maps, zapping
 *   shadow_window.c   what the host does: mmap/mprotect of the window, rights per page
 *
 * An *entry* is one guest leaf translation the shadow holds for one root: a 4 KiB page, or a
 * 2 MiB piece of a large page (a 2 MiB page, or 2 MiB of a 1 GiB page). Entries of the active
 * root are mapped in the window; the others wait in the root cache. A *use* says that guest
 * page table T, at paging level L, translated the linear range starting at gla_base in root R:
 * every entry records the uses along its walk, and a table page with uses is *traced*. A store
 * to entry i of T is then exactly a change of the range gla_base + i * span(L) in R: that is
 * what gets zapped. When the last entry derived through a use goes, the use goes; when a
 * table's last use goes, it is no longer traced (its mappings become writable on the next
 * fault, lazily).
 */
#ifndef VMLAB_SHADOW_INTERNAL_H
#define VMLAB_SHADOW_INTERNAL_H

#include "mmu/page_walk.h"
#include "shadow_mmu.h"

#define SHADOW_WINDOW_BASE GUEST_SPACE_BASE
#define SHADOW_WINDOW_END GUEST_SPACE_END
#define SHADOW_REGIONS (GUEST_SPACE_SIZE >> 21) /* 2 MiB regions of the window */
#define SHADOW_RAM_PAGES (GUEST_RAM_SIZE >> 12)
#define SHADOW_MAX_ENTRIES (1u << 18)
#define SHADOW_MAX_USES (1u << 16)
#define SHADOW_SLOTS (SHADOW_MAX_ROOTS + 1) /* root slots: N cached (>= 1) */
#define SHADOW_MAX_SMALL (SHADOW_REGIONS * SHADOW_SLOTS)

/* Entry rights, from the guest's walk (valid until CR0.WP / EFER.NXE change: that drops all). */
#define SHADOW_RIGHT_W 1u /* a supervisor store is allowed (R/W everywhere, or CR0.WP = 0) */
#define SHADOW_RIGHT_X 2u /* a fetch is allowed (no XD with EFER.NXE) */
#define SHADOW_RIGHT_D 4u /* the leaf's dirty flag is set */

/* Guest-physical page flags (what the shadow must respect besides the guest's rights). */
#define SHADOW_PAGE_CODE 1u        /* dbt translated code from it: no writes */
#define SHADOW_PAGE_SLP_RO 2u      /* second-level permission: read-only */
#define SHADOW_PAGE_SLP_NONE 4u    /* second-level permission: no access */
#define SHADOW_PAGE_CONVERTIBLE 8u /* a violation becomes #VE (with an information area) */

struct shadow_entry {
    uint64_t gla, gpa; /* aligned to the entry's size */
    uint16_t pages;    /* 1 or 512 */
    uint8_t root;
    uint8_t rights;
    int32_t use[MMU_LEVELS]; /* uses along its walk, -1 where none */
    int32_t rmap_next;       /* 4 KiB entries: next entry mapping the same page; free list */
};

struct shadow_use {
    uint64_t table;    /* guest-physical address of the table page */
    uint64_t gla_base; /* linear address its entry 0 translates */
    uint32_t refs;     /* entries derived through it */
    uint8_t level;     /* 4 = PML4 ... 1 = page table */
    uint8_t root;
    int32_t next; /* next use of the same table page; free list */
};

/* A range of one root to zap, collected before zapping. */
struct shadow_zap_job {
    unsigned root;
    uint64_t lo, hi;
};
#define SHADOW_MAX_JOBS 4096

struct shadow_root {
    uint64_t cr3; /* key: the PML4's address (CR3 & PTE_ADDR_MASK) */
    bool live;
    uint64_t last_used;
    uint32_t entries;
    uint32_t large_count;
    int32_t large[SHADOW_REGIONS]; /* 2 MiB entry of each region, or -1 */
    int32_t small[SHADOW_REGIONS]; /* region table of 4 KiB entries, or -1 */
};

struct shadow_mmu {
    struct guest_memory *mem;
    const struct vcpu_state *state;
    unsigned roots_wanted; /* N of --shadow-roots; 0 = rebuild on every switch */
    unsigned slots;        /* root slots in use: max(N, 1) */
    bool executable;
    struct shadow_listener listener;
    void *listener_arg;
    struct trace_ring *trace;
    uint64_t ve_info; /* guest-physical address of the #VE information area, 0 = none */
    struct emu_mmu_hooks hooks;
    struct shadow_stats stats;
    int active; /* root slot mapped in the window, -1 = none yet */
    uint64_t clock;
    struct shadow_root root[SHADOW_SLOTS];
    /* pools, reserved at creation (MAP_NORESERVE: only what is touched costs memory) */
    struct shadow_entry *entries;
    int32_t entry_free;
    uint32_t entry_high;
    struct shadow_use *uses;
    int32_t use_free;
    uint32_t use_high;
    int32_t (*small)[512];
    uint16_t *small_count;
    int32_t small_free;
    uint32_t small_high;
    /* per guest-physical RAM page */
    int32_t *use_head;     /* uses of the page as a table */
    int32_t *rmap_head;    /* 4 KiB entries (any root) mapping the page */
    uint16_t *trace_count; /* its uses: > 0 means traced */
    uint8_t *page_flags;   /* SHADOW_PAGE_* */
    struct shadow_zap_job jobs[SHADOW_MAX_JOBS];
};

static inline unsigned shadow_region(uint64_t gla)
{
    return (unsigned)((gla - SHADOW_WINDOW_BASE) >> 21);
}

static inline bool shadow_in_window(uint64_t gla)
{
    return gla >= SHADOW_WINDOW_BASE && gla < SHADOW_WINDOW_END;
}

static inline size_t shadow_ram_page(uint64_t gpa)
{
    return (size_t)((gpa - GUEST_RAM_BASE) >> 12);
}

static inline uint64_t shadow_span(unsigned level)
{
    return 1ULL << (12 + 9 * (level - 1));
}

/* ---- shadow_tables.c ---- */
int shadow_tables_init(struct shadow_mmu *sm);
void shadow_tables_free(struct shadow_mmu *sm);
/* The entry translating gla in root r, or -1. */
int32_t shadow_lookup(const struct shadow_mmu *sm, unsigned r, uint64_t gla);
/* Record the translation of a successful walk in root r (uses along the walk included): the
 * entry index, or -1 when the pools are exhausted. Not mapped yet. */
int32_t shadow_entry_add(struct shadow_mmu *sm, unsigned r, const struct mmu_walk *w);
/* Forget every entry of root r in [lo, hi) (the window is the caller's business). Returns
 * the number of entries dropped. */
unsigned shadow_zap_range(struct shadow_mmu *sm, unsigned r, uint64_t lo, uint64_t hi);
/* Forget root r entirely. */
void shadow_root_drop(struct shadow_mmu *sm, unsigned r);
/* A store to guest-physical [gpa, gpa + len): zap what was derived from the table entries it
 * wrote, in every root (unmapping in the window for the active one). */
void shadow_table_written(struct shadow_mmu *sm, uint64_t gpa, uint64_t len);
/* Drop everything derived through table page `gpa_page`, so it is no longer traced. */
void shadow_untrace(struct shadow_mmu *sm, uint64_t gpa_page);

/* ---- shadow_window.c ---- */
/* Map entry e in the window with the rights its pages allow now (the active root's). 0 or
 * -errno. */
int shadow_window_map(struct shadow_mmu *sm, const struct shadow_entry *e);
/* Re-apply the rights of entry e's pages without remapping (keeps the host's page tables). */
int shadow_window_protect(struct shadow_mmu *sm, const struct shadow_entry *e);
/* Make [lo, hi) of the window empty again (PROT_NONE). */
int shadow_window_clear(struct shadow_mmu *sm, uint64_t lo, uint64_t hi);
/* Re-install every entry of root r (a root-cache hit), runs of contiguous pages as one map. */
int shadow_window_install_root(struct shadow_mmu *sm, unsigned r);
/* Guest-physical page `page` (index) became more restricted: lower the rights of the active
 * root's mappings of it. */
void shadow_window_restrict_page(struct shadow_mmu *sm, size_t page);
/* Host rights for page `page` (index) mapped through entry e. */
int shadow_page_prot(const struct shadow_mmu *sm, const struct shadow_entry *e, size_t page);

#endif
