/* memory_guest.c - the guest side of the memory-virtualization benchmarks (bench_memory.c), as
 * one flat position-independent blob of machine code, embedded in vmlab and run as raw guest
 * code on every backend.
 *
 *     void memory_guest(uint64_t scenario, uint64_t param, uint64_t iterations)
 *
 * sets up what the scenario needs in the guest's own page tables (starting from the platform's
 * identity map, vmm/platform.c), writes benchmark mark 1, runs `iterations` rounds, writes mark
 * 2 (the host timestamps both, bench.h "METHOD"). Scenarios:
 *
 *   PTEMOD   Adams & Agesen's ptemod: a guest PTE store and INVLPG per round. The page table
 *            also maps a page the loop reads every round, so it stays a live page table
 *            (traced by a shadow MMU) - as an OS's page tables are.
 *   PGFAULT  Adams & Agesen's pgfault: a load from a not-present page, the guest's own #PF
 *            handler (skips the load), IRETQ.
 *   HIDDEN   first touch of `iterations` fresh 4 KiB pages (a hidden fault each on a shadow).
 *   CR3      `param` = K address spaces mapping one 64-page range to different frames: per
 *            round a MOV CR3 to the next space and a read of each of the 64 pages.
 *   TLBWALK  dependent loads at pseudo-random 4 KiB pages of 16 MiB mapped with 4 KiB pages.
 *   VE       a store to a read-only convertible page: #VE to the guest's handler (skips it).
 *   SLPEXIT  a store to a read-only page: an exit; the VMM lifts the restriction, the round
 *            restricts the page again (one OUT).
 *   SLPOUT   the restricting OUT of SLPEXIT alone (to tell the exit from the OUT).
 *
 * Memory: the blob has no writable data (no relocations); everything it builds lives at
 * fixed guest-physical addresses, identity mapped (MEM_*). Constraints as for the workloads
 * (bench/workloads/workload_blob.h): no libc, no SSE, no red zone.
 */
#include <stdint.h>

#include "memory_guest.h"

#define P 1ULL
#define RW 2ULL
#define PS (1ULL << 7)
#define ADDR 0x000FFFFFFFFFF000ULL
#define PORT_BENCH_MARK 0x520
#define PORT_SLP_CONTROL 0x540
#define PORT_SLP_VE_INFO 0x544

#define ENTRY __attribute__((section(".text.entry"), used))

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port) : "memory");
}
static inline void mark(uint32_t id)
{
    outl(PORT_BENCH_MARK, id);
}
static inline uint64_t read_cr3(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    return v;
}
static inline void write_cr3(uint64_t v)
{
    __asm__ volatile("mov %0, %%cr3" ::"r"(v) : "memory");
}
static inline void invlpg(uint64_t va)
{
    __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory");
}
static inline volatile uint64_t *table(uint64_t entry)
{
    return (volatile uint64_t *)(uintptr_t)(entry & ADDR);
}
static void zero_page(uint64_t pa)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)pa;
    for (unsigned i = 0; i < 512; i++)
        p[i] = 0;
}
static void copy_page(uint64_t dst, uint64_t src)
{
    for (unsigned i = 0; i < 512; i++)
        ((volatile uint64_t *)(uintptr_t)dst)[i] = ((volatile uint64_t *)(uintptr_t)src)[i];
}

/* The platform's PD (PML4[0] -> PDPT[1] -> PD) of the current address space. */
static volatile uint64_t *platform_pd(void)
{
    return table(table(table(read_cr3())[0])[1]);
}

/* Replace the 2 MiB page at `va` by the page table at `pt` mapping frames from `pa` on. */
static void map_4k(volatile uint64_t *pd, uint64_t va, uint64_t pt, uint64_t pa)
{
    zero_page(pt);
    for (unsigned i = 0; i < 512; i++)
        ((volatile uint64_t *)(uintptr_t)pt)[i] = (pa + i * 4096ULL) | P | RW;
    pd[(va >> 21) & 511] = pt | P | RW;
}

