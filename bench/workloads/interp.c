/* interp.c - workload "interpreter": a bytecode virtual machine with switch dispatch.
 *
 * The shape of CPython's or Lua's main loop: fetch a 4-byte instruction, `switch` on its
 * opcode (the compiler emits a bounds check and an indirect jump through a jump table, the
 * one hard-to-predict branch of every interpreter), operate on a register file in memory.
 * Per iteration the host-side fill (xorshift) writes 48 words into the VM's memory, then the
 * bytecode program below runs: a mixing loop with a data-dependent branch and a call/return
 * per element, and an insertion sort of 24 words (nested loops, loads, stores, compares).
 * About 2,000 dispatches per iteration.
 */
#include "workload_blob.h"

enum op {
    OP_HALT,
    OP_LI,   /* r[a] = b | c << 8 */
    OP_MOV,  /* r[a] = r[b] */
    OP_ADD,  /* r[a] = r[b] + r[c] */
    OP_SUB,  /* r[a] = r[b] - r[c] */
    OP_MUL,  /* r[a] = r[b] * r[c] */
    OP_XOR,  /* r[a] = r[b] ^ r[c] */
    OP_AND,  /* r[a] = r[b] & r[c] */
    OP_OR,   /* r[a] = r[b] | r[c] */
    OP_SHL,  /* r[a] = r[b] << c */
    OP_SHR,  /* r[a] = r[b] >> c */
    OP_ROL,  /* r[a] = rotate r[b] left by c */
    OP_ADDI, /* r[a] = r[b] + (int8_t)c */
    OP_LD,   /* r[a] = mem[(r[b] + (int8_t)c) & 255] */
    OP_ST,   /* mem[(r[b] + (int8_t)c) & 255] = r[a] */
    OP_JMP,  /* pc = a */
    OP_JZ,   /* if r[a] == 0: pc = b */
    OP_JNZ,  /* if r[a] != 0: pc = b */
    OP_JLT,  /* if r[a] < r[b] (unsigned): pc = c */
    OP_CALL, /* push pc; pc = a */
    OP_RET,  /* pc = pop */
    OP_EQ,   /* r[a] = r[b] == r[c] */
};

struct insn {
    uint8_t op, a, b, c;
};

/* Registers: r0 accumulator, r1 index, r2 limit, r3-r5 temporaries, r6 multiplier,
 * r7 mask. Jump targets are absolute instruction indices (the comment on each line). */
static const struct insn program[] = {
    /* 0 */ {OP_LI, 1, 0, 0},  /* i = 0 */
    /* 1 */ {OP_LI, 2, 47, 0}, /* n = 47 */
    /* 2 */ {OP_LI, 6, 0x37, 0x9E},
    /* 3 */ {OP_LI, 7, 3, 0},
    /* mix: */
    /* 4 */ {OP_LD, 3, 1, 0}, /* r3 = mem[i] */
    /* 5 */ {OP_MUL, 3, 3, 6},
    /* 6 */ {OP_XOR, 3, 3, 0},
    /* 7 */ {OP_SHR, 4, 3, 13},
    /* 8 */ {OP_XOR, 3, 3, 4},
    /* 9 */ {OP_ST, 3, 1, 1},   /* mem[i + 1] = r3 */
    /* 10 */ {OP_AND, 4, 3, 7}, /* r4 = r3 & 3 */
    /* 11 */ {OP_JNZ, 4, 14, 0},
    /* 12 */ {OP_ADD, 0, 0, 3},
    /* 13 */ {OP_JMP, 15, 0, 0},
    /* 14 */ {OP_SUB, 0, 0, 4},
    /* 15 */ {OP_CALL, 35, 0, 0},
    /* 16 */ {OP_ADDI, 1, 1, 1},
    /* 17 */ {OP_JLT, 1, 2, 4},
    /* insertion sort of mem[0..23] */
    /* 18 */ {OP_LI, 1, 1, 0},    /* i = 1 */
    /* 19 */ {OP_LI, 2, 24, 0},   /* n = 24 */
                                  /* outer: */
    /* 20 */ {OP_LD, 3, 1, 0},    /* key = mem[i] */
    /* 21 */ {OP_MOV, 4, 1, 0},   /* j1 = i (j + 1) */
                                  /* inner: */
    /* 22 */ {OP_JZ, 4, 29, 0},   /* j1 == 0: place */
    /* 23 */ {OP_LD, 5, 4, 0xFF}, /* r5 = mem[j1 - 1] */
    /* 24 */ {OP_JLT, 3, 5, 26},  /* key < mem[j1 - 1]: shift */
    /* 25 */ {OP_JMP, 29, 0, 0},  /* place */
                                  /* shift: */
    /* 26 */ {OP_ST, 5, 4, 0},    /* mem[j1] = mem[j1 - 1] */
    /* 27 */ {OP_ADDI, 4, 4, 0xFF},
    /* 28 */ {OP_JMP, 22, 0, 0},
    /* place: */
    /* 29 */ {OP_ST, 3, 4, 0}, /* mem[j1] = key */
    /* 30 */ {OP_ADDI, 1, 1, 1},
    /* 31 */ {OP_JLT, 1, 2, 20},
    /* 32 */ {OP_LD, 3, 1, 0xE9}, /* r3 = mem[24 - 23] */
    /* 33 */ {OP_XOR, 0, 0, 3},
    /* 34 */ {OP_HALT, 0, 0, 0},
    /* sub: r0 = (rol(r0, 7) ^ r0) + 5 */
    /* 35 */ {OP_ROL, 5, 0, 7},
    /* 36 */ {OP_XOR, 0, 0, 5},
    /* 37 */ {OP_ADDI, 0, 0, 5},
    /* 38 */ {OP_OR, 5, 5, 7},
    /* 39 */ {OP_RET, 0, 0, 0},
};

