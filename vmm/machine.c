/* machine.c - the VMM run loop every backend shares (see machine.h).
 *
 *   image -> guest RAM (platform area + ELF) -> backend vm/vcpu -> loop:
 *       deliver a pending timer interrupt if the guest can take it (else ask for a window)
 *       arm the kick timer at min(next timer tick, budget deadline)
 *       vcpu_run() -> exit record -> devices / HLT wait / final ending
 */
#define _GNU_SOURCE
#include "machine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../emu/emu.h"
#include "../mmu/page_walk.h"
#include "../mmu/shadow_mmu.h"
#include "devices.h"
#include "elf_loader.h"
#include "guest_layout.h"
#include "kick.h"
#include "platform.h"
#include "trace_print.h"

#define MACHINE_DEFAULT_TIMEOUT_S 5.0

void machine_config_defaults(struct machine_config *c)
{
    memset(c, 0, sizeof(*c));
    c->timeout_s = MACHINE_DEFAULT_TIMEOUT_S;
    c->trap_cpuid = true;
    c->trap_rdtsc = true;
    c->shadow_roots = SHADOW_DEFAULT_ROOTS;
    c->console_out = stdout;
    c->trace_out = stderr;
}

static void set_message(struct machine_result *r, int status, const char *fmt, const char *detail)
{
    r->status = status;
    snprintf(r->message, sizeof(r->message), fmt, detail);
}

/* Load the guest image (ELF or raw code) into RAM; returns the entry point or 0 on error. */
static uint64_t load_image(const struct machine_config *c, struct guest_memory *mem,
                           struct machine_result *r)
{
    char err[200];
    if (c->raw_code) {
        if (c->raw_size > GUEST_STACK_TOP - GUEST_STACK_RESERVE - GUEST_IMAGE_BASE) {
            set_message(r, VMLAB_STATUS_BAD_IMAGE, "raw code too large (%s)", "");
            return 0;
        }
        memcpy(guest_ram_ptr(mem, GUEST_IMAGE_BASE, c->raw_size), c->raw_code, c->raw_size);
        return GUEST_IMAGE_BASE;
    }
    uint8_t *data = NULL;
    size_t size = 0;
    int rc = elf_read_file(c->image_path, ELF_LOADER_MAX_FILE_SIZE, &data, &size, err, sizeof(err));
    if (rc < 0) {
        set_message(r, rc == -ENOENT ? VMLAB_STATUS_NO_INPUT : VMLAB_STATUS_BAD_IMAGE, "%s", err);
        return 0;
    }
    struct elf_image img;
    rc = elf_parse(data, size, &img, err, sizeof(err));
    if (rc == 0)
        rc = elf_load(&img, data, size, mem, err, sizeof(err));
    free(data);
    if (rc < 0) {
        set_message(r, VMLAB_STATUS_BAD_IMAGE, "bad guest image: %s", err);
        return 0;
    }
    return img.entry;
}

struct run_loop {
    const struct machine_config *config;
    struct machine_result *result;
    struct vcpu *vcpu;
    struct guest_memory *mem;
    struct devices dev;
    struct kick_timer kick;
    struct trace_printer *tracer;
    uint64_t deadline_ns;
};

static void emit_backend_stat(void *ctx, const char *name, uint64_t value, const char *unit)
{
    struct machine_result *r = ctx;
    if (r->backend_stat_count >= sizeof(r->backend_stats) / sizeof(r->backend_stats[0]))
        return;
    unsigned i = r->backend_stat_count++;
    snprintf(r->backend_stats[i].name, sizeof(r->backend_stats[i].name), "%s", name);
    snprintf(r->backend_stats[i].unit, sizeof(r->backend_stats[i].unit), "%s", unit ? unit : "");
    r->backend_stats[i].value = value;
}

/* Give the pending timer interrupt to the guest if it can take it now. */
static void deliver_timer(struct run_loop *L)
{
    if (!L->dev.timer_pending)
        return;
    const struct backend_ops *ops = L->vcpu->vm->ops;
    if (ops->vcpu_inject_interrupt(L->vcpu, L->dev.timer_vector) == 0) {
        L->dev.timer_pending = false;
        L->dev.timer_ticks_delivered++;
        L->vcpu->stats.interrupts_injected++;
        L->vcpu->request_interrupt_window = false;
        if (L->vcpu->trace) {
            struct trace_event *ev = trace_ring_push(L->vcpu->trace);
            if (ev) {
                memset(ev, 0, sizeof(*ev));
                ev->kind = TRACE_INTERRUPT;
                ev->vector = L->dev.timer_vector;
            }
        }
    } else {
        L->vcpu->request_interrupt_window = true;
    }
}

