/* shadow_mmu.h - shadow paging on the host MMU, shared by trap_emulate and dbt.
 *
 * The in-process backends run the guest's own memory accesses natively (trap_emulate) or from
 * translated code (dbt) at guest-virtual addresses, inside the host process. The host's page
 * tables for the guest-virtual window ARE the shadow page tables: a guest translation GVA ->
 * GPA that the guest has used becomes mmap(GVA, RAM memfd at GPA) with rights derived from
 * the guest's. What happens on the guest's first read of a page, step by step:
 *
 *   1. The window has nothing at the page (PROT_NONE): the read faults, the host kernel sends
 *      SIGSEGV, the backend's handler calls shadow_mmu_fault(gla, read).
 *   2. The shadow MMU walks the guest's tables (mmu/page_walk.c), setting the accessed flags
 *      as the CPU would, and maps the page (a 2 MiB guest page in one mmap) read-only if the
 *      guest's dirty flag is still clear, else with the guest's rights. The handler returns,
 *      the read re-executes and succeeds: a *hidden* page fault, invisible to the guest.
 *   3. Had the walk failed, the guest gets a *true* #PF with CR2 and the walk's error code.
 *
 * Everything derived from the guest's tables is kept exact, so the shadow never needs a
 * guess about the guest's TLB:
 *
 *   traced tables   every guest page table a shadow mapping was derived through is mapped
 *                   read-only wherever the guest maps it; a guest store to one faults
 *                   (SHADOW_TABLE_WRITE), the backend emulates it, and the store's report
 *                   (emu_mmu_hooks.phys_written) zaps what was derived from the entries it
 *                   wrote, in every cached root. Stores by the emulation core are reported
 *                   the same way.
 *   dirty flags     a page whose guest PTE has D = 0 is mapped read-only until the first
 *                   write, which sets D in the guest's entry and upgrades the mapping.
 *   roots           MOV CR3 switches the shadow: the window is emptied and, if the new CR3
 *                   is one of the last N roots (the CR3-target list's idea, in software), its
 *                   mappings are re-installed at once without walking the guest's tables;
 *                   otherwise it starts empty. N = 0 rebuilds on every switch.
 *   INVLPG          zaps the one page (or large page) it names; a change of CR0.PG/WP,
 *                   CR4 paging bits or EFER.NXE drops every root.
 *
 * The shadow MMU is the one owner of host protections in the window: dbt's write protection
 * of pages it translated code from goes through shadow_mmu_protect_code().
 *
 * Known limits: guest-virtual addresses outside the window cannot be held by the host
 * process - a guest that maps and uses one gets SHADOW_OUTSIDE_WINDOW (a clear exit), never a
 * silent wrong translation; SMEP/SMAP are not shadowed (vmlab's CPUID does not offer them).
 *
 * Fault handling runs in signal handlers: no allocation (all tables are reserved at
 * creation), no locks, no output. One vCPU per shadow MMU.
 */
#ifndef VMLAB_SHADOW_MMU_H
#define VMLAB_SHADOW_MMU_H

#include <stdbool.h>
#include <stdint.h>

#include "emu/emu.h"
#include "vmm/guest_memory.h"
#include "vmm/vm_exit.h"

#define SHADOW_MAX_ROOTS 16    /* --shadow-roots accepts 0..SHADOW_MAX_ROOTS */
#define SHADOW_DEFAULT_ROOTS 4 /* the CR3-target list of VT-x has 4 entries too */

struct shadow_mmu;

struct shadow_config {
    struct guest_memory *mem; /* must have the window (GUEST_MEMORY_FIXED) */
    unsigned roots;           /* root cache size N */
    bool executable;          /* guest code runs natively from the window (trap_emulate) */
};

/* 0 or -ENOMEM / -EINVAL / -errno of mmap. Takes the window over (it is emptied). */
int shadow_mmu_create(const struct shadow_config *config, struct shadow_mmu **out);
void shadow_mmu_destroy(struct shadow_mmu *sm);

/* The vCPU state whose CR0/CR3/CR4/EFER the shadow follows (read at every fault). */
void shadow_mmu_bind_state(struct shadow_mmu *sm, const struct vcpu_state *state);
/* The state was replaced from outside (vcpu_set_state): drop every root. */
void shadow_mmu_reset(struct shadow_mmu *sm);

/* What the emulation core calls (emu_ctx.mmu): MOV CR3, INVLPG, paging-control changes and
 * stores to guest-physical memory. */
const struct emu_mmu_hooks *shadow_mmu_hooks(struct shadow_mmu *sm);

enum shadow_fault_kind {
    SHADOW_RETRY,          /* a hidden page fault: the translation is mapped now, retry */
    SHADOW_GUEST_PF,       /* a true #PF: deliver it with error_code, CR2 = gla */
    SHADOW_TABLE_WRITE,    /* a store to a traced guest page table: emulate it */
    SHADOW_CODE_WRITE,     /* a store to a page dbt translated: code_written() ran, retry */
    SHADOW_MMIO,           /* the guest maps gla outside RAM: an MMIO access at gpa */
    SHADOW_OUTSIDE_WINDOW, /* the guest maps gla, which the host window cannot hold */
    SHADOW_HOST_ERROR,     /* the host refused a mapping (host_errno) */
    SHADOW_SLP_EXIT,       /* a second-level permission forbids it: exit to the VMM */
    SHADOW_VE,             /* ... convertible: the #VE information area is filled, deliver
                              vector 20 (no error code, a fault) */
    SHADOW_FAULT_KIND_MAX_VALUE = SHADOW_VE
};

