/* bench_translation.c - experiment "translation": dbt's translation cost B per block and per
 * guest instruction, from the dbt backend's own TSC counters, on guests whose every block is
 * new, beside a bare ZydisDecoderDecodeFull of the same bytes in the same run (the floor: a
 * translator must at least decode). B depends on the process's warmth and the block shape,
 * hence three cases. */
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "bench_internal.h"

enum b_case_id {
    B_COLD, /* the first 512 2-instruction blocks of a fresh process */
    B_BULK, /* 4096 2-instruction blocks in one run: start-up amortized; per-block work
             * (writing the block, its exit stub, metadata) weighs most here */
    B_LONG, /* 1024 8-instruction blocks (six ALU/LEA/MOV, CLI, JMP): closer to compiled code,
             * whose basic blocks average ~5-6 instructions */
    B_CASES
};

static const struct {
    const char *name, *description;
    unsigned blocks, insns_per_block;
} shape[B_CASES] = {
    [B_COLD] = {"cold", "first blocks of a fresh process", 512, 2},
    [B_BULK] = {"bulk", "one run, start-up amortized", 4096, 2},
    [B_LONG] = {"long blocks", "one run, 8-instruction blocks", 1024, 8},
};

struct translation_state {
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    struct bench_stats ns_per_block[B_CASES], ns_per_insn[B_CASES];
    struct bench_stats decode_ns_per_insn[B_CASES]; /* bare ZydisDecoderDecodeFull */
};

void bench_build_block_chain(unsigned nblocks, unsigned reps, struct bench_code *c)
{
    c->n = 0;
    c->overflow = false;
    bench_emit_mark(c, 1);
    BENCH_EMIT(c, 0x49, 0xc7, 0xc7);
    bench_emit_u32(c, reps); /* mov r15, reps */
    size_t top = c->n;
    for (unsigned i = 0; i < nblocks; i++)
        BENCH_EMIT(c, 0xfa, 0xe9, 0, 0, 0, 0);   /* cli; jmp +0 (the next block: a boundary) */
    BENCH_EMIT(c, 0x49, 0xff, 0xcf, 0x0f, 0x85); /* dec r15; jnz top */
    bench_emit_u32(c, (uint32_t)(int32_t)(top - (c->n + 4)));
    bench_emit_mark(c, 2);
    bench_emit_mark(c, 3);
    bench_emit_exit(c);
}

/* N distinct blocks {add; xor; lea; mov; shl; sub; cli; jmp next}: 8 instructions each. */
static void build_long_block_guest(unsigned nblocks, struct bench_code *c)
{
    static const uint8_t block[] = {
        0x48, 0x01, 0xd8,          /* add rax, rbx */
        0x48, 0x31, 0xd1,          /* xor rcx, rdx */
        0x48, 0x8d, 0x76, 0x08,    /* lea rsi, [rsi+8] */
        0x48, 0x89, 0xf7,          /* mov rdi, rsi */
        0x48, 0xd1, 0xe0,          /* shl rax, 1 */
        0x48, 0x29, 0xc2,          /* sub rdx, rax */
        0xfa,                      /* cli */
        0xe9, 0,    0,    0,    0, /* jmp next block */
    };
    c->n = 0;
    c->overflow = false;
    bench_emit_mark(c, 1);
    for (unsigned i = 0; i < nblocks; i++)
        bench_emit(c, block, sizeof(block));
    bench_emit_mark(c, 2);
    bench_emit_mark(c, 3);
    bench_emit_exit(c);
}

/* The floor for B: a bare ZydisDecoderDecodeFull over the guest's bytes, in this process. */
static double bare_decode_ns(const struct bench_code *c)
{
    ZydisDecoder d;
    ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
    double t0 = bench_now_s();
    unsigned count = 0;
    for (unsigned rep = 0; rep < 4; rep++)
        for (size_t off = 0; off < c->n; count++) {
            if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, c->b + off, c->n - off, &zi, zo)))
                break;
            off += zi.length;
        }
    return (bench_now_s() - t0) * 1e9 / count;
}

