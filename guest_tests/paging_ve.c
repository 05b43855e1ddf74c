/* paging_ve.c - a convertible second-level violation delivered to the guest as a
 * virtualization exception (#VE, vector 20), not an exit: the guest gives the VMM an
 * information area (PORT_SLP_VE_INFO), makes a page read-only and convertible, and writes it.
 * Its #VE handler finds the area filled as Intel SDM vol. 3C 25.5.7.2 says (exit reason 48,
 * the dword at offset 4 set to 0xFFFFFFFF, the EPT-violation exit qualification, the linear
 * and the guest-physical address), lifts the restriction, re-arms the area and returns: the
 * store completes, and no exit happened. With the area still busy, the next violation is an
 * exit instead, as on the processor. */
#include "paging.h"

GUEST_EXPECT_XFAIL("vtx", "", "exit:1",
                   "#VE is not exposed by KVM to a userspace VMM (no API for the EPT suppress-#VE "
                   "bit or the information area): the violation is an exit instead");

struct __attribute__((packed)) ve_info {
    uint32_t exit_reason, busy;
    uint64_t qualification, gla, gpa;
    uint16_t eptp_index;
};

static struct ve_info area __attribute__((aligned(4096)));
static uint8_t page[PAGE_SIZE] PAGE_ALIGNED;
static volatile unsigned ve_count;
static volatile struct ve_info seen;

static void on_ve(struct isr_frame *f)
{
    (void)f;
    ve_count++;
    seen = *(volatile struct ve_info *)&area;
    outl(GUEST_PORT_SLP_CONTROL, (uint32_t)paging_phys(page) | SLP_FULL);
    ((volatile struct ve_info *)&area)->busy = 0; /* re-arm */
}

int main(void)
{
    idt_init();
    idt_set_handler(VECTOR_VE, on_ve);
    outl(GUEST_PORT_SLP_VE_INFO, (uint32_t)paging_phys(&area));
    outl(GUEST_PORT_SLP_CONTROL, (uint32_t)paging_phys(page) | SLP_READ_ONLY | SLP_CONVERTIBLE);
    volatile uint8_t *p = page;
    p[16] = 7;
    GUEST_ASSERT_EQ(ve_count, 1);
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_EXITS), 0); /* the VMM never saw it */
    GUEST_ASSERT_EQ(p[16], 7);                     /* the store completed after the handler */
    GUEST_ASSERT_EQ(seen.exit_reason, 48);         /* EPT violation */
    GUEST_ASSERT_EQ(seen.busy, 0xFFFFFFFF);
    GUEST_ASSERT_EQ(seen.qualification & 7, 2);      /* a data write */
    GUEST_ASSERT(seen.qualification & (1u << 3));    /* the page was readable */
    GUEST_ASSERT(!(seen.qualification & (1u << 4))); /* ... not writable */
    GUEST_ASSERT(seen.qualification & (1u << 7));    /* linear address valid */
    GUEST_ASSERT(seen.qualification & (1u << 8));    /* the access, not a page walk */
    GUEST_ASSERT_EQ(seen.gla, (uint64_t)&page[16]);
    GUEST_ASSERT_EQ(seen.gpa, paging_phys(page) + 16);

    /* busy area (the guest did not re-arm it): the violation is an exit */
    ((volatile struct ve_info *)&area)->busy = 1;
    outl(GUEST_PORT_SLP_CONTROL, (uint32_t)paging_phys(page) | SLP_READ_ONLY | SLP_CONVERTIBLE);
    p[17] = 8;
    GUEST_ASSERT_EQ(ve_count, 1);
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_EXITS), 1);
    GUEST_ASSERT_EQ(p[17], 8);
    GUEST_DONE();
}
