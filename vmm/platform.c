/* platform.c - the platform area: GDT, TSS, default IDT, report stubs, page tables.
 *
 * Every backend starts the guest from the same memory image, so what the guest can see of its
 * "machine" (descriptor tables, page tables) is identical whether it then runs natively in
 * ring 3, from a translation cache, or in VMX/SVM non-root mode.
 */
#include "platform.h"

#include <assert.h>
#include <string.h>

#include "guest_layout.h"

extern const uint8_t platform_stubs_start[], platform_stubs_end[];

/* Page-table entry bits (Intel SDM vol. 3A 4.5, table 4-15 and following). Not exported by the
 * kernel's uapi headers, so defined once here. */
#define PTE_PRESENT (1ULL << 0)
#define PTE_WRITABLE (1ULL << 1)
#define PTE_PAGE_SIZE (1ULL << 7) /* 2 MiB page in a PD entry */

/* Segment descriptors of the initial GDT (SDM vol. 3A 3.4.5): base 0, limit 0xFFFFF, G=1.
 * 0x00AF9B000000FFFF: P=1 DPL=0 S=1 type=0xB (execute/read, accessed), L=1.
 * 0x00CF93000000FFFF: P=1 DPL=0 S=1 type=0x3 (read/write, accessed), D/B=1. */
#define GDT_CODE64 0x00AF9B000000FFFFULL
#define GDT_DATA 0x00CF93000000FFFFULL
#define TSS_TYPE_BUSY64 0xBULL /* SDM vol. 3A 8.2.3 */
#define TSS_LIMIT 0x67ULL

#define IDT_GATE_INTERRUPT64 0xEULL /* SDM vol. 3A 6.14.1 */
#define PLATFORM_STUB_SIZE 16

static_assert(GUEST_GDT_LIMIT == 5 * 8 - 1, "null, code, data and a 16-byte TSS descriptor");
static_assert(GUEST_SEL_CODE64 == 1 * 8 && GUEST_SEL_DATA == 2 * 8 && GUEST_SEL_TSS == 3 * 8,
              "selectors index the GDT written below");
static_assert(GUEST_STUBS_OFFSET + 256 * PLATFORM_STUB_SIZE + 64 <= GUEST_PT_OFFSET,
              "stubs fit below the page tables");
#define GUEST_SPACE_PAGES_2M (GUEST_SPACE_SIZE >> 21)
static_assert(GUEST_RAM_SIZE <= GUEST_SPACE_SIZE && GUEST_SPACE_PAGES_2M <= 512 &&
                  (GUEST_SPACE_BASE & ((1ULL << 30) - 1)) == 0,
              "one page directory of 2 MiB pages maps the guest space");

int platform_vector_has_error_code(unsigned vector)
{
    return vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 ||
           vector == 29 || vector == 30;
}

static void write_gdt(uint8_t *ram)
{
    uint64_t *gdt = (uint64_t *)(ram + GUEST_GDT_OFFSET);
    uint64_t tss = GUEST_RAM_BASE + GUEST_TSS_OFFSET;
    gdt[0] = 0;
    gdt[1] = GDT_CODE64;
    gdt[2] = GDT_DATA;
    /* 16-byte system descriptor (SDM vol. 3A 8.2.3, figure 8-4). */
    gdt[3] = (TSS_LIMIT & 0xFFFF) | ((tss & 0xFFFFFF) << 16) | (TSS_TYPE_BUSY64 << 40) |
             (1ULL << 47) /* P */ | (((TSS_LIMIT >> 16) & 0xF) << 48) |
             (((tss >> 24) & 0xFF) << 56);
    gdt[4] = tss >> 32;
}

static void write_tss(uint8_t *ram)
{
    uint8_t *tss = ram + GUEST_TSS_OFFSET;
    memset(tss, 0, TSS_LIMIT + 1);
    /* I/O map base beyond the limit: no I/O permission bitmap (SDM vol. 1 19.5.2). */
    uint16_t iomap_base = TSS_LIMIT + 1;
    memcpy(tss + 0x66, &iomap_base, sizeof(iomap_base));
}

static void write_idt_and_stubs(uint8_t *ram)
{
    size_t stubs_size = (size_t)(platform_stubs_end - platform_stubs_start);
    memcpy(ram + GUEST_STUBS_OFFSET, platform_stubs_start, stubs_size);
    uint64_t *idt = (uint64_t *)(ram + GUEST_IDT_OFFSET);
    for (unsigned v = 0; v < 256; v++) {
        uint64_t target = GUEST_RAM_BASE + GUEST_STUBS_OFFSET + (uint64_t)v * PLATFORM_STUB_SIZE;
        /* 64-bit interrupt gate (SDM vol. 3A 6.14.1, figure 6-8). */
        idt[2 * v] = (target & 0xFFFF) | ((uint64_t)GUEST_SEL_CODE64 << 16) |
                     (IDT_GATE_INTERRUPT64 << 40) | (1ULL << 47) /* P */ |
                     (((target >> 16) & 0xFFFF) << 48);
        idt[2 * v + 1] = target >> 32;
    }
}

static void write_page_tables(uint8_t *ram)
{
    uint64_t pt_base = GUEST_RAM_BASE + GUEST_PT_OFFSET;
    uint64_t *pml4 = (uint64_t *)(ram + GUEST_PT_OFFSET);
    uint64_t *pdpt = pml4 + 512;
    uint64_t *pd = pdpt + 512;
    memset(pml4, 0, 3 * 4096);
    /* Identity map the guest space: PML4[0] -> PDPT, PDPT[1] -> PD, 2 MiB pages. The rest of the
     * address space is not present: an access there is a guest #PF on every backend. */
    pml4[0] = (pt_base + 0x1000) | PTE_PRESENT | PTE_WRITABLE;
    pdpt[GUEST_SPACE_BASE >> 30] = (pt_base + 0x2000) | PTE_PRESENT | PTE_WRITABLE;
    for (unsigned i = 0; i < GUEST_SPACE_PAGES_2M; i++)
        pd[i] =
            (GUEST_SPACE_BASE + ((uint64_t)i << 21)) | PTE_PRESENT | PTE_WRITABLE | PTE_PAGE_SIZE;
}

void platform_setup(struct guest_memory *mem)
{
    write_gdt(mem->ram);
    write_tss(mem->ram);
    write_idt_and_stubs(mem->ram);
    write_page_tables(mem->ram);
}