struct shadow_fault {
    enum shadow_fault_kind kind;
    uint64_t gla;
    uint64_t gpa;        /* TABLE_WRITE, CODE_WRITE, MMIO */
    uint32_t error_code; /* GUEST_PF */
    int host_errno;      /* HOST_ERROR */
    uint8_t slp_access;  /* SLP_EXIT, VE: enum vm_slp_access of the violating access */
};

/* A native access at `gla` (enum mmu_access: MMU_READ, MMU_WRITE or MMU_FETCH) faulted in the
 * host: classify it, and fix what is the shadow's to fix. Async-signal-safe. */
void shadow_mmu_fault(struct shadow_mmu *sm, uint64_t gla, unsigned access,
                      struct shadow_fault *out);

/* A store to the traced table page `gpa_page` that the backend cannot emulate: drop everything
 * derived through that table, so that it is no longer traced and the store can run natively. */
void shadow_mmu_untrace(struct shadow_mmu *sm, uint64_t gpa_page);

/* Record every fault the shadow handles in `ring` (vmlab trace); NULL: none. */
struct trace_ring;
void shadow_mmu_set_trace(struct shadow_mmu *sm, struct trace_ring *ring);

/* One line for an exit message about a fault the backend cannot continue from. */
void shadow_fault_describe(const struct shadow_fault *f, char *buf, unsigned long size);

/* dbt: who translated code and must hear when translations of the current address space go
 * (called from fault and hook paths: async-signal-safe, and may re-enter the shadow MMU). */
struct shadow_listener {
    /* The active root stopped holding translations for linear [lo, hi) (zapped). */
    void (*translations_dropped)(void *arg, uint64_t lo, uint64_t hi);
    /* Another address space became current (MOV CR3), or every root was dropped. */
    void (*space_changed)(void *arg);
    /* The guest wrote a page dbt protected (shadow_mmu_protect_code). */
    void (*code_written)(void *arg, uint64_t gpa_page);
};
void shadow_mmu_set_listener(struct shadow_mmu *sm, const struct shadow_listener *listener,
                             void *arg);

/* dbt: the translation of the code page at linear gla_page in the current address space, as
 * an instruction fetch sees it (the walk sets A). The translation becomes a shadow entry, so
 * any change of the tables that give it is seen (translations_dropped). 0 with *gpa_page; or
 * -EFAULT with *error = the #PF error code of the fetch; -ENXIO when it lies outside RAM;
 * -ERANGE when the guest maps it outside the window; -ENOMEM when the host refused. */
int shadow_mmu_code_page(struct shadow_mmu *sm, uint64_t gla_page, uint64_t *gpa_page,
                         uint32_t *error);

/* Second-level permissions (vmm/guest_layout.h, PORT_SLP_CONTROL): how the guest may access
 * one guest-physical RAM page (enum vm_slp_permission), and whether a violation is
 * convertible into #VE. Enforced on the guest's native accesses (not on the emulation core's,
 * nor on its own page walks: a documented simplification). 0 or -EINVAL outside RAM. */
int shadow_mmu_set_slp(struct shadow_mmu *sm, uint64_t gpa_page, unsigned permission,
                       bool convertible);
/* The guest-physical address of the #VE information area (0: none, violations are exits).
 * Filled as Intel SDM vol. 3C 25.5.7.2 describes; a #VE is delivered only while the dword at
 * offset 4 is 0, and sets it to 0xFFFFFFFF. 0 or -EINVAL. */
int shadow_mmu_set_ve_info(struct shadow_mmu *sm, uint64_t gpa);

/* dbt: write-protect a guest-physical page wherever the guest maps it (translated code was
 * read from it), and lift that again. Async-signal-safe. */
void shadow_mmu_protect_code(struct shadow_mmu *sm, uint64_t gpa_page);
void shadow_mmu_unprotect_code(struct shadow_mmu *sm, uint64_t gpa_page);

struct shadow_stats {
    uint64_t hidden_faults;     /* faults fixed without the guest seeing them */
    uint64_t true_page_faults;  /* #PF handed to the guest */
    uint64_t table_writes;      /* guest stores to traced page tables (emulated) */
    uint64_t zapped_entries;    /* shadow mappings dropped because the guest's tables changed */
    uint64_t cr3_switches;      /* MOV CR3 to another address space */
    uint64_t root_cache_hits;   /* ... whose shadow was re-installed from the root cache */
    uint64_t root_cache_misses; /* ... whose shadow started empty */
    uint64_t mmap_calls;        /* host mmap/mprotect calls on the window */
    uint64_t tables_traced;     /* guest page-table pages write-protected so far */
    uint64_t slp_exits;         /* second-level violations handed to the VMM */
    uint64_t ve_delivered;      /* second-level violations converted into #VE */
};
const struct shadow_stats *shadow_mmu_stats(const struct shadow_mmu *sm);
/* --stats lines: emit(ctx, name, value, unit) per counter. */
void shadow_mmu_emit_stats(const struct shadow_mmu *sm,
                           void (*emit)(void *, const char *, uint64_t, const char *), void *ctx);

#endif
