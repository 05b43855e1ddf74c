/* trace_print.c - format trace events with Capstone (see trace_print.h). */
#include "trace_print.h"

#include <capstone/capstone.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../emu/emu_class.h"

struct trace_printer {
    csh cs;
    FILE *out;
    uint64_t events;
};

int trace_printer_create(struct trace_printer **out, FILE *stream)
{
    struct trace_printer *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return -1;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &tp->cs) != CS_ERR_OK) {
        free(tp);
        return -1;
    }
    tp->out = stream;
    *out = tp;
    return 0;
}

void trace_printer_destroy(struct trace_printer *tp)
{
    if (!tp)
        return;
    cs_close(&tp->cs);
    free(tp);
}

static void disassemble(struct trace_printer *tp, const struct trace_event *ev, char *buf,
                        size_t size)
{
    cs_insn *insn = NULL;
    size_t n = cs_disasm(tp->cs, ev->bytes, ev->length, ev->rip, 1, &insn);
    if (n == 1)
        snprintf(buf, size, "%s %s", insn->mnemonic, insn->op_str);
    else
        snprintf(buf, size, "(bad)");
    if (insn)
        cs_free(insn, n);
    size_t len = strlen(buf);
    while (len && buf[len - 1] == ' ')
        buf[--len] = 0;
}

/* dbt: a translated block, guest instructions and emitted host code side by side. The guest
 * code is read at its guest address, which is also its host address (GVA == HVA), and the
 * host code in the cache, both in the process that ran the guest. */
static void print_block(struct trace_printer *tp, const struct trace_event *ev)
{
    const uint8_t *guest = (const uint8_t *)(uintptr_t)ev->rip;
    const uint8_t *host = (const uint8_t *)(uintptr_t)ev->aux;
    cs_insn *gi = NULL, *hi = NULL;
    size_t gn = cs_disasm(tp->cs, guest, ev->new_value, ev->rip, 0, &gi);
    size_t hn = cs_disasm(tp->cs, host, ev->old_value, ev->aux, 0, &hi);
    fprintf(tp->out,
            "%#" PRIx64 "  block translated: %" PRIu64 " guest bytes -> %" PRIu64
            " host bytes at %#" PRIx64 "\n",
            ev->rip, ev->new_value, ev->old_value, ev->aux);
    fprintf(tp->out, "    %-44s | %s\n", "guest", "host (code cache)");
    for (size_t i = 0; i < gn || i < hn; i++) {
        char left[256] = "", right[256] = "";
        if (i < gn)
            snprintf(left, sizeof(left), "%#" PRIx64 " %s %s", gi[i].address, gi[i].mnemonic,
                     gi[i].op_str);
        if (i < hn)
            snprintf(right, sizeof(right), "%s %s", hi[i].mnemonic, hi[i].op_str);
        fprintf(tp->out, "    %-44s | %s\n", left, right);
    }
    if (gi)
        cs_free(gi, gn);
    if (hi)
        cs_free(hi, hn);
}

static void print_event(struct trace_printer *tp, const struct trace_event *ev)
{
    char text[200], bytes[48] = "";
    for (unsigned i = 0; i < ev->length && i < 15; i++)
        snprintf(bytes + 3 * i, sizeof(bytes) - 3 * i, "%02x ", ev->bytes[i]);
    switch (ev->kind) {
    case TRACE_EMULATED:
        disassemble(tp, ev, text, sizeof(text));
        fprintf(tp->out, "%#" PRIx64 "  %-24s %-28s [%s]", ev->rip, bytes, text,
                emu_class_info(ev->emu_class)->name);
        if (ev->field) {
            /* small values (flags, selectors' RPL) read best in decimal */
            if (ev->old_value < 10 && ev->new_value < 10)
                fprintf(tp->out, "  %s %" PRIu64 "->%" PRIu64, ev->field, ev->old_value,
                        ev->new_value);
            else
                fprintf(tp->out, "  %s %#" PRIx64 "->%#" PRIx64, ev->field, ev->old_value,
                        ev->new_value);
        }
        if (ev->rip_delta > 0)
            fprintf(tp->out, "  rip += %d", ev->rip_delta);
        else if (ev->rip_delta == 0)
            fprintf(tp->out, "  rip unchanged");
        else
            fprintf(tp->out, "  rip -> %#" PRIx64, ev->aux);
        fputc('\n', tp->out);
        break;
    case TRACE_EXCEPTION:
        fprintf(tp->out,
                "%#" PRIx64 "  exception vector %u delivered to guest IDT (error %#" PRIx64 ")\n",
                ev->rip, ev->vector, ev->aux);
        break;
    case TRACE_INTERRUPT:
        fprintf(tp->out, "%#" PRIx64 "  interrupt vector %u injected\n", ev->rip, ev->vector);
        break;
    case TRACE_BLOCK:
        print_block(tp, ev);
        break;
    case TRACE_EXIT:
    default:
        fprintf(tp->out, "%#" PRIx64 "  exit %" PRIu64 "\n", ev->rip, ev->aux);
        break;
    }
    tp->events++;
}

void trace_printer_drain(struct trace_printer *tp, struct vcpu *vcpu)
{
    struct trace_ring *r = vcpu->trace;
    if (!r)
        return;
    while (r->tail != r->head) {
        print_event(tp, &r->events[r->tail % TRACE_RING_SIZE]);
        r->tail++;
    }
    if (r->dropped) {
        fprintf(tp->out, "trace: %u events were dropped (backend did not drain in time)\n",
                r->dropped);
        r->dropped = 0;
    }
}

void trace_printer_exit(struct trace_printer *tp, const struct vm_exit *e)
{
    char desc[256];
    if (e->reason == VM_EXIT_IO && e->io.direction == VM_IO_OUT && e->io.count <= 1) {
        uint32_t v = 0;
        memcpy(&v, e->io.data, e->io.size);
        fprintf(tp->out, "%#" PRIx64 "  exit IO out port %#x size %u value %#x\n", e->rip,
                e->io.port, e->io.size, v);
        return;
    }
    vm_exit_describe(e, desc, sizeof(desc));
    fprintf(tp->out, "%#" PRIx64 "  exit %s: %s\n", e->rip, vm_exit_reason_name(e->reason), desc);
}
