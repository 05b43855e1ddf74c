/* platform.h - what the "firmware" puts in guest RAM before the guest's first instruction. */
#ifndef VMLAB_PLATFORM_H
#define VMLAB_PLATFORM_H

#include <stdint.h>

#include "guest_memory.h"

/* Write the initial GDT, TSS, default IDT + exception-report stubs and the identity page
 * tables into the platform area. The values match emu_reset_state(). */
void platform_setup(struct guest_memory *mem);

/* The frame a report stub leaves on the guest stack before its OUT to PORT_EXC_REPORT
 * (lowest address first). */
struct platform_exception_frame {
    uint64_t cr2, rax, vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss; /* the CPU's interrupt frame */
};

/* Vectors for which the CPU pushes an error code (Intel SDM vol. 3A 6.13, table 6-1). */
int platform_vector_has_error_code(unsigned vector);

#endif
