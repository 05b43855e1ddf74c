/* page_walk.h - the guest's page walk, written once: linear address -> guest-physical address.
 *
 * 4-level paging (IA-32e, Intel SDM vol. 3A 4.5) with 4 KiB, 2 MiB and 1 GiB pages, the
 * access rights of 4.6 (R/W, U/S, XD with EFER.NXE, CR0.WP, CR4.SMEP/SMAP), the accessed and
 * dirty flags of 4.8 and the page-fault error code of 4.7. The same walk serves everyone who
 * must see the guest's address space as its CPU would:
 *
 *   the emulation core      every memory operand, stack slot, descriptor and IDT gate it
 *                           touches (emu/emu_access.c, emu_deliver.c)
 *   the shadow MMU          a hidden page fault walks, sets A/D and maps (mmu/shadow_mmu.c)
 *   the VMM and the trace   read guest memory by linear address without side effects
 *                           (MMU_INSPECT: no A/D update)
 *
 * Worked example: the platform's identity map (vmm/platform.c) and a read of 0x40201000 with
 * CR3 = 0x40010000. PML4 index 0 -> entry 0x40011003 (P, R/W) -> PDPT at 0x40011000; PDPT
 * index 1 -> 0x40012003 -> PD at 0x40012000; PD index 1 -> 0x40200083 (P, R/W, PS): a 2 MiB
 * page at 0x40200000, so gpa = 0x40200000 + 0x1000. A is set in all three entries (they were
 * used), D is not (a read). A write with CR0.WP = 1 would also need R/W at every level, and
 * sets D in the leaf entry only.
 *
 * Paging structures that lie outside guest RAM read as zeros: the walk ends in a not-present
 * #PF, as under KVM (measured on PVM and on nested kvm_amd; bare metal would read all ones
 * and report RSVD), so a guest sees the same thing on every backend, never a host fault.
 *
 * Async-signal-safe: no allocation, no locks, no output.
 */
#ifndef VMLAB_PAGE_WALK_H
#define VMLAB_PAGE_WALK_H

#include <stdbool.h>
#include <stdint.h>

#include "emu/vcpu_state.h"
#include "vmm/guest_memory.h"

/* Paging-structure entry bits (SDM vol. 3A 4.5, tables 4-15 to 4-20). */
#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_PWT (1ULL << 3)
#define PTE_PCD (1ULL << 4)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7) /* PDPTE / PDE: maps a 1 GiB / 2 MiB page */
#define PTE_G (1ULL << 8)  /* leaf entries: global (CR4.PGE) */
#define PTE_XD (1ULL << 63)
#define PTE_ADDR_MASK 0x000FFFFFFFFFF000ULL /* bits 51:12 */

/* #PF error code bits (SDM vol. 3A 4.7, figure 4-12). */
#define PF_ERR_P (1u << 0)    /* 0: not present; 1: protection or reserved bit */
#define PF_ERR_W (1u << 1)    /* the access was a write */
#define PF_ERR_U (1u << 2)    /* the access was made at CPL 3 */
#define PF_ERR_RSVD (1u << 3) /* a reserved bit was set in a paging-structure entry */
#define PF_ERR_I (1u << 4)    /* instruction fetch (only with NXE or SMEP) */

/* Control state a translation depends on. */
struct mmu_paging {
    uint64_t cr0, cr3, cr4, efer;
    bool rflags_ac;     /* RFLAGS.AC: SMAP lets explicit supervisor accesses through */
    bool page1gb;       /* 1 GiB pages supported (CPUID.80000001H:EDX[26]) */
    uint8_t maxphyaddr; /* physical address width (CPUID.80000008H:EAX[7:0]) */
};

/* vmlab's virtual CPU: MAXPHYADDR 40 (emu_cpuid.c leaf 0x80000008), no 1 GiB pages advertised
 * (leaf 0x80000001 EDX[26] = 0), so a PDPTE with PS = 1 has a reserved bit set (table 4-17). */
#define MMU_GUEST_MAXPHYADDR 40
void mmu_paging_from_state(const struct vcpu_state *state, struct mmu_paging *out);

enum mmu_access {
    MMU_READ = 0,
    MMU_WRITE = 1u << 0,
    MMU_FETCH = 1u << 1,
    MMU_USER = 1u << 2,     /* made at CPL 3 (vmlab's guests run at CPL 0: only tests use it) */
    MMU_IMPLICIT = 1u << 3, /* implicit supervisor access (GDT, IDT, TSS, delivery frame) */
    MMU_INSPECT = 1u << 4,  /* look only: set no accessed/dirty flag */
};

enum mmu_walk_status {
    MMU_WALK_OK,
    MMU_WALK_PAGE_FAULT,  /* #PF: error_code as the CPU reports it, CR2 = gla */
    MMU_WALK_NONCANONICAL /* #GP(0) (or #SS for a stack access): not a canonical address */
};

#define MMU_LEVELS 4

struct mmu_walk {
    enum mmu_walk_status status;
    uint32_t error_code; /* MMU_WALK_PAGE_FAULT */
    uint64_t gla;
    uint64_t gpa; /* MMU_WALK_OK: the translation */
    /* The entries read, from the PML4E down (level 4 .. level 5 - levels): where each lies in
     * guest-physical memory and its value as read (before any A/D update). */
    unsigned levels;
    uint64_t entry_gpa[MMU_LEVELS];
    uint64_t entry[MMU_LEVELS];
    unsigned page_shift; /* 12, 21 or 30 */
    /* Rights combined over all levels (SDM vol. 3A 4.6.1): R/W and U/S at every level, XD at
     * any level (only with EFER.NXE); global and dirty from the leaf (dirty after the walk's
     * own update). */
    bool rw, us, xd, global, dirty;
};

/* Walk the guest's tables for `gla` and `access` (enum mmu_access bits). On success sets the
 * accessed flags of every entry used and, for a write, the leaf's dirty flag (unless
 * MMU_INSPECT), as the CPU would (SDM vol. 3A 4.8). Returns w->status. */
enum mmu_walk_status mmu_walk(const struct guest_memory *mem, const struct mmu_paging *pg,
                              uint64_t gla, unsigned access, struct mmu_walk *w);

/* The access-rights check alone (no walk): 0 if an access with these combined rights is
 * allowed, else the #PF error code it raises. The shadow MMU uses it to choose host
 * protections for a translation it already holds. */
uint32_t mmu_access_fault(const struct mmu_paging *pg, bool rw, bool us, bool xd, unsigned access);

/* Copy `len` bytes at linear address `gla` (pages walked one by one). 0, or the status of the
 * first walk that failed (details in *fault if not NULL). Bytes in guest-physical memory that
 * is not RAM read as 0xFF. */
enum mmu_walk_status mmu_read_linear(const struct guest_memory *mem, const struct mmu_paging *pg,
                                     uint64_t gla, void *dst, uint64_t len, unsigned access,
                                     struct mmu_walk *fault);

#endif
