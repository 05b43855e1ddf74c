/* shadow_mmu.c - shadow paging on the host MMU (the mechanism is explained in shadow_mmu.h):
 * faults, the emulation core's hooks, the root cache, statistics. */
#define _GNU_SOURCE
#include "shadow_mmu.h"

#include <asm/processor-flags.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shadow_internal.h"
#include "vmm/vcpu_stats.h"

#define EFER_NXE (1ULL << 11)

static void tlb_flush_hook(void *arg, enum emu_tlb_flush kind, uint64_t gla);
static void phys_written_hook(void *arg, uint64_t gpa, uint64_t len);

static void root_init(struct shadow_mmu *sm, unsigned r, uint64_t key)
{
    struct shadow_root *root = &sm->root[r];
    root->cr3 = key;
    root->live = true;
    root->entries = root->large_count = 0;
    root->last_used = ++sm->clock;
    memset(root->large, 0xFF, sizeof(root->large));
    memset(root->small, 0xFF, sizeof(root->small));
}

static uint64_t root_key(const struct vcpu_state *s)
{
    return s->cr3 & PTE_ADDR_MASK;
}

int shadow_mmu_create(const struct shadow_config *config, struct shadow_mmu **out)
{
    if (!config->mem || !config->mem->fixed || config->roots > SHADOW_MAX_ROOTS)
        return -EINVAL;
    struct shadow_mmu *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return -ENOMEM;
    sm->mem = config->mem;
    sm->roots_wanted = config->roots;
    sm->slots = config->roots ? config->roots : 1;
    sm->executable = config->executable;
    sm->active = -1;
    sm->hooks = (struct emu_mmu_hooks){
        .arg = sm, .tlb_flush = tlb_flush_hook, .phys_written = phys_written_hook};
    int rc = shadow_tables_init(sm);
    if (rc == 0)
        rc = shadow_window_clear(sm, SHADOW_WINDOW_BASE, SHADOW_WINDOW_END);
    if (rc < 0) {
        shadow_tables_free(sm);
        free(sm);
        return rc;
    }
    sm->stats.mmap_calls = 0;
    *out = sm;
    return 0;
}

void shadow_mmu_destroy(struct shadow_mmu *sm)
{
    if (!sm)
        return;
    shadow_window_clear(sm, SHADOW_WINDOW_BASE, SHADOW_WINDOW_END);
    shadow_tables_free(sm);
    free(sm);
}

void shadow_mmu_bind_state(struct shadow_mmu *sm, const struct vcpu_state *state)
{
    sm->state = state;
}

static void space_changed(struct shadow_mmu *sm)
{
    if (sm->listener.space_changed)
        sm->listener.space_changed(sm->listener_arg);
}

static void drop_all(struct shadow_mmu *sm)
{
    for (unsigned r = 0; r < sm->slots; r++)
        shadow_root_drop(sm, r);
    sm->active = -1;
    shadow_window_clear(sm, SHADOW_WINDOW_BASE, SHADOW_WINDOW_END);
}

void shadow_mmu_reset(struct shadow_mmu *sm)
{
    drop_all(sm);
    space_changed(sm);
}

void shadow_mmu_set_listener(struct shadow_mmu *sm, const struct shadow_listener *listener,
                             void *arg)
{
    sm->listener = *listener;
    sm->listener_arg = arg;
}

const struct emu_mmu_hooks *shadow_mmu_hooks(struct shadow_mmu *sm)
{
    return &sm->hooks;
}

const struct shadow_stats *shadow_mmu_stats(const struct shadow_mmu *sm)
{
    return &sm->stats;
}

/* The root the window shows: the current CR3's (a fresh one if there is none yet). */
static unsigned active_root(struct shadow_mmu *sm)
{
    if (sm->active < 0 || !sm->root[sm->active].live) {
        unsigned r = sm->active < 0 ? 0 : (unsigned)sm->active;
        root_init(sm, r, root_key(sm->state));
        sm->active = (int)r;
    }
    return (unsigned)sm->active;
}

