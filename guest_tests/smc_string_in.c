/* smc_string_in.c - self-modifying code written by an emulated instruction: REP INSB from the
 * FIFO device into a page of code that has already run. On trap_emulate and dbt the emulation
 * core performs the store in guest-physical memory, where no write protection catches it: the
 * store itself must tell dbt to drop the translations of that page. */
#include "guest.h"

static uint8_t code[64] __attribute__((aligned(4096)));

static void fill_code_by_ins(const uint8_t *bytes, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        outb(GUEST_PORT_FIFO, bytes[i]);
    uint64_t dst = (uint64_t)code;
    __asm__ volatile("rep insb" : "+D"(dst), "+c"(n) : "d"(GUEST_PORT_FIFO) : "memory");
}

int main(void)
{
    int (*fn)(void) = (int (*)(void))code;
    for (uint8_t v = 1; v < 20; v++) {
        const uint8_t insns[] = {0xb8, v, 0x00, 0x00, 0x00, 0xc3}; /* mov $v, %eax; ret */
        fill_code_by_ins(insns, sizeof(insns));
        GUEST_ASSERT_EQ(fn(), v);
    }
    GUEST_DONE();
}
