/* paging_slp_bad_request.c - a second-level permission request the guest gets wrong is
 * rejected, not fatal. PORT_SLP_CONTROL with the undefined permission 3, or with an address
 * that is not a page of guest RAM, and PORT_SLP_VE_INFO with an information area outside RAM,
 * are ignored with PORT_SLP_STATUS = 22 (EINVAL), as a device rejects a malformed command; the
 * run goes on, and a valid request afterwards works (status 0, its violation an exit). Random
 * guests (tests/chaos) found the VMM ending such runs as an internal error. */
#include "paging.h"

#define EINVAL_STATUS 22

static uint8_t page[PAGE_SIZE] PAGE_ALIGNED;

int main(void)
{
    volatile uint8_t *p = page;
    p[0] = 1;
    outl(GUEST_PORT_SLP_CONTROL, (uint32_t)paging_phys(page) | 3); /* permission 3 */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_STATUS), EINVAL_STATUS);
    p[1] = 2; /* nothing was restricted: no exit */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_EXITS), 0);

    outl(GUEST_PORT_SLP_CONTROL, 0xFFFFF000u | SLP_READ_ONLY); /* not RAM (below 4 GiB's top) */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_STATUS), EINVAL_STATUS);

    outl(GUEST_PORT_SLP_CONTROL, (uint32_t)paging_phys(page) | SLP_READ_ONLY); /* valid */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_STATUS), 0);
    p[2] = 3; /* an exit, the restriction lifted, the store done */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_EXITS), 1);
    GUEST_ASSERT_EQ(p[2], 3);

    outl(GUEST_PORT_SLP_VE_INFO, 0xFFFFF000u); /* an information area outside RAM */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_STATUS), EINVAL_STATUS);
    GUEST_DONE();
}
