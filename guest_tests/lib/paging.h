/* paging.h - what a guest needs to edit its own page tables (header only: include it in the one
 * .c file of a paging guest).
 *
 * The guest starts with the platform's identity map of the guest space (vmm/platform.c): CR3 ->
 * PML4, PML4[0] -> PDPT, PDPT[1] -> PD, 2 MiB pages. Its own .bss is identity mapped, so the
 * address of a page-aligned array is also its guest-physical address: tables and data pages
 * come from static arrays. Example: point the 4 KiB page at `va` to the page `other`:
 *
 *     uint64_t *pte = paging_pte(va);          // splits va's 2 MiB page into 4 KiB ones
 *     *pte = paging_phys(other) | PTE_P | PTE_RW;
 *     invlpg(va);
 *
 * Bits: Intel SDM vol. 3A 4.5, tables 4-15 to 4-20; error code: 4.7.
 */
#ifndef VMLAB_GUEST_PAGING_H
#define VMLAB_GUEST_PAGING_H

#include "guest.h"

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_G (1ULL << 8)
#define PTE_XD (1ULL << 63)
#define PTE_ADDR 0x000FFFFFFFFFF000ULL
#define PF_P (1u << 0)
#define PF_W (1u << 1)
#define PF_U (1u << 2)
#define PF_RSVD (1u << 3)
#define PF_I (1u << 4)
#define CR0_WP (1ULL << 16)
#define CR4_PGE (1ULL << 7)
#define PAGE_SIZE 4096ULL
#define LARGE_PAGE_SIZE (2ULL << 20)

#define PAGE_ALIGNED __attribute__((aligned(4096)))

/* Second-level permissions (vmm/guest_layout.h): OUT to SLP_CONTROL a page address | the
 * permission [| SLP_CONVERTIBLE]; SLP_VE_INFO the #VE information area; IN from SLP_EXITS
 * the violations the VMM handled as exits, SLP_LAST_GPA the last one's address. */
#define GUEST_PORT_SLP_CONTROL 0x540
#define GUEST_PORT_SLP_VE_INFO 0x544
#define GUEST_PORT_SLP_EXITS 0x548
#define GUEST_PORT_SLP_LAST_GPA 0x54C
#define GUEST_PORT_SLP_STATUS 0x550 /* the last request: 0 done, 22 (EINVAL) rejected */
#define SLP_FULL 0
#define SLP_READ_ONLY 1
#define SLP_NO_ACCESS 2
#define SLP_CONVERTIBLE 4
#define VECTOR_VE 20

static inline void invlpg(uint64_t va)
{
    __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory");
}