static void wait_until(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000ULL),
                          .tv_nsec = (long)(t_ns % 1000000000ULL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void finish_exception_report(struct run_loop *L, struct vm_exit *e)
{
    struct platform_exception_frame f;
    struct machine_result *r = L->result;
    memset(&r->last_exit, 0, sizeof(r->last_exit));
    r->last_exit.reason = VM_EXIT_EXCEPTION;
    /* The stub reports the frame's linear address: read it through the guest's own tables,
     * leaving no accessed flags behind. */
    struct vcpu_state st;
    struct mmu_paging pg;
    bool readable = L->vcpu->vm->ops->vcpu_get_state(L->vcpu, &st) == 0;
    if (readable) {
        mmu_paging_from_state(&st, &pg);
        readable = mmu_read_linear(L->mem, &pg, L->dev.report_frame_gla, &f, sizeof(f),
                                   MMU_READ | MMU_INSPECT, NULL) == MMU_WALK_OK;
    }
    if (!readable) {
        r->last_exit.rip = e->rip;
        r->last_exit.exception.vector = 0xFF;
        snprintf(r->message, sizeof(r->message),
                 "guest exception reported with an unreadable frame at 0x%" PRIx64,
                 L->dev.report_frame_gla);
        r->status = VMLAB_STATUS_EXCEPTION;
        return;
    }
    r->last_exit.rip = f.rip;
    r->last_exit.exception.vector = (uint8_t)f.vector;
    r->last_exit.exception.has_error_code = platform_vector_has_error_code((unsigned)f.vector);
    r->last_exit.exception.error_code = (uint32_t)f.error_code;
    r->last_exit.exception.cr2 = f.cr2;
    vm_exit_describe(&r->last_exit, r->message, sizeof(r->message));
    r->status = VMLAB_STATUS_EXCEPTION;
}

/* A second-level permission the guest asked for (PORT_SLP_*), or the lifting of one after a
 * violation exit. 0, or 1 with the run ended: a backend that cannot do it says so, never
 * silently ignores it. A request that is the guest's mistake (-EINVAL: not a page of its RAM)
 * is rejected, as a device rejects a malformed command: PORT_SLP_STATUS tells the guest,
 * --stats counts it (slp_requests_rejected), the run goes on. A backend that cannot deliver
 * #VE (vtx: KVM does not expose it to a userspace VMM) leaves the information area unset:
 * violations are then exits, which is what the guest can observe. */
static int second_level(struct run_loop *L, bool guest_request, bool ve_info, uint64_t gpa,
                        unsigned permission, bool convertible)
{
    struct vm *vm = L->vcpu->vm;
    const struct backend_ops *ops = vm->ops;
    int rc;
    if (ve_info && gpa && !guest_ram_contains(vm->config.mem, gpa, 40)) {
        rc = -EINVAL; /* on every backend, also one that cannot deliver #VE */
    } else if (ve_info) {
        rc = ops->vcpu_set_ve_info ? ops->vcpu_set_ve_info(L->vcpu, gpa) : -EOPNOTSUPP;
        if (rc == -EOPNOTSUPP)
            rc = 0;
    } else {
        rc = ops->vm_set_slp ? ops->vm_set_slp(vm, gpa, permission, convertible) : -EOPNOTSUPP;
    }
    if (guest_request && (rc == 0 || rc == -EINVAL)) {
        L->dev.slp_status = (uint32_t)-rc;
        L->dev.slp_rejected += rc != 0;
        return 0;
    }
    if (rc == 0)
        return 0;
    L->result->status = VMLAB_STATUS_INTERNAL;
    snprintf(L->result->message, sizeof(L->result->message),
             "backend %s cannot set the second-level %s of guest-physical 0x%" PRIx64 ": %s",
             ops->name, ve_info ? "#VE information area" : "permission", gpa, strerror(-rc));
    return 1;
}

struct stat_probe {
    const char *name;
    uint64_t value;
};

static void probe_stat(void *ctx, const char *name, uint64_t value, const char *unit)
{
    (void)unit;
    struct stat_probe *p = ctx;
    if (!strcmp(name, p->name))
        p->value = value;
}

/* Benchmark mark `i` was just timestamped: config.mark_cpu_time and config.mark_stat. */
static void sample_mark(struct run_loop *L, unsigned i)
{
    const struct backend_ops *ops = L->config->backend;
    if (i >= 64)
        return;
    if (L->config->mark_cpu_time) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        L->result->mark_cpu_ns[i] = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    }
    if (L->config->mark_stat && ops->vcpu_stats) {
        uint64_t t0 = emu_time_ns();
        struct stat_probe p = {.name = L->config->mark_stat};
        ops->vcpu_stats(L->vcpu, probe_stat, &p);
        L->result->mark_stat[i] = p.value;
        L->result->mark_stat_ns[i] = emu_time_ns() - t0;
    }
}

