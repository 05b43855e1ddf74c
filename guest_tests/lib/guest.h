/* guest.h - the vmlab guest runtime: everything a guest test needs, in one header.
 *
 * A guest is a freestanding 64-bit program that believes it runs at CPL 0 on a bare machine
 * (vmm/guest_layout.h has the address map and ports). Minimal example:
 *
 *     #include "guest.h"
 *     GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1", "why it cannot pass there");
 *     int main(void)
 *     {
 *         GUEST_ASSERT_EQ(1 + 1, 2);
 *         GUEST_DONE();
 *     }
 */
#ifndef VMLAB_GUEST_H
#define VMLAB_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- ports and addresses (same values as vmm/guest_layout.h) ---- */
#define GUEST_PORT_CONSOLE 0xE9
#define GUEST_PORT_EXIT 0xF4
#define GUEST_PORT_TIMER_PERIOD 0x510
#define GUEST_PORT_TIMER_VECTOR 0x514
#define GUEST_PORT_TIMER_TICKS 0x518
#define GUEST_PORT_CLOCK_US 0x51C
#define GUEST_PORT_BENCH_MARK 0x520
#define GUEST_PORT_SCRATCH 0x530
#define GUEST_PORT_FIFO 0x534
#define GUEST_MMIO_SCRATCH 0x44000000ULL
#define GUEST_UNASSIGNED_MMIO 0x50000000ULL
#define GUEST_SEL_CODE 0x08
#define GUEST_SEL_DATA 0x10
#define GUEST_SEL_TSS 0x18

/* ---- expectations (non-loaded section, read by `vmlab check` / `vmlab conformance`) ---- */
#define GUEST_EXPECT_CAT2(a, b) a##b
#define GUEST_EXPECT_CAT(a, b) GUEST_EXPECT_CAT2(a, b)
#define GUEST_EXPECT_RECORD(text)                                                                  \
    __asm__(".pushsection .vmlab_expect,\"\",@progbits\n\t.asciz \"" text "\"\n\t.popsection")
/* backend: trap_emulate | dbt | vtx | *; outcome: pass | skip; condition: "" or a host
 * condition ("cpuid_traps", "!umip_faults", ...); reason: one line, no double quotes. */
#define GUEST_EXPECT(backend, outcome, condition, reason)                                          \
    GUEST_EXPECT_RECORD(backend "|" outcome "|" condition "|" reason)
/* An expected failure names how it ends ("exit:1", "exception:13", "internal", ...; any other
 * ending is a FAIL), optionally followed by a space and text the guest's last console line
 * must contain: GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1 FAIL sgdt.c", "why"). */
#define GUEST_EXPECT_XFAIL(backend, condition, ending, reason)                                     \
    GUEST_EXPECT_RECORD(backend "|xfail|" condition "|" ending "|" reason)
/* The same, where the failure shows in some runs only and a pass is accepted too: a bug below
 * vmlab that depends on timing (the nested CPU's), never one of vmlab's. */
#define GUEST_EXPECT_XFAIL_OR_PASS(backend, condition, ending, reason)                             \
    GUEST_EXPECT_RECORD(backend "|xfail_or_pass|" condition "|" ending "|" reason)
#define GUEST_EXPECT_ENDING(ending) GUEST_EXPECT_RECORD("ending|" ending)
#define GUEST_EXPECT_TIMEOUT(seconds) GUEST_EXPECT_RECORD("timeout|" seconds)
/* A passing run on `backend` (or "*") prints `line` as a whole console line; several records
 * must match in their order. */
#define GUEST_EXPECT_OUTPUT(backend, line) GUEST_EXPECT_RECORD("output|" backend "|" line)

/* ---- port I/O and privileged helpers ---- */
static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void cli(void)
{
    __asm__ volatile("cli" ::: "memory");
}
static inline void sti(void)
{
    __asm__ volatile("sti" ::: "memory");
}
static inline void hlt(void)
{
    __asm__ volatile("hlt" ::: "memory");
}
static inline void sti_hlt(void)
{
    __asm__ volatile("sti; hlt" ::: "memory");
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t pushf(void)
{
    uint64_t f;
    __asm__ volatile("pushfq; popq %0" : "=r"(f)::"memory");
    return f;
}
static inline void popf(uint64_t f)
{
    __asm__ volatile("pushq %0; popfq" ::"r"(f) : "memory", "cc");
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}
static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
#define READ_CR(n)                                                                                 \
    ({                                                                                             \
        uint64_t _v;                                                                               \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(_v));                                         \
        _v;                                                                                        \
    })
