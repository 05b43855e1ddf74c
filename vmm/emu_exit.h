/* emu_exit.h - turning what the emulation core asks of the VMM into an exit record, the same
 * way for every backend that emulates (trap_emulate, dbt). Async-signal-safe. */
#ifndef VMLAB_EMU_EXIT_H
#define VMLAB_EMU_EXIT_H

#include "../emu/emu.h"
#include "../emu/emu_mmio.h"
#include "vm_exit.h"

/* The io part of a VM_EXIT_IO exit from the core's port access (OUT data copied; an IN's data
 * comes back from the VMM on the next run). The caller sets reason and RIP. */
void emu_exit_fill_io(struct vm_exit *exit, const struct emu_io *io);

/* The mmio part of a VM_EXIT_MMIO exit for the access the core's MMIO emulation asks for. */
void emu_exit_fill_mmio(struct vm_exit *exit, const struct emu_mmio_access *access);

/* A VM_EXIT_INTERNAL_ERROR exit for an instruction the MMIO emulation does not handle:
 * suberror VM_INTERNAL_EMULATION, the message naming the instruction. */
void emu_exit_fill_mmio_failure(struct vm_exit *exit, const struct emu_mmio *mmio);

#endif
