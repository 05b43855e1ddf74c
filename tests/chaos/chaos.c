/* chaos.c - whole-backend chaos test: random guests on every backend, every ending classified.
 *
 * Each guest (chaos_gen.h: random or privileged-biased code, with its own IDT or not, with the
 * virtual timer on or off) runs on each chosen backend in a child process, exactly as
 * `vmlab run` runs it (tools/vmlab/isolated_run.c). Its ending must be one a guest can cause:
 * the guest's exit port, an unhandled exception, a triple fault, the time budget, HLT,
 * unassigned MMIO, or a documented internal error (vm_exit.h, enum vm_internal_suberror) with
 * a message. Never acceptable: the process running the guest dies (status 86), the backend
 * cannot re-enter the guest (85), the child hangs past its budget, an undocumented internal
 * error. Endings listed in the known-failures file (backend|ending|message substring|reason)
 * are counted apart and do not fail the run: bugs on record, not yet fixed.
 *
 *   vmlab_chaos [--backend B]... [--count N] [--seed S] [--first I] [--timeout SEC]
 *               [--known FILE] [--save DIR] [--verbose]
 *   vmlab_chaos [--backend B]... --replay FILE.elf...     run saved guests again
 *   vmlab_chaos --dump --seed S --first I                 disassemble one guest
 *
 * Guest i of a run is chaos_generate(chaos_guest_seed(S, i)): `--seed S --first i --count 1`
 * reproduces it; --save writes each failing guest as an ELF image that `vmlab run` accepts.
 * Exit status: 0 no unexpected ending, 1 some, 64 usage, 77 no backend available.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "chaos_gen.h"
#include "emu/emu_class.h"
#include "emu/x86_decode.h"
#include "tools/vmlab/isolated_run.h"
#include "vmm/guest_layout.h"

enum ending {
    END_EXIT,      /* the guest wrote the exit port */
    END_EXCEPTION, /* unhandled guest exception (80) */
    END_SHUTDOWN,  /* triple fault (81) */
    END_BUDGET,    /* time budget (82) */
    END_HALTED,    /* HLT with nothing to wait for (83) */
    END_MMIO,      /* unassigned MMIO (84) */
    END_INTERNAL,  /* documented internal error (70) */
    END_FIRST_BAD,
    END_DEATH = END_FIRST_BAD, /* the process running the guest died (86) */
    END_HANG,                  /* the child outlived its budget and was killed (86) */
    END_FAIL_ENTRY,            /* the backend could not (re-)enter the guest (85) */
    END_INTERNAL_UNDOCUMENTED, /* 70 without a documented suberror and a message */
    END_OTHER,                 /* any other status */
    END_MAX_VALUE = END_OTHER
};

static const char *const ending_names[END_MAX_VALUE + 1] = {"exit",
                                                            "exception",
                                                            "shutdown",
                                                            "budget",
                                                            "halted",
                                                            "mmio",
                                                            "internal",
                                                            "death",
                                                            "hang",
                                                            "fail_entry",
                                                            "internal_undocumented",
                                                            "other"};

#define CHAOS_MIN_ENDINGS 4
#define CHAOS_MIN_CLASSES 25

struct known_failure {
    char backend[32];
    enum ending ending;
    char substring[128];
    char reason[256];
    uint64_t matched;
};

struct backend_tally {
    const struct backend_ops *ops;
    bool available;
    uint64_t endings[END_MAX_VALUE + 1];
    uint64_t known;
    uint64_t unexpected;
    uint64_t emulated[EMU_CLASS_MAX_VALUE + 1];
    uint64_t guests;
};

struct options {
    uint64_t seed, first, count;
    double timeout_s;
    const char *known_path, *save_dir;
    bool verbose, dump;
    char **replay;
    int replay_count;
};

static struct known_failure known[64];
static unsigned known_count;

static int ending_from_name(const char *s)
{
    for (int i = 0; i <= END_MAX_VALUE; i++)
        if (strcmp(s, ending_names[i]) == 0)
            return i;
    return -1;
}

