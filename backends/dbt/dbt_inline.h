/* dbt_inline.h - the inline translations of CLI, STI, PUSHF and POPF (dbt_inline.c).
 *
 * Each appends to the emitter a host sequence with the instruction's effect on the virtual
 * flags and returns true, or emits nothing and returns false: the translator then writes a
 * callout into the emulation core instead (correct, only slower). This is the interface of
 * the binary-translation lab (labs/03-binary-translation), whose lab build compiles a
 * student's dbt_inline.c in place of this tree's one. `next` is the guest RIP after the
 * instruction, where STI and POPF leave translated code when the VMM waits for an interrupt
 * window.
 */
#ifndef VMLAB_DBT_INLINE_H
#define VMLAB_DBT_INLINE_H

#include <stdbool.h>
#include <stdint.h>

struct emitter;

bool dbt_emit_cli(struct emitter *e);
bool dbt_emit_sti(struct emitter *e, uint64_t next);
bool dbt_emit_pushf(struct emitter *e); /* PUSHFQ (the 16-bit form is always a callout) */
bool dbt_emit_popf(struct emitter *e, uint64_t next); /* POPFQ */

#endif
