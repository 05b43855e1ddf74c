/* trace_print.c - format trace events with Capstone (see trace_print.h). */
#include "trace_print.h"

#include <assert.h>
#include <capstone/capstone.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../emu/emu_class.h"

static_assert(EMU_CLASS_COUNT <= 64, "--only keeps one bit per class in a uint64_t");

struct trace_printer {
    csh cs;
    FILE *out;
    uint64_t events;
    struct trace_options opts;
    bool filtering; /* --only given */
    /* counts of what passed the filters, for --summary */
    uint64_t by_class[EMU_CLASS_COUNT];
    uint64_t by_exit[VM_EXIT_REASON_MAX_VALUE + 1];
    uint64_t interrupts, exceptions, blocks, page_faults, dropped;
    const struct guest_memory *mem; /* the drained vCPU's: guest code of blocks */
};

int trace_class_by_name(const char *name)
{
    for (unsigned c = 1; c < EMU_CLASS_COUNT; c++)
        if (!strcmp(emu_class_info(c)->name, name))
            return (int)c;
    return -1;
}

/* Split a comma-separated list; call fn on each item. */
static int each_item(const char *list, int (*fn)(struct trace_options *, const char *),
                     struct trace_options *o, char *bad, size_t size)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", list);
    char *save = NULL;
    bool any = false;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        any = true;
        if (fn(o, t) < 0) {
            snprintf(bad, size, "%s", t);
            return -EINVAL;
        }
    }
    if (!any) {
        snprintf(bad, size, "(empty list)");
        return -EINVAL;
    }
    return 0;
}

static int only_item(struct trace_options *o, const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } kinds[] = {{"exit", TRACE_ONLY_EXIT},
                 {"interrupt", TRACE_ONLY_INTERRUPT},
                 {"exception", TRACE_ONLY_EXCEPTION},
                 {"block", TRACE_ONLY_BLOCK},
                 {"pagefault", TRACE_ONLY_PAGE_FAULT}};
    for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(name, kinds[i].name)) {
            o->only_kinds |= kinds[i].bit;
            return 0;
        }
    int c = trace_class_by_name(name);
    if (c < 0)
        return -EINVAL;
    o->only_classes |= 1ULL << c;
    return 0;
}

static int port_item(struct trace_options *o, const char *text)
{
    char *end;
    unsigned long p = strtoul(text, &end, 0);
    if (*end || end == text || p > 0xFFFF || o->exclude_port_count >= TRACE_MAX_EXCLUDED_PORTS)
        return -EINVAL;
    o->exclude_ports[o->exclude_port_count++] = (uint16_t)p;
    return 0;
}

int trace_options_parse_only(struct trace_options *o, const char *list, char *bad, size_t size)
{
    return each_item(list, only_item, o, bad, size);
}

int trace_options_parse_ports(struct trace_options *o, const char *list, char *bad, size_t size)
{
    return each_item(list, port_item, o, bad, size);
}

int trace_printer_create(struct trace_printer **out, FILE *stream, const struct trace_options *opts)
{
    struct trace_printer *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return -1;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &tp->cs) != CS_ERR_OK) {
        free(tp);
        return -1;
    }
    tp->out = stream;
    if (opts)
        tp->opts = *opts;
    else
        tp->opts.expect_trap = -1;
    tp->filtering = tp->opts.only_classes || tp->opts.only_kinds;
    *out = tp;
    return 0;
}

static bool port_excluded(const struct trace_printer *tp, unsigned port)
{
    for (unsigned i = 0; i < tp->opts.exclude_port_count; i++)
        if (tp->opts.exclude_ports[i] == port)
            return true;
    return false;
}

static bool is_port_class(unsigned cls)
{
    return cls == EMU_CLASS_IN || cls == EMU_CLASS_OUT || cls == EMU_CLASS_INS ||
           cls == EMU_CLASS_OUTS;
}

