/* idt.c - the guest's own IDT, GDT helpers and the virtual timer. */
#include "guest.h"

extern char isr_stub_table[];
static uint64_t idt[512] __attribute__((aligned(16)));
static isr_handler handlers[256];
volatile uint64_t isr_count[256];
static uint64_t gdt[64] __attribute__((aligned(16)));

uint64_t *idt_table(void)
{
    return idt;
}

void isr_dispatch(struct isr_frame *f)
{
    uint8_t v = (uint8_t)f->vector;
    isr_count[v]++;
    if (handlers[v]) {
        handlers[v](f);
        return;
    }
    guest_printf("FAIL unexpected interrupt/exception vector %u error %#llx at rip %#llx\n", v,
                 (unsigned long long)f->error_code, (unsigned long long)f->rip);
    guest_exit(1);
}

void idt_set_handler(uint8_t vector, isr_handler fn)
{
    handlers[vector] = fn;
}

void idt_init(void)
{
    for (unsigned v = 0; v < 256; v++) {
        uint64_t target = (uint64_t)(uintptr_t)(isr_stub_table + 16 * v);
        /* 64-bit interrupt gate, present, DPL 0, selector 0x08 (SDM vol. 3A 6.14.1) */
        idt[2 * v] = (target & 0xFFFF) | ((uint64_t)GUEST_SEL_CODE << 16) | (0x8EULL << 40) |
                     (((target >> 16) & 0xFFFF) << 48);
        idt[2 * v + 1] = target >> 32;
    }
    struct dtr d = {.limit = sizeof(idt) - 1, .base = (uint64_t)(uintptr_t)idt};
    lidt(&d);
}

uint64_t *gdt_install(unsigned entries)
{
    /* The platform GDT is at a fixed address; copy its first 5 entries (null, code, data,
     * 16-byte TSS). Reading it through SGDT would be sensitive: use the known address. */
    const uint64_t *platform = (const uint64_t *)0x40001000ULL;
    if (entries > 64)
        entries = 64;
    for (unsigned i = 0; i < entries; i++)
        gdt[i] = i < 5 ? platform[i] : 0;
    struct dtr d = {.limit = (uint16_t)(entries * 8 - 1), .base = (uint64_t)(uintptr_t)gdt};
    lgdt(&d);
    return gdt;
}

void timer_start(uint8_t vector, uint32_t period_us)
{
    outl(GUEST_PORT_TIMER_VECTOR, vector);
    outl(GUEST_PORT_TIMER_PERIOD, period_us);
}

void timer_stop(void)
{
    outl(GUEST_PORT_TIMER_PERIOD, 0);
}

bool spin_until(bool (*cond)(void), uint32_t max_us)
{
    uint32_t t0 = clock_us();
    while (clock_us() - t0 < max_us) {
        for (int i = 0; i < 1000; i++) {
            if (cond())
                return true;
            __asm__ volatile("pause");
        }
    }
    return cond();
}