#define WRITE_CR(n, v) __asm__ volatile("mov %0, %%cr" #n ::"r"((uint64_t)(v)) : "memory")
#define READ_DR(n)                                                                                 \
    ({                                                                                             \
        uint64_t _v;                                                                               \
        __asm__ volatile("mov %%dr" #n ", %0" : "=r"(_v));                                         \
        _v;                                                                                        \
    })
#define WRITE_DR(n, v) __asm__ volatile("mov %0, %%dr" #n ::"r"((uint64_t)(v)) : "memory")

struct __attribute__((packed)) dtr {
    uint16_t limit;
    uint64_t base;
};
static inline void lgdt(const struct dtr *d)
{
    __asm__ volatile("lgdt %0" ::"m"(*d) : "memory");
}
static inline void lidt(const struct dtr *d)
{
    __asm__ volatile("lidt %0" ::"m"(*d) : "memory");
}
static inline void sgdt(struct dtr *d)
{
    __asm__ volatile("sgdt %0" : "=m"(*d));
}
static inline void sidt(struct dtr *d)
{
    __asm__ volatile("sidt %0" : "=m"(*d));
}

#define RFLAGS_IF (1ULL << 9)
#define RFLAGS_ZF (1ULL << 6)
#define MSR_MISC_ENABLE 0x1A0
#define MSR_PAT 0x277
#define MSR_MTRR_DEF_TYPE 0x2FF
#define MSR_EFER 0xC0000080
#define MSR_STAR 0xC0000081
#define MSR_LSTAR 0xC0000082
#define MSR_SFMASK 0xC0000084
#define MSR_GS_BASE 0xC0000101
#define MSR_KERNEL_GS_BASE 0xC0000102
#define MSR_TSC_AUX 0xC0000103

/* ---- freestanding libc subset (runtime.c) ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* ---- console, exit, assertions ---- */
void guest_putc(char c);
void guest_puts(const char *s);
int guest_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int guest_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
__attribute__((noreturn)) void guest_exit(int code);
__attribute__((noreturn)) void guest_fail(const char *file, int line, const char *what);

#define GUEST_ASSERT(cond)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            guest_fail(__FILE__, __LINE__, "assertion failed: " #cond);                            \
    } while (0)
#define GUEST_ASSERT_EQ(a, b)                                                                      \
    do {                                                                                           \
        unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b);             \
        if (_a != _b) {                                                                            \
            guest_printf("FAIL %s:%d: %s == %s: got %#llx, expected %#llx\n", __FILE__, __LINE__,  \
                         #a, #b, _a, _b);                                                          \
            guest_exit(1);                                                                         \
        }                                                                                          \
    } while (0)
#define GUEST_DONE()                                                                               \
    do {                                                                                           \
        guest_puts("PASS\n");                                                                      \
        guest_exit(0);                                                                             \
    } while (0)

/* ---- interrupts ---- */
struct isr_frame {
    uint64_t rax, rcx, rdx, rbx, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};
typedef void (*isr_handler)(struct isr_frame *frame);
/* Build a 256-entry IDT in guest memory pointing at the runtime's stubs, and LIDT it.
 * Vectors without a registered handler fail the test with a message. */
void idt_init(void);
void idt_set_handler(uint8_t vector, isr_handler fn);
/* The IDT built by idt_init(), for tests that edit gates. */
uint64_t *idt_table(void);
/* Counters the default handlers keep. */
extern volatile uint64_t isr_count[256];

/* Virtual timer: interrupts at `vector` every period_us microseconds. */
void timer_start(uint8_t vector, uint32_t period_us);
void timer_stop(void);
static inline uint32_t timer_ticks(void)
{
    return inl(GUEST_PORT_TIMER_TICKS);
}
/* Microseconds since the run started, read from the host clock (port 0x51C): the same real
 * time on every backend, whatever their speed, and without RDTSC (which may trap). */
static inline uint32_t clock_us(void)
{
    return inl(GUEST_PORT_CLOCK_US);
}
/* Spin (without HLT) until cond() holds or max_us of real time passed. */
bool spin_until(bool (*cond)(void), uint32_t max_us);

/* ---- GDT helpers ---- */
/* Install a GDT of `entries` 8-byte descriptors at a runtime-owned table (copying the
 * platform's null/code/data/TSS first), LGDT it, and return it for editing. */
uint64_t *gdt_install(unsigned entries);
static inline uint64_t gdt_descriptor(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    return (uint64_t)(limit & 0xFFFF) | ((uint64_t)(base & 0xFFFFFF) << 16) |
           ((uint64_t)access << 40) | ((uint64_t)((limit >> 16) & 0xF) << 48) |
           ((uint64_t)(flags & 0xF) << 52) | ((uint64_t)(base >> 24) << 56);
}

#endif