/* Whether an event passes --only and --exclude-port (and is counted for --summary). */
static bool event_shown(const struct trace_printer *tp, const struct trace_event *ev)
{
    switch (ev->kind) {
    case TRACE_EMULATED:
        /* IN/OUT note their port as old_value (emu_privileged.c, emu_string_io.c) */
        if (is_port_class(ev->emu_class) && ev->field && port_excluded(tp, (unsigned)ev->old_value))
            return false;
        return !tp->filtering ||
               (ev->emu_class < 64 && (tp->opts.only_classes >> ev->emu_class) & 1);
    case TRACE_INTERRUPT:
        return !tp->filtering || (tp->opts.only_kinds & TRACE_ONLY_INTERRUPT);
    case TRACE_EXCEPTION:
        return !tp->filtering || (tp->opts.only_kinds & TRACE_ONLY_EXCEPTION);
    case TRACE_BLOCK:
        return !tp->filtering || (tp->opts.only_kinds & TRACE_ONLY_BLOCK);
    case TRACE_PAGE_FAULT:
        return !tp->filtering || (tp->opts.only_kinds & TRACE_ONLY_PAGE_FAULT);
    default:
        return !tp->filtering || (tp->opts.only_kinds & TRACE_ONLY_EXIT);
    }
}

static void count_event(struct trace_printer *tp, const struct trace_event *ev)
{
    switch (ev->kind) {
    case TRACE_EMULATED:
        if (ev->emu_class < EMU_CLASS_COUNT)
            tp->by_class[ev->emu_class]++;
        break;
    case TRACE_INTERRUPT:
        tp->interrupts++;
        break;
    case TRACE_EXCEPTION:
        tp->exceptions++;
        break;
    case TRACE_BLOCK:
        tp->blocks++;
        break;
    case TRACE_PAGE_FAULT:
        tp->page_faults++;
        break;
    default:
        break;
    }
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
 * code is read from the guest-physical pages the translator read it from (the event names
 * them: the guest may have remapped its addresses since), when the trace is printed (a guest
 * that rewrote its code since shows the new bytes), the host code in the cache, both in the
 * process that ran the guest. */
static void print_block(struct trace_printer *tp, const struct trace_event *ev)
{
    uint8_t guest[8192];
    uint64_t size = ev->new_value < sizeof(guest) ? ev->new_value : sizeof(guest);
    for (uint64_t i = 0; i < size; i++) {
        uint64_t page = (ev->rip + i) / 4096 == ev->rip / 4096 ? ev->extra[0] : ev->extra[1];
        const uint8_t *p =
            tp->mem ? guest_ram_ptr(tp->mem, page + ((ev->rip + i) & 4095), 1) : NULL;
        guest[i] = p ? *p : 0;
    }
    const uint8_t *host = (const uint8_t *)(uintptr_t)ev->aux;
    cs_insn *gi = NULL, *hi = NULL;
    size_t gn = cs_disasm(tp->cs, guest, size, ev->rip, 0, &gi);
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

/* A fault the shadow MMU handled, with the walk that decided it (mmu/page_walk.c). */
static void print_page_fault(struct trace_printer *tp, const struct trace_event *ev)
{
    static const char *const level[4] = {"PML4E", "PDPTE", "PDE", "PTE"};
    fprintf(tp->out, "%#" PRIx64 "  %s: %s %#" PRIx64, ev->rip, ev->field ? ev->field : "fault",
            ev->new_value & 2    ? "write"
            : ev->new_value & 16 ? "fetch"
                                 : "read",
            ev->aux);
    if (ev->old_value)
        fprintf(tp->out, " -> guest-physical %#" PRIx64, ev->old_value);
    for (unsigned i = 0; i < ev->length && i < 4; i++)
        fprintf(tp->out, "%s%s %#" PRIx64, i ? ", " : "  walk: ", level[i], ev->extra[i]);
    fputc('\n', tp->out);
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
        if (ev->rip) /* the VMM injects between runs: it may not know the RIP */
            fprintf(tp->out, "%#" PRIx64 "  interrupt vector %u injected\n", ev->rip, ev->vector);
        else
            fprintf(tp->out, "%-10s  interrupt vector %u injected\n", "", ev->vector);
        break;
    case TRACE_BLOCK:
        print_block(tp, ev);
        break;
    case TRACE_PAGE_FAULT:
        print_page_fault(tp, ev);
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
    tp->mem = vcpu->vm->config.mem;
    while (r->tail != r->head) {
        const struct trace_event *ev = &r->events[r->tail % TRACE_RING_SIZE];
        if (event_shown(tp, ev)) {
            count_event(tp, ev);
            if (!tp->opts.summary)
                print_event(tp, ev);
        }
        r->tail++;
    }
    if (r->dropped) {
        tp->dropped += r->dropped;
        if (!tp->opts.summary)
            fprintf(tp->out, "trace: %u events were dropped (backend did not drain in time)\n",
                    r->dropped);
        r->dropped = 0;
    }
}

void trace_printer_exit(struct trace_printer *tp, const struct vm_exit *e)
{
    char desc[256];
    if (e->reason == VM_EXIT_IO && port_excluded(tp, e->io.port))
        return;
    if (tp->filtering && !(tp->opts.only_kinds & TRACE_ONLY_EXIT))
        return;
    if (e->reason <= VM_EXIT_REASON_MAX_VALUE)
        tp->by_exit[e->reason]++;
    if (tp->opts.summary)
        return;
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

void trace_printer_finish(struct trace_printer *tp, const char *backend,
                          const struct vcpu_stats *stats)
{
    FILE *o = tp->out;
    if (tp->opts.summary) {
        fprintf(o, "trace summary (%s%s):\n", backend,
                tp->filtering || tp->opts.exclude_port_count ? ", filtered" : "");
        fprintf(o, "  %-30s %12s  %s\n", "emulated instructions", "count", "category");
        for (unsigned c = 0; c < EMU_CLASS_COUNT; c++)
            if (tp->by_class[c])
                fprintf(o, "    %-28s %12" PRIu64 "  %s\n", emu_class_info(c)->name,
                        tp->by_class[c], pg_category_name(emu_class_info(c)->category));
        fprintf(o, "  %-30s %12s\n", "exits by reason", "count");
        for (unsigned r = 0; r <= VM_EXIT_REASON_MAX_VALUE; r++)
            if (tp->by_exit[r])
                fprintf(o, "    %-28s %12" PRIu64 "\n", vm_exit_reason_name(r), tp->by_exit[r]);
        fprintf(o, "  %-30s %12" PRIu64 "\n", "interrupts injected", tp->interrupts);
        fprintf(o, "  %-30s %12" PRIu64 "\n", "exceptions to the guest IDT", tp->exceptions);
        if (tp->blocks)
            fprintf(o, "  %-30s %12" PRIu64 "\n", "blocks translated", tp->blocks);
        if (tp->page_faults)
            fprintf(o, "  %-30s %12" PRIu64 "\n", "page faults (shadow MMU)", tp->page_faults);
        if (tp->dropped)
            fprintf(o, "  %-30s %12" PRIu64 "  (not counted above)\n", "events dropped",
                    tp->dropped);
    }
    int c = tp->opts.expect_trap;
    if (c > 0 && c < EMU_CLASS_COUNT && stats) {
        const char *name = emu_class_info((unsigned)c)->name;
        uint64_t trapped = stats->emulated[c], native = stats->native[c];
        fprintf(o,
                "expect-trap %s: executed %" PRIu64 " time%s, trapped %" PRIu64
                ", ran natively without trapping %" PRIu64 "\n",
                name, trapped + native, trapped + native == 1 ? "" : "s", trapped, native);
        fprintf(o,
                "  (counted by single-stepping the guest with RFLAGS.TF: %" PRIu64
                " guest instructions stepped; a trapped one is emulated instead)\n",
                stats->steps);
        if (native)
            fprintf(o, "  %s is %s: it ran at CPL 3 without a fault, so the VMM never saw it\n",
                    name, pg_category_name(emu_class_info((unsigned)c)->category));
    }
}
