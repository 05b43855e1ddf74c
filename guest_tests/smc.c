/* smc.c - self-modifying code: write `mov $1, %eax; ret`, call it, patch the immediate to 2,
 * call again: the second call must see 2. Natural for trap_emulate and vtx; the dbt backend
 * must invalidate its translation of the written page. */
#include "guest.h"

static uint8_t code[64] __attribute__((aligned(64)));

int main(void)
{
    static const uint8_t insns[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};
    memcpy(code, insns, sizeof(insns));
    int (*fn)(void) = (int (*)(void))code;
    GUEST_ASSERT_EQ(fn(), 1);
    code[1] = 2;
    __asm__ volatile("" ::: "memory");
    GUEST_ASSERT_EQ(fn(), 2);
    for (int i = 3; i < 50; i++) {
        code[1] = (uint8_t)i;
        __asm__ volatile("" ::: "memory");
        GUEST_ASSERT_EQ(fn(), i);
    }
    GUEST_DONE();
}
