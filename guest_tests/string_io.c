/* string_io.c - INS/OUTS with and without REP, all sizes, and a 10000-byte REP OUTSB that
 * the emulating backends split into chunks. Passes everywhere. */
#include "guest.h"

static uint8_t big[10000];

int main(void)
{
    static const char msg[] = "string I/O through the FIFO";
    char back[sizeof(msg)];
    uint64_t n = sizeof(msg), src = (uint64_t)msg, dst = (uint64_t)back;
    __asm__ volatile("rep outsb" : "+S"(src), "+c"(n) : "d"(GUEST_PORT_FIFO) : "memory");
    GUEST_ASSERT_EQ(n, 0);
    GUEST_ASSERT_EQ(src, (uint64_t)msg + sizeof(msg));
    n = sizeof(msg);
    __asm__ volatile("rep insb" : "+D"(dst), "+c"(n) : "d"(GUEST_PORT_FIFO) : "memory");
    GUEST_ASSERT_EQ(n, 0);
    GUEST_ASSERT(memcmp(msg, back, sizeof(msg)) == 0);

    uint32_t words[4] = {0x11112222, 0x33334444, 0x55556666, 0x77778888}, wback[4] = {0};
    n = 4;
    src = (uint64_t)words;
    __asm__ volatile("rep outsl" : "+S"(src), "+c"(n) : "d"(GUEST_PORT_FIFO) : "memory");
    n = 4;
    dst = (uint64_t)wback;
    __asm__ volatile("rep insl" : "+D"(dst), "+c"(n) : "d"(GUEST_PORT_FIFO) : "memory");
    GUEST_ASSERT(memcmp(words, wback, sizeof(words)) == 0);
    uint16_t h = 0xabcd, hb = 0;
    src = (uint64_t)&h;
    __asm__ volatile("outsw" : "+S"(src) : "d"(GUEST_PORT_FIFO) : "memory");
    dst = (uint64_t)&hb;
    __asm__ volatile("insw" : "+D"(dst) : "d"(GUEST_PORT_FIFO) : "memory");
    GUEST_ASSERT_EQ(hb, 0xabcd);

    for (unsigned i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    n = sizeof(big);
    src = (uint64_t)big;
    __asm__ volatile("rep outsb" : "+S"(src), "+c"(n) : "d"(GUEST_PORT_SCRATCH) : "memory");
    GUEST_ASSERT_EQ(n, 0);
    GUEST_ASSERT_EQ(src, (uint64_t)big + sizeof(big));
    GUEST_ASSERT_EQ(inb(GUEST_PORT_SCRATCH), (uint8_t)((sizeof(big) - 1) * 7));
    GUEST_DONE();
}
