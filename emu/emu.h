/* emu.h - the emulation core: the semantics of every sensitive instruction, written once.
 *
 * trap_emulate calls emu_execute() from its signal handler after decoding the instruction at
 * the faulting RIP; dbt calls it from the callouts its translated code makes. Both hand over
 * the full architectural state (struct vcpu_state) and guest memory; the core changes the
 * state as the CPU would at CPL 0 (Intel SDM vol. 2, per instruction) and says what the
 * backend must do next.
 *
 * Everything here is async-signal-safe: no allocation, no locks, no stdio.
 */
#ifndef VMLAB_EMU_H
#define VMLAB_EMU_H

#include <stdbool.h>
#include <stdint.h>

#include "../vmm/guest_memory.h"
#include "vcpu_state.h"
#include "x86_decode.h"

enum emu_status {
    EMU_OK,        /* emulated: state (rip included) updated, go on */
    EMU_EXIT_IO,   /* port I/O for the VMM: see result.io; for IN the instruction completes
                      with emu_complete_in() once the data is known */
    EMU_EXIT_HLT,  /* HLT: rip already past it */
    EMU_EXCEPTION, /* the instruction raises a guest exception: result.vector/error_code;
                      deliver with emu_deliver_event() (rip still at the instruction) */
    EMU_SHUTDOWN,  /* triple fault */
    EMU_UNHANDLED, /* not a sensitive instruction this core emulates */
    EMU_STATUS_MAX_VALUE = EMU_UNHANDLED
};

struct emu_io {
    uint8_t direction; /* enum vm_io_direction */
    uint8_t size;      /* 1, 2, 4 */
    uint16_t port;
    uint32_t count; /* iterations in this chunk (REP string forms), else 1 */
    bool string;    /* INS/OUTS */
    bool rep;
    uint8_t data[4096]; /* OUT: the bytes written (count * size) */
};

struct emu_result {
    enum emu_status status;
    enum emu_class cls;
    /* EMU_EXCEPTION */
    uint8_t vector;
    bool has_error_code;
    uint32_t error_code;
    uint64_t cr2;
    /* EMU_EXIT_IO */
    struct emu_io io;
    /* What changed, for the trace: e.g. field "IF_virt", 1 -> 0. field NULL if nothing named. */
    const char *field;
    uint64_t old_value, new_value;
    /* STI/POPF/IRET turned IF on: an interrupt window may have opened. */
    bool interrupts_enabled_now;
};

/* Which cached translations an instruction invalidated (Intel SDM vol. 3A 4.10.4). */
enum emu_tlb_flush {
    EMU_TLB_CR3,  /* MOV to CR3: a new address space (state->cr3 already holds it) */
    EMU_TLB_PAGE, /* INVLPG: the translations of one linear page */
    EMU_TLB_ALL,  /* paging control changed (CR0.PG/WP, CR4 paging bits, EFER.NXE), INVPCID */
    EMU_TLB_FLUSH_MAX_VALUE = EMU_TLB_ALL
};

/* How the core tells the software MMU that shadows the guest's translations what it did (the
 * shadow MMU of trap_emulate and dbt; NULL when nobody shadows them, as under vtx or in unit
 * tests). Called from signal handlers: must be async-signal-safe. */
struct emu_mmu_hooks {
    void *arg;
    void (*tlb_flush)(void *arg, enum emu_tlb_flush kind, uint64_t gla);
    /* The core wrote guest-physical memory (an emulated store, a delivery frame, string IN):
     * what was derived from it (shadow entries, translated code) may be stale. */
    void (*phys_written)(void *arg, uint64_t gpa, uint64_t len);
};

/* Emulation context: the state and memory of one vCPU. Every guest memory access the core
 * makes is by linear address, translated through the guest's page tables (mmu/page_walk.h),
 * and performed on guest-physical memory (mem). */
struct emu_ctx {
    struct vcpu_state *state;
    const struct guest_memory *mem;
    const struct emu_mmu_hooks *mmu; /* may be NULL */
    /* CPUID and RDTSC are emulated only when the backend could trap them; the core emulates
     * them whenever asked. */
};

/* Emulate the decoded instruction at state->rip (insn->rip == state->rip). */
void emu_execute(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out);

