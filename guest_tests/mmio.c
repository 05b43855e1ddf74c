/* mmio.c - loads and stores to the MMIO scratch register become MMIO exits on every backend
 * (trap_emulate and dbt see a fault on the PROT_NONE window and decode the MOV). */
#include "guest.h"

int main(void)
{
    volatile uint64_t *q = (volatile uint64_t *)GUEST_MMIO_SCRATCH;
    volatile uint32_t *d = (volatile uint32_t *)GUEST_MMIO_SCRATCH;
    volatile uint8_t *b = (volatile uint8_t *)GUEST_MMIO_SCRATCH;
    *q = 0x1122334455667788ULL;
    GUEST_ASSERT_EQ(*q, 0x1122334455667788ULL);
    *d = 0xcafef00d;
    GUEST_ASSERT_EQ(*q, 0x11223344cafef00dULL);
    b[7] = 0x99;
    GUEST_ASSERT_EQ(*q, 0x99223344cafef00dULL);
    GUEST_ASSERT_EQ(b[0], 0x0d);
    GUEST_DONE();
}
