/* guest_layout.h - the guest model's address map, one contract for every backend.
 *
 * Guest-physical, guest-virtual and (for the in-process backends trap_emulate and dbt)
 * host-virtual addresses of guest RAM are identical: one fixed window reserved in the host
 * process with MAP_FIXED_NOREPLACE and backed by a memfd. KVM gets the same memfd as a memory
 * slot at the same guest-physical address.
 *
 *   GUEST_SPACE_BASE .. GUEST_SPACE_END   512 MiB reserved (PROT_NONE outside RAM); identity
 *                                         mapped by the guest page tables. Accesses to the part
 *                                         that is not RAM are MMIO on every backend.
 *   GUEST_RAM_BASE                        = GUEST_SPACE_BASE, GUEST_RAM_SIZE bytes of RAM:
 *     + GUEST_PLATFORM_OFFSET ...          platform area written by vmm/platform.c: GDT, TSS,
 *                                         default IDT + exception-report stubs, page tables
 *     + GUEST_IMAGE_OFFSET ...             where guest ELF PT_LOAD segments must lie
 *     top - GUEST_STACK_RESERVE .. top     initial stack (RSP starts at the top of RAM)
 *   GUEST_MMIO_BASE .. + GUEST_MMIO_SIZE  MMIO device window (vmm/devices.c)
 */
#ifndef VMLAB_GUEST_LAYOUT_H
#define VMLAB_GUEST_LAYOUT_H

#define GUEST_SPACE_BASE 0x40000000ULL /* 1 GiB: below it, nothing of the host's lives */
/* 512 MiB: it must end below 0x7fff8000, where AddressSanitizer's shadow memory begins on
 * x86-64, so that the sanitizer build runs the very same guest model. */
#define GUEST_SPACE_SIZE 0x20000000ULL
#define GUEST_SPACE_END (GUEST_SPACE_BASE + GUEST_SPACE_SIZE)

#define GUEST_RAM_BASE GUEST_SPACE_BASE
#define GUEST_RAM_SIZE (64ULL << 20)
#define GUEST_RAM_END (GUEST_RAM_BASE + GUEST_RAM_SIZE)

/* Platform area (first 2 MiB of RAM). Offsets are from GUEST_RAM_BASE. */
#define GUEST_PLATFORM_OFFSET 0x0ULL
#define GUEST_GDT_OFFSET 0x1000ULL      /* initial GDT: null, code64 0x08, data 0x10, TSS 0x18 */
#define GUEST_TSS_OFFSET 0x2000ULL      /* 64-bit TSS (Intel SDM vol. 3A 8.7) */
#define GUEST_IDT_OFFSET 0x3000ULL      /* default IDT: 256 gates to the report stubs */
#define GUEST_STUBS_OFFSET 0x4000ULL    /* exception-report stubs (vmm/platform_stubs.S) */
#define GUEST_PT_OFFSET 0x10000ULL      /* PML4, PDPT, PD (identity map of the guest space) */
#define GUEST_PLATFORM_SIZE 0x200000ULL /* 2 MiB */

#define GUEST_IMAGE_OFFSET GUEST_PLATFORM_SIZE
#define GUEST_IMAGE_BASE (GUEST_RAM_BASE + GUEST_IMAGE_OFFSET) /* 0x40200000: link address */
#define GUEST_STACK_RESERVE (1ULL << 20) /* segments must end below the stack */
#define GUEST_STACK_TOP GUEST_RAM_END

#define GUEST_MMIO_BASE GUEST_RAM_END
#define GUEST_MMIO_SIZE 0x10000ULL

/* Selectors of the initial GDT as the guest sees them (its virtual CPL is 0). */
#define GUEST_SEL_CODE64 0x08
#define GUEST_SEL_DATA 0x10
#define GUEST_SEL_TSS 0x18
#define GUEST_GDT_LIMIT (5 * 8 - 1) /* null, code, data, 16-byte TSS descriptor */

/* I/O ports of the shared devices (vmm/devices.c). */
#define PORT_CONSOLE 0xE9       /* debugcon, as QEMU/Bochs: OUT writes a byte, IN reads 0xE9 */
#define PORT_EXIT 0xF4          /* isa-debug-exit compatible: OUT v ends the run with status v */
#define PORT_EXC_REPORT 0x500   /* platform stubs report an unhandled exception (32-bit OUTs) */
#define PORT_TIMER_PERIOD 0x510 /* 32-bit OUT: virtual timer period in microseconds, 0 = off */
#define PORT_TIMER_VECTOR 0x514 /* OUT: vector the timer raises (32..255) */
#define PORT_TIMER_TICKS 0x518  /* 32-bit IN: number of timer interrupts delivered so far */
#define PORT_CLOCK_US                                                                              \
    0x51C                     /* 32-bit IN: microseconds since the run started (host clock);       \
                                 lets guests bound their waits in real time on any backend */
#define PORT_BENCH_MARK 0x520 /* OUT: benchmark phase marker (value = phase id) */
#define PORT_SCRATCH 0x530    /* 8/16/32-bit register: IN returns what OUT stored */
#define PORT_FIFO                                                                                  \
    0x534 /* byte FIFO (4 KiB): OUT appends, IN pops (0xFF when empty);                            \
             for REP INS/OUTS round trips */
/* Second-level permissions (memory virtualization, mmu/ and docs/ARCHITECTURE.md): the guest
 * asks the VMM to restrict its own access to one guest-physical page, as a VMM would with EPT
 * or NPT permissions, and says whether a violation is an exit to the VMM or convertible into
 * a virtualization exception (#VE, vector 20) delivered to the guest itself (Intel SDM vol.
 * 3C 25.5.7). The VMM's run loop handles an exit by counting it and lifting the restriction
 * from that page, so the access completes: the idea of write-protection-based dirty logging. */
#define PORT_SLP_CONTROL                                                                           \
    0x540 /* 32-bit OUT: page address | permission (bits 1:0: 0 full, 1 read-only, 2 none)         \
             | SLP_CONVERTIBLE (bit 2) */
#define SLP_CONVERTIBLE 0x4
#define PORT_SLP_VE_INFO                                                                           \
    0x544 /* 32-bit OUT: guest-physical address of the #VE information area (0 = none) */
#define PORT_SLP_EXITS 0x548    /* 32-bit IN: second-level violations the VMM handled as exits */
#define PORT_SLP_LAST_GPA 0x54C /* 32-bit IN: the guest-physical address of the last one */
/* 32-bit IN: what became of the last SLP_CONTROL / SLP_VE_INFO request: 0 done, 22 (EINVAL)
 * rejected and ignored - not a page of guest RAM, or permission 3 (undefined). A request the
 * guest gets wrong is the guest's error, as a device rejects a malformed command (QEMU logs
 * such a write as a guest error and goes on): it never ends the run. One a backend cannot
 * carry out (KVM without read-only memory, dirty logging on) does, naming the cause. */
#define PORT_SLP_STATUS 0x550

/* MMIO devices (accesses are MMIO exits on every backend). */
#define MMIO_SCRATCH (GUEST_MMIO_BASE + 0x0) /* 8-byte register: reads return what was written */
/* Anything else in [GUEST_RAM_END, GUEST_SPACE_END) is unassigned: an access ends the run. */

#endif