/* One exit: 1 = the run is over, 0 = go on. */
static int handle_exit(struct run_loop *L, struct vm_exit *e)
{
    struct machine_result *r = L->result;
    uint64_t now = emu_time_ns();
    switch (e->reason) {
    case VM_EXIT_IO: {
        unsigned marks = L->dev.mark_count;
        enum device_result action = devices_io(&L->dev, e, now);
        if (L->dev.mark_count != marks)
            sample_mark(L, marks);
        switch (action) {
        case DEVICE_GUEST_EXIT:
            r->guest_exited = true;
            r->status = L->dev.exit_status;
            r->last_exit = *e;
            r->message[0] = 0;
            return 1;
        case DEVICE_EXCEPTION_REPORT:
            finish_exception_report(L, e);
            return 1;
        case DEVICE_SLP_REQUEST:
            return second_level(L, true, L->dev.slp_request.ve_info, L->dev.slp_request.gpa,
                                L->dev.slp_request.permission, L->dev.slp_request.convertible);
        default:
            return 0;
        }
    }
    case VM_EXIT_MMIO:
        if (devices_mmio(&L->dev, e) == DEVICE_CONTINUE)
            return 0;
        r->last_exit = *e;
        r->status = VMLAB_STATUS_MMIO;
        vm_exit_describe(e, r->message, sizeof(r->message));
        return 1;
    case VM_EXIT_SLP_VIOLATION:
        /* What a VMM does with write protection for dirty logging: note it, lift the
         * restriction from that page, and let the access complete. */
        L->dev.slp_exits++;
        L->dev.slp_last_gpa = e->slp.gpa;
        if (second_level(L, false, false, e->slp.gpa & ~0xFFFULL, VM_SLP_FULL, false)) {
            r->last_exit = *e;
            return 1;
        }
        return 0;
    case VM_EXIT_HLT:
        if (e->hlt.interrupts_enabled && (L->dev.timer_period_ns || L->dev.timer_pending)) {
            /* Wait for the next tick like an idle CPU; the loop injects it. */
            uint64_t next = L->dev.timer_pending ? now : L->dev.timer_next_ns;
            wait_until(next < L->deadline_ns ? next : L->deadline_ns);
            return 0;
        }
        r->last_exit = *e;
        r->status = VMLAB_STATUS_HALTED;
        vm_exit_describe(e, r->message, sizeof(r->message));
        return 1;
    case VM_EXIT_INTR:
    case VM_EXIT_IRQ_WINDOW_OPEN:
    case VM_EXIT_DEBUG:
    case VM_EXIT_NONE:
        return 0;
    case VM_EXIT_EXCEPTION:
        r->last_exit = *e;
        r->status = VMLAB_STATUS_EXCEPTION;
        break;
    case VM_EXIT_SHUTDOWN:
        r->last_exit = *e;
        r->status = VMLAB_STATUS_SHUTDOWN;
        break;
    case VM_EXIT_BUDGET:
        r->last_exit = *e;
        r->status = VMLAB_STATUS_BUDGET;
        break;
    case VM_EXIT_FAIL_ENTRY:
        r->last_exit = *e;
        r->status = VMLAB_STATUS_FAIL_ENTRY;
        break;
    default:
        r->last_exit = *e;
        r->status = VMLAB_STATUS_INTERNAL;
        break;
    }
    vm_exit_describe(e, r->message, sizeof(r->message));
    return 1;
}