static int load_known(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "vmlab_chaos: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[600];
    unsigned lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *fields[4] = {0};
        char *p = line;
        for (int i = 0; i < 4 && p; i++) {
            fields[i] = p;
            p = i < 3 ? strchr(p, '|') : NULL;
            if (p)
                *p++ = 0;
        }
        int e = fields[1] ? ending_from_name(fields[1]) : -1;
        if (!fields[3] || e < END_FIRST_BAD || known_count == sizeof(known) / sizeof(known[0])) {
            fprintf(stderr, "vmlab_chaos: %s:%u: want backend|bad ending|substring|reason\n", path,
                    lineno);
            fclose(f);
            return -1;
        }
        struct known_failure *k = &known[known_count];
        /* a field too long for its buffer is an error, not a silent truncation: a cut
         * substring would match more failures than the line meant */
        if (strlen(fields[0]) >= sizeof(k->backend) || strlen(fields[2]) >= sizeof(k->substring) ||
            strlen(fields[3]) >= sizeof(k->reason)) {
            fprintf(stderr, "vmlab_chaos: %s:%u: field too long (backend < %zu, substring < %zu, "
                            "reason < %zu characters)\n",
                    path, lineno, sizeof(k->backend), sizeof(k->substring), sizeof(k->reason));
            fclose(f);
            return -1;
        }
        known_count++;
        memcpy(k->backend, fields[0], strlen(fields[0]) + 1);
        k->ending = (enum ending)e;
        memcpy(k->substring, fields[2], strlen(fields[2]) + 1);
        memcpy(k->reason, fields[3], strlen(fields[3]) + 1);
    }
    fclose(f);
    return 0;
}

static struct known_failure *match_known(const char *backend, enum ending e, const char *message)
{
    for (unsigned i = 0; i < known_count; i++)
        if (strcmp(known[i].backend, backend) == 0 && known[i].ending == e &&
            strstr(message, known[i].substring))
            return &known[i];
    return NULL;
}

static enum ending classify(const struct machine_result *r, enum isolated_fate fate)
{
    if (fate == ISOLATED_HUNG)
        return END_HANG;
    if (fate == ISOLATED_DIED)
        return END_DEATH;
    if (fate != ISOLATED_FINISHED)
        return END_OTHER;
    if (r->guest_exited)
        return END_EXIT;
    switch (r->status) {
    case VMLAB_STATUS_EXCEPTION:
        return END_EXCEPTION;
    case VMLAB_STATUS_SHUTDOWN:
        return END_SHUTDOWN;
    case VMLAB_STATUS_BUDGET:
        return END_BUDGET;
    case VMLAB_STATUS_HALTED:
        return END_HALTED;
    case VMLAB_STATUS_MMIO:
        return END_MMIO;
    case VMLAB_STATUS_FAIL_ENTRY:
        return END_FAIL_ENTRY;
    case VMLAB_STATUS_INTERNAL:
        if (r->last_exit.reason == VM_EXIT_INTERNAL_ERROR &&
            vm_internal_suberror_name(r->last_exit.internal.suberror) &&
            r->last_exit.internal.message[0])
            return END_INTERNAL;
        return END_INTERNAL_UNDOCUMENTED;
    default:
        return END_OTHER;
    }
}

/* An ELF64 executable with one RWX PT_LOAD at GUEST_IMAGE_BASE: what `vmlab run` loads. */
static int save_elf(const char *path, const uint8_t *image, size_t size)
{
    Elf64_Ehdr eh;
    Elf64_Phdr ph;
    memset(&eh, 0, sizeof(eh));
    memset(&ph, 0, sizeof(ph));
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = GUEST_IMAGE_BASE;
    eh.e_phoff = sizeof(eh);
    eh.e_ehsize = sizeof(eh);
    eh.e_phentsize = sizeof(ph);
    eh.e_phnum = 1;
    ph.p_type = PT_LOAD;
    ph.p_flags = PF_R | PF_W | PF_X;
    ph.p_offset = 0x1000;
    ph.p_vaddr = ph.p_paddr = GUEST_IMAGE_BASE;
    ph.p_filesz = ph.p_memsz = size;
    ph.p_align = 0x1000;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    static const uint8_t zero[0x1000];
    bool ok = fwrite(&eh, sizeof(eh), 1, f) == 1 && fwrite(&ph, sizeof(ph), 1, f) == 1 &&
              fwrite(zero, 0x1000 - sizeof(eh) - sizeof(ph), 1, f) == 1 &&
              fwrite(image, size, 1, f) == 1;
    return fclose(f) == 0 && ok ? 0 : -EIO;
}

static FILE *devnull;