/* MOV CR3. The shadow is exact (every table it used is traced), so reloading the same CR3
 * needs nothing; another CR3 empties the window and re-installs that root if it is cached. */
static bool switch_root_quietly(struct shadow_mmu *sm);
static void switch_root(struct shadow_mmu *sm)
{
    if (switch_root_quietly(sm))
        space_changed(sm);
}

/* true if the window now shows another address space */
static bool switch_root_quietly(struct shadow_mmu *sm)
{
    uint64_t key = root_key(sm->state);
    if (sm->active >= 0 && sm->root[sm->active].live && sm->root[sm->active].cr3 == key)
        return false;
    sm->stats.cr3_switches++;
    shadow_window_clear(sm, SHADOW_WINDOW_BASE, SHADOW_WINDOW_END);
    if (sm->active >= 0) {
        sm->root[sm->active].last_used = ++sm->clock;
        if (sm->roots_wanted == 0) /* no cache: the old shadow is simply forgotten */
            shadow_root_drop(sm, (unsigned)sm->active);
    }
    sm->active = -1;
    int hit = -1, victim = -1;
    for (unsigned r = 0; r < sm->slots; r++) {
        const struct shadow_root *root = &sm->root[r];
        if (root->live && root->cr3 == key)
            hit = (int)r;
        else if (victim < 0 || !root->live ||
                 (sm->root[victim].live && root->last_used < sm->root[victim].last_used))
            victim = (int)r;
    }
    if (hit >= 0) {
        sm->stats.root_cache_hits++;
        sm->active = hit;
        sm->root[hit].last_used = ++sm->clock;
        if (shadow_window_install_root(sm, (unsigned)hit) < 0) { /* the host said no: rebuild */
            shadow_root_drop(sm, (unsigned)hit);
            shadow_window_clear(sm, SHADOW_WINDOW_BASE, SHADOW_WINDOW_END);
            root_init(sm, (unsigned)hit, key);
        }
        return true;
    }
    sm->stats.root_cache_misses++;
    shadow_root_drop(sm, (unsigned)victim);
    root_init(sm, (unsigned)victim, key);
    sm->active = victim;
    return true;
}

static void tlb_flush_hook(void *arg, enum emu_tlb_flush kind, uint64_t gla)
{
    struct shadow_mmu *sm = arg;
    switch (kind) {
    case EMU_TLB_CR3:
        switch_root(sm);
        break;
    case EMU_TLB_PAGE: {
        /* INVLPG: the one translation (a whole large page if it is one) goes. */
        if (sm->active < 0 || !sm->root[sm->active].live)
            break;
        int32_t idx = shadow_lookup(sm, (unsigned)sm->active, gla);
        if (idx >= 0) {
            uint64_t lo = sm->entries[idx].gla, hi = lo + sm->entries[idx].pages * 4096ULL;
            shadow_zap_range(sm, (unsigned)sm->active, lo, hi);
            shadow_window_clear(sm, lo, hi);
        }
        break;
    }
    default:
        drop_all(sm);
        space_changed(sm);
        break;
    }
}

static void phys_written_hook(void *arg, uint64_t gpa, uint64_t len)
{
    shadow_table_written(arg, gpa, len);
}

/* Intel SDM vol. 3C 25.5.7.2: the virtualization-exception information area. */
#define VE_EXIT_REASON_EPT_VIOLATION 48
#define VE_QUAL_READ (1u << 0) /* exit qualification of an EPT violation (SDM 3C table 28-7) */
#define VE_QUAL_WRITE (1u << 1)
#define VE_QUAL_FETCH (1u << 2)
#define VE_QUAL_READABLE (1u << 3) /* what the second-level entry allows */
#define VE_QUAL_WRITABLE (1u << 4)
#define VE_QUAL_EXECUTABLE (1u << 5)
#define VE_QUAL_GLA_VALID (1u << 7)
#define VE_QUAL_TRANSLATED (1u << 8) /* the access was to the translation, not a paging entry */

/* The access the guest's own tables allowed is checked against the second-level permission of
 * the page it leads to. A violation is an exit, or a #VE when the page is convertible, the
 * guest gave an information area, and the area is not busy (the dword at offset 4 is 0:
 * otherwise the processor makes it an exit too). */