static int run_loop(struct run_loop *L)
{
    struct vm_exit *exit = calloc(1, sizeof(*exit));
    if (!exit)
        return -ENOMEM;
    const struct backend_ops *ops = L->vcpu->vm->ops;
    int rc = 0;
    for (;;) {
        uint64_t now = emu_time_ns();
        if (now >= L->deadline_ns) {
            struct vcpu_state st;
            memset(&L->result->last_exit, 0, sizeof(L->result->last_exit));
            L->result->last_exit.reason = VM_EXIT_BUDGET;
            L->result->last_exit.budget.kind = VM_BUDGET_TIME;
            if (ops->vcpu_get_state(L->vcpu, &st) == 0)
                L->result->last_exit.rip = st.rip;
            L->result->status = VMLAB_STATUS_BUDGET;
            vm_exit_describe(&L->result->last_exit, L->result->message, sizeof(L->result->message));
            break;
        }
        uint64_t next_tick = devices_timer_poll(&L->dev, now);
        deliver_timer(L);
        uint64_t wake = next_tick < L->deadline_ns ? next_tick : L->deadline_ns;
        kick_timer_arm(&L->kick, wake);
        L->vcpu->kick_pending = 0;
        exit->reason = VM_EXIT_NONE;
        rc = ops->vcpu_run(L->vcpu, exit);
        if (L->tracer)
            trace_printer_drain(L->tracer, L->vcpu);
        if (rc < 0) {
            snprintf(L->result->message, sizeof(L->result->message),
                     "backend %s failed to run the guest: %s", ops->name, strerror(-rc));
            L->result->status = VMLAB_STATUS_INTERNAL;
            break;
        }
        if (exit->reason <= VM_EXIT_REASON_MAX_VALUE)
            L->vcpu->stats.exits[exit->reason]++;
        if (L->tracer && exit->reason != VM_EXIT_INTR && exit->reason != VM_EXIT_NONE)
            trace_printer_exit(L->tracer, exit);
        if (handle_exit(L, exit))
            break;
    }
    free(exit);
    return rc;
}