/* Perform an ordinary instruction that writes memory (MOV, XCHG, CMPXCHG, OR/AND/XOR/ADD/SUB,
 * INC/DEC/NOT/NEG, BTS/BTR/BTC to memory; STOS, MOVS) through the guest's page tables, for a
 * backend that could not let it run natively (a store to a traced page table). EMU_OK with
 * RIP past it, EMU_EXCEPTION, or EMU_UNHANDLED for any other instruction. */
void emu_execute_store(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                       struct emu_result *out);

/* Complete an IN/INS after the VMM supplied the data (count * size bytes): writes RAX or guest
 * memory, updates RCX/RDI for string forms and advances RIP once the instruction is done
 * (a REP INS with iterations left keeps RIP so that it runs again). */
void emu_complete_in(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     const struct emu_io *io, const uint8_t *data, struct emu_result *out);

enum emu_event_kind {
    EMU_EVENT_EXTERNAL,  /* external interrupt (timer): return to state->rip */
    EMU_EVENT_EXCEPTION, /* fault: return to state->rip (the faulting instruction) */
    EMU_EVENT_TRAP,      /* trap-like exception (#BP, #DB): return to state->rip (past it) */
    EMU_EVENT_SOFTWARE,  /* INT n: state->rip already past the instruction */
};

/* Deliver an interrupt or exception through the guest IDT as the CPU does in 64-bit mode
 * (SDM vol. 3A 6.14): read the gate (a target that is not canonical is #GP), switch to the
 * gate's IST stack if it names one (TSS.RSP0 is not used: the guest always runs at CPL 0),
 * align RSP to 16, push SS, RSP, RFLAGS, CS, RIP and the error code, clear IF for interrupt
 * gates, clear TF/NT/RF, jump to the handler. A fault while doing so is delivered in turn
 * (#DF where two faults combine so, SDM vol. 3A table 6-5), a fault while delivering #DF a
 * triple fault: EMU_SHUTDOWN.
 * Returns EMU_OK or EMU_SHUTDOWN; out->field describes the delivery. */
enum emu_status emu_deliver_event(struct emu_ctx *ctx, enum emu_event_kind kind, uint8_t vector,
                                  bool has_error_code, uint32_t error_code, struct emu_result *out);

/* Whether an external interrupt can be delivered now (virtual IF set, no shadow). */
bool emu_interrupts_enabled(const struct vcpu_state *state);

/* vmlab's virtual CPUID (same leaves on every backend; vtx passes them to KVM_SET_CPUID2).
 * Vendor string EMU_CPUID_VENDOR. */
#define EMU_CPUID_VENDOR "vmlabVIRTCPU"
void emu_cpuid(const struct vcpu_state *state, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
/* The leaves vmlab defines, for KVM_SET_CPUID2: fills up to max entries of {leaf, subleaf}. */
unsigned emu_cpuid_leaves(uint32_t (*leaves)[2], unsigned max);

/* Virtual time: nanoseconds of CLOCK_MONOTONIC read with a raw syscall (safe while RDTSC
 * faults), and the virtual TSC (1 GHz) derived from it. */
uint64_t emu_time_ns(void);
uint64_t emu_virtual_tsc(const struct vcpu_state *state);

/* Fetch up to `max` (<= 15) instruction bytes at linear address `rip` through the guest's
 * tables, without setting accessed flags (the fetch already happened natively, or the caller
 * only looks). Returns the number of bytes fetched (fewer at a page that cannot be fetched);
 * 0 with *error_code = the #PF error code when not even the first byte can. */
unsigned emu_fetch(const struct emu_ctx *ctx, uint64_t rip, uint8_t *bytes, unsigned max,
                   uint32_t *error_code);

/* Read / write a register named by Zydis with x86-64 width rules (32-bit writes zero-extend,
 * 8/16-bit writes merge; AH..BH are the high bytes). Segment registers read as selectors. */
uint64_t emu_reg_read(const struct vcpu_state *state, ZydisRegister reg);
void emu_reg_write(struct vcpu_state *state, ZydisRegister reg, uint64_t value);

/* The architectural state at reset of the guest model: long mode, CPL 0, paging with the
 * platform page tables, IF = 0, RSP = GUEST_STACK_TOP, RIP = entry. */
void emu_reset_state(struct vcpu_state *state, uint64_t entry);

#endif
