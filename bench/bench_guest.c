/* bench_guest.c - generated guests: raw machine code emitters and running them. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <Zydis/Zydis.h>

#include "bench.h"
#include "tools/vmlab/isolated_run.h"
#include "vmm/guest_layout.h"

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_emit(struct bench_code *c, const void *bytes, size_t n)
{
    if (c->n + n > sizeof(c->b)) {
        c->overflow = true;
        return;
    }
    memcpy(c->b + c->n, bytes, n);
    c->n += n;
}

void bench_emit_u32(struct bench_code *c, uint32_t v)
{
    bench_emit(c, &v, 4);
}

void bench_emit_u64(struct bench_code *c, uint64_t v)
{
    bench_emit(c, &v, 8);
}

void bench_emit_mark_eax(struct bench_code *c)
{
    BENCH_EMIT(c, 0x52, 0x66, 0xba, PORT_BENCH_MARK & 0xff, PORT_BENCH_MARK >> 8); /* push rdx;
                                                                       mov dx, PORT_BENCH_MARK */
    BENCH_EMIT(c, 0xef, 0x5a); /* out dx, eax; pop rdx */
}

void bench_emit_mark(struct bench_code *c, uint32_t id)
{
    BENCH_EMIT(c, 0xb8); /* mov eax, id */
    bench_emit_u32(c, id);
    bench_emit_mark_eax(c);
}

void bench_emit_loop(struct bench_code *c, uint32_t n, const uint8_t *body, size_t len)
{
    BENCH_EMIT(c, 0x49, 0xc7, 0xc7); /* mov r15, n */
    bench_emit_u32(c, n);
    size_t top = c->n;
    bench_emit(c, body, len);
    BENCH_EMIT(c, 0x49, 0xff, 0xcf, 0x0f, 0x85); /* dec r15; jnz rel32 */
    bench_emit_u32(c, (uint32_t)(int32_t)(top - (c->n + 4)));
}

void bench_emit_exit(struct bench_code *c)
{
    BENCH_EMIT(c, 0xfa, 0x31, 0xc0, 0xe6, PORT_EXIT, 0xf4); /* cli; xor eax,eax; out; hlt */
}

struct machine_result *bench_run_guest(const struct backend_ops *ops, const struct bench_code *c,
                                       double timeout_s, unsigned min_marks, char *why,
                                       size_t why_size)
{
    return bench_run_guest_marks(ops, c, timeout_s, min_marks, NULL, why, why_size);
}

struct machine_result *bench_run_guest_marks(const struct backend_ops *ops,
                                             const struct bench_code *c, double timeout_s,
                                             unsigned min_marks, const struct bench_marks *marks,
                                             char *why, size_t why_size)
{
    if (c->overflow) {
        snprintf(why, why_size, "generated guest does not fit its buffer");
        return NULL;
    }
    struct machine_config config;
    machine_config_defaults(&config);
    config.backend = ops;
    config.raw_code = c->b;
    config.raw_size = c->n;
    config.timeout_s = timeout_s;
    if (marks) {
        config.mark_cpu_time = marks->cpu_time;
        config.mark_stat = marks->stat_name;
    }
    struct machine_result *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    isolated_run(&config, r);
    if (!r->guest_exited || r->status != 0 || r->mark_count < min_marks) {
        snprintf(why, why_size, "run failed: %s", r->message[0] ? r->message : "no marks");
        free(r);
        return NULL;
    }
    return r;
}

bool bench_result_stat(const struct machine_result *r, const char *name, double *value)
{
    for (unsigned i = 0; i < r->backend_stat_count; i++)
        if (!strcmp(r->backend_stats[i].name, name)) {
            *value = (double)r->backend_stats[i].value;
            return true;
        }
    return false;
}

unsigned bench_count_insns(const uint8_t *code, size_t len)
{
    ZydisDecoder d;
    ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisDecodedInstruction insn;
    unsigned n = 0;
    for (size_t off = 0; off < len; n++) {
        if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&d, NULL, code + off, len - off, &insn)))
            break;
        off += insn.length;
    }
    return n;
}