int machine_run(const struct machine_config *config, struct machine_result *result)
{
    memset(result, 0, sizeof(*result));
    const struct backend_ops *ops = config->backend;
    char reason[200] = "";
    if (!ops || backend_check_ops(ops) < 0) {
        set_message(result, VMLAB_STATUS_USAGE, "%s", "no usable backend given");
        return -EINVAL;
    }
    int rc = ops->probe(reason, sizeof(reason));
    if (rc < 0) {
        result->status = VMLAB_STATUS_UNAVAILABLE;
        snprintf(result->message, sizeof(result->message), "backend %s unavailable: %s", ops->name,
                 reason);
        return rc;
    }
    struct run_loop L;
    memset(&L, 0, sizeof(L));
    L.config = config;
    L.result = result;
    rc = guest_memory_create(ops->memory_flags, &L.mem);
    if (rc < 0) {
        result->status = VMLAB_STATUS_INTERNAL;
        snprintf(result->message, sizeof(result->message), "cannot create guest memory: %s%s",
                 strerror(-rc),
                 rc == -EBUSY ? " (the guest window at 1 GiB is already in use)" : "");
        return rc;
    }
    platform_setup(L.mem);
    uint64_t entry = load_image(config, L.mem, result);
    if (!entry) {
        guest_memory_destroy(L.mem);
        return -EINVAL;
    }
    kick_install_fallback_handler();
    struct vm_config vc = {.mem = L.mem,
                           .trace = config->trace,
                           .trap_cpuid = config->trap_cpuid,
                           .trap_rdtsc = config->trap_rdtsc,
                           .shadow_roots_set = true,
                           .shadow_roots = config->shadow_roots,
                           .count_native = config->trace && config->trace_options &&
                                           config->trace_options->expect_trap >= 0};
    struct vm *vm = NULL;
    rc = ops->vm_create(&vc, &vm);
    if (rc == 0) {
        rc = ops->vcpu_create(vm, &L.vcpu);
        if (rc < 0)
            ops->vm_destroy(vm);
    }
    if (rc < 0) {
        result->status = VMLAB_STATUS_INTERNAL;
        snprintf(result->message, sizeof(result->message), "backend %s could not create the VM: %s",
                 ops->name, strerror(-rc));
        guest_memory_destroy(L.mem);
        return rc;
    }
    struct vcpu_state st;
    emu_reset_state(&st, entry);
    rc = ops->vcpu_set_state(L.vcpu, &st);
    if (rc == 0 && config->trace) {
        L.vcpu->trace = calloc(1, sizeof(*L.vcpu->trace));
        if (!L.vcpu->trace ||
            trace_printer_create(&L.tracer, config->trace_out ? config->trace_out : stderr,
                                 config->trace_options) < 0)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = kick_timer_create(&L.kick);
    if (rc == 0) {
        double timeout = config->timeout_s > 0 ? config->timeout_s : MACHINE_DEFAULT_TIMEOUT_S;
        uint64_t t0 = emu_time_ns();
        devices_init(&L.dev, config->console_out ? config->console_out : stdout, t0);
        L.deadline_ns = t0 + (uint64_t)(timeout * 1e9);
        rc = run_loop(&L);
        result->elapsed_s = (double)(emu_time_ns() - t0) / 1e9;
        fflush(L.dev.console);
        result->mark_count = L.dev.mark_count;
        memcpy(result->mark_value, L.dev.mark_value, sizeof(result->mark_value));
        memcpy(result->mark_ns, L.dev.mark_ns, sizeof(result->mark_ns));
        result->stats = L.vcpu->stats;
        emit_backend_stat(result, "unhandled_port_accesses", L.dev.unhandled_io, "accesses");
        emit_backend_stat(result, "slp_requests_rejected", L.dev.slp_rejected, "requests");
        emit_backend_stat(result, "console_bytes", L.dev.console_bytes, "bytes");
        emit_backend_stat(result, "timer_ticks_delivered", L.dev.timer_ticks_delivered, "ticks");
        if (ops->vcpu_stats)
            ops->vcpu_stats(L.vcpu, emit_backend_stat, result);
        if (L.tracer)
            trace_printer_finish(L.tracer, ops->name, &L.vcpu->stats);
    } else {
        result->status = VMLAB_STATUS_INTERNAL;
        snprintf(result->message, sizeof(result->message), "cannot start the run: %s",
                 strerror(-rc));
    }
    kick_timer_destroy(&L.kick);
    trace_printer_destroy(L.tracer);
    free(L.vcpu->trace);
    L.vcpu->trace = NULL;
    ops->vcpu_destroy(L.vcpu);
    ops->vm_destroy(vm);
    guest_memory_destroy(L.mem);
    return rc;
}

void machine_print_stats(const struct machine_result *r, FILE *out)
{
    fprintf(out, "%-28s %12s\n", "exits by reason", "count");
    for (unsigned i = 0; i <= VM_EXIT_REASON_MAX_VALUE; i++)
        if (r->stats.exits[i])
            fprintf(out, "  %-26s %12" PRIu64 "\n", vm_exit_reason_name(i), r->stats.exits[i]);
    fprintf(out, "%-28s %12s  %s\n", "emulated instructions", "count", "category");
    for (unsigned i = 0; i <= EMU_CLASS_MAX_VALUE; i++)
        if (r->stats.emulated[i])
            fprintf(out, "  %-26s %12" PRIu64 "  %s\n", emu_class_info(i)->name,
                    r->stats.emulated[i], pg_category_name(emu_class_info(i)->category));
    fprintf(out, "  %-26s %12" PRIu64 "\n", "interrupts injected", r->stats.interrupts_injected);
    fprintf(out, "  %-26s %12" PRIu64 "\n", "exceptions to guest IDT",
            r->stats.exceptions_delivered);
    if (r->backend_stat_count)
        fprintf(out, "%-28s %12s\n", "backend / device counters", "value");
    for (unsigned i = 0; i < r->backend_stat_count; i++)
        fprintf(out, "  %-26s %12" PRIu64 " %s\n", r->backend_stats[i].name,
                r->backend_stats[i].value, r->backend_stats[i].unit);
    fprintf(out, "  %-26s %12.6f s\n", "elapsed", r->elapsed_s);
}