/* An IDT gate (64-bit interrupt gate, selector 0x08) for `handler`. */
static void gate(unsigned vector, void (*handler)(void))
{
    uint64_t target = (uint64_t)(uintptr_t)handler;
    volatile uint64_t *idt = (volatile uint64_t *)(uintptr_t)MEM_IDT;
    idt[2 * vector] =
        (target & 0xFFFF) | (0x08ULL << 16) | (0x8EULL << 40) | (((target >> 16) & 0xFFFF) << 48);
    idt[2 * vector + 1] = target >> 32;
}

static void load_idt(void)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } d = {256 * 16 - 1, MEM_IDT};
    __asm__ volatile("lidt %0" ::"m"(d));
}

/* #PF: skip the 2-byte load `movb (%rax), %cl`; #VE (no error code): skip the 2-byte store
 * `movb %cl, (%rax)` and re-arm the information area. */
__attribute__((visibility("hidden"))) void memory_pf_handler(void);
__attribute__((visibility("hidden"))) void memory_ve_handler(void);
__asm__(".text\n"
        ".globl memory_pf_handler\n"
        ".hidden memory_pf_handler\n"
        ".globl memory_ve_handler\n"
        ".hidden memory_ve_handler\n"
        "memory_pf_handler:\n"
        "    addq $2, 8(%rsp)\n"
        "    addq $8, %rsp\n"
        "    iretq\n"
        "memory_ve_handler:\n"
        "    movl $0, " MEM_VE_INFO_BUSY_TEXT "\n"
        "    addq $2, (%rsp)\n"
        "    iretq\n");

static inline void load_byte(uint64_t va)
{
    __asm__ volatile("movb (%0), %%cl" ::"a"(va) : "rcx", "memory");
}
static inline void store_byte(uint64_t va)
{
    __asm__ volatile("movb %%cl, (%0)" ::"a"(va) : "rcx", "memory");
}

static void ptemod(uint64_t n)
{
    volatile uint64_t *pd = platform_pd();
    map_4k(pd, MEM_REGION, MEM_TABLES, MEM_REGION);
    write_cr3(read_cr3());
    volatile uint64_t *pt = (volatile uint64_t *)(uintptr_t)MEM_TABLES;
    mark(1);
    for (uint64_t i = 0; i < n; i++) {
        load_byte(MEM_REGION); /* a live mapping through this page table */
        pt[1] = (MEM_FRAMES + (i & 1) * 4096ULL) | P | RW;
        invlpg(MEM_REGION + 4096);
    }
    mark(2);
}

static void pgfault(uint64_t n)
{
    volatile uint64_t *pd = platform_pd();
    map_4k(pd, MEM_REGION, MEM_TABLES, MEM_REGION);
    ((volatile uint64_t *)(uintptr_t)MEM_TABLES)[1] = 0; /* not present */
    write_cr3(read_cr3());
    zero_page(MEM_IDT);
    gate(14, memory_pf_handler);
    load_idt();
    mark(1);
    for (uint64_t i = 0; i < n; i++)
        load_byte(MEM_REGION + 4096);
    mark(2);
}

static void hidden(uint64_t n)
{
    volatile uint64_t *pd = platform_pd();
    for (uint64_t t = 0; t * 512 < n; t++)
        map_4k(pd, MEM_REGION + t * (2ULL << 20), MEM_TABLES + t * 4096,
               MEM_FRAMES + t * (2ULL << 20));
    write_cr3(read_cr3());
    mark(1);
    for (uint64_t i = 0; i < n; i++)
        load_byte(MEM_REGION + i * 4096);
    mark(2);
}

/* K address spaces: each its own PML4, PDPT, PD and a page table for MEM_REGION mapping 64
 * frames of its own. */