static bool second_level_violation(struct shadow_mmu *sm, size_t page, unsigned access,
                                   struct shadow_fault *out)
{
    uint8_t f = sm->page_flags[page];
    if (!(f & SHADOW_PAGE_SLP_NONE) && !((f & SHADOW_PAGE_SLP_RO) && (access & MMU_WRITE)))
        return false;
    out->slp_access = access & MMU_WRITE   ? VM_SLP_WRITE
                      : access & MMU_FETCH ? VM_SLP_FETCH
                                           : VM_SLP_READ;
    uint32_t busy = 1;
    if ((f & SHADOW_PAGE_CONVERTIBLE) && sm->ve_info)
        guest_ram_read(sm->mem, sm->ve_info + 4, &busy, 4);
    if (busy) {
        out->kind = SHADOW_SLP_EXIT;
        sm->stats.slp_exits++;
        return true;
    }
    uint32_t qual = VE_QUAL_GLA_VALID | VE_QUAL_TRANSLATED;
    qual |= out->slp_access == VM_SLP_WRITE   ? VE_QUAL_WRITE
            : out->slp_access == VM_SLP_FETCH ? VE_QUAL_FETCH
                                              : VE_QUAL_READ;
    if (!(f & SHADOW_PAGE_SLP_NONE))
        qual |= VE_QUAL_READABLE | VE_QUAL_EXECUTABLE;
    struct {
        uint32_t exit_reason, busy;
        uint64_t qualification, gla, gpa;
        uint16_t eptp_index;
    } __attribute__((packed))
    info = {VE_EXIT_REASON_EPT_VIOLATION, 0xFFFFFFFFu, qual, out->gla, out->gpa, 0};
    guest_ram_write(sm->mem, sm->ve_info, &info, sizeof(info));
    shadow_table_written(sm, sm->ve_info, sizeof(info)); /* as any store */
    out->kind = SHADOW_VE;
    sm->stats.ve_delivered++;
    return true;
}

static uint8_t rights_of(const struct mmu_paging *pg, const struct mmu_walk *w)
{
    uint8_t rights = 0;
    if (w->rw || !(pg->cr0 & X86_CR0_WP))
        rights |= SHADOW_RIGHT_W;
    if (!(w->xd && (pg->efer & EFER_NXE)))
        rights |= SHADOW_RIGHT_X;
    if (w->dirty)
        rights |= SHADOW_RIGHT_D;
    return rights;
}

/* Record and map the walk's translation in root r. -errno when neither the pools nor the host
 * can hold it, even after starting over. */
static int32_t install(struct shadow_mmu *sm, unsigned r, const struct mmu_walk *w, uint8_t rights,
                       int *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t idx = shadow_entry_add(sm, r, w);
        if (idx >= 0) {
            sm->entries[idx].rights = rights;
            *err = shadow_window_map(sm, &sm->entries[idx]);
            if (*err == 0)
                return idx;
            const struct shadow_entry *e = &sm->entries[idx];
            shadow_zap_range(sm, r, e->gla, e->gla + e->pages * 4096ULL);
        } else {
            *err = -ENOMEM;
        }
        /* Out of entries, uses or host mappings (vm.max_map_count): forget the cached roots
         * and this one, and try once more from an empty window. */
        uint64_t key = sm->root[r].cr3;
        drop_all(sm);
        root_init(sm, r, key);
        sm->active = (int)r;
        space_changed(sm);
    }
    return -1;
}

void shadow_mmu_set_trace(struct shadow_mmu *sm, struct trace_ring *ring)
{
    sm->trace = ring;
}

