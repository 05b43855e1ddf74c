/* page_walk.c - the guest's 4-level page walk (see page_walk.h). */
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

/* An entry as the walk reads it: RAM, or zero (not present) where no RAM is. */
static uint64_t read_entry(const struct guest_memory *mem, uint64_t gpa)
{
    uint64_t v;
    if (guest_ram_read(mem, gpa, &v, sizeof(v)) < 0)
        return 0;
    return v;
}

/* Reserved bits of an entry at `level` (4 = PML4E .. 1 = PTE) for IA-32e paging (SDM vol. 3A
 * 4.5.4, table 4-20): physical-address bits at and above MAXPHYADDR (up to bit 51), XD when
 * EFER.NXE = 0, PS in a PML4E, PS in a PDPTE without 1 GiB page support, and the low address
 * bits a large page cannot have (bits 29:13 of a 1 GiB PDPTE, 20:13 of a 2 MiB PDE). */
static uint64_t reserved_bits(const struct mmu_paging *pg, unsigned level, uint64_t entry)
{
    uint64_t rsvd = (PTE_ADDR_MASK | 0xFFFULL) & ~((1ULL << pg->maxphyaddr) - 1);
    rsvd &= (1ULL << 52) - 1;
    if (!(pg->efer & EFER_NXE))
        rsvd |= PTE_XD;
    bool ps = entry & PTE_PS;
    switch (level) {
    case 4:
        rsvd |= PTE_PS;
        break;
    case 3:
        if (ps)
            rsvd |= pg->page1gb ? (((1ULL << 30) - 1) & ~((1ULL << 13) - 1)) : PTE_PS;
        break;
    case 2:
        if (ps)
            rsvd |= ((1ULL << 21) - 1) & ~((1ULL << 13) - 1);
        break;
    default:
        break;
    }
    return rsvd;
}

/* The I/D bit is reported only when execute-disable or SMEP is in effect (SDM vol. 3A 4.7). */
static uint32_t access_bits(const struct mmu_paging *pg, unsigned access)
{
    uint32_t e = 0;
    if (access & MMU_WRITE)
        e |= PF_ERR_W;
    if (access & MMU_USER)
        e |= PF_ERR_U;
    if ((access & MMU_FETCH) && ((pg->efer & EFER_NXE) || (pg->cr4 & X86_CR4_SMEP)))
        e |= PF_ERR_I;
    return e;
}

uint32_t mmu_access_fault(const struct mmu_paging *pg, bool rw, bool us, bool xd, unsigned access)
{
    bool nx = xd && (pg->efer & EFER_NXE);
    bool denied;
    if (access & MMU_USER) { /* SDM vol. 3A 4.6.1, user-mode accesses */
        denied = !us || ((access & MMU_WRITE) && !rw) || ((access & MMU_FETCH) && nx);
    } else if (access & MMU_FETCH) { /* supervisor instruction fetch */
        denied = nx || (us && (pg->cr4 & X86_CR4_SMEP));
    } else { /* supervisor data access */
        bool smap_blocks =
            us && (pg->cr4 & X86_CR4_SMAP) && ((access & MMU_IMPLICIT) || !pg->rflags_ac);
        denied = smap_blocks || ((access & MMU_WRITE) && (pg->cr0 & X86_CR0_WP) && !rw);
    }
    return denied ? PF_ERR_P | access_bits(pg, access) : 0;
}

static bool canonical48(uint64_t a)
{
    return (uint64_t)(((int64_t)(a << 16)) >> 16) == a;
}

static enum mmu_walk_status fault(struct mmu_walk *w, uint32_t error_code)
{
    w->status = MMU_WALK_PAGE_FAULT;
    w->error_code = error_code;
    return w->status;
}

enum mmu_walk_status mmu_walk(const struct guest_memory *mem, const struct mmu_paging *pg,
                              uint64_t gla, unsigned access, struct mmu_walk *w)
{
    memset(w, 0, sizeof(*w));
    w->gla = gla;
    if (!(pg->cr0 & X86_CR0_PG)) { /* no paging: linear = physical, every access allowed */
        w->gpa = gla;
        w->page_shift = 12;
        w->rw = w->us = w->dirty = true;
        return w->status = MMU_WALK_OK;
    }
    if ((pg->efer & EFER_LMA) && !canonical48(gla))
        return w->status = MMU_WALK_NONCANONICAL;
    uint64_t table = pg->cr3 & PTE_ADDR_MASK & ((1ULL << pg->maxphyaddr) - 1);
    bool rw = true, us = true, xd = false;
    for (unsigned level = 4;; level--) {
        unsigned shift = 12 + 9 * (level - 1);
        uint64_t egpa = table + ((gla >> shift) & 511) * 8;
        uint64_t e = read_entry(mem, egpa);
        w->entry_gpa[w->levels] = egpa;
        w->entry[w->levels] = e;
        w->levels++;
        if (!(e & PTE_P))
            return fault(w, access_bits(pg, access));
        if (e & reserved_bits(pg, level, e))
            return fault(w, PF_ERR_P | PF_ERR_RSVD | access_bits(pg, access));
        rw = rw && (e & PTE_RW);
        us = us && (e & PTE_US);
        xd = xd || (e & PTE_XD);
        if (level == 1 || ((level == 2 || level == 3) && (e & PTE_PS))) {
            w->page_shift = shift;
            w->gpa = (e & PTE_ADDR_MASK & ~((1ULL << shift) - 1)) | (gla & ((1ULL << shift) - 1));
            w->global = e & PTE_G;
            w->dirty = e & PTE_D;
            break;
        }
        table = e & PTE_ADDR_MASK;
    }
    w->rw = rw;
    w->us = us;
    w->xd = xd;
    uint32_t denied = mmu_access_fault(pg, rw, us, xd, access);
    if (denied)
        return fault(w, denied);
    if (!(access & MMU_INSPECT)) {
        /* Accessed in every entry the translation used, dirty in the leaf on a write (SDM vol.
         * 3A 4.8). Entries outside RAM are never reached here (zero is not present). */
        for (unsigned i = 0; i < w->levels; i++) {
            uint64_t want = w->entry[i] | PTE_A;
            if (i == w->levels - 1 && (access & MMU_WRITE))
                want |= PTE_D;
            if (want != w->entry[i])
                guest_ram_write(mem, w->entry_gpa[i], &want, sizeof(want));
        }
        if (access & MMU_WRITE)
            w->dirty = true;
    }
    return w->status = MMU_WALK_OK;
}

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