/* Run one guest (raw image or ELF path) on one backend and judge the ending. */
static void run_one(struct backend_tally *t, const struct options *o, const struct chaos_guest *g,
                    const char *path, uint64_t index)
{
    struct machine_config cfg;
    machine_config_defaults(&cfg);
    cfg.backend = t->ops;
    cfg.timeout_s = o->timeout_s;
    cfg.console_out = devnull;
    if (g) {
        cfg.raw_code = g->image;
        cfg.raw_size = g->size;
    } else
        cfg.image_path = path;
    static struct machine_result r;
    enum isolated_fate fate;
    isolated_run_fate(&cfg, &r, &fate);
    enum ending e = classify(&r, fate);
    t->guests++;
    t->endings[e]++;
    for (unsigned i = 0; i <= EMU_CLASS_MAX_VALUE; i++)
        t->emulated[i] += r.stats.emulated[i];
    char what[96];
    if (g)
        snprintf(what, sizeof(what), "guest %" PRIu64 " (seed %#" PRIx64 ", %s, %s IDT, timer %s)",
                 index, g->seed, g->kind == CHAOS_RANDOM ? "random" : "privileged",
                 g->own_idt ? "own" : "default", g->timer ? "on" : "off");
    else
        snprintf(what, sizeof(what), "%s", path);
    if (o->verbose)
        printf("%s %s: %s (status %d) %s\n", t->ops->name, what, ending_names[e], r.status,
               r.message);
    if (e < END_FIRST_BAD)
        return;
    struct known_failure *k = match_known(t->ops->name, e, r.message);
    if (k) {
        k->matched++;
        t->known++;
        if (o->verbose)
            printf("  known: %s\n", k->reason);
        return;
    }
    t->unexpected++;
    printf("FAIL %s %s: %s (status %d): %s\n", t->ops->name, what, ending_names[e], r.status,
           r.message);
    if (g) {
        printf("  again: vmlab_chaos --backend %s --seed %#" PRIx64 " --first %" PRIu64
               " --count 1\n",
               t->ops->name, o->seed, index);
        if (o->save_dir) {
            char file[512];
            snprintf(file, sizeof(file), "%s/chaos-%s-%#" PRIx64 ".elf", o->save_dir, t->ops->name,
                     g->seed);
            mkdir(o->save_dir, 0777);
            if (save_elf(file, g->image, g->size) == 0)
                printf("  saved: %s (vmlab run --backend %s %s)\n", file, t->ops->name, file);
            else
                printf("  could not save %s\n", file);
        }
    }
    fflush(stdout);
}

static void dump_guest(const struct chaos_guest *g)
{
    struct x86_decoder dec;
    x86_decoder_init(&dec);
    printf("guest seed %#" PRIx64 ": %s, %s IDT, timer %s, %u slots\n", g->seed,
           g->kind == CHAOS_RANDOM ? "random" : "privileged", g->own_idt ? "own" : "default",
           g->timer ? "on" : "off", g->slots);
    for (size_t off = CHAOS_BODY_OFFSET; off < g->size;) {
        struct x86_decoded_insn insn;
        char text[96] = "(bad)";
        size_t len = 1;
        if (x86_decode(&dec, g->image + off, g->size - off, GUEST_IMAGE_BASE + off, &insn) == 0) {
            x86_format(&insn, text, sizeof(text));
            len = insn.length;
        }
        if (!(len == 1 && g->image[off] == 0x90))
            printf("  %#" PRIx64 "  %s\n", (uint64_t)(GUEST_IMAGE_BASE + off), text);
        off += len;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: vmlab_chaos [--backend B]... [--count N] [--seed S] [--first I] "
                    "[--timeout SEC] [--known FILE] [--save DIR] [--verbose]\n"
                    "       vmlab_chaos [--backend B]... --replay FILE.elf...\n"
                    "       vmlab_chaos --dump --seed S --first I\n");
}