/* One trace event per fault handled: what it was, and the walk that decided it. */
static void trace_fault(struct shadow_mmu *sm, const struct shadow_fault *f, unsigned access,
                        const struct mmu_walk *w)
{
    static const char *const what[SHADOW_FAULT_KIND_MAX_VALUE + 1] = {
        [SHADOW_RETRY] = "hidden page fault",
        [SHADOW_GUEST_PF] = "page fault for the guest",
        [SHADOW_TABLE_WRITE] = "store to a traced page table",
        [SHADOW_CODE_WRITE] = "store to translated code",
        [SHADOW_MMIO] = "MMIO",
        [SHADOW_OUTSIDE_WINDOW] = "outside the window",
        [SHADOW_HOST_ERROR] = "host refused a mapping",
        [SHADOW_SLP_EXIT] = "second-level violation, exit",
        [SHADOW_VE] = "second-level violation, #VE",
    };
    struct trace_event *ev = sm->trace ? trace_ring_push(sm->trace) : NULL;
    if (!ev)
        return;
    memset(ev, 0, sizeof(*ev));
    ev->kind = TRACE_PAGE_FAULT;
    ev->rip = sm->state->rip;
    ev->field = what[f->kind];
    ev->aux = f->gla;
    ev->old_value = f->kind == SHADOW_GUEST_PF ? 0 : f->gpa;
    ev->new_value = f->kind == SHADOW_GUEST_PF
                        ? f->error_code
                        : (access & MMU_WRITE ? 2u : 0) | (access & MMU_FETCH ? 16u : 0);
    ev->vector = 14;
    ev->length = (uint8_t)w->levels;
    for (unsigned i = 0; i < w->levels && i < 4; i++)
        ev->extra[i] = w->entry[i];
}

static void classify(struct shadow_mmu *sm, uint64_t gla, unsigned access, struct shadow_fault *out,
                     struct mmu_walk *w);

void shadow_mmu_fault(struct shadow_mmu *sm, uint64_t gla, unsigned access,
                      struct shadow_fault *out)
{
    struct mmu_walk w;
    memset(&w, 0, sizeof(w));
    classify(sm, gla, access & (MMU_WRITE | MMU_FETCH), out, &w);
    if (sm->trace)
        trace_fault(sm, out, access, &w);
}

static void classify(struct shadow_mmu *sm, uint64_t gla, unsigned access, struct shadow_fault *out,
                     struct mmu_walk *w)
{
    memset(out, 0, sizeof(*out));
    out->gla = gla;
    struct mmu_paging pg;
    mmu_paging_from_state(sm->state, &pg);
    if (!shadow_in_window(gla)) {
        /* The guest may well map it, but the host process cannot hold it there: say so. A
         * translation the guest does not have is its own #PF. */
        if (mmu_walk(sm->mem, &pg, gla, access | MMU_INSPECT, w) == MMU_WALK_OK) {
            out->kind = SHADOW_OUTSIDE_WINDOW;
            out->gpa = w->gpa;
            return;
        }
        out->kind = SHADOW_GUEST_PF;
        out->error_code = w->error_code;
        sm->stats.true_page_faults++;
        return;
    }
    if (mmu_walk(sm->mem, &pg, gla, access, w) != MMU_WALK_OK) {
        out->kind = SHADOW_GUEST_PF;
        out->error_code = w->error_code;
        sm->stats.true_page_faults++;
        return;
    }
    out->gpa = w->gpa;
    if (!guest_ram_contains(sm->mem, w->gpa, 1)) {
        out->kind = SHADOW_MMIO;
        return;
    }
    unsigned r = active_root(sm);
    uint8_t rights = rights_of(&pg, w);
    int32_t idx = shadow_lookup(sm, r, gla);
    if (idx >= 0) {
        struct shadow_entry *e = &sm->entries[idx];
        uint64_t size = e->pages * 4096ULL;
        if (e->gpa == (w->gpa & ~(size - 1)) && (size > 4096) == (w->page_shift > 12)) {
            e->rights = rights; /* the walk may just have set D */
        } else { /* not what the tables say (cannot happen while all are traced): replace */
            shadow_zap_range(sm, r, e->gla, e->gla + size);
            shadow_window_clear(sm, e->gla, e->gla + size);
            idx = -1;
        }
    }
    bool fresh = idx < 0;
    if (fresh) {
        int err = 0;
        idx = install(sm, r, w, rights, &err);
        if (idx < 0) {
            out->kind = SHADOW_HOST_ERROR;
            out->host_errno = -err;
            return;
        }
    }
    size_t page = shadow_ram_page(w->gpa);
    if (second_level_violation(sm, page, access, out))
        return;
    if ((access & MMU_WRITE) && sm->trace_count[page]) {
        /* A store to one of the guest's page tables: the backend emulates it, and the
         * report of that store zaps what the written entries translated. */
        out->kind = SHADOW_TABLE_WRITE;
        sm->stats.table_writes++;
        return;
    }
    out->kind = SHADOW_RETRY;
    if ((access & MMU_WRITE) && (sm->page_flags[page] & SHADOW_PAGE_CODE)) {
        sm->page_flags[page] &= ~SHADOW_PAGE_CODE;
        if (sm->listener.code_written)
            sm->listener.code_written(sm->listener_arg, w->gpa & ~0xFFFULL);
        out->kind = SHADOW_CODE_WRITE;
    }
    if (!fresh) {
        int rc = shadow_window_protect(sm, &sm->entries[idx]);
        if (rc < 0) {
            out->kind = SHADOW_HOST_ERROR;
            out->host_errno = -rc;
            return;
        }
    }
    if (out->kind == SHADOW_RETRY)
        sm->stats.hidden_faults++;
}

