/* page_walk.c - lab 6: the guest's 4-level page walk (interface and worked example:
 * mmu/page_walk.h; Intel SDM vol. 3A 4.5-4.8).
 *
 * Everything that needs a guest's linear address translated calls mmu_walk(): the emulation
 * core for each memory operand, stack slot, descriptor, IDT gate and delivery frame; the
 * shadow MMU of trap_emulate and dbt on every fault in the window; the VMM and `vmlab trace`.
 * This starter pretends paging were off - linear = physical, everything allowed - which is
 * true of the platform's identity map and nothing else: simple guests run, every paging_*
 * guest fails. Replace the TODOs.
 */
#include "page_walk.h"

#include <asm/processor-flags.h>
#include <string.h>

#define EFER_NXE (1ULL << 11)
#define EFER_LMA (1ULL << 10)

void mmu_paging_from_state(const struct vcpu_state *s, struct mmu_paging *out)
{
    out->cr0 = s->cr0;
    out->cr3 = s->cr3;
    out->cr4 = s->cr4;
    out->efer = s->efer;
    out->rflags_ac = (s->rflags & X86_EFLAGS_AC) != 0;
    out->page1gb = false;
    out->maxphyaddr = MMU_GUEST_MAXPHYADDR;
}

/* An entry as the walk reads it: RAM, or zero (not present) where no RAM is (what KVM gives a
 * guest whose tables leave its memory; see docs/ARCHITECTURE.md). Given. */
static uint64_t read_entry(const struct guest_memory *mem, uint64_t gpa)
{
    uint64_t v;
    if (guest_ram_read(mem, gpa, &v, sizeof(v)) < 0)
        return 0;
    return v;
}

/* TODO 2: the reserved bits of an entry at `level` (4 = PML4E .. 1 = PTE) for 4-level
 * paging: SDM vol. 3A 4.5.4 and table 4-20. Physical-address bits from MAXPHYADDR to 51, XD
 * when EFER.NXE = 0, PS in a PML4E, PS in a PDPTE when 1 GiB pages are not supported, and
 * the address bits a large page cannot have. */
static uint64_t reserved_bits(const struct mmu_paging *pg, unsigned level, uint64_t entry)
{
    (void)pg;
    (void)level;
    (void)entry;
    return 0;
}

/* TODO 3: the W/R, U/S and I/D bits of the error code for an access (SDM vol. 3A 4.7: I/D is
 * reported only when execute-disable or SMEP is in effect). */
static uint32_t access_bits(const struct mmu_paging *pg, unsigned access)
{
    (void)pg;
    (void)access;
    return 0;
}

/* TODO 3: 0 if an access with these combined rights is allowed (SDM vol. 3A 4.6.1: user and
 * supervisor accesses; CR0.WP; XD only with EFER.NXE; SMEP, SMAP with RFLAGS.AC and implicit
 * accesses), else the #PF error code it raises (P = 1 and access_bits). */
uint32_t mmu_access_fault(const struct mmu_paging *pg, bool rw, bool us, bool xd, unsigned access)
{
    (void)rw;
    (void)us;
    (void)xd;
    (void)access_bits(pg, access);
    return 0;
}

enum mmu_walk_status mmu_walk(const struct guest_memory *mem, const struct mmu_paging *pg,
                              uint64_t gla, unsigned access, struct mmu_walk *w)
{
    memset(w, 0, sizeof(*w));
    w->gla = gla;
    /* TODO 1: the walk (SDM vol. 3A 4.5): unless CR0.PG is clear, a non-canonical address
     * (IA-32e mode) is MMU_WALK_NONCANONICAL; from the PML4 at CR3 down, read the entry the
     * address's 9-bit index names (read_entry), record where and what in w->entry_gpa[] and
     * w->entry[] (w->levels), stop with a #PF when it is not present; a PS entry at level 3 or
     * 2 is the leaf of a 1 GiB or 2 MiB page; combine R/W and U/S (every level) and XD (any
     * level) into w->rw, w->us, w->xd; w->page_shift, w->global, w->dirty from the leaf.
     * TODO 2: reserved bits (reserved_bits) -> #PF with P and RSVD.
     * TODO 3: the rights (mmu_access_fault) -> #PF.
     * TODO 4: on success, unless MMU_INSPECT: A in every entry used, D in the leaf on a write
     * (SDM vol. 3A 4.8), written back with guest_ram_write. A walk that faults changes
     * nothing. */
    (void)mem;
    (void)pg;
    (void)access;
    (void)read_entry;
    (void)reserved_bits;
    w->gpa = gla; /* as if paging were off */
    w->page_shift = 12;
    w->rw = w->us = w->dirty = true;
    return w->status = MMU_WALK_OK;
}

/* Copy `len` bytes at linear address `gla`, walking page by page. Given. */
enum mmu_walk_status mmu_read_linear(const struct guest_memory *mem, const struct mmu_paging *pg,
                                     uint64_t gla, void *dst, uint64_t len, unsigned access,
                                     struct mmu_walk *fault_out)
{
    uint8_t *out = dst;
    struct mmu_walk w;
    while (len) {
        uint64_t chunk = 4096 - (gla & 4095);
        if (chunk > len)
            chunk = len;
        if (mmu_walk(mem, pg, gla, access, &w) != MMU_WALK_OK) {
            if (fault_out)
                *fault_out = w;
            return w.status;
        }
        if (guest_ram_read(mem, w.gpa, out, chunk) < 0)
            memset(out, 0xFF, chunk);
        out += chunk;
        gla += chunk;
        len -= chunk;
    }
    return MMU_WALK_OK;
}