static void translation_measure(struct bench_ctx *ctx, void *state)
{
    struct translation_state *tr = state;
    const struct bench_host *h = &ctx->host;
    int dbt = bench_backend_index(h, "dbt");
    if (dbt < 0 || !h->backend_available[dbt]) {
        snprintf(tr->why_not, sizeof(tr->why_not), "dbt unavailable");
        return;
    }
    unsigned reps = ctx->opt->quick ? 3 : 5;
    static struct bench_code guests[B_CASES];
    for (unsigned k = 0; k < B_CASES; k++)
        if (shape[k].insns_per_block == 2)
            bench_build_block_chain(shape[k].blocks, 1, &guests[k]);
        else
            build_long_block_guest(shape[k].blocks, &guests[k]);
    double per_block[B_CASES][32], per_insn[B_CASES][32], dec[B_CASES][32];
    unsigned got = 0;
    for (unsigned r = 0; r < reps; r++) {
        bool ok = true;
        for (unsigned k = 0; k < B_CASES && ok; k++) {
            struct machine_result *res = bench_run_guest(h->backend[dbt], &guests[k], 60, 2,
                                                         tr->why_not, sizeof(tr->why_not));
            double tns = 0, blocks = 0, insns = 0;
            ok = res && bench_result_stat(res, "translate_ns", &tns) &&
                 bench_result_stat(res, "blocks_translated", &blocks) &&
                 bench_result_stat(res, "guest_insns_translated", &insns) && blocks > 0 &&
                 insns > 0;
            free(res);
            if (!ok)
                break;
            per_block[k][got] = tns / blocks;
            per_insn[k][got] = tns / insns;
            dec[k][got] = bare_decode_ns(&guests[k]);
        }
        if (!ok)
            break;
        got++;
    }
    if (got != reps)
        return;
    tr->measured = true;
    for (unsigned k = 0; k < B_CASES; k++) {
        bench_stats_of(per_block[k], got, &tr->ns_per_block[k]);
        bench_stats_of(per_insn[k], got, &tr->ns_per_insn[k]);
        bench_stats_of(dec[k], got, &tr->decode_ns_per_insn[k]);
        bench_progress(ctx,
                       "bench: dbt translation B (%-11s %4u x %u insns) = %4.0f ns per guest "
                       "instruction, %4.0f per block; bare decode %3.0f ns\n",
                       shape[k].name, shape[k].blocks, shape[k].insns_per_block,
                       tr->ns_per_insn[k].median, tr->ns_per_block[k].median,
                       tr->decode_ns_per_insn[k].median);
    }
}

static void translation_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    (void)ctx;
    const struct translation_state *tr = state;
    bench_doc_heading(d, "Translation cost B");
    if (!tr->measured) {
        bench_doc_para(d, "Not measured: %s.", tr->why_not);
        return;
    }
    bench_doc_para(
        d, "dbt's own statistics (TSC-timed) on guests whose every block is new, beside a bare "
           "ZydisDecoderDecodeFull of the same bytes in the same run (the floor: the translator "
           "must at least decode). The translator decodes operands only where it needs them "
           "(sensitive instructions, MOV/PUSH/POP), copies innocuous bytes and writes the block "
           "into the cache in one copy; what stays above the floor is mostly per block (the exit "
           "stub, metadata, and the store into freshly written code, which this CPU makes "
           "expensive), so short blocks weigh it most.");
    bench_doc_table(d, 6,
                    (const char *[]){"case", "blocks x instructions",
                                     "B ns per guest instruction (Q1-Q3)", "B ns per block",
                                     "bare decode ns per instruction", "B / decode"});
    for (unsigned k = 0; k < B_CASES; k++) {
        double decode = tr->decode_ns_per_insn[k].median;
        bench_doc_cell(d, "%s (%s)", shape[k].name, shape[k].description);
        bench_doc_cell(d, "%u x %u", shape[k].blocks, shape[k].insns_per_block);
        bench_doc_cell(d, "%.0f (%.0f-%.0f)", tr->ns_per_insn[k].median, tr->ns_per_insn[k].q1,
                       tr->ns_per_insn[k].q3);
        bench_doc_cell(d, "%.0f", tr->ns_per_block[k].median);
        bench_doc_cell(d, "%.0f", decode);
        bench_doc_cell(d, "%.2f", decode > 0 ? tr->ns_per_insn[k].median / decode : 0);
    }
    bench_doc_table_end(d);
}

static void translation_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    (void)ctx;
    const struct translation_state *tr = state;
    bench_json_key(f, "translation");
    if (!tr->measured) {
        bench_json_not_measured(f, tr->why_not);
        return;
    }
    fputc('[', f);
    for (unsigned k = 0; k < B_CASES; k++) {
        fprintf(f, "%s{\"case\": ", k ? ", " : "");
        bench_json_str(f, shape[k].name);
        fprintf(f, ", \"blocks\": %u, \"instructions_per_block\": %u, \"ns_per_insn\": ",
                shape[k].blocks, shape[k].insns_per_block);
        bench_json_stats(f, &tr->ns_per_insn[k]);
        fprintf(f, ", \"ns_per_block\": ");
        bench_json_stats(f, &tr->ns_per_block[k]);
        fprintf(f, ", \"decode_full_ns_per_insn\": ");
        bench_json_stats(f, &tr->decode_ns_per_insn[k]);
        fputc('}', f);
    }
    fputc(']', f);
}

const struct bench_experiment bench_experiment_translation = {
    .name = "translation",
    .summary = "dbt's translation cost B per block and per instruction (three cases)",
    .state_size = sizeof(struct translation_state),
    .measure = translation_measure,
    .write_section = translation_write_section,
    .write_json = translation_write_json,
};