static void cr3_switch(uint64_t k, uint64_t n)
{
    uint64_t root[MEM_MAX_SPACES];
    uint64_t pml4 = read_cr3() & ADDR, pdpt = table(pml4)[0] & ADDR, pd = table(pdpt)[1] & ADDR;
    for (uint64_t s = 0; s < k; s++) {
        uint64_t base = MEM_TABLES + s * 4 * 4096ULL;
        copy_page(base, pml4);
        copy_page(base + 4096, pdpt);
        copy_page(base + 8192, pd);
        table(base)[0] = (base + 4096) | P | RW;
        table(base + 4096)[1] = (base + 8192) | P | RW;
        map_4k(table(base + 8192), MEM_REGION, base + 12288, MEM_FRAMES + s * 0x40000ULL);
        root[s] = base;
    }
    for (uint64_t s = 0; s < k; s++) { /* every space once, before the clock starts */
        write_cr3(root[s]);
        for (unsigned p = 0; p < 64; p++)
            load_byte(MEM_REGION + p * 4096ULL);
    }
    mark(1);
    for (uint64_t i = 0; i < n; i++) {
        write_cr3(root[i % k]);
        for (unsigned p = 0; p < 64; p++)
            load_byte(MEM_REGION + p * 4096ULL);
    }
    mark(2);
    write_cr3(pml4);
}

static void tlbwalk(uint64_t n)
{
    volatile uint64_t *pd = platform_pd();
    for (uint64_t t = 0; t < MEM_WALK_BYTES >> 21; t++)
        map_4k(pd, MEM_REGION + (t << 21), MEM_TABLES + t * 4096, MEM_REGION + (t << 21));
    write_cr3(read_cr3());
    /* every page mapped and written before timing: written, so that it is a page of its own
     * in the host too (a page never written may be the host's shared zero page) */
    for (uint64_t p = 0; p < MEM_WALK_BYTES; p += 4096)
        *(volatile uint8_t *)(uintptr_t)(MEM_REGION + p) = 1;
    uint64_t x = 88172645463325252ULL, sum = 0;
    mark(1);
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13; /* xorshift64: the next page depends on nothing the CPU can prefetch */
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t page = (x + sum) % (MEM_WALK_BYTES / 4096);
        sum += *(volatile uint8_t *)(uintptr_t)(MEM_REGION + page * 4096 + (x & 0xFC0));
    }
    mark(2);
}

static void second_level(uint64_t scenario, uint64_t n)
{
    uint32_t page = (uint32_t)MEM_SLP_PAGE;
    zero_page(MEM_IDT);
    gate(20, memory_ve_handler);
    load_idt();
    zero_page(MEM_VE_INFO);
    if (scenario == MEMORY_VE)
        outl(PORT_SLP_VE_INFO, (uint32_t)MEM_VE_INFO);
    outl(PORT_SLP_CONTROL, page | 1 | (scenario == MEMORY_VE ? 4 : 0));
    mark(1);
    for (uint64_t i = 0; i < n; i++) {
        if (scenario == MEMORY_VE) {
            store_byte(MEM_SLP_PAGE); /* #VE, skipped by the handler */
        } else if (scenario == MEMORY_SLPEXIT) {
            store_byte(MEM_SLP_PAGE);         /* exit: the VMM lifts the restriction */
            outl(PORT_SLP_CONTROL, page | 1); /* restricted again */
        } else {
            outl(PORT_SLP_CONTROL, page | 1);
        }
    }
    mark(2);
    outl(PORT_SLP_CONTROL, page);
}

ENTRY void memory_guest(uint64_t scenario, uint64_t param, uint64_t n)
{
    switch (scenario) {
    case MEMORY_PTEMOD:
        ptemod(n);
        break;
    case MEMORY_PGFAULT:
        pgfault(n);
        break;
    case MEMORY_HIDDEN:
        hidden(n);
        break;
    case MEMORY_CR3:
        cr3_switch(param < 1 ? 1 : param > MEM_MAX_SPACES ? MEM_MAX_SPACES : param, n);
        break;
    case MEMORY_TLBWALK:
        tlbwalk(n);
        break;
    default:
        second_level(scenario, n);
        break;
    }
}