static int parse(int argc, char **argv, struct options *o, struct backend_tally *t, int *nt)
{
    static const struct option longopts[] = {
        {"backend", required_argument, 0, 'b'},
        {"count", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},
        {"first", required_argument, 0, 'f'},
        {"timeout", required_argument, 0, 't'},
        {"known", required_argument, 0, 'k'},
        {"save", required_argument, 0, 'S'},
        {"verbose", no_argument, 0, 'v'},
        {"replay", no_argument, 0, 'r'},
        {"dump", no_argument, 0, 'd'},
        {0, 0, 0, 0},
    };
    bool replay = false;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'b':
            if (*nt == 3 || !(t[*nt].ops = backend_find(optarg))) {
                fprintf(stderr, "vmlab_chaos: unknown backend '%s'\n", optarg);
                return -1;
            }
            (*nt)++;
            break;
        case 'n':
            o->count = strtoull(optarg, &end, 0);
            break;
        case 's':
            o->seed = strtoull(optarg, &end, 0);
            break;
        case 'f':
            o->first = strtoull(optarg, &end, 0);
            break;
        case 't':
            o->timeout_s = strtod(optarg, &end);
            if (!(o->timeout_s > 0 && o->timeout_s <= 60))
                end = optarg;
            break;
        case 'k':
            o->known_path = optarg;
            break;
        case 'S':
            o->save_dir = optarg;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'r':
            replay = true;
            break;
        case 'd':
            o->dump = true;
            break;
        default:
            usage();
            return -1;
        }
        if (end && *end) {
            fprintf(stderr, "vmlab_chaos: bad value '%s'\n", optarg);
            return -1;
        }
    }
    if (replay) {
        o->replay = argv + optind;
        o->replay_count = argc - optind;
        if (!o->replay_count) {
            usage();
            return -1;
        }
    } else if (optind != argc) {
        usage();
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {.count = 100, .timeout_s = 0.25};
    o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    struct backend_tally tally[3];
    memset(tally, 0, sizeof(tally));
    int nt = 0;
    if (parse(argc, argv, &o, tally, &nt) < 0)
        return 64;
    if (o.dump) {
        static struct chaos_guest g;
        chaos_generate(chaos_guest_seed(o.seed, o.first), &g);
        dump_guest(&g);
        return 0;
    }
    if (o.known_path && load_known(o.known_path) < 0)
        return 64;
    if (nt == 0) {
        static const char *all[] = {"trap_emulate", "dbt", "vtx"};
        for (nt = 0; nt < 3; nt++)
            tally[nt].ops = backend_find(all[nt]);
    }
    devnull = fopen("/dev/null", "w");
    if (!devnull)
        return 70;
    int available = 0;
    for (int i = 0; i < nt; i++) {
        char reason[200] = "";
        /* probe once here: the children inherit what the probe learnt about the host */
        tally[i].available = tally[i].ops->probe(reason, sizeof(reason)) == 0;
        available += tally[i].available;
        if (!tally[i].available)
            printf("chaos: %s unavailable (%s): skipped\n", tally[i].ops->name, reason);
    }
    if (!available)
        return 77;

    if (o.replay_count) {
        for (int f = 0; f < o.replay_count; f++)
            for (int i = 0; i < nt; i++)
                if (tally[i].available) {
                    bool verbose = o.verbose;
                    o.verbose = true;
                    run_one(&tally[i], &o, NULL, o.replay[f], 0);
                    o.verbose = verbose;
                }
    } else {
        printf("chaos: seed %#" PRIx64 ", guests %" PRIu64 "..%" PRIu64 ", budget %.2f s each\n",
               o.seed, o.first, o.first + o.count - 1, o.timeout_s);
        fflush(stdout);
        static struct chaos_guest g;
        for (uint64_t n = 0; n < o.count; n++) {
            if (n && n % 10000 == 0) { /* long runs: a sign of life on stderr */
                fprintf(stderr, "chaos: %" PRIu64 " of %" PRIu64 " guests\n", n, o.count);
                fflush(stdout);
            }
            chaos_generate(chaos_guest_seed(o.seed, o.first + n), &g);
            for (int i = 0; i < nt; i++)
                if (tally[i].available)
                    run_one(&tally[i], &o, &g, NULL, o.first + n);
        }
    }

    int unexpected = 0;
    for (int i = 0; i < nt; i++) {
        struct backend_tally *t = &tally[i];
        if (!t->available)
            continue;
        printf("chaos %s: %" PRIu64 " guests:", t->ops->name, t->guests);
        for (int e = 0; e <= END_MAX_VALUE; e++)
            if (t->endings[e])
                printf(" %s %" PRIu64, ending_names[e], t->endings[e]);
        unsigned classes = 0;
        for (unsigned c = 1; c <= EMU_CLASS_MAX_VALUE; c++)
            classes += t->emulated[c] != 0;
        printf("; %u instruction classes emulated", classes);
        printf("; known failures %" PRIu64 ", unexpected %" PRIu64 "\n", t->known, t->unexpected);
        unexpected += t->unexpected != 0;
        /* A generator whose guests all end the same way proves nothing: a run of 100 guests
         * or more must see several endings, and the in-process backends must have emulated
         * a good part of the sensitive classes. */
        unsigned kinds = 0;
        for (int e = 0; e <= END_MAX_VALUE; e++)
            kinds += t->endings[e] != 0;
        bool in_process = strcmp(t->ops->name, "vtx") != 0;
        if (!o.replay_count && t->guests >= 100 &&
            (kinds < CHAOS_MIN_ENDINGS || (in_process && classes < CHAOS_MIN_CLASSES))) {
            printf("FAIL %s: the guests were too tame (%u kinds of ending, %u classes emulated; "
                   "want %d and %d)\n",
                   t->ops->name, kinds, classes, CHAOS_MIN_ENDINGS, CHAOS_MIN_CLASSES);
            unexpected++;
        }
    }
    for (unsigned k = 0; k < known_count; k++)
        if (known[k].matched)
            printf("chaos: known failure on %s seen %" PRIu64 " times: %s (%s)\n", known[k].backend,
                   known[k].matched, known[k].substring, known[k].reason);
    return unexpected ? 1 : 0;
}