int shadow_mmu_code_page(struct shadow_mmu *sm, uint64_t gla_page, uint64_t *gpa_page,
                         uint32_t *error)
{
    *error = 0;
    struct mmu_paging pg;
    mmu_paging_from_state(sm->state, &pg);
    struct mmu_walk w;
    if (!shadow_in_window(gla_page)) { /* the guest's #PF, or a mapping the host cannot hold */
        if (mmu_walk(sm->mem, &pg, gla_page, MMU_FETCH | MMU_INSPECT, &w) != MMU_WALK_OK) {
            *error = w.error_code;
            return -EFAULT;
        }
        return -ERANGE;
    }
    unsigned r = active_root(sm);
    int32_t idx = shadow_lookup(sm, r, gla_page);
    if (idx >= 0 && (sm->entries[idx].rights & SHADOW_RIGHT_X)) {
        const struct shadow_entry *e = &sm->entries[idx];
        *gpa_page = e->gpa + ((gla_page - e->gla) & ~0xFFFULL);
        return 0;
    }
    if (mmu_walk(sm->mem, &pg, gla_page, MMU_FETCH, &w) != MMU_WALK_OK) {
        *error = w.error_code;
        return -EFAULT;
    }
    if (!guest_ram_contains(sm->mem, w.gpa, 4096))
        return -ENXIO;
    if (idx < 0) {
        int err = 0;
        if (install(sm, active_root(sm), &w, rights_of(&pg, &w), &err) < 0)
            return -ENOMEM;
    }
    *gpa_page = w.gpa & ~0xFFFULL;
    return 0;
}

void shadow_mmu_untrace(struct shadow_mmu *sm, uint64_t gpa_page)
{
    shadow_untrace(sm, gpa_page);
}

int shadow_mmu_set_slp(struct shadow_mmu *sm, uint64_t gpa_page, unsigned permission,
                       bool convertible)
{
    if (!guest_ram_contains(sm->mem, gpa_page & ~0xFFFULL, 4096) || permission > VM_SLP_NO_ACCESS)
        return -EINVAL;
    size_t page = shadow_ram_page(gpa_page);
    uint8_t f = sm->page_flags[page] &
                ~(SHADOW_PAGE_SLP_RO | SHADOW_PAGE_SLP_NONE | SHADOW_PAGE_CONVERTIBLE);
    if (permission == VM_SLP_READ_ONLY)
        f |= SHADOW_PAGE_SLP_RO;
    else if (permission == VM_SLP_NO_ACCESS)
        f |= SHADOW_PAGE_SLP_NONE;
    if (convertible && permission != VM_SLP_FULL)
        f |= SHADOW_PAGE_CONVERTIBLE;
    sm->page_flags[page] = f;
    if (permission != VM_SLP_FULL) /* lifting is lazy: the next fault maps with full rights */
        shadow_window_restrict_page(sm, page);
    return 0;
}

