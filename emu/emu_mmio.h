/* emu_mmio.h - instructions whose memory operand is MMIO, emulated as KVM's emulator does.
 *
 * The in-process backends see an access to the guest space outside RAM as a page fault (that
 * space is PROT_NONE). The instruction cannot run natively, so the core runs it here, in up to
 * three steps, each a call by the backend:
 *
 *   emu_mmio_start()     plans the instruction's memory accesses; a load from MMIO returns
 *                        EMU_MMIO_ACCESS (a read for the VMM, like KVM_EXIT_MMIO)
 *   emu_mmio_continue()  with the data read: computes the result (arithmetic and flags by the
 *                        CPU itself: emu_fastop.S), then a store to MMIO returns
 *                        EMU_MMIO_ACCESS (a write), or the instruction retires: EMU_MMIO_DONE
 *   emu_mmio_continue()  after the write: EMU_MMIO_DONE
 *
 * RAM accesses of the same instruction (the stack of PUSH [mmio], the other side of a MOVS)
 * are done directly. Supported, with operands of 1-8 bytes: MOV (all forms, and from a
 * segment register), MOVZX, MOVSX, MOVSXD, MOVBE, MOVNTI; ADD OR ADC SBB AND SUB XOR CMP TEST;
 * INC DEC NEG NOT; ROL ROR RCL RCR SHL SAL SHR SAR, SHLD SHRD; BT BTS BTR BTC (immediate or
 * register bit offset); XCHG XADD CMPXCHG CMPXCHG8B; MUL IMUL DIV IDIV (#DE as the CPU
 * raises it); BSF BSR POPCNT LZCNT TZCNT; SETcc CMOVcc; PUSH/POP/CALL/JMP with a memory
 * operand; with RSP (or RBP for LEAVE) in MMIO: PUSH POP CALL RET PUSHF POPF LEAVE, ENTER with
 * nesting level 0; CLFLUSH/CLFLUSHOPT/CLWB (no-ops: MMIO is uncached); string
 * MOVS STOS LODS CMPS SCAS (one element per execution: a REP form keeps RIP on itself until
 * it is done, so the backend simply runs it again). Anything else is
 * EMU_MMIO_UNSUPPORTED: vector and x87 operands (that state is not in struct vcpu_state),
 * far transfers, IRET and segment-register loads (trap_emulate cannot load a guest CS or
 * data selector into the real registers; KVM cannot emulate IRET in long mode either),
 * SGDT/SIDT/SMSW/STR (sensitive: native on trap_emulate), CMPXCHG16B, an access straddling
 * RAM and MMIO, two MMIO loads. Such an instruction is
 * EMU_MMIO_UNSUPPORTED with a message naming the instruction: the backend ends the run with
 * the documented emulation failure (VM_INTERNAL_EMULATION), never a guessed result.
 *
 * Async-signal-safe: no allocation, no stdio (trap_emulate calls it from its signal handler).
 */
#ifndef VMLAB_EMU_MMIO_H
#define VMLAB_EMU_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "emu.h"

struct emu_mmio_access {
    uint64_t gpa;
    uint32_t len; /* 1-8 */
    bool is_write;
    uint8_t data[8]; /* write data */
};

enum emu_mmio_status {
    EMU_MMIO_ACCESS,      /* the VMM performs m->access, then emu_mmio_continue() */
    EMU_MMIO_DONE,        /* retired: the state is updated, RIP included */
    EMU_MMIO_EXCEPTION,   /* deliver the exception in *res (RIP still at the instruction) */
    EMU_MMIO_UNSUPPORTED, /* m->why names the instruction: an emulation failure */
    EMU_MMIO_STATUS_MAX_VALUE = EMU_MMIO_UNSUPPORTED
};

/* One instruction in flight. Everything but access and why is private to emu_mmio.c. */
struct emu_mmio {
    struct emu_mmio_access access;
    char why[128];
    struct x86_decoded_insn insn;
    struct vcpu_state next; /* the state the instruction retires with */
    uint8_t phase, form;
    bool load, store, load_mmio, store_mmio, cmps_src_by_exit;
    unsigned load_size, store_size;
    uint64_t load_addr, store_addr, other_addr; /* linear */
    uint64_t load_gpa, store_gpa;               /* guest-physical, of an MMIO access */
    uint64_t value, result;
};

/* The instruction at state->rip (decoded in *insn) faulted on the MMIO window. */
enum emu_mmio_status emu_mmio_start(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                                    struct emu_mmio *m, struct emu_result *res);
/* The VMM performed m->access (read_data: the bytes read, for a read). */
enum emu_mmio_status emu_mmio_continue(struct emu_ctx *ctx, struct emu_mmio *m,
                                       const uint8_t *read_data, struct emu_result *res);

/* emu_fastop.S: run `op` (an emu_fop_* entry) with RAX, RDX, RCX = regs[0..2] and the
 * arithmetic flags of *rflags; regs and *rflags receive the results. */
void emu_fastop(const void *op, uint64_t regs[3], uint64_t *rflags);

#endif