/* Identity: the guest-physical address of one of the guest's own (static) objects. */
static inline uint64_t paging_phys(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static inline uint64_t *paging_table(uint64_t entry)
{
    return (uint64_t *)(uintptr_t)(entry & PTE_ADDR);
}

/* A guest object read as the CPU or another mapping may have changed it. */
#define PEEK(lvalue) (*(volatile __typeof__(lvalue) *)&(lvalue))

static inline unsigned paging_index(uint64_t va, unsigned level)
{
    return (unsigned)((va >> (12 + 9 * (level - 1))) & 511);
}

/* The PDE that maps `va` in the current address space (PML4 -> PDPT -> PD). Entries are
 * volatile: the CPU writes A and D behind the compiler's back. */
static inline volatile uint64_t *paging_pde(uint64_t va)
{
    uint64_t *pml4 = paging_table(READ_CR(3));
    uint64_t *pdpt = paging_table(pml4[paging_index(va, 4)]);
    uint64_t *pd = paging_table(pdpt[paging_index(va, 3)]);
    return &pd[paging_index(va, 2)];
}

/* Page tables to split 2 MiB pages with: a small pool (the guest space has 256 of them). */
#define PAGING_POOL_TABLES 8
static uint64_t paging_pool[PAGING_POOL_TABLES][512] PAGE_ALIGNED __attribute__((unused));
static unsigned paging_pool_used __attribute__((unused));

static inline uint64_t *paging_alloc_table(void)
{
    GUEST_ASSERT(paging_pool_used < PAGING_POOL_TABLES);
    uint64_t *t = paging_pool[paging_pool_used++];
    memset(t, 0, PAGE_SIZE);
    return t;
}

/* The PTE that maps `va`; a 2 MiB page there is first replaced by a page table mapping the
 * same memory with 4 KiB pages (same rights). */
static inline volatile uint64_t *paging_pte(uint64_t va)
{
    volatile uint64_t *pde = paging_pde(va);
    if (*pde & PTE_PS) {
        uint64_t *pt = paging_alloc_table();
        uint64_t base = *pde & PTE_ADDR & ~(LARGE_PAGE_SIZE - 1);
        uint64_t rights = *pde & (PTE_P | PTE_RW | PTE_US | PTE_XD);
        for (unsigned i = 0; i < 512; i++)
            pt[i] = (base + i * PAGE_SIZE) | rights;
        *pde = paging_phys(pt) | PTE_P | PTE_RW;
        /* the old 2 MiB translation may be cached anywhere inside it: flush it all */
        WRITE_CR(3, READ_CR(3));
    }
    return &paging_table(*pde)[paging_index(va, 1)];
}

/* A second address space: a copy of the current PML4, PDPT and PD (page tables below are
 * shared). Returns its CR3. */
static uint64_t paging_clone_tables[3][512] PAGE_ALIGNED __attribute__((unused));
static inline uint64_t paging_clone_root(void)
{
    uint64_t *pml4 = paging_table(READ_CR(3));
    uint64_t *pdpt = paging_table(pml4[0]);
    uint64_t *pd = paging_table(pdpt[1]);
    memcpy(paging_clone_tables[0], pml4, PAGE_SIZE);
    memcpy(paging_clone_tables[1], pdpt, PAGE_SIZE);
    memcpy(paging_clone_tables[2], pd, PAGE_SIZE);
    paging_clone_tables[0][0] = paging_phys(paging_clone_tables[1]) | (pml4[0] & 0xFFF);
    paging_clone_tables[1][1] = paging_phys(paging_clone_tables[2]) | (pdpt[1] & 0xFFF);
    return paging_phys(paging_clone_tables[0]);
}

/* ---- accesses that may fault -------------------------------------------------------------
 * paging_try_load/store/call perform one access; a #PF goes to paging_on_pf (install it with
 * idt_set_handler(14, paging_on_pf)), which records CR2, the error code and the faulting RIP
 * and resumes after the access, which then returns PAGING_FAULTED / false. */
#define PAGING_FAULTED 0xDEADFA17DEADFA17ULL
static volatile uint64_t paging_resume_rip, paging_resume_rsp;
static volatile uint64_t pf_count, pf_cr2, pf_error, pf_rip;

static void __attribute__((unused)) paging_on_pf(struct isr_frame *f)
{
    pf_count++;
    pf_cr2 = READ_CR(2);
    pf_error = f->error_code;
    pf_rip = f->rip;
    if (!paging_resume_rip)
        guest_fail(__FILE__, __LINE__, "unexpected #PF");
    f->rip = paging_resume_rip;
    f->rsp = paging_resume_rsp;
    paging_resume_rip = 0;
}

static inline uint64_t paging_try_load(uint64_t va)
{
    uint64_t v;
    __asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
                     "movq %%rax, %[rip]\n\t"
                     "movq %%rsp, %[rsp]\n\t"
                     "movabsq %[faulted], %[v]\n\t"
                     "movq (%[va]), %[v]\n"
                     "1:\n\t"
                     "movq $0, %[rip]"
                     : [v] "=&r"(v), [rip] "=m"(paging_resume_rip), [rsp] "=m"(paging_resume_rsp)
                     : [va] "r"(va), [faulted] "i"(PAGING_FAULTED)
                     : "rax", "memory");
    return v;
}

/* true if the 8-byte store went through */
static inline bool paging_try_store(uint64_t va, uint64_t value)
{
    uint64_t ok;
    __asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
                     "movq %%rax, %[rip]\n\t"
                     "movq %%rsp, %[rsp]\n\t"
                     "xorl %k[ok], %k[ok]\n\t"
                     "movq %[value], (%[va])\n\t"
                     "movl $1, %k[ok]\n"
                     "1:\n\t"
                     "movq $0, %[rip]"
                     : [ok] "=&r"(ok), [rip] "=m"(paging_resume_rip), [rsp] "=m"(paging_resume_rsp)
                     : [va] "r"(va), [value] "r"(value)
                     : "rax", "memory");
    return ok;
}

/* Call the code at va (it returns a value in RAX and touches only RAX); PAGING_FAULTED if a
 * #PF happened on the way (the call's return address is dropped again). */
static inline uint64_t paging_try_call(uint64_t va)
{
    uint64_t v;
    __asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
                     "movq %%rax, %[rip]\n\t"
                     "movq %%rsp, %[rsp]\n\t"
                     "movabsq %[faulted], %%rax\n\t"
                     "call *%[va]\n"
                     "1:\n\t"
                     "movq $0, %[rip]"
                     : "=a"(v), [rip] "=m"(paging_resume_rip), [rsp] "=m"(paging_resume_rsp)
                     : [va] "r"(va), [faulted] "i"(PAGING_FAULTED)
                     : "memory");
    return v;
}

/* Code for paging_try_call: `mov $value, %eax; ret`. */
static inline void paging_write_ret_code(uint8_t *at, uint32_t value)
{
    at[0] = 0xB8;
    memcpy(at + 1, &value, 4);
    at[5] = 0xC3;
}

#endif