int shadow_mmu_set_ve_info(struct shadow_mmu *sm, uint64_t gpa)
{
    if (gpa && !guest_ram_contains(sm->mem, gpa, 40))
        return -EINVAL;
    sm->ve_info = gpa;
    return 0;
}

void shadow_mmu_protect_code(struct shadow_mmu *sm, uint64_t gpa_page)
{
    if (!guest_ram_contains(sm->mem, gpa_page, 4096))
        return;
    size_t page = shadow_ram_page(gpa_page);
    if (sm->page_flags[page] & SHADOW_PAGE_CODE)
        return;
    sm->page_flags[page] |= SHADOW_PAGE_CODE;
    shadow_window_restrict_page(sm, page);
}

void shadow_mmu_unprotect_code(struct shadow_mmu *sm, uint64_t gpa_page)
{
    if (guest_ram_contains(sm->mem, gpa_page, 4096))
        sm->page_flags[shadow_ram_page(gpa_page)] &= ~SHADOW_PAGE_CODE; /* writable lazily */
}

/* Async-signal-safe formatting (no stdio in signal handlers): append text / a hex number. */
static size_t put(char *buf, size_t size, size_t at, const char *text)
{
    while (*text && at + 1 < size)
        buf[at++] = *text++;
    if (size)
        buf[at < size ? at : size - 1] = 0;
    return at;
}

static size_t put_hex(char *buf, size_t size, size_t at, uint64_t v)
{
    char digits[19] = "0x";
    int n = 2;
    for (int shift = 60; shift >= 0; shift -= 4) {
        unsigned d = (unsigned)(v >> shift) & 0xF;
        if (d || n > 2 || shift == 0)
            digits[n++] = "0123456789abcdef"[d];
    }
    digits[n] = 0;
    return put(buf, size, at, digits);
}

void shadow_fault_describe(const struct shadow_fault *f, char *buf, unsigned long size)
{
    size_t at = 0;
    if (f->kind == SHADOW_OUTSIDE_WINDOW) {
        at = put(buf, size, at, "guest maps linear ");
        at = put_hex(buf, size, at, f->gla);
        at = put(buf, size, at, " (physical ");
        at = put_hex(buf, size, at, f->gpa);
        at = put(buf, size, at, ") outside the window ");
        at = put_hex(buf, size, at, SHADOW_WINDOW_BASE);
        at = put(buf, size, at, "-");
        at = put_hex(buf, size, at, SHADOW_WINDOW_END);
        put(buf, size, at, " the host process can hold");
    } else {
        at = put(buf, size, at, "the host refused a shadow mapping at ");
        at = put_hex(buf, size, at, f->gla);
        at = put(buf, size, at,
                 f->host_errno == ENOMEM ? ": out of memory or mappings "
                                           "(vm.max_map_count)"
                                         : ": mmap failed");
    }
}

void shadow_mmu_emit_stats(const struct shadow_mmu *sm,
                           void (*emit)(void *, const char *, uint64_t, const char *), void *ctx)
{
    const struct shadow_stats *s = &sm->stats;
    emit(ctx, "shadow_hidden_faults", s->hidden_faults, "faults");
    emit(ctx, "shadow_true_page_faults", s->true_page_faults, "faults");
    emit(ctx, "shadow_traced_pte_writes", s->table_writes, "stores");
    emit(ctx, "shadow_zapped_entries", s->zapped_entries, "entries");
    emit(ctx, "shadow_cr3_switches", s->cr3_switches, "switches");
    emit(ctx, "shadow_root_cache_hits", s->root_cache_hits, "switches");
    emit(ctx, "shadow_root_cache_misses", s->root_cache_misses, "switches");
    emit(ctx, "shadow_mmap_calls", s->mmap_calls, "calls");
    emit(ctx, "shadow_traced_tables", s->tables_traced, "pages");
    emit(ctx, "shadow_slp_exits", s->slp_exits, "violations");
    emit(ctx, "shadow_ve_delivered", s->ve_delivered, "violations");
}