WORKLOAD_NOINLINE static uint64_t run_vm(const struct insn *code, uint64_t *mem, uint64_t r0)
{
    uint64_t r[8] = {r0, 0, 0, 0, 0, 0, 0, 0};
    uint8_t stack[16];
    unsigned sp = 0, pc = 0;
    for (;;) {
        struct insn in = code[pc++];
        switch (in.op) {
        case OP_HALT:
            return r[0];
        case OP_LI:
            r[in.a & 7] = (uint64_t)in.b | (uint64_t)in.c << 8;
            break;
        case OP_MOV:
            r[in.a & 7] = r[in.b & 7];
            break;
        case OP_ADD:
            r[in.a & 7] = r[in.b & 7] + r[in.c & 7];
            break;
        case OP_SUB:
            r[in.a & 7] = r[in.b & 7] - r[in.c & 7];
            break;
        case OP_MUL:
            r[in.a & 7] = r[in.b & 7] * r[in.c & 7];
            break;
        case OP_XOR:
            r[in.a & 7] = r[in.b & 7] ^ r[in.c & 7];
            break;
        case OP_AND:
            r[in.a & 7] = r[in.b & 7] & r[in.c & 7];
            break;
        case OP_OR:
            r[in.a & 7] = r[in.b & 7] | r[in.c & 7];
            break;
        case OP_SHL:
            r[in.a & 7] = r[in.b & 7] << (in.c & 63);
            break;
        case OP_SHR:
            r[in.a & 7] = r[in.b & 7] >> (in.c & 63);
            break;
        case OP_ROL: {
            unsigned s = in.c & 63;
            uint64_t v = r[in.b & 7];
            r[in.a & 7] = s ? v << s | v >> (64 - s) : v;
            break;
        }
        case OP_ADDI:
            r[in.a & 7] = r[in.b & 7] + (uint64_t)(int64_t)(int8_t)in.c;
            break;
        case OP_LD:
            r[in.a & 7] = mem[(r[in.b & 7] + (uint64_t)(int64_t)(int8_t)in.c) & 255];
            break;
        case OP_ST:
            mem[(r[in.b & 7] + (uint64_t)(int64_t)(int8_t)in.c) & 255] = r[in.a & 7];
            break;
        case OP_JMP:
            pc = in.a;
            break;
        case OP_JZ:
            if (!r[in.a & 7])
                pc = in.b;
            break;
        case OP_JNZ:
            if (r[in.a & 7])
                pc = in.b;
            break;
        case OP_JLT:
            if (r[in.a & 7] < r[in.b & 7])
                pc = in.c;
            break;
        case OP_CALL:
            stack[sp++ & 15] = (uint8_t)pc;
            pc = in.a;
            break;
        case OP_RET:
            pc = stack[--sp & 15];
            break;
        case OP_EQ:
            r[in.a & 7] = r[in.b & 7] == r[in.c & 7];
            break;
        default:
            return ~r[0]; /* an invalid opcode ends the program */
        }
    }
}

WORKLOAD_ENTRY uint64_t workload_entry(uint64_t iterations)
{
    uint64_t mem[256];
    uint64_t state = 0x2545F4914F6CDD1Dull, sum = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        for (int k = 0; k < 48; k++)
            mem[k] = workload_xorshift(&state) >> 16;
        uint64_t r0 = run_vm(program, mem, sum);
        sum = workload_mix(sum, r0);
        sum = workload_mix(sum, mem[0] ^ mem[12] ^ mem[23]);
    }
    return sum;
}
